"""Safe YAML for configurations: PyYAML's safe loader with alias expansion bounded.

:func:`safe_yaml` is how src/config.py reads default_config.yaml, a ``--config_path`` file and
YAML values on the command line; a "billion laughs" document is refused before it is built.
"""
import yaml

from src.config_checks import ConfigError

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
