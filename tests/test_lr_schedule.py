"""Learning-rate schedules: parity with the reference's golden arrays, groups, errors."""
import ast

import numpy as np
import pytest

from src.train.lr_schedule import build_lr_schedules
from tests.conftest import load_golden

CASES = ("default_1card", "default_8card", "cosine_1card")


@pytest.fixture(scope="module")
def golden_lr(golden_dir):
    return load_golden(golden_dir, "lr.npz")


@pytest.mark.parametrize("case", CASES)
def test_matches_reference_golden(golden_lr, case):
    args = ast.literal_eval(str(golden_lr[f"{case}_args"]))
    schedules = build_lr_schedules(args["lr"], args["lr_gamma"], args["steps_per_epoch"],
                                   args["max_epoch_train"], args["lr_steps"], args["group_size"],
                                   args["lr_type"], args.get("warmup_epoch", 5))
    for group in ("stage", "base", "vgg"):
        ours, ref = getattr(schedules, group), golden_lr[f"{case}_{group}"]
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=0)


def test_step_decay_and_vgg_freeze_by_hand():
    s = build_lr_schedules(0.8, 0.5, steps_per_epoch=10, max_epoch=3, lr_steps=[8, 16],
                           group_size=2, vgg_freeze_steps=6)
    assert s.total_steps == 30
    np.testing.assert_allclose(s.stage[:4], 0.8)
    np.testing.assert_allclose(s.stage[4:8], 0.4)      # 8 // group_size 2 = step 4
    np.testing.assert_allclose(s.stage[8:], 0.2)
    np.testing.assert_allclose(s.base, s.stage / 4)
    assert np.all(s.vgg[:3] == 0)                       # 6 // 2 frozen steps
    np.testing.assert_allclose(s.vgg[3:], s.base[3:])


def test_cosine_warmup_by_hand():
    s = build_lr_schedules(0.3, 0.1, steps_per_epoch=4, max_epoch=5, lr_steps=[],
                           lr_type="cosine", warmup_epoch=1)
    np.testing.assert_allclose(s.stage[:4], [0.1, 0.15, 0.2, 0.25], rtol=1e-6)
    expected = (1 + np.cos((np.arange(4, 20) - 4) / 20 * np.pi)) / 2 * 0.3
    np.testing.assert_allclose(s.stage[4:], expected, rtol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="lr_type"):
        build_lr_schedules(1e-4, 0.1, 10, 1, [5], lr_type="poly")
    with pytest.raises(ValueError, match="at least one step"):
        build_lr_schedules(1e-4, 0.1, 0, 1, [5])
