"""Open any model file this project reads, as a network or as weights to load.

Our checkpoints, the reference's training checkpoints, VGG19, CMU's ``.caffemodel`` and the
PyTorch ``.pth`` files (found from the content, converted in memory by
:func:`src.model.weight_import.read_model_entries`): :func:`open_network` builds the network a
file records and loads it strictly (evaluation, export, inference); :func:`load_weights` and
:func:`load_vgg_weights` load what fits into a given network (``load_pretrain``, ``vgg_path``).
These sit above the readers and the converters they use (checkpoint.py, network_spec.py,
weight_import.py), so that none of those imports back up.
"""
from src.model.checkpoint import VGG_SOURCE_PREFIX, CheckpointError, assign_weights, to_network_names
from src.model.network_spec import checkpoint_spec, load_strict
from src.model.weight_import import read_model_entries


def open_network(path, cfg=None):
    """Build the network a checkpoint holds and load it strictly.

    Args:
        path: checkpoint file (ours, the reference's, or converted from CMU's model), or CMU's
            ``.caffemodel`` / pytorch-openpose's ``body_pose_model.pth`` itself, converted in
            memory (:func:`src.model.weight_import.read_model_entries`, found from the content).
        cfg: configuration whose explicit network keys must agree with the checkpoint, or None.

    Returns:
        ``(network, spec, report)``: the loaded OpenPoseNet, its :class:`src.model.network_spec.NetworkSpec` and the
        :class:`src.model.checkpoint.LoadReport`.

    Raises:
        CheckpointError: unreadable file, contradicting flags, or a parameter that does not fit;
        src.errors.OpenPoseError subclasses for a foreign file that is bad or unsafe.
    """
    entries = read_model_entries(path)
    spec = checkpoint_spec(entries, path, cfg)
    network = spec.build()
    report = load_strict(network, entries, path)
    return network, spec, report


def load_weights(net, path):
    """Load network weights from our checkpoint, a reference training checkpoint or VGG19,
    *partially*: what fits is loaded, the rest is reported (``load_pretrain``). Evaluation,
    export, inference and resume load strictly (:func:`open_network`).

    CMU's ``.caffemodel`` and pytorch-openpose's ``body_pose_model.pth`` are converted in memory
    (:func:`src.model.weight_import.read_model_entries`). Optimizer state is skipped. Returns a
    :class:`LoadReport`.

    Raises:
        CheckpointError: unreadable file, shape mismatch, or nothing in it fits the network.
    """
    weights, skipped = to_network_names(read_model_entries(path))
    report = assign_weights(net, weights, path)
    report.skipped_state = skipped
    if not report.loaded:
        raise CheckpointError(f"{path}: no parameter in the checkpoint matches the network "
                              f"({len(weights)} entries, e.g. '{next(iter(weights), '')}')")
    return report


def load_vgg_weights(net, path):
    """Load only the VGG backbone (``base.vgg_base.*``) from a VGG19 or OpenPose checkpoint.

    Entries beyond the backbone (deeper VGG layers, classifier) are reported as unexpected.
    torchvision's ``vgg19`` / ``vgg19_bn`` ``.pth`` is converted in memory, as
    scripts/convert_weights.py converts it (normalisation folded into conv1_1).
    """
    weights, skipped = to_network_names(read_model_entries(path, backbone_ok=True))
    report = assign_weights(net, weights, path, only_prefix="base.vgg_base.")
    report.skipped_state = skipped
    if not report.loaded:
        raise CheckpointError(f"{path}: no VGG backbone weights found (expected keys like "
                              f"'{VGG_SOURCE_PREFIX}0.weight')")
    return report
