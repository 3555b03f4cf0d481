"""Train OpenPose on COCO person keypoints, on one device or data-parallel on several.

    python train.py --imgpath_train DIR --jsonpath_train FILE --maskpath_train DIR \\
        [--vgg_path vgg19.ckpt] [--resume auto] [--max_train_steps N] [--key value ...]
    mpirun -n 8 python train.py ...          (or scripts/run_distribute_train_gpu.sh)
    msrun --worker_num=8 ... train.py ...    (or scripts/run_distribute_train_msrun.sh)

Every key of default_config.yaml can be given as ``--key value``; see ``--help``. Rank and group
size come from the launcher (src/parallel/launch.py); several processes train one data-parallel
model (each reads its own shard, gradients are averaged, the reference's ``*_NP`` settings
apply). Checkpoints go to ``<save_model_path>/ckpt_0/``, written by rank 0 only; ``--resume
auto`` continues every rank from the newest of them. Every rank logs, each line starting with
``[rank r/n]`` when distributed. Errors (missing paths, bad files, NaN loss, a bad launch) print
one line and exit with status 1 (2 for a bad command line). SIGINT / SIGTERM (single process)
finish the current step, write a checkpoint, print how to resume and exit 130 / 143.
"""
import sys


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    # Imported here, not at the top: the SIGINT watcher starts before numpy or MindSpore start
    # threads (see the end of this file), and --help or a bad flag answers without loading them.
    from src.config import load_config
    from src.errors import OpenPoseError
    cfg = load_config(argv, prog="train.py")
    from src.parallel.runtime import rank_prefix
    from src.train.command import distributed_setup, train_from_config
    from src.train.interrupts import TrainInterrupted

    def log(line):
        sys.stdout.write(f"{rank_prefix()}{line}\n")  # one write: ranks' lines stay whole
        sys.stdout.flush()

    try:
        train_from_config(cfg, log=log, parallel_setup=distributed_setup)
    except TrainInterrupted as exc:
        print(f"{rank_prefix()}train.py: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except OpenPoseError as exc:
        print(f"{rank_prefix()}train.py: error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    from src.train.stop_signals import start_sigint_watcher
    start_sigint_watcher("train.py")  # first: before numpy or MindSpore start threads
    sys.exit(main())
