"""One training step (forward, loss, scaled backward, gradient processing, update) as a Cell.

Two train types, as the reference:

``fix_loss_scale`` (1 card)
    Gradients of ``loss * loss_scale``, divided by ``loss_scale`` again and handed to the
    optimizer; an overflowed step is *not* dropped (no overflow check). The reference got this
    from ``Model`` with ``FixedLossScaleManager(drop_overflow_update=False)``, which in MindSpore
    means ``TrainOneStepCell(sens=loss_scale)``; as the reference left Adam's own ``loss_scale``
    at 1, its gradients actually reached Adam still multiplied by ``loss_scale``. Adam is
    invariant to that factor except for its epsilon, so the trainer builds Adam with
    ``eps / loss_scale`` (:func:`src.train.optimizer.adam_epsilon`): the reference's update, to float32
    rounding (tests/test_train_parity.py), while the optimizer sees true gradients.

``clip_grad`` (multi-card default)
    Gradients of ``loss * loss_scale`` clipped per tensor, by value (``clip_type`` 0: to
    ``[-clip_value, clip_value]``) or by L2 norm (``clip_type`` 1: scaled down to norm
    ``clip_value`` when larger), mean-reduced over the devices under data parallelism, then the
    optimizer. **The reference never divides by ``loss_scale``**: the clipped gradients are those
    of the scaled loss (with norm clipping nearly every tensor ends at norm ``clip_value``, i.e.
    normalized gradients). That is kept as the default because it produced the reference's
    results; ``unscale_before_clip=True`` divides by ``loss_scale`` before clipping, which is the
    textbook form.

Both cells return ``(loss, paf_losses, heatmap_losses)``: the unscaled float32 total loss and
the (S,) per-stage terms.
"""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import context
from mindspore import dtype as mstype
from mindspore.communication.management import get_group_size
from mindspore.context import ParallelMode

from src.config_checks import RULES
from src.model.loss import NetWithLoss

TRAIN_TYPES = RULES["train_type"].allowed  # stated once, in the checks table
CLIP_BY_VALUE = 0
CLIP_BY_NORM = 1

_clip_grad = ops.MultitypeFuncGraph("_clip_grad")
_scale_grad = ops.MultitypeFuncGraph("_scale_grad")


@_clip_grad.register("Number", "Number", "Tensor")
def _clip_one(clip_type, clip_value, grad):
    """Clip one gradient tensor by value (0) or by its L2 norm (1); other types pass through."""
    if clip_type not in (CLIP_BY_VALUE, CLIP_BY_NORM):
        return grad
    dtype = grad.dtype
    if clip_type == CLIP_BY_VALUE:
        return ops.clip_by_value(grad, ops.cast(-clip_value, dtype), ops.cast(clip_value, dtype))
    grad32 = ops.cast(grad, mstype.float32)
    norm = ops.sqrt(ops.sum(grad32 * grad32))
    limit = ops.cast(clip_value, mstype.float32)
    return ops.cast(grad32 * (limit / ops.maximum(norm, limit)), dtype)


@_scale_grad.register("Tensor", "Tensor")
def _scale_one(factor, grad):
    """Multiply one gradient by a scalar factor."""
    return grad * ops.cast(factor, grad.dtype)


class _ScaledLoss(nn.Cell):
    """``net_with_loss`` whose first output is multiplied by the loss scale (for the gradient)."""

    def __init__(self, net_with_loss):
        super().__init__(auto_prefix=False)
        self.net_with_loss = net_with_loss

    def construct(self, scale, image, gt_pafs, gt_heatmaps, ignore_mask):
        loss, paf_losses, heatmap_losses = self.net_with_loss(image, gt_pafs, gt_heatmaps, ignore_mask)
        return loss * scale, loss, paf_losses, heatmap_losses


def data_parallel_degree():
    """Number of devices when the auto-parallel context is data parallel, else 0."""
    mode = context.get_auto_parallel_context("parallel_mode")
    if mode in (ParallelMode.DATA_PARALLEL, ParallelMode.HYBRID_PARALLEL):
        return int(get_group_size())
    return 0


