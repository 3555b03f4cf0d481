"""Benchmark the training-data pipeline: samples per second per worker.

Usage (from the repository root)::

    .venv/bin/python scripts/benchmark_data.py [--ann JSON --images DIR --masks DIR]
        [--insize 368] [--samples 120] [--repeats 3] [--workers 1,2] [--out result.json]

Defaults to the 4 COCO images of ``../shared/data/coco_sample`` at insize 368, with ignore masks
generated into a temporary folder. It times, in this one run:

* ``reference_loop``: a re-implementation of the reference's per-sample generator (separate
  resize / bicubic rotation / crop / colour / flip on the full image, integer joints, the
  per-person, per-joint target loops) -- the baseline of the speed-up ratio;
* ``ours_single``: :class:`src.data.pipeline.TrainSource` called in this process (one worker);
* ``pipeline``: the MindSpore GeneratorDataset with ``k`` Python worker processes (one worker
  runs in a thread), steady-state rate;
* ``targets``: the vectorised targets against the loops on the same augmented poses (time and
  largest difference).

Each figure is the median over ``--repeats``; the JSON result goes to stdout (and ``--out``).
"""
import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _repo_path import REPO_ROOT as REPO

from src.config import default_config
from src.data.augment import AugmentParams
from src.data.coco import (
    IMREAD_STORED,
    AnnotationError,
    ImageReadError,
    load_coco,
    mask_path,
    read_ignore_mask,
    read_image,
)
from src.data.ignore_mask import compute_ignore_mask
from src.data.loop_targets import loop_heatmaps, loop_loss_mask, loop_pafs
from src.data.mask_files import read_rule
from src.data.pipeline import TRAIN_COLUMNS, TrainSource, build_train_records
from src.data.targets import generate_heatmaps, generate_pafs
from src.runtime.atomic_write import write_image, write_text
from src.skeleton import FLIP_JOINT_PAIRS


def default_shared():
    """``../shared`` beside the repository (or $OPENPOSE_SHARED)."""
    return Path(os.environ.get("OPENPOSE_SHARED", REPO.parent / "shared"))


