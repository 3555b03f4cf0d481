"""Write the ignore masks of COCO images: regions whose people are not labelled for training.

The command (``scripts/gen_ignore_mask.py``; the reference kept it in src/)::

    python3 scripts/gen_ignore_mask.py --train_ann A.json --val_ann B.json \\
        --train_dir coco/train2017 --val_dir coco/val2017

For each split given, ``ignore_mask_<split>/`` is created beside the image folder and holds one
``{image_id:012d}.png`` (uint8, 255 = ignore, 0 = use) per image that has something to ignore.
Masks already present are kept when complete (the run is resumable); a damaged one (cut,
zero bytes, another size) is rewritten. Every file is written atomically
(:mod:`src.runtime.atomic_write`): a full disk, an error, Ctrl-C or SIGTERM (exit 130 / 143)
never leaves a partial file under a mask's name, and temporaries a killed run left are removed
at the next start. The people rule is recorded beside the masks (:mod:`src.data.mask_files`);
a rerun with another rule stops and says how to redo them. Segmentations are checked before
any mask is written (:func:`src.data.segmentation.check_segmentation`). ``--workers`` processes
run in parallel;
``--vis DIR`` also writes an overlay PNG per image (annotations | ignored region) into
``DIR/<split>/`` (``--vis True``: ``ignore_mask_vis/<split>/`` beside the image folders;
``--vis False``, ``--vis ""`` or no ``--vis``: none).

What is ignored (the reference's rule, made independent of annotation order):
  * crowd regions (``iscrowd`` = 1), except where they overlap a labelled training person;
  * people with fewer than ``min_keypoints`` keypoints or with ``area <= min_area`` (whole mask).
The reference subtracted from a crowd region only the people listed *before* it in the file;
here every training person is subtracted, which is what that code meant.
"""
import argparse
import os
import signal
import sys
from functools import partial
from multiprocessing import Pool

import cv2
import numpy as np
from tqdm import tqdm

from src.config import argparse_help, default_config
from src.data.annotation_checks import image_size
from src.data.coco import (
    DEFAULT_MIN_AREA,
    DEFAULT_MIN_KEYPOINTS,
    AnnotationError,
    ImageReadError,
    is_valid_person,
    load_coco,
    mask_path,
    read_image,
)
from src.data.mask_files import check_rule, mask_is_complete
from src.data.segmentation import ann_to_mask, check_segmentation
from src.errors import OpenPoseError
from src.runtime.atomic_write import remove_stale_temporaries, write_image
from src.runtime.output_checks import check_output_dir

#: ``--vis`` values that mean "no overlays" (compared lower-case), as the reference's boolean.
NO_OVERLAYS = ("", "false", "no", "off", "none", "0")
#: ``--vis`` values of the reference's boolean that turn overlays on without naming a folder:
#: they go to ``ignore_mask_vis/<split>/`` beside the image folders (:data:`BESIDE_MASKS`).
OVERLAYS_WITHOUT_FOLDER = ("true", "yes", "on", "1")
#: The folder name used for ``--vis True``.
BESIDE_MASKS = "ignore_mask_vis"


def compute_ignore_mask(annotations, height, width, min_keypoints=DEFAULT_MIN_KEYPOINTS,
                        min_area=DEFAULT_MIN_AREA):
    """Ignore mask of one image.

    Args:
        annotations: the image's person annotations (crowds included).
        height, width: image size in pixels.
        min_keypoints, min_area: people below either are ignored
            (``num_keypoints < min_keypoints`` or ``area <= min_area``).

    Returns:
        (height, width) bool, True = ignore: (crowds minus training people) plus
        untrainable people.
    """
    crowd = np.zeros((height, width), dtype=bool)
    people = np.zeros((height, width), dtype=bool)
    unusable = np.zeros((height, width), dtype=bool)
    for ann in annotations:
        mask = ann_to_mask(ann, height, width)
        if ann.get("iscrowd", 0):
            crowd |= mask
        elif is_valid_person(ann, min_keypoints, min_area):
            people |= mask
        else:
            unusable |= mask
    return (crowd & ~people) | unusable


