"""Output locations and written artefacts: checked before the work starts and after each write.

* :func:`check_output_dir` runs when a command starts: it creates
  the folder, write and remove a probe file, and raise :class:`OutputError` (one line naming the
  path and the option) when that fails, before any data is read or network compiled.
* :func:`write_image` is ``cv2.imwrite`` with its result checked.
* :func:`atomic_path` and :func:`write_json`: a file appears under its final name only whole.
* :func:`verify_export` checks an exported model: it exists, is not empty and loads.
"""
import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager

import cv2

from src.errors import OpenPoseError
from src.runtime.messages import first_line


class OutputError(OpenPoseError, OSError):
    """An output location cannot be written, or a written artefact is missing or broken
    (one-line message naming the file)."""


def _reason(exc):
    """The short cause of an OSError (``Permission denied``, ``No space left on device`` ...)."""
    return exc.strerror or type(exc).__name__


def check_output_dir(path, key):
    """Create folder ``path`` if needed and prove it writable with a probe file.

    Args:
        path: the folder a command will write into.
        key: the option that named it (``save_model_path`` ...), for the message.

    Returns:
        ``path`` as a string.

    Raises:
        OutputError: ``path`` is empty, is an existing file, cannot be created or written.
    """
    path = os.fspath(path)
    if not path:
        raise OutputError(f"--{key} is empty: pass a folder to write into")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path}: is a file, not a folder (--{key})")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create this folder ({_reason(exc)}) (--{key})") from None
    probe = os.path.join(path, f".write_probe_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    try:
        with open(probe, "wb") as stream:
            stream.write(b"probe")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write into this folder ({_reason(exc)}) (--{key})") \
            from None
    finally:
        if os.path.exists(probe):
            os.remove(probe)
    return path


@contextmanager
def atomic_path(path, suffix=""):
    """A temporary name beside ``path`` to write to; renamed onto ``path`` when the block ends
    without an exception, removed otherwise, so a partial file never has the final name.

    Args:
        path: the final file name; its folder is created.
        suffix: ending of the temporary name (e.g. ".png", so an encoder picks the format).
    """
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(data, path):
    """Write ``data`` as JSON to ``path`` atomically (:func:`atomic_path`); returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as stream:
        json.dump(data, stream)
    return os.fspath(path)


def write_image(path, image, params=()):
    """``cv2.imwrite`` (with its encoder ``params``) that raises :class:`OutputError` when the
    image was not written."""
    path = os.fspath(path)
    try:
        written = cv2.imwrite(path, image, list(params))
    except cv2.error as exc:
        raise OutputError(f"{path}: cannot write image ({str(exc).strip().splitlines()[-1]})") \
            from None
    if not written or not os.path.isfile(path):
        raise OutputError(f"{path}: cannot write image (OpenCV's imwrite failed; is the folder "
                          "writable and the disk not full?)")
    return path


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
    if getattr(exc, "errno", None) == errno.ENOSPC:
        return (f"{path}: no space left on device while writing "
                f"({format_bytes(free_space(path))} free on its file system)")
    return f"{path}: cannot write ({_reason(exc)})"


def _load_mindir(path):
    import mindspore
    mindspore.load(path)


def _load_onnx(path):
    import onnxruntime
    onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


#: How an exported format is proven loadable (AIR needs Ascend tools: existence and size only).
_LOADERS = {"MINDIR": _load_mindir, "ONNX": _load_onnx, "AIR": None}


def verify_export(path, file_format):
    """Check an exported model: the file exists, is not empty and loads.

    Args:
        path: the file the exporter should have written.
        file_format: "MINDIR" (``mindspore.load``), "ONNX" (an onnxruntime session) or "AIR"
            (exists and not empty).

    Raises:
        OutputError: one line naming the file and what is wrong.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OutputError(f"{path}: export failed, no file was written (is the folder writable "
                          "and the disk not full?)")
    if os.path.getsize(path) == 0:
        raise OutputError(f"{path}: export failed, the file is empty")
    loader = _LOADERS[file_format.upper()]
    if loader is None:
        return path
    try:
        loader(path)
    except Exception as exc:  # loaders raise RuntimeError/ValueError/their own
        raise OutputError(f"{path}: export failed, the {file_format} file does not load "
                          f"({first_line(exc)})") from None
    return path
