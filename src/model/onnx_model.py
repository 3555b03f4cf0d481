"""Exported ONNX files: make their sizes symbolic, record the network in them, run them.

export.py traces the network at ``export_batch_size x 3 x insize x insize`` with batch, height and
width marked dynamic (MindSpore's ``dynamic_axes``); MindSpore still declares the outputs with
the traced shape, so :func:`finalize_onnx` rewrites the two output declarations to
``(batch, 38 | 19, map_height, map_width)``, adds the network record as ONNX metadata
(``metadata_props``: the ``openpose_spec.*`` keys of a checkpoint, as text) and checks the result
with ``onnx.checker``, all through the ``onnx`` package, the format's own library.

:func:`onnx_forward` runs such a file with onnxruntime for :class:`src.evaluate.inference.Predictor`
(``--backend onnx`` of eval.py and scripts/infer.py): any image size (a multiple of 8) and batch.
"""
from pathlib import Path

import numpy as np

from src.model.checkpoint import SPEC_PREFIX, CheckpointError, check_finite
from src.runtime.messages import first_line
from src.skeleton import NUM_HEATMAPS, NUM_PAFS

#: Output name -> channels, as export.py names them.
OUTPUT_CHANNELS = {"pafs": NUM_PAFS, "heatmaps": NUM_HEATMAPS}


class OnnxModelError(CheckpointError):
    """An ONNX file that cannot be run here (one-line message)."""


def finalize_onnx(path, spec):
    """Rewrite an exported ONNX file in place: symbolic output sizes and the network record.

    ``path`` is export's temporary file (:func:`src.model.export.export_network` renames it
    into place afterwards), so a failure here never leaves a partial file under a final name.

    Args:
        path: the .onnx file export.py wrote (weights inside; the full network is ~200 MB).
        spec: the :class:`src.model.network_spec.NetworkSpec` exported.

    Raises:
        OnnxModelError: the file does not parse as ONNX (e.g. truncated by a failed write), or
        the edited model fails ``onnx.checker``.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = str(path)
    try:
        model = onnx.load(path)
    except (DecodeError, OSError) as exc:
        raise OnnxModelError(f"{path}: not a readable ONNX model ({first_line(exc)})") from None
    for output in model.graph.output:
        if output.name in OUTPUT_CHANNELS and output.type.HasField("tensor_type"):
            dims = output.type.tensor_type.shape.dim
            del dims[:]
            for size in ("batch", OUTPUT_CHANNELS[output.name], "map_height", "map_width"):
                if isinstance(size, str):
                    dims.add().dim_param = size
                else:
                    dims.add().dim_value = size
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {name: repr(value) for name, value in spec.to_record().items()})
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise OnnxModelError(f"{path}: the edited ONNX model fails onnx.checker "
                             f"({first_line(exc)})") from None
    onnx.save(model, path)


def spec_from_metadata(metadata, path):
    """The NetworkSpec recorded in an ONNX file's metadata ({key: text}).

    Raises:
        OnnxModelError: no record (a file not written by this repository's export.py).
    """
    from src.model.network_spec import NetworkSpec
    entries = {key: value for key, value in metadata.items()     # text, checked as numbers
               if key.startswith(SPEC_PREFIX)}
    spec = NetworkSpec.from_record(entries, path) if entries else None
    if spec is None:
        raise OnnxModelError(f"{path}: no OpenPose network record in the ONNX metadata; export it "
                             "with this repository's export.py (--file_format ONNX)")
    return spec


def open_session(path):
    """An onnxruntime InferenceSession of ``path`` (warnings off), or a one-line error."""
    import onnxruntime as ort
    path = str(path)
    if not Path(path).is_file():
        raise OnnxModelError(f"{path}: no such ONNX file")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        providers = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise OnnxModelError(f"{path}: not a readable ONNX model ({first_line(exc)})") from None


def _output_names(outputs):
    """Names of the (pafs, heatmaps) outputs: by name, else (MindSpore 2.0 names its outputs by
    number) by their declared channel count (38 and 19); None when neither works."""
    names = [output.name for output in outputs]
    if sorted(names) == sorted(OUTPUT_CHANNELS):
        return ["pafs", "heatmaps"]
    by_channels = {}
    for output in outputs:
        shape = output.shape
        if len(shape) == 4 and isinstance(shape[1], int):
            by_channels[shape[1]] = output.name
    wanted = [by_channels.get(OUTPUT_CHANNELS[key]) for key in ("pafs", "heatmaps")]
    return wanted if len(outputs) == 2 and None not in wanted else None


def check_finite_initializers(path):
    """Refuse an ONNX file whose weights (graph initializers) hold NaN or infinity, as
    checkpoints are refused (:func:`src.model.checkpoint.check_finite`): such a network scores
    AP 0 with no other sign. export.py never writes one; a hand-made or damaged file can.

    Raises:
        CheckpointError: one line naming the file and the first such initializer.
    """
    import onnx
    from onnx import numpy_helper
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # the onnx package raises protobuf's and its own types
        raise OnnxModelError(f"{path}: not a readable ONNX model ({first_line(exc)})") from None
    for initializer in model.graph.initializer:
        check_finite(initializer.name, numpy_helper.to_array(initializer), str(path))


def onnx_forward(path):
    """A Predictor forward that runs an exported ONNX file with onnxruntime.

    Returns:
        ``(forward, spec, session)``: ``forward(batch (N, 3, H, W) float32)`` -> numpy
        ``(pafs (N, 38, H/8, W/8), heatmaps (N, 19, H/8, W/8))``; ``spec`` from the file's metadata.

    Raises:
        OnnxModelError: unreadable file, no network record, or outputs that are not
        ``pafs`` / ``heatmaps``.
    """
    session = open_session(path)
    spec = spec_from_metadata(session.get_modelmeta().custom_metadata_map, str(path))
    check_finite_initializers(path)
    inputs = session.get_inputs()
    output_names = _output_names(session.get_outputs())
    if len(inputs) != 1 or output_names is None:
        names = [output.name for output in session.get_outputs()]
        raise OnnxModelError(f"{path}: expected one input and outputs {sorted(OUTPUT_CHANNELS)} "
                             f"(or two outputs of 38 and 19 channels), got {len(inputs)} inputs "
                             f"and outputs {names}")
    input_name, fixed = inputs[0].name, inputs[0].shape

    def forward(batch):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        for axis, (want, got) in enumerate(zip(fixed, batch.shape)):
            if isinstance(want, int) and want != got:
                raise OnnxModelError(f"{path}: the graph takes a fixed input {tuple(fixed)} "
                                     f"(axis {axis} is {want}, this image needs {got}); "
                                     "re-export it with export.py under a MindSpore that has "
                                     "mindspore.onnx (2.8.0 does; 2.0.0 exports the traced size "
                                     "only), whose ONNX files take any batch and size")
        pafs, heatmaps = session.run(output_names, {input_name: batch})
        return pafs, heatmaps

    return forward, spec, session
