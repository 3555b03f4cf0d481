"""src/parallel/mpirun_bridge.py: scheduler port and address, the MS_* environments, waiting for
the scheduler, and the scheduler entry point."""
import socket
import subprocess
import tempfile
import time

import pytest

from src.parallel import mpirun_bridge as bridge
from src.parallel.launch import DistributedError, detect_launch
from tests.test_distributed_launch import OMPI_2


def test_derived_port_is_per_job_and_in_range():
    low, high = bridge.DERIVED_PORT_RANGE
    port = bridge.derived_port(OMPI_2)
    assert low <= port < high
    assert port == bridge.derived_port(dict(OMPI_2, OMPI_COMM_WORLD_RANK="0"))  # same on every rank
    other = bridge.derived_port(dict(OMPI_2, OMPI_MCA_ess_base_jobid="1947860993"))
    assert other != port
    assert bridge.derived_port({"PMIX_NAMESPACE": "1947860993"}) == other
    with pytest.raises(DistributedError, match="OPENPOSE_SCHED_PORT"):
        bridge.derived_port({})


def test_sched_address():
    launch = detect_launch(OMPI_2)
    env = dict(OMPI_2, OPENPOSE_SCHED_PORT="23456")
    assert bridge._sched_address(launch, env) == ("127.0.0.1", 23456)
    multi = dict(env, OMPI_COMM_WORLD_LOCAL_SIZE="1")
    with pytest.raises(DistributedError, match="OPENPOSE_SCHED_HOST"):
        bridge._sched_address(launch, multi)
    assert bridge._sched_address(launch, dict(multi, OPENPOSE_SCHED_HOST="10.0.0.1")) == \
        ("10.0.0.1", 23456)


def test_scheduler_and_worker_env():
    base = dict(OMPI_2, PMIX_RANK="1", MS_NODE_ID="1", RANK_ID="1", RANK_SIZE="2", PATH="/bin",
                GLOG_v="2")
    env = bridge.scheduler_env(base, 2, "127.0.0.1", 23456)
    assert env == {"PATH": "/bin", "GLOG_v": "2", "MS_ROLE": "MS_SCHED", "MS_WORKER_NUM": "2",
                   "MS_SCHED_HOST": "127.0.0.1", "MS_SCHED_PORT": "23456"}
    worker = bridge.worker_env(detect_launch(OMPI_2), "127.0.0.1", 23456)
    assert worker == {"MS_ROLE": "MS_WORKER", "MS_WORKER_NUM": "2", "MS_SCHED_HOST": "127.0.0.1",
                      "MS_SCHED_PORT": "23456", "MS_NODE_ID": "1", "RANK_ID": "1", "RANK_SIZE": "2"}


def test_wait_for_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        bridge.wait_for_port("127.0.0.1", server.getsockname()[1], timeout_s=5)
    port = bridge.free_port()
    start = time.monotonic()
    with pytest.raises(DistributedError, match="no scheduler"):
        bridge.wait_for_port("127.0.0.1", port, timeout_s=0.3)
    with pytest.raises(DistributedError, match="exited before"):
        bridge.wait_for_port("127.0.0.1", port, timeout_s=30, alive=lambda: False)
    assert time.monotonic() - start < 5


def test_scheduler_entry_point_refuses_bad_use(monkeypatch, capsys):
    monkeypatch.delenv("MS_ROLE", raising=False)
    assert bridge.main([]) == 2
    assert bridge.main(["--scheduler"]) == 2
    assert "MS_ROLE=MS_SCHED" in capsys.readouterr().err


def test_scheduler_command_runs_from_any_folder():
    """The scheduler child finds the repository wherever the job was started from."""
    proc = subprocess.run(bridge._self_command("--bad"),
                          cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "usage: python -c 'from src.parallel.mpirun_bridge import main" in proc.stderr
