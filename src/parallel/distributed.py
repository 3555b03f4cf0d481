"""Start and use a multi-process (data-parallel) MindSpore job, whoever launched it.

Launchers understood (see :func:`detect_launch`):

* ``mpirun`` (OpenMPI): ``OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK``. On GPU/Ascend MindSpore's own
  OpenMPI path is used (``init()`` with NCCL/HCCL). On CPU that path fails ("Failed to initialize
  communication library on device side"), so the OpenMPI ranks are mapped onto MindSpore's
  dynamic-cluster variables (``MS_ROLE``, ``MS_WORKER_NUM``, ``MS_SCHED_HOST``, ``MS_SCHED_PORT``,
  ``MS_NODE_ID``) and rank 0 starts the scheduler process (``main(["--scheduler"])`` of this module).
* ``msrun`` (or any dynamic-cluster launch): ``MS_ROLE``, ``MS_WORKER_NUM``, ``MS_NODE_ID``/``RANK_ID``.
  msrun also runs the training script once as the scheduler (``MS_ROLE=MS_SCHED``); in that process
  :func:`init_distributed` never returns (MindSpore's ``init()`` serves the cluster, then exits).
* ``RANK_SIZE``/``RANK_ID`` (Ascend rank-table launches, one process per device).
* anything else: one process, no ``init()``.

Unlike the reference (which read the device count only from ``RANK_SIZE`` and so ran ``mpirun -n 8``
as eight independent single-device jobs), the group size always comes from the launcher.

Environment knobs (CPU under mpirun only):

* ``OPENPOSE_SCHED_HOST``: address of rank 0's node, reachable from every node (multi-node runs;
  default 127.0.0.1 when all ranks share one node).
* ``OPENPOSE_SCHED_PORT``: scheduler port (default: a free port picked by rank 0 and broadcast with
  mpi4py, so concurrent launches do not collide; without mpi4py, derived from the OpenMPI job id).
* ``OPENPOSE_SCHED_LOG``: file for the scheduler's output (default: inherit rank 0's stdout/stderr).
* ``OPENPOSE_KEEP_BINDING=1``: keep mpirun's CPU binding (by default each rank's threads are let
  onto all CPUs of the node: a rank bound to one core starves MindSpore's thread pool and was
  measured to make MindSpore segfault at exit in about 1 of 5 runs).
* ``OPENPOSE_NO_MPI4PY=1``: do not use mpi4py (port from the job id, MindSpore collectives).

Typical use (train.py / eval.py)::

    target = setup_context(args.device_target, seed=seed)     # before init_distributed
    dist = init_distributed(target)                           # DistInfo(rank, group_size, ...)
    setup_rank_logging(dist)
    if dist.is_distributed:
        enable_data_parallel(dist.group_size)                 # training only
    ...
    results = gather_objects(my_results, dist)                # list on rank 0, None elsewhere
    values = all_gather_objects(my_value, dist)               # list on every rank

train.py goes through ``src.train.loop.distributed_setup`` (the same calls).
"""
import atexit
import logging
import os
import pickle
import socket
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.errors import OpenPoseError
from src import compat

LOGGER = logging.getLogger(__name__)

LAUNCH_KINDS = ("single", "openmpi", "msrun", "rank_env")
ENV_SCHED_HOST = "OPENPOSE_SCHED_HOST"
ENV_SCHED_PORT = "OPENPOSE_SCHED_PORT"
ENV_SCHED_LOG = "OPENPOSE_SCHED_LOG"
ENV_NO_MPI4PY = "OPENPOSE_NO_MPI4PY"
ENV_KEEP_BINDING = "OPENPOSE_KEEP_BINDING"
#: ports derived from the OpenMPI job id (fallback without mpi4py) fall in [low, low + span).
DERIVED_PORT_RANGE = (20000, 30000)
#: seconds every rank waits for the scheduler to listen (CPU under mpirun).
SCHED_WAIT_S = 600.0
#: seconds the scheduler may outlive rank 0 (to let the other workers unregister).
SCHED_GRACE_S = 60.0

_SCHEDULER = {"process": None, "log": None}
_STATE = {"info": None, "comm": None}


class DistributedError(OpenPoseError, RuntimeError):
    """A launch that cannot be started (inconsistent variables, unsupported combination)."""