# ------------------------------------------------------------------------------ baseline
class ReferenceLoopSample:
    """The reference's per-sample work, step by step, for timing.

    Random numbers come from private ``random.Random`` / ``RandomState`` objects (the reference
    used the global ones); everything else follows its algorithm: int32 joints, full-image
    resize, bicubic rotation on a grown canvas, crop by copying, clipped HSV shift, flip by
    swapping joint pairs, a resize to ``insize``, per-person/per-joint target loops, dilation
    and resize of the ignore mask, and the /255 - 0.5 preprocessing.
    """

    def __init__(self, records, params, heatmap_sigma=7.0, paf_sigma=8.0, seed=0):
        self.records = records
        self.params = params
        self.heatmap_sigma = heatmap_sigma
        self.paf_sigma = paf_sigma
        self.py_random = random.Random(seed)
        self.np_random = np.random.RandomState(seed)

    @staticmethod
    def _boxes(poses):
        boxes = []
        for pose in poses:
            labelled = pose[pose[:, 2] > 0]
            boxes.append([labelled[:, 0].min(), labelled[:, 1].min(),
                          labelled[:, 0].max(), labelled[:, 1].max()])
        return np.array(boxes)

    @staticmethod
    def _resize(img, mask, poses, shape):
        height, width = img.shape[:2]
        img = cv2.resize(img, shape)
        mask = cv2.resize(mask.astype(np.uint8), shape).astype(bool)
        poses[:, :, :2] = poses[:, :, :2] * np.array(shape) / np.array((width, height))
        return img, mask, poses

    def _random_resize(self, img, mask, poses):
        p = self.params
        height, width = img.shape[:2]
        boxes = self._boxes(poses)
        sizes = ((boxes[:, 2:] - boxes[:, :2] + 1) ** 2).sum(axis=1) ** 0.5
        low = min(max(p.min_box_size / sizes.min(), p.min_scale), 1)
        high = min(max(p.max_box_size / sizes.max(), 1), p.max_scale)
        scale = float((high - low) * self.py_random.random() + low)
        return self._resize(img, mask, poses, (round(width * scale), round(height * scale)))

    def _random_rotate(self, img, mask, poses):
        height, width = img.shape[:2]
        degree = self.np_random.randn() / 3 * self.params.max_rotate_degree
        rad = degree * math.pi / 180
        center = (width / 2, height / 2)
        matrix = cv2.getRotationMatrix2D(center, degree, 1)
        box = (width * abs(math.cos(rad)) + height * abs(math.sin(rad)),
               width * abs(math.sin(rad)) + height * abs(math.cos(rad)))
        matrix[0, 2] += box[0] / 2 - center[0]
        matrix[1, 2] += box[1] / 2 - center[1]
        size = (int(box[0] + 0.5), int(box[1] + 0.5))
        img = cv2.warpAffine(img, matrix, size, flags=cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=[127.5] * 3)
        mask = cv2.warpAffine(mask.astype(np.uint8) * 255, matrix, size) > 0
        homogeneous = np.ones_like(poses)
        homogeneous[:, :, :2] = poses[:, :, :2]
        rotated = poses.copy()
        rotated[:, :, :2] = np.dot(homogeneous, matrix.T)
        return img, mask, rotated

    def _random_crop(self, img, mask, poses):
        height, width = img.shape[:2]
        insize = self.params.insize
        box = self.py_random.choice(list(self._boxes(poses)))
        box_center = box[:2] + (box[2:] - box[:2]) / 2
        perturb = (self.np_random.rand(2) - 0.5) * 2 * self.params.center_perterb_max
        center = (box_center + perturb + 0.5).astype("i")
        crop_img = np.zeros((insize, insize, 3), np.uint8) + 127.5
        crop_mask = np.zeros((insize, insize), bool)
        offset = (center - (insize - 1) / 2 + 0.5).astype("i")
        offset_end = (center + (insize - 1) / 2 - (width - 1, height - 1) + 0.5).astype("i")
        x1, y1 = np.maximum(offset, 0)
        x2, y2 = np.minimum((center + (insize - 1) / 2 + 0.5).astype("i"),
                            (width - 1, height - 1))
        x_from = -offset[0] if offset[0] < 0 else 0
        y_from = -offset[1] if offset[1] < 0 else 0
        x_to = insize - offset_end[0] - 1 if offset_end[0] >= 0 else insize - 1
        y_to = insize - offset_end[1] - 1 if offset_end[1] >= 0 else insize - 1
        crop_img[y_from:y_to + 1, x_from:x_to + 1] = img[y1:y2 + 1, x1:x2 + 1]
        crop_mask[y_from:y_to + 1, x_from:x_to + 1] = mask[y1:y2 + 1, x1:x2 + 1]
        poses[:, :, :2] -= offset
        return crop_img.astype(np.uint8), crop_mask, poses

    def _distort_color(self, img):
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.int32)
        hsv[:, :, 0] = np.clip(hsv[:, :, 0] - 10 + self.np_random.randint(21), 0, 255)
        hsv[:, :, 1] = np.clip(hsv[:, :, 1] - 40 + self.np_random.randint(81), 0, 255)
        hsv[:, :, 2] = np.clip(hsv[:, :, 2] - 30 + self.np_random.randint(61), 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)

    @staticmethod
    def _flip(img, mask, poses):
        img = cv2.flip(img, 1)
        mask = cv2.flip(mask.astype(np.uint8), 1).astype(bool)
        poses[:, :, 0] = img.shape[1] - 1 - poses[:, :, 0]
        for left, right in FLIP_JOINT_PAIRS:
            poses[:, [left, right]] = poses[:, [right, left]]
        return img, mask, poses

    def __call__(self, index):
        record = self.records[index % len(self.records)]
        img = cv2.imread(record.image_path, IMREAD_STORED)
        mask = read_ignore_mask(record.mask_path or None, img.shape).astype(np.float32)
        poses = record.poses.astype(np.int32)
        img, mask, poses = self._random_resize(img, mask, poses)
        img, mask, poses = self._random_rotate(img, mask, poses)
        img, mask, poses = self._random_crop(img, mask, poses)
        if self.np_random.randint(2):
            img = self._distort_color(img)
        if self.np_random.randint(2):
            img, mask, poses = self._flip(img, mask, poses)
        insize = self.params.insize
        img, mask, poses = self._resize(img, mask, poses, (insize, insize))
        size = insize // 8
        heatmaps = loop_heatmaps(poses, size, size, self.heatmap_sigma)
        pafs = loop_pafs(poses, size, size, self.paf_sigma)
        loss_mask = loop_loss_mask(mask, size, size)
        x = img.astype(np.float32) / 255 - 0.5
        return x.transpose(2, 0, 1), pafs, heatmaps, loss_mask


