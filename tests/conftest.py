"""Shared fixtures: the ../shared folder and a CPU MindSpore context."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path():
    """Location of the read-only shared folder (env OPENPOSE_SHARED, else ../shared)."""
    return Path(os.environ.get("OPENPOSE_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    path = shared_path()
    if not path.is_dir():
        pytest.skip(f"shared folder not found at {path} (set OPENPOSE_SHARED)")
    return path


@pytest.fixture(scope="session")
def golden_dir(shared_dir):
    path = shared_dir / "golden"
    if not path.is_dir():
        pytest.skip(f"golden outputs not found at {path}")
    return path


def load_golden(golden_dir, name):
    """The arrays of golden file ``name`` (e.g. "train.npz") as a dict; skips when it is absent."""
    import numpy as np
    path = golden_dir / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def coco_sample_dir(shared_dir):
    path = shared_dir / "data" / "coco_sample"
    if not (path / "person_keypoints_sample.json").is_file():
        pytest.skip(f"COCO sample not found at {path}")
    return path


@pytest.fixture(scope="session")
def ms_cpu():
    """MindSpore in graph mode on the CPU, seeded."""
    from src.context import setup_context
    setup_context("CPU", mode="graph", seed=1)
    return "CPU"
