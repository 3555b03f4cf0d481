"""Exchange Python objects between the ranks of a job: gather and all-gather.

Every rank must make the same calls in the same order. Under mpirun with mpi4py the objects go
through mpi4py (its communicator numbered like MindSpore's ranks); otherwise they are pickled,
packed into int32 words of a common length (:func:`pack_payload`) and sent with MindSpore's
AllGather (``src.compat.all_gather``). A single process exchanges nothing.

``info`` defaults to the job of the last :func:`src.parallel.cluster.init_distributed`.
"""
import pickle

import numpy as np

from src import compat
from src.parallel.cluster import job_comm, job_info


def _use_mpi(info):
    """True when the objects of this job go through mpi4py (mpirun with mpi4py available)."""
    return info.kind == "openmpi" and job_comm() is not None


def gather_objects(obj, info=None):
    """Collect one picklable object from every rank on rank 0.

    mpi4py under mpirun, else MindSpore's AllGather on the pickled bytes (padded to a common
    length). Every rank must call it.

    Args:
        obj: any picklable object.
        info: DistInfo (default: the one returned by the last ``init_distributed``).

    Returns:
        On rank 0 the list of objects in rank order (``[obj]`` when not distributed); None on the
        other ranks.
    """
    info = job_info(info)
    if not info.is_distributed:
        return [obj]
    if _use_mpi(info):
        return job_comm().gather(obj, root=0)
    gathered, lengths = _all_gather_pickled(obj)
    if info.rank != 0:
        return None
    return unpack_payloads(gathered, lengths)


def all_gather_objects(obj, info=None):
    """Collect one picklable object from every rank on every rank.

    Like :func:`gather_objects`, but every rank receives the list (e.g. to check that all ranks
    agree on a value before training). Every rank must call it.

    Returns:
        list of the objects in rank order (``[obj]`` when not distributed).
    """
    info = job_info(info)
    if not info.is_distributed:
        return [obj]
    if _use_mpi(info):
        return job_comm().allgather(obj)
    return unpack_payloads(*_all_gather_pickled(obj))


def _all_gather_pickled(obj):
    """MindSpore AllGather of ``obj`` pickled: (every rank's int32 words, their byte lengths)."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    lengths = compat.all_gather(np.array([len(payload)], dtype=np.int32))
    return compat.all_gather(pack_payload(payload, int(lengths.max()))), lengths


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
