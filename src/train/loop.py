"""The training run behind train.py: settings, data per epoch, the loop, checkpoints, resume.

The loop is plain Python over per-epoch batch iterators (no ``Model.train``):

* every step runs :class:`src.train.train_step.OpenPoseTrainStep` and checks the loss is finite;
* every ``log_interval`` steps one line with the mean loss, the per-stage PAF/heatmap terms, the
  stage learning rate and images/s; a tqdm bar per epoch;
* every ``ckpt_interval`` steps, and once at the end, a training checkpoint
  (:class:`src.train.checkpoint_manager.CheckpointManager`);
* ``resume`` continues from a training checkpoint (weights, optimizer state, global step); the
  data of epoch ``e`` is a pure function of ``(seed, e)`` (see :func:`epoch_seed`) and the
  batches already consumed in the interrupted epoch are skipped, so a resumed run sees the same
  batches as an uninterrupted one.

Multi-device runs (``group_size > 1``) take the reference's ``*_NP`` settings;
:func:`distributed_setup` (train.py) starts the communication and the data-parallel context (see
:mod:`src.parallel.distributed`). Every rank starts from the same seed (equal initial weights), reads its
own shard of each epoch and logs its own lines; only rank 0 writes checkpoints, into
``<save_model_path>/ckpt_0/``, and on resume every rank loads rank 0's checkpoint (a shared
folder on multi-node runs), after checking that all ranks resume from the same step.

Debugging aid: with the environment variable ``OPENPOSE_DUMP_PARAMS=DIR`` every rank writes its
final network parameters to ``DIR/params_rank<r>.npz`` (used by the distributed-training tests).
"""
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.train.checkpoint_manager import (CheckpointManager, LossMeter, NonFiniteLossError, TrainError,
                           check_finite_loss, format_report, restore_training_state)
from src.data.coco import DEFAULT_MIN_AREA, DEFAULT_MIN_KEYPOINTS
from src.config import parse_int_list
from src.train.lr_schedule import build_lr_schedules
from src.train.metrics_log import METRICS_NAME, MetricsLog

NO_PATH = ("", "none", "None", "null")
#: Seconds between progress-bar refreshes when stderr is a file or pipe (logs stay short).
BAR_INTERVAL_LOGGED = 30.0
#: Environment variable: folder where every rank dumps its final parameters (tests, debugging).
ENV_DUMP_PARAMS = "OPENPOSE_DUMP_PARAMS"
#: The rank whose checkpoints are written and resumed from (the reference's ``ckpt_0``).
CHECKPOINT_RANK = 0
#: Steps profiled with enable_profiling.
PROFILE_STEPS = 10


