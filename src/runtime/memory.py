"""Memory a run's buffers need, checked before they are allocated.

A size typed by mistake (``--inference_img_size 100000``, ``--export_batch_size 1000000000``,
a checkpoint record with a huge ``width_mult``) would otherwise end in a numpy / OpenCV
allocation error with a traceback, or in the machine swapping. :func:`check_fits` compares an
estimate of the bytes with the memory this machine has available (Linux ``MemAvailable``) and
raises :class:`MemoryNeedError` with one line naming the option, its value and both sizes.
"""
import os

from src.errors import OpenPoseError

#: Bytes of a float32 value.
FLOAT32_BYTES = 4


class MemoryNeedError(OpenPoseError, MemoryError):
    """A requested size needs more memory than this machine has (one-line message)."""


def available_memory():
    """Bytes of memory available to a new allocation (``MemAvailable`` of /proc/meminfo, else
    free physical pages), or None where neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_size(count):
    """``1.5 GiB`` style size of a byte count (up to PiB; beyond that in PiB)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def check_fits(needed_bytes, what, hint="", available=None):
    """Raise :class:`MemoryNeedError` when ``needed_bytes`` exceed the available memory.

    Args:
        needed_bytes: estimated bytes of the buffers (a lower bound: only buffers that surely
            exist are counted, so a refusal is never a false alarm).
        what: the request, e.g. ``"--inference_img_size 100000 (input 100000x100000)"``.
        hint: what to do instead (appended after a semicolon).
        available: bytes available (default: :func:`available_memory`; None there: no check).

    Returns:
        ``needed_bytes``.
    """
    available = available_memory() if available is None else available
    if available is not None and needed_bytes > available:
        message = (f"{what} needs at least {format_size(needed_bytes)} of memory, "
                   f"{format_size(available)} is available")
        raise MemoryNeedError(message + (f"; {hint}" if hint else ""))
    return needed_bytes
