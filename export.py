"""Export an OpenPose checkpoint: python export.py --ckpt_file X --file_name Y --file_format ONNX."""
import sys

from src.checkpoint import CheckpointError
from src.config import load_config
from src.context import setup_context
from src.export_model import ExportError, export_network


def main(argv=None):
    cfg = load_config(argv, prog="export.py")
    target = setup_context(cfg.device_target, device_id=cfg.device_id)
    try:
        output, report = export_network(cfg.ckpt_file, cfg.file_name, cfg.file_format,
                                        batch_size=cfg.export_batch_size, insize=cfg.insize,
                                        vgg_with_bn=cfg.vgg_with_bn, stages=cfg.export_stages,
                                        device_target=target, width_mult=cfg.width_mult,
                                        num_stages=cfg.num_stages)
    except (ExportError, CheckpointError) as exc:
        print(f"export.py: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"exported {cfg.file_format} ({cfg.export_batch_size}x3x{cfg.insize}x{cfg.insize}, "
          f"{cfg.export_stages} stage outputs) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
