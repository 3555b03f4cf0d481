"""eval.py end to end on a tiny random-weight checkpoint and the COCO sample (CPU), its error
handling, and the sharded evaluation loop."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.evaluate.coco_eval import METRICS_FILE, RESULTS_FILE
from src.evaluate.coco_metrics import STAT_NAMES

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TINY_NET = {"width_mult": 0.125, "num_stages": 2}


@pytest.fixture(scope="module")
def tiny_checkpoints(ms_cpu, tmp_path_factory):
    """A tiny random-weight network saved in our layout and in the reference's training
    layout (``network.`` prefix plus optimizer state)."""
    import mindspore as ms

    from src.model.checkpoint import save_checkpoint_atomic
    from src.model.network import OpenPoseNet
    out = tmp_path_factory.mktemp("ckpt")
    net = OpenPoseNet(**TINY_NET)
    ours = save_checkpoint_atomic(net, out / "tiny.ckpt")
    entries = []
    for param in net.get_parameters():
        entries.append({"name": f"network.{param.name}", "data": param.data})
        entries.append({"name": f"moment1.{param.name}", "data": ms.Tensor(np.zeros(param.shape,
                                                                              np.float32))})
    reference = out / "reference_style.ckpt"
    ms.save_checkpoint(entries, str(reference))
    return {"ours": ours, "reference": str(reference)}


def _args(**values):
    args = []
    for key, value in values.items():
        args += [f"--{key}", str(value)]
    return args


def test_eval_py_end_to_end(tiny_checkpoints, coco_sample_dir, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [PYTHON, "eval.py"] + _args(device_target="CPU", model_path=tiny_checkpoints["ours"],
                                    imgpath_val=coco_sample_dir,
                                    ann=coco_sample_dir / "person_keypoints_sample.json",
                                    output_img_path=out, inference_img_size=64, eva_num=0,
                                    vis=True, **TINY_NET),
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / RESULTS_FILE).read_text())
    assert isinstance(results, list)
    for record in results:
        assert set(record) == {"image_id", "category_id", "keypoints", "score"}
        assert len(record["keypoints"]) == 51 and record["category_id"] == 1
    summary = json.loads((out / METRICS_FILE).read_text())
    assert set(summary["metrics"]) == set(STAT_NAMES)
    assert summary["num_images"] == 4 and summary["num_detections"] == len(results)
    assert summary["images_per_second"] > 0
    for name in STAT_NAMES:
        assert -1.0 <= summary["metrics"][name] <= 1.0
    assert "AP.5" in proc.stdout and "images/s" in proc.stdout
    assert "img/s" in proc.stderr  # the progress bar
    assert sorted(p.name for p in out.glob("*.png")) == \
        ["000000000785_jpg.png", "000000040083_jpg.png", "000000196141_jpg.png", "000000197388_jpg.png"]


@pytest.mark.parametrize("key, message", [
    ("model_path", "checkpoint file not found (--model_path)"),
    ("ann", "annotation file not found (--ann)"),
    ("imgpath_val", "image folder not found (--imgpath_val)"),
])
def test_missing_inputs_are_one_line_errors(tiny_checkpoints, coco_sample_dir, tmp_path, capsys,
                                            key, message):
    import eval as eval_script
    values = {"model_path": tiny_checkpoints["ours"], "imgpath_val": coco_sample_dir,
              "ann": coco_sample_dir / "person_keypoints_sample.json"}
    values[key] = tmp_path / "missing"
    status = eval_script.main(_args(output_img_path=tmp_path / "out", **values))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and err[0].startswith("eval.py: error:") and message in err[0], err


def test_sharded_evaluation_equals_single_process(tiny_checkpoints, coco_sample_dir, tmp_path):
    """Two ranks run in turn with a fake gather: rank 0 sees both shards and writes the same
    results as one process. Also loads a reference-layout checkpoint."""
    from src.config import parse_config
    from src.evaluate.coco_eval import run_evaluation

    def config(out):
        return parse_config(_args(model_path=tiny_checkpoints["reference"],
                                  imgpath_val=coco_sample_dir,
                                  ann=coco_sample_dir / "person_keypoints_sample.json",
                                  output_img_path=out, inference_img_size=64, eva_num=3,
                                  heatmap_peak_thresh=0.0, **TINY_NET))

    lines = []
    single = run_evaluation(config(tmp_path / "single"), log=lines.append)
    assert set(single) == set(STAT_NAMES)
    assert any("loaded" in line for line in lines)  # the checkpoint report
    shards = {}
    assert run_evaluation(config(tmp_path / "rank1"), rank=1, group_size=2,
                          gather=lambda obj: shards.setdefault(1, obj) and None,
                          log=lines.append) is None
    sharded = run_evaluation(config(tmp_path / "rank0"), rank=0, group_size=2,
                             gather=lambda obj: [obj, shards[1]], log=lines.append)
    assert sharded == single
    one = json.loads((tmp_path / "single" / RESULTS_FILE).read_text())
    two = json.loads((tmp_path / "rank0" / RESULTS_FILE).read_text())
    assert one == two
    assert {r["image_id"] for r in one} <= {785, 40083, 196141}
    assert not (tmp_path / "rank1" / RESULTS_FILE).exists()
