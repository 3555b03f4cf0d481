"""How this process was launched: mpirun, msrun, a RANK_SIZE launch or a single process.

Launchers understood (see :func:`detect_launch`):

* ``mpirun`` (OpenMPI): ``OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK``. On CPU the ranks are joined
  through MindSpore's dynamic cluster (:mod:`src.parallel.mpirun_bridge`).
* ``msrun`` (or any dynamic-cluster launch): ``MS_ROLE``, ``MS_WORKER_NUM``, ``MS_NODE_ID``/``RANK_ID``.
  msrun also runs the training script once as the scheduler (``MS_ROLE=MS_SCHED``).
* ``RANK_SIZE``/``RANK_ID`` (Ascend rank-table launches, one process per device).
* anything else: one process.

Unlike the reference (which read the device count only from ``RANK_SIZE`` and so ran ``mpirun -n 8``
as eight independent single-device jobs), the group size always comes from the launcher.

Everything here reads environment variables only (no MindSpore): :func:`select_device_id` is
the one rule for the device of each process, used before the context is set.
"""
import os
from dataclasses import dataclass

from src.errors import OpenPoseError


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
    """The running job as seen by this process after :func:`src.parallel.cluster.init_distributed`.

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


def env_int(environ, name, default=None):
    """Integer value of ``environ[name]``; ``default`` when unset or empty.

    Raises:
        DistributedError: unset without a default, or not an integer.
    """
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
        size = env_int(env, "OMPI_COMM_WORLD_SIZE")
        rank = env_int(env, "OMPI_COMM_WORLD_RANK")
        local = env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", rank)
        kind = "openmpi" if size > 1 else "single"
        return _checked(LaunchInfo(kind, rank, size, local))
    role = env.get("MS_ROLE", "").strip()
    if role:
        size = env_int(env, "MS_WORKER_NUM")
        if role == "MS_SCHED":
            return _checked(LaunchInfo("msrun", -1, size, 0, role="scheduler"))
        if role != "MS_WORKER":
            raise DistributedError(f"MS_ROLE={role!r} is not supported (expected MS_WORKER or MS_SCHED)")
        rank = env_int(env, "MS_NODE_ID", env_int(env, "RANK_ID", -1))
        local = env_int(env, "DEVICE_ID", max(rank, 0))
        return _checked(LaunchInfo("msrun", rank, size, local))
    size = env_int(env, "RANK_SIZE", 1)
    if size > 1:
        rank = env_int(env, "RANK_ID")
        local = env_int(env, "DEVICE_ID", rank)
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
    return env_int(env, "DEVICE_ID", 0)


def device_id_for(cfg, environ=None):
    """:func:`select_device_id` for a :class:`src.config.Config` (its ``device_id`` counts only
    when the user set it)."""
    return select_device_id(cfg.device_id if cfg.is_explicit("device_id") else None, environ)
