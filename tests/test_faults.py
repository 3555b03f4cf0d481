"""Faults and hostile inputs (issue 14): each ends in one line with the stated exit status,
nothing is reported as done that was not, and the work already done is kept.

* exports that fail (nothing written, a broken file, a full disk) and output locations that
  cannot be written (a read-only bind mount where this machine allows one, else a path below a
  file), checked before any work;
* bad annotations, unreadable images in eval / inference, drawings that cannot be written;
* checkpoint temporaries (ours and MindSpore's own), a full disk during a save (a small tmpfs
  where it can be mounted, else a failing write injected below ``mindspore.save_checkpoint``);
* SIGINT / SIGTERM / SIGKILL during training and ``--resume auto`` afterwards (exact).

Training runs use the toy COCO set at 64 px with a 1-stage network of width 0.25, or the
in-memory tiny network of tests/test_resume.py.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.data.annotation_checks import validate_coco
from src.data.coco import AnnotationError, load_coco
from tests.conftest import REPO_ROOT
from tests.mounts import mount as _mount
from tests.mounts import umount as _umount

PYTHON = sys.executable
TRAIN_STEPS = 9                 # 3 epochs of 3 batches
#: the people rule of the toy masks and of every training run here (all toy people train)
TOY_RULE = {"min_keypoints": 1, "min_area": 16}
RULE_FLAGS = [text for key, value in TOY_RULE.items() for text in (f"--{key}", str(value))]
SMALL_NET = {"width_mult": 0.25, "num_stages": 1}


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy COCO set of 64 px images (6 train, 3 val), masked with TOY_RULE."""
    out = tmp_path_factory.mktemp("toy")
    subprocess.run([PYTHON, "scripts/make_toy_coco.py", "--out", str(out), "--num_train", "6",
                    "--num_val", "3", "--size", "64", "--seed", "3", "--quiet", *RULE_FLAGS],
                   check=True, cwd=REPO_ROOT, timeout=120)
    return out


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory, ms_cpu):
    """A random 1-stage, width-0.25 OpenPose checkpoint that records its network."""
    from src.model.checkpoint import save_checkpoint_atomic
    from src.model.network_spec import NetworkSpec
    spec = NetworkSpec(**SMALL_NET)
    entries = [{"name": p.name, "data": p} for p in spec.build().get_parameters()]
    path = tmp_path_factory.mktemp("small") / "small.ckpt"
    return save_checkpoint_atomic(entries, path, append_dict=spec.to_record())


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder that cannot be written: a read-only bind mount where possible, else a path
    below a regular file (cannot be created)."""
    source, target = tmp_path / "ro_source", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    if _mount(["--bind", str(source)], target) and \
            _mount(["-o", "remount,bind,ro"], target):
        yield target
        _umount(target)
        return
    _umount(target)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    yield blocker / "out"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs folder, or None where it cannot be mounted."""
    target = tmp_path / "disk"
    target.mkdir()
    if not _mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], target):
        yield None
        return
    yield target
    _umount(target)


