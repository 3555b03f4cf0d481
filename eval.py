"""Evaluate an OpenPose checkpoint on COCO person keypoints (COCO keypoint AP/AR).

    python eval.py --model_path CKPT --imgpath_val DIR --ann FILE \\
        [--output_img_path DIR] [--eva_num N] [--vis True] [--inference_img_size 368] \\
        [--multi_scale True] [--flip True] [--key value ...]

The checkpoint may be ours, a reference training checkpoint or one converted from CMU's model
(scripts/convert_weights.py); CMU's .caffemodel or pytorch-openpose's body_pose_model.pth is
also taken as it is (converted in memory; README "Pretrained weights"). The network built is
the one it records (or whose parameter shapes it has), and loading is strict. The images evaluated are those with person
annotations (sorted ids; the first ``eva_num`` when it is > 0). Results
(``eval_result.json``, COCO keypoint format) and metrics (``eval_metrics.json``) go to
``output_img_path``; ``--vis True`` also writes a skeleton drawing per image (``<stem>_<ext>.png``,
refused when ``output_img_path`` is the image folder). Errors (missing
files, bad checkpoint or annotations) print one line and exit with status 1 (2 for a bad
command line).

``--backend onnx --model_path FILE.onnx`` runs an ONNX file written by export.py with
onnxruntime instead (same preprocessing, decoder and outputs).

Distributed (``--is_distributed 1`` under ``mpirun -n N`` or ``msrun``): every rank evaluates
its shard of the images, rank 0 gathers the results and runs one COCOeval.
"""
import os
import sys

#: eval.py's line when Ctrl-C stops it (src/runtime/stop_signals.py); exit status 130.
STOPPED_LINE = ("stopped by SIGINT before the evaluation finished; eval_result.json and "
                "eval_metrics.json are written only by a finished run (drawings already written "
                "are complete)")


def command():
    """The keys eval.py reads, its required keys and examples (its --help)."""
    from src.config import (
        CHECKPOINT_NETWORK_DEFAULTS,
        CHECKPOINT_NETWORK_NOTE,
        INFERENCE_KEYS,
        NETWORK_KEYS,
        Command,
    )
    return Command(
        "eval.py", __doc__,
        groups={"inputs": ("model_path", "backend", "imgpath_val", "ann"),
                "network": NETWORK_KEYS,
                "evaluation": ("eva_num", "strict") + INFERENCE_KEYS,
                "outputs": ("output_img_path", "vis"),
                "device": ("device_target", "device_id", "is_distributed")},
        required=("model_path", "imgpath_val", "ann"),
        notes={"network": CHECKPOINT_NETWORK_NOTE}, shown_defaults=CHECKPOINT_NETWORK_DEFAULTS,
        examples=(
            "python eval.py --model_path checkpoint/ckpt_0/best.ckpt --imgpath_val coco/val2017 \\\n"
            "      --ann coco/annotations/person_keypoints_val2017.json",
            "python eval.py --model_path cmu_coco.ckpt --imgpath_val coco/val2017 --ann ANN.json "
            "--eva_num 100 --vis True",
            "python eval.py --backend onnx --model_path openpose.onnx --imgpath_val coco/val2017 "
            "--ann ANN.json",
            "mpirun -n 8 python eval.py --is_distributed 1 --model_path CKPT --imgpath_val DIR --ann FILE",
        ))


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    # The decoder's matrix products are small: one BLAS thread avoids idle threads spinning
    # on the cores the network needs (takes effect when numpy is not imported yet).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from src.config import load_config
    cfg = load_config(argv, command=command())
    # Imported here: after OPENBLAS_NUM_THREADS is set, and not at all for --help or a bad flag.
    from src.errors import OpenPoseError
    from src.evaluate.coco_eval import check_eval_inputs, run_evaluation
    from src.parallel.cluster import init_distributed, rank_prefix
    from src.parallel.collectives import gather_objects
    from src.parallel.launch import device_id_for
    from src.runtime.context import setup_context
    from src.runtime.output_checks import check_not_input, check_output_dir
    from src.runtime.stop_signals import Interrupted
    try:
        if cfg.vis:
            check_not_input(cfg.output_img_path, "output_img_path",
                            [(cfg.imgpath_val, "the --imgpath_val image folder")],
                            "drawings written there could replace input files")
        check_output_dir(cfg.output_img_path, "output_img_path")
        target = setup_context(cfg.device_target, mode="graph", device_id=device_id_for(cfg))
        dist = init_distributed(target) if cfg.is_distributed else None
        check_eval_inputs(cfg)
        if dist is None or not dist.is_distributed:
            run_evaluation(cfg, log=lambda line: print(line, flush=True))
        else:
            prefix = rank_prefix(dist)
            run_evaluation(cfg, rank=dist.rank, group_size=dist.group_size,
                           gather=lambda obj: gather_objects(obj, dist),
                           log=lambda line: print(prefix + line, flush=True))
    except Interrupted as exc:
        print(f"eval.py: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except OpenPoseError as exc:
        print(f"eval.py: error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    from src.runtime.stop_signals import start_sigint_watcher
    start_sigint_watcher("eval.py", STOPPED_LINE)  # first: before numpy or MindSpore start threads
    sys.exit(main())
