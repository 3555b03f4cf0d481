"""One training run per --save_model_path (issue 21, point 3): src/train/run_lock.py with real
processes, and two train.py runs on the same folder."""
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from src.train.run_lock import LOCK_NAME, RunLockError, run_lock

REPO = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time; sys.path.insert(0, '.'); from src.train.run_lock import run_lock; "
        "lock = run_lock(sys.argv[1]); lock.__enter__(); print('locked', flush=True); time.sleep(120)")


def _holder(folder):
    """A process holding ``folder``'s lock (it has printed 'locked' when this returns)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_refused_then_dead_holders_lock_taken_over(tmp_path):
    holder = _holder(tmp_path)
    try:
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == holder.pid and record["host"] == socket.gethostname()
        with pytest.raises(RunLockError) as info:
            with run_lock(tmp_path):
                pass
        assert str(info.value) == (
            f"{tmp_path} is in use by another training run (pid {holder.pid} on "
            f"{socket.gethostname()}, started {record['started']}; lock file {tmp_path / LOCK_NAME}): "
            "wait for it to finish or pass another --save_model_path")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists(), "a killed run leaves its lock file"
    lines = []
    with run_lock(tmp_path, log=lines.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] != holder.pid
    assert lines == [f"taking over {tmp_path / LOCK_NAME}: its run (pid {holder.pid} on "
                     f"{socket.gethostname()}, started {record['started']}) is no longer running"]
    assert not (tmp_path / LOCK_NAME).exists(), "released at the end"


def test_lock_of_another_host_is_not_taken(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(RunLockError, match=r"has the lock of a run on another host .*pid 1 on elsewhere.*"
                                           r"delete the lock file"):
        with run_lock(tmp_path):
            pass


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    subprocess.run([sys.executable, "scripts/make_toy_coco.py", "--out", str(out), "--num_train", "4",
                    "--num_val", "2", "--size", "64", "--seed", "3", "--quiet",
                    "--min_keypoints", "1", "--min_area", "16"], check=True,
                   cwd=REPO, timeout=120)
    return out


def _train(toy, save, steps):
    return [sys.executable, "train.py", "--imgpath_train", str(toy / "train2017"),
            "--jsonpath_train", str(toy / "annotations" / "person_keypoints_train2017.json"),
            "--maskpath_train", str(toy / "ignore_mask_train"), "--insize", "64",
            "--batch_size", "2", "--width_mult", "0.25", "--num_stages", "1",
            "--num_parallel_workers", "1", "--min_keypoints", "1", "--min_area", "16",
            "--min_box_size", "1", "--max_box_size", "100000", "--val_interval", "0",
            "--max_train_steps", str(steps), "--device_target", "CPU", "--save_model_path", str(save)]


def test_two_train_runs_on_one_folder(toy, tmp_path):
    save = tmp_path / "save"
    first = subprocess.Popen(_train(toy, save, 100000), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in first.stdout:              # the lock is held once this line is printed
            if line.startswith("device CPU"):
                break
        assert first.poll() is None, "the first run is still running"
        record = json.loads((save / LOCK_NAME).read_text())
        second = subprocess.run(_train(toy, save, 1), cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if line.startswith("train.py: error:")]
        assert errors == [
            f"train.py: error: {save} is in use by another training run (pid {first.pid} on "
            f"{socket.gethostname()}, started {record['started']}; lock file {save / LOCK_NAME}): "
            "wait for it to finish or pass another --save_model_path"], second.stderr[-2000:]
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    third = subprocess.run(_train(toy, save, 1), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"taking over {save / LOCK_NAME}: its run (pid {first.pid} on {socket.gethostname()}" in third.stdout
    assert not (save / LOCK_NAME).exists()


def test_file_system_without_flock_falls_back_to_the_record(tmp_path, monkeypatch):
    import errno
    import os

    from src.train import run_lock as module

    def no_flock(_fd, _op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(module.fcntl, "flock", no_flock)
    lines = []
    with run_lock(tmp_path, log=lines.append):
        pass
    assert lines == [f"warning: {tmp_path / LOCK_NAME}: this file system cannot lock files (No locks "
                     "available); a second run on this folder is detected only from the record, "
                     "while this run's process lives"]
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                                  "started": "then"}))
    with pytest.raises(RunLockError, match=f"pid {os.getppid()} on {socket.gethostname()}, started then"):
        with run_lock(tmp_path, log=lines.append):
            pass
