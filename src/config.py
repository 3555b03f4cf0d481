"""Configuration: default_config.yaml, an optional YAML override file and `--key value` flags.

`parse_config` returns a plain :class:`Config` (attribute access, no global state) or raises
:class:`ConfigError` with a one-line message; `load_config` is the command-line front end that
turns such an error into a non-zero exit; `default_config` gives default_config.yaml's values
(the one place defaults are written) to code and tests.

Each entry point declares the keys it reads in a :class:`Command` (grouped, with its required
keys and examples); its --help lists those keys only, with the description written as the key's
end-of-line comment in default_config.yaml (:func:`read_descriptions`) and the values it accepts
from :data:`src.config_checks.RULES`.
"""
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from src.config_checks import RULES, ConfigError, check_values, parse_int_list
from src.config_yaml import safe_yaml
from src.runtime.messages import shorten

__all__ = ["CHECKPOINT_NETWORK_DEFAULTS", "CHECKPOINT_NETWORK_NOTE", "DEFAULT_CONFIG_PATH",
           "HELP_GROUPS", "INFERENCE_KEYS", "NETWORK_KEYS", "Command", "Config", "ConfigError",
           "argparse_help", "coerce_value", "default_config", "describe_key", "format_help",
           "load_config", "parse_config", "parse_int_list", "read_descriptions", "read_yaml"]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "default_config.yaml"
_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Config:
    """Attribute bag of configuration values (one attribute per key).

    ``explicit`` names the keys the user set (on the command line or in a ``--config_path``
    file), as opposed to defaults of default_config.yaml; see :meth:`is_explicit`.
    """

    def __init__(self, values, explicit=()):
        self.__dict__.update(values)
        self.__dict__["_explicit"] = frozenset(explicit)

    def to_dict(self):
        """Return a shallow copy of all values as a dict."""
        return {key: value for key, value in self.__dict__.items() if key != "_explicit"}

    def is_explicit(self, key):
        """True when ``key`` was set by the user rather than left at its default."""
        return key in self._explicit

    def replace(self, **changes):
        """Return a copy with some values changed (explicitness kept)."""
        values = self.to_dict()
        values.update(changes)
        return Config(values, self._explicit)

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in sorted(self.to_dict().items()))
        return f"Config({items})"


def read_yaml(path):
    """Read a config YAML's values (its first document).

    A file in the reference's layout (values, help texts, allowed values as three YAML
    documents) is accepted; only its values are used.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            documents = safe_yaml(stream, str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (binary content); expected a YAML config") \
            from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if len(documents) > 3 or not all(d is None or isinstance(d, dict) for d in documents):
        raise ConfigError(f"{path}: expected a YAML mapping of keys to values")
    return dict(documents[0] or {}) if documents else {}


def _end_of_line_comment(text):
    """The ``# comment`` ending a YAML value's line (outside quotes), or ''."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[index + 1:].strip()
    return ""


def read_descriptions(path=DEFAULT_CONFIG_PATH):
    """``{key: one-line description}`` from the end-of-line comments of a config YAML's keys.

    default_config.yaml describes each key in the comment ending its line (``key: value  #
    what it is``); this is the one place descriptions are written, and --help shows them.
    """
    descriptions = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("---"):
                break
            match = _KEY_LINE.match(line)
            if match:
                descriptions[match.group(1)] = _end_of_line_comment(match.group(2))
    return descriptions


def coerce_value(key, value, default, source):
    """Convert ``value`` (text from the command line or a YAML value) to the type of ``default``.

    Raises:
        ConfigError: naming the key, the value and the expected type.
    """
    def fail(kind):
        raise ConfigError(f"{source}: bad value {shorten(value)} for '{key}': expected {kind}")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        fail("true or false")
    if isinstance(default, (int, float)):
        # an int key takes ints only; a float key takes ints too (as floats); neither takes a bool
        kind, accepted, what = (int, (int,), "an integer") if isinstance(default, int) else \
            (float, (int, float), "a number")
        if isinstance(value, bool):
            fail(what)
        if isinstance(value, accepted):
            return kind(value)
        try:
            return kind(str(value).strip())
        except ValueError:
            fail(what)
    if isinstance(default, list):
        if isinstance(value, str):
            try:
                documents = safe_yaml(value, f"{source}: '{key}'")
                value = documents[0] if documents else None
            except yaml.YAMLError:
                fail("a YAML list such as [0.5, 1]")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            fail("a YAML list such as [0.5, 1]")
        return value
    if default is None:
        return value
    if isinstance(value, (dict, list)):
        fail("a string")
    return str(value)


