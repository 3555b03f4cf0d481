"""Parameter groups and optimizer factory (reference: Adam on 1 card, Momentum 0.9 on many).

With ``group_params`` the trainable parameters fall into three groups by name, each with its
own per-step learning-rate array (see :mod:`src.train.lr_schedule`):

* ``vgg``: ``base.vgg_base.*`` (the VGG19 front end), rate ``schedules.vgg``;
* ``base``: ``base.conv4_3_CPM`` / ``base.conv4_4_CPM``, rate ``schedules.base``;
* ``stages``: everything else (``stage_1`` ... ``stage_6``), rate ``schedules.stage``.

Without groups every parameter follows ``schedules.stage`` (so the VGG layers are not frozen).
Names are matched as substrings, so a ``network.`` prefix (reference layout) works too.
"""
import mindspore
import mindspore.nn as nn
from mindspore.ops import operations as P

from src.compat import silence_deprecation_notice
from src.config_checks import RULES

OPTIMIZERS = RULES["optimizer"].allowed  # stated once, in the checks table
MOMENTUM = 0.9
#: Adam's epsilon as the reference built it (MindSpore's default).
ADAM_EPS = 1e-8
VGG_KEY = "base.vgg_base."
BASE_KEY = "base.conv"


def split_param_groups(params):
    """Split parameters into ``(vgg, base, stages)`` lists by name.

    Raises:
        ValueError: a parameter under ``base`` that is neither VGG nor a CPM conv.
    """
    vgg, base, stages = [], [], []
    for param in params:
        if VGG_KEY in param.name:
            vgg.append(param)
        elif BASE_KEY in param.name:
            base.append(param)
        elif "base." not in param.name:
            stages.append(param)
        else:
            raise ValueError(f"parameter '{param.name}' fits no optimizer group")
    return vgg, base, stages


def _rate(values):
    """A per-step learning-rate array as a float32 Tensor (MindSpore's dynamic rate)."""
    return mindspore.Tensor(values, mindspore.float32)


def adam_epsilon(train_type, loss_scale):
    """Adam's epsilon that reproduces the reference's update for a train type.

    The reference's 1-card recipe (``fix_loss_scale``) handed Adam the gradients of
    ``loss * loss_scale`` (``FixedLossScaleManager`` with Adam's own ``loss_scale`` left at 1).
    Adam's update ``m / (sqrt(v) + eps)`` is invariant to a gradient factor ``S`` except for
    ``eps``, which then acts as ``eps / S`` on the true gradients. We unscale before the
    optimizer (so Momentum and logged norms see true gradients) and divide ``eps`` by the loss
    scale instead: the same update. At initialisation most gradients of the full network are
    below 1e-8, so a full-size ``eps`` changes single updates by up to 64% (measured).
    ``clip_grad`` hands the optimizer scaled (clipped) gradients, as the reference did, so
    ``eps`` keeps its size there.

    Args:
        train_type: ``fix_loss_scale`` or ``clip_grad``.
        loss_scale: the fixed loss scale (> 0).
    """
    if train_type == "fix_loss_scale":
        return ADAM_EPS / float(loss_scale)
    return ADAM_EPS


def build_optimizer(params, schedules, name="Adam", group_params=True, momentum=MOMENTUM,
                    eps=ADAM_EPS):
    """Create the optimizer.

    Args:
        params: the trainable parameters (list of Parameter).
        schedules: :class:`src.train.lr_schedule.LrSchedules`; the optimizer's step counter indexes
            them, so the run must not take more steps than ``schedules.total_steps``.
        name: ``Adam`` or ``Momentum``.
        group_params: three groups (see the module docstring) or one.
        momentum: momentum of ``Momentum``.
        eps: Adam's epsilon (see :func:`adam_epsilon`).

    Returns:
        A ``mindspore.nn.Optimizer`` (its ``global_step`` counts the updates done).

    Raises:
        ValueError: unknown optimizer name or a parameter that fits no group.
    """
    params = list(params)
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    # nn.Adam builds a sparse-gradient op this network never uses, which MindSpore 2.8 reports
    # as deprecated at the start of every training run: that notice alone is dropped.
    silence_deprecation_notice(P.FusedSparseAdam)
    if group_params:
        vgg, base, stages = split_param_groups(params)
        groups = [{"params": group, "lr": _rate(rates)}
                  for group, rates in ((vgg, schedules.vgg), (base, schedules.base),
                                       (stages, schedules.stage)) if group]
        if name == "Adam":
            return nn.Adam(groups, learning_rate=_rate(schedules.stage), eps=eps)
        return nn.Momentum(groups, learning_rate=_rate(schedules.stage), momentum=momentum)
    if name == "Adam":
        return nn.Adam(params, learning_rate=_rate(schedules.stage), eps=eps)
    return nn.Momentum(params, learning_rate=_rate(schedules.stage), momentum=momentum)

