"""Tests of src.evaluate.decoder: golden parity with the reference, and agreement with the
plain loop implementation of the same algorithm (src.evaluate.decoding.reference, the
specification) on synthetic maps."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from src.config import ConfigError, parse_config
from src.data.targets import generate_heatmaps, generate_pafs
from src.evaluate.decoder import DecodeParams, decode_people, decode_poses, find_peaks, greedy_match, group_people
from src.evaluate.decoding import limbs, operators, peaks
from src.evaluate.decoding.reference import (
    decode_poses_reference,
    find_peaks_reference,
    group_people_reference,
    smooth_map,
    upsample_map,
)
from src.skeleton import EAR_SHOULDER_LIMBS, LIMB_ARRAY, NUM_JOINTS
from tests.conftest import default_decode_params

GOLDEN_IMAGES = (785, 40083, 196141, 197388)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def assert_same_people(poses, scores, ref_poses, ref_scores, pos_tol=1e-3, score_tol=1e-4):
    """People compared as sets: sort both by (score, joints) and compare one to one."""
    assert poses.shape == ref_poses.shape, (poses.shape, ref_poses.shape)
    assert scores.shape == ref_scores.shape
    if len(scores) == 0:
        return
    order = np.lexsort((poses[:, :, 0].sum(1), np.round(scores, 3)))
    ref_order = np.lexsort((ref_poses[:, :, 0].sum(1), np.round(ref_scores, 3)))
    np.testing.assert_allclose(scores[order], ref_scores[ref_order], rtol=0, atol=score_tol)
    np.testing.assert_allclose(poses[order], ref_poses[ref_order], rtol=0, atol=pos_tol)


def synthetic_maps(seed, map_h=20, map_w=28, people=3, noise=0.0):
    """Stride-8 maps rendered from random people, optionally with Gaussian noise."""
    rng = np.random.default_rng(seed)
    height, width = 8 * map_h, 8 * map_w
    poses = np.zeros((people, NUM_JOINTS, 3))
    for n in range(people):
        centre = rng.uniform([0.2 * width, 0.3 * height], [0.8 * width, 0.7 * height])
        poses[n, :, :2] = centre + rng.normal(0, 0.15 * height, (NUM_JOINTS, 2))
        poses[n, :, 2] = rng.random(NUM_JOINTS) > 0.1
    poses[:, :, 0] = np.clip(poses[:, :, 0], 0, width - 1)
    poses[:, :, 1] = np.clip(poses[:, :, 1], 0, height - 1)
    heatmaps = generate_heatmaps(poses, map_h, map_w, 7)
    pafs = generate_pafs(poses, map_h, map_w, 8)
    if noise:
        heatmaps = heatmaps + rng.normal(0, noise, heatmaps.shape).astype(np.float32)
        pafs = pafs + rng.normal(0, noise, pafs.shape).astype(np.float32)
    return heatmaps.astype(np.float32), pafs.astype(np.float32), (width, height)


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden(golden_dir):
    return dict(np.load(golden_dir / "decode.npz"))


@pytest.mark.parametrize("kind", ["clean", "noisy"])
@pytest.mark.parametrize("image_id", GOLDEN_IMAGES)
def test_golden_parity(golden, image_id, kind):
    key = f"img{image_id}_"
    poses, scores = decode_poses(golden[f"{key}{kind}_heatmaps"], golden[f"{key}{kind}_pafs"],
                                 golden[f"{key}input_wh"], golden[f"{key}orig_wh"], default_decode_params())
    assert poses.dtype == np.float64 and poses.shape[1:] == (NUM_JOINTS, 3)
    assert len(scores) > 0
    assert_same_people(poses, scores, golden[f"{key}{kind}_poses"], golden[f"{key}{kind}_scores"])


@pytest.mark.parametrize("image_id", GOLDEN_IMAGES)
def test_reference_path_matches_golden_on_clean_maps(golden, image_id):
    """The specification itself reproduces the reference's outputs (clean maps: fast enough)."""
    key = f"img{image_id}_"
    poses, scores = decode_poses_reference(
        golden[f"{key}clean_heatmaps"], golden[f"{key}clean_pafs"],
        tuple(golden[f"{key}input_wh"]), tuple(golden[f"{key}orig_wh"]), default_decode_params())
    assert len(scores) > 0
    assert_same_people(poses, scores, golden[f"{key}clean_poses"], golden[f"{key}clean_scores"])


