"""Convert CMU's COCO body model into a checkpoint of this repository.

    python scripts/convert_cmu_caffemodel.py --caffemodel pose_iter_440000.caffemodel \\
        --out checkpoints/cmu_coco.ckpt

The file is CMU's (openpose ``models/pose/coco``, under CMU's licence terms); this repository
neither ships nor downloads it. The checkpoint records the network (6 stages, full width) and
CMU's input normalisation (BGR / 256 - 0.5), so eval.py, export.py and scripts/infer.py use it
with no extra flags, and ``train.py --load_pretrain True --pretrained_model_path OUT`` fine-tunes
from it. A file that is not that model's binary caffemodel stops with one line (exit 1).
"""
import argparse
import sys

import _repo_path  # noqa: F401  (puts the repository root on sys.path)

EXAMPLES = """examples:
  python scripts/convert_cmu_caffemodel.py --caffemodel pose_iter_440000.caffemodel \\
      --out checkpoints/cmu_coco.ckpt
  python eval.py --model_path checkpoints/cmu_coco.ckpt --imgpath_val coco/val2017 --ann ANN.json"""


def build_parser():
    """Command-line options, grouped like the other scripts' --help."""
    parser = argparse.ArgumentParser(
        prog="convert_cmu_caffemodel.py", description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    parser.add_argument_group("inputs").add_argument(
        "--caffemodel", required=True, metavar="FILE",
        help="(required) CMU's COCO body model, pose_iter_440000.caffemodel (binary Caffe format)")
    parser.add_argument_group("outputs").add_argument(
        "--out", required=True, metavar="FILE", help="(required) checkpoint to write (.ckpt)")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from src.errors import OpenPoseError
    from src.model.caffe_import import convert_caffemodel, read_caffemodel
    from src.runtime.output_checks import check_not_input
    try:
        check_not_input(args.out, "out", [(args.caffemodel, "the --caffemodel file")],
                        "writing the checkpoint would replace it (the source is kept)")
        layers = read_caffemodel(args.caffemodel)  # bad files fail before MindSpore loads
        summary = convert_caffemodel(args.caffemodel, args.out, layers)
    except (OpenPoseError, OSError) as exc:
        print(f"convert_cmu_caffemodel.py: error: {exc}", file=sys.stderr)
        return 1
    order = "the same as this repository's (no channel moved)" if summary["identity_order"] else \
        "mapped onto this repository's order"
    print(f"read {summary['layers']} Caffe layers; wrote {summary['parameters']} parameters "
          f"({summary['values'] / 1e6:.1f} M weights) to {summary['out']}")
    print(f"channel order of heatmaps and PAFs: {order}; "
          "input normalisation recorded: BGR / 256 - 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
