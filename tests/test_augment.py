"""Augmentation: a marked keypoint stays on its transformed joint; flips swap sides."""
import numpy as np
import pytest

from src.config import default_config
from src.data.augment import (
    AugmentParams,
    augment,
    augment_matrix,
    color_luts,
    distort_color,
    flip,
    random_crop,
    random_resize,
    random_rotate,
)
from src.skeleton import FLIP_JOINT_PAIRS, Joint

MARKED = Joint.LEFT_WRIST
PARAMS = AugmentParams.from_config(default_config(insize=128))


def _person(rng, width=200, height=160):
    """A 'person' whose joints spread over ~90 x 110 pixels, all labelled."""
    center = rng.uniform([70, 60], [width - 70, height - 60])
    pose = np.zeros((1, 18, 3))
    pose[0, :, :2] = center + rng.uniform([-45, -55], [45, 55], size=(18, 2))
    pose[0, :, 2] = 2
    return pose


def _marked_image(pose, width=200, height=160):
    """Dark image with a bright dot (Gaussian, sigma 2 px) on the marked joint; the ignore mask
    marks a 5x5 square there."""
    ys, xs = np.mgrid[0:height, 0:width]
    x, y = pose[0, MARKED, :2]
    dot = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0 ** 2))
    image = np.repeat((dot * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    mask = ((np.abs(xs - x) <= 2) & (np.abs(ys - y) <= 2)).astype(np.uint8)
    return image, mask


def _bright_centroid(image):
    grey = image.astype(np.float64).mean(axis=2)
    weights = np.where(grey > 170, grey - 170, 0)
    assert weights.sum() > 0, "the dot left the image"
    ys, xs = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def _mask_centroid(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("step", [random_resize, random_rotate, random_crop])
def test_each_geometric_step_keeps_the_dot_on_the_joint(step):
    for seed in range(6):
        rng = np.random.default_rng(seed)
        pose = _person(rng)
        image, mask = _marked_image(pose)
        out, out_mask, out_pose = step(image, mask, pose, PARAMS, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out_mask.shape == out.shape[:2]
        expected = out_pose[0, MARKED, :2]
        assert np.linalg.norm(_bright_centroid(out) - expected) < 1.5
        assert np.linalg.norm(_mask_centroid(out_mask) - expected) < 2.0  # binary: coarser
        assert np.array_equal(out_pose[..., 2], pose[..., 2])


def test_crop_has_insize_and_grey_border():
    rng = np.random.default_rng(3)
    pose = np.zeros((1, 18, 3))
    pose[0, :, :2] = rng.uniform([5, 5], [55, 45], size=(18, 2))
    pose[0, :, 2] = 2
    image, mask = _marked_image(pose, 60, 50)
    out, out_mask, _ = random_crop(image, mask, pose, PARAMS, rng)
    assert out.shape == (128, 128, 3) and out_mask.shape == (128, 128)
    assert (out == 128).all(axis=2).mean() > 0.5     # most of the crop is outside the image


def test_flip_swaps_left_and_right():
    rng = np.random.default_rng(4)
    pose = _person(rng)
    image, mask = _marked_image(pose)
    out, out_mask, out_pose = flip(image, mask, pose)
    width = image.shape[1]
    for left, right in FLIP_JOINT_PAIRS:
        assert out_pose[0, right, 0] == pytest.approx(width - 1 - pose[0, left, 0])
        assert out_pose[0, left, 1] == pytest.approx(pose[0, right, 1])
    assert out_pose[0, Joint.NOSE, 0] == pytest.approx(width - 1 - pose[0, Joint.NOSE, 0])
    # The dot marked on the left wrist is now where the *right* wrist is.
    assert np.linalg.norm(_bright_centroid(out) - out_pose[0, Joint.RIGHT_WRIST, :2]) < 0.5
    assert np.linalg.norm(_mask_centroid(out_mask) - out_pose[0, Joint.RIGHT_WRIST, :2]) < 0.5


def test_color_distortion_keeps_geometry_and_valid_hue():
    rng = np.random.default_rng(5)
    pose = _person(rng)
    image, _ = _marked_image(pose)
    image[..., 0] = 200                            # a coloured background
    out = distort_color(image, rng)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.linalg.norm(_bright_centroid(out) - pose[0, MARKED, :2]) < 1.0
    for seed in range(20):
        lut = color_luts(np.random.default_rng(seed))
        assert lut.shape == (1, 256, 3) and lut[0, :180, 0].max() < 180


def test_whole_chain_keeps_the_dot_on_the_joint_and_flips():
    flipped_seen = set()
    for seed in range(16):
        rng = np.random.default_rng(100 + seed)
        pose = _person(rng)
        image, mask = _marked_image(pose)
        _, flipped, _ = augment_matrix(pose, 200, 160, PARAMS, np.random.default_rng(seed))
        out, out_mask, out_pose = augment(image, mask, pose, PARAMS,
                                          np.random.default_rng(seed))
        assert out.shape == (128, 128, 3) and out_mask.shape == (128, 128)
        assert out_mask.dtype == np.uint8 and set(np.unique(out_mask)) <= {0, 1}
        joint = Joint.RIGHT_WRIST if flipped else MARKED
        expected = out_pose[0, joint, :2]
        if not (4 <= expected).all() or not (expected < 124).all():
            continue  # the crop may leave the marked joint (and its square) outside
        assert np.linalg.norm(_bright_centroid(out) - expected) < 1.5
        assert np.linalg.norm(_mask_centroid(out_mask) - expected) < 2.0  # binary: coarser
        flipped_seen.add(flipped)
    assert flipped_seen == {True, False}


def test_reproducible_and_explicit_random_state():
    rng = np.random.default_rng(7)
    pose = _person(rng)
    image, mask = _marked_image(pose)
    state = np.random.get_state()
    first = augment(image, mask, pose, PARAMS, np.random.default_rng(11))
    second = augment(image, mask, pose, PARAMS, np.random.default_rng(11))
    legacy = augment(image, mask, pose, PARAMS, np.random.RandomState(11))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert legacy[0].shape == (128, 128, 3)
    assert all(np.array_equal(a, b) for a, b in zip(state, np.random.get_state()) if
               isinstance(a, np.ndarray))
    other = augment(image, mask, pose, PARAMS, np.random.default_rng(12))
    assert not np.array_equal(first[2], other[2])


def test_scale_follows_box_sizes():
    image = np.zeros((100, 100, 3), np.uint8)
    pose = np.zeros((1, 18, 3))
    pose[0, :, 2] = 2
    for spread, low, high in ((20, 100, 200), (1000, 50, 100)):
        # Box diagonal d: scale in [clip(64 / d, 0.5, 1), clip(512 / d, 1, 2)].
        pose[0, :, :2] = np.linspace(0, spread, 18)[:, None] * [1, 0.5]
        sides = {random_resize(image, None, pose, PARAMS, np.random.default_rng(seed))[0].shape[0]
                 for seed in range(12)}
        assert min(sides) >= low and max(sides) <= high and len(sides) > 3


def test_params_from_config():
    params = AugmentParams.from_config(default_config(insize=96, max_rotate_degree=10), flip_prob=0.0)
    assert (params.insize, params.max_rotate_degree, params.flip_prob) == (96, 10, 0.0)
    assert params.min_box_size == 64
    assert AugmentParams.from_config(default_config(max_scale=1.5)).max_scale == 1.5