class OpenPoseTrainStep(nn.Cell):
    """Forward + loss + backward of ``loss * loss_scale`` + gradient processing + update.

    Args:
        net_with_loss: :class:`src.model.loss.NetWithLoss` (outputs loss, paf_losses, heatmap_losses).
        optimizer: a MindSpore optimizer over the trainable parameters.
        train_type: ``fix_loss_scale`` or ``clip_grad`` (see the module docstring).
        loss_scale: the fixed loss scale (float > 0).
        clip_type: 0 = clip by value, 1 = clip by norm (``clip_grad`` only).
        clip_value: the clipping bound (``clip_grad`` only).
        unscale_before_clip: divide by ``loss_scale`` before clipping (``clip_grad`` only).
        grad_reducer: a cell that all-reduces the gradient tuple (data parallel), or None.

    Inputs: image (N, 3, H, W) float32 in [-0.5, 0.5], gt_pafs (N, 38, H/8, W/8),
    gt_heatmaps (N, 19, H/8, W/8), ignore_mask (N, H/8, W/8) float32 (1 = use).

    Outputs: ``(loss, paf_losses, heatmap_losses)``, the unscaled total loss and (S,) terms.
    """

    def __init__(self, net_with_loss, optimizer, train_type="fix_loss_scale", loss_scale=1.0,
                 clip_type=CLIP_BY_NORM, clip_value=10.0, unscale_before_clip=False,
                 grad_reducer=None):
        super().__init__(auto_prefix=False)
        if train_type not in TRAIN_TYPES:
            raise ValueError(f"train_type must be one of {TRAIN_TYPES}, got {train_type!r}")
        if not loss_scale > 0:
            raise ValueError(f"loss_scale must be positive, got {loss_scale!r}")
        if clip_type not in (CLIP_BY_VALUE, CLIP_BY_NORM):
            raise ValueError(f"GRADIENT_CLIP_TYPE must be 0 (value) or 1 (norm), got {clip_type!r}")
        self.net_with_loss = net_with_loss
        self.scaled = _ScaledLoss(net_with_loss)
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.train_type = train_type
        self.clip = train_type == "clip_grad"
        self.unscale = train_type == "fix_loss_scale" or bool(unscale_before_clip)
        self.loss_scale = float(loss_scale)
        self.clip_type = int(clip_type)
        self.clip_value = float(clip_value)
        self.grad_fn = ops.value_and_grad(self.scaled, None, self.weights, has_aux=True)
        self.hyper_map = ops.HyperMap()
        self.grad_reducer = grad_reducer
        self.reduce = grad_reducer is not None

    def construct(self, image, gt_pafs, gt_heatmaps, ignore_mask):
        scale = ops.scalar_to_tensor(self.loss_scale, mstype.float32)
        outputs, grads = self.grad_fn(scale, image, gt_pafs, gt_heatmaps, ignore_mask)
        _, loss, paf_losses, heatmap_losses = outputs
        if self.unscale:
            inv_scale = ops.scalar_to_tensor(1.0 / self.loss_scale, mstype.float32)
            grads = self.hyper_map(ops.partial(_scale_grad, inv_scale), grads)
        if self.clip:
            grads = self.hyper_map(ops.partial(_clip_grad, self.clip_type, self.clip_value), grads)
        if self.reduce:
            grads = self.grad_reducer(grads)
        loss = ops.depend(loss, self.optimizer(grads))
        return loss, paf_losses, heatmap_losses


def build_train_step(network, optimizer, train_type="fix_loss_scale", loss_scale=1.0,
                     clip_type=CLIP_BY_NORM, clip_value=10.0, unscale_before_clip=False,
                     criterion=None):
    """Wrap ``network`` (OpenPoseNet-like) with the loss and a train-step cell.

    Under a data-parallel auto-parallel context a ``DistributedGradReducer`` (mean) is added.

    Args:
        network: a Cell mapping (N, 3, H, W) to (pafs_stages, heatmaps_stages); already cast by
            ``mindspore.amp`` when mixed precision is wanted.
        optimizer: from :func:`src.train.optimizer.build_optimizer` over ``network``'s parameters.
        train_type, loss_scale, clip_type, clip_value, unscale_before_clip: see
            :class:`OpenPoseTrainStep`.
        criterion: loss cell (default :class:`src.model.loss.OpenPoseLoss`).

    Returns:
        :class:`OpenPoseTrainStep`, in training mode.
    """
    net_with_loss = NetWithLoss(network, criterion)
    reducer = None
    degree = data_parallel_degree()
    if degree > 1:
        mean = context.get_auto_parallel_context("gradients_mean")
        reducer = nn.DistributedGradReducer(optimizer.parameters, mean, degree)
    step = OpenPoseTrainStep(net_with_loss, optimizer, train_type=train_type, loss_scale=loss_scale,
                             clip_type=clip_type, clip_value=clip_value,
                             unscale_before_clip=unscale_before_clip, grad_reducer=reducer)
    step.set_train()
    return step