def overlay(image, annotations, ignore, min_keypoints=DEFAULT_MIN_KEYPOINTS,
            min_area=DEFAULT_MIN_AREA):
    """Side-by-side picture: annotations (red crowd, green unusable, blue training people,
    keypoints) | the ignored region tinted red. BGR uint8 (H, 2W, 3)."""
    height, width = image.shape[:2]
    left = image.astype(np.float32)
    for ann in annotations:
        mask = ann_to_mask(ann, height, width)
        if ann.get("iscrowd", 0):
            color = (0, 0, 255)
        elif is_valid_person(ann, min_keypoints, min_area):
            color = (255, 0, 0)
        else:
            color = (0, 255, 0)
        left[mask] = 0.3 * left[mask] + 0.7 * np.array(color, np.float32)
    left = left.astype(np.uint8)
    for ann in annotations:
        keypoints = np.asarray(ann.get("keypoints") or [], dtype=np.float64).reshape(-1, 3)
        for x, y, v in keypoints:
            if v > 0:
                color = (255, 0, 255) if v == 2 else (255, 255, 0)
                cv2.circle(left, (int(round(x)), int(round(y))), 3, color, -1)
    right = image.astype(np.float32)
    right[ignore] = 0.3 * right[ignore] + 0.7 * np.array((0, 0, 255), np.float32)
    return np.hstack([left, right.astype(np.uint8)])


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main process like Ctrl-C so that every write in progress is
    cleaned up the same way (exit 143 instead of 130)."""


def _raise_terminated(_signum, _frame):
    raise Terminated()


def _worker_signals():
    """Pool workers: Ctrl-C reaches the whole process group and is the main process's to
    handle (no traceback per worker); SIGTERM (sent by the pool when it stops them) ends them
    at once, and the main process removes what they were writing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def process_image(task, save_dir, image_dir, vis_dir, min_keypoints, min_area):
    """Compute and write the mask (and overlay) of one image; a complete mask already on disk
    is kept (:func:`src.data.mask_files.mask_is_complete`), anything else under its name is
    rewritten.

    Args:
        task: (image_id, height, width, file_name, annotations).

    Returns:
        ``(written, repaired)``: 1/0 each; ``repaired`` when a damaged file was replaced.
    """
    image_id, height, width, file_name, annotations = task
    out_path = mask_path(save_dir, image_id)
    present = os.path.lexists(out_path)
    complete = present and mask_is_complete(out_path, height, width)
    if complete and not vis_dir:
        return 0, 0
    ignore = compute_ignore_mask(annotations, height, width, min_keypoints, min_area)
    written = repaired = 0
    if ignore.any() and not complete:
        write_image(out_path, ignore.astype(np.uint8) * 255)
        written, repaired = 1, int(present)
    elif present and not complete:
        os.remove(out_path)                # a damaged file where this rule puts no mask
        repaired = 1
    if vis_dir:
        image = read_image(os.path.join(image_dir, file_name))
        if image.shape[:2] != (height, width):
            raise ImageReadError(f"{os.path.join(image_dir, file_name)}: size "
                                 f"{image.shape[1]}x{image.shape[0]} differs from the "
                                 f"annotation's {width}x{height}")
        picture = overlay(image, annotations, ignore, min_keypoints, min_area)
        write_image(os.path.join(vis_dir, f"{int(image_id):012d}.png"), picture)
    return written, repaired


def mask_dir_for(image_dir, split):
    """``ignore_mask_<split>`` beside ``image_dir``."""
    parent = os.path.dirname(os.path.normpath(os.path.abspath(image_dir)))
    return os.path.join(parent, f"ignore_mask_{split}")


def _split_tasks(coco, ann_path):
    """One task per image with people, its segmentations checked first (one line naming the
    file and the annotation, before any mask is written)."""
    tasks = []
    for image_id in coco.image_ids_with_people():
        record = coco.images[image_id]
        height, width = image_size(record, ann_path)
        annotations = coco.person_annotations(image_id)
        for ann in annotations:
            try:
                check_segmentation(ann, height, width)
            except AnnotationError as exc:
                raise AnnotationError(f"{ann_path}: {exc}") from None
        tasks.append((image_id, height, width, record.get("file_name", f"{image_id:012d}.jpg"),
                      annotations))
    return tasks


def _remove_leftovers(folders, log):
    """Remove the temporaries of killed runs (or of workers just stopped) from ``folders``."""
    for folder in folders:
        removed = remove_stale_temporaries(folder) if folder else []
        if removed:
            log(f"removed {len(removed)} temporary file(s) of an interrupted run from {folder}")


def generate_split(ann_path, image_dir, split, workers=1, vis_dir=None,
                   min_keypoints=DEFAULT_MIN_KEYPOINTS, min_area=DEFAULT_MIN_AREA,
                   progress=True, log=print):
    """Write the ignore masks of one split.

    Returns:
        (save_dir, number of images with a mask now on disk, number newly written).

    Raises:
        AnnotationError (also :class:`src.data.mask_files.MaskRuleError`), ImageReadError,
        src.runtime.atomic_write.WriteError (a full disk, a read-only folder): one line each;
        KeyboardInterrupt / :class:`Terminated`: after the workers are stopped and their
        temporaries removed.
    """
    coco = load_coco(ann_path)
    if not os.path.isdir(image_dir):
        raise ImageReadError(f"{image_dir}: image folder not found")
    save_dir = check_output_dir(mask_dir_for(image_dir, split), f"{split}_dir")
    if vis_dir == BESIDE_MASKS:
        vis_dir = os.path.join(os.path.dirname(save_dir), BESIDE_MASKS)
    split_vis = check_output_dir(os.path.join(vis_dir, split), "vis") if vis_dir else None
    _remove_leftovers((save_dir, split_vis), log)
    tasks = _split_tasks(coco, ann_path)
    check_rule(save_dir, min_keypoints, min_area, log=log)
    work = partial(process_image, save_dir=save_dir, image_dir=image_dir, vis_dir=split_vis,
                   min_keypoints=min_keypoints, min_area=min_area)
    bar = tqdm(total=len(tasks), desc=f"ignore masks ({split})", disable=not progress,
               unit="img")
    written = repaired = 0
    try:
        if workers > 1 and len(tasks) > 1:
            with Pool(workers, initializer=_worker_signals) as pool:
                for new, fixed in pool.imap_unordered(work, tasks, chunksize=8):
                    written, repaired = written + new, repaired + fixed
                    bar.update()
        else:
            for task in tasks:
                new, fixed = work(task)
                written, repaired = written + new, repaired + fixed
                bar.update()
    except BaseException:
        _remove_leftovers((save_dir, split_vis), lambda line: None)   # stopped workers' files
        raise
    finally:
        bar.close()
    if repaired:
        log(f"{split}: replaced {repaired} damaged mask file(s) (cut, empty or of another size)")
    on_disk = sum(1 for name in os.listdir(save_dir) if name.endswith(".png")
                  and not name.startswith("."))
    return save_dir, on_disk, written


