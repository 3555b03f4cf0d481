"""scripts/convert_weights.py and the .pth / .caffemodel model paths: pytorch-openpose's layout
gives the caffemodel's checkpoint byte for byte and OpenCV DNN's maps; torchvision's VGG19
becomes a --vgg_path checkpoint whose features equal torchvision's arithmetic in the interior;
malicious and foreign files stop with one line, exit 1."""
import builtins
import os
import re
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from src.model.caffe_import import CaffeImportError
from src.model.torch_pickle import UnsafeWeightsError
from src.model.weight_import import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightImportError,
    convert_file,
    identify,
    read_model_entries,
    vgg19_layers,
)
from tests.conftest import REPO_ROOT
from tests.torch_files import write_malicious, write_state_dict

CPU = ["--device_target", "CPU"]


def _run(script, *args, ok=True):
    proc = subprocess.run([sys.executable, script, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _error_lines(stderr):
    """stderr without MindSpore's own warnings."""
    return [line for line in stderr.splitlines() if line.strip() and "[WARNING]" not in line]


def cmu_state(seed=0):
    """CMU's random weights (the caffemodel fixture's seed) in pytorch-openpose's layout."""
    from src.model.cmu_synthetic import random_cmu_weights
    state = OrderedDict()
    for name, (weight, bias) in random_cmu_weights(seed).items():
        state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias
    return state


@pytest.fixture(scope="module")
def body_pth(tmp_path_factory):
    """The cmu_model fixture's weights as pytorch-openpose's body_pose_model.pth (zip layout)."""
    return str(write_state_dict(tmp_path_factory.mktemp("pth") / "body_pose_model.pth",
                                cmu_state(0), "zip", folder="body_pose_model"))


def test_pth_and_caffemodel_convert_to_the_same_checkpoint(cmu_model, body_pth, tmp_path):
    """Same weights as .pth and .caffemodel: convert_weights.py writes byte-identical
    checkpoints, and both equal convert_cmu_caffemodel.py's."""
    from src.model.checkpoint import read_checkpoint
    outputs, stdout = {}, {}
    for name, source in (("pth", body_pth), ("caffemodel", cmu_model.caffemodel)):
        outputs[name] = tmp_path / f"{name}.ckpt"
        stdout[name] = _run("scripts/convert_weights.py", source, "--out", str(outputs[name])).stdout
        assert "184 parameters (52.3 M weights) as CMU's network: 6 stages, width 1, no " \
               "BatchNorm" in stdout[name] and "BGR / 256 - 0.5" in stdout[name], stdout[name]
    assert "read pytorch-openpose's body model: 184 tensors" in stdout["pth"]
    assert "read 93 Caffe layers" in stdout["caffemodel"]
    assert outputs["pth"].read_bytes() == outputs["caffemodel"].read_bytes()
    ours, reference = read_checkpoint(outputs["pth"]), read_checkpoint(cmu_model.ckpt)
    assert list(ours) == list(reference) and len(ours) == 184 + 4
    for name, value in reference.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


def test_pth_model_path_equals_opencv_dnn(cmu_model, body_pth, ms_cpu):
    """open_network on the .pth itself (converted in memory) == OpenCV DNN on the caffemodel."""
    from src.evaluate.inference import mindspore_forward, preprocess
    from src.model.cmu_synthetic import opencv_forward
    from src.model.model_files import open_network
    height, width = 64, 80
    image = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    cv_pafs, cv_heat = opencv_forward(cmu_model.prototxt, cmu_model.caffemodel, image)
    network, spec, report = open_network(body_pth)
    assert len(report.loaded) == 184 and spec.input_scale == 256.0 and spec.num_stages == 6
    pafs, heat = mindspore_forward(network)(preprocess(image, (width, height), 256.0)[None])
    for ours, theirs in ((pafs, cv_pafs), (heat, cv_heat)):
        scale = np.abs(theirs).max()
        assert scale > 0.1
        error = np.abs(ours - theirs).max() / scale
        print(f".pth vs OpenCV DNN: max relative error {error:.2e}")
        assert error < 1e-4


def test_load_pretrain_takes_the_pth(body_pth, ms_cpu):
    """--load_pretrain with --pretrained_model_path body_pose_model.pth: all 184 parameters."""
    from src.model.model_files import load_weights
    from src.model.network import OpenPoseNet
    report = load_weights(OpenPoseNet(), body_pth)
    assert len(report.loaded) == 184 and not report.missing and not report.unexpected
    with pytest.raises(WeightImportError, match="pass it as --vgg_path"):
        load_weights(OpenPoseNet(), write_state_dict(
            os.path.join(os.path.dirname(body_pth), "vgg.pth"), torchvision_vgg_state(False, 3)))


def test_infer_py_takes_the_pth(body_pth, coco_sample_dir, tmp_path):
    stdout = _run("scripts/infer.py", "--model_path", body_pth, "--input",
                  str(coco_sample_dir / "000000000785.jpg"), "--output", str(tmp_path),
                  "--inference_img_size", "64", *CPU).stdout
    assert "loaded 184 parameters, missing 0" in stdout and "input BGR / 256 - 0.5" in stdout
    assert (tmp_path / "people.json").is_file()


@pytest.mark.usefixtures("onnx_any_size")
def test_export_takes_the_caffemodel_and_equals_opencv(cmu_model, tmp_path):
    from src.evaluate.inference import preprocess
    from src.model.cmu_synthetic import opencv_forward
    from src.model.onnx_model import onnx_forward
    stdout = _run("export.py", "--ckpt_file", cmu_model.caffemodel, "--file_name",
                  str(tmp_path / "cmu"), "--file_format", "ONNX", "--insize", "64", *CPU).stdout
    assert "input BGR / 256 - 0.5" in stdout
    forward, spec, _ = onnx_forward(tmp_path / "cmu.onnx")
    image = np.random.default_rng(4).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    pafs, heat = forward(preprocess(image, (80, 64), spec.input_scale)[None])
    cv_pafs, cv_heat = opencv_forward(cmu_model.prototxt, cmu_model.caffemodel, image)
    for ours, theirs in ((pafs, cv_pafs), (heat, cv_heat)):
        assert np.abs(ours - theirs).max() < 1e-4 * np.abs(theirs).max()


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------
def _payload(name, marker):
    """(function, args, the name the refusal quotes) of a classic __reduce__ payload."""
    return {"os.system": (os.system, (f"touch {marker}",), f"{os.system.__module__}.system"),
            "builtins.eval": (builtins.eval, (f"open({str(marker)!r}, 'w').close()",),
                              "builtins.eval"),
            "subprocess.Popen": (subprocess.Popen, (["touch", str(marker)],),
                                 "subprocess.Popen")}[name]


@pytest.mark.parametrize("script, payload, layout", [
    *[("scripts/convert_weights.py", payload, layout)
      for payload in ("os.system", "builtins.eval", "subprocess.Popen")
      for layout in ("zip", "legacy")],
    ("scripts/infer.py", "os.system", "zip"), ("scripts/infer.py", "builtins.eval", "legacy"),
    ("scripts/infer.py", "subprocess.Popen", "legacy")])
def test_malicious_pth_exits_1_and_runs_nothing(tmp_path, coco_sample_dir, script, payload, layout):
    marker = tmp_path / "pwned"
    function, payload_args, quoted = _payload(payload, marker)
    evil = write_malicious(tmp_path / "body_pose_model.pth", function, *payload_args,
                           layout=layout)
    args = [str(evil), "--out", str(tmp_path / "x.ckpt")] if "convert" in script else \
        ["--model_path", str(evil), "--input", str(coco_sample_dir / "000000000785.jpg"),
         "--output", str(tmp_path / "out"), *CPU]
    proc = _run(script, *args, ok=False)
    lines = _error_lines(proc.stderr)
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and f"refuses to load '{quoted}' from a weights file" in lines[0], lines
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "x.ckpt").exists()


def test_unknown_files_name_what_they_are(tmp_path, ms_cpu):
    from src.model.checkpoint import save_checkpoint_atomic
    from src.model.network import OpenPoseNet
    text = tmp_path / "notes.pth"
    text.write_text("layer { name: 'conv1_1' }\n")
    ckpt = save_checkpoint_atomic(OpenPoseNet(num_stages=1, width_mult=0.125), tmp_path / "m.ckpt")
    other = write_state_dict(tmp_path / "resnet.pth", {"fc.weight": np.zeros((2, 2), np.float32)})
    for path, what in ((text, "a text file"), (ckpt, "already a MindSpore checkpoint"),
                       (other, "a PyTorch state dict of 1 tensors ('fc.weight')")):
        proc = _run("scripts/convert_weights.py", str(path), "--out", str(tmp_path / "o.ckpt"),
                    ok=False)
        lines = _error_lines(proc.stderr)
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert what in lines[0] and "accepted: CMU's pose_iter_440000.caffemodel" in lines[0], lines
    assert identify(ckpt)[0] == "mindspore"


def test_out_equal_to_source_is_refused(body_pth):
    before = os.path.getsize(body_pth)
    proc = _run("scripts/convert_weights.py", body_pth, "--out", body_pth, ok=False)
    assert proc.returncode == 1 and f"{body_pth}: --out is the source file: writing the checkpoint " \
        "would replace it (the source is kept); choose another --out" in proc.stderr
    assert os.path.getsize(body_pth) == before


def test_wrong_layers_in_a_pth_are_one_line_errors(tmp_path):
    """Small states in CMU's naming: each fault is named before any full-size check."""
    conv = {"conv1_2.weight": np.zeros((64, 64, 3, 3), np.float32),
            "conv1_2.bias": np.zeros(64, np.float32)}
    cases = [
        ({"conv1_2.weight": conv["conv1_2.weight"]}, WeightImportError,
         "layer 'conv1_2' has a weight but no bias"),
        ({**conv, "conv6_2_CPM.weight": np.zeros((2, 2, 1, 1), np.float32)}, WeightImportError,
         "hand model"),
        ({**conv, "conv1_2.running_mean": np.zeros(64, np.float32)}, WeightImportError,
         "entry 'conv1_2.running_mean' is not the weight or bias of a conv"),
        (conv, CaffeImportError, "91 conv layers of CMU's COCO body model are missing: conv1_1, "),
        ({**conv, "conv1_2.bias": np.zeros(63, np.float32)}, CaffeImportError,
         "layer 'conv1_2' bias has shape (63,)"),
    ]
    for index, (state, error, message) in enumerate(cases):
        path = write_state_dict(tmp_path / f"{index}.pth", state)
        with pytest.raises(error, match=re.escape(message)):
            convert_file(path)


def test_unsafe_error_is_an_openpose_error():
    from src.errors import OpenPoseError
    assert issubclass(UnsafeWeightsError, OpenPoseError)


# ---------------------------------------------------------------------------------------------
# torchvision VGG19
# ---------------------------------------------------------------------------------------------
def torchvision_vgg_state(batch_norm, seed):
    """A random state dict in torchvision's vgg19 / vgg19_bn layout (He-scaled convs; a small
    stand-in classifier, which the converter leaves out)."""
    rng = np.random.default_rng(seed)
    state = OrderedDict()
    for index, out_channels, in_channels in vgg19_layers(batch_norm):
        std = np.sqrt(2.0 / (9 * in_channels))
        state[f"features.{index}.weight"] = (rng.standard_normal(
            (out_channels, in_channels, 3, 3), dtype=np.float32) * np.float32(std))
        state[f"features.{index}.bias"] = rng.standard_normal(out_channels, dtype=np.float32) * 0.1
        if batch_norm:
            bn = f"features.{index + 1}."
            state[bn + "weight"] = 1 + 0.1 * rng.standard_normal(out_channels, dtype=np.float32)
            state[bn + "bias"] = 0.1 * rng.standard_normal(out_channels, dtype=np.float32)
            state[bn + "running_mean"] = 0.1 * rng.standard_normal(out_channels, dtype=np.float32)
            state[bn + "running_var"] = rng.uniform(0.5, 1.5, out_channels).astype(np.float32)
            state[bn + "num_batches_tracked"] = np.array(1000, np.int64)
    state["classifier.0.weight"] = rng.standard_normal((8, 16), dtype=np.float32)
    state["classifier.0.bias"] = np.zeros(8, np.float32)
    return state


def _conv3x3(x, weight, bias):
    """Zero-padded 3x3 correlation: x (C, H, W), weight (O, C, 3, 3) -> (O, H, W), float64."""
    _, height, width = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((weight.shape[0], height, width))
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,chw->ohw", weight[:, :, i, j].astype(np.float64),
                             padded[:, i:i + height, j:j + width], optimize=True)
    return out + bias[:, None, None]


