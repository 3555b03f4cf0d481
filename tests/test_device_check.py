"""scripts/device_check.sh --smoke: the GPU check's whole path (train, eval.py, ONNX export) on
the CPU with tiny sizes, printing one JSON object."""
import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_device_check_smoke(tmp_path, coco_sample_dir):
    proc = subprocess.run(["bash", "scripts/device_check.sh", "--smoke", "--out", str(tmp_path),
                           "--shared", str(coco_sample_dir.parents[1])], cwd=REPO_ROOT, text=True,
                          env=dict(os.environ, PYTHON=sys.executable),  # this leg's interpreter
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON printed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(lines[-1])
    assert proc.returncode == 0 and report["ok"], f"device check failed: {report}"
    assert report["device_target"] == "CPU" and report["smoke"] is True
    assert report["train_O0"]["steps"] == 3 and report["train_O0"]["finite"]
    assert report["train_O2"]["skipped"]
    assert report["eval"]["images"] == 4 and report["eval"]["network_ms_per_image"] > 0
    assert report["onnx_export"]["pafs"] == [1, 38, 8, 8]
    assert report["onnx_export"]["heatmaps"] == [1, 19, 8, 8]
