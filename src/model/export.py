"""Export a trained OpenPose network to MINDIR, AIR or ONNX, and prove the file loads.

The exporter writes under a short ASCII temporary name in the output's folder
(:func:`src.runtime.atomic_write.atomic_write`): MindSpore's exporter refuses names with spaces
or non-ASCII characters and appends its own suffix, and a long final name must not grow past
the file system's limit. The temporary is checked (:func:`verify_export`) and only then renamed
onto the final name; a failure, a Ctrl-C or a full disk removes it, and a SIGKILL leaves it for
:func:`src.runtime.atomic_write.remove_stale_temporaries` at the next export into that folder.
"""
import contextlib
import os
from pathlib import Path

import mindspore
import numpy as np

from src import compat
from src.codec import check_input_side
from src.errors import OpenPoseError
from src.model.model_files import open_network
from src.model.network import FinalStage
from src.model.onnx_model import finalize_onnx
from src.runtime.atomic_write import atomic_write, describe_write_error, remove_stale_temporaries
from src.runtime.memory import FLOAT32_BYTES, check_fits
from src.runtime.messages import first_line
from src.runtime.output_checks import OutputError, check_output_dir

SUFFIXES = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}


class ExportError(OpenPoseError, ValueError):
    """The export request cannot be carried out (one-line message)."""


def export_network(ckpt_file, file_name, file_format, *, batch_size, insize, stages,
                   device_target="CPU", cfg=None):
    """Load ``ckpt_file`` into the OpenPoseNet it holds and export it.

    Args:
        ckpt_file: checkpoint (ours or a reference training checkpoint).
        file_name: output path; the format's suffix (``.mindir``, ``.air``, ``.onnx``, in any
            case) is added when it does not end with it. Any legal path: spaces, non-ASCII
            characters and 250-character names work.
        file_format: "MINDIR", "AIR" (Ascend only) or "ONNX".
        batch_size, insize: the exported input shape is (batch_size, 3, insize, insize); insize
            must be divisible by 8. ONNX files take any batch and any height and width divisible
            by 8 (this shape only traces the graph) and record ``spec`` in their metadata.
        stages: "final" exports the last stage's ``(pafs, heatmaps)``; "all" every stage
            (MINDIR/AIR only: MindSpore's ONNX exporter cannot emit the list outputs).
        device_target: the resolved device the context was set to.
        cfg: configuration whose explicitly set network keys (vgg_with_bn, width_mult,
            num_stages) must agree with the checkpoint, or None.

    Returns:
        ``(output_path, load_report, spec)``; ``spec`` (:class:`src.model.network_spec.NetworkSpec`)
        says which network was exported and the input normalisation it expects.

    Raises:
        ExportError: a bad request; src.model.checkpoint.CheckpointError: the checkpoint does not
        fit (contradicting flags, missing or extra parameters);
        src.runtime.output_checks.OutputError: the file was not written, is empty or does not
        load (nothing is left under its name then; an older file there is kept).
    """
    file_format = file_format.upper()
    if file_format not in SUFFIXES:
        raise ExportError(f"file_format must be MINDIR, AIR or ONNX, got {file_format!r}")
    if file_format == "AIR" and device_target != "Ascend":
        raise ExportError(f"AIR export needs an Ascend device (this run is on {device_target}); "
                          "use MINDIR or ONNX")
    if file_format == "ONNX" and stages == "all":
        raise ExportError("ONNX export supports only export_stages=final (MindSpore cannot export "
                          "the list of all stages to ONNX)")
    try:
        check_input_side(insize)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    if batch_size <= 0:
        raise ExportError(f"export_batch_size must be positive, got {batch_size}")
    # the traced input is allocated in full: refuse a size that cannot fit, with the size
    check_fits(FLOAT32_BYTES * batch_size * 3 * insize * insize,
               f"--export_batch_size {batch_size} x --insize {insize} (the traced input "
               f"{batch_size}x3x{insize}x{insize} float32)",
               hint="use a smaller --export_batch_size or --insize")
    if not ckpt_file:
        raise ExportError("no checkpoint to export: pass --ckpt_file PATH (or --model_path PATH)")
    folder = check_output_dir(Path(file_name).parent, "file_name")  # before the checkpoint is read
    remove_stale_temporaries(folder)      # what a killed export left there
    net, spec, report = open_network(ckpt_file, cfg)
    net.set_train(False)
    model = FinalStage(net) if stages == "final" else net
    model.set_train(False)
    inputs = mindspore.Tensor(np.zeros((batch_size, 3, insize, insize), np.float32))
    output = export_path(file_name, file_format)
    with atomic_write(output, suffix=SUFFIXES[file_format]) as tmp, _inside(tmp.parent):
        # MindSpore refuses paths with characters outside [0-9a-zA-Z@_-.:/\] (a space, an
        # accent, in the folder too): it is given the bare ASCII temporary name, from its folder
        _write_export(model, inputs, tmp.name, output, file_format, spec)
        verify_export(tmp.name, file_format, shown=output)
    return output, report, spec


