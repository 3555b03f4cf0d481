"""Exported ONNX files: make their sizes symbolic, record the network in them, run them.

export.py traces the network at ``export_batch_size x 3 x insize x insize`` with batch, height and
width marked dynamic (MindSpore's ``dynamic_axes``); MindSpore still declares the outputs with
the traced shape, so :func:`finalize_onnx` rewrites the two output declarations to
``(batch, 38 | 19, map_height, map_width)`` and adds the network record as ONNX metadata
(``metadata_props``: the ``openpose_spec.*`` keys of a checkpoint, as text). The edit works on the
protobuf wire format (:mod:`src.model.protowire`) with ONNX's public field numbers (``onnx.proto``):

* ModelProto: ``graph`` = 7, ``metadata_props`` = 14 (StringStringEntryProto: key 1, value 2);
* GraphProto: ``input`` = 11, ``output`` = 12 (ValueInfoProto: name 1, type 2);
* TypeProto: ``tensor_type`` = 1 (elem_type 1, shape 2); TensorShapeProto: ``dim`` = 1
  (dim_value 1, dim_param 2).

:func:`onnx_forward` runs such a file with onnxruntime for :class:`src.evaluate.inference.Predictor`
(``--backend onnx`` of eval.py and scripts/infer.py): any image size (a multiple of 8) and batch.
"""
from pathlib import Path

import numpy as np

from src.model.checkpoint import SPEC_PREFIX, CheckpointError
from src.model.protowire import LENGTH_DELIMITED, VARINT, bytes_field, iter_fields, utf8, varint_field
from src.runtime.messages import first_line
from src.skeleton import NUM_HEATMAPS, NUM_PAFS

MODEL_GRAPH, MODEL_METADATA = 7, 14
GRAPH_INPUT, GRAPH_OUTPUT = 11, 12
VALUE_NAME, VALUE_TYPE = 1, 2
TYPE_TENSOR, TENSOR_ELEM_TYPE, TENSOR_SHAPE = 1, 1, 2
SHAPE_DIM, DIM_VALUE, DIM_PARAM = 1, 1, 2
ENTRY_KEY, ENTRY_VALUE = 1, 2
#: Output name -> channels, as export.py names them.
OUTPUT_CHANNELS = {"pafs": NUM_PAFS, "heatmaps": NUM_HEATMAPS}


class OnnxModelError(CheckpointError):
    """An ONNX file that cannot be run here (one-line message)."""


def _dims_field(dims):
    """A TensorShapeProto holding ``dims`` (ints are fixed, strings symbolic)."""
    body = b""
    for dim in dims:
        if isinstance(dim, str):
            dim_body = bytes_field(DIM_PARAM, dim)
        else:
            dim_body = varint_field(DIM_VALUE, dim)
        body += bytes_field(SHAPE_DIM, dim_body)
    return body


def _symbolic_output(payload):
    """A graph output ValueInfoProto with its shape made (batch, C, map_height, map_width)."""
    name, elem_type, rest = None, None, b""
    for number, wire_type, value, span in iter_fields(payload):
        if number == VALUE_NAME and wire_type == LENGTH_DELIMITED:
            name = utf8(value)
            rest += bytes(payload[span[0]:span[1]])
        elif number == VALUE_TYPE and wire_type == LENGTH_DELIMITED:
            for type_number, _, tensor, _ in iter_fields(value):
                if type_number == TYPE_TENSOR:
                    for tensor_number, tensor_wire, elem, _ in iter_fields(tensor):
                        if tensor_number == TENSOR_ELEM_TYPE and tensor_wire == VARINT:
                            elem_type = elem
        else:
            rest += bytes(payload[span[0]:span[1]])
    if name not in OUTPUT_CHANNELS or elem_type is None:
        return bytes(payload)
    shape = _dims_field(("batch", OUTPUT_CHANNELS[name], "map_height", "map_width"))
    tensor = varint_field(TENSOR_ELEM_TYPE, elem_type) + bytes_field(TENSOR_SHAPE, shape)
    return rest + bytes_field(VALUE_TYPE, bytes_field(TYPE_TENSOR, tensor))


def finalize_onnx(path, spec):
    """Rewrite an exported ONNX file in place: symbolic output sizes and the network record.

    ``path`` is export's temporary file (:func:`src.model.export.export_network` renames it
    into place afterwards), so a failure here never leaves a partial file under a final name.

    Args:
        path: the .onnx file export.py wrote (weights inside; the full network is ~200 MB).
        spec: the :class:`src.model.network_spec.NetworkSpec` exported.
    """
    path = Path(path)
    data = path.read_bytes()
    parts = []
    for number, wire_type, value, span in iter_fields(data):
        if number == MODEL_GRAPH and wire_type == LENGTH_DELIMITED:
            graph = []
            for g_number, g_wire, g_value, g_span in iter_fields(value):
                if g_number == GRAPH_OUTPUT and g_wire == LENGTH_DELIMITED:
                    graph.append(bytes_field(GRAPH_OUTPUT, _symbolic_output(g_value)))
                else:
                    graph.append(value[g_span[0]:g_span[1]])
            parts.append(bytes_field(MODEL_GRAPH, b"".join(graph)))
        elif number != MODEL_METADATA:
            parts.append(data[span[0]:span[1]])
    for name, value in spec.to_record().items():
        entry = bytes_field(ENTRY_KEY, name) + bytes_field(ENTRY_VALUE, repr(value))
        parts.append(bytes_field(MODEL_METADATA, entry))
    path.write_bytes(b"".join(parts))


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