EXAMPLES = """examples:
  python scripts/gen_ignore_mask.py --train_ann coco/annotations/person_keypoints_train2017.json \\
      --train_dir coco/train2017
  python scripts/gen_ignore_mask.py --train_ann TRAIN.json --train_dir coco/train2017 \\
      --val_ann VAL.json --val_dir coco/val2017 --workers 8
  python scripts/gen_ignore_mask.py --val_ann VAL.json --val_dir coco/val2017 --vis True"""


def overlay_folder(text):
    """The ``--vis`` argument: a folder for overlay PNGs, :data:`BESIDE_MASKS` for a
    boolean-like "True" (the reference's flag), or None for no overlays."""
    value = str(text).strip()
    if value.lower() in NO_OVERLAYS:
        return None
    if value.lower() in OVERLAYS_WITHOUT_FOLDER:
        return BESIDE_MASKS
    return value


def build_parser():
    """Command-line options, grouped like the other scripts' --help (the people rule's
    descriptions and defaults from default_config.yaml)."""
    parser = argparse.ArgumentParser(
        prog="gen_ignore_mask.py", description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    inputs = parser.add_argument_group(
        "inputs", "a split's annotations and images go together; give one split or both")
    inputs.add_argument("--train_ann", default="", metavar="FILE",
                        help="training annotations (person_keypoints_train2017.json)")
    inputs.add_argument("--train_dir", default="", metavar="DIR", help="training image folder")
    inputs.add_argument("--val_ann", default="", metavar="FILE",
                        help="validation annotations (person_keypoints_val2017.json)")
    inputs.add_argument("--val_dir", default="", metavar="DIR", help="validation image folder")
    training = parser.add_argument_group("training", "which people are ignored (as train.py)")
    training.add_argument("--min_keypoints", type=int, default=default_config().min_keypoints,
                          metavar="N", help=argparse_help("min_keypoints"))
    training.add_argument("--min_area", type=float, default=default_config().min_area,
                          metavar="X", help=argparse_help("min_area"))
    outputs = parser.add_argument_group("outputs", "masks go to ignore_mask_<split>/ beside "
                                        "the image folder")
    outputs.add_argument("--vis", type=overlay_folder, default=None, metavar="DIR",
                         help="also write annotation/mask overlay PNGs into DIR/<split>/ "
                              f"(True: {BESIDE_MASKS}/<split>/ beside the image folders; False "
                              "or empty: none); default: none")
    outputs.add_argument("--quiet", action="store_true", help="no progress bar (takes no value)")
    device = parser.add_argument_group("device")
    device.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                        help="parallel worker processes; default: min(4, CPU cores)")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    splits = []
    for split, ann, image_dir in (("train", args.train_ann, args.train_dir),
                                  ("val", args.val_ann, args.val_dir)):
        if bool(ann) != bool(image_dir):
            print(f"error: --{split}_ann and --{split}_dir must be given together",
                  file=sys.stderr)
            return 2
        if ann:
            splits.append((split, ann, image_dir))
    if not splits:
        print("error: give --train_ann/--train_dir and/or --val_ann/--val_dir", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        for split, ann, image_dir in splits:
            print(f"{split}: writing ignore masks of {ann}", flush=True)
            save_dir, on_disk, written = generate_split(
                ann, image_dir, split, workers=max(1, args.workers), vis_dir=args.vis,
                min_keypoints=args.min_keypoints, min_area=args.min_area,
                progress=not args.quiet, log=lambda line: print(line, flush=True))
            print(f"{split}: {written} masks written, {on_disk} in {save_dir}", flush=True)
    except OpenPoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("SIGINT", 130)
        print(f"gen_ignore_mask: stopped by {name}; the masks written so far are complete and no "
              "partial file is left: run the same command again to finish", file=sys.stderr)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0

