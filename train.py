"""Train OpenPose on COCO person keypoints, on one device or data-parallel on several.

    python train.py --imgpath_train DIR --jsonpath_train FILE --maskpath_train DIR \\
        [--vgg_path vgg19.ckpt] [--resume auto] [--max_train_steps N] [--key value ...]
    mpirun -n 8 python train.py ...          (or scripts/run_distribute_train_gpu.sh)
    msrun --worker_num=8 ... train.py ...    (or scripts/run_distribute_train_msrun.sh)

The keys below can be given as ``--key value`` (or in a ``--config_path`` YAML). Rank and group
size come from the launcher (src/parallel/launch.py); several processes train one data-parallel
model (each reads its own shard, gradients are averaged, the reference's ``*_NP`` settings
apply). Checkpoints go to ``<save_model_path>/ckpt_0/``, written by rank 0 only; ``--resume
auto`` continues every rank from the newest of them. Every rank logs, each line starting with
``[rank r/n]`` when distributed. Errors (missing paths, bad files, NaN loss, a bad launch) print
one line and exit with status 1 (2 for a bad command line). SIGINT / SIGTERM (single process)
finish the current step, write a checkpoint, print how to resume and exit 130 / 143.
"""
import sys


def command():
    """The keys train.py reads, its required keys and examples (its --help)."""
    # Imported here, not at the top: src.config loads numpy, which must wait for the SIGINT
    # watcher (see the end of this file).
    from src.config import INFERENCE_KEYS, NETWORK_KEYS, Command
    return Command(
        "train.py", __doc__,
        groups={"inputs": ("imgpath_train", "jsonpath_train", "maskpath_train", "vgg_path",
                           "load_pretrain", "pretrained_model_path", "resume", "imgpath_val", "ann"),
                "network": NETWORK_KEYS + ("insize",),
                "training": ("batch_size", "max_epoch_train", "max_epoch_train_NP", "max_train_steps",
                             "lr", "lr_type", "lr_gamma", "lr_steps", "lr_steps_NP", "warmup_epoch",
                             "optimizer", "optimizer_NP", "group_params", "group_params_NP",
                             "train_type", "train_type_NP", "loss_scale", "GRADIENT_CLIP_TYPE",
                             "GRADIENT_CLIP_VALUE", "unscale_before_clip", "seed", "min_keypoints",
                             "min_area", "paf_sigma", "heatmap_sigma", "min_box_size", "max_box_size",
                             "min_scale", "max_scale", "max_rotate_degree", "center_perterb_max",
                             "num_parallel_workers"),
                "evaluation": ("val_interval", "val_num") + INFERENCE_KEYS,
                "outputs": ("save_model_path", "ckpt_interval", "keep_checkpoint_max", "log_interval",
                            "enable_profiling"),
                "device": ("device_target", "device_id", "amp_level")},
        required=("imgpath_train", "jsonpath_train", "maskpath_train"),
        examples=(
            "python train.py --imgpath_train coco/train2017 \\\n"
            "      --jsonpath_train coco/annotations/person_keypoints_train2017.json \\\n"
            "      --maskpath_train coco/ignore_mask_train --vgg_path vgg19-0-97_5004.ckpt",
            "python train.py --config_path configs/toy.yaml --imgpath_train toy/train2017 \\\n"
            "      --jsonpath_train toy/annotations/person_keypoints_train2017.json \\\n"
            "      --maskpath_train toy/ignore_mask_train --val_interval 2 --imgpath_val toy/val2017 \\\n"
            "      --ann toy/annotations/person_keypoints_val2017.json",
            "python train.py ... --resume auto            (continue the newest checkpoint)",
            "mpirun -n 8 python train.py ...              (or scripts/run_distribute_train_gpu.sh)",
        ))


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    # Imported here, not at the top: the SIGINT watcher starts before numpy or MindSpore start
    # threads (see the end of this file), and --help or a bad flag answers without loading them.
    from src.config import load_config
    from src.errors import OpenPoseError
    cfg = load_config(argv, command=command())
    from src.parallel.cluster import rank_prefix
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
    from src.runtime.stop_signals import start_sigint_watcher
    start_sigint_watcher("train.py")  # first: before numpy or MindSpore start threads
    sys.exit(main())
