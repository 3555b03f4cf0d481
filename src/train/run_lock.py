"""One training run per ``--save_model_path``: a lock file naming the run that holds it.

Two runs writing checkpoints into one folder would silently replace each other's files, so
train.py (rank 0, the rank that writes checkpoints) holds ``<save_model_path>/train.lock`` for
the whole run. The file holds JSON ``{"pid", "host", "started"}`` (and the process's start
time on Linux, so that a reused pid is not mistaken for the run).

The lock itself is a kernel ``flock`` on that file, held while the run's process lives: a killed
run (SIGKILL, power cut) cannot keep it. A second run finds the ``flock`` held and refuses with
one line naming the running one. A file left by a run that died is taken over with a log line
when its record says this host and its process is gone; a record of another host whose lock is
not held (a shared folder on a file system without shared locks) is refused, naming the file to
delete. This file is the one written in place rather than through
:mod:`src.runtime.atomic_write`: the lock must stay on the same inode for the whole run.
"""
import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from src.runtime.atomic_write import open_in_place, process_is_running
from src.train.errors import TrainError

LOCK_NAME = "train.lock"


class RunLockError(TrainError):
    """Another training run uses the same --save_model_path (one line naming it)."""


def _process_start(pid):
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _describe(record, path):
    if not record:
        return f"lock file {path}"
    return (f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started "
            f"{record.get('started', '?')}; lock file {path}")


def _read(stream):
    stream.seek(0)
    try:
        record = json.loads(stream.read() or "null")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _is_gone_here(record):
    """True when ``record`` names a process of this host that no longer runs (or whose pid
    now belongs to a process started later)."""
    if record.get("host") != socket.gethostname():
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or not process_is_running(pid):
        return True
    started = record.get("process_start")
    return started is not None and _process_start(pid) not in (None, started)


@contextlib.contextmanager
def run_lock(folder, log=print):
    """Hold ``folder``'s training lock while the block runs; removed when it ends.

    Raises:
        RunLockError: another run holds it, or a record of another host is left there.
    """
    path = Path(folder) / LOCK_NAME
    while True:
        stream = open_in_place(path, "r+")     # never truncates someone else's record
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read(stream)
            stream.close()
            raise RunLockError(f"{folder} is in use by another training run ({_describe(record, path)}): "
                               "wait for it to finish or pass another --save_model_path") from None
        except OSError as exc:         # a file system without flock: the record alone guards
            log(f"warning: {path}: this file system cannot lock files ({exc.strerror}); a second "
                "run on this folder is detected only from the record, while this run's process lives")
        try:
            linked = os.stat(path).st_ino == os.fstat(stream.fileno()).st_ino
        except FileNotFoundError:
            linked = False
        if linked:
            break
        stream.close()                 # the holder removed it as we opened it: open the new one
    try:
        record = _read(stream)
        if record and record.get("pid") != os.getpid():
            if not _is_gone_here(record):
                raise RunLockError(
                    f"{folder} has the lock of a run on another host or of a process that still "
                    f"runs ({_describe(record, path)}); if no training uses this folder, delete "
                    "the lock file")
            log(f"taking over {path}: its run (pid {record.get('pid')} on {record.get('host')}, "
                f"started {record.get('started')}) is no longer running")
        mine = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "process_start": _process_start(os.getpid())}
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps(mine))
        stream.flush()
        os.fsync(stream.fileno())
    except BaseException:
        stream.close()
        raise
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)            # before the lock is released: no one reads a stale record
        stream.close()
