"""Data-parallel training with train.py on 2 CPU processes (mpirun and msrun).

A toy COCO set (8 training images at 96 px), insize 64 and a small network (width 0.25, 2 stages)
keep every launch at a few seconds of compute. The launches run in two concurrent phases:

* phase A: ``mpirun -n 2`` for 2 steps (batch 1 per rank), ``msrun`` with 2 workers for 3 steps,
  and one process for 3 steps over the union of the ranks' batches (batch 2);
* phase B: ``mpirun -n 2`` for 3 steps, and ``mpirun -n 2 --resume auto`` continuing phase A's
  2-step run (same checkpoint folder) to step 3, without mpi4py (the ranks' check that they
  resume from the same checkpoint then runs over MindSpore's AllGather).

Final parameters: rank 0's come from the last checkpoint it writes; rank 1, which writes none,
saves its own (the launches run train.py's ``main`` through ``tests/train_worker.py``, which
adds only that). Checked: both ranks end with
bitwise identical parameters; they equal the single-process run within ``ATOL``/``RTOL`` (the
loss is a mean over the batch, so the mean of the two batch-1 gradients is the batch-2
gradient); each step's single-process loss is the mean of the two ranks' losses (the ranks saw
the two halves of the union batch); only rank 0 writes checkpoints, to ``ckpt_0``; ``--resume
auto`` continues every rank from rank 0's checkpoint and ends where the straight run ends;
concurrent launches use different scheduler ports; every train.py line names its rank.

Settings that make the comparison exact: ``fix_loss_scale`` on both sides (``clip_grad``, the
multi-card default, clips each rank's gradient before the mean), Momentum without parameter
groups on both sides, the single process at twice the per-device learning rate (train.py
multiplies the rate by the device count), ``min_area 256`` so that all 8 images train (an even
count: no padding of the ranks' shards).
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from src.data.pipeline import EpochShardSampler
from tests.conftest import relaunch_reason

REPO_ROOT = Path(__file__).resolve().parents[1]
LR = 0.02            # per device; stage rate of the 2-process runs = 2 * LR
STEPS = 3
ATOL = 1e-6          # parameters are O(0.01-1); measured: 7.5e-9 (2026-12-07)
RTOL = 1e-5
MIN_UPDATE = 1e-3    # the last step moves some parameter by more than this (measured 6.7e-3)
LAUNCH_TIMEOUT_S = 300
RELAUNCHES = 2       # MindSpore defects only: see tests.conftest.relaunch_reason
#: train.py's main plus a dump of rank 1's final parameters (first argument: the folder)
WORKER = REPO_ROOT / "tests" / "train_worker.py"

COMMON = {
    "device_target": "CPU", "vgg_path": "none", "seed": 1, "insize": 64, "width_mult": 0.25,
    "num_stages": 2, "min_area": 256, "num_parallel_workers": 1, "log_interval": 1,
    "ckpt_interval": 1000, "keep_checkpoint_max": 5,
    "train_type": "fix_loss_scale", "train_type_NP": "fix_loss_scale",
    "optimizer": "Momentum", "optimizer_NP": "Momentum",
    "group_params": "False", "group_params_NP": "False",
    "lr_steps": "1000000", "lr_steps_NP": "1000000",
    "max_epoch_train": 2, "max_epoch_train_NP": 2,
}
# (searched, not matched: a single process's progress bar may share the line)
STEP_LINE = re.compile(r"epoch 1 step (\d+)/4 \(global \d+\): mean loss ([0-9.]+)")
SCHED_LINE = re.compile(r"^\[rank (\d)/2\] device CPU, rank \d of 2, .*scheduler [0-9.]+:(\d+)")


# ----------------------------------------------------------------------------------------------
# pure checks


@pytest.mark.parametrize("size, seed, epoch", [(8, 1, 0), (8, 7, 3), (12, 2, 1)])
def test_two_shards_interleave_to_the_single_process_order(size, seed, epoch):
    """Rank r of 2 takes perm[r::2]; one process with batch 2 takes perm[2k:2k+2]: the same."""
    single = EpochShardSampler(size, 0, 1, seed=seed).indices(epoch)
    shards = [EpochShardSampler(size, r, 2, seed=seed).indices(epoch) for r in (0, 1)]
    np.testing.assert_array_equal(np.stack(shards, axis=1).reshape(-1), single)


def test_ranks_must_agree_on_the_resume_checkpoint():
    from src.train.errors import TrainError
    from src.train.loop import check_ranks_agree
    check_ranks_agree(["0-1_2.ckpt", "0-1_2.ckpt"], "x")
    with pytest.raises(TrainError, match=r"rank 0: 0-1_2.ckpt, rank 1: None"):
        check_ranks_agree(["0-1_2.ckpt", None], "the checkpoint to resume from")


def test_network_shape_settings_reach_training():
    from src.config import load_config
    from src.train.settings import settings_from_config
    cfg = load_config(["--width_mult", "0.25", "--num_stages", "3"], prog="test")
    one = settings_from_config(cfg)
    assert (one.width_mult, one.num_stages) == (0.25, 3)
    many = settings_from_config(cfg, rank=1, group_size=8)
    assert (many.width_mult, many.num_stages, many.optimizer, many.train_type) == \
        (0.25, 3, cfg.optimizer_NP, cfg.train_type_NP)
    assert many.loss_scale == cfg.loss_scale / 2


def test_resume_refuses_a_checkpoint_of_another_network_shape(ms_cpu, tmp_path):
    """A 2-stage training checkpoint does not resume into a 1-stage network."""
    from src.model.network import OpenPoseNet
    from src.train.checkpoint_manager import CheckpointManager, restore_training_state
    from src.train.errors import TrainError
    from src.train.lr_schedule import build_lr_schedules
    from src.train.optimizer import build_optimizer

    def net_and_optimizer(stages):
        net = OpenPoseNet(width_mult=0.125, num_stages=stages)
        schedules = build_lr_schedules(1e-3, 0.1, 2, 1, (100,))
        return net, build_optimizer(net.trainable_params(), schedules, "Momentum", False)

    net2, opt2 = net_and_optimizer(2)
    path = CheckpointManager(tmp_path, 0).save(net2, opt2, 1, 2)
    net1, opt1 = net_and_optimizer(1)
    with pytest.raises(TrainError, match=r"parameters the network lacks \(e.g. 'stage_2\."):
        restore_training_state(path, net1, opt1, 2)
    position = restore_training_state(path, *net_and_optimizer(2), 2)  # same shape: fine
    assert position.global_step == 1


# ----------------------------------------------------------------------------------------------
# real launches


def _msrun():
    """msrun's command for this interpreter (src.compat.msrun_command), None without one."""
    from src.compat import msrun_command
    return msrun_command(sys.executable)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _clean_env(**extra):
    """This environment without launcher variables, this interpreter's folder first on PATH
    (msrun starts workers with a bare ``python``)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "MS_", "OPENPOSE_"))
           and k not in ("RANK_ID", "RANK_SIZE", "DEVICE_ID")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("GLOG_v", "3")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _args(toy, save, steps, lr, batch, *extra):
    values = dict(COMMON, save_model_path=save, max_train_steps=steps, lr=lr, batch_size=batch,
                  **toy)
    args = []
    for key, value in values.items():
        args += [f"--{key}", str(value)]
    return args + list(extra)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_coco")
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "make_toy_coco.py"), "--out", str(out),
                    "--num_train", "8", "--num_val", "2", "--size", "96", "--quiet",
                    "--min_area", str(COMMON["min_area"])],
                   check=True, cwd=REPO_ROOT, timeout=120)
    paths = {"imgpath_train": str(out / "train2017"),
             "jsonpath_train": str(out / "annotations" / "person_keypoints_train2017.json"),
             "maskpath_train": str(out / "ignore_mask_train")}
    from src.data.pipeline import build_train_records
    records = build_train_records(paths["jsonpath_train"], paths["imgpath_train"],
                                  paths["maskpath_train"], min_area=COMMON["min_area"])
    assert len(records) == 8, "toy set changed: the shards would be padded"
    return paths


def _run_phase(jobs, root, outputs):
    """Start ``{name: (cmd, env)}`` together; return ``{name: (returncode, log text)}``.

    A launch that failed of a MindSpore defect (tests.conftest.relaunch_reason) is launched
    again alone, at most RELAUNCHES times, after its folders ``outputs[name]`` are put back as
    they were before the phase: such a crash comes after the work, so the failed launch has
    written checkpoints, and train.py refuses to start a new run over them (a resumed run
    would skip its steps).
    """
    before = root / "before_phase"
    shutil.rmtree(before, ignore_errors=True)
    kept = {}
    for name in jobs:
        for index, folder in enumerate(outputs[name]):
            copy = before / f"{name}.{index}"
            if folder.exists():
                shutil.copytree(folder, copy)
            kept[folder] = copy

    def put_back(name):
        for folder in outputs[name]:
            shutil.rmtree(folder, ignore_errors=True)
            if kept[folder].exists():
                shutil.copytree(kept[folder], folder)

    results = _run_together(jobs, root, "")
    for attempt in range(1, RELAUNCHES + 1):
        for name, (code, log) in list(results.items()):
            reason = relaunch_reason(code, log)
            if reason:
                print(f"\n[test_distributed_train] {name}: {reason}; launched again alone "
                      f"({attempt}/{RELAUNCHES})")
                put_back(name)
                results.update(_run_together({name: jobs[name]}, root, f".again{attempt}"))
    return results


def _run_together(jobs, root, suffix):
    """Start ``{name: (cmd, env)}`` at once; return ``{name: (returncode, log text)}``."""
    running = {}
    for name, (cmd, env) in jobs.items():
        log = open(root / f"{name}{suffix}.log", "wb")
        running[name] = (subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log)
    start = time.monotonic()
    results = {}
    for name, (proc, log) in running.items():
        try:
            code = proc.wait(timeout=max(1.0, LAUNCH_TIMEOUT_S - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = "timeout"
        log.close()
        results[name] = (code, (root / f"{name}{suffix}.log").read_text(errors="replace"))
    return results


@pytest.fixture(scope="module")
def runs(toy, tmp_path_factory):
    """All launches; ``{name: {"code", "log", "save", "dump", "logs", "steps"}}`` (``logs``: per-rank
    text; ``steps``: the steps the launch ran to)."""
    mpirun, msrun = shutil.which("mpirun"), _msrun()
    if not mpirun:
        pytest.skip("mpirun not found (install OpenMPI: apt-get install openmpi-bin)")
    root = tmp_path_factory.mktemp("dist_train")
    mpi = [mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-n", "2",
           sys.executable, str(WORKER)]
    ms_logs = root / "msrun_logs"
    ms = [*(msrun or ["msrun"]), "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
          f"--log_dir={ms_logs}", "--join=True", str(WORKER)]
    save = {name: root / f"{name}_ckpt" for name in ("single", "msrun", "mpirun", "mpirun_2")}
    dump = {name: root / f"{name}_dump" for name in ("single", "msrun", "mpirun", "mpirun_2",
                                                     "mpirun_resume")}
    save["mpirun_resume"] = save["mpirun_2"]
    steps = {name: STEPS for name in dump}
    steps["mpirun_2"] = STEPS - 1
    phase_a = {
        "single": ([sys.executable, "train.py"] + _args(toy, save["single"], STEPS, 2 * LR, 2),
                   _clean_env()),
        "mpirun_2": (mpi + [str(dump["mpirun_2"])] + _args(toy, save["mpirun_2"], STEPS - 1, LR, 1),
                     _clean_env()),
    }
    phase_b = {
        "mpirun": (mpi + [str(dump["mpirun"])] + _args(toy, save["mpirun"], STEPS, LR, 1), _clean_env()),
        # without mpi4py: the ranks' resume check runs over MindSpore's AllGather
        "mpirun_resume": (mpi + [str(dump["mpirun_resume"])]
                          + _args(toy, save["mpirun_resume"], STEPS, LR, 1, "--resume", "auto"),
                          _clean_env(OPENPOSE_NO_MPI4PY="1")),
    }
    if msrun:  # MindSpore >= 2.3; the msrun tests skip without it (see _ok)
        phase_a["msrun"] = (ms + [str(dump["msrun"])] + _args(toy, save["msrun"], STEPS, LR, 1),
                            _clean_env())
    outputs = {name: [save[name], dump[name]] for name in dump}
    if msrun:
        outputs["msrun"].append(ms_logs)
    start = time.monotonic()
    results = _run_phase(phase_a, root, outputs)
    after_a = time.monotonic()
    results.update(_run_phase(phase_b, root, outputs))
    print(f"\n[test_distributed_train] phase A {after_a - start:.1f} s, "
          f"phase B {time.monotonic() - after_a:.1f} s")
    out = {}
    for name, (code, log) in results.items():
        if name == "msrun":
            logs = {r: (ms_logs / f"worker_{r}.log").read_text(errors="replace")
                    if (ms_logs / f"worker_{r}.log").is_file() else "" for r in (0, 1)}
        elif name == "single":
            logs = {0: log}
        else:
            logs = {r: "\n".join(line for line in log.splitlines()
                                 if line.startswith(f"[rank {r}/2]")) for r in (0, 1)}
        out[name] = {"code": code, "log": log, "save": save[name], "dump": dump[name], "logs": logs,
                     "steps": steps[name]}
    return out


def _ok(runs, name):
    if name not in runs:
        from src.compat import msrun_unavailable_reason
        pytest.skip(msrun_unavailable_reason() or f"{name} was not launched")
    run = runs[name]
    assert run["code"] == 0, f"{name} exited with {run['code']}:\n{run['log'][-4000:]}"
    return run


def _params(run, rank):
    """Final network parameters of ``rank``: rank 0's checkpoint at the run's last step, or the
    file tests/train_worker.py wrote for another rank."""
    if rank != 0:
        from tests.train_worker import params_path
        with np.load(params_path(run["dump"], rank)) as data:
            return {key: data[key] for key in data.files}
    from src.model.checkpoint import read_checkpoint
    entries = read_checkpoint(run["save"] / "ckpt_0" / f"0-1_{run['steps']}.ckpt")
    return {name[len("network."):]: value for name, value in entries.items() if name.startswith("network.")}


def _max_diff(got, want):
    assert got.keys() == want.keys()
    return max(float(np.abs(got[k] - want[k]).max()) for k in want)


def _step_losses(text):
    """{step: loss} of the per-step report lines of one process's log."""
    losses = {}
    for line in text.splitlines():
        match = STEP_LINE.search(line)
        if match:
            losses[int(match.group(1))] = float(match.group(2))
    return losses


