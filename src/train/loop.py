"""The training loop behind train.py: :func:`run_training` over per-epoch batch iterators.

The loop is plain Python (no ``Model.train``):

* every step runs :class:`src.train.train_step.OpenPoseTrainStep` and checks the loss is finite;
* every ``log_interval`` steps one line with the mean loss, the per-stage PAF/heatmap terms, the
  stage learning rate and images/s; a tqdm bar per epoch;
* every ``ckpt_interval`` steps, and once at the end, a training checkpoint
  (:class:`src.train.checkpoint_manager.CheckpointManager`);
* ``resume`` continues from a training checkpoint (weights, optimizer state, global step); the
  data of epoch ``e`` is a pure function of ``(seed, e)`` (see :mod:`src.train.data`) and the
  batches already consumed in the interrupted epoch are skipped, so a resumed run sees the same
  batches as an uninterrupted one.

Multi-device runs (``group_size > 1``, set up by :mod:`src.train.command`): every rank starts
from the same seed (equal initial weights), reads its own shard of each epoch and logs its own
lines; only rank 0 writes checkpoints, into ``<save_model_path>/ckpt_0/``, and on resume every
rank loads rank 0's checkpoint (a shared folder on multi-node runs), after checking that all
ranks resume from the same step.

A run goes through named phases (:class:`TrainingRun`): plan, build the network, build the
step, restore, announce, loop over the epochs, finish.
"""
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mindspore
import numpy as np
from tqdm import tqdm

from src.runtime.atomic_write import format_bytes, remove_stale_temporaries
from src.train.checkpoint_manager import CHECKPOINT_RANK, CheckpointManager, restore_training_state
from src.train.errors import NonFiniteLossError, TrainError, check_finite_loss
from src.train.interrupts import StopRequests, interrupted_error
from src.train.loss_report import LossMeter, format_report
from src.train.lr_schedule import build_lr_schedules
from src.train.metrics_log import METRICS_NAME, MetricsLog
from src.train.network_setup import plan_start, prepare_network
from src.train.optimizer import adam_epsilon, build_optimizer
from src.train.profiler import StepProfiler
from src.train.train_step import build_train_step

#: Seconds between progress-bar refreshes when stderr is a file or pipe (logs stay short).
BAR_INTERVAL_LOGGED = 30.0


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


def log_first_step(log, seconds, loss):
    """Report the first step apart: it includes the graph compile (not in the img/s figures)."""
    log(f"first step done in {seconds:.1f} s (graph compile and data start-up included), loss {loss:.6f}")


def as_tensors(batch):
    """A numpy batch as float32 MindSpore tensors."""
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


def remove_stale_checkpoint_temporaries(directory, log):
    """Delete checkpoint temporaries that killed runs left in ``directory``; log what went."""
    removed = remove_stale_temporaries(directory)
    if removed:
        log(f"removed {len(removed)} temporary checkpoint file(s) of earlier runs from {directory} "
            f"({format_bytes(sum(size for _, size in removed))})")


def run_training(settings, data, network=None, log=print, all_gather=None, step_callback=None,
                 validator=None, start=None):
    """Train ``network`` on ``data`` as ``settings`` say.

    Args:
        settings: :class:`src.train.settings.TrainSettings`. With ``group_size > 1`` the
            data-parallel context must already be set (:func:`src.train.command.distributed_setup`);
            only rank 0 writes checkpoints.
        data: an object with ``steps_per_epoch``, ``batches(epoch, skip_batches)`` and
            ``batch_images(epoch, index)`` (:mod:`src.train.data`); a rank's own shard.
        network: the network to train (default: the settings' OpenPoseNet); anything with
            OpenPoseNet's parameter names and outputs works.
        log: function taking one line of text.
        all_gather: distributed runs: function mapping this rank's picklable value to the list
            of every rank's value (:func:`src.parallel.collectives.all_gather_objects`); used to
            check that all ranks resume from the same step. None: no check.
        step_callback: called as ``step_callback(global_step, loss)`` after every step
            (``loss`` the step's unscaled float loss), or None.
        validator: a :class:`src.train.validation.Validator` run after every
            ``val_interval`` epochs and at the end, or None.
        start: the run's :class:`src.train.network_setup.RunStart` when the caller has planned
            it (train.py: its settings replace ``settings``); None: planned here from
            ``settings`` and ``network``.

    Returns:
        :class:`TrainResult` (its ``network`` is the trained network).

    Raises:
        TrainError: bad settings, an unusable resume checkpoint, ranks that disagree on where
        to resume, or a NaN/Inf loss; src.train.interrupts.TrainInterrupted: SIGINT / SIGTERM
        (single-process runs) ended the run after the current step and a checkpoint.
    """
    if start is None:
        start = plan_start(settings, network=network, log=log)
    settings = start.settings
    # distributed ranks would stop at different steps and wait on each other: launcher's job
    with StopRequests(enabled=settings.group_size == 1) as stop:
        run = TrainingRun(start, data, log, stop, all_gather, step_callback, validator)
        run.plan()
        run.build_network(network)
        run.build_step()
        run.restore()
        run.announce()
        run.loop()
        return run.finish()


