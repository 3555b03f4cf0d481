"""Write a seeded synthetic COCO person-keypoints dataset (see ``src/data/toy_coco.py``).

Usage (from the repository root)::

    .venv/bin/python scripts/make_toy_coco.py --out data/toy_coco \\
        [--num_train 1000] [--num_val 100] [--size 160] [--seed 0] [--no_masks] \\
        [--config_path configs/toy.yaml] [--min_keypoints N] [--min_area A]

Writes ``OUT/train2017/*.jpg``, ``OUT/val2017/*.jpg``,
``OUT/annotations/person_keypoints_{train,val}2017.json`` and, unless ``--no_masks``, the ignore
masks ``OUT/ignore_mask_{train,val}/`` (as ``scripts/gen_ignore_mask.py`` would), with the people
rule (``min_keypoints``, ``min_area``) of default_config.yaml, of ``--config_path``'s training
configuration, or of the flags: train.py refuses masks made with another rule than its own.
"""
import argparse
import sys
from pathlib import Path

import _repo_path  # noqa: F401  (puts the repository root on sys.path)

from src.config import ConfigError, argparse_help, parse_config
from src.data.annotation_checks import AnnotationError
from src.data.ignore_mask import generate_split
from src.data.toy_coco import ToyOptions, make_split


def build_parser():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num_train", type=int, default=1000)
    parser.add_argument("--num_val", type=int, default=100)
    parser.add_argument("--size", type=int, default=160, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_people", type=int, default=3)
    parser.add_argument("--no_masks", action="store_true", help="do not write ignore masks")
    parser.add_argument("--config_path", default=None,
                        help="training configuration whose min_keypoints / min_area the masks "
                             "follow (default: default_config.yaml's)")
    # default None: parse_config tells a given flag from --config_path's value
    parser.add_argument("--min_keypoints", default=None, metavar="N",
                        help=argparse_help("min_keypoints"))
    parser.add_argument("--min_area", default=None, metavar="X", help=argparse_help("min_area"))
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.size < 64 or args.num_train < 0 or args.num_val < 0 or args.max_people < 1:
        print("error: need --size >= 64, --num_train/--num_val >= 0 and --max_people >= 1",
              file=sys.stderr)
        return 2
    flags = [f"--{key}={value}" for key, value in (("min_keypoints", args.min_keypoints),
                                                    ("min_area", args.min_area))
             if value is not None]
    try:
        rule = parse_config(flags, config_path=args.config_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = ToyOptions(size=args.size, max_people=args.max_people)
    out = Path(args.out)
    try:
        for split, count, first_image, first_ann in (("train", args.num_train, 1, 1),
                                                     ("val", args.num_val, 1_000_001,
                                                      10_000_001)):
            data = make_split(str(out), split, count, args.seed, options, first_image,
                              first_ann)
            people = sum(1 for a in data["annotations"] if not a["iscrowd"])
            labelled = sum(1 for a in data["annotations"] if a["num_keypoints"] > 0)
            crowds = sum(1 for a in data["annotations"] if a["iscrowd"])
            line = (f"{split}: {count} images, {people} people ({labelled} with keypoints), "
                    f"{crowds} crowd regions")
            if not args.no_masks and count:
                _, on_disk, _ = generate_split(
                    str(out / "annotations" / f"person_keypoints_{split}2017.json"),
                    str(out / f"{split}2017"), split, workers=1, progress=False,
                    min_keypoints=rule.min_keypoints, min_area=rule.min_area)
                line += f", {on_disk} ignore masks"
            if not args.quiet:
                print(line)
    except (OSError, AnnotationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
