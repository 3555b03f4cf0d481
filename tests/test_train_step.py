"""Train-step cells: exact update rules of both train types, VGG freeze, loss goes down.

A tiny network with OpenPoseNet's parameter names and outputs keeps these fast; the real
network runs end to end in tests/test_train_cli.py.
"""
import numpy as np
import pytest

from src.train.lr_schedule import build_lr_schedules
from src.train.optimizer import ADAM_EPS, adam_epsilon, build_optimizer, split_param_groups
from src.train.train_step import build_train_step
from tests.tiny_nets import tiny_pose_net

INSIZE = 16


def toy_batch(seed=0, n=2, size=INSIZE):
    rng = np.random.default_rng(seed)
    s = size // 8
    return (rng.uniform(-0.5, 0.5, (n, 3, size, size)).astype(np.float32),
            (rng.uniform(-1, 1, (n, 38, s, s)) * 0.5).astype(np.float32),
            rng.uniform(0, 1, (n, 19, s, s)).astype(np.float32),
            (rng.uniform(0, 1, (n, s, s)) > 0.25).astype(np.float32))


def _tensors(batch):
    import mindspore as ms
    return tuple(ms.Tensor(a) for a in batch)


def _values(net):
    return {p.name: p.asnumpy().copy() for p in net.trainable_params()}


def _manual_grads(net, batch):
    """Gradients of the (unscaled) total loss w.r.t. every trainable parameter."""
    import mindspore as ms

    from src.model.loss import NetWithLoss
    net_with_loss = NetWithLoss(net)
    weights = net.trainable_params()

    def total(*inputs):
        return net_with_loss(*inputs)[0]

    grads = ms.grad(total, grad_position=None, weights=weights)(*_tensors(batch))
    return {p.name: g.asnumpy() for p, g in zip(weights, grads)}


def _clip_norm(g, bound):
    norm = np.sqrt((g.astype(np.float64) ** 2).sum())
    return g * (bound / max(norm, bound))


@pytest.mark.parametrize("train_type, clip_type, unscale", [
    ("fix_loss_scale", 1, False),
    ("clip_grad", 1, False),      # the reference: clip the loss-scaled gradients
    ("clip_grad", 1, True),
    ("clip_grad", 0, False),
])
def test_one_step_update_rule(ms_cpu, train_type, clip_type, unscale):
    import mindspore as ms
    ms.set_seed(3)
    net = tiny_pose_net()
    batch = toy_batch(1)
    before = _values(net)
    grads = _manual_grads(net, batch)
    lr, scale, bound = 0.01, 64.0, 0.05
    schedules = build_lr_schedules(lr, 0.1, steps_per_epoch=5, max_epoch=1, lr_steps=[])
    # Momentum's first step is exactly w - lr * g (the velocity starts at zero)
    optimizer = build_optimizer(net.trainable_params(), schedules, "Momentum", group_params=False)
    step = build_train_step(net, optimizer, train_type, loss_scale=scale, clip_type=clip_type,
                            clip_value=bound, unscale_before_clip=unscale)
    loss, paf_l, heat_l = step(*_tensors(batch))
    assert paf_l.shape == (2,) and heat_l.shape == (2,)
    np.testing.assert_allclose(float(loss.asnumpy()), paf_l.asnumpy().sum() + heat_l.asnumpy().sum(),
                               rtol=1e-5)
    after = _values(net)
    clipped_some = False
    for name, g in grads.items():
        if train_type == "fix_loss_scale":
            used = g
        else:
            scaled = g if unscale else g * scale
            used = _clip_norm(scaled, bound) if clip_type == 1 else np.clip(scaled, -bound, bound)
            clipped_some |= not np.allclose(used, scaled)
        np.testing.assert_allclose(after[name], before[name] - lr * used, rtol=2e-4, atol=1e-7,
                                   err_msg=name)
    if train_type == "clip_grad":
        assert clipped_some, "the bound should be small enough to clip"


def test_vgg_frozen_during_its_zero_lr_steps(ms_cpu):
    import mindspore as ms
    ms.set_seed(4)
    net = tiny_pose_net()
    vgg, base, stages = split_param_groups(net.trainable_params())
    assert len(vgg) == 4 and len(base) == 4 and len(stages) == 8
    schedules = build_lr_schedules(1e-2, 0.1, steps_per_epoch=4, max_epoch=1, lr_steps=[],
                                   vgg_freeze_steps=2)
    optimizer = build_optimizer(net.trainable_params(), schedules, "Adam", group_params=True)
    step = build_train_step(net, optimizer, "fix_loss_scale", loss_scale=1024.0)
    start = _values(net)
    for i in range(2):
        step(*_tensors(toy_batch(10 + i)))
    frozen = _values(net)
    for p in vgg:
        np.testing.assert_array_equal(frozen[p.name], start[p.name])
    for p in base + stages:
        assert not np.array_equal(frozen[p.name], start[p.name]), p.name
    step(*_tensors(toy_batch(12)))
    thawed = _values(net)
    assert all(not np.array_equal(thawed[p.name], frozen[p.name]) for p in vgg)
    assert int(optimizer.global_step.asnumpy().reshape(-1)[0]) == 3


