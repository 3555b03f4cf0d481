import subprocess
import sys

import numpy as np
import pytest

from src.model.checkpoint import save_checkpoint_atomic
from src.model.model_files import load_weights
from src.model.network import FinalStage, OpenPoseNet
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, ms_cpu):
    return str(save_checkpoint_atomic(OpenPoseNet(), tmp_path_factory.mktemp("ckpt") / "net.ckpt"))


def _export(checkpoint, out, fmt, *extra):
    return subprocess.run([sys.executable, "export.py", "--ckpt_file", checkpoint, "--file_name", str(out),
                           "--file_format", fmt, "--insize", "64", "--device_target", "CPU", *extra],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_export_onnx_matches_mindspore(checkpoint, tmp_path, ms_cpu):
    import mindspore as ms
    import onnxruntime as ort
    result = _export(checkpoint, tmp_path / "openpose", "ONNX")
    assert result.returncode == 0, result.stderr[-2000:]
    session = ort.InferenceSession(str(tmp_path / "openpose.onnx"))
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, 64, 64)).astype(np.float32)
    onnx_pafs, onnx_heat = session.run(None, {session.get_inputs()[0].name: x})
    net = OpenPoseNet()
    load_weights(net, checkpoint)
    model = FinalStage(net)
    model.set_train(False)
    ms_pafs, ms_heat = (t.asnumpy() for t in model(ms.Tensor(x)))
    assert onnx_pafs.shape == (1, 38, 8, 8) and onnx_heat.shape == (1, 19, 8, 8)
    assert np.abs(onnx_pafs - ms_pafs).max() < 1e-4
    assert np.abs(onnx_heat - ms_heat).max() < 1e-4


def test_export_mindir_loads_and_runs(checkpoint, tmp_path, ms_cpu):
    import mindspore as ms

    from src.runtime.atomic_write import current_umask
    result = _export(checkpoint, tmp_path / "openpose", "MINDIR")
    assert result.returncode == 0, result.stderr[-2000:]
    mode = (tmp_path / "openpose.mindir").stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask(), f"exported with mode {oct(mode)} (MindSpore's 0o400?)"
    graph = ms.load(str(tmp_path / "openpose.mindir"))
    x = np.zeros((1, 3, 64, 64), np.float32)
    pafs, heatmaps = ms.nn.GraphCell(graph)(ms.Tensor(x))
    assert pafs.shape == (1, 38, 8, 8) and heatmaps.shape == (1, 19, 8, 8)


@pytest.mark.parametrize("extra, message", [
    (("--file_format", "AIR"), "AIR export needs an Ascend device"),
    (("--file_format", "ONNX", "--export_stages", "all"), "ONNX export supports only"),
    (("--file_format", "PNG"), "expected one of"),
])
def test_export_errors(checkpoint, tmp_path, extra, message):
    result = subprocess.run([sys.executable, "export.py", "--ckpt_file", checkpoint, "--file_name",
                             str(tmp_path / "x"), "--insize", "64", "--device_target", "CPU", *extra],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-1000:]


def test_export_missing_checkpoint(tmp_path):
    result = _export(str(tmp_path / "none.ckpt"), tmp_path / "x", "MINDIR")
    assert result.returncode == 1 and "no such checkpoint file" in result.stderr


def test_export_takes_model_path_too_but_not_two_different_checkpoints(tmp_path):
    """--model_path (eval.py's and infer.py's name) names the checkpoint as --ckpt_file does;
    both naming different files is a bad command line (exit 2, one line)."""
    missing = str(tmp_path / "none.ckpt")
    result = subprocess.run([sys.executable, "export.py", "--model_path", missing, "--file_name",
                             str(tmp_path / "x"), "--device_target", "CPU"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and f"{missing}: no such checkpoint file" in result.stderr, \
        result.stderr[-1000:]
    both = subprocess.run([sys.executable, "export.py", "--ckpt_file", missing, "--model_path",
                           str(tmp_path / "other.ckpt")], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert both.returncode == 2, both.stderr[-1000:]
    assert both.stderr.count("\n") == 1 and "name different checkpoints" in both.stderr, both.stderr