@pytest.mark.parametrize("name", ["mpirun", "msrun"])
def test_two_ranks_end_identical_and_equal_the_union_run(runs, name):
    run, single = _ok(runs, name), _ok(runs, "single")
    rank0, rank1 = _params(run, 0), _params(run, 1)
    assert len(rank0) == 72    # width 0.25, 2 stages: VGG 10 convs + 2 CPM + 2 stages x 12
    for key in rank0:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    union = _params(single, 0)
    diff = _max_diff(rank0, union)
    print(f"\n[test_distributed_train] {name}: max |2 ranks - union run| = {diff:.3g}")
    for key in union:
        np.testing.assert_allclose(rank0[key], union[key], atol=ATOL, rtol=RTOL, err_msg=key)


@pytest.mark.parametrize("name", ["mpirun", "msrun"])
def test_each_step_loss_is_the_mean_of_the_ranks(runs, name):
    """The ranks trained on the two halves of the single process's batches, step by step."""
    run, single = _ok(runs, name), _ok(runs, "single")
    per_rank = [_step_losses(run["logs"][r]) for r in (0, 1)]
    union = _step_losses(single["logs"][0])
    assert sorted(union) == sorted(per_rank[0]) == sorted(per_rank[1]) == list(range(1, STEPS + 1))
    for step in union:
        assert per_rank[0][step] != per_rank[1][step]      # different samples on the two ranks
        assert abs((per_rank[0][step] + per_rank[1][step]) / 2 - union[step]) <= 1.5e-6, step