def _one_error_line(result, prog):
    """The one ``<prog>: error:`` line of stderr (asserting there is exactly one, no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


# ----------------------------------------------------------------------------------------------
# 1. export: never a false success


def _export_in_process(ckpt, out, fmt):
    from src.model.export import export_network
    return export_network(ckpt, str(out), fmt, batch_size=1, insize=64, stages="final")


def test_export_writing_nothing_or_garbage_fails(small_ckpt, tmp_path, monkeypatch):
    from src import compat
    from src.runtime.output_checks import OutputError
    # MindSpore's exporter (behind src.compat) logs a failed write and goes on
    monkeypatch.setattr(compat, "export_onnx", lambda _model, _inputs, file_name, **_k: str(file_name))
    with pytest.raises(OutputError, match="export failed, no file was written"):
        _export_in_process(small_ckpt, tmp_path / "none", "ONNX")

    def garbage(_model, _inputs, file_name, **_kwargs):
        Path(file_name).write_bytes(b"not an onnx model")
        return str(file_name)
    monkeypatch.setattr(compat, "export_onnx", garbage)
    with pytest.raises(OutputError, match=r"bad.onnx: export failed, the ONNX file (is unusable|does not)"):
        _export_in_process(small_ckpt, tmp_path / "bad", "ONNX")
    assert not (tmp_path / "bad.onnx").exists(), "a broken file of this run is not left behind"


def test_export_on_a_full_disk(small_ckpt, small_disk, tmp_path, monkeypatch):
    import mindspore

    from src.runtime.output_checks import OutputError
    if small_disk is None:                                   # injected at the file layer
        def full(*_args, **_kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(mindspore, "export", full)
        out = tmp_path / "m"
    else:
        out = small_disk / "m"
    with pytest.raises(OutputError, match=r"m\.mindir: no space left on device .* free"):
        _export_in_process(small_ckpt, out, "MINDIR")
    assert not Path(f"{out}.mindir").exists()


def test_outputs_checked_before_any_work(toy, small_ckpt, unwritable_dir, tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    train = subprocess.run(_train_cli(toy, a_file), cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=120)
    assert train.returncode == 1
    assert f"{a_file}: is a file, not a folder (--save_model_path)" in _one_error_line(train, "train.py")
    commands = {
        "eval.py": ["eval.py", "--model_path", small_ckpt, "--imgpath_val", str(toy / "val2017"),
                    "--ann", str(toy / "annotations" / "person_keypoints_val2017.json"),
                    "--output_img_path", str(unwritable_dir)],
        "infer.py": ["scripts/infer.py", "--model_path", small_ckpt, "--input",
                     str(toy / "val2017"), "--output", str(unwritable_dir)],
        "export.py": ["export.py", "--ckpt_file", small_ckpt, "--file_name",
                      str(unwritable_dir / "model")],
    }
    keys = {"eval.py": "output_img_path", "infer.py": "output", "export.py": "file_name"}
    for prog, args in commands.items():
        result = subprocess.run([PYTHON, *args, "--device_target", "CPU"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120)
        line = _one_error_line(result, prog)
        assert result.returncode == 1 and f"(--{keys[prog]})" in line, line
        assert str(unwritable_dir) in line and "loaded" not in result.stdout, result.stdout


# ----------------------------------------------------------------------------------------------
# 3. annotations


def _coco():
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "num_keypoints": 5, "area": 2000.0, "bbox": [1, 2, 30, 40],
                             "keypoints": [10, 10, 2] * 17}]}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annotations"][0].update(num_keypoints="5"), "annotation id 7: 'num_keypoints'"),
    (lambda d: d["annotations"][0].update(area=None), "annotation id 7: 'area' must be a finite"),
    (lambda d: d["images"][0].pop("file_name"), "image id 1: 'file_name' must be a non-empty"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(4, float("nan")),
     "annotation id 7: 'keypoints' holds a value that is not a finite number (nan)"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, float("inf")),
     "annotation id 7: 'keypoints' holds a value that is not a finite number (inf)"),
    (lambda d: d["annotations"][0]["keypoints"].pop(), "annotation id 7: 'keypoints' must be a list of 51"),
    (lambda d: d["annotations"][0].update(image_id=99), "annotation id 7: its image_id 99 is not in 'images'"),
    (lambda d: d["images"].append(dict(d["images"][0])), "image id 1: appears twice"),
])
def test_bad_annotation_values_name_file_and_id(tmp_path, change, message):
    data = _coco()
    validate_coco(data, "ok.json")
    change(data)
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(data))               # NaN / Infinity as Python's json writes them
    with pytest.raises(AnnotationError) as info:
        load_coco(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert "\n" not in str(info.value)


def test_gen_ignore_mask_image_without_height(tmp_path, capsys):
    from src.data.ignore_mask import main
    data = _coco()
    del data["images"][0]["height"]
    (tmp_path / "train2017").mkdir()
    (tmp_path / "ann.json").write_text(json.dumps(data))
    assert main(["--train_ann", str(tmp_path / "ann.json"), "--train_dir",
                 str(tmp_path / "train2017"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {tmp_path / 'ann.json'}: image id 1: 'height' must be a positive integer (missing)"


def test_non_finite_loss_names_the_batch(ms_cpu, tmp_path, toy):
    from src.config import default_config
    from src.train.data import CocoTrainData
    from src.train.errors import NonFiniteLossError
    from src.train.loop import run_training
    from tests.test_resume import settings, toy_data
    from tests.tiny_nets import tiny_pose_net
    with pytest.raises(NonFiniteLossError, match=r"images of the batch: sample \d+, sample \d+;"):
        run_training(settings(tmp_path, max_train_steps=2), toy_data(nan=True), tiny_pose_net(seed=1),
                     log=lambda line: None)
    data = CocoTrainData.from_config(default_config(
        jsonpath_train=str(toy / "annotations" / "person_keypoints_train2017.json"),
        imgpath_train=str(toy / "train2017"), maskpath_train=str(toy / "ignore_mask_train"),
        batch_size=2, insize=64, num_parallel_workers=1, seed=4, **TOY_RULE))
    # batch_images names the batches of the epoch being trained (the one whose dataset was built)
    epoch_batches = data.batches(1)
    next(epoch_batches)
    names = [name for index in range(data.steps_per_epoch) for name in data.batch_images(1, index)]
    epoch_batches.close()
    assert sorted(names) == sorted(str(p) for p in (toy / "train2017").iterdir())


# ----------------------------------------------------------------------------------------------
# 4. unreadable images, drawings that cannot be written, nothing to evaluate


def test_eval_skips_an_unreadable_image(toy, small_ckpt, tmp_path):
    shutil.copytree(toy / "val2017", tmp_path / "val2017")
    bad = sorted((tmp_path / "val2017").iterdir())[1]
    bad.write_bytes(b"garbage")
    args = [PYTHON, "eval.py", "--model_path", small_ckpt, "--imgpath_val", str(tmp_path / "val2017"),
            "--ann", str(toy / "annotations" / "person_keypoints_val2017.json"),
            "--inference_img_size", "64", "--device_target", "CPU"]
    result = subprocess.run(args + ["--output_img_path", str(tmp_path / "out")], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"warning: skipped: {bad}: cannot decode image" in result.stdout + result.stderr
    assert "on 2 images (1 of 3 skipped: unreadable" in result.stdout
    summary = json.loads((tmp_path / "out" / "eval_metrics.json").read_text())
    assert summary["num_skipped"] == 1 and (tmp_path / "out" / "eval_result.json").is_file()
    strict = subprocess.run(args + ["--output_img_path", str(tmp_path / "strict"), "--strict", "True"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert strict.returncode == 1
    assert _one_error_line(strict, "eval.py") == f"eval.py: error: {bad}: cannot decode image"


def test_zero_images_to_evaluate_is_an_error(toy, small_ckpt, tmp_path, ms_cpu):
    from src.config import parse_config
    from src.evaluate.coco_eval import EvaluationError, run_evaluation
    data = json.loads((toy / "annotations" / "person_keypoints_val2017.json").read_text())
    data["annotations"] = []
    ann = tmp_path / "empty.json"
    ann.write_text(json.dumps(data))
    cfg = parse_config(["--model_path", small_ckpt, "--ann", str(ann), "--imgpath_val",
                        str(toy / "val2017"), "--output_img_path", str(tmp_path / "out")])
    with pytest.raises(EvaluationError, match="empty.json: no image to evaluate"):
        run_evaluation(cfg, log=lambda line: None)


def test_infer_skips_unreadable_images_and_reports_failed_drawings(tmp_path, monkeypatch):
    from src.evaluate.media import MediaError, run_media_inference
    from src.runtime import atomic_write, output_checks
    from tests.test_media_inference import FixedPredictor, _image
    folder = tmp_path / "imgs"
    folder.mkdir()
    _image(folder / "a.png")
    (folder / "b.jpg").write_bytes(b"garbage")
    _image(folder / "c.png", seed=1)
    lines = []
    result = run_media_inference(FixedPredictor(), folder, tmp_path / "out", log=lines.append)
    assert [Path(r["file"]).name for r in json.loads(Path(result).read_text())["results"]] == ["a.png", "c.png"]
    assert any("2 image(s): 2 people, 1 skipped (unreadable)" in line for line in lines), lines
    with pytest.raises(MediaError, match="b.jpg: cannot read this image"):
        run_media_inference(FixedPredictor(), folder, tmp_path / "strict", strict=True)

    def cannot_encode(path, *_args):
        raise atomic_write.WriteError(f"{path}: cannot write image")
    monkeypatch.setattr(atomic_write, "encode_image", cannot_encode)
    with pytest.raises(output_checks.OutputError, match=r"2 drawing\(s\) could not be written"):
        run_media_inference(FixedPredictor(), folder, tmp_path / "nodraw", log=lines.append)
    assert (tmp_path / "nodraw" / "people.json").is_file(), "results are written before failing"


# ----------------------------------------------------------------------------------------------
# 6. checkpoint temporaries and a full disk


def test_zero_byte_checkpoint_is_named_as_such(tmp_path):
    from src.model.checkpoint import CheckpointError, read_checkpoint
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.ckpt: checkpoint file is empty \(0 bytes\)"):
        read_checkpoint(empty)


def test_mindspore_temporary_name_is_recognised(ms_cpu, tmp_path, monkeypatch):
    """What mindspore.save_checkpoint writes while saving is one of the names the cleanup knows."""
    from mindspore.train import serialization

    from src.model.checkpoint import mindspore_temporary, save_checkpoint_atomic
    from src.runtime.atomic_write import TEMPORARY_NAME
    from tests.tiny_nets import tiny_pose_net
    renames = []
    real_rename = os.rename
    monkeypatch.setattr(serialization.os, "rename",
                        lambda src, dst: (renames.append((src, dst)), real_rename(src, dst)))
    save_checkpoint_atomic(tiny_pose_net(seed=1), tmp_path / "0-1_2.ckpt")
    # MindSpore 2.8 writes its own temporary and renames it to ours; 2.0 writes ours directly
    assert len(renames) <= 1, renames
    for source, target in renames:
        assert str(mindspore_temporary(target)) == source, renames
        assert TEMPORARY_NAME.match(Path(target).name) and TEMPORARY_NAME.match(Path(source).name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-1_2.ckpt"]


def test_stale_temporaries_removed_at_start(ms_cpu, tmp_path):
    from src.runtime.atomic_write import host_tag
    from src.train.loop import run_training
    from tests.test_resume import settings, toy_data
    from tests.tiny_nets import tiny_pose_net
    dead = subprocess.Popen(["true"])
    dead.wait()
    ckpt_dir = tmp_path / "ckpt_0"
    ckpt_dir.mkdir()
    tag = host_tag()
    stale = [ckpt_dir / f".tmp{dead.pid}-{tag}0a1b.ckpt", ckpt_dir / f".tmp{dead.pid}-{tag}0a1b.tmp"]
    live = ckpt_dir / f".tmp{os.getppid()}-{tag}0a1b.tmp"           # a running process: kept
    for path in stale + [live]:
        path.write_bytes(b"x" * 1000)
    lines = []
    run_training(settings(tmp_path, max_train_steps=1), toy_data(), tiny_pose_net(seed=1),
                 log=lines.append)
    assert not any(path.exists() for path in stale) and live.exists()
    assert any(line.startswith(f"removed 2 temporary checkpoint file(s) of earlier runs from {ckpt_dir}")
               for line in lines), lines


def test_full_disk_during_a_save(ms_cpu, tmp_path, small_disk, monkeypatch):
    import mindspore

    from src.model.checkpoint import read_checkpoint
    from src.runtime.atomic_write import WriteError
    from src.train.loop import run_training
    from tests.test_resume import settings, toy_data
    from tests.tiny_nets import tiny_pose_net
    root = small_disk if small_disk is not None else tmp_path
    ckpt_dir = root / "ckpt_0"

    def fill_disk(step, _loss):
        if step != 3:
            return
        if small_disk is not None:              # leave less than a checkpoint free
            with open(root / "filler", "wb", buffering=0) as stream, pytest.raises(OSError):
                while True:
                    stream.write(b"\0" * 65536)
        else:                                   # injected: a partial temporary, then ENOSPC
            def failing_save(save_obj, name, **kwargs):
                Path(name).with_suffix(".tmp").write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
            monkeypatch.setattr(mindspore, "save_checkpoint", failing_save)

    with pytest.raises(WriteError) as info:
        run_training(settings(root, max_train_steps=6, ckpt_interval=2, keep_checkpoint_max=5),
                     toy_data(), tiny_pose_net(seed=1), log=lambda line: None,
                     step_callback=fill_disk)
    message = str(info.value)
    assert message.startswith(f"{ckpt_dir / '0-2_1.ckpt'}: no space left on device while writing (")
    assert message.endswith(" free on its file system)") and "\n" not in message
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["0-1_2.ckpt"], "no temporaries left"
    assert int(read_checkpoint(ckpt_dir / "0-1_2.ckpt")["step_num"]) == 2, "the previous one intact"


# ----------------------------------------------------------------------------------------------
# 7. signals


def test_sigterm_in_process_checkpoints_and_resumes_exactly(ms_cpu, tmp_path):
    from src.train.interrupts import TrainInterrupted
    from src.train.loop import run_training
    from tests.test_resume import _weights, settings, toy_data
    from tests.tiny_nets import tiny_pose_net
    handler_before = signal.getsignal(signal.SIGTERM)
    straight = tiny_pose_net(seed=1)
    run_training(settings(tmp_path / "a", max_train_steps=8), toy_data(), straight, log=lambda line: None)

    def terminate(step, _loss):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(TrainInterrupted) as info:
        run_training(settings(tmp_path / "b", max_train_steps=8, ckpt_interval=100), toy_data(),
                     tiny_pose_net(seed=1), log=lambda line: None, step_callback=terminate)
    assert info.value.exit_code == 143
    assert str(info.value) == (f"stopped by SIGTERM after global step 4; checkpoint "
                               f"{tmp_path / 'b' / 'ckpt_0' / '0-2_1.ckpt'} written; continue with "
                               "the same command and --resume auto")
    assert signal.getsignal(signal.SIGTERM) == handler_before, "the handler is removed again"
    resumed = tiny_pose_net(seed=99)
    result = run_training(settings(tmp_path / "b", max_train_steps=8, resume="auto"), toy_data(),
                          resumed, log=lambda line: None)
    assert result.steps_run == 4
    for name, value in _weights(straight).items():
        np.testing.assert_allclose(_weights(resumed)[name], value, rtol=0, atol=1e-5, err_msg=name)


def _train_cli(toy, save, *extra):
    return [PYTHON, "train.py", "--imgpath_train", str(toy / "train2017"),
            "--jsonpath_train", str(toy / "annotations" / "person_keypoints_train2017.json"),
            "--maskpath_train", str(toy / "ignore_mask_train"), "--insize", "64",
            "--batch_size", "2", "--width_mult", "0.25", "--num_stages", "1",
            "--num_parallel_workers", "1", *RULE_FLAGS,
            "--min_box_size", "1", "--max_box_size", "100000", "--log_interval", "1",
            "--max_train_steps", str(TRAIN_STEPS), "--device_target", "CPU",
            "--save_model_path", str(save), *extra]


def _run_until(args, pattern, signum):
    """Start train.py, send ``signum`` once a stdout line contains ``pattern``; the result."""
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if pattern in line:
            proc.send_signal(signum)
            break
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(seen) + out, err


def _params(save):
    """The network parameters of a run's last checkpoint (the newest in ``save``/ckpt_0)."""
    from src.model.checkpoint import read_checkpoint
    from src.train.checkpoint_manager import CHECKPOINT_RANK, CheckpointManager
    entries = read_checkpoint(CheckpointManager(save, CHECKPOINT_RANK).latest())
    return {name[len("network."):]: value for name, value in entries.items() if name.startswith("network.")}


