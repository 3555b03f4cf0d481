"""Sizes whose buffers cannot fit are refused before anything is allocated (issue 21, point 14):
src/runtime/memory.py and its callers (inference input size, export batch, network width)."""
import subprocess
import sys

import pytest

from src.config import parse_config
from src.runtime.memory import MemoryNeedError, available_memory, check_fits, format_size
from tests.conftest import REPO_ROOT


def test_check_fits_compares_with_the_available_memory():
    assert check_fits(1000, "a buffer", available=1000) == 1000
    with pytest.raises(MemoryNeedError) as info:
        check_fits(3 * 1024 ** 4, "--thing 7", hint="use less", available=2 * 1024 ** 3)
    assert str(info.value) == ("--thing 7 needs at least 3.0 TiB of memory, 2.0 GiB is available; "
                               "use less")
    assert isinstance(info.value, MemoryError), "callers that expect MemoryError still catch it"
    assert available_memory() > 0, "this machine's MemAvailable is readable"
    assert format_size(5 * 1024 ** 5) == "5.0 PiB" and format_size(512) == "512 B"


@pytest.mark.parametrize("argv, shown", [
    (["--inference_img_size", "100000"], "network input 100000x100000 or larger"),
    (["--inference_img_size", "50000", "--flip", "True"], "network input 50000x50000 or larger, with its mirror image"),
    (["--inference_img_size", "368", "--multi_scale", "True", "--inference_scales", "[1, 500]"],
     "network input 184000x184000"),
])
def test_inference_size_that_cannot_fit_is_refused(argv, shown):
    from src.evaluate.inference import predictor_from_config
    cfg = parse_config(argv)
    with pytest.raises(MemoryNeedError, match=rf"^--inference_img_size \d+ \({shown}.*\) needs at "
                                              r"least .* of memory, .* is available; use a smaller"):
        predictor_from_config(lambda batch: None, cfg)
    assert predictor_from_config(lambda batch: None, parse_config([])).img_size == 368


def test_export_batch_that_cannot_fit_is_refused_before_the_checkpoint_is_read(tmp_path):
    from src.model.export import export_network
    with pytest.raises(MemoryNeedError, match=r"^--export_batch_size 1000000000 x --insize 368 \(the "
                                              r"traced input 1000000000x3x368x368 float32\) needs at "
                                              r"least 1.4 PiB"):
        export_network(str(tmp_path / "none.ckpt"), str(tmp_path / "x"), "MINDIR",
                       batch_size=1000000000, insize=368, stages="final")
    assert not list(tmp_path.iterdir()), "nothing written"


def test_export_py_with_a_huge_batch_is_one_line(tmp_path):
    """No ``cv2.error`` / numpy allocation traceback: one line, exit 1, before the images."""
    result = subprocess.run([sys.executable, "export.py", "--ckpt_file", str(tmp_path / "a.ckpt"),
                             "--file_name", str(tmp_path / "x"), "--export_batch_size",
                             "1000000000", "--device_target", "CPU"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith("export.py: error: --export_batch_size "
                                                     "1000000000"), result.stderr[-2000:]