def torchvision_features(state, rgb_normalised, batch_norm, convs=10):
    """torchvision's arithmetic for VGG19's first ``convs`` convs (with BatchNorm in eval mode
    and ReLU; 2x2 max pooling between blocks) on a (3, H, W) RGB-normalised image."""
    x = rgb_normalised.astype(np.float64)
    pools_after = {1, 3, 7}
    for n, (index, _, _) in enumerate(vgg19_layers(batch_norm)[:convs]):
        x = _conv3x3(x, state[f"features.{index}.weight"], state[f"features.{index}.bias"])
        if batch_norm:
            bn = f"features.{index + 1}."
            x = (x - state[bn + "running_mean"][:, None, None]) / np.sqrt(
                state[bn + "running_var"][:, None, None] + 1e-5)
            x = x * state[bn + "weight"][:, None, None] + state[bn + "bias"][:, None, None]
        x = np.maximum(x, 0)
        if n in pools_after:
            c, h, w = x.shape
            x = x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    return x


#: Cells (at stride 8) from the border that conv1_1's padding reaches after the 10 convs.
BORDER_CELLS = 5


@pytest.mark.parametrize("batch_norm", [False, True], ids=["vgg19", "vgg19_bn"])
def test_vgg_checkpoint_features_equal_torchvision(tmp_path, ms_cpu, batch_norm):
    """The converted checkpoint through train.py's --vgg_path loader (load_vgg_weights), on BGR
    x/255 - 0.5, equals torchvision's arithmetic on RGB (x/255 - mean)/std away from the border."""
    import mindspore

    from src.model.checkpoint import read_checkpoint
    from src.model.model_files import load_vgg_weights
    from src.model.network_spec import NetworkSpec
    state = torchvision_vgg_state(batch_norm, seed=7 + batch_norm)
    source = write_state_dict(tmp_path / "vgg19.pth", state, "zip")
    out = tmp_path / "vgg19.ckpt"
    stdout = _run("scripts/convert_weights.py", str(source), "--out", str(out)).stdout
    kind = "vgg19_bn" if batch_norm else "vgg19"
    assert f"read torchvision's {kind}" in stdout and "folded torchvision's input normalisation" \
        in stdout, stdout
    entries = read_checkpoint(out)
    assert len(entries) == (16 * 6 if batch_norm else 16 * 2)
    assert all(name.startswith("network.backbone.layers.") for name in entries)
    assert not [name for name in entries if "num_batches_tracked" in name or "classifier" in name]

    network = NetworkSpec(vgg_with_bn=batch_norm).build()
    report = load_vgg_weights(network, out)
    assert len(report.loaded) == (60 if batch_norm else 20) and not report.missing, report.summary()
    network.set_train(False)
    direct = NetworkSpec(vgg_with_bn=batch_norm).build()   # --vgg_path given the .pth itself
    assert len(load_vgg_weights(direct, source).loaded) == len(report.loaded)
    expected = {p.name: p.asnumpy() for p in network.get_parameters()}
    for param in direct.get_parameters():
        if param.name in report.loaded:
            np.testing.assert_array_equal(param.asnumpy(), expected[param.name], err_msg=param.name)

    size = 128
    image = np.random.default_rng(11).integers(0, 256, (size, size, 3), dtype=np.uint8)  # BGR
    ours_input = (image.astype(np.float32) / 255.0 - 0.5).transpose(2, 0, 1)[None]
    ours = network.base.vgg_base(mindspore.Tensor(ours_input)).asnumpy()[0]
    rgb = image[:, :, ::-1].astype(np.float64) / 255.0
    normalised = ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    reference = torchvision_features(state, normalised, batch_norm)
    assert ours.shape == reference.shape == (512, size // 8, size // 8)
    inner = (slice(None), slice(BORDER_CELLS, -BORDER_CELLS), slice(BORDER_CELLS, -BORDER_CELLS))
    scale = np.abs(reference[inner]).max()
    interior = np.abs(ours[inner] - reference[inner]).max() / scale
    border = np.abs(ours - reference).max() / scale
    print(f"{kind}: interior max relative error {interior:.2e}, whole map {border:.2e}")
    assert scale > 0.1 and interior < 1e-4
    assert border > 1e-3, "the border differs (zero padding is another colour): the test must see it"


def test_vgg_is_not_a_model_path(tmp_path):
    source = write_state_dict(tmp_path / "vgg19-dcbb9e9d.pth", torchvision_vgg_state(False, 1))
    with pytest.raises(WeightImportError, match="an ImageNet backbone, not a pose model"):
        read_model_entries(source)


def test_a_vgg_of_another_depth_is_refused(tmp_path):
    state = torchvision_vgg_state(False, 2)
    state["features.37.weight"] = np.zeros((512, 512, 3, 3), np.float32)
    with pytest.raises(WeightImportError, match="only VGG19 fits"):
        convert_file(write_state_dict(tmp_path / "vgg.pth", state))