@dataclass(frozen=True)
class LaunchInfo:
    """What the environment says about how this process was launched.

    Attributes:
        kind: "single", "openmpi", "msrun" or "rank_env".
        rank: global rank in [0, group_size); -1 when the launcher assigns it only at ``init()``
            (msrun over several nodes without ``--node_rank``) and for the msrun scheduler.
        group_size: number of worker processes (1 for "single").
        local_rank: index of this process on its node (device index), 0 for "single".
        role: "worker", or "scheduler" for msrun's scheduler process.
    """

    kind: str
    rank: int
    group_size: int
    local_rank: int
    role: str = "worker"


@dataclass(frozen=True)
class DistInfo:
    """The running job as seen by this process after :func:`init_distributed`.

    Attributes:
        rank: global rank, 0..group_size-1.
        group_size: number of processes taking part (1 when not distributed).
        is_distributed: True when ``mindspore.communication.init()`` was called (every launch but
            "single"; an msrun launch of one worker is distributed with group_size 1).
        local_rank: index on this node (device index).
        kind: the launch kind, see :class:`LaunchInfo`.
    """

    rank: int = 0
    group_size: int = 1
    is_distributed: bool = False
    local_rank: int = 0
    kind: str = "single"

    @property
    def is_main(self):
        """True on rank 0 (the process that writes checkpoints and metrics)."""
        return self.rank == 0


SINGLE = DistInfo()


def _env_int(environ, name, default=None):
    """Integer value of ``environ[name]``; ``default`` when unset or empty."""
    raw = environ.get(name, "")
    if raw.strip() == "":
        if default is None:
            raise DistributedError(f"environment variable {name} is not set")
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r} is not an integer") from None


def _checked(info):
    """Validate the numbers of a LaunchInfo and return it."""
    if info.group_size < 1:
        raise DistributedError(f"{info.kind} launch: group size {info.group_size} < 1")
    if info.role == "worker" and info.rank != -1 and not 0 <= info.rank < info.group_size:
        raise DistributedError(f"{info.kind} launch: rank {info.rank} outside [0, {info.group_size})")
    if info.local_rank < 0:
        raise DistributedError(f"{info.kind} launch: local rank {info.local_rank} < 0")
    return info


def detect_launch(environ=None):
    """Tell from environment variables how this process was launched (pure function).

    Checked in this order: OpenMPI (``OMPI_COMM_WORLD_SIZE``; MindSpore's import also copies it to
    RANK_SIZE, so it must win), dynamic cluster / msrun (``MS_ROLE``), ``RANK_SIZE`` > 1. A group
    of one process is reported as "single".

    Args:
        environ: mapping of environment variables (default ``os.environ``).

    Returns:
        LaunchInfo.

    Raises:
        DistributedError: variables that are not integers or are inconsistent.
    """
    env = os.environ if environ is None else environ
    if env.get("OMPI_COMM_WORLD_SIZE", "").strip():
        size = _env_int(env, "OMPI_COMM_WORLD_SIZE")
        rank = _env_int(env, "OMPI_COMM_WORLD_RANK")
        local = _env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", rank)
        kind = "openmpi" if size > 1 else "single"
        return _checked(LaunchInfo(kind, rank, size, local))
    role = env.get("MS_ROLE", "").strip()
    if role:
        size = _env_int(env, "MS_WORKER_NUM")
        if role == "MS_SCHED":
            return _checked(LaunchInfo("msrun", -1, size, 0, role="scheduler"))
        if role != "MS_WORKER":
            raise DistributedError(f"MS_ROLE={role!r} is not supported (expected MS_WORKER or MS_SCHED)")
        rank = _env_int(env, "MS_NODE_ID", _env_int(env, "RANK_ID", -1))
        local = _env_int(env, "DEVICE_ID", max(rank, 0))
        return _checked(LaunchInfo("msrun", rank, size, local))
    size = _env_int(env, "RANK_SIZE", 1)
    if size > 1:
        rank = _env_int(env, "RANK_ID")
        local = _env_int(env, "DEVICE_ID", rank)
        return _checked(LaunchInfo("rank_env", rank, size, local))
    return LaunchInfo("single", 0, 1, 0)


def select_device_id(given=None, environ=None):
    """The device index of this process: the one rule for train.py, eval.py and the others.

    ``given`` (``--device_id`` set on the command line or in a config file) when not None, else
    the launcher's local rank under mpirun, msrun or a RANK_SIZE launch (one device per
    process), else ``$DEVICE_ID``, else 0.

    Args:
        given: the explicitly configured device id, or None.
        environ: mapping of environment variables (default ``os.environ``).

    Raises:
        DistributedError: a DEVICE_ID or launch variable that is not an integer.
    """
    if given is not None:
        return int(given)
    env = os.environ if environ is None else environ
    launch = detect_launch(env)
    if launch.kind != "single":
        return int(launch.local_rank)
    return _env_int(env, "DEVICE_ID", 0)


