"""Run one entry point with a configuration object that records which keys its code reads.

    python -m tests.config_reads OUT.json SCRIPT [--key value ...]

The script runs for real (its ``main(argv)``, in this process) with :class:`src.config.Config`
replaced by :class:`RecordingConfig`, which notes every configuration key read from it: an
attribute read (``cfg.lr``, ``getattr(cfg, "lr")``) or :meth:`~src.config.Config.is_explicit`.
Copies made by :meth:`~src.config.Config.replace` record into the same set. OUT.json receives
``{"status": <main's return value>, "reads": [keys...]}``. Used by tests/test_script_help.py.
"""
import json
import runpy
import sys
from pathlib import Path

import src.config as config_module

#: Attributes of a Config that are not configuration keys.
NOT_KEYS = {"config_path"}


class RecordingConfig(config_module.Config):
    """A :class:`src.config.Config` that records the keys read from it (class-wide)."""

    reads = set()

    def __getattribute__(self, name):
        values = object.__getattribute__(self, "__dict__")
        if not name.startswith("_") and name in values and name not in NOT_KEYS:
            RecordingConfig.reads.add(name)
        return object.__getattribute__(self, name)

    def is_explicit(self, key):
        RecordingConfig.reads.add(key)
        return super().is_explicit(key)


def run_recording(script, argv):
    """Run ``script``'s ``main(argv)`` with recording configurations: ``(status, keys read)``."""
    original = config_module.Config
    config_module.Config = RecordingConfig
    sys.path.insert(0, str(Path(script).resolve().parent))  # as `python SCRIPT` would
    RecordingConfig.reads = set()
    try:
        namespace = runpy.run_path(str(script), run_name="config_reads")
        try:
            status = namespace["main"](list(argv))
        except SystemExit as exc:
            status = exc.code
    finally:
        config_module.Config = original
    return status, sorted(RecordingConfig.reads)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    out, script, args = Path(argv[0]), argv[1], argv[2:]
    status, reads = run_recording(script, args)
    out.write_text(json.dumps({"status": status, "reads": reads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