def epoch_seed(seed, epoch):
    """The data seed of one epoch: a pure function of the run seed and the epoch index."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class TrainSettings:
    """Everything the loop needs, resolved from the configuration (see default_config.yaml)."""

    save_model_path: str = "./checkpoint/"
    rank: int = 0
    group_size: int = 1
    batch_size: int = 10
    max_epoch: int = 60
    lr: float = 1e-4
    lr_gamma: float = 0.1
    lr_steps: tuple = (100000, 200000, 250000)
    lr_type: str = "default"
    warmup_epoch: int = 5
    optimizer: str = "Adam"
    group_params: bool = True
    train_type: str = "fix_loss_scale"
    loss_scale: float = 16384.0
    clip_type: int = 1
    clip_value: float = 10.0
    unscale_before_clip: bool = False
    log_interval: int = 100
    ckpt_interval: int = 5304
    keep_checkpoint_max: int = 5
    max_train_steps: int = 0
    resume: str = ""
    load_pretrain: bool = False
    pretrained_model_path: str = ""
    vgg_path: str = ""
    vgg_with_bn: bool = False
    width_mult: float = 1.0
    num_stages: int = 6
    amp_level: str = "O0"
    device_target: str = "CPU"
    seed: int = 1
    progress: bool = True
    enable_profiling: bool = False


def settings_from_config(cfg, rank=0, group_size=1, device_target="CPU"):
    """Resolve a :class:`src.config.Config` into :class:`TrainSettings`.

    With ``group_size > 1`` the reference's multi-card values apply: ``max_epoch_train_NP``,
    ``loss_scale / 2``, ``lr_steps_NP``, ``train_type_NP``, ``optimizer_NP``, ``group_params_NP``.
    """
    multi = int(group_size) > 1
    vgg_path = "" if str(cfg.vgg_path) in NO_PATH else str(cfg.vgg_path)
    return TrainSettings(
        save_model_path=str(cfg.save_model_path), rank=int(rank), group_size=int(group_size),
        batch_size=int(cfg.batch_size),
        max_epoch=int(cfg.max_epoch_train_NP if multi else cfg.max_epoch_train),
        lr=float(cfg.lr), lr_gamma=float(cfg.lr_gamma),
        lr_steps=tuple(parse_int_list(cfg.lr_steps_NP if multi else cfg.lr_steps, "lr_steps")),
        lr_type=str(cfg.lr_type), warmup_epoch=int(cfg.warmup_epoch),
        optimizer=str(cfg.optimizer_NP if multi else cfg.optimizer),
        group_params=bool(cfg.group_params_NP if multi else cfg.group_params),
        train_type=str(cfg.train_type_NP if multi else cfg.train_type),
        loss_scale=float(cfg.loss_scale) / (2.0 if multi else 1.0),
        clip_type=int(cfg.GRADIENT_CLIP_TYPE), clip_value=float(cfg.GRADIENT_CLIP_VALUE),
        unscale_before_clip=bool(cfg.unscale_before_clip), log_interval=int(cfg.log_interval),
        ckpt_interval=int(cfg.ckpt_interval), keep_checkpoint_max=int(cfg.keep_checkpoint_max),
        max_train_steps=int(cfg.max_train_steps), resume=str(cfg.resume),
        load_pretrain=bool(cfg.load_pretrain), pretrained_model_path=str(cfg.pretrained_model_path),
        vgg_path=vgg_path, vgg_with_bn=bool(cfg.vgg_with_bn),
        width_mult=float(getattr(cfg, "width_mult", 1.0)), num_stages=int(getattr(cfg, "num_stages", 6)),
        amp_level=str(cfg.amp_level),
        device_target=str(device_target), seed=int(cfg.seed),
        enable_profiling=bool(cfg.enable_profiling))


def check_train_inputs(cfg):
    """Check the paths a training run needs before anything heavy starts.

    Raises:
        TrainError: naming the first missing path; src.runtime.output_checks.OutputError:
        save_model_path cannot be written (an existing file, a read-only folder).
    """
    checks = [("imgpath_train", cfg.imgpath_train, "dir"), ("jsonpath_train", cfg.jsonpath_train, "file"),
              ("maskpath_train", cfg.maskpath_train, "dir")]
    if str(cfg.vgg_path) not in NO_PATH:
        checks.append(("vgg_path", cfg.vgg_path, "file"))
    if cfg.load_pretrain:
        checks.append(("pretrained_model_path", cfg.pretrained_model_path, "file"))
    if cfg.resume and cfg.resume != "auto":
        checks.append(("resume", cfg.resume, "file"))
    if int(cfg.val_interval) > 0:
        checks += [("imgpath_val", cfg.imgpath_val, "dir"), ("ann", cfg.ann, "file")]
    for key, value, kind in checks:
        if not str(value):
            raise TrainError(f"--{key} is not set")
        ok = os.path.isdir(value) if kind == "dir" else os.path.isfile(value)
        if not ok:
            what = "folder" if kind == "dir" else "file"
            raise TrainError(f"{value}: no such {what} (--{key})")
    from src.runtime.output_checks import check_output_dir  # pylint: disable=import-outside-toplevel
    check_output_dir(cfg.save_model_path, "save_model_path")


# ----------------------------------------------------------------------------------------------
# data


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
            return line[:300]
    return lines[0][:300] if lines else type(exc).__name__


class CocoTrainData:
    """The COCO training pipeline (:func:`src.data.pipeline.create_dataset`), one dataset per epoch.

    Epoch ``e`` is built with seed :func:`epoch_seed` ``(seed, e)``, so its order and
    augmentation do not depend on which epochs ran before in this process; on resume the
    consumed batches of the interrupted epoch are skipped (MindSpore still produces them, so
    skipping costs their loading time once).
    """

    def __init__(self, json_path, img_path, mask_path, batch_size, insize=368, rank=0,
                 group_size=1, num_workers=None, seed=0, **dataset_kwargs):
        self.kwargs = dict(json_path=json_path, img_path=img_path, mask_path=mask_path,
                           batch_size=int(batch_size), rank=int(rank), group_size=int(group_size),
                           insize=int(insize), num_workers=num_workers, shuffle=True,
                           **dataset_kwargs)
        self.seed = int(seed)
        try:
            first = self._create(0)
        except ValueError as exc:
            from src.data.coco import AnnotationError  # pylint: disable=import-outside-toplevel
            if isinstance(exc, AnnotationError):
                raise
            raise TrainError(f"{json_path}: {exc}") from None
        self.steps_per_epoch = int(first.get_dataset_size())
        self._ready = (0, first)

    def batch_images(self, epoch, index):
        """Image files of batch ``index`` (0-based) of ``epoch`` on this rank (for error
        messages): the sampler's order of that epoch, recomputed from the annotations."""
        # pylint: disable-next=import-outside-toplevel
        from src.data.pipeline import EpochShardSampler, build_train_records
        kwargs = self.kwargs
        records = build_train_records(kwargs["json_path"], kwargs["img_path"], kwargs["mask_path"],
                                      kwargs.get("min_keypoints", DEFAULT_MIN_KEYPOINTS),
                                      kwargs.get("min_area", DEFAULT_MIN_AREA))
        order = EpochShardSampler(len(records), kwargs["rank"], kwargs["group_size"], True,
                                  epoch_seed(self.seed, epoch)).indices(0)
        size = kwargs["batch_size"]
        return [records[int(i)].image_path for i in order[index * size:(index + 1) * size]]

    def _create(self, epoch):
        from src.data.pipeline import create_dataset  # pylint: disable=import-outside-toplevel
        return create_dataset(seed=epoch_seed(self.seed, epoch), **self.kwargs)

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