def device_id_for(cfg, environ=None):
    """:func:`select_device_id` for a :class:`src.config.Config` (its ``device_id`` counts only
    when the user set it)."""
    return select_device_id(cfg.device_id if cfg.is_explicit("device_id") else None, environ)


# ----------------------------------------------------------------------------------------------
# CPU under mpirun: OpenMPI ranks -> MindSpore dynamic cluster


def _mpi_comm():
    """mpi4py's COMM_WORLD, or None when mpi4py is not importable or OPENPOSE_NO_MPI4PY=1."""
    if os.environ.get(ENV_NO_MPI4PY) == "1":
        return None
    try:
        from mpi4py import MPI  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return _STATE.get("comm") or MPI.COMM_WORLD


def free_port(host=""):
    """A TCP port that is free on this host right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def derived_port(environ):
    """Scheduler port every rank of one mpirun job computes identically, from its job id.

    Used only without mpi4py; concurrent jobs get different ids, so (almost surely) different
    ports in ``DERIVED_PORT_RANGE``.
    """
    job = (environ.get("OMPI_MCA_ess_base_jobid") or environ.get("PMIX_NAMESPACE")
           or environ.get("OMPI_MCA_orte_hnp_uri", "").split(";")[0])
    if not job:
        raise DistributedError(f"cannot derive a scheduler port (no OpenMPI job id); set {ENV_SCHED_PORT}")
    low, high = DERIVED_PORT_RANGE
    return low + zlib.crc32(job.encode()) % (high - low)


def _sched_address(launch, environ):
    """(host, port) of the dynamic-cluster scheduler for an OpenMPI launch on CPU."""
    local_size = _env_int(environ, "OMPI_COMM_WORLD_LOCAL_SIZE", launch.group_size)
    host = environ.get(ENV_SCHED_HOST, "").strip()
    if not host:
        if local_size < launch.group_size:
            raise DistributedError(f"multi-node mpirun on CPU: set {ENV_SCHED_HOST} to the address of "
                                   "rank 0's node (mpirun -x OPENPOSE_SCHED_HOST=...)")
        host = "127.0.0.1"
    if environ.get(ENV_SCHED_PORT, "").strip():
        return host, _env_int(environ, ENV_SCHED_PORT)
    comm = _mpi_comm()
    if comm is None or comm.Get_size() != launch.group_size:
        return host, derived_port(environ)
    port = free_port() if launch.rank == 0 else None
    return host, int(comm.bcast(port, root=0))


def scheduler_env(base_env, worker_num, host, port):
    """Environment of the scheduler process: ``base_env`` without OpenMPI variables, plus MS_*."""
    env = {k: v for k, v in base_env.items()
           if not k.startswith(("OMPI_", "PMIX_", "MS_")) and k not in ("RANK_ID", "RANK_SIZE")}
    env.update(MS_ROLE="MS_SCHED", MS_WORKER_NUM=str(worker_num), MS_SCHED_HOST=host,
               MS_SCHED_PORT=str(port))
    return env


def worker_env(launch, host, port):
    """MS_* variables that make an OpenMPI rank a dynamic-cluster worker."""
    return {"MS_ROLE": "MS_WORKER", "MS_WORKER_NUM": str(launch.group_size), "MS_SCHED_HOST": host,
            "MS_SCHED_PORT": str(port), "MS_NODE_ID": str(launch.rank), "RANK_ID": str(launch.rank),
            "RANK_SIZE": str(launch.group_size)}


def start_scheduler(worker_num, host, port, log_path=None):
    """Start the dynamic-cluster scheduler and return its Popen.

    The child runs ``main(["--scheduler"])`` of this module: a small watchdog process (no
    MindSpore) that runs the MindSpore scheduler as its own child. The scheduler exits by itself
    once every worker has unregistered (at their exit); if this process (rank 0) disappears
    without that happening, the watchdog stops the scheduler after ``SCHED_GRACE_S`` seconds.
    Both stay in this process group, so a launcher that kills rank 0's group stops them too.
    """
    env = scheduler_env(os.environ, worker_num, host, port)
    out = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # pylint: disable=consider-using-with
        _SCHEDULER["log"] = out
    proc = subprocess.Popen(_self_command("--scheduler"), env=env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT if out else None)
    _SCHEDULER["process"] = proc
    atexit.register(shutdown_distributed)
    return proc


def _self_command(*args):
    """Command line that runs ``main(args)`` of this module in a fresh interpreter."""
    root = str(Path(__file__).resolve().parents[1])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from src.parallel.distributed import main; "
            "sys.exit(main(sys.argv[2:]))")
    return [sys.executable, "-c", code, root, *args]


def wait_for_port(host, port, timeout_s, alive=None):
    """Block until a TCP server accepts connections at host:port.

    Args:
        host, port: address to probe (one connect per 0.2 s).
        timeout_s: give up after this many seconds.
        alive: optional callable; when it returns False the wait stops early.

    Raises:
        DistributedError: timeout, or ``alive()`` turned False.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise DistributedError(f"scheduler for {host}:{port} exited before accepting connections "
                                   "(port in use? see its log)")
        if time.monotonic() > deadline:
            raise DistributedError(f"no scheduler at {host}:{port} after {timeout_s:.0f} s")
        time.sleep(0.2)


