"""Meaning checks of configuration values, driven by one table (:data:`RULES`).

:func:`src.config.parse_config` converts every value to the type of its default; this module
then checks what the value means: sizes positive, ``insize`` a multiple of 8, lists parseable,
thresholds in range, an input path that exists of the right kind (a file where a file is
expected). A bad value raises :class:`src.config.ConfigError` (one line naming the key, the
value and what is expected; the commands exit 2).

Input paths that do not exist are left to the command that needs them (a missing
``--imgpath_train`` matters to train.py, not to export.py), which stops with one line and exit
status 1; output locations are probed when a command starts (:mod:`src.runtime.output_checks`).

Every key of default_config.yaml has a rule (``tests/test_config_checks.py`` checks this and
tries a wrong value of each); every rule gives an example of a wrong value.
"""
import math
import numbers
import os
from dataclasses import dataclass
from typing import Callable

from src.codec import STRIDE, is_valid_side
from src.errors import OpenPoseError
from src.runtime.messages import shorten
from src.skeleton import NUM_COCO_KEYPOINTS

#: Values of a path key that mean "no file".
NO_PATH = ("", "none", "None", "null")
SEED_MAX = 2 ** 32 - 1
NUM_STAGES_MAX = 6


class ConfigError(OpenPoseError, ValueError):
    """A configuration file, key or value is wrong; the message is one line.

    Defined here, below :mod:`src.config` (which imports this module and re-exports it), so the
    checks raise it without an import cycle.
    """


def parse_int_list(text, key="value"):
    """Parse a comma-separated list of integers such as ``"100000,200000"``.

    Raises:
        ConfigError: a part that is not an integer.
    """
    if isinstance(text, (list, tuple)):
        return [int(v) for v in text]
    try:
        return [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"bad value {shorten(text)} for '{key}': expected integers separated by commas") from None


@dataclass(frozen=True)
class Rule:
    """What a key's value must be.

    Attributes:
        check: ``check(value) -> bool``; the value already has the type of its default.
        meaning: what is expected, for the message and --help ("a positive integer").
        bad: an example of a wrong value, as it would be typed on the command line.
        metavar: how --help names the value ("N", "FILE", "True|False", "{a,b}").
        allowed: the values a choice key accepts (the one place they are written); empty for
            keys that are not a choice.
    """

    check: Callable
    meaning: str
    bad: str
    metavar: str = "VALUE"
    allowed: tuple = ()


def is_finite_number(value):
    """A finite real number that is not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def positive_int(bad="0"):
    """An integer > 0."""
    return Rule(lambda v: v > 0, "a positive integer", bad, "N")


def non_negative_int(meaning="an integer >= 0", bad="-1"):
    """An integer >= 0 (0 usually meaning "off" or "all")."""
    return Rule(lambda v: v >= 0, meaning, bad, "N")


def int_range(low, high, bad=None):
    """An integer in [low, high]."""
    return Rule(lambda v: low <= v <= high, f"an integer from {low} to {high}",
                bad if bad is not None else str(high + 1), "N")


def positive_number(bad="0"):
    """A finite number > 0."""
    return Rule(lambda v: is_finite_number(v) and v > 0, "a finite number > 0", bad, "X")


def non_negative_number(bad="-1"):
    """A finite number >= 0."""
    return Rule(lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0", bad, "X")


def number_range(low, high, bad=None):
    """A finite number in [low, high]."""
    return Rule(lambda v: is_finite_number(v) and low <= v <= high, f"a number from {low:g} to {high:g}",
                bad if bad is not None else str(high + 1), "X")


def multiple_of_stride():
    """A positive multiple of the network's stride (8)."""
    return Rule(is_valid_side, f"a positive multiple of {STRIDE}", "-8", "N")


def boolean():
    """True or False (the type conversion already checked it)."""
    return Rule(lambda v: isinstance(v, bool), "True or False", "maybe", "True|False")


