"""MindSpore training / validation datasets for COCO person keypoints.

``create_dataset`` builds the training pipeline: a picklable random-access source
(:class:`TrainSource`) that reads an image, its ignore mask and its people, augments them
(:mod:`src.data.augment`) and renders the stride-8 targets (:mod:`src.data.targets`); a
``GeneratorDataset`` with Python multiprocessing workers; and batches with ``drop_remainder``.

Shuffling and sharding are done by :class:`EpochShardSampler` (the reference's
DistributedSampler: each epoch a seeded permutation, padded to a multiple of ``group_size`` and
split ``rank::group_size``). The sampler hands the source ``epoch * len + index``, and every
sample draws its augmentation from its own generator seeded by ``(seed, epoch, index)``, so a
run is reproducible whatever the number of workers.
"""
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from src.codec import check_input_side, normalize_image
from src.compat import generator_dataset
from src.data.augment import augment
from src.data.coco import (
    DEFAULT_MIN_AREA,
    DEFAULT_MIN_KEYPOINTS,
    annotated_size,
    annotations_to_poses,
    image_path,
    load_coco,
    mask_path,
    read_ignore_mask,
    read_image,
    training_image_ids,
    valid_person_annotations,
)
from src.data.targets import generate_targets
from src.parallel.sharding import rank_shard

TRAIN_COLUMNS = ["image", "pafs", "heatmaps", "ignore_mask"]
_SAMPLE_TAG = 2
_ORDER_TAG = 1
_CV2_CONFIGURED_PID = None


def _single_threaded_cv2():
    """Keep OpenCV single-threaded inside each (worker) process; parallelism is per sample."""
    global _CV2_CONFIGURED_PID
    pid = os.getpid()
    if _CV2_CONFIGURED_PID != pid:
        cv2.setNumThreads(1)
        _CV2_CONFIGURED_PID = pid


def default_num_workers():
    """Workers for the data pipeline: the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class SampleRecord:
    """One training image: where it is and its people.

    Attributes:
        image_id: COCO id.
        image_path: image file.
        mask_path: ignore-mask PNG (may not exist: nothing ignored).
        poses: (P, 18, 3) float32 joints of the training people, image pixels.
        size: ``(height, width)`` the annotation gives (None: not given); an image of another
            size is an error naming the file.
    """

    image_id: int
    image_path: str
    mask_path: str
    poses: np.ndarray
    size: tuple = None


def build_train_records(json_path, img_path, mask_dir, min_keypoints=DEFAULT_MIN_KEYPOINTS,
                        min_area=DEFAULT_MIN_AREA):
    """Training records of all images with at least one training person, by image id."""
    coco = load_coco(json_path)
    records = []
    for image_id in training_image_ids(coco, min_keypoints, min_area):
        people = valid_person_annotations(coco, image_id, min_keypoints, min_area)
        records.append(SampleRecord(
            image_id=image_id, image_path=image_path(coco, image_id, img_path),
            mask_path=mask_path(mask_dir, image_id) if mask_dir else "",
            poses=annotations_to_poses(people, coco.path), size=annotated_size(coco, image_id)))
    return records


def sample_rng(seed, epoch, index):
    """The generator of one sample: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([int(seed), _SAMPLE_TAG, int(epoch), int(index)])


class TrainSource:
    """Random-access source of training samples (picklable: plain data only).

    ``source[k]`` with ``k = epoch * len(source) + i`` returns sample ``i`` augmented with the
    generator of ``(seed, epoch, i)``.

    Args:
        records: :class:`SampleRecord` list.
        params: :class:`src.data.augment.AugmentParams` (``params.insize`` is the output side).
        heatmap_sigma, paf_sigma: target widths in input pixels.
        seed: base seed of the augmentation.
        cache_images: keep decoded images in memory (small datasets only).

    Each item is a tuple:
        image (3, insize, insize) float32 in [-0.5, 0.5];
        pafs (38, s, s) float32; heatmaps (19, s, s) float32;
        ignore_mask (s, s) float32 loss mask, 1 = use, 0 = ignore; s = insize // 8.
    """

    def __init__(self, records, params, heatmap_sigma, paf_sigma, seed=0, cache_images=False):
        self.records = list(records)
        if not self.records:
            raise ValueError("no training images (no image has a person with enough keypoints)")
        self.params = params
        self.heatmap_sigma = float(heatmap_sigma)
        self.paf_sigma = float(paf_sigma)
        self.seed = int(seed)
        self.cache_images = cache_images
        self._cache = {}

    def __len__(self):
        return len(self.records)

    def load(self, i):
        """Image (H, W, 3) uint8, ignore mask (H, W) uint8 0/1 and poses of record ``i``."""
        record = self.records[i]
        if self.cache_images and i in self._cache:
            image, mask = self._cache[i]
        else:
            image = read_image(record.image_path, record.size)
            mask = read_ignore_mask(record.mask_path or None, image.shape)
            if self.cache_images:
                self._cache[i] = (image, mask)
        return image, mask, record.poses

    def sample(self, i, epoch=0):
        """Training tuple of record ``i`` in ``epoch`` (see the class docstring)."""
        _single_threaded_cv2()
        image, mask, poses = self.load(i)
        rng = sample_rng(self.seed, epoch, i)
        image, mask, poses = augment(image, mask, poses, self.params, rng)
        pafs, heatmaps, loss_mask = generate_targets(poses, mask, self.params.insize,
                                                     self.heatmap_sigma, self.paf_sigma)
        return normalize_image(image), pafs, heatmaps, loss_mask

    def __getitem__(self, index):
        epoch, i = divmod(int(index), len(self.records))
        return self.sample(i, epoch)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state