@pytest.mark.parametrize("seed,noise", [(0, 0.0), (1, 0.0), (2, 0.02), (3, 0.04)])
def test_matches_slow_implementation(seed, noise):
    heatmaps, pafs, input_size = synthetic_maps(seed, noise=noise)
    params = default_decode_params()
    orig_size = (input_size[0] * 3 // 2, input_size[1] * 3 // 2)
    poses, scores = decode_poses(heatmaps, pafs, input_size, orig_size, params)
    ref_poses, ref_scores = decode_poses_reference(heatmaps, pafs, input_size, orig_size, params)
    assert len(ref_scores) > 0
    assert_same_people(poses, scores, ref_poses, ref_scores, pos_tol=1e-9, score_tol=1e-5)


@pytest.mark.parametrize("seed,noise", [(0, 0.0), (2, 0.02)])
def test_confidences_are_the_smoothed_heatmap_peaks(seed, noise):
    """decode_people's per-joint confidence is the reference's smoothed heatmap value at the
    joint's peak pixel, 0 exactly for a missing joint; poses and scores are decode_poses'."""
    heatmaps, pafs, input_size = synthetic_maps(seed, noise=noise)
    params = default_decode_params()
    poses, scores, confidences = decode_people(heatmaps, pafs, input_size, input_size, params)
    plain_poses, plain_scores = decode_poses(heatmaps, pafs, input_size, input_size, params)
    np.testing.assert_array_equal(poses, plain_poses)
    np.testing.assert_array_equal(scores, plain_scores)
    assert confidences.shape == poses.shape[:2] and len(scores) > 0
    found = poses[:, :, 2] > 0
    assert (confidences[~found] == 0).all()
    for person, joint in zip(*np.nonzero(found)):
        smooth = smooth_map(upsample_map(heatmaps[joint], input_size), params.gaussian_sigma)
        x, y = poses[person, joint, :2].astype(int)
        assert confidences[person, joint] == pytest.approx(float(smooth[y, x]), abs=1e-6)
        assert confidences[person, joint] > params.heatmap_peak_thresh
    assert np.ptp(confidences[found]) > 0, "confidences differ between joints"


def test_plateaus_and_ties_match_slow_implementation():
    """Flat and quantised maps (float32 rounding decides the reference's peaks there) go
    through the exact paths: whole channels and exact crops."""
    heatmaps, pafs, input_size = synthetic_maps(11, people=2)
    heatmaps[3] = 0.3                                   # a plateau over the whole channel
    heatmaps[4, 5:12, 6:15] = 0.5                       # a plateau block
    heatmaps[7] = np.round(heatmaps[7], 1)              # many exact ties
    params = default_decode_params()
    joint, xs, ys, score = find_peaks(heatmaps, input_size, params)
    ref = find_peaks_reference(heatmaps, input_size, params)
    assert [(p[0], p[1], p[2]) for p in ref] == list(zip(joint.tolist(), xs.tolist(),
                                                         ys.tolist()))
    np.testing.assert_allclose(score, [p[3] for p in ref], rtol=0, atol=1e-6)
    poses, scores = decode_poses(heatmaps, pafs, input_size, input_size, params)
    ref_poses, ref_scores = decode_poses_reference(heatmaps, pafs, input_size, input_size, params)
    assert_same_people(poses, scores, ref_poses, ref_scores, pos_tol=1e-9, score_tol=1e-5)


def test_any_size_ratio_uses_the_dense_path():
    heatmaps, pafs, _ = synthetic_maps(5, map_h=16, map_w=20, people=2)
    input_size = (150, 122)  # not a multiple of the map size
    params = default_decode_params()
    poses, scores = decode_poses(heatmaps, pafs, input_size, (300, 244), params)
    ref_poses, ref_scores = decode_poses_reference(heatmaps, pafs, input_size, (300, 244), params)
    assert len(ref_scores) > 0
    assert_same_people(poses, scores, ref_poses, ref_scores, pos_tol=1e-9, score_tol=1e-5)


def test_screening_paths_and_staging_agree(golden, monkeypatch):
    key = "img196141_"
    args = (golden[f"{key}noisy_heatmaps"], golden[f"{key}noisy_pafs"],
            golden[f"{key}input_wh"], golden[f"{key}orig_wh"], default_decode_params())
    base_poses, base_scores = decode_poses(*args)
    for changes in [{"screening._DENSE_FRACTION": 2.0,
                     "screening._BUSY_FRACTION": 2.0},                 # blocks only
                    {"screening._DENSE_FRACTION": -1.0},               # dense only
                    {"peaks._WHOLE_CHANNEL_FRACTION": 0.0},            # reference-exact
                    {"limbs._ALL_POINTS_AT_ONCE": 10 ** 9}, {"limbs._GRID_CHUNK": 1}]:
        with monkeypatch.context() as patch:
            for name, value in changes.items():
                patch.setattr(f"src.evaluate.decoding.{name}", value)
            poses, scores = decode_poses(*args)
        np.testing.assert_array_equal(poses, base_poses, err_msg=str(changes))
        np.testing.assert_allclose(scores, base_scores, rtol=0, atol=1e-6,
                                   err_msg=str(changes))


def test_peaks_match_reference_values():
    heatmaps, _, input_size = synthetic_maps(7, noise=0.03)
    params = default_decode_params()
    joint, xs, ys, score = find_peaks(heatmaps, input_size, params)
    ref = find_peaks_reference(heatmaps, input_size, params)
    assert len(ref) > 50
    np.testing.assert_array_equal(joint, [p[0] for p in ref])
    np.testing.assert_array_equal(xs, [p[1] for p in ref])
    np.testing.assert_array_equal(ys, [p[2] for p in ref])
    np.testing.assert_allclose(score, [p[3] for p in ref], rtol=0, atol=1e-6)


def test_fast_smoothing_error_is_far_below_the_margin(golden):
    """The float64 operator value vs the reference's float32 cv2 + scipy pipeline."""
    key = "img40083_noisy_heatmaps"
    maps = golden[key][:NUM_JOINTS]
    width, height = (int(v) for v in golden["img40083_input_wh"])
    _, h, w = maps.shape
    rows = operators.smooth_upsample_matrix(h, height, 2.5)
    cols = operators.smooth_upsample_matrix(w, width, 2.5)
    for channel in (0, 9, 17):
        ref = gaussian_filter(cv2.resize(maps[channel], (width, height)), 2.5)
        fast = rows @ maps[channel].astype(np.float64) @ cols.T
        err = np.abs(fast - ref).max() / np.abs(maps[channel]).max()
        assert err < peaks._EPS_REL / 4


def test_pair_sampling_matches_cv2_resize(golden):
    pafs = golden["img197388_noisy_pafs"]
    width, height = (int(v) for v in golden["img197388_input_wh"])
    _, h, w = pafs.shape
    tables = limbs._sampling_tables(h, w, height, width)
    rng = np.random.default_rng(0)
    ys = rng.integers(0, height, 5000)
    xs = rng.integers(0, width, 5000)
    limb = rng.integers(0, 19, 5000)
    val_x, val_y = limbs._sample_limb_field(pafs.ravel(), h * w, limb, ys, xs, tables)
    ref = np.stack([cv2.resize(channel, (width, height)) for channel in pafs])
    np.testing.assert_allclose(val_x, ref[2 * limb, ys, xs], rtol=0, atol=3e-7)
    np.testing.assert_allclose(val_y, ref[2 * limb + 1, ys, xs], rtol=0, atol=3e-7)


def test_exact_check_breaks_near_ties_like_the_reference(golden):
    """img785's right ear sits between two pixels whose float32 values tie: no peak."""
    maps = golden["img785_clean_heatmaps"]
    input_size = tuple(int(v) for v in golden["img785_input_wh"])
    joint, _, _, _ = find_peaks(maps, input_size, default_decode_params())
    assert 16 not in joint.tolist()
    assert 17 in joint.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_greedy_match_equals_sorted_greedy(seed):
    rng = np.random.default_rng(seed)
    n = 300
    limb = np.sort(rng.integers(0, 3, n))
    id_a = rng.integers(0, 12, n)
    id_b = rng.integers(100, 112, n)
    score = np.round(rng.random(n), 1)  # many ties: the earlier pair wins
    chosen = greedy_match(limb, id_a, id_b, score)
    expected = []
    for current in range(3):
        idx = [i for i in range(n) if limb[i] == current]
        idx.sort(key=lambda i: -score[i])
        used_a, used_b = set(), set()
        for i in idx:
            if id_a[i] not in used_a and id_b[i] not in used_b:
                used_a.add(id_a[i])
                used_b.add(id_b[i])
                expected.append(i)
    assert chosen.tolist() == expected


@pytest.mark.parametrize("seed", range(6))
def test_grouping_equals_literal_rules(seed):
    """Random one-to-one connections per limb exercise every merge branch."""
    rng = np.random.default_rng(seed)
    per_joint = 4
    peak_scores = rng.random(NUM_JOINTS * per_joint)
    params = default_decode_params().replace(n_subset_limbs_thresh=2, subset_score_thresh=0.0)
    connections = []
    for ja, jb in LIMB_ARRAY.tolist():
        k = rng.integers(0, per_joint + 1)
        a = rng.permutation(per_joint)[:k] + ja * per_joint
        b = rng.permutation(per_joint)[:k] + jb * per_joint
        s = np.sort(rng.random(k))[::-1]
        connections.append(list(zip(a.tolist(), b.tolist(), s.tolist())))
    limb = np.array([index for index, c in enumerate(connections) for _ in c], dtype=np.int64)
    flat = [item for c in connections for item in c]
    id_a = np.array([c[0] for c in flat], dtype=np.int64)
    id_b = np.array([c[1] for c in flat], dtype=np.int64)
    score = np.array([c[2] for c in flat])
    joints, scores = group_people(limb, id_a, id_b, score, peak_scores, params)
    expected = group_people_reference(connections, peak_scores.tolist(), params)
    assert joints.tolist() == [p[:NUM_JOINTS] for p in expected]
    np.testing.assert_allclose(scores, [p[18] for p in expected], rtol=0, atol=1e-12)


def test_ear_limbs_never_start_a_person():
    params = default_decode_params().replace(n_subset_limbs_thresh=0, subset_score_thresh=0.0)
    peak_scores = np.ones(40)
    for limb in EAR_SHOULDER_LIMBS:
        ja, jb = LIMB_ARRAY[limb]
        joints, _ = group_people(np.array([limb]), np.array([ja]), np.array([jb + 18]),
                                 np.array([1.0]), peak_scores, params)
        assert joints.shape == (0, NUM_JOINTS)
    joints, scores = group_people(np.array([0]), np.array([1]), np.array([8]), np.array([0.5]),
                                  peak_scores, params)
    assert joints.shape == (1, NUM_JOINTS) and scores[0] == 2.5


def test_empty_and_flat_maps_give_no_people():
    for heat in (np.zeros((19, 10, 12), np.float32), np.full((19, 10, 12), 0.04, np.float32)):
        poses, scores = decode_poses(heat, np.zeros((38, 10, 12), np.float32), (96, 80),
                                     (192, 160), default_decode_params())
        assert poses.shape == (0, NUM_JOINTS, 3) and scores.shape == (0,)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="heatmaps"):
        decode_poses(np.zeros((5, 4, 4)), np.zeros((38, 4, 4)), (32, 32), (32, 32), default_decode_params())
    with pytest.raises(ValueError, match="pafs"):
        decode_poses(np.zeros((19, 4, 4)), np.zeros((38, 4, 5)), (32, 32), (32, 32), default_decode_params())