def test_the_last_step_moves_the_parameters_far_beyond_the_tolerance(runs):
    """Sensitivity: step 3's update (3-step run minus the 2-step run) dwarfs ATOL."""
    update = _max_diff(_params(_ok(runs, "mpirun"), 0), _params(_ok(runs, "mpirun_2"), 0))
    print(f"\n[test_distributed_train] the last step moves a parameter by {update:.2e}")
    assert update > MIN_UPDATE, update


@pytest.mark.parametrize("name", ["mpirun", "msrun"])
def test_only_rank0_writes_checkpoints(runs, name):
    from src.model.checkpoint import read_checkpoint
    run = _ok(runs, name)
    files = sorted(str(p.relative_to(run["save"])) for p in run["save"].rglob("*") if p.is_file())
    assert files == [f"ckpt_0/0-1_{STEPS}.ckpt", "metrics.jsonl"], files  # rank 0 alone writes
    entries = read_checkpoint(run["save"] / "ckpt_0" / f"0-1_{STEPS}.ckpt")
    assert int(np.asarray(entries["step_num"]).reshape(-1)[0]) == STEPS
    for key, value in _params(run, 0).items():
        np.testing.assert_array_equal(np.asarray(entries["network." + key]), value, err_msg=key)
    assert f"checkpoints: {run['save'] / 'ckpt_0'} (written by rank 0)" in run["logs"][1]
    assert "finished at global step 3" in run["logs"][1] and "checkpoints by rank 0" in run["logs"][1]


