"""Which network a checkpoint holds: its shape record, inference from weights, strict loading.

A checkpoint written by train.py records the network it holds under ``openpose_spec.*`` keys
(:data:`src.model.checkpoint.SPEC_PREFIX`; int/float scalars, which every MindSpore 2.x can store):
``vgg_with_bn`` (0/1), ``width_mult``, ``num_stages`` and ``input_scale`` (the network's input
is ``BGR / input_scale - 0.5``: 255 for networks trained here, 256 for CMU's Caffe model). The
reference's loading rule ignores those keys (it keeps only ``network.*``).

:meth:`NetworkSpec.build` is the one place an OpenPoseNet is built: train.py builds the network
of its configuration (:meth:`NetworkSpec.from_config`), while eval.py, export.py,
scripts/infer.py and ``--resume`` build the network of the record (or, for a checkpoint without
one, of its parameter shapes), so a checkpoint needs no matching ``--config_path``. A network
flag given explicitly (command line or ``--config_path`` file) that contradicts the checkpoint is
an error, and so is any network parameter missing from the file or left over in it.
"""
import math
from dataclasses import dataclass

from src.codec import TRAINED_INPUT_SCALE
from src.model.checkpoint import SPEC_PREFIX, CheckpointError, assign_weights, to_network_names
from src.model.network import NUM_STAGES, OpenPoseNet
from src.runtime.memory import FLOAT32_BYTES, MemoryNeedError, check_fits
from src.runtime.messages import name_list, shorten

#: Network keys of the configuration that a checkpoint's record fixes.
NETWORK_KEYS = ("vgg_with_bn", "width_mult", "num_stages")
#: Parameters of the reference network (width 1); the count grows about with width_mult squared.
REFERENCE_PARAMETERS = 52_311_446
#: Accepted ``input_scale`` (``BGR / input_scale - 0.5``): 255 (trained here) and 256 (CMU's
#: Caffe model) in practice; anything from 1 (a network on raw pixels) to 65535 (16-bit
#: pixels) is a normalisation some network could have, 0, negative or NaN never.
INPUT_SCALE_RANGE = (1.0, 65535.0)


@dataclass(frozen=True)
class NetworkSpec:
    """The shape of an OpenPoseNet and the input normalisation it expects.

    The defaults are the reference network (OpenPoseNet's own); a configuration's network comes
    from :meth:`from_config`.

    Attributes:
        vgg_with_bn: BatchNorm after each VGG conv.
        width_mult: channel multiplier (1.0 = the reference network).
        num_stages: refinement stages, 1 to 6.
        input_scale: the network's input is ``BGR pixel / input_scale - 0.5``.
    """

    vgg_with_bn: bool = False
    width_mult: float = 1.0
    num_stages: int = NUM_STAGES
    input_scale: float = TRAINED_INPUT_SCALE

    @classmethod
    def from_config(cls, cfg):
        """The network a configuration or :class:`src.train.settings.TrainSettings` describes
        (trained normalisation)."""
        return cls(vgg_with_bn=bool(cfg.vgg_with_bn), width_mult=float(cfg.width_mult),
                   num_stages=int(cfg.num_stages))

    def to_record(self):
        """The checkpoint entries that record this spec: ``{name: int or float}``."""
        return {SPEC_PREFIX + "vgg_with_bn": int(self.vgg_with_bn),
                SPEC_PREFIX + "width_mult": float(self.width_mult),
                SPEC_PREFIX + "num_stages": int(self.num_stages),
                SPEC_PREFIX + "input_scale": float(self.input_scale)}

    @classmethod
    def from_record(cls, entries, path="<checkpoint>"):
        """The spec recorded in checkpoint ``entries`` ({name: array}), or None without a record.

        Raises:
            CheckpointError: a record with keys missing, or a value no network can have
            (:func:`check_record_values`).
        """
        keys = [name for name in entries if name.startswith(SPEC_PREFIX)]
        if not keys:
            return None
        values = {}
        for field in NETWORK_KEYS + ("input_scale",):
            name = SPEC_PREFIX + field
            if name not in entries:
                raise CheckpointError(f"{path}: incomplete network record ('{name}' missing)")
            values[field] = _record_number(entries[name], name, path)
        check_record_values(values, path)
        return cls(vgg_with_bn=bool(values["vgg_with_bn"]), width_mult=values["width_mult"],
                   num_stages=int(values["num_stages"]), input_scale=values["input_scale"])

    @classmethod
    def of_network(cls, network):
        """The spec of a built :class:`src.model.network.OpenPoseNet` (trained normalisation), None
        for any other network."""
        if not isinstance(network, OpenPoseNet):
            return None
        return cls(vgg_with_bn=network.vgg_with_bn, width_mult=network.width_mult,
                   num_stages=network.num_stages)

    def build(self):
        """A new :class:`src.model.network.OpenPoseNet` of this shape (random weights).

        Every path builds its network here: training, evaluation, export and inference.

        Raises:
            ValueError: a shape OpenPoseNet does not have (num_stages outside 1..6,
                width_mult <= 0).
        """
        return OpenPoseNet(vgg_with_bn=self.vgg_with_bn, width_mult=self.width_mult,
                           num_stages=self.num_stages)

    def describe(self):
        """E.g. ``1 stage, width 0.25, VGG with BatchNorm, input BGR / 255 - 0.5``."""
        stages = f"{self.num_stages} stage" + ("s" if self.num_stages != 1 else "")
        bn = "VGG with BatchNorm" if self.vgg_with_bn else "VGG without BatchNorm"
        return f"{stages}, width {self.width_mult:g}, {bn}, input BGR / {self.input_scale:g} - 0.5"


