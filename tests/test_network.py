import numpy as np
import pytest

from src.model.network import FinalStage, OpenPoseNet


def _manifest(golden_dir):
    entries = []
    for line in (golden_dir / "reference_checkpoint_params.txt").read_text().splitlines():
        name, shape = line.split(" (", 1)
        dims = tuple(int(d) for d in shape.rstrip(")").split(",") if d.strip())
        entries.append((name, dims))
    return entries


def test_parameter_manifest_matches_reference(golden_dir):
    reference = [(name[len("network."):], shape) for name, shape in _manifest(golden_dir)
                 if name.startswith("network.")]
    ours = [(p.name, tuple(p.shape)) for p in OpenPoseNet().get_parameters()]
    assert len(ours) == len(reference) == 184
    for (name, shape), (ref_name, ref_shape) in zip(ours, reference):
        assert name == ref_name, f"parameter order/name differs: {name} vs {ref_name}"
        assert shape == ref_shape, f"{name}: shape {shape} vs reference {ref_shape}"


def test_vgg_with_bn_builds():
    names = [p.name for p in OpenPoseNet(vgg_with_bn=True).get_parameters()]
    assert "base.vgg_base.layers.1.gamma" in names
    assert "base.conv4_4_CPM.weight" in names


@pytest.mark.parametrize("height, width", [(64, 64), (64, 96)])
def test_forward_shapes(ms_cpu, height, width):
    import mindspore as ms
    net = OpenPoseNet()
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, height, width)).astype(np.float32))
    pafs, heatmaps = net(x)
    assert len(pafs) == len(heatmaps) == 6
    for paf, heat in zip(pafs, heatmaps):
        assert paf.shape == (1, 38, height // 8, width // 8)
        assert heat.shape == (1, 19, height // 8, width // 8)
    final_pafs, final_heat = FinalStage(net)(x)
    np.testing.assert_array_equal(final_pafs.asnumpy(), pafs[-1].asnumpy())
    np.testing.assert_array_equal(final_heat.asnumpy(), heatmaps[-1].asnumpy())


def test_toy_variants(ms_cpu):
    import mindspore as ms
    net = OpenPoseNet(width_mult=0.25, num_stages=3)
    names = [p.name for p in net.get_parameters()]
    assert "stage_3.conv7_L2.weight" in names and not any(n.startswith("stage_4.") for n in names)
    net.set_train(False)
    pafs, heatmaps = net(ms.Tensor(np.zeros((1, 3, 64, 64), np.float32)))
    assert len(pafs) == len(heatmaps) == 3
    assert pafs[-1].shape == (1, 38, 8, 8) and heatmaps[-1].shape == (1, 19, 8, 8)
    with pytest.raises(ValueError, match="num_stages"):
        OpenPoseNet(num_stages=7)
