"""Checkpoint I/O: our checkpoints, reference training checkpoints and the VGG19 backbone.

Three layouts load into :class:`src.model.network.OpenPoseNet`:

* ours: the network's own parameter names (``base.vgg_base.layers.0.weight`` ...);
* reference training checkpoints: the same names prefixed with ``network.``, followed by
  optimizer state (``moment1.*``, ``moment2.*``, ``moments.*``, step counters ...), skipped;
* the MindSpore VGG19 ImageNet checkpoint (``vgg19-0-97_5004.ckpt``): ``network.backbone.layers.N.*``
  goes to ``base.vgg_base.layers.N.*``; layers past the network's 10th conv and the classifier are
  not used.

Writes are atomic: a checkpoint is written beside its final name and renamed into place, so a
killed run never leaves a truncated file under the final name.
"""
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.errors import OpenPoseError
from src.runtime.atomic_write import atomic_write
from src.runtime.messages import first_line, name_list

TRAINING_PREFIX = "network."
#: Entries recording which network a checkpoint holds (src/model/network_spec.py). The reference's
#: loading rule keeps only ``network.*`` entries, so it ignores them.
SPEC_PREFIX = "openpose_spec."
#: Entries of best.ckpt saying which validation made it the best (src/train/validation.py).
VALIDATION_PREFIX = "openpose_val."
VGG_SOURCE_PREFIX = "network.backbone.layers."
VGG_TARGET_PREFIX = "base.vgg_base.layers."
#: Entries of training checkpoints that are optimizer or loop state, never network weights.
STATE_PREFIXES = ("moment1.", "moment2.", "moments.", "momentum", "accum.", "adam_m.", "adam_v.",
                  "global_step", "beta1_power", "beta2_power", "learning_rate", "scale_sense",
                  "current_iterator_step", "last_overflow_iterator_step", "epoch_num", "step_num",
                  "loss_scale")


class CheckpointError(OpenPoseError, ValueError):
    """A checkpoint file is missing, unreadable or does not fit the network (one-line message)."""


@dataclass
class LoadReport:
    """What a load did: names loaded into the network, missing from the file, and left over."""

    path: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    skipped_state: int = 0

    def summary(self, detail=False):
        """One line: counts of loaded, missing, unexpected and skipped entries.

        With ``detail``, the first few missing and unexpected names follow the counts.
        """
        line = (f"{self.path}: loaded {len(self.loaded)} parameters, missing {len(self.missing)}, "
                f"unexpected {len(self.unexpected)}, skipped {self.skipped_state} optimizer/state entries")
        if detail:
            for label, names in (("missing", self.missing), ("unexpected", self.unexpected)):
                if names:
                    line += f"; {label}: " + name_list(names)
        return line


def read_checkpoint(path):
    """Read a MindSpore checkpoint into ``{name: numpy array}``.

    Raises:
        CheckpointError: the file is missing or is not a MindSpore checkpoint.
    """
    import mindspore
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty (0 bytes): not a checkpoint, or "
                              "its copy or write was cut short")
    try:
        params = mindspore.load_checkpoint(path)
    except Exception as exc:  # MindSpore raises ValueError/RuntimeError/TypeError
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint ({first_line(exc)})") from None
    if not params:
        raise CheckpointError(f"{path}: checkpoint holds no parameters")
    return {name: value.asnumpy() for name, value in params.items()}


def is_state_entry(name):
    """True for optimizer/loop state and network-record entries of a checkpoint."""
    return name.startswith(STATE_PREFIXES + (SPEC_PREFIX, VALIDATION_PREFIX))


def to_network_names(entries):
    """Map checkpoint entry names onto network parameter names.

    Returns:
        ``(weights, skipped)``: ``{network_name: array}`` and the number of state entries skipped.
    """
    weights, skipped = {}, 0
    for name, value in entries.items():
        if is_state_entry(name):
            skipped += 1
            continue
        if name.startswith(VGG_SOURCE_PREFIX):
            name = VGG_TARGET_PREFIX + name[len(VGG_SOURCE_PREFIX):]
        elif name.startswith(TRAINING_PREFIX):
            name = name[len(TRAINING_PREFIX):]
        weights[name] = value
    return weights, skipped