class EpochShardSampler:
    """Per-epoch seeded shuffle and rank/group sharding, yielding ``epoch * size + index``.

    Like the reference's DistributedSampler: the permutation is padded by its first indices to a
    multiple of ``group_size`` and rank ``r`` takes positions ``r::group_size``. The epoch
    counter advances when an epoch's iteration actually starts (MindSpore creates a few
    iterators ahead without consuming them).
    """

    def __init__(self, size, rank=0, group_size=1, shuffle=True, seed=0, pad=True,
                 encode_epoch=True):
        if not 0 <= rank < group_size:
            raise ValueError(f"rank {rank} is not in [0, group_size={group_size})")
        self.size = int(size)
        self.rank = int(rank)
        self.group_size = int(group_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.pad = pad
        self.encode_epoch = encode_epoch
        self.epoch = 0

    def indices(self, epoch):
        """The shard's indices (without the epoch offset) for ``epoch``."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, _ORDER_TAG, int(epoch)]).permutation(
                self.size)
        else:
            order = np.arange(self.size)
        if self.pad:
            total = int(math.ceil(self.size / self.group_size)) * self.group_size
            order = np.concatenate([order, order[:total - self.size]]) if total > self.size \
                else order
        return rank_shard(order, self.rank, self.group_size)

    def __len__(self):
        if self.pad:
            return int(math.ceil(self.size / self.group_size))
        return len(range(self.rank, self.size, self.group_size))

    def __iter__(self):
        return self._generate()

    def _generate(self):
        epoch = self.epoch
        self.epoch += 1
        offset = epoch * self.size if self.encode_epoch else 0
        for index in self.indices(epoch):
            yield int(index) + offset


def create_dataset(json_path, img_path, mask_path, batch_size, aug, heatmap_sigma, paf_sigma,
                   min_keypoints, min_area, rank=0, group_size=1, num_workers=None, shuffle=True,
                   seed=0, python_multiprocessing=True, repeat_num=1, cache_images=False,
                   max_rowsize=None, records=None):
    """The training dataset.

    Args:
        json_path: COCO person-keypoints JSON.
        img_path: image folder.
        mask_path: ignore-mask folder (``ignore_mask_train``); '' or missing files: nothing
            ignored.
        batch_size: samples per batch (the remainder of an epoch is dropped).
        aug: :class:`src.data.augment.AugmentParams`; ``aug.insize`` is the network input side
            (a multiple of 8).
        heatmap_sigma, paf_sigma: target widths in input pixels.
        min_keypoints, min_area: which people are trained on.
        rank, group_size: this process's shard of ``group_size``.
        num_workers: Python worker processes (default: CPU count, at most 8); clamped to the
            CPU count as MindSpore requires.
        shuffle: shuffle every epoch (seeded).
        seed: base seed of the order and of the augmentation.
        python_multiprocessing: use processes (True) or threads.
        repeat_num: dataset repeats.
        cache_images: keep decoded images in each worker's memory (small datasets only).
        max_rowsize: MindSpore shared-memory size per row in MB (None: its default).
        records: the samples of :func:`build_train_records` for these paths and people rules,
            when the caller already has them (None: read from ``json_path``).

    Returns:
        ``mindspore.dataset`` with columns image (N, 3, insize, insize), pafs (N, 38, s, s),
        heatmaps (N, 19, s, s), ignore_mask (N, s, s), all float32, s = insize // 8.
    """
    check_input_side(aug.insize)
    if records is None:
        records = build_train_records(json_path, img_path, mask_path, min_keypoints, min_area)
    source = TrainSource(records, aug, heatmap_sigma, paf_sigma, seed, cache_images)
    sampler = EpochShardSampler(len(source), rank, group_size, shuffle, seed)
    workers = _clamp_workers(num_workers)
    use_processes = python_multiprocessing and workers > 1
    if use_processes:
        # Workers are forked from this process when the dataset is first iterated. A child that
        # inherits OpenCV's thread pool after the parent ran it (validation resizing maps) hangs
        # in its first OpenCV call; with a one-thread pool here the forks are safe.
        cv2.setNumThreads(1)
    kwargs = {}
    if max_rowsize is not None:
        kwargs["max_rowsize"] = max_rowsize
    dataset = generator_dataset(source, TRAIN_COLUMNS, sampler,
                                num_parallel_workers=workers,
                                python_multiprocessing=use_processes,
                                **kwargs)
    dataset = dataset.batch(batch_size=batch_size, drop_remainder=True)
    if repeat_num > 1:
        dataset = dataset.repeat(repeat_num)
    return dataset


def _clamp_workers(num_workers):
    workers = default_num_workers() if num_workers is None else int(num_workers)
    return max(1, min(workers, os.cpu_count() or 1))