# ------------------------------------------------------------------------------ timing
def _rate(function, count, start_index=0):
    """(wall-clock samples/s, CPU-time samples/s) of ``count`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(start_index, start_index + count):
        function(index)
    return (count / (time.perf_counter() - wall), count / (time.process_time() - cpu))


def time_in_process(functions, samples, repeats, warmup=4):
    """Median samples/s of each ``function(index)`` over ``repeats`` runs of ``samples`` calls.

    The functions take turns run by run, so that a change of machine load hits them alike.
    Returns one ``(wall, cpu)`` pair per function: samples per wall-clock second and per
    second of this process's CPU time (the latter is less sensitive to other load).
    """
    for function in functions:
        for index in range(warmup):
            function(index)
    rates = [[] for _ in functions]
    for repeat in range(repeats):
        for function, rate in zip(functions, rates):
            rate.append(_rate(function, samples, repeat * samples))
    return [(statistics.median(r[0] for r in rate), statistics.median(r[1] for r in rate))
            for rate in rates]


class _IndexRange:
    """A sampler over ``[start, stop)`` (indices past the source length select later epochs)."""

    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


def time_pipeline(source, workers, samples, repeats, batch_size=4):
    """Median steady-state samples/s of a GeneratorDataset over ``source`` with ``workers``.

    Each repeat builds the pipeline and pulls ``2 * samples`` samples; the rate is taken over
    the second half only, after worker start-up and once MindSpore's prefetch queues (filled
    while the first batch was awaited) have drained.
    """
    import mindspore.dataset as ds

    rates = []
    batches = max(4, 2 * samples // batch_size)   # the timed second half: >= 2 stamps
    for repeat in range(repeats):
        total = batches * batch_size
        first = repeat * total
        dataset = ds.GeneratorDataset(source, TRAIN_COLUMNS,
                                      sampler=_IndexRange(first, first + total),
                                      num_parallel_workers=workers,
                                      python_multiprocessing=workers > 1)
        dataset = dataset.batch(batch_size, drop_remainder=True)
        iterator = dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
        stamps = [time.perf_counter() for _ in iterator]
        half = len(stamps) // 2
        rates.append((len(stamps) - 1 - half) * batch_size / (stamps[-1] - stamps[half]))
        del iterator, dataset
    return statistics.median(rates)


def compare_targets(source, count, heatmap_sigma, paf_sigma):
    """Vectorised vs loop targets on ``count`` augmented samples: max difference and ms each."""
    from src.data.augment import augment
    from src.data.pipeline import sample_rng

    size = source.params.insize // 8
    worst = 0.0
    fast_time = loop_time = 0.0
    for index in range(count):
        i = index % len(source)
        image, mask, poses = source.load(i)
        _, _, poses = augment(image, mask, poses, source.params, sample_rng(0, index, i))
        start = time.perf_counter()
        fast = (generate_heatmaps(poses, size, size, heatmap_sigma),
                generate_pafs(poses, size, size, paf_sigma))
        middle = time.perf_counter()
        slow = (loop_heatmaps(poses, size, size, heatmap_sigma),
                loop_pafs(poses, size, size, paf_sigma))
        loop_time += time.perf_counter() - middle
        fast_time += middle - start
        worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(fast, slow)))
    return {"max_abs_diff": worst, "vectorised_ms": 1e3 * fast_time / count,
            "loop_ms": 1e3 * loop_time / count}


def write_masks(ann_path, folder):
    """Ignore masks of an annotation file into ``folder``; returns how many were written."""
    coco = load_coco(ann_path)
    os.makedirs(folder, exist_ok=True)
    written = 0
    for image_id in coco.image_ids_with_people():
        record = coco.images[image_id]
        ignore = compute_ignore_mask(coco.person_annotations(image_id), int(record["height"]),
                                     int(record["width"]))
        if ignore.any():
            write_image(mask_path(folder, image_id), ignore.astype(np.uint8) * 255)
            written += 1
    return written


def build_parser():
    """Command-line options."""
    sample = default_shared() / "data" / "coco_sample"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ann", default=str(sample / "person_keypoints_sample.json"))
    parser.add_argument("--images", default=str(sample))
    parser.add_argument("--masks", default=None,
                        help="ignore-mask folder (default: generated into a temporary folder; "
                             "'' for none)")
    parser.add_argument("--insize", type=int, default=368)
    parser.add_argument("--samples", type=int, default=120, help="samples per timing run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip_pipeline", action="store_true",
                        help="only the in-process timings")
    parser.add_argument("--out", default="", help="also write the JSON here")
    return parser


def run(args):
    """Run all timings; returns the result dict."""
    cv2.setNumThreads(1)
    cfg = default_config(insize=args.insize)
    params = AugmentParams.from_config(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        masks = args.masks
        if masks is None:
            masks = os.path.join(tmp, "ignore_mask")
            write_masks(args.ann, masks)
        # masks given with --masks are timed with the people rule they were made with
        records = build_train_records(args.ann, args.images, masks, **(read_rule(masks) or {}))
        for record in records:
            read_image(record.image_path)  # fail early with a clear message
        source = TrainSource(records, params, cfg.heatmap_sigma, cfg.paf_sigma, seed=args.seed)
        baseline = ReferenceLoopSample(records, params, cfg.heatmap_sigma, cfg.paf_sigma, seed=args.seed)
        result = {
            "ann": args.ann, "images": len(records), "insize": args.insize,
            "samples_per_run": args.samples, "repeats": args.repeats,
            "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()[0],
        }
        reference_rate, ours_rate = time_in_process([baseline, source.__getitem__],
                                                    args.samples, args.repeats)
        result["reference_loop_samples_per_s"] = reference_rate[0]
        result["ours_single_samples_per_s"] = ours_rate[0]
        result["speedup_single"] = ours_rate[0] / reference_rate[0]
        result["reference_loop_samples_per_cpu_s"] = reference_rate[1]
        result["ours_single_samples_per_cpu_s"] = ours_rate[1]
        result["speedup_single_cpu"] = ours_rate[1] / reference_rate[1]
        result["targets"] = compare_targets(source, min(args.samples, 60), 7.0, 8.0)
        if not args.skip_pipeline:
            pipeline = {}
            for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
                workers = max(1, min(workers, os.cpu_count() or 1))
                rate = time_pipeline(source, workers, args.samples, args.repeats)
                pipeline[f"{workers}w"] = {"samples_per_s": rate,
                                           "samples_per_s_per_worker": rate / workers}
            result["pipeline"] = pipeline
        result["load_average_end"] = os.getloadavg()[0]
    return result


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except (AnnotationError, ImageReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