def test_params_from_config_and_validation():
    cfg = parse_config([]).replace(gaussian_sigma=3, heatmap_peak_thresh=0.1, n_integ_points=12,
                                   length_penalty_value=1, other_key="ignored")
    params = DecodeParams.from_config(cfg)
    assert params.gaussian_sigma == 3.0 and isinstance(params.gaussian_sigma, float)
    assert params.n_integ_points == 12 and params.n_integ_points_thresh == 8
    assert params.subset_score_thresh == 0.2
    with pytest.raises(ValueError, match="n_integ_points"):
        default_decode_params().replace(n_integ_points=1)


def test_params_come_from_default_config_only():
    """The fields have no defaults of their own and params.py reads no file: from_config takes
    every field from the configuration the caller passes and names the missing ones."""
    from src.evaluate.decoding import params as params_module
    assert not hasattr(params_module, "default_config"), "the decoder must not read the YAML"
    cfg = parse_config([])
    defaults = DecodeParams.from_config(cfg)
    assert {name: getattr(defaults, name) for name in vars(defaults)} == {
        name: getattr(cfg, name) for name in vars(defaults)}
    with pytest.raises(TypeError):
        DecodeParams()
    values = cfg.to_dict()
    del values["gaussian_sigma"], values["subset_score_thresh"]
    with pytest.raises(ConfigError, match="gaussian_sigma, subset_score_thresh"):
        DecodeParams.from_config(SimpleNamespace(**values))
    assert DecodeParams.from_config(parse_config(["--gaussian_sigma", "3"])).gaussian_sigma == 3.0


