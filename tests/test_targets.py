"""Targets: golden parity with the reference, the loop implementation, and hand-made cases."""
import cv2
import numpy as np
import pytest

from src.data.loop_targets import loop_heatmaps, loop_loss_mask, loop_pafs
from src.data.targets import generate_heatmaps, generate_pafs, generate_targets, loss_mask_from_ignore
from src.skeleton import NUM_HEATMAPS, NUM_JOINTS, NUM_PAFS, Joint

GOLDEN_IDS = (785, 40083, 196141, 197388)


@pytest.fixture(scope="module")
def golden(golden_dir):
    path = golden_dir / "targets.npz"
    if not path.exists():
        pytest.skip(f"golden targets not found at {path}")
    return np.load(path)


@pytest.mark.parametrize("image_id", GOLDEN_IDS)
def test_golden_parity(golden, image_id):
    poses = golden[f"img{image_id}_poses"]
    heatmaps = generate_heatmaps(poses, 46, 46, heatmap_sigma=7)
    pafs = generate_pafs(poses, 46, 46, paf_sigma=8)
    assert heatmaps.shape == (19, 46, 46) and heatmaps.dtype == np.float32
    assert pafs.shape == (38, 46, 46) and pafs.dtype == np.float32
    np.testing.assert_allclose(heatmaps, golden[f"img{image_id}_heatmaps"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(pafs, golden[f"img{image_id}_pafs"], rtol=0, atol=1e-5)
    # The golden images really exercise overlap averaging and the background channel.
    assert golden[f"img{image_id}_heatmaps"][18].min() < 0.05


def _random_poses(rng, people, spread=400):
    poses = np.zeros((people, NUM_JOINTS, 3))
    poses[..., :2] = rng.uniform(-40, spread, size=(people, NUM_JOINTS, 2))
    if rng.random() < 0.5:
        poses[..., :2] = np.round(poses[..., :2])
    poses[..., 2] = rng.integers(0, 3, size=(people, NUM_JOINTS))
    if people > 1:
        poses[1, Joint.RIGHT_ELBOW, :2] = poses[1, Joint.RIGHT_SHOULDER, :2]  # zero-length limb
        poses[1, [Joint.RIGHT_ELBOW, Joint.RIGHT_SHOULDER], 2] = 2
    return poses


def test_matches_loops_on_random_poses():
    rng = np.random.default_rng(0)
    for trial in range(60):
        poses = _random_poses(rng, int(rng.integers(0, 7)), spread=[100, 400][trial % 2])
        size = [12, 46][trial % 2]
        np.testing.assert_allclose(generate_heatmaps(poses, size, size, 7),
                                   loop_heatmaps(poses, size, size, 7), atol=1e-6)
        np.testing.assert_allclose(generate_pafs(poses, size, size, 8),
                                   loop_pafs(poses, size, size, 8), atol=1e-6)


def test_empty_poses():
    heatmaps = generate_heatmaps(np.zeros((0, 18, 3)), 8, 8, 7)
    pafs = generate_pafs(np.zeros((0, 18, 3)), 8, 8, 8)
    assert np.all(heatmaps[:18] == 0) and np.all(heatmaps[18] == 1)
    assert pafs.shape == (NUM_PAFS, 8, 8) and not pafs.any()
    invisible = np.ones((2, 18, 3))
    invisible[..., 2] = 0
    assert not generate_pafs(invisible, 8, 8, 8).any()
    assert np.all(generate_heatmaps(invisible, 8, 8, 7)[18] == 1)


def test_heatmap_peak_and_width():
    poses = np.zeros((1, 18, 3))
    # Cell (row 3, col 5) is centred at input (8 * 5.4375, 8 * 3.4375).
    poses[0, Joint.NOSE] = (8 * 5.4375, 8 * 3.4375, 2)
    heatmaps = generate_heatmaps(poses, 8, 8, heatmap_sigma=8)
    assert heatmaps[Joint.NOSE, 3, 5] == pytest.approx(1.0)
    assert heatmaps[Joint.NOSE, 3, 6] == pytest.approx(np.exp(-0.5), rel=1e-6)  # 1 sigma away
    assert heatmaps[18, 3, 5] == pytest.approx(0.0)
    assert not heatmaps[Joint.NECK].any()


def test_paf_band_and_averaging():
    poses = np.zeros((2, 18, 3))
    # Person 0: a horizontal neck -> right-hip limb (limb 0) along row 2 of an 8x8 map.
    poses[0, Joint.NECK] = (8 * 1.4375, 8 * 2.4375, 2)
    poses[0, Joint.RIGHT_HIP] = (8 * 6.4375, 8 * 2.4375, 2)
    pafs = generate_pafs(poses[:1], 8, 8, paf_sigma=8)
    band = pafs[0] != 0
    assert np.array_equal(np.nonzero(band.any(axis=1))[0], [1, 2, 3])   # |across| <= 1 cell
    assert np.array_equal(np.nonzero(band.any(axis=0))[0], [1, 2, 3, 4, 5, 6])
    assert np.all(pafs[0][band] == 1) and not pafs[1].any()
    # Person 1: the same limb pointing down from the same neck; cells covered twice average.
    poses[1, Joint.NECK] = poses[0, Joint.NECK]
    poses[1, Joint.RIGHT_HIP] = (8 * 1.4375, 8 * 6.4375, 2)
    pafs = generate_pafs(poses, 8, 8, paf_sigma=8)
    assert pafs[0, 2, 1] == pytest.approx(0.5) and pafs[1, 2, 1] == pytest.approx(0.5)
    assert pafs[0, 2, 5] == pytest.approx(1.0) and pafs[1, 5, 1] == pytest.approx(1.0)


def test_loss_mask_matches_reference_calls():
    rng = np.random.default_rng(1)
    ignore = np.zeros((64, 64), np.uint8)
    ignore[10:14, 40:47] = 1
    ignore[rng.integers(0, 64, 5), rng.integers(0, 64, 5)] = 1
    loss = loss_mask_from_ignore(ignore, 8, 8)
    assert loss.shape == (8, 8) and loss.dtype == np.float32
    np.testing.assert_allclose(loss, loop_loss_mask(ignore, 8, 8), atol=1e-7)
    assert loss.min() == 0.0 and loss.max() == 1.0
    # morphologyEx and dilate agree, including the even kernel's anchor.
    kernel = np.ones((16, 16))
    assert np.array_equal(cv2.morphologyEx(ignore, cv2.MORPH_DILATE, kernel),
                          cv2.dilate(ignore, np.ones((16, 16), np.uint8)))
    assert np.all(loss_mask_from_ignore(np.zeros((64, 64)), 8, 8) == 1)


def test_generate_targets_shapes():
    poses = np.zeros((1, 18, 3))
    poses[0, :, :2] = np.random.default_rng(2).uniform(0, 64, (18, 2))
    poses[0, :, 2] = 2
    pafs, heatmaps, loss = generate_targets(poses, np.zeros((64, 64)), 64, 7, 8)
    assert pafs.shape == (NUM_PAFS, 8, 8) and heatmaps.shape == (NUM_HEATMAPS, 8, 8)
    assert loss.shape == (8, 8)
    assert all(a.dtype == np.float32 for a in (pafs, heatmaps, loss))
    assert np.abs(pafs).max() <= 1 + 1e-6 and 0 <= heatmaps.min() and heatmaps.max() <= 1