def assign_weights(net, weights, path="<weights>", only_prefix=None):
    """Copy arrays into the parameters of ``net`` with the same names.

    Args:
        net: a MindSpore Cell.
        weights: ``{parameter_name: numpy array}``.
        path: file name used in messages.
        only_prefix: when given, only parameters whose name starts with it are considered.

    Raises:
        CheckpointError: a shape mismatch (naming the parameter and both shapes), or NaN /
        infinite values (naming the first such parameter, in the network's order).
    """
    import mindspore
    report = LoadReport(path=str(path))
    targets = {p.name: p for p in net.get_parameters()
               if only_prefix is None or p.name.startswith(only_prefix)}
    for name, param in targets.items():
        if name not in weights:
            report.missing.append(name)
            continue
        value = np.asarray(weights[name])
        if tuple(value.shape) != tuple(param.shape):
            raise CheckpointError(f"{path}: shape mismatch for '{name}': checkpoint "
                                  f"{tuple(value.shape)}, network {tuple(param.shape)}")
        check_finite(name, value, path)
        param.set_data(mindspore.Tensor(value, dtype=param.dtype))
        report.loaded.append(name)
    report.unexpected = sorted(set(weights) - set(targets))
    return report


def check_finite(name, value, path="<weights>"):
    """Refuse a weight array holding NaN or infinity (a diverged or damaged training run):
    such a network scores AP 0 with no other sign of what is wrong.

    Raises:
        CheckpointError: one line naming the file, the tensor and how many values are not finite.
    """
    value = np.asarray(value)
    if value.dtype.kind not in "fc" or np.isfinite(value).all():
        return
    nan = int(np.isnan(value).sum())
    inf = int(value.size - np.isfinite(value).sum()) - nan
    raise CheckpointError(f"{path}: parameter '{name}' holds non-finite values ({nan} NaN, "
                          f"{inf} infinite of {value.size}); the checkpoint is unusable (was it "
                          "written after the loss diverged, or damaged?)")


def network_entries(network):
    """``save_checkpoint`` entries of a network's parameters under the reference's training
    names (``network.`` + the parameter's name)."""
    return [{"name": TRAINING_PREFIX + p.name, "data": p} for p in network.get_parameters()]


class _DropSaveFailure(logging.Filter):
    """Drops MindSpore's own CRITICAL "Failed to save the checkpoint file" record: the caller
    reports the failure on one line of its own, with the cause and the free space."""

    def filter(self, record):
        return not str(record.msg).startswith("Failed to save the checkpoint file")


@contextlib.contextmanager
def _own_save_failure_message():
    """While active, MindSpore does not log its generic save-failure line."""
    try:
        from mindspore import log as ms_log
        logger = ms_log._get_logger()
    except (ImportError, AttributeError):
        logger = None
    drop = _DropSaveFailure()
    if logger is not None:
        logger.addFilter(drop)
    try:
        yield
    finally:
        if logger is not None:
            logger.removeFilter(drop)


def mindspore_temporary(path):
    """The temporary ``mindspore.save_checkpoint`` itself writes before renaming onto ``path``
    (2.1+): ``path`` with its ``.ckpt`` suffix replaced by ``.tmp``."""
    return Path(path).with_suffix(".tmp")


def save_checkpoint_atomic(save_obj, path, append_dict=None):
    """Write a checkpoint so that ``path`` is either the old file or the complete new one
    (through :func:`src.runtime.atomic_write.atomic_write`; MindSpore's own temporary inside it
    is removed with ours on failure, and a killed run's are removed by
    :func:`src.runtime.atomic_write.remove_stale_temporaries` when training starts).

    Args:
        save_obj: a Cell, or a list of ``{"name": str, "data": Tensor}`` dicts.
        path: final file name (should end in .ckpt).
        append_dict: extra scalar/str entries stored beside the parameters (e.g. epoch, step).

    Returns:
        ``path`` as a string.

    Raises:
        src.runtime.atomic_write.WriteError: the write failed (one line with the path; a full
        disk also names the free space); the previous file under ``path``, if any, is untouched.
    """
    import mindspore
    with atomic_write(path, suffix=".ckpt", companions=(mindspore_temporary,)) as tmp, \
            _own_save_failure_message():
        mindspore.save_checkpoint(save_obj, str(tmp), append_dict=append_dict)
    return str(path)