def choice(*allowed):
    """One of ``allowed`` (the one place a choice key's values are written)."""
    return Rule(lambda v: v in allowed, "one of " + ", ".join(str(a) for a in allowed),
                "nonsense", "{" + ",".join(str(a) for a in allowed) + "}", tuple(allowed))


def _int_list(value):
    """:func:`parse_int_list` of ``value``; None when that is impossible."""
    try:
        return parse_int_list(value)
    except (ConfigError, TypeError, ValueError):
        return None


def step_list():
    """Comma-separated ascending step numbers >= 0 ("100000,200000"); may be empty."""
    def check(value):
        steps = _int_list(value)
        return steps is not None and all(s >= 0 for s in steps) and steps == sorted(steps)
    return Rule(check, "ascending integers >= 0 separated by commas, such as 100000,200000", "abc",
                "N,N,...")


def scale_list():
    """A non-empty YAML list of finite numbers > 0."""
    return Rule(lambda v: isinstance(v, list) and bool(v) and all(is_finite_number(s) and s > 0 for s in v),
                "a non-empty list of numbers > 0, such as [0.5, 1]", "[0, 1]", "[X,...]")


def _path_ok(value, kind, extra=()):
    """Empty, one of ``extra``, missing (left to the command), or an existing readable
    file / folder as ``kind`` says."""
    value = str(value)
    if value in NO_PATH or value in extra or not os.path.exists(value):
        return True
    is_file = os.path.isfile(value) and os.access(value, os.R_OK)
    is_dir = os.path.isdir(value) and os.access(value, os.R_OK | os.X_OK)
    return {"file": is_file, "dir": is_dir}.get(kind, is_file or is_dir)


def input_file(extra=()):
    """A readable file (or empty / not there yet: the command needing it says so)."""
    shown = "".join(f" or {e}" for e in extra)
    return Rule(lambda v: _path_ok(v, "file", extra), f"a readable file{shown}, not a folder", "/",
                "|".join(("FILE",) + tuple(extra)))


def input_dir():
    """A readable folder (or empty / not there yet: the command needing it says so)."""
    return Rule(lambda v: _path_ok(v, "dir"), "a readable folder, not a file",
                os.path.abspath(__file__), "DIR")


def output_path():
    """A non-empty path to write to (probed when the command starts)."""
    return Rule(lambda v: bool(str(v).strip()), "a non-empty path", "", "PATH")


