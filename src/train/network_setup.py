"""The network a training run trains: which shape, how it starts, what its checkpoints record.

The network is built by :meth:`src.model.network_spec.NetworkSpec.build` (the builder of every
path: training, evaluation, export, inference) from the settings' shape; a resumed run takes the
shape its checkpoint holds. :func:`plan_start` finds and reads that checkpoint and derives the
network record, once per run, for everything after it. A fresh run then loads the VGG19
backbone and, with ``load_pretrain``, pretrained weights; mixed precision is applied last.
"""
from dataclasses import dataclass, replace

import mindspore

from src.model.checkpoint import read_checkpoint
from src.model.model_files import load_vgg_weights, load_weights
from src.model.network_spec import NetworkSpec, checkpoint_spec
from src.train.checkpoint_manager import CHECKPOINT_RANK, CheckpointManager
from src.train.errors import TrainError


@dataclass(frozen=True)
class RunStart:
    """How a training run starts, found once (:func:`plan_start`) and handed down.

    ``settings``: the run's :class:`src.train.settings.TrainSettings`, with the network the
    resume checkpoint holds when the configuration left it open; ``spec``: the
    :class:`src.model.network_spec.NetworkSpec` the run trains and its checkpoints record (None
    for a network given by a caller that is no OpenPoseNet); ``resume_path``: the checkpoint to
    resume from, or None; ``resume_entries``: its contents (read once), or None.
    """

    settings: object
    spec: object
    resume_path: object = None
    resume_entries: dict = None


def plan_start(settings, cfg=None, network=None, log=print, reader=read_checkpoint):
    """Find the resume checkpoint, read it once, and derive the network record once.

    Args:
        settings: :class:`src.train.settings.TrainSettings`.
        cfg: the :class:`src.config.Config` the settings came from, or None. Given (train.py),
            a resumed run builds the network its checkpoint holds (its record, else its
            shapes), and a network key set explicitly in ``cfg`` that contradicts it is an error.
        network: the network a caller trains instead of the settings' OpenPoseNet, or None.
        log: function taking one line.
        reader: reads a checkpoint file into its entries (tests count the reads).

    Returns:
        :class:`RunStart`.

    Raises:
        CheckpointError / TrainError: unreadable checkpoint, contradicting flag, missing path;
        TrainError: a new run (no ``resume``) in a folder holding an earlier run's checkpoints.
    """
    manager = CheckpointManager(settings.save_model_path, CHECKPOINT_RANK, settings.keep_checkpoint_max)
    if not settings.resume:
        earlier = manager.list()
        if earlier:
            # A new run would rotate the earlier run's newer checkpoints over its own (and a
            # later --resume auto would pick the earlier run): refuse instead of mixing two runs.
            raise TrainError(f"{manager.directory} holds checkpoints of an earlier run (newest "
                             f"{earlier[-1].name}): continue it with --resume auto, or pass another "
                             "--save_model_path")
    path = manager.resolve_resume(settings.resume)
    entries = reader(path) if path is not None else None
    if entries is not None and cfg is not None and network is None:
        spec = checkpoint_spec(entries, str(path), cfg)
        if spec != NetworkSpec.from_config(settings):
            log(f"resume: {path} holds {spec.describe()}; building that network")
            settings = replace(settings, vgg_with_bn=spec.vgg_with_bn, width_mult=spec.width_mult,
                               num_stages=spec.num_stages)
    spec = NetworkSpec.from_config(settings) if network is None else NetworkSpec.of_network(network)
    return RunStart(settings=settings, spec=spec, resume_path=path, resume_entries=entries)


def prepare_network(settings, spec, network, log, resuming):
    """The network to train: ``network``, or the OpenPoseNet of ``spec`` (:attr:`RunStart.spec`);
    with its first weights (VGG / pretrained, unless ``resuming``: the checkpoint brings them)
    and mixed precision.

    Raises:
        TrainError: an impossible shape, or mixed precision on the CPU;
        src.model.checkpoint.CheckpointError: a VGG or pretrained file that does not fit.
    """
    if network is None:
        try:
            network = spec.build()
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