def test_random_sizes_strides_and_sigmas_match_slow_implementation():
    """Tiny and odd map sizes, strides 1 to 8, non-integer ratios, quantised (tied) maps."""
    rng = np.random.default_rng(123)
    for trial in range(8):
        h, w = (int(v) for v in rng.integers(1, 14, size=2))
        stride = int(rng.choice([1, 2, 4, 8]))
        heat = (rng.random((19, h, w)) ** 3).astype(np.float32)
        if trial % 3 == 0:
            heat = np.round(heat, 1).astype(np.float32)
        paf = rng.normal(0, 0.5, (38, h, w)).astype(np.float32)
        params = default_decode_params().replace(gaussian_sigma=float(rng.choice([1.0, 2.5, 4.0])),
                              n_subset_limbs_thresh=2, subset_score_thresh=0.0)
        input_size = (w * stride, h * stride) if trial % 4 else (w * stride + 3, h * stride + 1)
        joint, xs, ys, _ = find_peaks(heat, input_size, params)
        ref = find_peaks_reference(heat, input_size, params)
        assert [(p[0], p[1], p[2]) for p in ref] == list(zip(joint.tolist(), xs.tolist(),
                                                             ys.tolist())), trial
        poses, scores = decode_poses(heat, paf, input_size, input_size, params)
        ref_poses, ref_scores = decode_poses_reference(heat, paf, input_size, input_size, params)
        assert_same_people(poses, scores, ref_poses, ref_scores, pos_tol=1e-9, score_tol=1e-5)
