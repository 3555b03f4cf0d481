"""Tests of src.evaluate.inference: input sizing, preprocessing, flip and multi-scale averaging."""
import numpy as np
import pytest

from src.config import parse_config
from src.data.targets import generate_heatmaps, generate_pafs
from src.evaluate.decoder import decode_poses
from src.evaluate.inference import (
    Predictor,
    compute_input_size,
    flip_maps,
    predictor_from_config,
    preprocess,
    resize_maps,
)
from src.skeleton import FLIP_JOINTS, FLIP_LIMBS, LIMBS, NUM_JOINTS, Joint
from tests.conftest import default_decode_params

#: A standing person facing the camera, in a 640 x 480 image (our joint order).
#: default_config.yaml's decoder parameters.
PARAMS = default_decode_params()
POSE = np.array([
    [320, 100], [320, 150], [280, 150], [260, 210], [250, 270], [360, 150], [380, 210],
    [390, 270], [295, 270], [290, 350], [288, 430], [345, 270], [350, 350], [352, 430],
    [310, 90], [330, 90], [300, 95], [340, 95]], dtype=np.float64) + 0.3  # no exact ties


def render(pose_xy, input_w, input_h):
    """Stride-8 (heatmaps, pafs) of one person given in input pixels."""
    pose = np.concatenate([pose_xy, np.full((NUM_JOINTS, 1), 2.0)], axis=1)[None]
    return (generate_heatmaps(pose, input_h // 8, input_w // 8, 7),
            generate_pafs(pose, input_h // 8, input_w // 8, 8))


def test_input_size_matches_the_reference(golden_dir):
    golden = np.load(golden_dir / "decode.npz")
    for image_id in (785, 40083, 196141, 197388):
        orig_w, orig_h = golden[f"img{image_id}_orig_wh"]
        expected = tuple(int(v) for v in golden[f"img{image_id}_input_wh"])
        assert compute_input_size(orig_w, orig_h, 368) == expected


def test_input_size_portrait_and_errors():
    assert compute_input_size(480, 640, 368) == (368, 496)   # 490.67 -> 491 -> 496
    assert compute_input_size(100, 100, 64) == (64, 64)
    assert compute_input_size(1000, 10, 64) == (6400, 64)
    with pytest.raises(ValueError):
        compute_input_size(0, 10, 368)


def test_preprocess_scales_and_keeps_bgr():
    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 0] = 255  # blue
    x = preprocess(image, (16, 8))
    assert x.shape == (3, 8, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], 0.5)
    np.testing.assert_allclose(x[1:], -0.5)


def test_flip_maps_swaps_sides_and_negates_x():
    rng = np.random.default_rng(0)
    heat = rng.random((19, 6, 10)).astype(np.float32)
    paf = rng.standard_normal((38, 6, 10)).astype(np.float32)
    heat_f, paf_f = flip_maps(heat, paf)
    left, right = int(Joint.LEFT_SHOULDER), int(Joint.RIGHT_SHOULDER)
    np.testing.assert_array_equal(heat_f[right], heat[left][:, ::-1])
    np.testing.assert_array_equal(heat_f[18], heat[18][:, ::-1])
    limb = LIMBS.index((Joint.NECK, Joint.RIGHT_SHOULDER))
    mirror = FLIP_LIMBS[limb]
    assert LIMBS[mirror] == (Joint.NECK, Joint.LEFT_SHOULDER)
    np.testing.assert_array_equal(paf_f[2 * limb], -paf[2 * mirror][:, ::-1])
    np.testing.assert_array_equal(paf_f[2 * limb + 1], paf[2 * mirror + 1][:, ::-1])
    heat_b, paf_b = flip_maps(heat_f, paf_f)  # an involution
    np.testing.assert_array_equal(heat_b, heat)
    np.testing.assert_array_equal(paf_b, paf)
    batch_h, batch_p = flip_maps(np.stack([heat, heat]), np.stack([paf, paf]))
    np.testing.assert_array_equal(batch_h[1], heat_f)
    np.testing.assert_array_equal(batch_p[0], paf_f)


def test_decoding_flipped_maps_mirrors_the_people():
    width, height = 640, 480
    heat, paf = render(POSE, width, height)
    poses, scores = decode_poses(heat, paf, (width, height), (width, height), default_decode_params())
    heat_f, paf_f = flip_maps(heat, paf)
    poses_f, scores_f = decode_poses(heat_f, paf_f, (width, height), (width, height), default_decode_params())
    assert len(poses) == len(poses_f) == 1
    np.testing.assert_allclose(scores_f, scores, rtol=0, atol=1e-5)
    expected = poses[0][list(FLIP_JOINTS)]
    expected[:, 0] = np.where(expected[:, 2] > 0, width - 1 - expected[:, 0], 0)
    np.testing.assert_array_equal(poses_f[0], expected)


def test_flip_average_of_a_symmetric_input_changes_nothing():
    """A mirror-symmetric map set predicted for a mirror-symmetric image: flip averaging is
    the identity."""
    rng = np.random.default_rng(1)
    raw_heat = rng.random((19, 8, 12)).astype(np.float32)
    raw_paf = rng.standard_normal((38, 8, 12)).astype(np.float32)
    mirror_heat, mirror_paf = flip_maps(raw_heat, raw_paf)
    sym_heat, sym_paf = (raw_heat + mirror_heat) / 2, (raw_paf + mirror_paf) / 2

    def network(batch):
        n = len(batch)
        for x in batch:
            np.testing.assert_array_equal(x, x[:, :, ::-1])  # the input is symmetric
        return np.stack([sym_paf] * n), np.stack([sym_heat] * n)

    image = rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)
    image = np.concatenate([image, image[:, ::-1]], axis=1)   # 64 x 96, mirror-symmetric
    plain = Predictor(network, params=PARAMS, img_size=64, flip=False)
    flipped = Predictor(network, params=PARAMS, img_size=64, flip=True)
    heat_a, paf_a, size_a = plain.predict_maps(image)
    heat_b, paf_b, size_b = flipped.predict_maps(image)
    assert size_a == size_b == (96, 64)
    np.testing.assert_allclose(heat_b, heat_a, rtol=0, atol=1e-7)
    np.testing.assert_allclose(paf_b, paf_a, rtol=0, atol=1e-7)
    # A map set that is not symmetric does change.
    asym = Predictor(lambda b: (np.stack([raw_paf] * len(b)), np.stack([raw_heat] * len(b))),
                     params=PARAMS, img_size=64, flip=True)
    assert np.abs(asym.predict_maps(image)[0] - raw_heat).max() > 0.1


