"""Convert pretrained weights people already have into checkpoints of this repository.

    python scripts/convert_weights.py SOURCE --out FILE.ckpt

SOURCE is recognised from its content, not its name:

* CMU's ``pose_iter_440000.caffemodel`` or pytorch-openpose's ``body_pose_model.pth`` (the same
  COCO body model): an OpenPose checkpoint recording CMU's network (6 stages, width 1, no
  BatchNorm, input BGR / 256 - 0.5), for eval.py, scripts/infer.py, export.py and
  ``train.py --load_pretrain True --pretrained_model_path FILE.ckpt``. (Those scripts also take
  the .caffemodel / .pth itself; converting once saves the conversion at every start.)
* torchvision's ``vgg19-dcbb9e9d.pth`` / ``vgg19_bn-c79401a0.pth``: a VGG19 checkpoint for
  ``train.py --vgg_path FILE.ckpt`` (``--vgg_with_bn True`` for vgg19_bn), with torchvision's
  RGB mean / std normalisation folded into conv1_1 so it takes this network's input.

A PyTorch file is read without torch and nothing in it is run: a file that names anything but
tensors and dictionaries is refused. Any error (unknown, unsafe or damaged file, --out equal to
SOURCE, a failed write) prints one line and exits 1; the previous --out file, if any, is kept.
"""
import argparse
import sys
from pathlib import Path

import _repo_path  # noqa: F401  (puts the repository root on sys.path)

EXAMPLES = """examples:
  python scripts/convert_weights.py pose_iter_440000.caffemodel --out checkpoints/cmu_coco.ckpt
  python scripts/convert_weights.py body_pose_model.pth --out checkpoints/cmu_coco.ckpt
  python scripts/convert_weights.py vgg19-dcbb9e9d.pth --out checkpoints/vgg19.ckpt
  python train.py --vgg_path checkpoints/vgg19.ckpt --imgpath_train ... (then train)"""


def build_parser():
    """Command-line options, grouped like the other scripts' --help."""
    parser = argparse.ArgumentParser(
        prog="convert_weights.py", description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    parser.add_argument_group("inputs").add_argument(
        "source", metavar="SOURCE",
        help="(required) a .caffemodel or .pth file (its kind is found from its content)")
    parser.add_argument_group("outputs").add_argument(
        "--out", required=True, metavar="FILE", help="(required) checkpoint to write (.ckpt)")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from src.errors import OpenPoseError
    from src.model.weight_import import convert_file, write_converted
    from src.runtime.output_checks import check_not_input
    try:
        source, out = Path(args.source), Path(args.out)
        check_not_input(out, "out", [(source, "the source file")],
                        "writing the checkpoint would replace it (the source is kept)")
        converted = convert_file(source)           # bad files fail before anything is written
        write_converted(converted, out)
    except (OpenPoseError, OSError) as exc:
        print(f"convert_weights.py: error: {exc}", file=sys.stderr)
        return 1
    for line in converted.lines:
        print(line)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