# ----------------------------------------------------------------------------------------------
# the run


@dataclass
class TrainResult:
    """What a run did."""

    global_step: int
    epoch: int
    last_loss: float
    last_checkpoint: str
    resumed_from: str = ""
    steps_run: int = 0
    network: object = field(default=None, repr=False, compare=False)


def _record_spec(settings, network):
    """What the checkpoints record: the settings' network, or the shape of a given OpenPoseNet
    (None for any other network, e.g. a test's tiny one)."""
    from src.model.network_spec import NetworkSpec  # pylint: disable=import-outside-toplevel
    return NetworkSpec.from_config(settings) if network is None else NetworkSpec.of_network(network)


def adopt_resume_network(settings, cfg, log=print):
    """Settings whose network is the one the resume checkpoint holds (its record, else its shapes).

    A network key set explicitly in ``cfg`` that contradicts the checkpoint is an error.

    Raises:
        CheckpointError / TrainError: unreadable checkpoint, contradicting flag, missing path.
    """
    from dataclasses import replace  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from src.model.checkpoint import read_checkpoint
    from src.model.network_spec import NetworkSpec, checkpoint_spec  # pylint: disable=import-outside-toplevel
    manager = CheckpointManager(settings.save_model_path, CHECKPOINT_RANK, settings.keep_checkpoint_max)
    path = manager.resolve_resume(settings.resume)
    if path is None:
        return settings
    spec = checkpoint_spec(read_checkpoint(path), str(path), cfg)
    if spec != NetworkSpec.from_config(settings):
        log(f"resume: {path} holds {spec.describe()}; building that network")
    return replace(settings, vgg_with_bn=spec.vgg_with_bn, width_mult=spec.width_mult,
                   num_stages=spec.num_stages)


