"""What a training run is told: :class:`TrainSettings`, resolved from the configuration.

Every value of a configuration key comes from the :class:`src.config.Config` it is resolved from
(default_config.yaml, a ``--config_path`` file, the command line); the dataclass repeats no
default of them. Only the fields that are not configuration keys (rank, group size, the progress
bar) have defaults here. :func:`default_settings` gives default_config.yaml's settings to tests
and scripts.
"""
from dataclasses import dataclass, replace

from src.config import default_config
from src.config_checks import NO_PATH, parse_int_list


@dataclass
class TrainSettings:
    """The values one training run uses, resolved once from the configuration.

    Not a second vocabulary: every field is named as its configuration key (default_config.yaml
    describes it) except ``max_epoch``, which is not a key but the choice between two
    (``max_epoch_train``, or ``max_epoch_train_NP`` when several devices train), and
    ``clip_type`` / ``clip_value``, the ``GRADIENT_CLIP_TYPE`` / ``GRADIENT_CLIP_VALUE`` keys under
    the names of :func:`src.train.train_step.build_train_step`'s parameters (kept: the training
    parity test passes them by these names). What the class
    adds is the resolution: with ``group_size > 1`` the fields ``lr_steps``, ``optimizer``,
    ``group_params`` and ``train_type`` hold the ``*_NP`` keys' values and ``loss_scale`` is
    halved (the reference's multi-card rules, :func:`settings_from_config`); ``lr_steps`` is a
    tuple of step numbers, ``vgg_path`` '' for none and ``device_target`` the resolved device
    (never "auto"). The rest (rank, group size, the progress bar) are not configuration keys.
    """

    save_model_path: str
    batch_size: int
    max_epoch: int
    lr: float
    lr_gamma: float
    lr_steps: tuple
    lr_type: str
    warmup_epoch: int
    optimizer: str
    group_params: bool
    train_type: str
    loss_scale: float
    clip_type: int
    clip_value: float
    unscale_before_clip: bool
    log_interval: int
    ckpt_interval: int
    keep_checkpoint_max: int
    max_train_steps: int
    resume: str
    load_pretrain: bool
    pretrained_model_path: str
    vgg_path: str
    vgg_with_bn: bool
    width_mult: float
    num_stages: int
    amp_level: str
    device_target: str
    seed: int
    enable_profiling: bool
    rank: int = 0
    group_size: int = 1
    progress: bool = True


def settings_from_config(cfg, rank=0, group_size=1, device_target="CPU"):
    """Resolve a :class:`src.config.Config` into :class:`TrainSettings`.

    With ``group_size > 1`` the reference's multi-card values apply: ``max_epoch_train_NP``,
    ``loss_scale / 2``, ``lr_steps_NP``, ``train_type_NP``, ``optimizer_NP``, ``group_params_NP``.

    Args:
        cfg: the configuration (every key of default_config.yaml).
        rank, group_size: this process's place in the job.
        device_target: the resolved device ("CPU", "GPU" or "Ascend").
    """
    multi = int(group_size) > 1
    vgg_path = "" if str(cfg.vgg_path) in NO_PATH else str(cfg.vgg_path)
    return TrainSettings(
        save_model_path=str(cfg.save_model_path), rank=int(rank), group_size=int(group_size),
        batch_size=int(cfg.batch_size),
        max_epoch=int(cfg.max_epoch_train_NP if multi else cfg.max_epoch_train),
        lr=float(cfg.lr), lr_gamma=float(cfg.lr_gamma),
        lr_steps=tuple(parse_int_list(cfg.lr_steps_NP if multi else cfg.lr_steps, "lr_steps")),
        lr_type=str(cfg.lr_type), warmup_epoch=int(cfg.warmup_epoch),
        optimizer=str(cfg.optimizer_NP if multi else cfg.optimizer),
        group_params=bool(cfg.group_params_NP if multi else cfg.group_params),
        train_type=str(cfg.train_type_NP if multi else cfg.train_type),
        loss_scale=float(cfg.loss_scale) / (2.0 if multi else 1.0),
        clip_type=int(cfg.GRADIENT_CLIP_TYPE), clip_value=float(cfg.GRADIENT_CLIP_VALUE),
        unscale_before_clip=bool(cfg.unscale_before_clip), log_interval=int(cfg.log_interval),
        ckpt_interval=int(cfg.ckpt_interval), keep_checkpoint_max=int(cfg.keep_checkpoint_max),
        max_train_steps=int(cfg.max_train_steps), resume=str(cfg.resume),
        load_pretrain=bool(cfg.load_pretrain), pretrained_model_path=str(cfg.pretrained_model_path),
        vgg_path=vgg_path, vgg_with_bn=bool(cfg.vgg_with_bn),
        width_mult=float(cfg.width_mult), num_stages=int(cfg.num_stages),
        amp_level=str(cfg.amp_level), device_target=str(device_target), seed=int(cfg.seed),
        enable_profiling=bool(cfg.enable_profiling))


def default_settings(**changes):
    """default_config.yaml's single-process CPU settings with some fields changed.

    Args:
        changes: :class:`TrainSettings` fields (field names, not configuration keys); they are
            applied to the resolved settings, so ``group_size`` does not switch to the
            ``*_NP`` values here.
    """
    return replace(settings_from_config(default_config()), **changes)