def check_record_values(values, path="<checkpoint>"):
    """Refuse a network record with a value no network can have (checkpoint or ONNX metadata).

    Args:
        values: the recorded numbers {"vgg_with_bn", "width_mult", "num_stages", "input_scale":
            float}, checked before any conversion (so 2.5 stages or a vgg_with_bn of 7 are
            refused, not rounded).
        path: file name for the message.

    Raises:
        CheckpointError: one line naming the record entry, its value and the allowed range; a
        width whose parameters cannot fit in this machine's memory names both sizes.
    """
    def refuse(field, allowed):
        raise CheckpointError(f"{path}: network record {SPEC_PREFIX}{field} is "
                              f"{shorten(values[field])}; {allowed}")
    if values["vgg_with_bn"] not in (0.0, 1.0):
        refuse("vgg_with_bn", "expected 0 or 1")
    stages = values["num_stages"]
    if not (math.isfinite(stages) and stages == int(stages) and 1 <= stages <= NUM_STAGES):
        refuse("num_stages", f"expected a whole number from 1 to {NUM_STAGES}")
    width = values["width_mult"]
    if not (math.isfinite(width) and width > 0):
        refuse("width_mult", "expected a finite number > 0 (1 is the reference network)")
    low, high = INPUT_SCALE_RANGE
    scale = values["input_scale"]
    if not (math.isfinite(scale) and low <= scale <= high):
        refuse("input_scale", f"expected a number from {low:g} to {high:g} (the input is BGR / "
                              "input_scale - 0.5: 255 for networks trained here, 256 for CMU's)")
    try:
        check_fits(FLOAT32_BYTES * REFERENCE_PARAMETERS * max(1.0, width) ** 2,
                   f"{path}: a network of width_mult {width:g}")
    except MemoryNeedError as exc:
        raise CheckpointError(str(exc)) from None


def _record_number(value, name, path):
    """The number of a record entry (a scalar array or text), or CheckpointError naming it."""
    try:
        array = value.reshape(-1) if hasattr(value, "reshape") else [value]
        if len(array) != 1:
            raise ValueError("not one value")
        number = float(array[0])
    except (TypeError, ValueError, OverflowError):
        raise CheckpointError(f"{path}: network record {name} is {shorten(value)}, not a "
                              "number") from None
    if isinstance(value, str) and not math.isfinite(number):      # '1e400' reads as inf
        raise CheckpointError(f"{path}: network record {name} is {shorten(value)}, not a "
                              "finite number")
    return number


