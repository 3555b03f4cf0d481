"""The MindSpore training dataset of COCO person keypoints (validation reads images directly:
:mod:`src.evaluate.coco_eval`).

:class:`TrainDataParams` says where the data is and how samples are made, once;
:func:`make_pipeline` builds from it the training pipeline: a picklable random-access source
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
from src.data.augment import AugmentParams, augment
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
from src.data.mask_files import check_training_rule
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
    """Training records of all images with at least one training person, by image id.

    Raises:
        src.data.mask_files.MaskRuleError: ``mask_dir`` records another people rule than
        (min_keypoints, min_area).
    """
    if mask_dir and os.path.isdir(mask_dir):
        check_training_rule(mask_dir, min_keypoints, min_area)
    coco = load_coco(json_path)
    records = []
    for image_id in training_image_ids(coco, min_keypoints, min_area):
        people = valid_person_annotations(coco, image_id, min_keypoints, min_area)
        records.append(SampleRecord(
            image_id=image_id, image_path=image_path(coco, image_id, img_path),
            mask_path=mask_path(mask_dir, image_id) if mask_dir else "",
            poses=annotations_to_poses(people, coco.path), size=annotated_size(coco, image_id)))
    return records


@dataclass(frozen=True)
class TrainDataParams:
    """Where the training data is and how its samples are made: the one parameter object of the
    data path (:func:`make_pipeline`, :class:`src.train.data.CocoTrainData`).

    Attributes:
        json_path: COCO person-keypoints JSON; img_path: its image folder; mask_path: the
            ignore-mask folder (``ignore_mask_train``; '' or missing files: nothing ignored).
        batch_size: samples per batch and device (the remainder of an epoch is dropped).
        aug: :class:`src.data.augment.AugmentParams`; ``aug.insize`` is the network input side
            in pixels (a multiple of 8).
        heatmap_sigma, paf_sigma: target widths in input pixels.
        min_keypoints, min_area: which people are trained on (keypoints, area in pixels^2).
        num_workers: Python worker processes (None: the CPU count, at most 8); clamped to the
            CPU count as MindSpore requires.
        python_multiprocessing: workers are processes (True) or threads.
    """

    json_path: str
    img_path: str
    mask_path: str
    batch_size: int
    aug: AugmentParams
    heatmap_sigma: float
    paf_sigma: float
    min_keypoints: int
    min_area: float
    num_workers: int = None
    python_multiprocessing: bool = True

    @classmethod
    def from_config(cls, cfg):
        """The training keys of a configuration: jsonpath_train, imgpath_train, maskpath_train,
        batch_size, the augmentation keys, heatmap_sigma, paf_sigma, min_keypoints, min_area and
        num_parallel_workers (0: automatic)."""
        return cls(str(cfg.jsonpath_train), str(cfg.imgpath_train), str(cfg.maskpath_train),
                   int(cfg.batch_size), AugmentParams.from_config(cfg), float(cfg.heatmap_sigma),
                   float(cfg.paf_sigma), int(cfg.min_keypoints), float(cfg.min_area),
                   int(cfg.num_parallel_workers) or None)


def build_train_records_of(params):
    """:func:`build_train_records` of a :class:`TrainDataParams`."""
    return build_train_records(params.json_path, params.img_path, params.mask_path,
                               params.min_keypoints, params.min_area)


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

    Each item is a tuple:
        image (3, insize, insize) float32 in [-0.5, 0.5];
        pafs (38, s, s) float32; heatmaps (19, s, s) float32;
        ignore_mask (s, s) float32 loss mask, 1 = use, 0 = ignore; s = insize // 8.
    """

    def __init__(self, records, params, heatmap_sigma, paf_sigma, seed=0):
        self.records = list(records)
        if not self.records:
            raise ValueError("no training images (no image has a person with enough keypoints)")
        self.params = params
        self.heatmap_sigma = float(heatmap_sigma)
        self.paf_sigma = float(paf_sigma)
        self.seed = int(seed)

    def __len__(self):
        return len(self.records)

    def load(self, i):
        """Image (H, W, 3) uint8, ignore mask (H, W) uint8 0/1 and poses of record ``i``."""
        record = self.records[i]
        image = read_image(record.image_path, record.size)
        mask = read_ignore_mask(record.mask_path or None, image.shape)
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


def make_pipeline(params, records, rank=0, group_size=1, seed=0, shuffle=True):
    """The training dataset of ``records`` and the sampler that orders it.

    Args:
        params: :class:`TrainDataParams`.
        records: the samples (:func:`build_train_records` of ``params``).
        rank, group_size: this process's shard of ``group_size``.
        seed: base seed of the order and of the augmentation.
        shuffle: shuffle every epoch (seeded).

    Returns:
        ``(dataset, sampler)``: the ``mindspore.dataset`` with columns image (N, 3, insize,
        insize), pafs (N, 38, s, s), heatmaps (N, 19, s, s), ignore_mask (N, s, s), all float32,
        s = insize // 8, in batches of ``params.batch_size`` (remainder dropped); and its
        :class:`EpochShardSampler`, whose ``indices(0)`` is the dataset's sample order.
    """
    check_input_side(params.aug.insize)
    source = TrainSource(records, params.aug, params.heatmap_sigma, params.paf_sigma, seed)
    sampler = EpochShardSampler(len(source), rank, group_size, shuffle, seed)
    workers = _clamp_workers(params.num_workers)
    use_processes = params.python_multiprocessing and workers > 1
    if use_processes:
        # Workers are forked from this process when the dataset is first iterated. A child that
        # inherits OpenCV's thread pool after the parent ran it (validation resizing maps) hangs
        # in its first OpenCV call; with a one-thread pool here the forks are safe.
        cv2.setNumThreads(1)
    dataset = generator_dataset(source, TRAIN_COLUMNS, sampler, num_parallel_workers=workers,
                                python_multiprocessing=use_processes)
    return dataset.batch(batch_size=params.batch_size, drop_remainder=True), sampler


def create_dataset(params, rank=0, group_size=1, seed=0, shuffle=True):
    """The training dataset of :class:`TrainDataParams` (its annotations read here): the dataset
    of :func:`make_pipeline`."""
    check_input_side(params.aug.insize)
    return make_pipeline(params, build_train_records_of(params), rank, group_size, seed, shuffle)[0]


def _clamp_workers(num_workers):
    workers = default_num_workers() if num_workers is None else int(num_workers)
    return max(1, min(workers, os.cpu_count() or 1))