@contextlib.contextmanager
def _inside(folder):
    """Run the block with ``folder`` as the working directory."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def export_path(file_name, file_format):
    """The final file name: ``file_name`` with the format's suffix unless it already ends with
    it in any case (``x.ONNX`` stays ``x.ONNX``). ``mindspore.load`` opens only names ending in
    lower-case ``.mindir``, so ``x.MINDIR`` becomes ``x.mindir``."""
    output = str(file_name)
    suffix = SUFFIXES[file_format.upper()]
    if not output.lower().endswith(suffix):
        return output + suffix
    return output[:-len(suffix)] + suffix if file_format.upper() == "MINDIR" else output


def _write_export(model, inputs, tmp, output, file_format, spec):
    """Run MindSpore's exporter into ``tmp`` (a bare file name in the working directory, ending in
    the format's suffix; ONNX:
    then :func:`src.model.onnx_model.finalize_onnx` when a file was written); write errors
    become :class:`OutputError` naming ``output`` (one line)."""
    tmp = str(tmp)
    try:
        if file_format == "ONNX":
            # Any batch and image size where MindSpore can say so (2.1+): the traced shape is
            # only an example. MindSpore 2.0 exports the traced shape (see src/compat.py).
            written = compat.export_onnx(model, inputs, tmp, input_names=["image"],
                                         output_names=["pafs", "heatmaps"],
                                         dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}})
            if Path(written).is_file() and Path(written).stat().st_size:
                try:      # MindSpore logs a failed write and goes on: the file may be truncated
                    finalize_onnx(written, spec)
                except ValueError as exc:
                    reason = first_line(exc).replace(f"{written}: ", "")   # not the temporary's name
                    raise OutputError(f"{output}: export failed, the ONNX file is unusable "
                                      f"({reason})") from None
        else:
            # MindSpore appends the suffix itself: give it the temporary name without it
            mindspore.export(model, inputs, file_name=tmp[:-len(SUFFIXES[file_format])],
                             file_format=file_format)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe_write_error(output, exc)) from None
    except RuntimeError as exc:
        raise OutputError(f"{output}: export failed ({first_line(exc)})") from None


def _load_mindir(path):
    mindspore.load(str(path))


def _load_onnx(path):
    import onnxruntime
    onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


#: How an exported format is proven loadable (AIR needs Ascend tools: existence and size only).
_LOADERS = {"MINDIR": _load_mindir, "ONNX": _load_onnx, "AIR": None}


def verify_export(path, file_format, shown=None):
    """Check an exported model: the file exists, is not empty and loads.

    Args:
        path: the file the exporter should have written.
        file_format: "MINDIR" (``mindspore.load``), "ONNX" (an onnxruntime session) or "AIR"
            (exists and not empty).
        shown: the name messages give (the final name of a file still under its temporary one).

    Raises:
        OutputError: one line naming the file and what is wrong.
    """
    shown = path if shown is None else shown
    path = Path(path)
    if not path.is_file():
        raise OutputError(f"{shown}: export failed, no file was written (is the folder writable "
                          "and the disk not full?)")
    if path.stat().st_size == 0:
        raise OutputError(f"{shown}: export failed, the file is empty")
    loader = _LOADERS[file_format.upper()]
    if loader is None:
        return str(path)
    try:
        loader(path)
    except Exception as exc:  # loaders raise RuntimeError/ValueError/their own
        raise OutputError(f"{shown}: export failed, the {file_format} file does not load "
                          f"({first_line(exc)})") from None
    return str(path)