def test_resume_auto_continues_every_rank_from_rank0_checkpoint(runs):
    resumed, straight = _ok(runs, "mpirun_resume"), _ok(runs, "mpirun")
    _ok(runs, "mpirun_2")
    ckpt = resumed["save"] / "ckpt_0" / "0-1_2.ckpt"
    for rank in (0, 1):
        assert f"resumed from {ckpt} at global step 2" in resumed["logs"][rank], resumed["log"][-3000:]
    assert sorted(p.name for p in resumed["save"].iterdir()) == ["ckpt_0", "metrics.jsonl"]
    assert sorted(p.name for p in (resumed["save"] / "ckpt_0").iterdir()) == \
        ["0-1_2.ckpt", f"0-1_{STEPS}.ckpt"]
    want = _params(straight, 0)
    for rank in (0, 1):
        got = _params(resumed, rank)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=RTOL, err_msg=key)


def _sched_port(runs, name):
    """The scheduler port both ranks of launch ``name`` report (asserting that they agree)."""
    run = _ok(runs, name)
    found = {}
    for rank in (0, 1):
        for line in run["logs"][rank].splitlines():
            match = SCHED_LINE.match(line.strip())
            if match:
                found[int(match.group(1))] = int(match.group(2))
    assert sorted(found) == [0, 1] and found[0] == found[1], (name, found)
    return found[0]


