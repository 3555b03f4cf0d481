"""Detect people in an image, a folder of images or a video and draw their skeletons.

    python scripts/infer.py --model_path CKPT --input PATH [--output DIR]
        [--inference_img_size 368] [--multi_scale True] [--flip True] [--max_frames N]
        [--min_person_score S] [--min_joints N]
        [--key value ...]

Writes a drawing per image (``<stem>_<ext>.png``: ``a.jpg`` -> ``a_jpg.png``; ``<stem>_pose.mp4``
for a video) and ``people.json`` (per image or frame, each person's 17 COCO keypoints as x, y,
confidence, and score; docs/outputs.md) into ``--output``, which must not be the input's folder
(nothing written replaces an input). ``--min_person_score S`` / ``--min_joints N`` leave out people scoring below S or
with fewer than N keypoints found (default: keep all). --model_path may also be CMU's
.caffemodel or pytorch-openpose's body_pose_model.pth (converted in memory). The network is the one
the checkpoint records (or whose shapes it has); a contradicting --num_stages / --width_mult /
--vgg_with_bn, or a parameter that does not fit, stops with one line (exit 1). ``--backend onnx``
runs an ONNX file written by export.py (``--model_path FILE.onnx``) with onnxruntime.
"""
import os
import sys

import _repo_path  # noqa: F401  (puts the repository root on sys.path)

#: infer.py's line when Ctrl-C stops it (src/runtime/stop_signals.py); exit status 130.
STOPPED_LINE = ("stopped by SIGINT before inference finished; people.json and the annotated "
                "video are written only by a finished run (drawings already written are complete)")


def command():
    """The keys scripts/infer.py reads, its required keys and examples (its --help)."""
    from src.config import CHECKPOINT_NETWORK_DEFAULTS, CHECKPOINT_NETWORK_NOTE, INFERENCE_KEYS, NETWORK_KEYS, Command
    return Command(
        "infer.py", __doc__,
        groups={"inputs": ("input", "model_path", "backend", "max_frames"),
                "network": NETWORK_KEYS,
                "evaluation": ("strict",) + INFERENCE_KEYS,
                "outputs": ("output", "min_person_score", "min_joints"),
                "device": ("device_target", "device_id")},
        required=("input", "model_path"),
        notes={"network": CHECKPOINT_NETWORK_NOTE}, shown_defaults=CHECKPOINT_NETWORK_DEFAULTS,
        examples=(
            "python scripts/infer.py --model_path cmu_coco.ckpt --input photo.jpg",
            "python scripts/infer.py --model_path cmu_coco.ckpt --input photos/ --output poses/ "
            "--min_joints 5",
            "python scripts/infer.py --model_path cmu_coco.ckpt --input clip.mp4 --max_frames 300",
            "python scripts/infer.py --backend onnx --model_path openpose.onnx --input photo.jpg "
            "--multi_scale True",
        ))


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Imported here: after OPENBLAS_NUM_THREADS is set, and not at all for --help or a bad flag.
    from src.config import load_config
    cfg = load_config(argv, command=command())
    from src.errors import OpenPoseError
    from src.evaluate.backends import open_forward
    from src.evaluate.inference import predictor_from_config
    from src.evaluate.media import MediaError, classify_input, run_media_inference
    from src.parallel.launch import device_id_for
    from src.runtime.context import setup_context
    from src.runtime.output_checks import check_not_input, check_output_dir
    from src.runtime.stop_signals import Interrupted
    try:
        if not cfg.input:
            raise MediaError("--input is empty: pass an image, a folder of images or a video")
        if not cfg.model_path:
            raise MediaError("--model_path is empty: pass a checkpoint (or an ONNX file with "
                             "--backend onnx)")
        kind, path = classify_input(cfg.input)
        check_not_input(cfg.output, "output",
                        [(path, "the --input folder") if kind == "folder" else
                         (path.parent, "the folder of --input")],
                        "drawings and people.json written there could replace input files")
        check_output_dir(cfg.output, "output")
        setup_context(cfg.device_target, mode="graph", device_id=device_id_for(cfg))
        forward, spec, lines = open_forward(cfg)
        print("\n".join(lines))
        predictor = predictor_from_config(forward, cfg, input_scale=spec.input_scale,
                                          width_mult=spec.width_mult)
        run_media_inference(predictor, cfg.input, cfg.output, max_frames=cfg.max_frames,
                            strict=cfg.strict, min_person_score=cfg.min_person_score,
                            min_joints=cfg.min_joints)
    except Interrupted as exc:
        print(f"infer.py: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except OpenPoseError as exc:
        print(f"infer.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from src.runtime.stop_signals import start_sigint_watcher
    start_sigint_watcher("infer.py", STOPPED_LINE)  # first: before numpy or MindSpore start threads
    sys.exit(main())
