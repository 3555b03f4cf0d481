"""Output locations, checked when a command starts, before any data is read or network compiled.

* :func:`check_output_dir` creates the folder, writes and removes a probe file, and raises
  :class:`OutputError` (one line naming the path and the option) when that fails;
* :func:`check_not_input` refuses an output that would replace one of the command's inputs.

Files themselves are written by :mod:`src.runtime.atomic_write`.
"""
import os
import uuid

from src.runtime.atomic_write import WriteError, reason


class OutputError(WriteError):
    """An output location cannot be written, or would replace an input, or a written artefact
    is missing or broken (one-line message naming the file)."""


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
        raise OutputError(f"{path}: cannot create this folder ({reason(exc)}) (--{key})") from None
    probe = os.path.join(path, f".write_probe_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    try:
        with open(probe, "wb") as stream:
            stream.write(b"probe")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write into this folder ({reason(exc)}) (--{key})") \
            from None
    finally:
        if os.path.exists(probe):
            os.remove(probe)
    return path


def _same_path(first, second):
    """True when two paths name the same existing file or folder (links and ``..`` resolved)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def check_not_input(output, key, inputs, consequence):
    """Refuse an output folder or file that is one of a command's inputs (the same file or
    folder, through links and ``..`` too), so that nothing written can replace an input.

    Args:
        output: the folder or file a command will write.
        key: the option that named ``output``, for the message.
        inputs: ``[(path, label), ...]``: what the command reads, with how to name it
            (``"the --input folder"``).
        consequence: what writing there would do (``"drawings written there could replace
            input files"``), for the message.

    Raises:
        OutputError: one line naming the path, both options and what to do.
    """
    for path, label in inputs:
        if path and output and _same_path(output, path):
            raise OutputError(f"{output}: --{key} is {label}: {consequence}; choose another --{key}")
