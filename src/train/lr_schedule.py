"""Per-step learning rates of the three parameter groups (reference schedules).

``build_lr_schedules`` returns float32 arrays with one learning rate per training step:

* ``stage``: the refinement stages (and every parameter when groups are off);
* ``base``: the CPM convs after VGG (``stage / 4``);
* ``vgg``: the VGG layers (``stage / 4``, but 0 for the first ``vgg_freeze_steps // group_size``
  steps, so the ImageNet features are not disturbed while the stages are still random).

Two shapes of ``stage``, as the reference:

* ``default``: constant ``lr``, multiplied by ``lr_gamma`` at every step of ``lr_steps``
  (each divided by ``group_size`` first, the number of devices);
* ``cosine``: linear warm-up from ``lr / 3`` to ``lr`` over ``warmup_epoch`` epochs, then
  ``lr * (1 + cos(pi * (i - warmup) / total)) / 2`` (the reference divides by the total
  number of steps, not by the steps after warm-up, so it ends above zero; kept).

The caller passes ``lr`` already multiplied by the number of devices (as the reference does).
"""
from dataclasses import dataclass

import numpy as np

from src.config_checks import RULES

LR_TYPES = RULES["lr_type"].allowed  # stated once, in the checks table
VGG_FREEZE_STEPS = 2000
WARMUP_RATIO = 1.0 / 3.0
BASE_LR_DIVISOR = 4.0


@dataclass
class LrSchedules:
    """Per-step learning rates, each a float32 array of shape (total_steps,)."""

    stage: np.ndarray
    base: np.ndarray
    vgg: np.ndarray

    @property
    def total_steps(self):
        """Number of steps the schedules cover."""
        return int(self.stage.shape[0])


def step_decay_lr(lr, lr_gamma, total_steps, lr_steps, group_size=1):
    """Constant ``lr`` decayed by ``lr_gamma`` at each of ``lr_steps // group_size``.

    Returns:
        float32 array (total_steps,).
    """
    rates = np.full(total_steps, lr, dtype=np.float32)
    for step in lr_steps:
        rates[int(step) // int(group_size):] *= np.float32(lr_gamma)
    return rates


def warmup_cosine_lr(lr, total_steps, warmup_steps, warmup_ratio=WARMUP_RATIO):
    """Linear warm-up from ``lr * warmup_ratio`` to ``lr``, then the reference's cosine.

    Computed in float64 and rounded to float32 once.

    Returns:
        float32 array (total_steps,).
    """
    steps = np.arange(total_steps, dtype=np.float64)
    lr = float(lr)
    init_lr = lr * warmup_ratio
    rates = np.empty(total_steps, dtype=np.float64)
    if warmup_steps > 0:
        warm = steps < warmup_steps
        rates[warm] = init_lr + (lr - init_lr) / float(warmup_steps) * steps[warm]
    else:
        warm = np.zeros(total_steps, dtype=bool)
    phase = (steps[~warm] - warmup_steps) / float(total_steps)
    rates[~warm] = (1.0 + np.cos(phase * np.pi)) / 2.0 * lr
    return rates.astype(np.float32)


def build_lr_schedules(lr, lr_gamma, steps_per_epoch, max_epoch, lr_steps, group_size=1,
                       lr_type="default", warmup_epoch=5, vgg_freeze_steps=VGG_FREEZE_STEPS):
    """The three groups' per-step learning rates for a whole run.

    Args:
        lr: stage learning rate, already multiplied by the number of devices.
        lr_gamma: decay factor of the ``default`` schedule.
        steps_per_epoch: batches per epoch on one device.
        max_epoch: number of epochs; the arrays cover ``steps_per_epoch * max_epoch`` steps.
        lr_steps: global steps (counted on one device of a 1-card run) where ``default`` decays.
        group_size: number of devices (divides ``lr_steps`` and ``vgg_freeze_steps``).
        lr_type: ``default`` or ``cosine``.
        warmup_epoch: epochs of linear warm-up of ``cosine``.
        vgg_freeze_steps: steps (before division by ``group_size``) with a zero VGG rate.

    Returns:
        :class:`LrSchedules`.

    Raises:
        ValueError: unknown ``lr_type`` or no steps.
    """
    total_steps = int(steps_per_epoch) * int(max_epoch)
    if total_steps <= 0:
        raise ValueError(f"learning-rate schedule needs at least one step (steps_per_epoch="
                         f"{steps_per_epoch}, max_epoch={max_epoch})")
    if lr_type == "default":
        stage = step_decay_lr(lr, lr_gamma, total_steps, lr_steps, group_size)
    elif lr_type == "cosine":
        stage = warmup_cosine_lr(lr, total_steps, int(warmup_epoch) * int(steps_per_epoch))
    else:
        raise ValueError(f"lr_type must be one of {LR_TYPES}, got {lr_type!r}")
    base = stage / np.float32(BASE_LR_DIVISOR)
    vgg = base.copy()
    vgg[:int(vgg_freeze_steps) // int(group_size)] = 0.0
    return LrSchedules(stage=stage, base=base, vgg=vgg)