def test_concurrent_launches_use_their_own_scheduler_ports(runs):
    ports = {name: _sched_port(runs, name) for name in ("mpirun_2", "mpirun", "mpirun_resume")}
    assert ports["mpirun"] != ports["mpirun_resume"], ports    # phase B, concurrent
    from src.parallel.mpirun_bridge import DERIVED_PORT_RANGE
    low, high = DERIVED_PORT_RANGE     # no mpi4py: the port comes from the OpenMPI job id
    assert low <= ports["mpirun_resume"] < high, ports


def test_msrun_and_mpirun_launched_together_use_different_ports(runs):
    """Phase A ran msrun beside ``mpirun_2``: their schedulers listen on different ports."""
    assert _sched_port(runs, "msrun") != _sched_port(runs, "mpirun_2")


@pytest.mark.parametrize("name", ["mpirun", "msrun"])
def test_every_train_line_names_its_rank(runs, name):
    run = _ok(runs, name)
    phrases = ("device CPU, rank", "steps per epoch:", "train type fix_loss_scale", "checkpoints:",
               "first step done", "mean loss", "finished at global step")
    text = run["log"] if name == "mpirun" else run["logs"][0] + "\n" + run["logs"][1]
    lines = [line.strip() for line in text.splitlines() if any(p in line for p in phrases)]
    assert len(lines) >= 2 * (len(phrases) + STEPS - 1), lines
    for line in lines:
        assert re.match(r"^\[rank [01]/2\] ", line), line
    for rank in (0, 1):
        assert sum(p in run["logs"][rank] for p in phrases) == len(phrases), rank


# ----------------------------------------------------------------------------------------------
# the 8-card script on 2 CPU processes


@pytest.mark.slow
def test_8card_script_trains_two_cpu_processes(toy, tmp_path):
    """``DEVICE_TARGET=CPU DEVICE_NUM=2 bash train_openpose_coco2017_8card.sh ...`` trains and stops."""
    if not shutil.which("mpirun"):
        pytest.skip("mpirun not found (apt-get install openmpi-bin)")
    env = _clean_env(DEVICE_TARGET="CPU", DEVICE_NUM="2", RUN_DIR=str(tmp_path / "run"),
                     PYTHON=sys.executable)
    args = [toy["imgpath_train"], toy["jsonpath_train"], toy["maskpath_train"], "none",
            "--max_train_steps", "3", "--insize", "64", "--width_mult", "0.25", "--num_stages", "2",
            "--batch_size", "1", "--min_area", "256", "--num_parallel_workers", "1"]
    proc = subprocess.run(["bash", str(REPO_ROOT / "train_openpose_coco2017_8card.sh"), *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "mpirun exited with status 0" in proc.stdout
    for rank in (0, 1):
        assert f"[rank {rank}/2] finished at global step 3" in proc.stdout
    # 3 steps, log_interval 100: no metrics record yet, so no metrics.jsonl
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoint").iterdir()) == ["ckpt_0"]
    assert (tmp_path / "run" / "checkpoint" / "ckpt_0" / "0-1_3.ckpt").is_file()
    log = (tmp_path / "run" / "train.log").read_text()
    assert "[rank 1/2] finished at global step 3" in log