@pytest.mark.parametrize("train_type", ["fix_loss_scale", "clip_grad"])
def test_loss_goes_down_on_a_fixed_batch(ms_cpu, train_type):
    import mindspore as ms
    ms.set_seed(5)
    net = tiny_pose_net()
    schedules = build_lr_schedules(3e-3, 0.1, steps_per_epoch=30, max_epoch=1, lr_steps=[],
                                   vgg_freeze_steps=0)
    optimizer = build_optimizer(net.trainable_params(), schedules, "Adam", group_params=True)
    step = build_train_step(net, optimizer, train_type, loss_scale=128.0)
    batch = _tensors(toy_batch(7))
    losses = [float(step(*batch)[0].asnumpy()) for _ in range(30)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_bad_arguments(ms_cpu):
    net = tiny_pose_net()
    schedules = build_lr_schedules(1e-3, 0.1, 5, 1, [])
    optimizer = build_optimizer(net.trainable_params(), schedules, "Adam")
    with pytest.raises(ValueError, match="train_type"):
        build_train_step(net, optimizer, "dynamic")
    with pytest.raises(ValueError, match="loss_scale"):
        build_train_step(net, optimizer, "fix_loss_scale", loss_scale=0)
    with pytest.raises(ValueError, match="optimizer"):
        build_optimizer(net.trainable_params(), schedules, "SGD")


@pytest.mark.slow
@pytest.mark.parametrize("train_type", ["fix_loss_scale", "clip_grad"])
def test_real_network_loss_goes_down(ms_cpu, train_type):
    """The real OpenPoseNet, reference lr and loss scale, 30 steps on one fixed batch (~2 min)."""
    import mindspore as ms

    from src.model.network import OpenPoseNet
    ms.set_seed(6)
    net = OpenPoseNet()
    schedules = build_lr_schedules(1e-4, 0.1, steps_per_epoch=30, max_epoch=1, lr_steps=[],
                                   vgg_freeze_steps=0)
    optimizer = build_optimizer(net.trainable_params(), schedules, "Adam", group_params=True)
    step = build_train_step(net, optimizer, train_type, loss_scale=16384.0)
    batch = _tensors(toy_batch(8, n=2, size=64))
    losses = [float(step(*batch)[0].asnumpy()) for _ in range(30)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses


def _tiny_loss_criterion(factor):
    """OpenPoseLoss scaled by ``factor``: gradients as small as the full network's VGG ones."""
    import mindspore.nn as nn

    from src.model.loss import OpenPoseLoss

    class Scaled(nn.Cell):
        def __init__(self):
            super().__init__()
            self.loss = OpenPoseLoss()

        def construct(self, *inputs):
            total, pafs, heatmaps = self.loss(*inputs)
            return total * factor, pafs, heatmaps

    return Scaled()


def _reference_arithmetic_step(net, schedules, loss_scale, criterion):
    """What the reference's Model(FixedLossScaleManager(drop_overflow_update=False)) built:
    TrainOneStepCell with sens = loss_scale, Adam (eps 1e-8) over the scaled gradients."""
    import mindspore as ms
    import mindspore.nn as nn

    from src.model.loss import NetWithLoss

    class LossOnly(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.net_with_loss = NetWithLoss(net, criterion)

        def construct(self, *inputs):
            return self.net_with_loss(*inputs)[0]

    groups_lr = ms.Tensor(schedules.stage, ms.float32)
    optimizer = nn.Adam(net.trainable_params(), learning_rate=groups_lr, eps=ADAM_EPS)
    step = nn.TrainOneStepCell(LossOnly(), optimizer, sens=loss_scale)
    step.set_train()
    return step


@pytest.mark.parametrize("eps_rule, must_match", [("divided", True), ("reverted", False)])
def test_fix_loss_scale_adam_equals_reference_arithmetic(ms_cpu, eps_rule, must_match):
    """fix_loss_scale + Adam with eps / loss_scale gives the update of the reference's recipe
    (Adam on loss-scaled gradients, eps 1e-8); with eps left at 1e-8 it does not. Gradients are
    made about 1e-9 (the loss is scaled by 1e-7), as the full network's VGG gradients are."""
    import mindspore as ms
    scale, factor, steps = 16384.0, 1e-7, 3
    schedules = build_lr_schedules(1e-3, 0.1, steps_per_epoch=steps, max_epoch=1, lr_steps=[],
                                   vgg_freeze_steps=0)
    ms.set_seed(21)
    ours_net = tiny_pose_net()
    ms.set_seed(21)
    ref_net = tiny_pose_net()
    start = _values(ours_net)
    np.testing.assert_array_equal(start["stage_1.conv1_L1.weight"], _values(ref_net)["stage_1.conv1_L1.weight"])
    eps = adam_epsilon("fix_loss_scale", scale) if eps_rule == "divided" else ADAM_EPS
    optimizer = build_optimizer(ours_net.trainable_params(), schedules, "Adam", group_params=False, eps=eps)
    ours = build_train_step(ours_net, optimizer, "fix_loss_scale", loss_scale=scale,
                            criterion=_tiny_loss_criterion(factor))
    ref = _reference_arithmetic_step(ref_net, schedules, scale, _tiny_loss_criterion(factor))
    for index in range(steps):
        batch = _tensors(toy_batch(30 + index))
        ours(*batch)
        ref(*batch)
    ours_after, ref_after = _values(ours_net), _values(ref_net)
    worst = 0.0
    for name, value in start.items():
        ours_delta = ours_after[name].astype(np.float64) - value
        ref_delta = ref_after[name].astype(np.float64) - value
        size = np.abs(ref_delta).max()
        if size == 0:
            assert np.abs(ours_delta).max() == 0, f"'{name}' moved where the reference's did not"
            continue
        worst = max(worst, np.abs(ours_delta - ref_delta).max() / size)
    print(f"eps {eps_rule}: worst update difference {worst:.2e}")
    if must_match:
        assert worst < 1e-4, f"eps / loss_scale: updates differ from the reference recipe's by {worst:.2e}"
    else:
        assert worst > 1e-2, f"eps 1e-8 on unscaled gradients should differ visibly, differs by {worst:.2e}"
