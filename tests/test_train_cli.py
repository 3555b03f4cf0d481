"""train.py end to end on a toy COCO set (real network, real data pipeline, CPU), its error
handling, and the data order of the real pipeline on resume."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.fixture(scope="module")
def toy_coco(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_coco")
    subprocess.run([PYTHON, str(REPO / "scripts" / "make_toy_coco.py"), "--out", str(out),
                    "--num_train", "6", "--num_val", "1", "--size", "128", "--seed", "3", "--quiet"],
                   check=True, cwd=REPO, timeout=120)
    return {"imgpath_train": str(out / "train2017"),
            "jsonpath_train": str(out / "annotations" / "person_keypoints_train2017.json"),
            "maskpath_train": str(out / "ignore_mask_train")}


def _train(args, timeout=300):
    return subprocess.run([PYTHON, "train.py", "--device_target", "CPU"] + args, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _flags(paths, **extra):
    args = []
    for key, value in {**paths, **extra}.items():
        args += [f"--{key}", str(value)]
    return args


@pytest.fixture(scope="module")
def trained(toy_coco, tmp_path_factory):
    """train.py for 2 steps at insize 64 (real network, real pipeline): (process, save dir)."""
    save = tmp_path_factory.mktemp("train_run")
    proc = _train(_flags(toy_coco, insize=64, batch_size=2, max_train_steps=2, log_interval=1,
                         ckpt_interval=100, num_parallel_workers=1, save_model_path=save))
    return proc, save


def test_train_py_runs_and_writes_a_loadable_checkpoint(ms_cpu, trained):
    from src.model.checkpoint import read_checkpoint
    from src.model.model_files import load_weights
    from src.model.network import OpenPoseNet
    proc, save = trained
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"checkpoints: {save / 'ckpt_0'}" in proc.stdout
    assert "mean loss" in proc.stdout and "heatmap stages" in proc.stdout and "img/s" in proc.stdout
    ckpts = sorted((save / "ckpt_0").glob("*.ckpt"))
    assert [p.name for p in ckpts] == ["0-1_2.ckpt"], proc.stdout[-2000:]
    entries = read_checkpoint(ckpts[0])
    assert int(entries["step_num"]) == 2
    assert int(entries["openpose_spec.num_stages"]) == 6, "the checkpoint records its network"
    net = OpenPoseNet()
    report = load_weights(net, ckpts[0])
    assert len(report.loaded) == 184 and not report.missing and not report.unexpected
    assert report.skipped_state > 0          # moments, global_step, loop position, record
    np.testing.assert_array_equal(net.stage_6.conv7_L2.bias.asnumpy(),
                                  entries["network.stage_6.conv7_L2.bias"])


@pytest.mark.slow
def test_export_and_eval_accept_the_checkpoint(trained, toy_coco, tmp_path):
    proc, save = trained
    assert proc.returncode == 0
    ckpt = save / "ckpt_0" / "0-1_2.ckpt"
    exported = subprocess.run([PYTHON, "export.py", "--device_target", "CPU", "--ckpt_file", str(ckpt),
                               "--file_name", str(tmp_path / "toy"), "--file_format", "MINDIR",
                               "--insize", "64"], cwd=REPO, capture_output=True, text=True,
                              timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (tmp_path / "toy.mindir").is_file()
    toy_root = Path(toy_coco["imgpath_train"]).parent
    evaluated = subprocess.run([PYTHON, "eval.py", "--device_target", "CPU", "--model_path", str(ckpt),
                                "--imgpath_val", str(toy_root / "val2017"),
                                "--ann", str(toy_root / "annotations" / "person_keypoints_val2017.json"),
                                "--eva_num", "1", "--inference_img_size", "64",
                                "--output_img_path", str(tmp_path / "eval")], cwd=REPO,
                               capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]


@pytest.mark.parametrize("key, value, message", [
    ("imgpath_train", "/nonexistent/train2017", "no such folder (--imgpath_train)"),
    ("jsonpath_train", "/nonexistent/ann.json", "no such file (--jsonpath_train)"),
    ("maskpath_train", "", "--maskpath_train is not set"),
    ("vgg_path", "/nonexistent/vgg19.ckpt", "no such file (--vgg_path)"),
    ("resume", "/nonexistent/x.ckpt", "no such file (--resume)"),
])
def test_missing_paths_exit_nonzero_with_one_line(toy_coco, key, value, message):
    proc = _train(_flags({**toy_coco, key: value}), timeout=120)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("train.py: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-1000:]
    assert "Traceback" not in proc.stderr


def test_masks_of_another_people_rule_are_refused(toy_coco, tmp_path):
    """The toy masks record default_config.yaml's rule (5 keypoints, area 1024); training with
    --min_area 256 would train people whose regions those masks ignore."""
    masks = toy_coco["maskpath_train"]
    save = tmp_path / "run"
    proc = _train(_flags(toy_coco, min_area=256, insize=64, batch_size=2, max_train_steps=1,
                         num_parallel_workers=1, save_model_path=save), timeout=180)
    assert proc.returncode == 1, proc.stdout[-1000:] + proc.stderr[-1000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("train.py: error:")]
    assert lines == [
        f"train.py: error: {masks} holds ignore masks made with --min_keypoints 5 --min_area 1024 "
        "(ignore_mask_rule.json); this training run uses --min_keypoints 5 --min_area 256: pass "
        f"the masks' values, or delete {masks} and redo the masks with gen_ignore_mask.py and "
        "the training values"], proc.stderr[-1000:]
    assert "Traceback" not in proc.stderr
    assert not save.exists(), "refused before anything was written (checked before the run starts)"


def test_bad_annotation_file_exits_nonzero(toy_coco, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    proc = _train(_flags({**toy_coco, "jsonpath_train": bad}), timeout=120)
    assert proc.returncode == 1
    assert "train.py: error:" in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_vgg_file_exits_nonzero(toy_coco, tmp_path):
    bad = tmp_path / "vgg.ckpt"
    bad.write_bytes(b"not a checkpoint")
    proc = _train(_flags({**toy_coco, "vgg_path": bad}, insize=64, batch_size=2,
                         num_parallel_workers=1, save_model_path=tmp_path), timeout=180)
    assert proc.returncode == 1
    assert "train.py: error:" in proc.stderr and "not a readable MindSpore checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_amp_on_cpu_is_refused(toy_coco, tmp_path):
    proc = _train(_flags(toy_coco, insize=64, batch_size=2, amp_level="O2", num_parallel_workers=1,
                         save_model_path=tmp_path), timeout=180)
    assert proc.returncode == 1 and "amp_level O2 needs a GPU" in proc.stderr


def test_coco_pipeline_order_on_resume(toy_coco):
    """Epoch e of the real pipeline is the same whether or not earlier epochs ran, and
    skipping k batches yields the rest of that epoch."""
    from src.config import default_config
    from src.train.data import CocoTrainData
    cfg = default_config(**toy_coco, batch_size=1, insize=64, num_parallel_workers=1, seed=5)
    fresh = CocoTrainData.from_config(cfg)
    assert fresh.steps_per_epoch >= 3
    epoch0 = [b[0] for b in fresh.batches(0)]
    epoch1 = [b[0] for b in fresh.batches(1)]
    assert len(epoch1) == fresh.steps_per_epoch
    assert not all(np.array_equal(a, b) for a, b in zip(epoch0, epoch1))
    restarted = CocoTrainData.from_config(cfg)   # a new process resuming in epoch 1 after 2 batches
    rest = [b for b in restarted.batches(1, skip_batches=2)]
    assert len(rest) == fresh.steps_per_epoch - 2
    for got, want in zip(rest, epoch1[2:]):
        np.testing.assert_array_equal(got[0], want)


def _error_of_a_damaged_first_image(toy_coco, tmp_path, damage):
    """Copy the toy training set, ``damage(path)`` its first image, read one epoch; returns
    ``(that image's path, the TrainError's message)``."""
    import shutil

    from src.config import default_config
    from src.train.data import CocoTrainData
    from src.train.errors import TrainError
    root = tmp_path / "toy"
    shutil.copytree(Path(toy_coco["imgpath_train"]).parent, root)
    first = sorted((root / "train2017").iterdir())[0]
    damage(first)
    data = CocoTrainData.from_config(default_config(
        jsonpath_train=str(root / "annotations" / "person_keypoints_train2017.json"),
        imgpath_train=str(root / "train2017"), maskpath_train=str(root / "ignore_mask_train"),
        batch_size=1, insize=64, num_parallel_workers=1, seed=0))
    with pytest.raises(TrainError) as err:
        for _ in data.batches(0):
            pass
    return first, str(err.value)


def test_unreadable_image_gives_a_one_line_error(toy_coco, tmp_path):
    first, message = _error_of_a_damaged_first_image(
        toy_coco, tmp_path, lambda path: path.write_bytes(b"garbage"))
    assert "\n" not in message and first.name in message and "cannot decode" in message


def test_image_of_another_size_than_annotated_is_an_error_naming_it(toy_coco, tmp_path):
    """Training never learns from keypoints that do not fit their image (issue 21, point 8)."""
    import cv2

    def halve_height(path):
        image = cv2.imread(str(path))
        cv2.imwrite(str(path), cv2.resize(image, (image.shape[1], image.shape[0] // 2)))
    first, message = _error_of_a_damaged_first_image(toy_coco, tmp_path, halve_height)
    assert "\n" not in message and f"{first}: image is 128x64 pixels but its annotation says 128x128" \
        in message, message
