"""Weights made elsewhere: what a file is (from its content) and its conversion.

Accepted, found from the bytes, never from the name:

* CMU's COCO body model as a Caffe ``.caffemodel`` (:mod:`src.model.caffe_import`);
* pytorch-openpose's ``body_pose_model.pth`` (Hzzone/pytorch-openpose, also redistributed in
  lllyasviel/Annotators): a PyTorch state dict of CMU's 92 convs under CMU's layer names
  (``conv1_1.weight``, ..., ``Mconv7_stage6_L2.bias``, 184 tensors, shapes as Caffe's), read by
  :mod:`src.model.torch_weights` and converted by the caffemodel's own name table and checks
  (:func:`src.model.caffe_import.convert_layers`), so both give the same checkpoint;
* torchvision's ImageNet ``vgg19`` / ``vgg19_bn`` (``features.N.*``): a VGG checkpoint in the
  layout of MindSpore's VGG19 under the prefix the reference's ``--vgg_path`` loader strips
  (``network.backbone.layers.N.*``: conv ``weight`` / ``bias``; BatchNorm ``gamma``, ``beta``,
  ``moving_mean``, ``moving_variance``; the same indices N as torchvision's ``features.N``). The
  classifier (``classifier.*``) and BatchNorm's ``num_batches_tracked`` are left out: this
  network uses neither.

torchvision's VGG takes RGB ``(x / 255 - mean) / std`` (:data:`IMAGENET_MEAN`,
:data:`IMAGENET_STD`); this network takes BGR ``x / 255 - 0.5``. With ``u`` our input,
``x_rgb[c] / 255 = u[2 - c] + 0.5``, so conv1_1 ``W``, ``b`` on torchvision's input equal, on ours,
``W'[:, k] = W[:, 2 - k] / std[2 - k]`` and ``b' = b + sum_{c, i, j} W[:, c, i, j] (0.5 - mean[c])
/ std[c]`` (:func:`fold_rgb_normalisation`). Exact everywhere except where the 3x3 kernel reaches
the zero padding: zero means the mean colour to torchvision and mid-grey here.
"""
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.errors import OpenPoseError
from src.model.caffe_import import (
    CaffeLayer,
    channel_order_is_identity,
    cmu_checkpoint_entries,
    convert_layers,
    read_caffemodel,
    write_cmu_checkpoint,
)
from src.model.cmu_model import cmu_layers, conv_weight_shapes
from src.model.protowire import LENGTH_DELIMITED, WireFormatError, read_varint
from src.model.torch_weights import is_torch_zip, read_state_dict, torch_file_kind
from src.runtime.messages import name_list

#: torchvision's ImageNet normalisation (RGB), from its VGG19 weights' transforms.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: VGG19's conv widths ('M' = max pooling), all 16 convs (torchvision's ``cfgs['E']``).
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
VGG_TARGET = "network.backbone.layers."
BATCHNORM_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                   "running_var": "moving_variance"}
ACCEPTED = ("accepted: CMU's pose_iter_440000.caffemodel, pytorch-openpose's body_pose_model.pth, "
            "torchvision's vgg19 / vgg19_bn .pth")


class WeightImportError(OpenPoseError, ValueError):
    """A file that is not one of the accepted weights, or does not fit them (one line)."""


@dataclass(frozen=True)
class Converted:
    """A conversion's result: ``kind`` ('openpose' or 'vgg19' / 'vgg19_bn'), the checkpoint
    entries ``{name: float32 array}`` (with the network record for 'openpose'), and the lines
    that say what was done."""

    kind: str
    entries: dict
    lines: tuple


# ---------------------------------------------------------------------------------------------
# What a file is
# ---------------------------------------------------------------------------------------------
def _top_level_fields(path, limit=8):
    """``[(field number, wire type)]`` of the first ``limit`` top-level protobuf fields, or None
    when the file does not parse as protobuf (payloads are skipped, not read)."""
    fields, pos = [], 0
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        while pos < size and len(fields) < limit:
            stream.seek(pos)
            head = stream.read(32)
            try:
                key, n = read_varint(head, 0, len(head))
                number, wire_type = key >> 3, key & 7
                if wire_type == 0:
                    _, n = read_varint(head, n, len(head))
                elif wire_type == LENGTH_DELIMITED:
                    length, n = read_varint(head, n, len(head))
                    n += length
                elif wire_type in (1, 5):
                    n += 8 if wire_type == 1 else 4
                else:
                    return None
            except WireFormatError:
                return None
            if number == 0 or pos + n > size:
                return None
            fields.append((number, wire_type))
            pos += n
    return fields


