"""CMU's COCO model converter: parity with OpenCV's Caffe importer on a random-weight caffemodel
of CMU's full network, the channel maps, the Caffe reader and its errors."""
import subprocess
import sys

import numpy as np
import pytest

from src.model.caffe_import import (
    CaffeImportError,
    heatmap_channel_map,
    paf_channel_map,
    read_caffemodel,
)
from src.model.cmu_model import CMU_PAF_CHANNELS, cmu_layers, conv_weight_shapes
from src.model.cmu_synthetic import caffemodel_bytes, deploy_prototxt, opencv_forward
from tests.cmu_files import maps_from_cmu
from tests.conftest import REPO_ROOT

#: CMU's older header (include/openpose/pose/poseParameters.hpp): POSE_COCO_MAP_IDX, indices
#: into the 57-channel net_output (heatmaps 0-18 first).
POSE_COCO_MAP_IDX = (31, 32, 39, 40, 33, 34, 35, 36, 41, 42, 43, 44, 19, 20, 21, 22, 23, 24, 25, 26,
                     27, 28, 29, 30, 47, 48, 49, 50, 53, 54, 51, 52, 55, 56, 37, 38, 45, 46)


def test_cmu_facts_agree_between_releases():
    assert tuple(i - 19 for i in POSE_COCO_MAP_IDX) == CMU_PAF_CHANNELS


def test_channel_orders_need_no_permutation():
    """Derived from CMU's part names, pairs and map index against our skeleton: identity."""
    assert heatmap_channel_map().is_identity
    assert paf_channel_map().is_identity
    heat = np.arange(19 * 2, dtype=np.float32).reshape(19, 2)
    pafs = np.arange(38 * 2, dtype=np.float32).reshape(38, 2)
    ours_heat, ours_pafs = maps_from_cmu(heat, pafs)
    np.testing.assert_array_equal(ours_heat, heat)
    np.testing.assert_array_equal(ours_pafs, pafs)


def test_network_has_cmu_layer_count():
    shapes = conv_weight_shapes(cmu_layers())
    assert len(shapes) == 92  # 10 VGG + 2 CPM + 10 stage-1 + 5 x 14 refinement convs
    assert shapes["Mconv1_stage2_L1"][0] == (128, 185, 7, 7)
    assert shapes["conv5_5_CPM_L1"][0] == (38, 512, 1, 1)
    assert shapes["Mconv7_stage6_L2"][0] == (19, 128, 1, 1)