def unbind_cpu_affinity():
    """Let every thread of this process run on all CPUs of the node; returns the CPU count.

    mpirun binds each rank to one core by default (``--bind-to core`` for up to 2 ranks). On CPU
    that leaves MindSpore's kernel thread pool a single core, and with it MindSpore's cluster
    threads were measured to segfault at process exit in ~1 of 5 two-rank runs (0 of 24 unbound).
    Threads created later (``init()``) inherit the widened mask.
    """
    cpus = set(range(os.cpu_count() or 1))
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass  # thread gone, or CPUs outside our cpuset: keep what the kernel allows
    return len(os.sched_getaffinity(0))


def _init_openmpi_cpu(launch, timeout_s):
    """Map OpenMPI ranks onto MindSpore's dynamic cluster (rank 0 starts the scheduler).

    Every rank waits until the scheduler listens before ``init()``: a MindSpore worker whose first
    registration attempts are refused was measured to take 30-70 s more to join.
    """
    if os.environ.get(ENV_KEEP_BINDING) != "1":
        unbind_cpu_affinity()  # before starting the scheduler, which inherits the mask
    host, port = _sched_address(launch, os.environ)
    alive = None
    if launch.rank == 0:
        proc = start_scheduler(launch.group_size, host, port, os.environ.get(ENV_SCHED_LOG) or None)
        alive = lambda: proc.poll() is None  # noqa: E731
    wait_for_port(host, port, timeout_s, alive)
    os.environ.update(worker_env(launch, host, port))
    compat.prepare_cpu_cluster_worker(os.environ)
    LOGGER.info("rank %d/%d: CPU dynamic cluster, scheduler %s:%d", launch.rank, launch.group_size,
                host, port)


# ----------------------------------------------------------------------------------------------
# public entry points


def init_distributed(device_target, environ=None, timeout_s=SCHED_WAIT_S):
    """Start the communication backend if this process is one of several, and report its place.

    Call after the MindSpore context is set (``src.runtime.context.setup_context``), before building
    networks. Single process: returns ``DistInfo(0, 1, False)`` without calling ``init()``.

    Args:
        device_target: "CPU", "GPU" or "Ascend" (the resolved target).
        environ: variables to detect the launch from (default ``os.environ``). The CPU/OpenMPI
            mapping always writes into ``os.environ``, which is what MindSpore reads.
        timeout_s: CPU under mpirun: how long to wait for the scheduler to listen.

    Returns:
        DistInfo.

    Raises:
        DistributedError: unsupported or inconsistent launch.
    """
    if device_target not in ("CPU", "GPU", "Ascend"):
        raise DistributedError(f"device_target must be CPU, GPU or Ascend, got {device_target!r}")
    launch = detect_launch(environ)
    if launch.kind == "single":
        _STATE["info"] = SINGLE
        return SINGLE
    if launch.kind == "rank_env" and device_target == "CPU":
        raise DistributedError("RANK_SIZE/RANK_ID launches are for Ascend rank tables; on CPU launch "
                               "with mpirun or msrun")
    # pylint: disable-next=import-outside-toplevel
    from mindspore.communication import get_group_size, get_rank, init
    if launch.kind == "openmpi" and device_target == "CPU":
        _init_openmpi_cpu(launch, timeout_s)
    try:
        init()  # msrun's scheduler process serves the cluster here and exits
    except RuntimeError as exc:
        if compat.is_cluster_formation_failure(exc):
            compat.exit_after_cluster_failure(exc, launch.rank)
        raise
    if launch.role == "scheduler":
        raise SystemExit(0)
    info = DistInfo(rank=int(get_rank()), group_size=int(get_group_size()), is_distributed=True,
                    local_rank=launch.local_rank, kind=launch.kind)
    if launch.kind == "openmpi":  # mpi4py's numbering = MindSpore's (see src.compat)
        _STATE["comm"] = compat.rank_ordered_comm(_mpi_comm(), info.rank)
    if info.group_size != launch.group_size:
        raise DistributedError(f"{launch.kind} launch of {launch.group_size} processes but MindSpore "
                               f"reports a group of {info.group_size}")
    _STATE["info"] = info
    return info