@pytest.fixture(scope="module")
def uninterrupted(toy, tmp_path_factory):
    """Parameters after TRAIN_STEPS steps of train.py without interruption."""
    root = tmp_path_factory.mktemp("straight")
    result = subprocess.run(_train_cli(toy, root / "save"), cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return _params(root / "save")


def _assert_same(got, want):
    assert got.keys() == want.keys()
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-5, err_msg=name)


def test_sigint_checkpoints_then_resume_auto_is_exact(toy, tmp_path, uninterrupted):
    save = tmp_path / "save"
    # During start-up: the signal is sent at the "device CPU" line, but the process goes on while
    # this test reads that line, so under load it may arrive after the training loop began (seen
    # once in CI). Both outcomes are documented ones: at once with the start-up line and no
    # checkpoint, or after the step in progress with its checkpoint. Either way exit 130.
    code, _out, err = _run_until(_train_cli(toy, save), "device CPU", signal.SIGINT)
    last = err.splitlines()[-1] if err.strip() else ""
    assert code == 130, err[-2000:]
    if last.startswith("train.py: stopped by SIGINT outside the training steps"):
        assert not list(save.rglob("*.ckpt")), "no checkpoint before the first step"
    else:
        assert last.startswith("train.py: stopped by SIGINT after global step ") and \
            last.endswith("continue with the same command and --resume auto"), err[-2000:]
        assert list(save.rglob("*.ckpt")), "the step's checkpoint was written"
        save = tmp_path / "save_again"          # the run below starts from scratch
    # sent after step 1: the 8 steps left before the run ends are the margin for a reader
    # slowed by load (the signal must arrive before the last step)
    code, out, err = _run_until(_train_cli(toy, save, "--ckpt_interval", "100"), "(global 1)",
                                signal.SIGINT)
    assert code == 130, err[-2000:]
    stopped = [line for line in err.splitlines() if line.startswith("train.py: stopped by SIGINT")]
    assert len(stopped) == 1 and stopped[0].endswith("continue with the same command and --resume auto")
    step = int(stopped[0].split("after global step ")[1].split(";")[0])
    assert 1 <= step < TRAIN_STEPS and f"(global {step})" in out
    resumed = subprocess.run(_train_cli(toy, save, "--resume", "auto"), cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and f"at global step {step}" in resumed.stdout, resumed.stderr[-2000:]
    _assert_same(_params(save), uninterrupted)


def _stderr_until(proc, marker, limit=300):
    """Read ``proc``'s stderr (bytes, unbuffered: progress bars have no newline) until the
    regular expression ``marker`` matches it; everything read so far (AssertionError when the
    process ends first)."""
    import re
    import select
    import time
    seen, deadline = b"", time.monotonic() + limit
    while not re.search(marker.encode(), seen):
        assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, f"ended before {marker!r}: " + seen.decode(errors="replace")[-2000:]
            seen += chunk
    return seen.decode(errors="replace")


def _sigint_in_loop(args, marker):
    """Start a script, send SIGINT once its progress bar matches ``marker`` (it is then inside
    its image / frame loop, whatever the load), and return (exit status, stderr)."""
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = _stderr_until(proc, marker)
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=300)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen + rest.decode(errors="replace")


