"""Training-step parity with the reference's own training code (golden/train.npz).

The golden file holds three steps of the reference's recipe for three cases, run with its own
classes on the full network; ``golden/README.md`` gives the rule that rebuilds its initial
weights and batches. Here the same weights and batches go through this repository's training
loop (:func:`src.train.loop.run_training`) with the reference's settings, and the losses and the
per-parameter updates are compared at float32-rounding tolerances:

* each step's loss within 1e-4 relative;
* per parameter, the sum and the absolute sum of (after - before), relative to the reference's
  absolute sum: within 3e-3 for (nearly) every parameter, as the case allows (below).

Float32 rounding is not small here. Adam's first step moves every element by about
``lr * sign(gradient)`` however small the gradient, and with the reference's effective epsilon
(1e-8 / 16384) gradients at rounding level still take full steps, so another CPU's summation
order flips a few signs and the trajectories part slightly. The golden file was made on
another machine; measured on this one (AMD EPYC, AVX2), relative update differences:

=====================  ========  ========  ===========  =====================
case                   worst     median    over 3e-3    eps reverted (worst,
                                                         median, over 3e-3)
=====================  ========  ========  ===========  =====================
Adam, 3 groups         5.0e-3    7.8e-6    0.6%         2.4e-2, 4.3e-3, 55%
Adam, one group        1.1e-2    1.1e-3    22%          2.7e-2, 5.9e-3, 66%
clip + Momentum        1.1e-3    2.0e-4    0%           (no Adam)
=====================  ========  ========  ===========  =====================

The one-group case moves the VGG layers, whose gradients (1e-9 to 5e-8) are mostly below the
reference's epsilon, which is why it parts most. That Adam itself does the reference's
arithmetic is proven exactly, platform-independently, in tests/test_train_step.py
(``test_fix_loss_scale_adam_equals_reference_arithmetic``). The bounds below sit about 1.4x
above these figures and fail with Adam's epsilon left at 1e-8 on unscaled gradients.
"""
import numpy as np
import pytest

from src.model.network import OpenPoseNet
from src.train.data import ArrayTrainData
from src.train.loop import run_training
from src.train.settings import default_settings
from tests.conftest import load_golden

LOSS_RTOL = 1e-4
UPDATE_TOL = 3e-3
INSIZE = 64
LOSS_SCALE = 16384.0

#: case name -> this repository's settings for the reference's recipe of that case
CASES = {
    "fix_loss_scale_adam_groups": dict(train_type="fix_loss_scale", optimizer="Adam",
                                       group_params=True),
    "fix_loss_scale_adam_nogroups": dict(train_type="fix_loss_scale", optimizer="Adam",
                                         group_params=False),
    "clip_grad_momentum": dict(train_type="clip_grad", optimizer="Momentum", group_params=False,
                               clip_type=1, clip_value=10.0, unscale_before_clip=False),
}
#: case -> (bound for the worst parameter, least share of parameters within UPDATE_TOL)
BOUNDS = {"fix_loss_scale_adam_groups": (7.5e-3, 0.99),
          "fix_loss_scale_adam_nogroups": (1.6e-2, 0.70),
          "clip_grad_momentum": (UPDATE_TOL, 1.0)}


@pytest.fixture(scope="module")
def golden(golden_dir):
    return load_golden(golden_dir, "train.npz")


def reference_initial_weights(network):
    """The golden rule's initial weights, in ``get_parameters()`` order: {name: float32 array}."""
    weights = {}
    for index, param in enumerate(network.get_parameters()):
        rng = np.random.default_rng(1000 + index)
        shape = tuple(param.shape)
        if len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:
            value = rng.normal(0.0, 0.01, shape)
        weights[param.name] = value.astype(np.float32)
    return weights


def reference_batches():
    """The golden rule's 6 samples at insize 64: (images, pafs, heatmaps, ignore_mask)."""
    rng = np.random.default_rng(7)
    grid = INSIZE // 8
    images = rng.uniform(-0.5, 0.5, (6, 3, INSIZE, INSIZE)).astype(np.float32)
    pafs = (rng.uniform(-1, 1, (6, 38, grid, grid)) * 0.5).astype(np.float32)
    heatmaps = rng.uniform(0, 1, (6, 19, grid, grid)).astype(np.float32)
    mask = (rng.uniform(0, 1, (6, grid, grid)) > 0.2).astype(np.float32)
    return images, pafs, heatmaps, mask


def run_case(case, tmp_path):
    """Three steps of this repository's loop on the golden inputs.

    Returns:
        (losses (3,), initial {name: array}, final {name: array}, parameter names in order).
    """
    import mindspore
    network = OpenPoseNet(vgg_with_bn=False, num_stages=6)
    initial = reference_initial_weights(network)
    for param in network.get_parameters():
        param.set_data(mindspore.Tensor(initial[param.name]))
    data = ArrayTrainData(*reference_batches(), batch_size=2, shuffle=False)
    settings = default_settings(save_model_path=str(tmp_path), batch_size=2, max_epoch=1, lr=1e-4,
                                lr_gamma=0.1, lr_steps=(1000000,), lr_type="default",
                                loss_scale=LOSS_SCALE, log_interval=0, ckpt_interval=0,
                                keep_checkpoint_max=1, progress=False, device_target="CPU",
                                **CASES[case])
    losses = []
    result = run_training(settings, data, network=network, log=lambda line: None,
                          step_callback=lambda step, loss: losses.append(loss))
    final = {p.name: p.asnumpy() for p in result.network.get_parameters()}
    names = [p.name for p in network.get_parameters()]
    return np.array(losses), initial, final, names


@pytest.mark.parametrize("case", sorted(CASES))
def test_three_steps_match_reference(case, golden, tmp_path, ms_cpu):
    losses, initial, final, names = run_case(case, tmp_path)
    assert names == [str(n) for n in golden["param_names"]], "parameter order differs from the golden file"
    ref_losses = golden[f"{case}_losses"]
    np.testing.assert_allclose(losses, ref_losses, rtol=LOSS_RTOL,
                               err_msg=f"{case}: per-step losses differ from the reference's")
    ref_sum, ref_abs = golden[f"{case}_delta_sum"], golden[f"{case}_delta_abs"]
    errors = {}
    for index, name in enumerate(names):
        delta = final[name].astype(np.float64) - initial[name].astype(np.float64)
        ours_sum, ours_abs = delta.sum(), np.abs(delta).sum()
        err = max(abs(ours_sum - ref_sum[index]), abs(ours_abs - ref_abs[index]))
        if ref_abs[index] == 0:
            assert err == 0, f"{case}: '{name}' must not move (the reference froze it), moved by {ours_abs:g}"
            continue
        errors[name] = err / ref_abs[index]
    worst = max(errors, key=errors.get)
    over = sorted(name for name, rel in errors.items() if rel > UPDATE_TOL)
    print(f"{case}: losses {losses}, worst update difference {errors[worst]:.2e} ({worst}), "
          f"{len(over)} of {len(errors)} moving parameters over {UPDATE_TOL:g}")
    worst_bound, min_share = BOUNDS[case]
    assert errors[worst] <= worst_bound, (
        f"{case}: update of '{worst}' differs from the reference's by {errors[worst]:.2e} of its size")
    assert len(errors) - len(over) >= min_share * len(errors), (
        f"{case}: {len(over)} of {len(errors)} parameter updates differ from the reference's by more "
        f"than {UPDATE_TOL:g} of their size (e.g. {over[:3]})")