def enable_data_parallel(group_size):
    """Set MindSpore's auto-parallel context to data parallel with mean-reduced gradients.

    ``nn.TrainOneStepCell`` and ``src.train.train_step`` then add a ``DistributedGradReducer``.
    """
    from mindspore import context  # pylint: disable=import-outside-toplevel
    from mindspore.context import ParallelMode  # pylint: disable=import-outside-toplevel
    context.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                      device_num=int(group_size))


def shard_items(items, info):
    """This rank's share of ``items``: ``items[rank::group_size]`` (round robin, order kept)."""
    return list(items)[info.rank::info.group_size]


def _use_mpi(info):
    return info.kind == "openmpi" and _mpi_comm() is not None


def gather_objects(obj, info=None):
    """Collect one picklable object from every rank on rank 0.

    mpi4py under mpirun, else MindSpore's AllGather on the pickled bytes (padded to a common
    length). Every rank must call it.

    Args:
        obj: any picklable object.
        info: DistInfo (default: the one returned by the last :func:`init_distributed`).

    Returns:
        On rank 0 the list of objects in rank order (``[obj]`` when not distributed); None on the
        other ranks.
    """
    info = info or _STATE["info"] or SINGLE
    if not info.is_distributed:
        return [obj]
    if _use_mpi(info):
        return _mpi_comm().gather(obj, root=0)
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    lengths = compat.all_gather(np.array([len(payload)], dtype=np.int32))
    gathered = compat.all_gather(pack_payload(payload, int(lengths.max())))
    if info.rank != 0:
        return None
    return unpack_payloads(gathered, lengths)


