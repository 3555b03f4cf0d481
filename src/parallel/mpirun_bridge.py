"""CPU under mpirun: OpenMPI ranks joined through MindSpore's dynamic cluster.

On GPU/Ascend MindSpore's own OpenMPI path is used (``init()`` with NCCL/HCCL). On CPU that path
fails ("Failed to initialize communication library on device side"), so :func:`join_cpu_cluster`
maps the OpenMPI ranks onto MindSpore's dynamic-cluster variables (``MS_ROLE``, ``MS_WORKER_NUM``,
``MS_SCHED_HOST``, ``MS_SCHED_PORT``, ``MS_NODE_ID``) and rank 0 starts the scheduler process
(``main(["--scheduler"])`` of this module).

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
"""
import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

from src import compat
from src.parallel.launch import DistributedError, env_int

LOGGER = logging.getLogger(__name__)

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

#: The scheduler log this process opened (flushed at exit).
_SCHEDULER = {"log": None}


def world_comm():
    """mpi4py's COMM_WORLD, or None when mpi4py is not importable or OPENPOSE_NO_MPI4PY=1."""
    if os.environ.get(ENV_NO_MPI4PY) == "1":
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD


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
    local_size = env_int(environ, "OMPI_COMM_WORLD_LOCAL_SIZE", launch.group_size)
    host = environ.get(ENV_SCHED_HOST, "").strip()
    if not host:
        if local_size < launch.group_size:
            raise DistributedError(f"multi-node mpirun on CPU: set {ENV_SCHED_HOST} to the address of "
                                   "rank 0's node (mpirun -x OPENPOSE_SCHED_HOST=...)")
        host = "127.0.0.1"
    if environ.get(ENV_SCHED_PORT, "").strip():
        return host, env_int(environ, ENV_SCHED_PORT)
    comm = world_comm()
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
        out = open(log_path, "ab")  # open for this process's life; release_scheduler flushes it
        _SCHEDULER["log"] = out
    proc = subprocess.Popen(_self_command("--scheduler"), env=env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT if out else None)
    atexit.register(release_scheduler)
    return proc


def _self_command(*args):
    """Command line that runs ``main(args)`` of this module in a fresh interpreter."""
    repo_root = str(Path(__file__).resolve().parents[2])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from src.parallel.mpirun_bridge import main; "
            "sys.exit(main(sys.argv[2:]))")
    return [sys.executable, "-c", code, repo_root, *args]


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


def join_cpu_cluster(launch, timeout_s=SCHED_WAIT_S):
    """Map OpenMPI ranks onto MindSpore's dynamic cluster (rank 0 starts the scheduler).

    Writes the MS_* variables into ``os.environ`` (what MindSpore's ``init()`` reads). Every rank
    waits until the scheduler listens before ``init()``: a MindSpore worker whose first
    registration attempts are refused was measured to take 30-70 s more to join.

    Args:
        launch: the OpenMPI :class:`src.parallel.launch.LaunchInfo` of this process.
        timeout_s: how long to wait for the scheduler to listen.
    """
    if os.environ.get(ENV_KEEP_BINDING) != "1":
        unbind_cpu_affinity()  # before starting the scheduler, which inherits the mask
    host, port = _sched_address(launch, os.environ)
    alive = None
    if launch.rank == 0:
        proc = start_scheduler(launch.group_size, host, port, os.environ.get(ENV_SCHED_LOG) or None)
        def alive():
            return proc.poll() is None

    wait_for_port(host, port, timeout_s, alive)
    os.environ.update(worker_env(launch, host, port))
    compat.prepare_cpu_cluster_worker(os.environ)
    LOGGER.info("rank %d/%d: CPU dynamic cluster, scheduler %s:%d", launch.rank, launch.group_size,
                host, port)


def release_scheduler():
    """Flush the scheduler's log opened by :func:`start_scheduler` (registered with ``atexit``).

    The scheduler child is not stopped here: it must outlive this process's own unregistration,
    which MindSpore performs after the ``atexit`` handlers, and it exits by itself once every
    worker has unregistered (its watchdog stops it otherwise). Safe to call more than once.
    """
    if _SCHEDULER["log"] is not None:
        _SCHEDULER["log"].flush()


def _stop(proc):
    """Terminate ``proc``; kill it if it is still there 5 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


# ----------------------------------------------------------------------------------------------
# scheduler entry point: main(["--scheduler"]) with the MS_* variables set by the caller


def _run_scheduler():
    """Serve as MindSpore's dynamic-cluster scheduler until the workers finish."""
    from mindspore.communication import init
    compat.set_scheduler_context()
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
            _stop(child)
            return 1
        time.sleep(poll_s)
    return child.returncode


def main(argv=None):
    """Command line: ``--scheduler`` runs the scheduler; nothing else is offered."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv != ["--scheduler"]:
        print("usage: python -c 'from src.parallel.mpirun_bridge import main; main([\"--scheduler\"])' "
              "(started by init_distributed)", file=sys.stderr)
        return 2
    if os.environ.get("MS_ROLE") != "MS_SCHED":
        print("src.parallel.mpirun_bridge --scheduler: MS_ROLE=MS_SCHED is not set", file=sys.stderr)
        return 2
    if os.environ.get("OPENPOSE_SCHED_CHILD") == "1":
        return _run_scheduler()
    return _watch_scheduler()


if __name__ == "__main__":
    sys.exit(main())
