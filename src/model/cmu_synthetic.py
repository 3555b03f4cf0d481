"""A stand-in for CMU's model file: its deploy prototxt and a caffemodel of random weights.

Written from the layer list of :mod:`src.model.cmu_model` (CMU's public prototxt), not from this
repository's network code, so OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``) runs an
independent implementation of CMU's network on them. Used by the conversion tests and by
``scripts/benchmark_inference.py``; nobody needs CMU's real file for either.
"""
from pathlib import Path

import numpy as np

from src.model.cmu_model import INPUT_BLOB, NET_OUTPUT, Conv, Pool, cmu_layers, conv_weight_shapes
from src.model.protowire import bytes_field, packed_float_field, packed_varint_field, varint_field

#: V1LayerParameter.LayerType CONVOLUTION (caffe.proto).
V1_CONVOLUTION = 4


def deploy_prototxt(height, width, num_stages=6):
    """Text of a deploy prototxt of CMU's COCO body network for a (1, 3, height, width) input.

    The last layer concatenates the last stage's heatmaps and PAFs into ``net_output``
    (N, 57, H/8, W/8), as CMU's ``pose_deploy_linevec.prototxt`` does.
    """
    lines = ['name: "OpenPose COCO body (CMU layout)"', f'input: "{INPUT_BLOB}"',
             "input_dim: 1", "input_dim: 3", f"input_dim: {int(height)}",
             f"input_dim: {int(width)}"]
    layers = cmu_layers(num_stages)
    for layer in layers:
        if isinstance(layer, Conv):
            pad = layer.kernel // 2
            lines += ["layer {", f'  name: "{layer.name}"', '  type: "Convolution"',
                      f'  bottom: "{layer.bottom}"', f'  top: "{layer.name}"',
                      f"  convolution_param {{ num_output: {layer.out_channels} pad: {pad} "
                      f"kernel_size: {layer.kernel} }}", "}"]
            if layer.relu:
                lines += [f'layer {{ name: "relu_{layer.name}" type: "ReLU" bottom: "{layer.name}" '
                          f'top: "{layer.name}" }}']
        elif isinstance(layer, Pool):
            lines += [f'layer {{ name: "{layer.name}" type: "Pooling" bottom: "{layer.bottom}" '
                      f'top: "{layer.name}" '
                      "pooling_param { pool: MAX kernel_size: 2 stride: 2 } }"]
        else:
            top = NET_OUTPUT if layer is layers[-1] else layer.name
            bottoms = " ".join(f'bottom: "{b}"' for b in layer.bottoms)
            lines += [f'layer {{ name: "{layer.name}" type: "Concat" {bottoms} top: "{top}" '
                      "concat_param { axis: 1 } }"]
    return "\n".join(lines) + "\n"


def random_cmu_weights(seed=0, num_stages=6):
    """Random weights for every conv of CMU's network: ``{name: (weight (out, in, k, k),
    bias (out,))}``, float32, He-scaled so activations stay O(1) through the 6 stages."""
    rng = np.random.default_rng(seed)
    layers = cmu_layers(num_stages)
    shapes = conv_weight_shapes(layers)
    weights = {}
    for layer in layers:
        if not isinstance(layer, Conv):
            continue
        weight_shape, bias_shape = shapes[layer.name]
        fan_in = weight_shape[1] * weight_shape[2] * weight_shape[3]
        std = np.sqrt((2.0 if layer.relu else 1.0) / fan_in)
        weight = rng.standard_normal(weight_shape, dtype=np.float32) * np.float32(std)
        bias = rng.standard_normal(bias_shape, dtype=np.float32) * np.float32(0.05)
        weights[layer.name] = (weight, bias)
    return weights


def _blob(array, legacy):
    array = np.asarray(array, dtype=np.float32)
    if legacy:  # V1 models: 4-D num / channels / height / width, a bias as (1, 1, 1, out)
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        header = b"".join(varint_field(n, d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        header = bytes_field(7, packed_varint_field(1, array.shape))
    return header + packed_float_field(5, array.reshape(-1))


def caffemodel_bytes(weights, legacy=False, extra_layers=()):
    """A binary NetParameter holding ``weights`` ({conv name: (weight, bias)}).

    Args:
        legacy: write V1 ``layers`` (field 2) with 4-D legacy blob dims instead of ``layer``
            (field 100) with BlobShape.
        extra_layers: (name, type) of weightless layers to add (as CMU's files have ReLUs etc.).
    """
    parts = [bytes_field(1, "OpenPose COCO body (random weights)")]
    for name, layer_type in extra_layers:
        parts.append(bytes_field(100, bytes_field(1, name) + bytes_field(2, layer_type)))
    for name, (weight, bias) in weights.items():
        blobs = [_blob(weight, legacy), _blob(bias, legacy)]
        if legacy:
            body = bytes_field(4, name) + varint_field(5, V1_CONVOLUTION) + \
                b"".join(bytes_field(6, blob) for blob in blobs)
            parts.append(bytes_field(2, body))
        else:
            body = bytes_field(1, name) + bytes_field(2, "Convolution") + \
                b"".join(bytes_field(7, blob) for blob in blobs)
            parts.append(bytes_field(100, body))
    return b"".join(parts)


def write_cmu_model(directory, height, width, seed=0, legacy=False):
    """Write ``pose_deploy_linevec.prototxt`` and ``pose_random.caffemodel`` into ``directory``.

    Returns:
        ``(prototxt_path, caffemodel_path, weights)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = random_cmu_weights(seed)
    prototxt = directory / "pose_deploy_linevec.prototxt"
    prototxt.write_text(deploy_prototxt(height, width))
    caffemodel = directory / "pose_random.caffemodel"
    caffemodel.write_bytes(caffemodel_bytes(weights, legacy=legacy,
                                            extra_layers=(("relu1_1", "ReLU"),)))
    return str(prototxt), str(caffemodel), weights


def opencv_forward(prototxt, caffemodel, image, input_scale=256.0):
    """OpenCV DNN's forward of the Caffe model on one BGR uint8 image (already at the input size).

    Normalisation as CMU's: ``blobFromImage(scalefactor 1 / input_scale, mean 128)`` = BGR / 256
    - 0.5 for ``input_scale`` 256.

    Returns:
        ``(pafs (1, 38, H/8, W/8), heatmaps (1, 19, H/8, W/8))`` in CMU's channel order.
    """
    import cv2
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    return run_opencv(net, image, input_scale)


def run_opencv(net, image, input_scale=256.0):
    """Run a loaded ``cv2.dnn`` net (see :func:`opencv_forward`)."""
    import cv2
    blob = cv2.dnn.blobFromImage(image, scalefactor=1.0 / input_scale,
                                 mean=(input_scale / 2,) * 3, swapRB=False, crop=False)
    net.setInput(blob)
    out = net.forward()  # the last layer: the concat into net_output
    return out[:, 19:], out[:, :19]