def _prepare_network(settings, network, log, resuming):
    """Build the network (or take the given one), load VGG/pretrained weights, apply AMP."""
    from src.model.checkpoint import load_vgg_weights, load_weights  # pylint: disable=import-outside-toplevel
    if network is None:
        from src.model.network import OpenPoseNet  # pylint: disable=import-outside-toplevel
        try:
            network = OpenPoseNet(vgg_with_bn=settings.vgg_with_bn, width_mult=settings.width_mult,
                                  num_stages=settings.num_stages)
        except ValueError as exc:
            raise TrainError(str(exc)) from None
    if resuming:
        log("resuming: VGG and pretrained weights come from the training checkpoint")
    else:
        if settings.vgg_path:
            log("VGG backbone: " + load_vgg_weights(network, settings.vgg_path).summary(detail=True))
        else:
            log("no vgg_path: the VGG layers start from random weights")
        if settings.load_pretrain:
            report = load_weights(network, settings.pretrained_model_path)
            log("load pretrained model (partial loading allowed): " + report.summary(detail=True))
    if settings.amp_level != "O0":
        if settings.device_target == "CPU":
            raise TrainError(f"amp_level {settings.amp_level} needs a GPU or Ascend device; use O0 on CPU")
        import mindspore  # pylint: disable=import-outside-toplevel
        network = mindspore.amp.auto_mixed_precision(network, settings.amp_level)
    return network


class _StepProfiler:
    """MindSpore's profiler over the first ``PROFILE_STEPS`` steps (``enable_profiling``)."""

    def __init__(self, settings, log):
        self.log = log
        self.profiler = None
        if not settings.enable_profiling:
            return
        import mindspore  # pylint: disable=import-outside-toplevel
        self.path = Path(settings.save_model_path) / "profiler"
        log(f"profiling the first {PROFILE_STEPS} steps into {self.path}")
        self.profiler = mindspore.Profiler(output_path=str(self.path))

    def step_done(self, steps_run):
        """Stop after ``PROFILE_STEPS`` steps."""
        if self.profiler is not None and steps_run >= PROFILE_STEPS:
            self.finish()

    def finish(self):
        """Stop and write the analysis (once)."""
        if self.profiler is None:
            return
        profiler, self.profiler = self.profiler, None
        try:
            profiler.stop()
            profiler.analyse()
            self.log(f"profile written to {self.path}")
        except Exception as exc:  # noqa: BLE001 - profiling must not end a training run
            self.log(f"warning: profiling failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")


def log_first_step(log, seconds, loss):
    """Report the first step apart: it includes the graph compile (not in the img/s figures)."""
    log(f"first step done in {seconds:.1f} s (graph compile and data start-up included), loss {loss:.6f}")


def _as_tensors(batch):
    import mindspore  # pylint: disable=import-outside-toplevel
    return tuple(mindspore.Tensor(np.asarray(a, dtype=np.float32)) for a in batch)


def check_ranks_agree(values, what):
    """Raise :class:`TrainError` unless every rank reported the same value.

    Args:
        values: one value per rank, in rank order (from an all-gather).
        what: what the values are, for the message.
    """
    values = list(values)
    if any(value != values[0] for value in values[1:]):
        listed = ", ".join(f"rank {rank}: {value}" for rank, value in enumerate(values))
        raise TrainError(f"the ranks disagree on {what} ({listed}); is save_model_path a folder "
                         "every rank sees?")


