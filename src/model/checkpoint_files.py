"""Temporary files of checkpoint writes: their names, their removal, and write failures.

:func:`src.model.checkpoint.save_checkpoint_atomic` writes ``<dir>/.<stem>.tmp<pid>.ckpt`` and renames
it to ``<dir>/<stem>.ckpt``. Inside that, ``mindspore.save_checkpoint`` itself first writes
``<dir>/.<stem>.tmp<pid>.tmp`` (its own temporary name: the target's ``.ckpt`` suffix replaced
by ``.tmp``) and renames it to ``.<stem>.tmp<pid>.ckpt``. A run killed (SIGKILL, power loss) or
stopped by a full disk in the middle can leave either; :func:`temporary_names` gives both names
of one write, :func:`remove_stale_temporaries` removes those of processes that are no longer
running (called when training starts).
"""
import contextlib
import logging
import os
import re
from pathlib import Path

#: ``.<stem>.tmp<pid>.ckpt`` (ours) and ``.<stem>.tmp<pid>.tmp`` (MindSpore's, inside ours).
TEMPORARY_NAME = re.compile(r"^\.(?P<stem>.+)\.tmp(?P<pid>\d+)\.(?:ckpt|tmp)$")


def temporary_names(path, pid=None):
    """``(ours, mindspore_own)``: the temporary files of one atomic write of ``path``."""
    path = Path(path)
    ours = path.with_name(f".{path.stem}.tmp{os.getpid() if pid is None else int(pid)}.ckpt")
    return ours, ours.with_suffix(".tmp")


def process_is_running(pid):
    """True when a process with ``pid`` exists on this machine (also when it is not ours)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory):
    """Delete the checkpoint temporaries in ``directory`` whose writing process is gone.

    Temporaries of this process and of running processes are kept (a concurrent save).

    Returns:
        ``[(path, size in bytes), ...]`` of the files removed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        match = TEMPORARY_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() or process_is_running(pid):
            continue
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append((path, size))
    return removed


def remove_files(*paths):
    """Delete the files that exist among ``paths`` (a failed write's leftovers)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, 0o600)      # MindSpore makes finished checkpoints read-only
            os.remove(path)


class _DropSaveFailure(logging.Filter):
    """Drops MindSpore's own CRITICAL "Failed to save the checkpoint file" record: the caller
    reports the failure on one line of its own, with the cause and the free space."""

    def filter(self, record):
        return not str(record.msg).startswith("Failed to save the checkpoint file")


@contextlib.contextmanager
def own_save_failure_message():
    """While active, MindSpore does not log its generic save-failure line."""
    try:
        from mindspore import log as ms_log
        logger = ms_log._get_logger()
    except (ImportError, AttributeError):
        logger = None
    drop = _DropSaveFailure()
    if logger is not None:
        logger.addFilter(drop)
    try:
        yield
    finally:
        if logger is not None:
            logger.removeFilter(drop)