def infer_spec(weights, path="<checkpoint>"):
    """The network shape that fits ``weights`` ({network parameter name: array}).

    For checkpoints without a record (the reference's, older ones of this repository). The
    normalisation is the trained one (``/ 255 - 0.5``).

    Raises:
        CheckpointError: no OpenPose parameters, or shapes that no width multiplier explains.
    """
    first = weights.get("base.vgg_base.layers.0.weight")
    stages = [int(name.split(".")[0][len("stage_"):]) for name in weights
              if name.startswith("stage_") and name.split(".")[0][len("stage_"):].isdigit()]
    if first is None or not stages:
        raise CheckpointError(f"{path}: not an OpenPose checkpoint (no 'base.vgg_base.layers.0.weight' "
                              "or no stage parameters)")
    vgg_with_bn = any(name.startswith("base.vgg_base.") and name.endswith(".moving_mean")
                      for name in weights)
    num_stages = max(stages)
    if not 1 <= num_stages <= NUM_STAGES:
        raise CheckpointError(f"{path}: {num_stages} stages (at most {NUM_STAGES})")
    candidates = [1.0, int(first.shape[0]) / 64.0]
    conv44 = weights.get("base.conv4_4_CPM.weight")
    if conv44 is not None:
        candidates.append(int(conv44.shape[0]) / 128.0)
    for width_mult in dict.fromkeys(candidates):
        spec = NetworkSpec(vgg_with_bn=vgg_with_bn, width_mult=width_mult, num_stages=num_stages)
        if not first_shape_mismatch(spec, weights):
            return spec
    raise CheckpointError(f"{path}: parameter shapes fit no OpenPose width "
                          f"(first conv has {first.shape[0]} channels)")


def first_shape_mismatch(spec, weights):
    """The first parameter of ``spec``'s network whose shape differs in ``weights`` (or None)."""
    for param in spec.build().get_parameters():
        value = weights.get(param.name)
        if value is not None and tuple(value.shape) != tuple(param.shape):
            return param.name
    return None


def check_against_config(spec, cfg, path):
    """Raise when a network key set explicitly in ``cfg`` contradicts the checkpoint's spec.

    Keys not set explicitly (defaults of default_config.yaml) give way to the checkpoint.

    Args:
        spec: the checkpoint's :class:`NetworkSpec`.
        cfg: a :class:`src.config.Config` (:meth:`src.config.Config.is_explicit` says which keys
            the user set).
        path: file name for the message.

    Raises:
        CheckpointError: one line naming the flag, its value and the checkpoint's.
    """
    for key in NETWORK_KEYS:
        if not cfg.is_explicit(key):
            continue
        wanted, held = getattr(cfg, key), getattr(spec, key)
        if (float(wanted) != float(held)) if key == "width_mult" else (wanted != held):
            raise CheckpointError(f"{path} holds a network with {key} {held} ({spec.describe()}); "
                                  f"--{key} {wanted} contradicts it: drop the flag")


def checkpoint_spec(entries, path, cfg=None):
    """The spec of checkpoint ``entries``: the record, else inferred; checked against ``cfg``.

    Args:
        entries: {name: array} as read by :func:`src.model.checkpoint.read_checkpoint`.
        path: file name for messages.
        cfg: a :class:`src.config.Config` whose explicit network keys must agree, or None.
    """
    spec = NetworkSpec.from_record(entries, path)
    if spec is None:
        weights, _ = to_network_names(entries)
        spec = infer_spec(weights, path)
    if cfg is not None:
        check_against_config(spec, cfg, path)
    return spec


def load_strict(network, entries, path):
    """Copy a checkpoint's network weights into ``network``; every parameter must match.

    Args:
        network: an OpenPoseNet (or a Cell with its names).
        entries: {name: array} of the checkpoint (any layout :func:`to_network_names` knows).
        path: file name for messages.

    Returns:
        :class:`src.model.checkpoint.LoadReport`.

    Raises:
        CheckpointError: a network parameter missing from the file, an entry the network lacks,
        or a shape mismatch (each naming the first few).
    """
    weights, skipped = to_network_names(entries)
    report = assign_weights(network, weights, path)
    report.skipped_state = skipped
    if report.missing:
        raise CheckpointError(f"{path}: {len(report.missing)} network parameters missing from the "
                              f"checkpoint: {name_list(report.missing, quote=True)}")
    if report.unexpected:
        raise CheckpointError(f"{path}: {len(report.unexpected)} entries the network lacks: "
                              f"{name_list(report.unexpected, quote=True)}")
    return report
