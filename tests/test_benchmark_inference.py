"""scripts/benchmark_inference.py runs all three engines on the same weights (tiny input)."""
import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_three_engines_agree_and_report_times(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "scripts/benchmark_inference.py", "--size", "16",
                           "--repeats", "1", "--warmup", "1", "--out", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["input"] == "1x3x16x16"
    assert set(result["engines"]) == {"mindspore", "opencv_dnn", "onnxruntime"}
    for engine in result["engines"].values():
        assert engine["ms_per_image"] > 0 and engine["min_ms"] > 0
        assert engine["max_rel_diff_vs_mindspore"] < 1e-4
    assert result["fastest"] in result["engines"]