def identify(path):
    """``(kind, description)``: kind is 'torch', 'caffemodel', 'mindspore' or None (then the
    description says what the file seems to be).

    Raises:
        WeightImportError: missing, a folder, or empty.
    """
    path = Path(path)
    if not path.exists():
        raise WeightImportError(f"{path}: no such file")
    if not path.is_file():
        raise WeightImportError(f"{path}: a folder, not a weights file")
    with open(path, "rb") as stream:
        head = stream.read(512)
    if not head:
        raise WeightImportError(f"{path}: empty file (0 bytes)")
    kind = torch_file_kind(head)
    if kind == "legacy" or (kind == "zip" and is_torch_zip(path)):
        return "torch", f"a PyTorch weights file ({kind} layout)"
    if kind == "zip":
        return None, "a zip archive that is not a PyTorch weights file"
    for signature, what in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                            (b"\x1f\x8b", "a gzip archive"), (b"\x89HDF", "an HDF5 file (Keras?)"),
                            (b"\x93NUMPY", "a numpy .npy file"), (b"\x80", "a Python pickle "
                            "that is not a PyTorch weights file")):
        if head.startswith(signature):
            return None, what
    if len(head) >= 8 and head[8:10] == b'{"':
        return None, "a safetensors file"
    fields = _top_level_fields(path)
    if fields:
        numbers = {number for number, _ in fields}
        if (100, LENGTH_DELIMITED) in fields or (2, LENGTH_DELIMITED) in fields:
            return "caffemodel", "a Caffe model (binary NetParameter)"
        if numbers == {1} and all(wire == LENGTH_DELIMITED for _, wire in fields):
            return "mindspore", "a MindSpore checkpoint"
        if fields[0] == (1, 0):
            return None, "a protobuf file that looks like an ONNX model"
    printable = all(32 <= c < 127 or c in (9, 10, 13) for c in head)
    return None, "a text file" if printable else "an unrecognised binary file"


# ---------------------------------------------------------------------------------------------
# pytorch-openpose
# ---------------------------------------------------------------------------------------------
def is_cmu_layout(state):
    """True when the state dict's names are CMU's layer names (pytorch-openpose's body model)."""
    cmu = set(conv_weight_shapes(cmu_layers()))
    return any(name.rpartition(".")[0] in cmu for name in state)


def openpose_params_from_state(state, path):
    """pytorch-openpose's state dict as our parameters, through the caffemodel's name table
    (every conv present, nothing else, Caffe's shapes). Returns ``{parameter: float32 array}``."""
    blobs = OrderedDict()
    for name, value in state.items():
        layer, _, param = name.rpartition(".")
        if param not in ("weight", "bias"):
            raise WeightImportError(f"{path}: entry '{name}' is not the weight or bias of a conv "
                                    "of CMU's COCO body model")
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightImportError(f"{path}: entry '{name}' holds {value.dtype}, not floats")
        blobs.setdefault(layer, {})[param] = value.astype(np.float32)
    layers = []
    for layer, params in blobs.items():
        if set(params) != {"weight", "bias"}:
            raise WeightImportError(f"{path}: layer '{layer}' has a {next(iter(params))} but no "
                                    f"{({'weight', 'bias'} - set(params)).pop()}")
        layers.append(CaffeLayer(layer, "Convolution", [params["weight"], params["bias"]]))
    return convert_layers(layers, str(path))


# ---------------------------------------------------------------------------------------------
# torchvision VGG19
# ---------------------------------------------------------------------------------------------
def vgg19_layers(batch_norm):
    """``[(features index, out channels, in channels)]`` of VGG19's 16 convs, and the index of
    each BatchNorm (conv index + 1) when ``batch_norm``: torchvision's and MindSpore's order."""
    convs, index, in_channels = [], 0, 3
    for value in VGG19_CONFIG:
        if value == "M":
            index += 1
            continue
        convs.append((index, value, in_channels))
        index += 3 if batch_norm else 2
        in_channels = value
    return convs


def is_torchvision_vgg(state):
    """True for torchvision's VGG naming (``features.0.weight`` a 4-D conv weight)."""
    first = state.get("features.0.weight")
    return first is not None and first.ndim == 4


