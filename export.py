"""Export an OpenPose checkpoint to MINDIR, AIR or ONNX.

    python export.py --ckpt_file CKPT [--file_name openpose] [--file_format MINDIR|AIR|ONNX]
        [--insize 368] [--export_batch_size 1] [--export_stages final|all]

--model_path is accepted for the checkpoint too (the name eval.py and scripts/infer.py use);
--ckpt_file is the reference's. Giving both with different files is an error (exit 2).
CMU's .caffemodel or pytorch-openpose's body_pose_model.pth is taken as it is too (converted in
memory). The network exported is the one the checkpoint records (or whose parameter shapes it has);
loading is strict. A bad request (format, sizes) exits 2, a checkpoint that does not fit (a
contradicting --num_stages / --width_mult / --vgg_with_bn, a missing or extra parameter) exits 1, and
so does an output folder that cannot be written (checked first) or an export whose file is missing,
empty or does not load afterwards (nothing is reported as exported then).
"""
import os
import sys

from src.config import CHECKPOINT_NETWORK_DEFAULTS, CHECKPOINT_NETWORK_NOTE, NETWORK_KEYS, Command, load_config


def command():
    """The keys export.py reads and examples (its --help)."""
    return Command(
        "export.py", __doc__,
        groups={"inputs": ("ckpt_file", "model_path"),
                "network": NETWORK_KEYS + ("insize",),
                "outputs": ("file_name", "file_format", "export_stages", "export_batch_size"),
                "device": ("device_target", "device_id")},
        notes={"network": CHECKPOINT_NETWORK_NOTE}, shown_defaults=CHECKPOINT_NETWORK_DEFAULTS,
        examples=(
            "python export.py --ckpt_file checkpoint/ckpt_0/best.ckpt --file_name openpose",
            "python export.py --model_path cmu_coco.ckpt --file_format ONNX --file_name cmu_coco",
            "python export.py --ckpt_file CKPT --file_format MINDIR --insize 480 --export_batch_size 4",
        ))


def checkpoint_to_export(cfg):
    """The checkpoint named by --ckpt_file or --model_path ('' when neither is set).

    Raises:
        ConfigError: both are set and name different files.
    """
    from src.config import ConfigError
    ckpt_file, model_path = str(cfg.ckpt_file), str(cfg.model_path)
    if ckpt_file and model_path and os.path.realpath(ckpt_file) != os.path.realpath(model_path):
        raise ConfigError(f"--ckpt_file {ckpt_file!r} and --model_path {model_path!r} name different "
                          "checkpoints: give one of them")
    return ckpt_file or model_path


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    cfg = load_config(argv, command=command())
    # Imported here: --help and a bad flag answer without loading MindSpore.
    from src.config import ConfigError
    from src.errors import OpenPoseError
    from src.model.export import ExportError, export_network
    from src.parallel.launch import device_id_for
    from src.runtime.context import setup_context
    try:
        checkpoint = checkpoint_to_export(cfg)
    except ConfigError as exc:
        print(f"export.py: error: {exc}", file=sys.stderr)
        return 2
    try:
        target = setup_context(cfg.device_target, device_id=device_id_for(cfg))
        output, report, spec = export_network(checkpoint, cfg.file_name, cfg.file_format,
                                              batch_size=cfg.export_batch_size, insize=cfg.insize,
                                              stages=cfg.export_stages, device_target=target,
                                              cfg=cfg)
    except ExportError as exc:
        print(f"export.py: error: {exc}", file=sys.stderr)
        return 2
    except OpenPoseError as exc:
        print(f"export.py: error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"network: {spec.describe()}")
    shape = "any batch and size (multiples of 8)" if cfg.file_format.upper() == "ONNX" else \
        f"{cfg.export_batch_size}x3x{cfg.insize}x{cfg.insize}"
    print(f"exported {cfg.file_format} ({shape}, {cfg.export_stages} stage outputs) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
