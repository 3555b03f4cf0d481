"""Training data for the loop: per-epoch batch iterators, in memory or from COCO.

Both adapters give the loop the same interface: ``steps_per_epoch``, ``batches(epoch,
skip_batches)`` yielding ``(image, pafs, heatmaps, ignore_mask)`` numpy batches, and
``batch_images(epoch, index)`` naming the samples of a batch (for error messages). The data of
epoch ``e`` is a pure function of ``(seed, e)`` (:func:`epoch_seed`), so a resumed run sees the
same batches as an uninterrupted one.
"""
import numpy as np

from src.data.coco import AnnotationError
from src.data.pipeline import TrainDataParams, build_train_records_of, make_pipeline
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
    """The COCO training pipeline (:func:`src.data.pipeline.make_pipeline`), one dataset per epoch.

    Epoch ``e`` is built with seed :func:`epoch_seed` ``(seed, e)``, so its order and
    augmentation do not depend on which epochs ran before in this process; on resume the
    consumed batches of the interrupted epoch are skipped (MindSpore still produces them, so
    skipping costs their loading time once).

    Args:
        params: :class:`src.data.pipeline.TrainDataParams` (paths, batch size, augmentation,
            targets, which people, workers).
        rank, group_size: this process's shard of the job.
        seed: run seed.

    Raises:
        TrainError: the annotations give no training image; src.data.coco.AnnotationError: a
        broken annotation file.
    """

    def __init__(self, params, rank=0, group_size=1, seed=0):
        self.params = params
        self.batch_size = int(params.batch_size)
        self.rank, self.group_size = int(rank), int(group_size)
        self.seed = int(seed)
        self._samplers = {}
        try:
            # Read once: every epoch's dataset and batch_images use the same samples.
            self.records = build_train_records_of(params)
            first = self._create(0)
        except AnnotationError:
            raise
        except ValueError as exc:
            raise TrainError(f"{params.json_path}: {exc}") from None
        self.steps_per_epoch = int(first.get_dataset_size())
        self._ready = (0, first)

    @classmethod
    def from_config(cls, cfg, rank=0, group_size=1):
        """The pipeline of a configuration's training keys
        (:meth:`src.data.pipeline.TrainDataParams.from_config`, and ``seed``) for one rank."""
        return cls(TrainDataParams.from_config(cfg), rank, group_size, seed=cfg.seed)

    def batch_images(self, epoch, index):
        """Image files of batch ``index`` (0-based) of ``epoch`` on this rank (for error
        messages), in the order of the sampler that epoch's dataset was built with.

        Raises:
            KeyError: no dataset of ``epoch`` was built in this process.
        """
        order = self._samplers[epoch].indices(0)
        size = self.batch_size
        return [self.records[int(i)].image_path for i in order[index * size:(index + 1) * size]]

    def _create(self, epoch):
        dataset, sampler = make_pipeline(self.params, self.records, self.rank, self.group_size,
                                         seed=epoch_seed(self.seed, epoch))
        self._samplers = {epoch: sampler}   # batch_images asks about the epoch running
        return dataset

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
