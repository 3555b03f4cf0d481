"""Training data for the loop: per-epoch batch iterators, in memory or from COCO.

Both adapters give the loop the same interface: ``steps_per_epoch``, ``batches(epoch,
skip_batches)`` yielding ``(image, pafs, heatmaps, ignore_mask)`` numpy batches, and
``batch_images(epoch, index)`` naming the samples of a batch (for error messages). The data of
epoch ``e`` is a pure function of ``(seed, e)`` (:func:`epoch_seed`), so a resumed run sees the
same batches as an uninterrupted one.
"""
import numpy as np

from src.data.augment import AugmentParams
from src.data.coco import AnnotationError
from src.data.pipeline import EpochShardSampler, build_train_records, create_dataset
from src.skeleton import NUM_HEATMAPS, NUM_PAFS
from src.train.errors import TrainError

#: Characters kept of a data-pipeline error line.
ERROR_LINE_CHARS = 300


def epoch_seed(seed, epoch):
    """The data seed of one epoch: a pure function of the run seed and the epoch index."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0] & 0x7FFFFFFF)


def random_train_batch(batch, insize, seed=0):
    """A fixed random batch for timing (benchmarks, the device check), not for learning.

    Returns float32 ``(image (batch, 3, insize, insize) in [-0.5, 0.5], pafs (batch, 38, s, s) in
    [-0.3, 0.3], heatmaps (batch, 19, s, s) in [0, 1], mask (batch, s, s) of 0/1, 80 % ones)``
    with ``s = insize // 8``.
    """
    rng = np.random.default_rng(seed)
    s = insize // 8
    return (rng.uniform(-0.5, 0.5, (batch, 3, insize, insize)).astype(np.float32),
            rng.uniform(-0.3, 0.3, (batch, NUM_PAFS, s, s)).astype(np.float32),
            rng.uniform(0, 1, (batch, NUM_HEATMAPS, s, s)).astype(np.float32),
            (rng.uniform(0, 1, (batch, s, s)) > 0.2).astype(np.float32))


class ArrayTrainData:
    """In-memory training data (tests, benchmarks): per-epoch seeded shuffle, no augmentation.

    Args:
        images (M, 3, s, s), pafs (M, 38, s/8, s/8), heatmaps (M, 19, s/8, s/8),
        masks (M, s/8, s/8): float32 arrays.
        batch_size: samples per batch (remainder dropped).
        shuffle: permute every epoch with :func:`epoch_seed`.
        seed: run seed.
    """

    def __init__(self, images, pafs, heatmaps, masks, batch_size, shuffle=True, seed=0):
        self.arrays = tuple(np.ascontiguousarray(a, dtype=np.float32)
                            for a in (images, pafs, heatmaps, masks))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.steps_per_epoch = len(self.arrays[0]) // self.batch_size

    def order(self, epoch):
        """Sample order of ``epoch``."""
        count = len(self.arrays[0])
        if not self.shuffle:
            return np.arange(count)
        return np.random.default_rng(epoch_seed(self.seed, epoch)).permutation(count)

    def batch_images(self, epoch, index):
        """Names of the samples in batch ``index`` (0-based) of ``epoch`` (for error messages)."""
        rows = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        return [f"sample {int(row)}" for row in rows]

    def batches(self, epoch, skip_batches=0):
        """Yield ``(image, pafs, heatmaps, ignore_mask)`` batches of ``epoch`` from ``skip_batches``."""
        order = self.order(epoch)
        for index in range(int(skip_batches), self.steps_per_epoch):
            rows = order[index * self.batch_size:(index + 1) * self.batch_size]
            yield tuple(a[rows] for a in self.arrays)


def pipeline_error_line(exc):
    """The most telling line of a MindSpore data-pipeline error (the worker's own exception)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line and not line.startswith(("File ", "Traceback", "[ERROR]")):
            return line[:ERROR_LINE_CHARS]
    return lines[0][:ERROR_LINE_CHARS] if lines else type(exc).__name__


class CocoTrainData:
    """The COCO training pipeline (:func:`src.data.pipeline.create_dataset`), one dataset per epoch.

    Epoch ``e`` is built with seed :func:`epoch_seed` ``(seed, e)``, so its order and
    augmentation do not depend on which epochs ran before in this process; on resume the
    consumed batches of the interrupted epoch are skipped (MindSpore still produces them, so
    skipping costs their loading time once).

    Args:
        json_path: COCO person-keypoints JSON; img_path: its image folder; mask_path: the
            ignore-mask folder ('' for none).
        batch_size: samples per batch and device.
        aug: :class:`src.data.augment.AugmentParams`; ``aug.insize`` is the network input side
            in pixels (a multiple of 8).
        heatmap_sigma, paf_sigma: target widths in input pixels.
        min_keypoints, min_area: which people are trained on (keypoints, area in pixels^2).
        rank, group_size: this process's shard of the job.
        num_workers: data worker processes (None: automatic).
        seed: run seed.

    Raises:
        TrainError: the annotations give no training image; src.data.coco.AnnotationError: a
        broken annotation file.
    """

    def __init__(self, json_path, img_path, mask_path, batch_size, aug, heatmap_sigma, paf_sigma,
                 min_keypoints, min_area, rank=0, group_size=1, num_workers=None, seed=0):
        self.json_path, self.img_path, self.mask_path = str(json_path), str(img_path), str(mask_path)
        self.batch_size = int(batch_size)
        self.aug = aug
        self.heatmap_sigma, self.paf_sigma = float(heatmap_sigma), float(paf_sigma)
        self.min_keypoints, self.min_area = int(min_keypoints), min_area
        self.rank, self.group_size = int(rank), int(group_size)
        self.num_workers = num_workers
        self.seed = int(seed)
        try:
            # Read once: every epoch's dataset and batch_images use the same samples.
            self.records = build_train_records(self.json_path, self.img_path, self.mask_path,
                                               self.min_keypoints, self.min_area)
            first = self._create(0)
        except AnnotationError:
            raise
        except ValueError as exc:
            raise TrainError(f"{json_path}: {exc}") from None
        self.steps_per_epoch = int(first.get_dataset_size())
        self._ready = (0, first)

    @classmethod
    def from_config(cls, cfg, rank=0, group_size=1):
        """The pipeline of a configuration's training keys (jsonpath_train, imgpath_train,
        maskpath_train, batch_size, the augmentation keys, heatmap_sigma, paf_sigma,
        min_keypoints, min_area, num_parallel_workers, seed) for one rank."""
        return cls(cfg.jsonpath_train, cfg.imgpath_train, cfg.maskpath_train, cfg.batch_size,
                   aug=AugmentParams.from_config(cfg), heatmap_sigma=cfg.heatmap_sigma,
                   paf_sigma=cfg.paf_sigma, min_keypoints=cfg.min_keypoints,
                   min_area=int(cfg.min_area), rank=rank, group_size=group_size,
                   num_workers=int(cfg.num_parallel_workers) or None, seed=cfg.seed)

    def batch_images(self, epoch, index):
        """Image files of batch ``index`` (0-based) of ``epoch`` on this rank (for error
        messages): the sampler's order of that epoch."""
        records = self.records
        order = EpochShardSampler(len(records), self.rank, self.group_size, True,
                                  epoch_seed(self.seed, epoch)).indices(0)
        size = self.batch_size
        return [records[int(i)].image_path for i in order[index * size:(index + 1) * size]]

    def _create(self, epoch):
        return create_dataset(self.json_path, self.img_path, self.mask_path, self.batch_size,
                              aug=self.aug, heatmap_sigma=self.heatmap_sigma,
                              paf_sigma=self.paf_sigma, min_keypoints=self.min_keypoints,
                              min_area=self.min_area, rank=self.rank, group_size=self.group_size,
                              num_workers=self.num_workers, shuffle=True,
                              seed=epoch_seed(self.seed, epoch), records=self.records)

    def batches(self, epoch, skip_batches=0):
        """Yield ``(image, pafs, heatmaps, ignore_mask)`` numpy batches of ``epoch``."""
        if self._ready is not None and self._ready[0] == epoch:
            dataset = self._ready[1]
        else:
            dataset = self._create(epoch)
        self._ready = None
        if skip_batches:
            dataset = dataset.skip(int(skip_batches))
        iterator = dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
        try:
            for row in iterator:
                yield tuple(row)
        except RuntimeError as exc:
            raise TrainError(f"data pipeline failed in epoch {epoch + 1}: {pipeline_error_line(exc)}") \
                from None
        finally:
            stop = getattr(iterator, "stop", None)
            if callable(stop):
                stop()
