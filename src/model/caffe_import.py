"""Convert CMU's COCO body model (a Caffe ``.caffemodel``) into a checkpoint of this repository.

Reading needs no Caffe and no protobuf package: :mod:`src.model.protowire` parses Caffe's binary
``NetParameter`` with Caffe's public field numbers (``caffe.proto``):

* NetParameter: ``layer`` = 100 (LayerParameter), legacy ``layers`` = 2 (V1LayerParameter);
* LayerParameter: ``name`` = 1, ``type`` = 2 (string), ``blobs`` = 7;
* V1LayerParameter: ``name`` = 4, ``type`` = 5 (enum), ``blobs`` = 6;
* BlobProto: ``shape`` = 7 (BlobShape: ``dim`` = 1, int64), ``data`` = 5 (float),
  ``double_data`` = 8, legacy 4-D ``num`` / ``channels`` / ``height`` / ``width`` = 1..4.

Every conv of CMU's network (:mod:`src.model.cmu_model`) maps by name onto one conv of
:class:`src.model.network.OpenPoseNet`; Caffe and MindSpore store conv weights alike
(out, in, kh, kw) and both correlate, so weights copy as they are. Output channels of the last
conv of each branch, and the matching input channels of the next stage's first convs, go
through :func:`heatmap_channel_map` / :func:`paf_channel_map`: CMU's channel order mapped onto
ours by joint names and limb end points (derived, and tested, to be the identity).

The checkpoint holds ``network.<parameter>`` entries (train.py's layout) and the network record
with CMU's normalisation ``BGR / 256 - 0.5``, so eval.py, export.py and scripts/infer.py use it
as it is, and ``--load_pretrain`` fine-tunes from it.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.errors import OpenPoseError
from src.model.cmu_model import (
    BRANCH_OUTPUTS,
    CMU_HEATMAP_NAMES,
    CMU_INPUT_SCALE,
    CMU_NUM_STAGES,
    CMU_PAF_CHANNELS,
    CMU_PAIRS,
    cmu_layers,
    conv_weight_shapes,
    last_conv,
    our_layer_name,
)
from src.model.protowire import (
    FIXED32,
    LENGTH_DELIMITED,
    VARINT,
    WireFormatError,
    iter_fields,
    packed_floats,
    packed_varints,
    utf8,
)
from src.runtime.messages import name_list
from src.skeleton import BACKGROUND_CHANNEL, LIMBS, NUM_HEATMAPS, NUM_PAFS, Joint

NET_LAYER, NET_V1_LAYERS = 100, 2
LAYER_NAME, LAYER_TYPE, LAYER_BLOBS = 1, 2, 7
V1_NAME, V1_TYPE, V1_BLOBS = 4, 5, 6
BLOB_LEGACY_DIMS = (1, 2, 3, 4)
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8
SHAPE_DIM = 1


class CaffeImportError(OpenPoseError, ValueError):
    """The file is not CMU's COCO body model as a binary caffemodel (one-line message)."""


@dataclass
class CaffeLayer:
    """One layer of a caffemodel: its name, type (string, or V1 enum number as text) and blobs."""

    name: str
    type: str
    blobs: list


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def parse_blob(payload):
    """A BlobProto as a float32 array of its recorded shape."""
    dims, legacy, chunks = None, {}, []
    for number, wire_type, value, _ in iter_fields(payload):
        if number == BLOB_SHAPE and wire_type == LENGTH_DELIMITED:
            dims = []
            for dim_number, dim_type, dim, _ in iter_fields(value):
                if dim_number == SHAPE_DIM:
                    dims += packed_varints(dim) if dim_type == LENGTH_DELIMITED else [dim]
        elif number in BLOB_LEGACY_DIMS and wire_type == VARINT:
            legacy[number] = value
        elif number == BLOB_DATA and wire_type == LENGTH_DELIMITED:
            chunks.append(packed_floats(value))
        elif number == BLOB_DATA and wire_type == FIXED32:
            chunks.append(np.frombuffer(value, "<f4").astype(np.float32))
        elif number == BLOB_DOUBLE_DATA and wire_type == LENGTH_DELIMITED:
            chunks.append(packed_floats(value, "<f8"))
    if dims is None:
        dims = [legacy.get(n, 0) for n in BLOB_LEGACY_DIMS] if legacy else []
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    size = int(np.prod(dims)) if dims else 0
    if size != data.size:
        raise WireFormatError(f"blob of shape {tuple(dims)} holds {data.size} values")
    return data.reshape(dims)