def run_training(settings, data, network=None, log=print, all_gather=None, step_callback=None,
                 validator=None):
    """Train ``network`` on ``data`` as ``settings`` say.

    Args:
        settings: :class:`TrainSettings`. With ``group_size > 1`` the data-parallel context must
            already be set (:func:`distributed_setup`); only rank 0 writes checkpoints.
        data: an object with ``steps_per_epoch`` and ``batches(epoch, skip_batches)``
            (:class:`CocoTrainData`, :class:`ArrayTrainData`); a rank's own shard.
        network: the network to train (default: a new ``OpenPoseNet``); anything with
            OpenPoseNet's parameter names and outputs works.
        log: function taking one line of text.
        all_gather: distributed runs: function mapping this rank's picklable value to the list
            of every rank's value (:func:`src.parallel.distributed.all_gather_objects`); used to check
            that all ranks resume from the same step. None: no check.
        step_callback: called as ``step_callback(global_step, loss)`` after every step
            (``loss`` the step's unscaled float loss), or None.
        validator: a :class:`src.train.validation.Validator` run after every
            ``val_interval`` epochs and at the end, or None.

    Returns:
        :class:`TrainResult` (its ``network`` is the trained network).

    Raises:
        TrainError: bad settings, an unusable resume checkpoint, ranks that disagree on where
        to resume, or a NaN/Inf loss; src.train.interrupts.TrainInterrupted: SIGINT / SIGTERM
        (single-process runs) ended the run after the current step and a checkpoint.
    """
    from src.train.interrupts import StopRequests  # pylint: disable=import-outside-toplevel
    # distributed ranks would stop at different steps and wait on each other: launcher's job
    with StopRequests(enabled=settings.group_size == 1) as stop:
        return _train_loop(settings, data, network, log, all_gather, step_callback, validator, stop)