def pack_payload(payload, max_len):
    """Bytes -> int32 words of a common length (``ceil(max_len / 4)``), zero padded.

    int32 is a dtype every backend's AllGather takes (MindSpore 2.0's AllReduce fallback in
    src/compat.py sends each rank's words in a slot of its own, group_size times the payload).
    """
    if len(payload) > max_len:
        raise ValueError(f"payload of {len(payload)} bytes is longer than max_len={max_len}")
    padded = np.zeros(-(-max_len // 4) * 4, dtype=np.uint8)
    padded[:len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    return padded.view(np.int32)


def unpack_payloads(gathered, lengths):
    """Inverse of :func:`pack_payload` after an AllGather: concatenated words -> objects.

    Args:
        gathered: int32 array (group_size * words,) or (group_size, words).
        lengths: payload length in bytes of each rank, (group_size,).

    Returns:
        list of the unpickled objects in rank order.
    """
    rows = np.asarray(gathered, dtype=np.int32).reshape(len(lengths), -1)
    return [pickle.loads(row.view(np.uint8)[:int(n)].tobytes()) for row, n in zip(rows, lengths)]


def all_gather_objects(obj, info=None):
    """Collect one picklable object from every rank on every rank.

    Like :func:`gather_objects`, but every rank receives the list (e.g. to check that all ranks
    agree on a value before training). Every rank must call it.

    Returns:
        list of the objects in rank order (``[obj]`` when not distributed).
    """
    info = info or _STATE["info"] or SINGLE
    if not info.is_distributed:
        return [obj]
    if _use_mpi(info):
        return _mpi_comm().allgather(obj)
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    lengths = compat.all_gather(np.array([len(payload)], dtype=np.int32))
    gathered = compat.all_gather(pack_payload(payload, int(lengths.max())))
    return unpack_payloads(gathered, lengths)


def current_info():
    """The :class:`DistInfo` of the last :func:`init_distributed` in this process (SINGLE before)."""
    return _STATE["info"] or SINGLE


def barrier(info=None):
    """Block until every rank has reached this point (no-op for a single process)."""
    info = info or _STATE["info"] or SINGLE
    if not info.is_distributed:
        return
    if _use_mpi(info):
        _mpi_comm().Barrier()
        return
    compat.all_gather(np.zeros(1, dtype=np.int32))


def shutdown_distributed(timeout_s=0.0):
    """Release what :func:`init_distributed` started in this process (registered with ``atexit``).

    The scheduler child is not stopped here: it must outlive this process's own unregistration,
    which MindSpore performs after the ``atexit`` handlers, and it exits by itself once every
    worker has unregistered (its watchdog stops it otherwise). With ``timeout_s`` > 0 (call it
    explicitly, e.g. from a launcher that owns the scheduler), wait that long and then terminate it.
    Safe to call more than once.
    """
    proc = _SCHEDULER["process"]
    if proc is not None and timeout_s > 0 and proc.poll() is None:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        _SCHEDULER["process"] = None
    if _SCHEDULER["log"] is not None:
        _SCHEDULER["log"].flush()


# ----------------------------------------------------------------------------------------------
# logging


def rank_prefix(info=None):
    """"[rank r/n] " for a distributed job, "" otherwise (prefix for print lines)."""
    info = info or _STATE["info"] or SINGLE
    return f"[rank {info.rank}/{info.group_size}] " if info.is_distributed else ""


class _RankFilter(logging.Filter):
    """Adds ``record.rank`` ("r/n") to every log record."""

    def __init__(self, info):
        super().__init__()
        self.rank = f"{info.rank}/{info.group_size}"

    def filter(self, record):
        record.rank = self.rank
        return True


def setup_rank_logging(info=None, level=logging.INFO, stream=None):
    """Configure the root logger so that every line names the rank.

    Format: ``2024-01-01 12:00:00 [rank 1/8] INFO name: message``. Replaces earlier handlers set
    by this function; returns the handler.
    """
    info = info or _STATE["info"] or SINGLE
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_openpose_rank", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler._openpose_rank = True  # pylint: disable=protected-access
    handler.addFilter(_RankFilter(info))
    handler.setFormatter(logging.Formatter("%(asctime)s [rank %(rank)s] %(levelname)s %(name)s: %(message)s",
                                           datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# ----------------------------------------------------------------------------------------------
# scheduler entry point: main(["--scheduler"]) with the MS_* variables set by the caller


def _run_scheduler():
    """Serve as MindSpore's dynamic-cluster scheduler until the workers finish."""
    from mindspore.communication import init  # pylint: disable=import-outside-toplevel
    from src.compat import set_scheduler_context  # pylint: disable=import-outside-toplevel
    set_scheduler_context()
    init()  # returns only when the cluster is done (MindSpore exits the process itself)
    return 0


def _watch_scheduler(grace_s=SCHED_GRACE_S, poll_s=0.5):
    """Run the scheduler as a child; stop it ``grace_s`` after our parent (rank 0) has gone.

    (MindSpore's scheduler holds the GIL inside ``init()``, so the watchdog cannot be a thread.)
    """
    parent = os.getppid()
    env = dict(os.environ, OPENPOSE_SCHED_CHILD="1")
    env.setdefault("GLOG_v", "3")  # the scheduler's per-retry warnings are noise; errors stay
    child = subprocess.Popen(_self_command("--scheduler"), env=env, stdin=subprocess.DEVNULL)

    def forward(signum, _frame):
        child.send_signal(signum)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    orphaned_at = None
    while child.poll() is None:
        if orphaned_at is None and os.getppid() != parent:
            orphaned_at = time.monotonic()
        if orphaned_at is not None and time.monotonic() - orphaned_at > grace_s:
            print(f"scheduler: rank 0 exited {grace_s:.0f} s ago and workers are still registered; "
                  "stopping", file=sys.stderr, flush=True)
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
            return 1
        time.sleep(poll_s)
    return child.returncode


def main(argv=None):
    """Command line: ``--scheduler`` runs the scheduler; nothing else is offered."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv != ["--scheduler"]:
        print("usage: python -c 'from src.parallel.distributed import main; main([\"--scheduler\"])' "
              "(started by init_distributed)", file=sys.stderr)
        return 2
    if os.environ.get("MS_ROLE") != "MS_SCHED":
        print("src.parallel.distributed --scheduler: MS_ROLE=MS_SCHED is not set", file=sys.stderr)
        return 2
    if os.environ.get("OPENPOSE_SCHED_CHILD") == "1":
        return _run_scheduler()
    return _watch_scheduler()


if __name__ == "__main__":
    sys.exit(main())