def parse_layer(payload, legacy):
    """A LayerParameter (or V1LayerParameter when ``legacy``) as a CaffeLayer."""
    name_field, type_field, blobs_field = (V1_NAME, V1_TYPE, V1_BLOBS) if legacy else \
        (LAYER_NAME, LAYER_TYPE, LAYER_BLOBS)
    name, layer_type, blobs = "", "", []
    for number, wire_type, value, _ in iter_fields(payload):
        if number == name_field and wire_type == LENGTH_DELIMITED:
            name = utf8(value)
        elif number == type_field:
            layer_type = str(value) if wire_type == VARINT else utf8(value)
        elif number == blobs_field and wire_type == LENGTH_DELIMITED:
            blobs.append(parse_blob(value))
    return CaffeLayer(name, layer_type, blobs)


def _looks_like_text(head):
    """True for printable ASCII that starts like a prototxt (a name, ``#`` or a space)."""
    start = head.lstrip()[:1]
    printable = all(32 <= c < 127 or c in (9, 10, 13) for c in head)
    return printable and (start.isalpha() or start == b"#")


def read_caffemodel(path):
    """Read the layers of a binary caffemodel.

    Returns:
        list of :class:`CaffeLayer` in file order.

    Raises:
        CaffeImportError: missing, unreadable, truncated or not a binary NetParameter.
    """
    path = Path(path)
    if not path.is_file():
        raise CaffeImportError(f"{path}: no such file")
    data = path.read_bytes()
    if not data:
        raise CaffeImportError(f"{path}: empty file")
    layers, problem = [], None
    try:
        for number, wire_type, value, _ in iter_fields(data):
            if number in (NET_LAYER, NET_V1_LAYERS) and wire_type == LENGTH_DELIMITED:
                layers.append(parse_layer(value, legacy=number == NET_V1_LAYERS))
    except WireFormatError as exc:
        problem = f"truncated or not a caffemodel ({exc})"
    if (problem or not layers) and _looks_like_text(data[:256]):
        problem = "a text file (a .prototxt?), not a binary .caffemodel"
    if problem:
        raise CaffeImportError(f"{path}: {problem}")
    if not layers:
        raise CaffeImportError(f"{path}: no Caffe layers found (not a caffemodel)")
    return layers


# ---------------------------------------------------------------------------------------------
# Channel order
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelMap:
    """Our channel ``i`` = ``sign[i]`` * CMU channel ``source[i]``."""

    source: tuple
    sign: tuple

    @property
    def is_identity(self):
        """True when the orders agree channel for channel, with the same signs."""
        return self.source == tuple(range(len(self.source))) and all(s == 1 for s in self.sign)

    def apply(self, array, axis):
        """``array`` with its CMU-ordered ``axis`` put into our order (a new array)."""
        array = np.asarray(array)
        shape = [1] * array.ndim
        shape[axis] = len(self.source)
        signs = np.asarray(self.sign, dtype=array.dtype).reshape(shape)
        return np.take(array, list(self.source), axis=axis) * signs


def cmu_joint(name):
    """Our Joint for one of CMU's part names (``RShoulder`` -> RIGHT_SHOULDER), None for
    ``Background``."""
    if name == "Background":
        return None
    side = {"R": "RIGHT_", "L": "LEFT_"}.get(name[0]) if name[1:2].isupper() else None
    return Joint[(side + name[1:] if side else name).upper()]


def heatmap_channel_map():
    """Where each of our 19 heatmap channels is in CMU's order (matched by part name)."""
    position = {}
    for index, name in enumerate(CMU_HEATMAP_NAMES):
        joint = cmu_joint(name)
        position[BACKGROUND_CHANNEL if joint is None else int(joint)] = index
    if sorted(position) != list(range(NUM_HEATMAPS)):
        raise AssertionError("CMU's heatmap names do not cover our 19 channels")
    return ChannelMap(tuple(position[c] for c in range(NUM_HEATMAPS)), (1,) * NUM_HEATMAPS)