@pytest.mark.parametrize("height, width", [(64, 80), (96, 72)])
def test_forward_equals_opencv_dnn(cmu_model, ms_cpu, tmp_path, height, width):
    """The converted checkpoint in our network == OpenCV DNN on the caffemodel (1e-4 relative)."""
    from src.evaluate.inference import mindspore_forward, preprocess
    from src.model.model_files import open_network
    prototxt = tmp_path / "deploy.prototxt"
    prototxt.write_text(deploy_prototxt(height, width))
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    cv_pafs, cv_heat = opencv_forward(prototxt, cmu_model.caffemodel, image)
    network, spec, report = open_network(cmu_model.ckpt)
    assert len(report.loaded) == 184 and spec.input_scale == 256.0
    batch = preprocess(image, (width, height), spec.input_scale)[None]
    pafs, heat = mindspore_forward(network)(batch)
    assert pafs.shape == (1, 38, height // 8, width // 8) == cv_pafs.shape
    assert heat.shape == (1, 19, height // 8, width // 8) == cv_heat.shape
    for ours, theirs in ((pafs, cv_pafs), (heat, cv_heat)):
        scale = np.abs(theirs).max()
        assert scale > 0.1  # the random network's maps are not vanishing
        error = np.abs(ours - theirs).max() / scale
        print(f"{height}x{width}: max relative error {error:.2e}")
        assert error < 1e-4


def test_load_pretrain_fills_every_parameter(cmu_model, ms_cpu):
    from src.model.model_files import load_weights
    from src.model.network import OpenPoseNet
    report = load_weights(OpenPoseNet(), cmu_model.ckpt)
    assert len(report.loaded) == 184 and not report.missing and not report.unexpected


def test_converter_output_names_the_normalisation(cmu_model):
    assert "wrote 184 parameters" in cmu_model.convert_stdout
    assert "no channel moved" in cmu_model.convert_stdout
    assert "BGR / 256 - 0.5" in cmu_model.convert_stdout


def test_legacy_v1_layers_read_like_new_layers(tmp_path):
    rng = np.random.default_rng(0)
    weights = {"conv1_1": (rng.standard_normal((64, 3, 3, 3), dtype=np.float32),
                           rng.standard_normal(64, dtype=np.float32))}
    read = {}
    for legacy in (False, True):
        path = tmp_path / f"legacy{legacy}.caffemodel"
        path.write_bytes(caffemodel_bytes(weights, legacy=legacy))
        (layer,) = read_caffemodel(path)
        assert layer.name == "conv1_1"
        read[legacy] = layer.blobs
    np.testing.assert_array_equal(read[False][0], weights["conv1_1"][0])
    np.testing.assert_array_equal(read[False][1], weights["conv1_1"][1])
    np.testing.assert_array_equal(read[True][0], weights["conv1_1"][0])
    assert read[True][1].shape == (1, 1, 1, 64)  # V1's 4-D bias, reshaped by the converter
    np.testing.assert_array_equal(read[True][1].reshape(-1), weights["conv1_1"][1])


def _small_model(shape=(64, 3, 3, 3)):
    blobs = (np.zeros(shape, np.float32), np.zeros(shape[0], np.float32))
    return caffemodel_bytes({"conv1_1": blobs})


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b'name: "OpenPose"\ninput: "image"\nlayer {\n', "a text file (a .prototxt?)"),
    (_small_model()[:-7], "truncated or not a caffemodel"),
    (bytes(range(256)) * 4, "truncated or not a caffemodel"),
    (_small_model(), "91 conv layers of CMU's COCO body model are missing: conv1_2, conv2_1"),
    (_small_model((32, 3, 3, 3)), "layer 'conv1_1' weights have shape (32, 3, 3, 3), CMU's COCO "
                                  "model has (64, 3, 3, 3)"),
    (caffemodel_bytes({"fc7": (np.zeros((4, 4), np.float32), np.zeros(4, np.float32))}),
     "layer 'fc7' has weights but is not part of CMU's COCO body model"),
])
def test_bad_files_are_one_line_errors(tmp_path, capsys, content, message):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import convert_cmu_caffemodel
    path = tmp_path / "model.caffemodel"
    path.write_bytes(content)
    status = convert_cmu_caffemodel.main(["--caffemodel", str(path),
                                          "--out", str(tmp_path / "x.ckpt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and err[0].startswith("convert_cmu_caffemodel.py: error:"), err
    assert message in err[0], err
    assert not (tmp_path / "x.ckpt").exists()


def test_cli_missing_file_exits_1(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/convert_cmu_caffemodel.py", "--caffemodel",
                           str(tmp_path / "none.caffemodel"), "--out", str(tmp_path / "x.ckpt")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"convert_cmu_caffemodel.py: error: {tmp_path / 'none.caffemodel'}: no such file"]


def test_truncated_real_size_file(cmu_model, tmp_path):
    """Cut in the middle of a weight blob: the reader names the problem, nothing is written."""
    data = open(cmu_model.caffemodel, "rb").read()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CaffeImportError, match="truncated or not a caffemodel"):
        read_caffemodel(path)


def test_a_permuted_order_would_be_carried_through_the_next_stage(monkeypatch):
    """Were CMU's PAF order a signed permutation of ours, the converted stage-1 output would be
    our order and stage 2 would compute the same as CMU's (checked on 1x1 convs as matrices)."""
    import src.model.caffe_import as caffe_import
    rng = np.random.default_rng(0)
    perm = rng.permutation(38)
    signs = rng.choice([-1, 1], 38)
    shuffled = caffe_import.ChannelMap(tuple(int(p) for p in perm), tuple(int(s) for s in signs))
    monkeypatch.setattr(caffe_import, "paf_channel_map", lambda: shuffled)
    last_w, last_b = rng.standard_normal((38, 512, 1, 1)), rng.standard_normal(38)
    next_w, next_b = rng.standard_normal((128, 185, 7, 7)), rng.standard_normal(128)
    ours_last_w, ours_last_b = caffe_import._reorder("conv5_5_CPM_L1", last_w, last_b, 6)
    ours_next_w, ours_next_b = caffe_import._reorder("Mconv1_stage2_L1", next_w, next_b, 6)
    features = rng.standard_normal(512)
    rest = rng.standard_normal(19 + 128)
    cmu_pafs = last_w[:, :, 0, 0] @ features + last_b
    our_pafs = ours_last_w[:, :, 0, 0] @ features + ours_last_b
    np.testing.assert_allclose(our_pafs, signs * cmu_pafs[perm])
    cmu_next = next_w[:, :, 3, 3] @ np.concatenate([cmu_pafs, rest]) + next_b
    our_next = ours_next_w[:, :, 3, 3] @ np.concatenate([our_pafs, rest]) + ours_next_b
    np.testing.assert_allclose(our_next, cmu_next, rtol=1e-10, atol=1e-10)