def _split_argv(argv):
    """Yield ``(key, value_text)`` pairs from ``--key value`` / ``--key=value`` arguments."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"command line: unexpected argument {shorten(arg)} (use --key value)")
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            index += 1
        else:
            if index + 1 >= len(argv):
                raise ConfigError(f"command line: --{key} needs a value")
            value = argv[index + 1]
            index += 2
        yield key, value


def parse_config(argv=None, config_path=None, overrides=None):
    """Build a :class:`Config` from the defaults, a config file and command-line flags.

    Args:
        argv: command-line arguments (without the program name); ``--config_path FILE`` among
            them selects the base YAML. None means no arguments.
        config_path: base YAML when argv names none (default: the repo's default_config.yaml).
        overrides: dict of values applied after the file (typed like the flags).

    Raises:
        ConfigError: unknown key, bad value (of the wrong type, or against its meaning: see
            :mod:`src.config_checks`), missing, unreadable or broken file (one-line message).
    """
    argv = list(argv or [])
    pairs = list(_split_argv(argv))
    for key, value in pairs:
        if key == "config_path":
            config_path = value
    defaults = read_yaml(DEFAULT_CONFIG_PATH)    # every key of every script (one source)
    values = dict(defaults)
    sources = {}            # key -> where the user set it (its keys are the explicit ones)
    if config_path is not None and Path(config_path).resolve() != DEFAULT_CONFIG_PATH:
        file_values = read_yaml(config_path)
        for key, value in file_values.items():
            if key not in defaults:
                raise ConfigError(f"{config_path}: unknown key {shorten(key)}")
            values[key] = coerce_value(key, value, defaults[key], str(config_path))
            sources[key] = str(config_path)
    for key, value in (overrides or {}).items():
        if key not in defaults:
            raise ConfigError(f"overrides: unknown key {shorten(key)}")
        values[key] = coerce_value(key, value, defaults[key], "overrides")
    for key, value in pairs:
        if key == "config_path":
            continue
        if key not in defaults:
            raise ConfigError(f"command line: unknown key {shorten('--' + key)}")
        values[key] = coerce_value(key, value, defaults[key], "command line")
        sources[key] = "command line"
    check_values(values, sources)
    values["config_path"] = str(config_path or DEFAULT_CONFIG_PATH)
    return Config(values, sources)


def default_config(**overrides):
    """default_config.yaml's values as a :class:`Config`, with some changed.

    Args:
        overrides: ``key=value`` changes, typed and checked like command-line values; they do
            not count as set by the user (:meth:`Config.is_explicit` stays False).

    Raises:
        ConfigError: an unknown key or a bad value.
    """
    return parse_config([], overrides=overrides)


#: The groups a script's --help shows, in this order.
HELP_GROUPS = ("inputs", "network", "training", "evaluation", "outputs", "device")
#: Keys read wherever images go through the network and the decoder (eval.py, scripts/infer.py,
#: validation while training: src/evaluate/inference.py and src/evaluate/decoding/params.py).
INFERENCE_KEYS = ("inference_img_size", "multi_scale", "inference_scales", "flip",
                  "gaussian_sigma", "heatmap_peak_thresh", "n_integ_points", "n_integ_points_thresh",
                  "inner_product_thresh", "limb_length_ratio", "length_penalty_value",
                  "n_subset_limbs_thresh", "subset_score_thresh")
#: Keys that may contradict the network a checkpoint records (src/model/network_spec.py).
NETWORK_KEYS = ("vgg_with_bn", "width_mult", "num_stages")
#: The --help note of NETWORK_KEYS for the scripts that load a checkpoint.
CHECKPOINT_NETWORK_NOTE = ("the network built is the one the checkpoint records; given here, a "
                           "value only checks it (a contradicting one stops)")
#: What --help shows as the default of NETWORK_KEYS for those scripts.
CHECKPOINT_NETWORK_DEFAULTS = {key: "the checkpoint's" for key in NETWORK_KEYS}
_HELP_WIDTH = 100
_KEY_COLUMN = 30


@dataclass(frozen=True)
class Command:
    """What one entry point reads from the configuration, and its --help.

    Attributes:
        prog: the script's name as typed ("eval.py", "scripts/infer.py").
        usage: the script's usage text (its module docstring), shown first.
        groups: ``{group: (key, ...)}`` with groups from :data:`HELP_GROUPS`: every
            configuration key the script's code reads, and no other (tests/test_script_help.py
            runs each script with a recording configuration to check it).
        required: keys the script cannot run without (marked in --help).
        examples: command lines shown at the end of --help.
        notes: ``{group: one line}`` shown under a group's title.
        shown_defaults: ``{key: text}`` shown as the default instead of default_config.yaml's
            value, where the script takes the value from elsewhere (a checkpoint's record).
    """

    prog: str
    usage: str
    groups: dict
    required: tuple = ()
    examples: tuple = ()
    notes: dict = field(default_factory=dict)
    shown_defaults: dict = field(default_factory=dict)

    @property
    def keys(self):
        """Every key the script reads, in --help order."""
        return tuple(key for group in HELP_GROUPS for key in self.groups.get(group, ()))


def _shown(value):
    """A default as it would be typed on the command line."""
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def describe_key(key, default, description, required=False):
    """One key's --help entry: ``--key METAVAR  description; allowed values; default``."""
    rule = RULES.get(key)
    metavar = rule.metavar if rule is not None else "VALUE"
    parts = [("(required) " if required else "") + (description or "(no description)")]
    if rule is not None and not rule.allowed and \
            rule.metavar.split("|")[0] not in ("FILE", "DIR", "PATH", "True"):
        parts.append(rule.meaning)
    if not required:
        parts.append(f"default: {_shown(default)}" if default not in ("", None) else "default: none")
    head = f"  --{key} {metavar}"
    text = "; ".join(parts)
    indent = " " * _KEY_COLUMN
    if len(head) + 2 > _KEY_COLUMN:
        return head + "\n" + textwrap.fill(text, _HELP_WIDTH, initial_indent=indent,
                                           subsequent_indent=indent, break_on_hyphens=False)
    return textwrap.fill(text, _HELP_WIDTH, initial_indent=head.ljust(_KEY_COLUMN),
                         subsequent_indent=indent, break_on_hyphens=False)


def argparse_help(key):
    """--help text of configuration key ``key`` taken as an option by an argparse script
    (scripts/gen_ignore_mask.py): its description, the values it accepts and its default, from the
    same places as the other scripts' --help."""
    rule = RULES.get(key)
    parts = [read_descriptions().get(key, "") or "(no description)"]
    if rule is not None and rule.metavar not in ("FILE", "DIR", "PATH"):
        parts.append(rule.meaning)
    parts.append(f"default: {_shown(read_yaml(DEFAULT_CONFIG_PATH)[key])}")
    return "; ".join(parts).replace("%", "%%")


def format_help(prog, command=None):
    """Return the --help text of ``command`` (a :class:`Command`): its usage text, then the keys
    it reads by group, each with its description (default_config.yaml's comment), the values it
    accepts (:data:`src.config_checks.RULES`) and its default, then examples.

    Without a command every key of default_config.yaml is listed.
    """
    defaults = read_yaml(DEFAULT_CONFIG_PATH)
    descriptions = read_descriptions()
    if command is None:
        command = Command(prog, f"usage: {prog} [--config_path FILE] [--key value ...]",
                          {"inputs": tuple(defaults)})
    usage = textwrap.dedent(command.usage).strip().replace("``", "")
    lines = [usage, "",
             "Keys take a value: --key value or --key=value (True/False for switches);",
             "--config_path FILE reads values from a YAML file shaped like default_config.yaml."]
    for group in HELP_GROUPS:
        keys = command.groups.get(group, ())
        if keys:
            lines += ["", f"{group}:"]
            if group in command.notes:
                lines += textwrap.wrap(command.notes[group], _HELP_WIDTH, initial_indent="  ",
                                       subsequent_indent="  ")
            lines += [describe_key(key, command.shown_defaults.get(key, defaults.get(key)),
                                   descriptions.get(key, ""), key in command.required)
                      for key in keys]
    if command.examples:
        lines += ["", "examples:"] + [f"  {example}" for example in command.examples]
    return "\n".join(lines)


def load_config(argv=None, prog=None, command=None):
    """Command-line front end of :func:`parse_config`.

    Prints help (``command``'s keys, see :func:`format_help`) and exits 0 on -h/--help; prints
    ``error: <message>`` and exits 2 on a bad configuration. A flag of another script's (a key
    ``command`` does not read) is accepted, with one ``note:`` line saying it is not used.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or (command.prog if command is not None else Path(sys.argv[0]).name)
    if "-h" in argv or "--help" in argv:
        print(format_help(prog, command))
        raise SystemExit(0)
    try:
        cfg = parse_config(argv)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if command is not None:
        unused = [f"--{key}" for key, _ in _split_argv(argv)
                  if key != "config_path" and key not in command.keys]
        if unused:
            print(f"{prog}: note: {', '.join(unused)} not used by {prog} (see --help)",
                  file=sys.stderr, flush=True)
    return cfg
