"""src/parallel/launch.py: launch detection and the device of each process (pure functions)."""
import os

import pytest

from src.parallel import launch
from src.parallel.launch import DistributedError, LaunchInfo, detect_launch

OMPI_2 = {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
          "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "OMPI_MCA_ess_base_jobid": "1948385281"}


def test_detect_single():
    assert detect_launch({}) == LaunchInfo("single", 0, 1, 0)
    assert detect_launch({"RANK_SIZE": "1", "RANK_ID": "0"}).kind == "single"
    assert detect_launch({"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"}).kind == "single"


def test_detect_openmpi_wins_over_rank_size():
    # importing MindSpore copies OMPI_* into RANK_ID/RANK_SIZE; OpenMPI must still be reported
    env = dict(OMPI_2, RANK_SIZE="2", RANK_ID="1")
    assert detect_launch(env) == LaunchInfo("openmpi", 1, 2, 1)
    # after the CPU mapping MS_ROLE is set too: still the OpenMPI launch
    assert detect_launch(dict(env, MS_ROLE="MS_WORKER", MS_WORKER_NUM="2")).kind == "openmpi"


def test_detect_openmpi_local_rank_defaults_to_rank():
    env = {"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_RANK": "5"}
    assert detect_launch(env) == LaunchInfo("openmpi", 5, 8, 5)


def test_detect_msrun_worker_and_scheduler():
    base = {"MS_WORKER_NUM": "8", "MS_SCHED_HOST": "127.0.0.1", "MS_SCHED_PORT": "8118",
            "RANK_SIZE": "8"}
    worker = dict(base, MS_ROLE="MS_WORKER", MS_NODE_ID="3", RANK_ID="3", DEVICE_ID="3")
    assert detect_launch(worker) == LaunchInfo("msrun", 3, 8, 3)
    no_node_id = dict(base, MS_ROLE="MS_WORKER", RANK_ID="6", DEVICE_ID="2")
    assert detect_launch(no_node_id) == LaunchInfo("msrun", 6, 8, 2)
    unknown = dict(base, MS_ROLE="MS_WORKER", DEVICE_ID="1")  # multi-node msrun without node_rank
    assert detect_launch(unknown) == LaunchInfo("msrun", -1, 8, 1)
    sched = dict(base, MS_ROLE="MS_SCHED", RANK_ID="0")
    assert detect_launch(sched) == LaunchInfo("msrun", -1, 8, 0, role="scheduler")


def test_detect_rank_env():
    assert detect_launch({"RANK_SIZE": "8", "RANK_ID": "7", "DEVICE_ID": "7"}) == \
        LaunchInfo("rank_env", 7, 8, 7)
    assert detect_launch({"RANK_SIZE": "4", "RANK_ID": "2"}) == LaunchInfo("rank_env", 2, 4, 2)


@pytest.mark.parametrize("env, message", [
    ({"OMPI_COMM_WORLD_SIZE": "two", "OMPI_COMM_WORLD_RANK": "0"}, "not an integer"),
    ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "2"}, "outside"),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, "OMPI_COMM_WORLD_RANK is not set"),
    ({"MS_ROLE": "MS_WORKER"}, "MS_WORKER_NUM is not set"),
    ({"MS_ROLE": "MS_PSERVER", "MS_WORKER_NUM": "2"}, "not supported"),
    ({"RANK_SIZE": "4"}, "RANK_ID is not set"),
    ({"RANK_SIZE": "0"}, None),  # not > 1: single
])
def test_detect_errors(env, message):
    if message is None:
        assert detect_launch(env).kind == "single"
        return
    with pytest.raises(DistributedError, match=message):
        detect_launch(env)


def test_detect_defaults_to_os_environ(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("OMPI_COMM_WORLD", "MS_ROLE", "RANK_SIZE")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RANK_SIZE", "3")
    monkeypatch.setenv("RANK_ID", "1")
    assert detect_launch() == LaunchInfo("rank_env", 1, 3, 1)


MPIRUN_ENV = {"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_RANK": "5",
              "OMPI_COMM_WORLD_LOCAL_RANK": "1",
              # MindSpore's import copies OpenMPI's variables into these; they must not win
              "RANK_SIZE": "8", "RANK_ID": "5", "DEVICE_ID": "5"}
MSRUN_ENV = {"MS_ROLE": "MS_WORKER", "MS_WORKER_NUM": "8", "MS_NODE_ID": "6", "RANK_ID": "6",
             "DEVICE_ID": "2"}
RANK_SIZE_ENV = {"RANK_SIZE": "4", "RANK_ID": "3", "DEVICE_ID": "3"}


@pytest.mark.parametrize("environ, given, expected", [
    ({}, None, 0),                                   # plain run
    ({"DEVICE_ID": "3"}, None, 3),                   # plain run on the card DEVICE_ID names
    ({"DEVICE_ID": "3"}, 6, 6),                      # --device_id wins
    (MPIRUN_ENV, None, 1),                           # mpirun: the local rank, not DEVICE_ID
    (MPIRUN_ENV, 0, 0),                              # ... unless --device_id is given
    (MSRUN_ENV, None, 2),                            # msrun exports the local rank as DEVICE_ID
    (RANK_SIZE_ENV, None, 3),                        # the reference's RANK_SIZE/DEVICE_ID launch
    ({"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0", "DEVICE_ID": "4"}, None, 4),
])
def test_select_device_id(environ, given, expected):
    assert launch.select_device_id(given, environ) == expected


def test_device_id_counts_only_when_set(monkeypatch):
    from src.config import parse_config
    assert launch.device_id_for(parse_config([]), {"DEVICE_ID": "2"}) == 2
    assert launch.device_id_for(parse_config(["--device_id", "0"]), {"DEVICE_ID": "2"}) == 0
    assert launch.device_id_for(parse_config([]), MPIRUN_ENV) == 1
    with pytest.raises(DistributedError, match="DEVICE_ID"):
        launch.select_device_id(None, {"DEVICE_ID": "gpu0"})
