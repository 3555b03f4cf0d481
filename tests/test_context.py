"""MindSpore version warnings and device selection (src/runtime/context.py)."""
import subprocess
import sys

import pytest

from src.runtime.context import check_mindspore_version, resolve_device_target
from tests.conftest import REPO_ROOT


def test_slow_release_warning():
    assert "2.8.0" in check_mindspore_version("CPU", "2.9.0")
    assert check_mindspore_version("CPU", "2.10.1") is not None
    assert check_mindspore_version("GPU", "2.10.0") is None
    assert check_mindspore_version("CPU", "2.8.0") is None


def test_auto_device():
    assert resolve_device_target("auto") in ("GPU", "CPU")
    assert resolve_device_target("Ascend") == "Ascend"


def _has_device(target):
    from src import compat
    from src.runtime.context import cuda_driver_present
    return (target != "GPU" or cuda_driver_present()) and compat.device_available(target)


@pytest.mark.parametrize("script, target", [("eval.py", "GPU"), ("export.py", "Ascend"),
                                            ("train.py", "Ascend"), ("train.py", "GPU")])
def test_device_target_without_one_is_one_line(script, target, tmp_path):
    """--device_target GPU / Ascend where MindSpore has none: one line, exit 1 (issue 21, 11)."""
    if _has_device(target):
        pytest.skip(f"this machine has a usable {target}")
    ckpt = tmp_path / "a.ckpt"
    ckpt.write_bytes(b"x")
    args = {"eval.py": ["--model_path", str(ckpt), "--ann", str(ckpt), "--imgpath_val", str(tmp_path),
                        "--output_img_path", str(tmp_path / "out")],
            "export.py": ["--ckpt_file", str(ckpt), "--file_name", str(tmp_path / "x")],
            "train.py": ["--imgpath_train", str(tmp_path), "--jsonpath_train", str(ckpt),
                         "--maskpath_train", str(tmp_path), "--save_model_path", str(tmp_path / "s")]}
    result = subprocess.run([sys.executable, script, "--device_target", target, *args[script]],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"{script}: ")]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(ours) == 1 and ours[0].startswith(
        f"{script}: error: --device_target {target}: no usable {target} device ("), result.stderr[-2000:]
    assert ours[0].endswith("use --device_target CPU (or auto)") or "install the MindSpore build" in ours[0]
    assert not list(tmp_path.rglob("*.ckpt"))[1:] and not (tmp_path / "x.mindir").exists()