def fold_rgb_normalisation(weight, bias, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """conv1_1 for BGR ``x / 255 - 0.5`` from conv1_1 for RGB ``(x / 255 - mean) / std``.

    Args:
        weight: (out, 3, kh, kw), input channels RGB. bias: (out,).

    Returns:
        ``(weight, bias)`` float32, input channels BGR (see the module docstring).
    """
    weight = np.asarray(weight, np.float64)
    std = np.asarray(std, np.float64)
    shift = (0.5 - np.asarray(mean, np.float64)) / std
    folded_bias = np.asarray(bias, np.float64) + np.einsum("ocij,c->o", weight, shift)
    folded = weight / std[None, :, None, None]
    return (np.ascontiguousarray(folded[:, ::-1]).astype(np.float32),
            folded_bias.astype(np.float32))


def vgg_entries_from_state(state, path):
    """torchvision's vgg19 / vgg19_bn state dict as a MindSpore VGG19 checkpoint's entries.

    Returns:
        ``(kind, entries, dropped)``: 'vgg19' or 'vgg19_bn', ``{name: float32 array}`` in layer
        order with conv1_1 folded, and the number of torchvision tensors left out.

    Raises:
        WeightImportError: a VGG of another depth, a tensor missing or left over, a wrong shape.
    """
    batch_norm = "features.1.running_mean" in state
    kind = "vgg19_bn" if batch_norm else "vgg19"
    expected = OrderedDict()     # torchvision name -> (our name, shape)
    for index, out_channels, in_channels in vgg19_layers(batch_norm):
        expected[f"features.{index}.weight"] = (f"{VGG_TARGET}{index}.weight",
                                                (out_channels, in_channels, 3, 3))
        expected[f"features.{index}.bias"] = (f"{VGG_TARGET}{index}.bias", (out_channels,))
        if batch_norm:
            for theirs, ours in BATCHNORM_NAMES.items():
                expected[f"features.{index + 1}.{theirs}"] = (f"{VGG_TARGET}{index + 1}.{ours}",
                                                              (out_channels,))
    ignored = [name for name in state if name.startswith("classifier.")
               or name.endswith(".num_batches_tracked")]
    unexpected = [name for name in state if name not in expected and name not in ignored]
    if unexpected:
        raise WeightImportError(f"{path}: {len(unexpected)} tensors that torchvision's {kind} does "
                                f"not have ({name_list(unexpected, quote=True)}): another VGG "
                                "depth? only VGG19 fits this network")
    missing = [name for name in expected if name not in state]
    if missing:
        raise WeightImportError(f"{path}: {len(missing)} tensors of torchvision's {kind} are "
                                f"missing: {name_list(missing, quote=True)} (another VGG depth?)")
    entries = OrderedDict()
    for theirs, (ours, shape) in expected.items():
        value = state[theirs]
        if tuple(value.shape) != shape:
            raise WeightImportError(f"{path}: '{theirs}' has shape {tuple(value.shape)}, "
                                    f"torchvision's {kind} has {shape}")
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightImportError(f"{path}: '{theirs}' holds {value.dtype}, not floats")
        entries[ours] = value.astype(np.float32)
    first = f"{VGG_TARGET}0."
    entries[first + "weight"], entries[first + "bias"] = fold_rgb_normalisation(
        entries[first + "weight"], entries[first + "bias"])
    return kind, entries, len(ignored)


FOLD_LINE = ("folded torchvision's input normalisation (RGB, (x/255 - mean) / std, mean "
             f"{' '.join(map(str, IMAGENET_MEAN))}, std {' '.join(map(str, IMAGENET_STD))}) into "
             "conv1_1: the checkpoint takes this network's BGR x/255 - 0.5 (exact except where "
             "conv1_1 reaches the zero padding)")


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------
def convert_torch(path):
    """A PyTorch weights file as checkpoint entries (:class:`Converted`).

    Raises:
        src.model.torch_weights.TorchWeightsError: unreadable or unsafe file;
        WeightImportError / src.model.caffe_import.CaffeImportError: a state dict that is neither
            pytorch-openpose's body model nor torchvision's VGG19.
    """
    state = read_state_dict(path)
    if is_torchvision_vgg(state):
        kind, entries, dropped = vgg_entries_from_state(state, path)
        values = sum(v.size for v in entries.values())
        return Converted(kind, entries, (
            f"read torchvision's {kind}: {len(state)} tensors; wrote {len(entries)} "
            f"(network.backbone.layers.N.*, {values / 1e6:.1f} M values), left out {dropped} "
            "(classifier, BatchNorm counters: not used by OpenPose)", FOLD_LINE))
    if is_cmu_layout(state):
        if any(name.startswith("conv6_2_CPM") for name in state):
            raise WeightImportError(f"{path}: pytorch-openpose's hand model, not the body model "
                                    "(body_pose_model.pth)")
        entries = cmu_checkpoint_entries(openpose_params_from_state(state, path))
        return Converted("openpose", entries, _openpose_lines(f"read pytorch-openpose's body "
                                                              f"model: {len(state)} tensors", entries))
    raise WeightImportError(f"{path}: a PyTorch state dict of {len(state)} tensors "
                            f"({name_list(list(state), quote=True)}) that is neither "
                            f"pytorch-openpose's body model nor torchvision's VGG19; {ACCEPTED}")


def _openpose_lines(what, entries):
    weights = [v for k, v in entries.items() if not k.startswith("openpose_spec.")]
    order = "the same as this repository's (no channel moved)" if channel_order_is_identity() else \
        "mapped onto this repository's order"
    return (f"{what}; {len(weights)} parameters ({sum(v.size for v in weights) / 1e6:.1f} M "
            "weights) as CMU's network: 6 stages, width 1, no BatchNorm",
            f"channel order of heatmaps and PAFs: {order}; input normalisation recorded: "
            "BGR / 256 - 0.5")


def convert_file(path):
    """Any accepted file (see the module docstring) as :class:`Converted` entries.

    Raises:
        WeightImportError: not an accepted file (one line naming what it is and what is
        accepted); the readers' own errors for bad files of an accepted kind.
    """
    kind, what = identify(path)
    if kind == "torch":
        return convert_torch(path)
    if kind == "caffemodel":
        layers = read_caffemodel(path)
        entries = cmu_checkpoint_entries(convert_layers(layers, str(path)))
        return Converted("openpose", entries, _openpose_lines(
            f"read {len(layers)} Caffe layers", entries))
    if kind == "mindspore":
        raise WeightImportError(f"{path}: already a MindSpore checkpoint, nothing to convert "
                                f"(use it as it is); {ACCEPTED}")
    raise WeightImportError(f"{path}: {what}, not a weights file this converter knows; {ACCEPTED}")


def write_converted(converted, out):
    """Write ``converted`` to the checkpoint ``out`` (atomically). Returns ``out``."""
    if converted.kind == "openpose":
        from src.model.checkpoint import SPEC_PREFIX
        params = {name[len("network."):]: value for name, value in converted.entries.items()
                  if not name.startswith(SPEC_PREFIX)}
        write_cmu_checkpoint(params, out)
        return str(out)
    import mindspore

    from src.model.checkpoint import save_checkpoint_atomic
    save_checkpoint_atomic([{"name": name, "data": mindspore.Tensor(value)}
                            for name, value in converted.entries.items()], out)
    return str(out)


def read_model_entries(path, backbone_ok=False):
    """The entries of an OpenPose model file of any accepted kind, as
    :func:`src.model.checkpoint.read_checkpoint` gives them: a MindSpore checkpoint as it is,
    CMU's caffemodel or pytorch-openpose's ``.pth`` converted in memory (with CMU's record).

    Args:
        backbone_ok: also accept torchvision's VGG19 (converted, for ``--vgg_path``).

    Raises:
        WeightImportError: a torchvision VGG (a backbone, not a pose model) without
            ``backbone_ok``, or another file;
        src.model.checkpoint.CheckpointError: an unreadable MindSpore checkpoint.
    """
    from src.model.checkpoint import read_checkpoint
    if not Path(path).is_file() or os.path.getsize(path) == 0:
        return read_checkpoint(path)               # its own message for a missing / empty file
    kind, _ = identify(path)
    if kind in ("torch", "caffemodel"):
        converted = convert_file(path)
        if converted.kind != "openpose" and not backbone_ok:
            raise WeightImportError(f"{path}: torchvision's {converted.kind}, an ImageNet backbone, "
                                    "not a pose model: convert it with scripts/convert_weights.py "
                                    "and pass it as --vgg_path for training")
        return converted.entries
    return read_checkpoint(path)
