"""Export a trained OpenPose network to MINDIR, AIR or ONNX."""
import os
from pathlib import Path

import mindspore
import numpy as np

from src import compat
from src.codec import check_input_side
from src.errors import OpenPoseError
from src.model.network import FinalStage
from src.model.network_spec import open_network
from src.model.onnx_model import finalize_onnx
from src.runtime.memory import FLOAT32_BYTES, check_fits
from src.runtime.messages import first_line
from src.runtime.output_checks import OutputError, check_output_dir, describe_write_error, verify_export

SUFFIXES = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}


class ExportError(OpenPoseError, ValueError):
    """The export request cannot be carried out (one-line message)."""


def export_network(ckpt_file, file_name, file_format, *, batch_size, insize, stages,
                   device_target="CPU", cfg=None):
    """Load ``ckpt_file`` into the OpenPoseNet it holds and export it.

    Args:
        ckpt_file: checkpoint (ours or a reference training checkpoint).
        file_name: output path without extension (MindSpore adds it).
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
        src.runtime.output_checks.OutputError: the file was not written, is empty or does not load.
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
        raise ExportError("ckpt_file is empty: pass --ckpt_file PATH")
    check_output_dir(Path(file_name).parent, "file_name")   # before the checkpoint is read
    net, spec, report = open_network(ckpt_file, cfg)
    net.set_train(False)
    model = FinalStage(net) if stages == "final" else net
    model.set_train(False)
    inputs = mindspore.Tensor(np.zeros((batch_size, 3, insize, insize), np.float32))
    output = str(file_name)
    if not output.lower().endswith(SUFFIXES[file_format]):
        output += SUFFIXES[file_format]
    before = _file_stamp(output)
    try:
        _write_export(model, inputs, file_name, output, file_format, spec)
        if before is not None and _file_stamp(output) == before:
            raise OutputError(f"{output}: export failed, the file there is the old one (nothing "
                              "new was written; is the folder writable?)")
        verify_export(output, file_format)
    except OutputError:
        if before is None and os.path.isfile(output):
            os.remove(output)           # a partial file of this run: never left looking usable
        raise
    return output, report, spec


def _write_export(model, inputs, file_name, output, file_format, spec):
    """Run MindSpore's exporter (ONNX: then :func:`src.model.onnx_model.finalize_onnx` when a file
    was written); write errors become :class:`OutputError` (one line)."""
    try:
        if file_format == "ONNX":
            # Any batch and image size where MindSpore can say so (2.1+): the traced shape is
            # only an example. MindSpore 2.0 exports the traced shape (see src/compat.py).
            output = compat.export_onnx(model, inputs, output, input_names=["image"],
                                 output_names=["pafs", "heatmaps"],
                                 dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}})
            if os.path.isfile(output) and os.path.getsize(output):
                try:      # MindSpore logs a failed write and goes on: the file may be truncated
                    finalize_onnx(output, spec)
                except ValueError as exc:
                    raise OutputError(f"{output}: export failed, the ONNX file does not parse "
                                      f"({first_line(exc)})") from None
        else:
            mindspore.export(model, inputs, file_name=str(file_name), file_format=file_format)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe_write_error(output, exc)) from None
    except RuntimeError as exc:
        raise OutputError(f"{output}: export failed ({first_line(exc)})") from None


def _file_stamp(path):
    """(inode, size, mtime_ns) of an existing file, None when there is none."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
