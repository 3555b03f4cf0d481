"""eval.py, export.py and scripts/infer.py on a checkpoint that records its network: no
--config_path needed; a contradicting flag or a checkpoint missing a parameter stops each with
one line and exit status 1."""
import json
import subprocess
import sys

import pytest

from src.model.network_spec import NetworkSpec
from tests.conftest import REPO_ROOT

TOY = NetworkSpec(vgg_with_bn=True, width_mult=0.25, num_stages=1)


@pytest.fixture(scope="module")
def toy_checkpoints(ms_cpu, tmp_path_factory):
    """A toy-shaped checkpoint as train.py writes it, and a copy with one parameter removed."""
    import mindspore as ms

    from src.model.checkpoint import read_checkpoint
    from src.train.checkpoint_manager import CheckpointManager
    out = tmp_path_factory.mktemp("toy_ckpt")
    net = TOY.build()
    optimizer = ms.nn.Adam(net.trainable_params(), learning_rate=1e-3)
    good = CheckpointManager(out / "run", spec=TOY).save(net, optimizer, 5, 5)
    entries = read_checkpoint(good)
    del entries["network.stage_1.conv2_CPM_L1.weight"]
    broken = out / "missing_one.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in entries.items()], str(broken))
    return {"good": str(good), "missing": str(broken)}


def _command(script, checkpoint, sample, out):
    image = sorted(sample.glob("*.jpg"))[0]
    if script == "eval.py":
        return ["eval.py", "--model_path", checkpoint, "--imgpath_val", str(sample),
                "--ann", str(sample / "person_keypoints_sample.json"), "--output_img_path", str(out),
                "--inference_img_size", "64"]
    if script == "export.py":
        return ["export.py", "--ckpt_file", checkpoint, "--file_name", str(out / "toy"),
                "--file_format", "ONNX", "--insize", "64"]
    return ["scripts/infer.py", "--model_path", checkpoint, "--input", str(image),
            "--output", str(out), "--inference_img_size", "64"]


def _run(args):
    return subprocess.run([sys.executable] + args + ["--device_target", "CPU"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


SCRIPTS = ("eval.py", "export.py", "infer.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_toy_checkpoint_needs_no_config(toy_checkpoints, coco_sample_dir, tmp_path, script):
    proc = _run(_command(script, toy_checkpoints["good"], coco_sample_dir, tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"network: {TOY.describe()}" in proc.stdout, proc.stdout[-2000:]
    if script == "export.py":
        assert (tmp_path / "toy.onnx").stat().st_size > 0
    elif script == "infer.py":
        assert json.loads((tmp_path / "people.json").read_text())
    else:
        assert (tmp_path / "eval_metrics.json").is_file()


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("case", ["contradicting_flag", "missing_parameter"])
def test_bad_checkpoint_use_stops_with_one_line(toy_checkpoints, coco_sample_dir, tmp_path, script,
                                                case):
    checkpoint = toy_checkpoints["good" if case == "contradicting_flag" else "missing"]
    args = _command(script, checkpoint, coco_sample_dir, tmp_path)
    if case == "contradicting_flag":
        args += ["--num_stages", "6"]
    proc = _run(args)
    assert proc.returncode == 1, f"rc {proc.returncode}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    expected = "--num_stages 6 contradicts" if case == "contradicting_flag" else \
        "1 network parameters missing from the checkpoint: 'stage_1.conv2_CPM_L1.weight'"
    assert expected in errors[0], errors[0]