def test_multi_scale_runs_each_scale_and_averages():
    seen = []

    def network(batch):
        seen.append(batch.shape)
        n, _, h, w = batch.shape
        value = np.float32(h / 100.0)  # differs per scale
        return (np.full((n, 38, h // 8, w // 8), value, np.float32),
                np.full((n, 19, h // 8, w // 8), value, np.float32))

    image = np.zeros((480, 640, 3), np.uint8)
    predictor = Predictor(network, params=PARAMS, img_size=368, scales=(0.5, 1.0, 2.0), flip=True)
    heat, paf, size = predictor.predict_maps(image)
    assert size == (496, 368)
    assert seen == [(2, 3, 184, 248), (2, 3, 368, 496), (2, 3, 736, 984)]
    assert heat.shape == (19, 46, 62) and paf.shape == (38, 46, 62)
    np.testing.assert_allclose(heat, (1.84 + 3.68 + 7.36) / 3, rtol=1e-6)
    np.testing.assert_allclose(paf[1], (1.84 + 3.68 + 7.36) / 3, rtol=1e-6)  # a y channel


@pytest.mark.parametrize("scales,flip", [((1.0,), False), ((1.0,), True), ((0.5, 1.0, 1.5), True)])
def test_predictor_finds_a_rendered_person(scales, flip):
    """A fake network that renders the true person at whatever input size it is given."""
    orig_w, orig_h = 640, 480

    def network(batch):
        n, _, h, w = batch.shape
        pose = POSE * [w / orig_w, h / orig_h]
        heat, paf = render(pose, w, h)
        if n == 1:
            return paf[None], heat[None]
        mirrored = pose[list(FLIP_JOINTS)] * [-1, 1] + [w - 1, 0]
        heat_m, paf_m = render(mirrored, w, h)
        return np.stack([paf, paf_m]), np.stack([heat, heat_m])

    predictor = Predictor(network, params=PARAMS, img_size=368, scales=scales, flip=flip)
    poses, scores = predictor(np.zeros((orig_h, orig_w, 3), np.uint8))
    assert len(poses) == 1 and scores[0] > 10
    assert np.all(poses[0, :, 2] == 2)
    assert np.abs(poses[0, :, :2] - POSE).max() < 6.0


def test_resize_maps_and_bad_network_output():
    maps = np.random.default_rng(2).random((38, 5, 7)).astype(np.float32)
    assert resize_maps(maps, (7, 5)) is maps
    out = resize_maps(maps, (14, 10))
    assert out.shape == (38, 10, 14) and out.dtype == np.float32
    bad = Predictor(lambda b: (np.zeros((1, 5, 8, 8)), np.zeros((1, 19, 8, 8))), params=PARAMS, img_size=64)
    with pytest.raises(ValueError, match="network returned"):
        bad(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError):
        Predictor(lambda b: b, params=PARAMS, scales=())


def test_predictor_from_config():
    cfg = parse_config([]).replace(inference_img_size=200, inference_scales=[0.5, 1],
                                   multi_scale=False, flip=True, gaussian_sigma=2.0)
    predictor = predictor_from_config(lambda b: b, cfg)
    assert predictor.scales == (1.0,) and predictor.flip and predictor.img_size == 200
    assert predictor.params.gaussian_sigma == 2.0
    cfg.multi_scale = True
    assert predictor_from_config(lambda b: b, cfg).scales == (0.5, 1.0)


def test_draw_poses_skips_ear_shoulder_limbs_and_keeps_the_input():
    from src.evaluate.drawing import draw_poses, line_thickness
    from src.skeleton import JOINT_COLORS, LIMB_COLORS
    image = np.zeros((480, 640, 3), np.uint8)
    pose = np.zeros((1, NUM_JOINTS, 3))
    pose[0, :, :2] = POSE
    pose[0, :, 2] = 2
    pose[0, int(Joint.LEFT_KNEE), 2] = 0          # missing: its limbs are not drawn
    drawn = draw_poses(image, pose)
    assert image.max() == 0 and drawn.shape == image.shape and drawn.dtype == np.uint8
    assert line_thickness(image.shape) == 2
    neck_hip = LIMBS.index((Joint.NECK, Joint.RIGHT_HIP))
    mid = np.rint((POSE[int(Joint.NECK)] + POSE[int(Joint.RIGHT_HIP)]) / 2).astype(int)
    assert tuple(drawn[mid[1], mid[0]]) == LIMB_COLORS[neck_hip]
    nose = np.rint(POSE[int(Joint.NOSE)]).astype(int)
    assert tuple(drawn[nose[1], nose[0]]) == JOINT_COLORS[int(Joint.NOSE)]
    # Right shoulder -> right ear is skipped; its midpoint stays black.
    ear = (POSE[int(Joint.RIGHT_SHOULDER)] + POSE[int(Joint.RIGHT_EAR)]) / 2
    assert drawn[int(round(ear[1])), int(round(ear[0]))].max() == 0
    # Left hip -> left knee is not drawn (the knee is missing).
    hip_knee = np.rint((POSE[int(Joint.LEFT_HIP)] + POSE[int(Joint.LEFT_KNEE)]) / 2).astype(int)
    assert drawn[hip_knee[1], hip_knee[0]].max() == 0
    assert draw_poses(image, np.zeros((0, NUM_JOINTS, 3))).max() == 0
    with pytest.raises(ValueError):
        draw_poses(np.zeros((4, 4), np.uint8), pose)
