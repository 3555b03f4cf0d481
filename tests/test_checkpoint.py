import numpy as np
import pytest

from src.model.checkpoint import CheckpointError, read_checkpoint, save_checkpoint_atomic
from src.model.model_files import load_vgg_weights, load_weights
from src.model.network import OpenPoseNet

VGG19_CONV_LAYERS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def _random_params(net, seed):
    rng = np.random.default_rng(seed)
    return {p.name: rng.standard_normal(p.shape).astype(np.float32) for p in net.get_parameters()}


def _save(entries, path):
    import mindspore as ms
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in entries.items()], str(path))
    return path


def _values(net):
    return {p.name: p.asnumpy() for p in net.get_parameters()}


def test_own_checkpoint_round_trip(ms_cpu, tmp_path):
    net = OpenPoseNet()
    path = save_checkpoint_atomic(net, tmp_path / "ours.ckpt", append_dict={"global_step": 7})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left"
    other = OpenPoseNet()
    report = load_weights(other, path)
    assert len(report.loaded) == 184 and not report.missing and not report.unexpected
    for name, value in _values(net).items():
        np.testing.assert_array_equal(value, _values(other)[name], err_msg=name)


def test_reference_training_checkpoint(ms_cpu, tmp_path):
    net = OpenPoseNet()
    weights = _random_params(net, 1)
    entries = {"network." + k: v for k, v in weights.items()}
    entries.update({"moment1.network." + k: np.ones_like(v) for k, v in list(weights.items())[:4]})
    entries.update({"moment2.network." + k: np.ones_like(v) for k, v in list(weights.items())[:4]})
    entries["global_step"] = np.array([12], np.int32)
    report = load_weights(net, _save(entries, tmp_path / "ref.ckpt"))
    assert len(report.loaded) == 184 and not report.missing and not report.unexpected
    assert report.skipped_state == 9
    loaded = _values(net)
    for name, value in weights.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_vgg19_imagenet_checkpoint(ms_cpu, tmp_path):
    rng = np.random.default_rng(2)
    entries, in_channels = {}, 3
    widths = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)
    for layer, width in zip(VGG19_CONV_LAYERS, widths):
        weight = rng.standard_normal((width, in_channels, 3, 3)).astype(np.float32)
        entries[f"network.backbone.layers.{layer}.weight"] = weight
        entries[f"network.backbone.layers.{layer}.bias"] = rng.standard_normal(width).astype(np.float32)
        in_channels = width
    entries["network.classifier.0.weight"] = rng.standard_normal((16, 8)).astype(np.float32)
    entries["moments.network.backbone.layers.0.weight"] = np.zeros((64, 3, 3, 3), np.float32)
    net = OpenPoseNet()
    before = _values(net)
    report = load_vgg_weights(net, _save(entries, tmp_path / "vgg19.ckpt"))
    assert len(report.loaded) == 20 and not report.missing  # VGG19's first 10 convs
    assert report.skipped_state == 1 and "base.vgg_base.layers.23.weight" in report.unexpected
    after = _values(net)
    for layer in VGG19_CONV_LAYERS[:10]:
        np.testing.assert_array_equal(after[f"base.vgg_base.layers.{layer}.weight"],
                                      entries[f"network.backbone.layers.{layer}.weight"])
    for name in ("base.conv4_3_CPM.weight", "stage_1.conv1_CPM_L1.weight"):
        np.testing.assert_array_equal(after[name], before[name], err_msg=f"{name} must not change")


def test_shape_mismatch_is_clear(ms_cpu, tmp_path):
    net = OpenPoseNet()
    path = _save({"network.stage_1.conv5_CPM_L1.bias": np.zeros(5, np.float32)}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=r"bad.ckpt: shape mismatch for 'stage_1.conv5_CPM_L1.bias'"):
        load_weights(net, path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(CheckpointError, match="junk.ckpt: not a readable MindSpore checkpoint"):
        read_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_nothing_matching_is_an_error(ms_cpu, tmp_path):
    path = _save({"something.else": np.zeros(3, np.float32)}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="no parameter in the checkpoint matches"):
        load_weights(OpenPoseNet(), path)
