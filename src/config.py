"""Configuration: default_config.yaml, an optional YAML override file and `--key value` flags.

`parse_config` returns a plain :class:`Config` (attribute access, no global state) or raises
:class:`ConfigError` with a one-line message; `load_config` is the command-line front end that
turns such an error into a non-zero exit; `default_config` gives default_config.yaml's values
(the one place defaults are written) to code and tests.
"""
import sys
from pathlib import Path

import yaml

from src.config_checks import ConfigError, check_values, parse_int_list
from src.runtime.messages import shorten

__all__ = ["DEFAULT_CONFIG_PATH", "Config", "ConfigError", "coerce_value", "default_config",
           "format_help", "load_config", "parse_config", "parse_int_list", "read_yaml"]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "default_config.yaml"
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


#: Most nodes a configuration document may hold once its aliases are expanded: default_config.yaml
#: has a few hundred; a "billion laughs" file of nested aliases has billions (a 460-byte one
#: kept eval.py busy for over 40 s and 0.8 GB before this bound).
MAX_YAML_NODES = 10_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a document whose aliases expand past MAX_YAML_NODES
    nodes, or refer to themselves, before anything is constructed from it."""

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            expanded_size(node)
        return node


def expanded_size(root, limit=MAX_YAML_NODES):
    """Nodes of a composed YAML document with every alias expanded (each shared node counted
    as often as it is referred to), computed over the distinct nodes only.

    Raises:
        ConfigError: more than ``limit`` nodes, or an alias inside its own anchor.
    """
    sizes, active = {}, set()

    def size(node):
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError("an alias refers to the node that contains it (a recursive YAML "
                              "structure); write the values out")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > limit:
            raise ConfigError(f"its aliases (*name) expand to more than {limit} values; a "
                              "configuration needs far fewer: write the values out")
        sizes[key] = total
        return total

    return size(root)


def safe_yaml(text_or_stream, source="value"):
    """All documents of YAML ``text_or_stream``, loaded safely with alias expansion bounded
    (:data:`MAX_YAML_NODES`).

    Raises:
        ConfigError: (from :func:`expanded_size`) prefixed with ``source``; yaml.YAMLError.
    """
    loader = _BoundedLoader(text_or_stream)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    finally:
        loader.dispose()


def read_yaml(path):
    """Read a config YAML: ``(values, help_texts, choices)``; the last two documents are optional."""
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
    documents += [None] * (3 - len(documents))
    if len(documents) > 3 or not all(d is None or isinstance(d, dict) for d in documents):
        raise ConfigError(f"{path}: expected up to 3 YAML mappings (values, help, choices)")
    values, helps, choices = (d or {} for d in documents)
    return values, helps, choices


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


def _check_choice(key, value, choices, source):
    allowed = choices.get(key)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{source}: bad value {shorten(value)} for '{key}': expected one of {allowed}")


def parse_config(argv=None, config_path=None, extra_defaults=None, overrides=None):
    """Build a :class:`Config` from the defaults, a config file and command-line flags.

    Args:
        argv: command-line arguments (without the program name); ``--config_path FILE`` among
            them selects the base YAML. None means no arguments.
        config_path: base YAML when argv names none (default: the repo's default_config.yaml).
        extra_defaults: dict of script-specific keys and defaults accepted besides the YAML's.
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
    default_values, helps, choices = read_yaml(DEFAULT_CONFIG_PATH)
    defaults = dict(default_values)
    defaults.update(extra_defaults or {})
    values = dict(defaults)
    sources = {}            # key -> where the user set it (its keys are the explicit ones)
    if config_path is not None and Path(config_path).resolve() != DEFAULT_CONFIG_PATH:
        file_values, _, _ = read_yaml(config_path)
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
    for key, value in values.items():
        _check_choice(key, value, choices, sources.get(key, str(config_path or DEFAULT_CONFIG_PATH)))
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


def format_help(prog, extra_defaults=None):
    """Return the --help text: every key with its default and help line."""
    defaults, helps, choices = read_yaml(DEFAULT_CONFIG_PATH)
    defaults = dict(defaults)
    defaults.update(extra_defaults or {})
    lines = [f"usage: {prog} [--config_path FILE] [--key value ...]", "", "keys (default):"]
    for key, value in defaults.items():
        text = helps.get(key, "")
        allowed = f" one of {choices[key]}." if key in choices else ""
        lines.append(f"  --{key} ({value!r}) {text}{allowed}".rstrip())
    return "\n".join(lines)


def load_config(argv=None, prog=None, extra_defaults=None):
    """Command-line front end of :func:`parse_config`.

    Prints help and exits 0 on -h/--help; prints ``error: <message>`` and exits 2 on a bad
    configuration.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or Path(sys.argv[0]).name
    if "-h" in argv or "--help" in argv:
        print(format_help(prog, extra_defaults))
        raise SystemExit(0)
    try:
        return parse_config(argv, extra_defaults=extra_defaults)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