class TrainingRun:
    """One call of :func:`run_training`: its state, and its phases as methods, called in order.

    Args:
        start: the run's :class:`src.train.network_setup.RunStart` (settings, network record,
            resume checkpoint and its entries).
        data, log, all_gather, step_callback, validator: as :func:`run_training`.
        stop: the run's :class:`src.train.interrupts.StopRequests`.
    """

    def __init__(self, start, data, log, stop, all_gather=None, step_callback=None, validator=None):
        settings = start.settings
        self.start = start
        self.settings, self.data, self.log, self.stop = settings, data, log, stop
        self.all_gather, self.step_callback, self.validator = all_gather, step_callback, validator
        self.steps_per_epoch = self.total_steps = self.stop_step = 0
        self.manager = self.resume_path = None
        self.writes_checkpoints = settings.rank == CHECKPOINT_RANK
        self.network = self.schedules = self.optimizer = self.step_cell = None
        self.global_step = self.steps_run = 0
        self.last_loss = float("nan")
        self.last_saved_step = self.last_validated = -1
        self.last_checkpoint = ""
        self.meter = LossMeter()
        self.metrics_log = self.profiler = None
        self.run_started = 0.0

    def say(self, line):
        """``log`` with the progress bar cleared around the line (both may share a terminal)."""
        with tqdm.external_write_mode(file=sys.stdout):
            self.log(line)

    # ------------------------------------------------------------------------------------------
    # phases before the first step

    def plan(self):
        """Steps of the run, its checkpoint folder and the checkpoint to resume from."""
        settings = self.settings
        self.steps_per_epoch = int(self.data.steps_per_epoch)
        if self.steps_per_epoch < 1:
            raise TrainError(f"the dataset has fewer images than one batch of {settings.batch_size} "
                             f"(per device, {settings.group_size} devices)")
        self.total_steps = self.steps_per_epoch * int(settings.max_epoch)
        self.stop_step = (min(self.total_steps, settings.max_train_steps) if settings.max_train_steps > 0
                          else self.total_steps)
        # one checkpoint folder for the job: rank 0 writes it, every rank resumes from it
        self.manager = CheckpointManager(settings.save_model_path, CHECKPOINT_RANK,
                                         settings.keep_checkpoint_max)
        self.manager.spec = self.start.spec
        self.resume_path = self.start.resume_path
        if self.writes_checkpoints:
            remove_stale_checkpoint_temporaries(self.manager.directory, self.log)
        if settings.resume == "auto" and self.resume_path is None:
            self.log(f"resume auto: no checkpoint in {self.manager.directory}, starting from scratch")
        if settings.resume and self.all_gather is not None and settings.group_size > 1:
            name = self.resume_path.name if self.resume_path is not None else None
            check_ranks_agree(self.all_gather(name), "the checkpoint to resume from")

    def build_network(self, network):
        """The network to train (``network`` or the one of the run's record)."""
        self.network = prepare_network(self.settings, self.start.spec, network, self.log,
                                       self.resume_path is not None)

    def build_step(self):
        """Learning-rate schedules, optimizer and the train-step cell."""
        settings = self.settings
        self.schedules = build_lr_schedules(settings.lr * settings.group_size, settings.lr_gamma,
                                            self.steps_per_epoch, settings.max_epoch, settings.lr_steps,
                                            settings.group_size, settings.lr_type, settings.warmup_epoch)
        try:
            self.optimizer = build_optimizer(self.network.trainable_params(), self.schedules,
                                             settings.optimizer, settings.group_params,
                                             eps=adam_epsilon(settings.train_type, settings.loss_scale))
            self.step_cell = build_train_step(self.network, self.optimizer, settings.train_type,
                                              settings.loss_scale, settings.clip_type,
                                              settings.clip_value, settings.unscale_before_clip)
        except ValueError as exc:
            raise TrainError(str(exc)) from None

    def restore(self):
        """Weights, optimizer state and global step of the resume checkpoint, if any."""
        if self.resume_path is None:
            return
        position = restore_training_state(self.resume_path, self.network, self.optimizer,
                                          self.steps_per_epoch, entries=self.start.resume_entries)
        self.global_step = position.global_step
        self.log(f"resumed from {self.resume_path} at global step {self.global_step} "
                 f"(epoch {position.epoch + 1}, {position.step_in_epoch} batches into it)")
        if self.global_step > self.total_steps:
            raise TrainError(f"{self.resume_path}: global step {self.global_step} is past the end of this "
                             f"run ({self.total_steps} steps = {self.settings.max_epoch} epochs x "
                             f"{self.steps_per_epoch})")
        self.last_saved_step = self.global_step
        self.last_checkpoint = str(self.resume_path)

    def announce(self):
        """Log what the run will do."""
        settings = self.settings
        self.log(f"steps per epoch: {self.steps_per_epoch}, epochs: {settings.max_epoch}, "
                 f"total steps: {self.total_steps}"
                 + (f", stopping at step {self.stop_step} (max_train_steps)"
                    if self.stop_step < self.total_steps else ""))
        self.log(f"train type {settings.train_type}, optimizer {settings.optimizer} "
                 f"(group params {settings.group_params}), loss scale {settings.loss_scale:g}, "
                 f"batch {settings.batch_size} x {settings.group_size} device(s)")
        self.log(f"checkpoints: {self.manager.directory}"
                 + ("" if self.writes_checkpoints else f" (written by rank {CHECKPOINT_RANK})"))

    # ------------------------------------------------------------------------------------------
    # the loop

    def loop(self):
        """Train epoch after epoch until the last step, ``max_train_steps`` or a stop request."""
        settings = self.settings
        self.metrics_log = MetricsLog(Path(settings.save_model_path) / METRICS_NAME
                                      if self.writes_checkpoints else None)
        self.profiler = StepProfiler(settings, self.log)
        self.run_started = time.perf_counter()
        for epoch in range(self.global_step // self.steps_per_epoch, settings.max_epoch):
            if self.global_step >= self.stop_step:
                break
            self.run_epoch(epoch)
            if self.stop.requested:
                break
            epoch_done = self.global_step == (epoch + 1) * self.steps_per_epoch
            if (self.validator is not None and epoch_done and self.steps_run
                    and self.validator.due(epoch + 1, settings.max_epoch)):
                self.validate()

    def _show_bar(self):
        """Distributed: no bars in the ranks' merged logs; rank 0 shows one on a terminal."""
        settings = self.settings
        return settings.progress and (settings.group_size == 1
                                      or (settings.rank == 0 and sys.stderr.isatty()))

    def run_epoch(self, epoch):
        """The remaining batches of ``epoch`` (0-based), up to the stop step or a stop request."""
        skip = self.global_step - epoch * self.steps_per_epoch
        bar = tqdm(total=self.steps_per_epoch, initial=skip, file=sys.stderr, dynamic_ncols=True,
                   desc=f"epoch {epoch + 1}/{self.settings.max_epoch}", disable=not self._show_bar(),
                   leave=False, mininterval=0.1 if sys.stderr.isatty() else BAR_INTERVAL_LOGGED)
        batches = self.data.batches(epoch, skip)
        try:
            for batch in batches:
                self.train_step(epoch, batch)
                bar.update(1)
                bar.set_postfix(loss=f"{self.last_loss:.4f}", refresh=False)
                self.after_step(epoch)
                self.stop.rearm()
                if self.global_step >= self.stop_step or self.stop.requested:
                    break
        except TrainError as exc:
            if not self.stop.requested or isinstance(exc, NonFiniteLossError):
                raise       # (a pipeline whose workers got the signal too ends like this)
        finally:
            close = getattr(batches, "close", None)
            if callable(close):
                close()
            bar.close()

    def train_step(self, epoch, batch):
        """One step on ``batch``; stops the run on a NaN/Inf loss."""
        loss, paf_losses, heatmap_losses = self.step_cell(*as_tensors(batch))
        self.last_loss = float(loss.asnumpy())
        self.global_step += 1
        self.steps_run += 1
        step_in_epoch = self.global_step - epoch * self.steps_per_epoch
        check_finite_loss(self.last_loss, epoch, step_in_epoch, self.global_step,
                          batch_images=lambda: self.data.batch_images(epoch, step_in_epoch - 1))
        self.meter.add(self.last_loss, paf_losses.asnumpy(), heatmap_losses.asnumpy())
        if self.step_callback is not None:
            self.step_callback(self.global_step, self.last_loss)
        if self.steps_run == 1:
            log_first_step(self.say, time.perf_counter() - self.run_started, self.last_loss)
            self.meter.restart_clock()
        self.profiler.step_done(self.steps_run)

    def after_step(self, epoch):
        """The report line and the checkpoint that are due after the step just done."""
        settings, step = self.settings, self.global_step
        if settings.log_interval > 0 and step % settings.log_interval == 0:
            lr = float(self.schedules.stage[step - 1])
            report = self.meter.report(settings.batch_size * settings.group_size)
            step_in_epoch = step - epoch * self.steps_per_epoch
            self.say(format_report(report, epoch, step_in_epoch, self.steps_per_epoch, step, lr))
            self.metrics_log.write("train", step=step, epoch=epoch + 1, loss=report["loss"],
                                   paf=report["paf"], heatmap=report["heatmap"], lr=lr,
                                   images_per_s=report["images_per_s"])
        if self.writes_checkpoints and settings.ckpt_interval > 0 and step % settings.ckpt_interval == 0:
            self.save()

    def validate(self):
        """Run the validator on the network as it is now; log and record its metrics."""
        epoch_number = -(-self.global_step // self.steps_per_epoch)      # 1-based epoch of the last step
        metrics = self.validator.run(self.network, self.global_step, epoch_number, log=self.say)
        self.step_cell.set_train(True)
        self.metrics_log.write("val", step=self.global_step, epoch=epoch_number, **metrics)
        self.last_validated = self.global_step

    def save(self):
        """Write a training checkpoint at the current step."""
        self.last_checkpoint = self.manager.save(self.network, self.optimizer, self.global_step,
                                                 self.steps_per_epoch, self.settings.loss_scale)
        self.last_saved_step = self.global_step

    # ------------------------------------------------------------------------------------------
    # after the last step

    def finish(self):
        """Final validation and checkpoint; raise on a stop request, else the :class:`TrainResult`."""
        self.profiler.finish()
        if (self.validator is not None and self.steps_run and self.last_validated != self.global_step
                and not self.stop.requested):
            self.validate()
        if self.writes_checkpoints and self.global_step != self.last_saved_step and self.steps_run > 0:
            self.save()
        if self.stop.requested:
            raise interrupted_error(self.stop, self.global_step,
                                    self.last_checkpoint if self.writes_checkpoints else "")
        if self.steps_run:
            saved = (f"last checkpoint {self.last_checkpoint}" if self.writes_checkpoints
                     else f"checkpoints by rank {CHECKPOINT_RANK}")
            self.log(f"finished at global step {self.global_step}, last loss {self.last_loss:.6f}; {saved}")
        else:
            self.log(f"nothing to do: the run is already at global step {self.global_step} of "
                     f"{self.stop_step}")
        return TrainResult(global_step=self.global_step, epoch=self.global_step // self.steps_per_epoch,
                           last_loss=self.last_loss, last_checkpoint=self.last_checkpoint,
                           resumed_from=str(self.resume_path or ""), steps_run=self.steps_run,
                           network=self.network)
