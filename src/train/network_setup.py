"""The network a training run trains: which shape, how it starts, what its checkpoints record.

The network is built by :meth:`src.model.network_spec.NetworkSpec.build` (the builder of every
path: training, evaluation, export, inference) from the settings' shape; a resumed run takes the
shape its checkpoint holds (:func:`adopt_resume_network`). A fresh run then loads the VGG19
backbone and, with ``load_pretrain``, pretrained weights; mixed precision is applied last.
"""
from dataclasses import replace

import mindspore

from src.model.checkpoint import load_vgg_weights, load_weights, read_checkpoint
from src.model.network_spec import NetworkSpec, checkpoint_spec
from src.train.checkpoint_manager import CHECKPOINT_RANK, CheckpointManager
from src.train.errors import TrainError


def record_spec(settings, network):
    """What the checkpoints record: the settings' network, or the shape of a given OpenPoseNet
    (None for any other network, e.g. a test's tiny one)."""
    return NetworkSpec.from_config(settings) if network is None else NetworkSpec.of_network(network)


def adopt_resume_network(settings, cfg, log=print):
    """Settings whose network is the one the resume checkpoint holds (its record, else its shapes).

    A network key set explicitly in ``cfg`` that contradicts the checkpoint is an error.

    Args:
        settings: :class:`src.train.settings.TrainSettings`.
        cfg: the :class:`src.config.Config` the settings came from (which keys are explicit).
        log: function taking one line.

    Raises:
        CheckpointError / TrainError: unreadable checkpoint, contradicting flag, missing path.
    """
    manager = CheckpointManager(settings.save_model_path, CHECKPOINT_RANK, settings.keep_checkpoint_max)
    path = manager.resolve_resume(settings.resume)
    if path is None:
        return settings
    spec = checkpoint_spec(read_checkpoint(path), str(path), cfg)
    if spec != NetworkSpec.from_config(settings):
        log(f"resume: {path} holds {spec.describe()}; building that network")
    return replace(settings, vgg_with_bn=spec.vgg_with_bn, width_mult=spec.width_mult,
                   num_stages=spec.num_stages)


def prepare_network(settings, network, log, resuming):
    """The network to train: ``network``, or the settings' OpenPoseNet; with its first weights
    (VGG / pretrained, unless ``resuming``: the checkpoint brings them) and mixed precision.

    Raises:
        TrainError: an impossible shape, or mixed precision on the CPU;
        src.model.checkpoint.CheckpointError: a VGG or pretrained file that does not fit.
    """
    if network is None:
        try:
            network = NetworkSpec.from_config(settings).build()
        except ValueError as exc:
            raise TrainError(str(exc)) from None
    if resuming:
        log("resuming: VGG and pretrained weights come from the training checkpoint")
    else:
        if settings.vgg_path:
            log("VGG backbone: " + load_vgg_weights(network, settings.vgg_path).summary(detail=True))
        else:
            log("no vgg_path: the VGG layers start from random weights")
        if settings.load_pretrain:
            report = load_weights(network, settings.pretrained_model_path)
            log("load pretrained model (partial loading allowed): " + report.summary(detail=True))
    if settings.amp_level != "O0":
        if settings.device_target == "CPU":
            raise TrainError(f"amp_level {settings.amp_level} needs a GPU or Ascend device; use O0 on CPU")
        network = mindspore.amp.auto_mixed_precision(network, settings.amp_level)
    return network
