"""Train OpenPose on COCO person keypoints.

    python train.py --imgpath_train DIR --jsonpath_train FILE --maskpath_train DIR \\
        [--vgg_path vgg19.ckpt] [--resume auto] [--max_train_steps N] [--key value ...]

Every key of default_config.yaml can be given as ``--key value``; see ``--help``. Checkpoints go
to ``<save_model_path>/ckpt_<rank>/``. Errors (missing paths, bad files, NaN loss) print one
line and exit with status 1 (2 for a bad command line).
"""
import sys

from src.callbacks import TrainError
from src.checkpoint import CheckpointError
from src.config import load_config


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    cfg = load_config(argv, prog="train.py")
    from src.coco_data import AnnotationError, ImageReadError  # pylint: disable=import-outside-toplevel
    from src.trainer import train_from_config  # pylint: disable=import-outside-toplevel
    try:
        train_from_config(cfg, log=lambda line: print(line, flush=True))
    except (TrainError, CheckpointError, AnnotationError, ImageReadError) as exc:
        print(f"train.py: error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
