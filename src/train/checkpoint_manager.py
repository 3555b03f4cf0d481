"""The checkpoints of a training run: write, list, prune and resume from them.

Checkpoints go to ``<save_model_path>/ckpt_<rank>/<rank>-<epoch>_<step>.ckpt`` (the reference's
``ModelCheckpoint`` names: epoch counted from 1, step = batches done in that epoch) and are
written atomically (:func:`src.model.checkpoint.save_checkpoint_atomic`). A training checkpoint holds

* the network's parameters under the reference's training names (``network.`` + the network's
  own name, ``network.base.vgg_base.layers.0.weight`` ...), so the reference's ``load_model`` /
  eval.py and this repository's loaders both read it;
* the network's shape and input normalisation (``openpose_spec.*``, see
  :mod:`src.model.network_spec`), which the reference's loading rule ignores;
* the optimizer state (``moment1.*``/``moment2.*``/``beta1_power``/``beta2_power`` for Adam,
  ``moments.*`` for Momentum, and ``global_step``, the index into the learning-rate arrays);
* the loop position: ``step_num`` (global steps done), ``epoch_num`` (epochs completed),
  ``step_num_in_epoch``, ``step_num_per_epoch`` and ``loss_scale``.

The learning-rate arrays themselves are not stored: a resumed run recomputes them from its
configuration.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import mindspore
import numpy as np

from src.model.checkpoint import (
    assign_weights,
    network_entries,
    read_checkpoint,
    save_checkpoint_atomic,
    to_network_names,
)
from src.train.errors import TrainError

#: The rank whose checkpoints are written and resumed from (the reference's ``ckpt_0``).
CHECKPOINT_RANK = 0
CKPT_NAME = re.compile(r"^(?P<rank>\d+)-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt$")
#: Optimizer entries that are recomputed, never saved or restored.
RECOMPUTED_STATE = ("learning_rate",)


@dataclass
class TrainingPosition:
    """Where a training checkpoint stopped."""

    global_step: int
    epoch: int                 # epochs completed
    step_in_epoch: int         # batches done in the current epoch
    steps_per_epoch: int
    path: str = ""


def checkpoint_sort_key(path):
    """(epoch, step) of a checkpoint file name, or None when it is not one of ours."""
    match = CKPT_NAME.match(Path(path).name)
    if not match:
        return None
    return int(match.group("epoch")), int(match.group("step"))


def _state_params(optimizer, network):
    """Optimizer state parameters to save/restore (not the network's, not the lr arrays)."""
    own = {p.name for p in network.get_parameters()}
    seen, state = set(), []
    for param in optimizer.get_parameters():
        if param.name in own or param.name in seen or param.name.startswith(RECOMPUTED_STATE):
            continue
        seen.add(param.name)
        state.append(param)
    return state


class CheckpointManager:
    """Writes, lists, prunes and restores training checkpoints of one rank's folder.

    A data-parallel job keeps one folder, rank 0's: rank 0 writes it and every rank resumes
    from it (the ranks hold identical weights), see :func:`src.train.loop.run_training`.

    Args:
        save_model_path: root folder; checkpoints go to ``<root>/ckpt_<rank>/``.
        rank: the rank whose folder and file names are used.
        keep_checkpoint_max: how many of this rank's checkpoints to keep (<= 0: all).
        spec: the :class:`src.model.network_spec.NetworkSpec` recorded in every checkpoint, or None
            (a network that is not an OpenPoseNet: nothing recorded).
    """

    def __init__(self, save_model_path, rank=0, keep_checkpoint_max=5, spec=None):
        self.spec = spec
        self.rank = int(rank)
        self.directory = Path(save_model_path) / f"ckpt_{self.rank}"
        self.keep_checkpoint_max = int(keep_checkpoint_max)

    def path_for(self, epoch, step_in_epoch):
        """File of the checkpoint after ``step_in_epoch`` batches of 0-based ``epoch``."""
        return self.directory / f"{self.rank}-{epoch + 1}_{step_in_epoch}.ckpt"

    def list(self):
        """This rank's checkpoints, oldest first (by epoch, then step)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            key = checkpoint_sort_key(path)
            if key is not None and path.name.startswith(f"{self.rank}-") and path.is_file():
                found.append((key, path))
        return [path for _, path in sorted(found)]

    def latest(self):
        """The newest checkpoint of this rank, or None."""
        paths = self.list()
        return paths[-1] if paths else None

    def save(self, network, optimizer, global_step, steps_per_epoch, loss_scale=1.0):
        """Write the checkpoint after ``global_step`` steps and prune old ones.

        Returns:
            The path written.
        """
        epoch, step_in_epoch = divmod(int(global_step), int(steps_per_epoch))
        if step_in_epoch == 0 and epoch > 0:
            epoch, step_in_epoch = epoch - 1, int(steps_per_epoch)
        entries = network_entries(network)
        entries += [{"name": p.name, "data": p} for p in _state_params(optimizer, network)]
        append = {"step_num": int(global_step), "epoch_num": int(global_step) // int(steps_per_epoch),
                  "step_num_in_epoch": int(global_step) % int(steps_per_epoch),
                  "step_num_per_epoch": int(steps_per_epoch), "loss_scale": float(loss_scale)}
        if self.spec is not None:
            append.update(self.spec.to_record())
        path = save_checkpoint_atomic(entries, self.path_for(epoch, step_in_epoch), append_dict=append)
        self.prune()
        return path

    def prune(self):
        """Delete this rank's oldest checkpoints beyond ``keep_checkpoint_max``."""
        if self.keep_checkpoint_max <= 0:
            return
        paths = self.list()
        for path in paths[:-self.keep_checkpoint_max]:
            path.unlink(missing_ok=True)

    def resolve_resume(self, resume):
        """The checkpoint to resume from.

        Args:
            resume: "" (none), "auto" (newest of this rank, None when there is none) or a path.

        Raises:
            TrainError: an explicit path that is not a file.
        """
        if not resume:
            return None
        if resume == "auto":
            return self.latest()
        path = Path(resume)
        if not path.is_file():
            raise TrainError(f"{resume}: resume checkpoint not found")
        return path


def restore_training_state(path, network, optimizer, steps_per_epoch, entries=None):
    """Load weights, optimizer state and loop position from a training checkpoint.

    Args:
        path: checkpoint written by :meth:`CheckpointManager.save`.
        network: the network (its parameters are overwritten).
        optimizer: the optimizer (moments and ``global_step`` are overwritten).
        steps_per_epoch: batches per epoch of this run (the position is recomputed from the
            global step, so a different value only shifts epoch boundaries).
        entries: the file's contents when the caller has read them already
            (:class:`src.train.network_setup.RunStart`); None: read here.

    Returns:
        :class:`TrainingPosition`.

    Raises:
        CheckpointError / TrainError: unreadable file, shape mismatch, no optimizer state
        (a weights-only file: use ``load_pretrain`` for those), or parameters of another
        network shape (e.g. more stages).
    """
    if entries is None:
        entries = read_checkpoint(path)
    if "step_num" not in entries:
        raise TrainError(f"{path}: not a training checkpoint of this project (no step_num); "
                         "use --load_pretrain True --pretrained_model_path for weights only")
    weights, _ = to_network_names(entries)
    report = assign_weights(network, weights, path)
    if report.missing:
        raise TrainError(f"{path}: {len(report.missing)} network parameters missing "
                         f"(e.g. '{report.missing[0]}')")
    state = _state_params(optimizer, network)
    missing = [p.name for p in state if p.name not in entries]
    if missing:
        raise TrainError(f"{path}: optimizer state '{missing[0]}' missing ({len(missing)} entries); "
                         "was it written with another optimizer?")
    for param in state:
        value = np.asarray(entries[param.name])
        if tuple(value.shape) != tuple(param.shape):
            raise TrainError(f"{path}: shape mismatch for optimizer state '{param.name}': "
                             f"{tuple(value.shape)} vs {tuple(param.shape)}")
        param.set_data(mindspore.Tensor(value, dtype=param.dtype))
    if report.unexpected:
        raise TrainError(f"{path}: {len(report.unexpected)} parameters the network lacks "
                         f"(e.g. '{report.unexpected[0]}'); was it written with other "
                         "width_mult/num_stages/vgg_with_bn?")
    global_step = int(np.asarray(entries["step_num"]).reshape(-1)[0])
    epoch, step_in_epoch = divmod(global_step, int(steps_per_epoch))
    return TrainingPosition(global_step=global_step, epoch=epoch, step_in_epoch=step_in_epoch,
                            steps_per_epoch=int(steps_per_epoch), path=str(path))
