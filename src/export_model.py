"""Export a trained OpenPose network to MINDIR, AIR or ONNX."""
from pathlib import Path

import numpy as np

from src.checkpoint import load_weights
from src.network import FinalStage, OpenPoseNet

SUFFIXES = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}


class ExportError(ValueError):
    """The export request cannot be carried out (one-line message)."""


def export_network(ckpt_file, file_name, file_format="MINDIR", batch_size=1, insize=368,
                   vgg_with_bn=False, stages="final", device_target="CPU", width_mult=1.0,
                   num_stages=6):
    """Load ``ckpt_file`` into an OpenPoseNet and export it.

    Args:
        ckpt_file: checkpoint (ours or a reference training checkpoint).
        file_name: output path without extension (MindSpore adds it).
        file_format: "MINDIR", "AIR" (Ascend only) or "ONNX".
        batch_size, insize: the exported input shape is (batch_size, 3, insize, insize); insize
            must be divisible by 8.
        stages: "final" exports the last stage's ``(pafs, heatmaps)``; "all" every stage
            (MINDIR/AIR only: MindSpore's ONNX exporter cannot emit the list outputs).
        device_target: the resolved device the context was set to.
        width_mult, num_stages: the network's shape (see src.network.OpenPoseNet).

    Returns:
        ``(output_path, load_report)``.
    """
    import mindspore  # pylint: disable=import-outside-toplevel
    file_format = file_format.upper()
    if file_format not in SUFFIXES:
        raise ExportError(f"file_format must be MINDIR, AIR or ONNX, got {file_format!r}")
    if file_format == "AIR" and device_target != "Ascend":
        raise ExportError(f"AIR export needs an Ascend device (this run is on {device_target}); "
                          "use MINDIR or ONNX")
    if file_format == "ONNX" and stages == "all":
        raise ExportError("ONNX export supports only export_stages=final (MindSpore cannot export "
                          "the list of all stages to ONNX)")
    if insize <= 0 or insize % 8:
        raise ExportError(f"insize must be a positive multiple of 8, got {insize}")
    if batch_size <= 0:
        raise ExportError(f"export_batch_size must be positive, got {batch_size}")
    if not ckpt_file:
        raise ExportError("ckpt_file is empty: pass --ckpt_file PATH")
    net = OpenPoseNet(vgg_with_bn=vgg_with_bn, width_mult=width_mult, num_stages=num_stages)
    report = load_weights(net, ckpt_file)
    net.set_train(False)
    model = FinalStage(net) if stages == "final" else net
    model.set_train(False)
    inputs = mindspore.Tensor(np.zeros((batch_size, 3, insize, insize), np.float32))
    Path(file_name).parent.mkdir(parents=True, exist_ok=True)
    output = str(file_name)
    if not output.lower().endswith(SUFFIXES[file_format]):
        output += SUFFIXES[file_format]
    if file_format == "ONNX":
        from src.compat import export_onnx  # pylint: disable=import-outside-toplevel
        output = export_onnx(model, inputs, output, input_names=["image"],
                             output_names=["pafs", "heatmaps"])
    else:
        mindspore.export(model, inputs, file_name=str(file_name), file_format=file_format)
    return output, report