def _stopped_line(err, prog):
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith(f"{prog}: ")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def test_sigint_during_video_inference_leaves_no_partial_file(small_ckpt, tmp_path):
    """Ctrl-C on scripts/infer.py: exit 130, one line, no unplayable partial video, no
    people.json, no temporary (issue 21: it was status 143, no message and a 44-byte mp4)."""
    import cv2
    video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(2000):                       # far more frames than run before the signal
        writer.write(np.full((48, 64, 3), i % 250, np.uint8))
    writer.release()
    out = tmp_path / "out"
    code, err = _sigint_in_loop([PYTHON, "scripts/infer.py", "--model_path", str(small_ckpt),
                                 "--input", str(video), "--output", str(out), "--device_target",
                                 "CPU", "--inference_img_size", "64"], r"\| +[1-9][0-9]*/2000")
    assert code == 130, err[-2000:]
    assert _stopped_line(err, "infer.py") == (
        "infer.py: stopped by SIGINT before inference finished; people.json and the annotated "
        "video are written only by a finished run (drawings already written are complete)")
    assert list(out.iterdir()) == [], "no partial video, no people.json, no temporary"


def test_sigint_during_evaluation_writes_no_results(small_ckpt, tmp_path):
    """Ctrl-C on eval.py: exit 130, one line, no results or metrics (it was status 143 and no
    message). 40 images at 368 px: the loop is still running when the signal arrives."""
    toy = tmp_path / "toy"
    subprocess.run([PYTHON, "scripts/make_toy_coco.py", "--out", str(toy), "--num_train", "0",
                    "--num_val", "40", "--size", "64", "--seed", "5", "--quiet"], check=True,
                   cwd=REPO_ROOT, timeout=120)
    out = tmp_path / "out"
    code, err = _sigint_in_loop([PYTHON, "eval.py", "--model_path", str(small_ckpt),
                                 "--imgpath_val", str(toy / "val2017"), "--ann",
                                 str(toy / "annotations" / "person_keypoints_val2017.json"),
                                 "--output_img_path", str(out), "--device_target", "CPU",
                                 "--inference_img_size", "368"], r"\| +[1-9][0-9]*/40")
    assert code == 130, err[-2000:]
    assert _stopped_line(err, "eval.py").startswith("eval.py: stopped by SIGINT before the "
                                                    "evaluation finished; eval_result.json")
    assert list(out.iterdir()) == [], "no results, no metrics, no temporary"


