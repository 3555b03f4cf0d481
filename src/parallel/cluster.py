"""Join the launch's cluster and set up this process's part in it.

:func:`init_distributed` starts MindSpore's communication when the process is one of several
(see :mod:`src.parallel.launch` for the launchers understood) and records the job for the
collectives (:mod:`src.parallel.collectives`); :func:`enable_data_parallel` sets the
data-parallel context; :func:`rank_prefix` and :func:`setup_rank_logging` name the rank in the
output.

Typical use (train.py / eval.py)::

    target = setup_context(args.device_target, seed=seed)     # before init_distributed
    dist = init_distributed(target)                           # DistInfo(rank, group_size, ...)
    setup_rank_logging(dist)
    if dist.is_distributed:
        enable_data_parallel(dist.group_size)                 # training only
    ...
    results = gather_objects(my_results, dist)                # list on rank 0, None elsewhere
    values = all_gather_objects(my_value, dist)               # list on every rank

train.py goes through ``src.train.command.distributed_setup`` (the same calls).
"""
import logging
import sys

from src import compat
from src.parallel.launch import SINGLE, DistInfo, DistributedError, detect_launch
from src.parallel.mpirun_bridge import SCHED_WAIT_S, join_cpu_cluster, world_comm

_JOB = {"info": None, "comm": None}


def job_info(info=None):
    """``info``, else the DistInfo of the last :func:`init_distributed` here, else ``SINGLE``."""
    return info or _JOB["info"] or SINGLE


def job_comm():
    """The mpi4py communicator numbered like MindSpore's ranks (COMM_WORLD before
    :func:`init_distributed`), or None without mpi4py or with OPENPOSE_NO_MPI4PY=1."""
    world = world_comm()
    if world is None:
        return None
    return _JOB["comm"] or world


def init_distributed(device_target, environ=None, timeout_s=SCHED_WAIT_S):
    """Start the communication backend if this process is one of several, and report its place.

    Call after the MindSpore context is set (``src.runtime.context.setup_context``), before building
    networks. Single process: returns ``DistInfo(0, 1, False)`` without calling ``init()``. msrun's
    scheduler process (``MS_ROLE=MS_SCHED``) serves the cluster inside ``init()`` and then exits:
    this function never returns there.

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
        _JOB["info"] = SINGLE
        return SINGLE
    if launch.kind == "rank_env" and device_target == "CPU":
        raise DistributedError("RANK_SIZE/RANK_ID launches are for Ascend rank tables; on CPU launch "
                               "with mpirun or msrun")
    from mindspore.communication import get_group_size, get_rank, init
    if launch.kind == "openmpi" and device_target == "CPU":
        join_cpu_cluster(launch, timeout_s)
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
        _JOB["comm"] = compat.rank_ordered_comm(job_comm(), info.rank)
    if info.group_size != launch.group_size:
        raise DistributedError(f"{launch.kind} launch of {launch.group_size} processes but MindSpore "
                               f"reports a group of {info.group_size}")
    _JOB["info"] = info
    return info


def enable_data_parallel(group_size):
    """Set MindSpore's auto-parallel context to data parallel with mean-reduced gradients.

    ``nn.TrainOneStepCell`` and ``src.train.train_step`` then add a ``DistributedGradReducer``.
    """
    from mindspore import context
    from mindspore.context import ParallelMode
    context.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                      device_num=int(group_size))


def rank_prefix(info=None):
    """"[rank r/n] " for a distributed job, "" otherwise (prefix for print lines)."""
    info = job_info(info)
    return f"[rank {info.rank}/{info.group_size}] " if info.is_distributed else ""


class _RankFilter(logging.Filter):
    """Adds ``record.rank`` ("r/n") to every log record."""

    def __init__(self, info):
        super().__init__()
        self.rank = f"{info.rank}/{info.group_size}"

    def filter(self, record):
        record.rank = self.rank
        return True


class _RankHandler(logging.StreamHandler):
    """The stream handler :func:`setup_rank_logging` installs (told apart from others by type)."""


def setup_rank_logging(info=None, level=logging.INFO, stream=None):
    """Configure the root logger so that every line names the rank.

    Format: ``2024-01-01 12:00:00 [rank 1/8] INFO name: message``. Replaces earlier handlers set
    by this function; returns the handler.
    """
    info = job_info(info)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _RankHandler):
            root.removeHandler(handler)
    handler = _RankHandler(stream or sys.stdout)
    handler.addFilter(_RankFilter(info))
    handler.setFormatter(logging.Formatter("%(asctime)s [rank %(rank)s] %(levelname)s %(name)s: %(message)s",
                                           datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