def paf_channel_map():
    """Where each of our 38 PAF channels is in CMU's order, and its sign.

    Our limb ``i`` = joints ``LIMBS[i]`` (x, y = channels 2i, 2i+1, direction first -> second);
    CMU's limb with the same two joints gives the channels (``CMU_PAF_CHANNELS``) and the sign
    (-1 when CMU's direction is the reverse).
    """
    names = [cmu_joint(n) for n in CMU_HEATMAP_NAMES]
    cmu_limbs = [(names[a], names[b]) for a, b in CMU_PAIRS]
    source, sign = [], []
    for joint_a, joint_b in LIMBS:
        if (joint_a, joint_b) in cmu_limbs:
            k, direction = cmu_limbs.index((joint_a, joint_b)), 1
        elif (joint_b, joint_a) in cmu_limbs:
            k, direction = cmu_limbs.index((joint_b, joint_a)), -1
        else:
            raise AssertionError(f"limb {joint_a.name}-{joint_b.name} has no CMU PAF")
        source += [CMU_PAF_CHANNELS[2 * k], CMU_PAF_CHANNELS[2 * k + 1]]
        sign += [direction, direction]
    if sorted(source) != list(range(NUM_PAFS)):
        raise AssertionError("CMU's PAF channels do not cover our 38 channels")
    return ChannelMap(tuple(source), tuple(sign))


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------
def _conv_blobs(layer, shapes, path):
    """(weight, bias) of a CMU conv layer, checked against the expected shapes."""
    (weight_shape, bias_shape) = shapes[layer.name]
    if len(layer.blobs) != 2:
        raise CaffeImportError(f"{path}: layer '{layer.name}' has {len(layer.blobs)} blobs, "
                               "expected 2 (weights and bias)")
    weight, bias = layer.blobs
    if tuple(weight.shape) != weight_shape:
        raise CaffeImportError(f"{path}: layer '{layer.name}' weights have shape "
                               f"{tuple(weight.shape)}, CMU's COCO model has {weight_shape}")
    if bias.size != bias_shape[0] or sum(d != 1 for d in bias.shape) > 1:
        raise CaffeImportError(f"{path}: layer '{layer.name}' bias has shape {tuple(bias.shape)}, "
                               f"CMU's COCO model has {bias_shape}")
    return weight.astype(np.float32), bias.reshape(bias_shape).astype(np.float32)


def _branch_maps():
    return {"L1": paf_channel_map(), "L2": heatmap_channel_map()}


def _reorder(name, weight, bias, num_stages):
    """Apply the channel maps to the outputs of the branch ends and the inputs of the
    following stage's first convs (input layout: L1 outputs, L2 outputs, features)."""
    maps = _branch_maps()
    for stage in range(1, num_stages + 1):
        for branch, channel_map in maps.items():
            if name == last_conv(stage, branch):
                return channel_map.apply(weight, 0), channel_map.apply(bias, 0)
    if name.startswith("Mconv1_stage"):
        pafs, heat = BRANCH_OUTPUTS["L1"], BRANCH_OUTPUTS["L2"]
        weight = np.concatenate([maps["L1"].apply(weight[:, :pafs], 1),
                                 maps["L2"].apply(weight[:, pafs:pafs + heat], 1),
                                 weight[:, pafs + heat:]], axis=1)
    return weight, bias


def convert_layers(layers, path="<caffemodel>", num_stages=6):
    """CMU's conv weights as our parameters.

    Args:
        layers: list of CaffeLayer (:func:`read_caffemodel`).
        path: file name for messages.

    Returns:
        ``{our parameter name: float32 array}`` (``<cell>.weight`` (out, in, k, k) and
        ``<cell>.bias`` (out,)) for every conv of the network.

    Raises:
        CaffeImportError: a CMU conv missing or duplicated, a layer with weights that the
        network does not have, or a shape that differs from CMU's COCO model.
    """
    shapes = conv_weight_shapes(cmu_layers(num_stages))
    by_name = {}
    for layer in layers:
        if not layer.blobs:
            continue
        if layer.name not in shapes:
            raise CaffeImportError(f"{path}: layer '{layer.name}' has weights but is not part of "
                                   "CMU's COCO body model (pose_deploy_linevec)")
        if layer.name in by_name:
            raise CaffeImportError(f"{path}: layer '{layer.name}' appears twice")
        by_name[layer.name] = _conv_blobs(layer, shapes, path)
    missing = [name for name in shapes if name not in by_name]
    if missing:
        raise CaffeImportError(f"{path}: {len(missing)} conv layers of CMU's COCO body model are "
                               f"missing: {name_list(missing)}")
    params = {}
    for name in shapes:
        weight, bias = _reorder(name, *by_name[name], num_stages)
        cell = our_layer_name(name)
        params[f"{cell}.weight"] = np.ascontiguousarray(weight)
        params[f"{cell}.bias"] = np.ascontiguousarray(bias)
    return params


