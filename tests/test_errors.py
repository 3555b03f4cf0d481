"""Every error class of src/ derives from src.errors.OpenPoseError, which the entry scripts catch."""
import importlib
import inspect
import pkgutil

import src
from src.errors import OpenPoseError

# Signals a stop, not a failure: train.py and gen_ignore_mask print their own line and exit
# 130/143 (SIGTERM is raised like Ctrl-C, as a KeyboardInterrupt, so writes clean up alike).
NOT_FAILURES = {"TrainInterrupted", "Terminated"}


def _src_modules():
    for info in pkgutil.walk_packages(src.__path__, "src."):
        yield importlib.import_module(info.name)


def test_every_error_class_has_the_one_base():
    found, outside = [], []
    for module in _src_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
                continue
            found.append(name)
            if name not in NOT_FAILURES and not issubclass(cls, OpenPoseError):
                outside.append(f"{module.__name__}.{name}")
    assert len(found) >= 10, f"only {found} found: is the walk of src/ broken?"
    assert not outside, f"error classes not derived from OpenPoseError: {outside}"


def test_entry_scripts_catch_the_base():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    for script in ("train.py", "eval.py", "export.py", "scripts/infer.py"):
        text = (root / script).read_text()
        assert "except OpenPoseError as exc:" in text, f"{script} does not catch OpenPoseError"