def test_sigkill_at_several_moments_then_resume_auto_is_exact(toy, tmp_path, uninterrupted):
    save = tmp_path / "save"
    every_step = ("--ckpt_interval", "1", "--keep_checkpoint_max", "2")
    # during start-up (before the first step), then while checkpoints are written every step
    for pattern in ("steps per epoch", "(global 5)"):
        code, _out, _err = _run_until(_train_cli(toy, save, "--resume", "auto", *every_step),
                                      pattern, signal.SIGKILL)
        assert code == -signal.SIGKILL
    from src.runtime.atomic_write import host_tag
    leftover = save / "ckpt_0" / f".tmp999999999-{host_tag()}0a1b.tmp"   # as a kill inside a save leaves
    leftover.write_bytes(b"partial")
    resumed = subprocess.run(_train_cli(toy, save, "--resume", "auto", *every_step), cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # the planted one, and another when the kill landed inside a save (under load it can)
    removed = re.search(r"removed (\d+) temporary checkpoint file\(s\)", resumed.stdout)
    assert removed and int(removed.group(1)) >= 1, resumed.stdout[-2000:]
    assert "resumed from" in resumed.stdout, resumed.stdout[-2000:]
    assert not [p.name for p in (save / "ckpt_0").iterdir() if p.name.startswith(".")]
    _assert_same(_params(save), uninterrupted)
