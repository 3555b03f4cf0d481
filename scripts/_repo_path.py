"""Puts the repository root on ``sys.path``: the one way the entry scripts find ``src``.

A script of this folder run as a file (``python scripts/infer.py``) has its own folder, not the
repository root, first on the path; its first import after the standard library's is
``from _repo_path import REPO_ROOT``, found beside it, and from then on ``src`` is importable.
The top-level eval.py, train.py and export.py sit in the root and need nothing; tests find this
module through pytest.ini's ``pythonpath``.
"""
import sys
from pathlib import Path

#: The repository's root folder (the one holding ``src/``).
REPO_ROOT = Path(__file__).resolve().parents[1]

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
