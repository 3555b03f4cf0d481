"""train.py's run: from a configuration to a finished :func:`src.train.loop.run_training`.

:func:`train_from_config` checks the inputs, sets the MindSpore context, joins the launch's
cluster (:func:`distributed_setup`; see :mod:`src.parallel.cluster`), resolves the settings
(:mod:`src.train.settings`), builds the data (:mod:`src.train.data`) and the validator
(:mod:`src.train.validation`), and trains.
"""
import contextlib
import os
import time
from pathlib import Path

import numpy as np

from src.config_checks import NO_PATH
from src.data.mask_files import check_training_rule
from src.parallel.cluster import enable_data_parallel, init_distributed, setup_rank_logging
from src.parallel.collectives import all_gather_objects
from src.parallel.launch import device_id_for
from src.runtime.context import setup_context
from src.runtime.output_checks import check_output_dir
from src.train.checkpoint_manager import CHECKPOINT_RANK
from src.train.data import CocoTrainData
from src.train.errors import TrainError
from src.train.loop import run_training
from src.train.network_setup import plan_start
from src.train.run_lock import run_lock
from src.train.settings import settings_from_config
from src.train.validation import Validator


def check_train_inputs(cfg):
    """Check the paths a training run needs before anything heavy starts.

    Raises:
        TrainError: naming the first missing path; src.data.mask_files.MaskRuleError: the
        masks record another people rule than min_keypoints / min_area (checked here too, before
        a cluster forms); src.runtime.output_checks.OutputError: save_model_path cannot be
        written (an existing file, a read-only folder).
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
    check_training_rule(str(cfg.maskpath_train), cfg.min_keypoints, cfg.min_area)
    check_output_dir(cfg.save_model_path, "save_model_path")


def single_process(_device_target):
    """Parallel set-up of a single-process run: ``(rank, group_size) = (0, 1)``."""
    return 0, 1


def distributed_setup(device_target):
    """Parallel set-up of train.py: join the launch's cluster, if any (see :mod:`src.parallel.cluster`).

    Single process: nothing is started, ``(0, 1)``. Under mpirun / msrun / RANK_SIZE: starts the
    communication (msrun's scheduler process never returns from here), prefixes Python log
    records with the rank and sets data parallelism with mean-reduced gradients.

    Returns:
        ``(rank, group_size)``, the group size as the launcher started it.

    Raises:
        src.parallel.launch.DistributedError: an inconsistent or unsupported launch.
    """
    info = init_distributed(device_target)
    if info.is_distributed:
        setup_rank_logging(info)
        enable_data_parallel(info.group_size)
    return info.rank, info.group_size


def build_data(cfg, rank, group_size, log):
    """This rank's :class:`src.train.data.CocoTrainData` of ``cfg``; logs how long it took."""
    started = time.perf_counter()
    data = CocoTrainData.from_config(cfg, rank, group_size)
    log(f"dataset ready in {time.perf_counter() - started:.1f} s: {data.steps_per_epoch} batches per epoch"
        + (f" (this rank's shard of {group_size})" if group_size > 1 else ""))
    return data


def build_validator(cfg, start, all_gather, log):
    """The :class:`src.train.validation.Validator` of ``cfg`` (None with ``val_interval`` 0) for
    the run of ``start`` (:class:`src.train.network_setup.RunStart`)."""
    if int(cfg.val_interval) <= 0:
        return None
    settings = start.settings
    validator = Validator(cfg, Path(settings.save_model_path) / f"ckpt_{CHECKPOINT_RANK}",
                          start.spec, settings.rank, settings.group_size, all_gather,
                          interval=int(cfg.val_interval))
    line = (f"validation every {cfg.val_interval} epoch(s) on {len(validator.image_ids)} images "
            f"of {cfg.ann}")
    if validator.best_ap > float("-inf"):
        line += f"; best AP so far {validator.best_ap:.4f} ({validator.best_path})"
    log(line)
    return validator


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
        :class:`src.train.loop.TrainResult`.

    Raises:
        TrainError and the data/checkpoint/launch errors (one-line messages).
    """
    check_train_inputs(cfg)
    target = setup_context(cfg.device_target, mode="graph", device_id=device_id_for(cfg), seed=cfg.seed)
    rank, group_size = parallel_setup(target)
    # one run per save_model_path; rank 0 writes the checkpoints, so it holds the lock
    lock = run_lock(cfg.save_model_path, log) if rank == CHECKPOINT_RANK else contextlib.nullcontext()
    with lock:
        np.random.seed(int(cfg.seed) % (2 ** 32))
        start = plan_start(settings_from_config(cfg, rank, group_size, target), cfg, log=log)
        settings = start.settings
        sched = os.environ.get("MS_SCHED_PORT", "") if group_size > 1 else ""
        log(f"device {target}, rank {rank} of {group_size}, insize {cfg.insize}, "
            f"network width {settings.width_mult:g} x {settings.num_stages} stages"
            + (f", scheduler {os.environ.get('MS_SCHED_HOST', '?')}:{sched}" if sched else ""))
        data = build_data(cfg, rank, group_size, log)
        all_gather = all_gather_objects if group_size > 1 else None
        validator = build_validator(cfg, start, all_gather, log)
        return run_training(settings, data, log=log, all_gather=all_gather, validator=validator,
                            start=start)
