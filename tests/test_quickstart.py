"""scripts/quickstart.sh: what can be checked without its minutes of training."""
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_a_second_quickstart_in_the_same_folder_is_refused(tmp_path):
    """The lock is held before the script starts (no race): it stops at once, one line, exit 1,
    and touches nothing in the folder."""
    if not shutil.which("flock"):
        pytest.skip("no flock(1) here: the quickstart runs without its folder lock")
    out = tmp_path / "quickstart"
    out.mkdir()
    # a stand-in interpreter that fails at once: without the lock the script stops at step 2
    # (seconds) instead of training
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 3\n")
    (venv / "bin" / "python").chmod(0o755)
    env = dict(os.environ, QUICKSTART_OUT=str(out), SKIP_SETUP="1", QUICK="1", VENV=str(venv))
    with open(out / ".quickstart.lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = subprocess.run(["bash", "scripts/quickstart.sh"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-1000:] + proc.stderr[-1000:]
    assert proc.stderr.strip() == (f"quickstart: error: another quickstart is running in {out} "
                                   "(wait for it, or set QUICKSTART_OUT)")
    assert "========" not in proc.stdout, "a step started"
    assert sorted(os.listdir(out)) == [".quickstart.lock"]