def cmu_spec():
    """The NetworkSpec of CMU's COCO body model (6 stages, full width, no BatchNorm, /256)."""
    from src.model.network_spec import NetworkSpec
    return NetworkSpec(vgg_with_bn=False, width_mult=1.0, num_stages=CMU_NUM_STAGES,
                       input_scale=CMU_INPUT_SCALE)


def cmu_checkpoint_arrays(params):
    """The checkpoint entries of converted CMU weights, in the network's parameter order.

    Args:
        params: ``{our parameter name: float32 array}`` (:func:`convert_layers`).

    Returns:
        ``(entries, spec)``: ``{"network.<parameter>": array}`` (train.py's layout) and the
        :class:`src.model.network_spec.NetworkSpec` to record (:func:`cmu_spec`).
    """
    from src.model.checkpoint import TRAINING_PREFIX
    params = dict(params)
    spec = cmu_spec()
    entries = {}
    for param in spec.build().get_parameters():
        value = params.pop(param.name, None)
        if value is None or tuple(value.shape) != tuple(param.shape):
            raise AssertionError(f"converter does not fill '{param.name}' {tuple(param.shape)}")
        entries[TRAINING_PREFIX + param.name] = value
    if params:
        raise AssertionError(f"converter made parameters the network lacks: {sorted(params)[:3]}")
    return entries, spec


def cmu_checkpoint_entries(params):
    """What reading a converted checkpoint gives (:func:`src.model.checkpoint.read_checkpoint`),
    without writing it: ``{name: array}`` of the weights and the network record."""
    entries, spec = cmu_checkpoint_arrays(params)
    entries.update({name: np.array(value) for name, value in spec.to_record().items()})
    return entries


def write_cmu_checkpoint(params, out):
    """Write converted CMU weights and CMU's network record to ``out`` (atomically).

    Returns:
        ``(parameters, values)``: the number of tensors and of weights written.
    """
    import mindspore

    from src.model.checkpoint import save_checkpoint_atomic
    arrays, spec = cmu_checkpoint_arrays(params)
    entries = [{"name": name, "data": mindspore.Tensor(value)} for name, value in arrays.items()]
    # counted before saving: MindSpore 2.0's save_checkpoint extends the list it is given
    count, values = len(entries), int(sum(value.size for value in arrays.values()))
    save_checkpoint_atomic(entries, out, append_dict=spec.to_record())
    return count, values


def convert_caffemodel(caffemodel, out, layers=None):
    """Convert CMU's ``pose_iter_440000.caffemodel`` (or any caffemodel of that network) into a
    checkpoint at ``out`` (written atomically).

    Args:
        layers: the file's layers when already read (:func:`read_caffemodel`).

    Returns:
        dict with ``parameters`` (count), ``values`` (number of weights), ``layers`` (Caffe
        layers read), ``identity_order`` (True when no channel was moved) and ``out``.

    Raises:
        CaffeImportError: a bad file (one line).
    """
    layers = read_caffemodel(caffemodel) if layers is None else layers
    count, values = write_cmu_checkpoint(convert_layers(layers, str(caffemodel)), out)
    return {"parameters": count, "values": values, "layers": len(layers), "out": str(out),
            "identity_order": channel_order_is_identity()}


def channel_order_is_identity():
    """True when CMU's heatmap and PAF channel orders are this repository's (nothing moved)."""
    return heatmap_channel_map().is_identity and paf_channel_map().is_identity