#: Every key of default_config.yaml -> its :class:`Rule`.
RULES = {
    # runtime
    "device_target": choice("auto", "GPU", "Ascend", "CPU"), "device_id": non_negative_int(),
    "enable_profiling": boolean(),
    "seed": int_range(0, SEED_MAX, bad="-1"),
    # training
    "imgpath_train": input_dir(), "jsonpath_train": input_file(), "maskpath_train": input_dir(),
    "save_model_path": output_path(), "load_pretrain": boolean(),
    "pretrained_model_path": input_file(), "resume": input_file(extra=("auto",)),
    "train_type": choice("fix_loss_scale", "clip_grad"),
    "train_type_NP": choice("fix_loss_scale", "clip_grad"),
    "vgg_with_bn": boolean(), "width_mult": positive_number(),
    "num_stages": int_range(1, NUM_STAGES_MAX), "vgg_path": input_file(),
    "GRADIENT_CLIP_TYPE": choice(0, 1), "GRADIENT_CLIP_VALUE": positive_number(),
    "unscale_before_clip": boolean(),
    "optimizer": choice("Adam", "Momentum"), "optimizer_NP": choice("Adam", "Momentum"),
    "group_params": boolean(),
    "group_params_NP": boolean(), "lr": positive_number(), "lr_type": choice("default", "cosine"),
    "lr_gamma": positive_number(), "lr_steps": step_list(), "lr_steps_NP": step_list(),
    "warmup_epoch": non_negative_int(), "max_epoch_train": positive_int(),
    "max_epoch_train_NP": positive_int(), "loss_scale": positive_number(),
    "amp_level": choice("O0", "O1", "O2", "O3"),
    "max_train_steps": non_negative_int("an integer >= 0 (0: all epochs)"),
    "num_parallel_workers": non_negative_int("an integer >= 0 (0: automatic)"),
    "val_interval": non_negative_int("an integer >= 0 (0: never)"),
    "val_num": non_negative_int("an integer >= 0 (0: all)"),
    "batch_size": positive_int(), "min_keypoints": int_range(0, NUM_COCO_KEYPOINTS),
    "min_area": non_negative_number(), "insize": multiple_of_stride(),
    "paf_sigma": positive_number(), "heatmap_sigma": positive_number(),
    "keep_checkpoint_max": non_negative_int("an integer >= 0 (0: keep all)"),
    "log_interval": non_negative_int("an integer >= 0 (0: never)"),
    "ckpt_interval": non_negative_int("an integer >= 0 (0: only at the end)"),
    "min_box_size": positive_int(), "max_box_size": positive_int(),
    "min_scale": positive_number(), "max_scale": positive_number(),
    "max_rotate_degree": number_range(0, 180), "center_perterb_max": non_negative_number(),
    # evaluation
    "is_distributed": choice(0, 1), "eva_num": non_negative_int("an integer >= 0 (0: all)"),
    "model_path": input_file(), "imgpath_val": input_dir(), "ann": input_file(),
    "output_img_path": output_path(), "vis": boolean(), "strict": boolean(),
    "backend": choice("mindspore", "onnx"),
    "min_person_score": non_negative_number(), "min_joints": int_range(0, NUM_COCO_KEYPOINTS),
    "inference_img_size": positive_int(), "inference_scales": scale_list(),
    "multi_scale": boolean(), "flip": boolean(), "gaussian_sigma": positive_number(),
    "n_integ_points": positive_int(), "n_integ_points_thresh": non_negative_int(),
    "heatmap_peak_thresh": number_range(0, 1), "inner_product_thresh": number_range(0, 1),
    "limb_length_ratio": positive_number(), "length_penalty_value": non_negative_number(),
    "n_subset_limbs_thresh": non_negative_int(), "subset_score_thresh": non_negative_number(),
    # export
    "export_batch_size": positive_int(), "ckpt_file": input_file(), "file_name": output_path(),
    "file_format": choice("MINDIR", "AIR", "ONNX"), "export_stages": choice("final", "all"),
    # scripts/infer.py
    "input": Rule(lambda v: _path_ok(v, "file or dir"), "an image, a folder of images or a video "
                  "(a readable file or folder)", os.devnull, "PATH"),
    "output": output_path(), "max_frames": non_negative_int("an integer >= 0 (0: all)"),
}

#: Pairs that must be ordered: (smaller key, larger key).
ORDERED_PAIRS = (("min_box_size", "max_box_size"), ("min_scale", "max_scale"),
                 ("n_integ_points_thresh", "n_integ_points"))


def check_values(values, sources=None):
    """Check every value that has a rule; then the ordered pairs.

    Args:
        values: ``{key: value}`` after type conversion.
        sources: ``{key: where it was set}`` for the message (default: "configuration").

    Raises:
        ConfigError: one line naming where, the key, the value and the meaning.
    """
    sources = sources or {}
    for key, value in values.items():
        rule = RULES.get(key)
        if rule is not None and not rule.check(value):
            where = sources.get(key, "configuration")
            raise ConfigError(f"{where}: bad value {shorten(value)} for '{key}': expected {rule.meaning}")
    for low, high in ORDERED_PAIRS:
        if low in values and high in values and values[low] > values[high]:
            where = sources.get(low, sources.get(high, "configuration"))
            raise ConfigError(f"{where}: '{low}' ({shorten(values[low])}) must not exceed '{high}' "
                              f"({shorten(values[high])})")
