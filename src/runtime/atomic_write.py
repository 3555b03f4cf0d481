"""The one way this repository writes a file: whole, or not at all under its final name.

Every artefact (checkpoints, JSON, PNG drawings and ignore masks, exported models, videos) is
written through :func:`atomic_write`:

1. the writer gets a short temporary name in the *same folder* as the final name
   (``.tmp<pid>-<hhhh><rrrr><suffix>``: process id, a tag of this host, 4 random hex digits, the
   final name's suffix so that encoders pick the format). It is short so that a legal final name
   of 250 characters still works, and ASCII so that writers with name rules (MindSpore's
   exporter) accept it whatever the final name holds;
2. the temporary is flushed to disk (``fsync``), given the permissions of any new file of the
   user's (0666 less the umask: MindSpore's exporter and checkpoint writer leave theirs
   read-only to their owner, ``-r--------``) and renamed onto the final name (``os.replace``:
   atomic on one file system). A rename replaces a symlink placed at the final name instead of
   writing through it to its target;
3. on *any* failure, ``KeyboardInterrupt`` and ``SystemExit`` included, the temporary (and the
   companions a writer may leave beside it, such as MindSpore's own ``.tmp``) is removed and the
   final name keeps what it had;
4. an ``OSError`` becomes :class:`WriteError`, one line naming the final file and the reason
   (``no space left on device while writing (12 KiB free on its file system)``,
   ``cannot write (Read-only file system)``).

A process killed with SIGKILL (or a power cut) can leave a temporary behind: its name says which
process on which host wrote it, and :func:`remove_stale_temporaries` (called when a command
starts writing into a folder) removes those whose process is gone.
"""
import errno
import json
import os
import re
import secrets
import shutil
import socket
import zlib
from contextlib import contextmanager, suppress
from pathlib import Path

from src.errors import OpenPoseError

#: ``.tmp<pid>-<host tag><random><suffix>``; ``suffix`` is the final name's (or a writer's own).
TEMPORARY_NAME = re.compile(r"^\.tmp(?P<pid>\d+)-(?P<host>[0-9a-f]{4})[0-9a-f]{4}(?:\.[A-Za-z0-9]{1,8})?$")


class WriteError(OpenPoseError, OSError):
    """A file could not be written (one line naming the final file and the reason)."""


def host_tag(host=None):
    """4 hex digits identifying this host (or ``host``) in temporary names."""
    name = socket.gethostname() if host is None else host
    return f"{zlib.crc32(name.encode('utf-8', 'replace')) & 0xFFFF:04x}"


def temporary_path(path, suffix=None):
    """A fresh temporary name beside ``path`` (see the module docstring).

    Args:
        path: the final file name.
        suffix: ending of the temporary name; default: ``path``'s own suffix (``.png`` ...),
            kept only when it is short and plain ASCII.
    """
    path = Path(path)
    if suffix is None:
        suffix = path.suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", path.suffix) else ""
    return path.with_name(f".tmp{os.getpid()}-{host_tag()}{secrets.token_hex(2)}{suffix}")


def reason(exc):
    """The short cause of an OSError (``Permission denied``, ``No space left on device`` ...)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def free_space(path):
    """Free bytes on the file system holding ``path`` (its nearest existing parent), or None."""
    path = os.path.abspath(os.fspath(path))
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def format_bytes(count):
    """``1.5 MiB`` style size; ``unknown`` for None."""
    if count is None:
        return "unknown"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def describe_write_error(path, exc):
    """One line for an OSError raised while writing ``path``; a full disk names the free space."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return (f"{path}: no space left on device while writing "
                f"({format_bytes(free_space(path))} free on its file system)")
    return f"{path}: cannot write ({reason(exc)})"


def remove_files(*paths):
    """Delete those of ``paths`` that exist (a failed write's leftovers); never raises."""
    for path in paths:
        with suppress(OSError):
            os.remove(path)


def current_umask():
    """This process's umask, read without changing it where Linux says it (/proc), else by
    setting and restoring it."""
    with suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path):
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def _fsync_folder(folder):
    """Make a rename durable; not every file system lets a folder be opened, which is fine."""
    with suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextmanager
def atomic_write(path, suffix=None, companions=()):
    """Yield a temporary path to write ``path``'s content to; on success it becomes ``path``.

    Args:
        path: the final file name; its folder is created when missing.
        suffix: ending of the temporary name (default: ``path``'s suffix).
        companions: functions mapping the temporary path to other files a writer may leave
            beside it (e.g. MindSpore's own ``.tmp``); removed with the temporary on failure.

    Yields:
        the temporary path (``pathlib.Path``); the block must create it.

    Raises:
        WriteError: an OSError while creating the folder, writing, syncing or renaming; the
        block's own exceptions pass through unchanged. Either way nothing new is left behind.
    """
    path = Path(path)
    tmp = temporary_path(path, suffix)
    leftovers = [tmp] + [Path(companion(tmp)) for companion in companions]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if not tmp.is_file():
            raise WriteError(f"{path}: cannot write (the writer created no file)")
        _fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        remove_files(*leftovers)       # first: the free space reported is what is really free
        if isinstance(exc, WriteError):
            raise
        raise WriteError(describe_write_error(path, exc)) from None
    finally:
        remove_files(*leftovers)


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; returns ``path`` as a string."""
    with atomic_write(path) as tmp, open(tmp, "xb") as stream:   # x: never through a link
        stream.write(data)
    return os.fspath(path)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a string."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(data, path):
    """Write ``data`` as JSON to ``path`` atomically; returns ``path`` as a string."""
    return write_text(path, json.dumps(data))


def encode_image(path, image, params=()):
    """``image`` (uint8 HxW or HxWx3 BGR) encoded in the format of ``path``'s suffix.

    Raises:
        WriteError: OpenCV cannot encode it (unknown suffix, bad array).
    """
    import cv2
    suffix = Path(path).suffix.lower() or ".png"
    try:
        ok, buffer = cv2.imencode(suffix, image, list(params))
    except cv2.error as exc:
        raise WriteError(f"{path}: cannot write image ({str(exc).strip().splitlines()[-1]})") \
            from None
    if not ok:
        raise WriteError(f"{path}: cannot write image (OpenCV cannot encode it as {suffix})")
    return buffer.tobytes()


def write_image(path, image, params=()):
    """Encode ``image`` (format from ``path``'s suffix) and write it atomically.

    Encoding in memory first means a full disk is an ``OSError`` with its reason (OpenCV's own
    ``imwrite`` reports only False, or leaves a zero-byte file).

    Returns:
        ``path`` as a string.

    Raises:
        WriteError: cannot encode, or cannot write (one line with the reason).
    """
    return write_bytes(path, encode_image(path, image, params))


def open_in_place(path, mode="a"):
    """Open ``path`` for appending (``"a"``) or for reading and writing without truncating
    (``"r+"``), created when missing, never through a symbolic link: for the few files that
    grow or are locked in place (a metrics log, a lock file) instead of being replaced.

    Raises:
        WriteError: ``path`` is a symbolic link (one line), or cannot be opened.
    """
    flags = os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_WRONLY | os.O_APPEND if mode == "a" else os.O_RDWR
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise WriteError(f"{path}: is a symbolic link; not written through it (remove the "
                             "link)") from None
        raise WriteError(describe_write_error(path, exc)) from None
    return os.fdopen(descriptor, mode, encoding="utf-8")


def process_is_running(pid):
    """True when a process with ``pid`` exists on this machine (also when it is not ours)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def remove_stale_temporaries(directory):
    """Delete the temporaries in ``directory`` that a process of this host no longer running
    left behind (a killed run); those of running processes and of other hosts are kept.

    Returns:
        ``[(path, size in bytes), ...]`` of the files removed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    here = host_tag()
    for path in sorted(directory.iterdir()):
        match = TEMPORARY_NAME.match(path.name)
        if match is None or match.group("host") != here or path.is_symlink() or not path.is_file():
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() or process_is_running(pid):
            continue
        with suppress(OSError):
            size = path.stat().st_size
            path.unlink()
            removed.append((path, size))
    return removed
