"""Export an OpenPose checkpoint: python export.py --ckpt_file X --file_name Y --file_format ONNX.

The network exported is the one the checkpoint records (or whose parameter shapes it has);
loading is strict. A bad request (format, sizes) exits 2, a checkpoint that does not fit (a
contradicting --num_stages / --width_mult / --vgg_with_bn, a missing or extra parameter) exits 1, and
so does an output folder that cannot be written (checked first) or an export whose file is missing,
empty or does not load afterwards (nothing is reported as exported then).
"""
import sys

from src.config import load_config
from src.errors import OpenPoseError
from src.model.export import ExportError, export_network
from src.parallel.launch import device_id_for
from src.runtime.context import setup_context


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    cfg = load_config(argv, prog="export.py")
    try:
        target = setup_context(cfg.device_target, device_id=device_id_for(cfg))
        output, report, spec = export_network(cfg.ckpt_file, cfg.file_name, cfg.file_format,
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
