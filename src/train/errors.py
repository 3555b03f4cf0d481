"""The errors of a training run, and the NaN/Inf stop that raises one."""
import math

from src.errors import OpenPoseError
from src.runtime.messages import name_list


class TrainError(OpenPoseError, RuntimeError):
    """Training cannot start or continue (one-line message)."""


class NonFiniteLossError(TrainError):
    """The loss became NaN or Inf."""


def check_finite_loss(loss, epoch, step_in_epoch, global_step, batch_images=None):
    """Raise :class:`NonFiniteLossError` when ``loss`` is NaN or Inf.

    Args:
        loss: the step's loss (float).
        epoch: 0-based epoch; step_in_epoch: 1-based step in it; global_step: steps done.
        batch_images: None, or a function returning the names of the batch's images (called
            only on a non-finite loss; the message names them).
    """
    if not math.isfinite(loss):
        names = _batch_names(batch_images)
        raise NonFiniteLossError(
            f"loss is {loss} at epoch {epoch + 1}, step {step_in_epoch} (global step {global_step})"
            + (f"; images of the batch: {names}" if names else "")
            + "; stopping. Check those images' annotations, lower lr or loss_scale, or resume "
            "from the last checkpoint")


def _batch_names(batch_images, shown=8):
    """Comma-separated names from ``batch_images()`` (at most ``shown``), "" when unknown."""
    if batch_images is None:
        return ""
    try:
        names = [str(name) for name in batch_images()]
    except (AttributeError, OSError, ValueError, KeyError, IndexError):
        return ""       # a data adapter without batch_images, or data no longer readable
    return name_list(names, shown)