def _train_loop(settings, data, network, log, all_gather, step_callback, validator, stop):
    """The body of :func:`run_training`; ``stop`` is its :class:`src.train.interrupts.StopRequests`."""
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    from src.train.optimizer import adam_epsilon, build_optimizer  # pylint: disable=import-outside-toplevel
    from src.train.train_step import build_train_step  # pylint: disable=import-outside-toplevel

    def say(line):
        """``log`` with the progress bar cleared around the line (both may share a terminal)."""
        with tqdm.external_write_mode(file=sys.stdout):
            log(line)

    steps_per_epoch = int(data.steps_per_epoch)
    if steps_per_epoch < 1:
        raise TrainError(f"the dataset has fewer images than one batch of {settings.batch_size} "
                         f"(per device, {settings.group_size} devices)")
    total_steps = steps_per_epoch * int(settings.max_epoch)
    stop_step = min(total_steps, settings.max_train_steps) if settings.max_train_steps > 0 else total_steps
    # one checkpoint folder for the job: rank 0 writes it, every rank resumes from it
    manager = CheckpointManager(settings.save_model_path, CHECKPOINT_RANK, settings.keep_checkpoint_max)
    writes_checkpoints = settings.rank == CHECKPOINT_RANK
    resume_path = manager.resolve_resume(settings.resume)
    if writes_checkpoints:
        _remove_stale_temporaries(manager.directory, log)
    if settings.resume == "auto" and resume_path is None:
        log(f"resume auto: no checkpoint in {manager.directory}, starting from scratch")
    if settings.resume and all_gather is not None and settings.group_size > 1:
        check_ranks_agree(all_gather(resume_path.name if resume_path is not None else None),
                          "the checkpoint to resume from")

    manager.spec = _record_spec(settings, network)
    network = _prepare_network(settings, network, log, resume_path is not None)
    schedules = build_lr_schedules(settings.lr * settings.group_size, settings.lr_gamma,
                                   steps_per_epoch, settings.max_epoch, settings.lr_steps,
                                   settings.group_size, settings.lr_type, settings.warmup_epoch)
    try:
        optimizer = build_optimizer(network.trainable_params(), schedules, settings.optimizer,
                                    settings.group_params,
                                    eps=adam_epsilon(settings.train_type, settings.loss_scale))
        step_cell = build_train_step(network, optimizer, settings.train_type, settings.loss_scale,
                                     settings.clip_type, settings.clip_value,
                                     settings.unscale_before_clip)
    except ValueError as exc:
        raise TrainError(str(exc)) from None

    global_step = 0
    if resume_path is not None:
        position = restore_training_state(resume_path, network, optimizer, steps_per_epoch)
        global_step = position.global_step
        log(f"resumed from {resume_path} at global step {global_step} "
            f"(epoch {position.epoch + 1}, {position.step_in_epoch} batches into it)")
        if global_step > total_steps:
            raise TrainError(f"{resume_path}: global step {global_step} is past the end of this run "
                             f"({total_steps} steps = {settings.max_epoch} epochs x {steps_per_epoch})")

    log(f"steps per epoch: {steps_per_epoch}, epochs: {settings.max_epoch}, total steps: {total_steps}"
        + (f", stopping at step {stop_step} (max_train_steps)" if stop_step < total_steps else ""))
    log(f"train type {settings.train_type}, optimizer {settings.optimizer} "
        f"(group params {settings.group_params}), loss scale {settings.loss_scale:g}, "
        f"batch {settings.batch_size} x {settings.group_size} device(s)")
    log(f"checkpoints: {manager.directory}" + ("" if writes_checkpoints else
                                                 f" (written by rank {CHECKPOINT_RANK})"))

    images_per_step = settings.batch_size * settings.group_size
    # distributed: no bars in the ranks' merged logs; rank 0 shows one on a terminal
    show_bar = settings.progress and (settings.group_size == 1
                                      or (settings.rank == 0 and sys.stderr.isatty()))
    meter = LossMeter()
    metrics_log = MetricsLog(Path(settings.save_model_path) / METRICS_NAME if writes_checkpoints else None)
    last_validated = -1

    def validate():
        nonlocal last_validated
        epoch_number = -(-global_step // steps_per_epoch)      # 1-based epoch of the last step
        metrics = validator.run(network, global_step, epoch_number, log=say)
        step_cell.set_train(True)
        metrics_log.write("val", step=global_step, epoch=epoch_number, **metrics)
        last_validated = global_step

    last_loss = float("nan")
    last_saved_step = global_step if resume_path is not None else -1
    last_checkpoint = str(resume_path) if resume_path is not None else ""
    steps_run = 0
    profiler = _StepProfiler(settings, log)
    run_started = time.perf_counter()
    start_epoch = global_step // steps_per_epoch
    for epoch in range(start_epoch, settings.max_epoch):
        if global_step >= stop_step:
            break
        skip = global_step - epoch * steps_per_epoch
        bar = tqdm(total=steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{settings.max_epoch}",
                   disable=not show_bar, file=sys.stderr, dynamic_ncols=True, leave=False,
                   mininterval=0.1 if sys.stderr.isatty() else BAR_INTERVAL_LOGGED)
        batches = data.batches(epoch, skip)
        try:
            for batch in batches:
                loss, paf_losses, heatmap_losses = step_cell(*_as_tensors(batch))
                last_loss = float(loss.asnumpy())
                global_step += 1
                steps_run += 1
                step_in_epoch = global_step - epoch * steps_per_epoch
                check_finite_loss(last_loss, epoch, step_in_epoch, global_step,
                                  batch_images=lambda: data.batch_images(epoch, step_in_epoch - 1))
                meter.add(last_loss, paf_losses.asnumpy(), heatmap_losses.asnumpy())
                if step_callback is not None:
                    step_callback(global_step, last_loss)
                if steps_run == 1:
                    log_first_step(say, time.perf_counter() - run_started, last_loss)
                    meter.restart_clock()
                profiler.step_done(steps_run)
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", refresh=False)
                if settings.log_interval > 0 and global_step % settings.log_interval == 0:
                    lr = float(schedules.stage[global_step - 1])
                    report = meter.report(images_per_step)
                    say(format_report(report, epoch, step_in_epoch, steps_per_epoch, global_step, lr))
                    metrics_log.write("train", step=global_step, epoch=epoch + 1, loss=report["loss"],
                                      paf=report["paf"], heatmap=report["heatmap"], lr=lr,
                                      images_per_s=report["images_per_s"])
                if (writes_checkpoints and settings.ckpt_interval > 0
                        and global_step % settings.ckpt_interval == 0):
                    last_checkpoint = manager.save(network, optimizer, global_step, steps_per_epoch,
                                                   settings.loss_scale)
                    last_saved_step = global_step
                stop.rearm()
                if global_step >= stop_step or stop.requested:
                    break
        except TrainError as exc:
            if not stop.requested or isinstance(exc, NonFiniteLossError):
                raise       # (a pipeline whose workers got the signal too ends like this)
        finally:
            close = getattr(batches, "close", None)
            if callable(close):
                close()
            bar.close()
        if stop.requested:
            break
        epoch_done = global_step == (epoch + 1) * steps_per_epoch
        if validator is not None and epoch_done and steps_run and validator.due(epoch + 1, settings.max_epoch):
            validate()
    profiler.finish()
    if validator is not None and steps_run and last_validated != global_step and not stop.requested:
        validate()
    if writes_checkpoints and global_step != last_saved_step and steps_run > 0:
        last_checkpoint = manager.save(network, optimizer, global_step, steps_per_epoch,
                                       settings.loss_scale)
    if stop.requested:
        from src.train.interrupts import interrupted_error  # pylint: disable=import-outside-toplevel
        raise interrupted_error(stop, global_step, last_checkpoint if writes_checkpoints else "")
    if steps_run:
        saved = f"last checkpoint {last_checkpoint}" if writes_checkpoints else \
            f"checkpoints by rank {CHECKPOINT_RANK}"
        log(f"finished at global step {global_step}, last loss {last_loss:.6f}; {saved}")
    else:
        log(f"nothing to do: the run is already at global step {global_step} of {stop_step}")
    return TrainResult(global_step=global_step, epoch=global_step // steps_per_epoch,
                       last_loss=last_loss, last_checkpoint=last_checkpoint,
                       resumed_from=str(resume_path or ""), steps_run=steps_run,
                       network=network)


def _remove_stale_temporaries(directory, log):
    """Delete checkpoint temporaries that killed runs left in ``directory``; log what went."""
    # pylint: disable-next=import-outside-toplevel
    from src.model.checkpoint_files import remove_stale_temporaries
    from src.runtime.output_checks import format_bytes  # pylint: disable=import-outside-toplevel
    removed = remove_stale_temporaries(directory)
    if removed:
        log(f"removed {len(removed)} temporary checkpoint file(s) of earlier runs from {directory} "
            f"({format_bytes(sum(size for _, size in removed))})")


def single_process(device_target):  # pylint: disable=unused-argument
    """Parallel set-up of a single-process run: ``(rank, group_size) = (0, 1)``."""
    return 0, 1


def distributed_setup(device_target):
    """Parallel set-up of train.py: join the launch's cluster, if any (see :mod:`src.parallel.distributed`).

    Single process: nothing is started, ``(0, 1)``. Under mpirun / msrun / RANK_SIZE: starts the
    communication (msrun's scheduler process never returns from here), prefixes Python log
    records with the rank and sets data parallelism with mean-reduced gradients.

    Returns:
        ``(rank, group_size)``, the group size as the launcher started it.

    Raises:
        src.parallel.distributed.DistributedError: an inconsistent or unsupported launch.
    """
    # pylint: disable-next=import-outside-toplevel
    from src.parallel.runtime import enable_data_parallel, init_distributed, setup_rank_logging
    info = init_distributed(device_target)
    if info.is_distributed:
        setup_rank_logging(info)
        enable_data_parallel(info.group_size)
    return info.rank, info.group_size


def dump_parameters(network, directory, rank):
    """Write the network's parameters to ``directory/params_rank<rank>.npz``; returns the path."""
    path = Path(directory) / f"params_rank{int(rank)}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{p.name: p.asnumpy() for p in network.get_parameters()})
    return path


def train_from_config(cfg, log=print, parallel_setup=single_process):
    """train.py's whole run: check inputs, set the context, join the cluster, build the data, train.

    Nothing is written before ``parallel_setup`` has run (msrun runs train.py once more as its
    scheduler, which stays inside it until the job ends).

    Args:
        cfg: :class:`src.config.Config` (keys of default_config.yaml).
        log: function taking one line.
        parallel_setup: called with the resolved device target after the MindSpore context is
            set and before anything is built; starts communication / the data-parallel context
            if needed and returns ``(rank, group_size)`` (:func:`distributed_setup` for
            train.py, :func:`single_process` by default).

    Returns:
        :class:`TrainResult`.

    Raises:
        TrainError and the data/checkpoint/launch errors (one-line messages).
    """
    check_train_inputs(cfg)
    from src.runtime.context import setup_context  # pylint: disable=import-outside-toplevel
    from src.parallel.launch import device_id_for  # pylint: disable=import-outside-toplevel
    target = setup_context(cfg.device_target, mode="graph", device_id=device_id_for(cfg), seed=cfg.seed)
    rank, group_size = parallel_setup(target)
    np.random.seed(int(cfg.seed) % (2 ** 32))
    settings = adopt_resume_network(settings_from_config(cfg, rank, group_size, target), cfg, log)
    sched = os.environ.get("MS_SCHED_PORT", "") if group_size > 1 else ""
    log(f"device {target}, rank {rank} of {group_size}, insize {cfg.insize}, "
        f"network width {settings.width_mult:g} x {settings.num_stages} stages"
        + (f", scheduler {os.environ.get('MS_SCHED_HOST', '?')}:{sched}" if sched else ""))
    started = time.perf_counter()
    workers = int(cfg.num_parallel_workers) or None
    from src.data.augment import AugmentParams  # pylint: disable=import-outside-toplevel
    data = CocoTrainData(cfg.jsonpath_train, cfg.imgpath_train, cfg.maskpath_train,
                         settings.batch_size, insize=int(cfg.insize), rank=rank,
                         group_size=group_size, num_workers=workers, seed=settings.seed,
                         heatmap_sigma=float(cfg.heatmap_sigma), paf_sigma=float(cfg.paf_sigma),
                         min_keypoints=int(cfg.min_keypoints), min_area=int(cfg.min_area),
                         aug=AugmentParams.from_config(cfg))
    log(f"dataset ready in {time.perf_counter() - started:.1f} s: {data.steps_per_epoch} batches per epoch"
        + (f" (this rank's shard of {group_size})" if group_size > 1 else ""))
    all_gather = None
    if group_size > 1:
        from src.parallel.collectives import all_gather_objects  # pylint: disable=import-outside-toplevel
        all_gather = all_gather_objects
    validator = None
    if int(cfg.val_interval) > 0:
        from src.train.validation import Validator  # pylint: disable=import-outside-toplevel
        validator = Validator(cfg, Path(settings.save_model_path) / f"ckpt_{CHECKPOINT_RANK}",
                              _record_spec(settings, None), rank, group_size, all_gather,
                              interval=int(cfg.val_interval))
        line = (f"validation every {cfg.val_interval} epoch(s) on {len(validator.image_ids)} images "
                f"of {cfg.ann}")
        if validator.best_ap > float("-inf"):
            line += f"; best AP so far {validator.best_ap:.4f} ({validator.best_path})"
        log(line)
    result = run_training(settings, data, log=log, all_gather=all_gather, validator=validator)
    dump_dir = os.environ.get(ENV_DUMP_PARAMS, "").strip()
    if dump_dir and result.network is not None:
        log(f"parameters dumped to {dump_parameters(result.network, dump_dir, rank)} ({ENV_DUMP_PARAMS})")
    return result
