"""Shared fixtures: the ../shared folder and a CPU MindSpore context."""
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_decode_params():
    """default_config.yaml's decoder parameters, as a caller passes them to the decoder."""
    from src.config import default_config
    from src.evaluate.decoder import DecodeParams
    return DecodeParams.from_config(default_config())


def shared_path():
    """Location of the read-only shared folder (env OPENPOSE_SHARED, else ../shared)."""
    return Path(os.environ.get("OPENPOSE_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    path = shared_path()
    if not path.is_dir():
        pytest.skip(f"shared folder not found at {path} (set OPENPOSE_SHARED)")
    return path


#: Outputs of the reference code (numbers only), copied from ../shared/golden with their README
#: so that the parity tests run in every clone.
GOLDEN_DIR = REPO_ROOT / "tests" / "data" / "golden"


@pytest.fixture(scope="session")
def golden_dir():
    assert GOLDEN_DIR.is_dir(), f"golden outputs missing from the repository: {GOLDEN_DIR}"
    return GOLDEN_DIR


def load_golden(golden_dir, name):
    """The arrays of golden file ``name`` (e.g. "train.npz") as a dict."""
    import numpy as np
    path = golden_dir / name
    assert path.is_file(), f"golden file missing from the repository: {path}"
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def coco_sample_dir(shared_dir):
    path = shared_dir / "data" / "coco_sample"
    if not (path / "person_keypoints_sample.json").is_file():
        pytest.skip(f"COCO sample not found at {path}")
    return path


@pytest.fixture(scope="session")
def cmu_model(tmp_path_factory):
    """CMU's network as a random-weight caffemodel and its converted checkpoint
    (:func:`tests.cmu_files.make_cmu_model`), written once per session."""
    from tests.cmu_files import make_cmu_model
    return make_cmu_model(tmp_path_factory)


@pytest.fixture(scope="session")
def ms_cpu():
    """MindSpore in graph mode on the CPU, seeded."""
    from src.runtime.context import setup_context
    setup_context("CPU", mode="graph", seed=1)
    return "CPU"


def relaunch_reason(code, log):
    """Why a failed launch is worth launching again, or None.

    Two MindSpore defects on CPU, neither about the code under test: 2.0 cannot form the
    cluster under heavy load (src.compat.is_cluster_formation_failure), and a rank now and then
    dies of a segmentation fault in MindSpore's exit after the job's work is done (2.0, and once
    on 2.8.0 under mpirun on an overloaded machine: every rank had logged "finished").
    """
    from src.compat import is_cluster_formation_failure
    if code == 0:
        return None
    if is_cluster_formation_failure(log):
        return "MindSpore could not form the cluster"
    crashed = "Segmentation fault" in log and ("libmindspore_backend" in log or "exited on signal 11" in log)
    if crashed:
        # a crash that repeats is still a failure: a launch is relaunched at most twice
        return "a rank crashed with a segmentation fault (seen in MindSpore's exit after the work)"
    return None


@pytest.fixture
def onnx_any_size():
    """Skips (with compat's one-line reason) where exported ONNX files take only the traced
    size, for tests that run one at other sizes."""
    from src.compat import onnx_fixed_size_reason
    reason = onnx_fixed_size_reason()
    if reason:
        pytest.skip(reason)


def pytest_sessionfinish(session, exitstatus):
    """Remember pytest's exit status for :func:`pytest_unconfigure`."""
    session.config.openpose_exitstatus = int(exitstatus)


def pytest_unconfigure(config):
    """End the process with pytest's exit status once pytest is done (summary printed).

    MindSpore 2.0 can hang in its own clean-up at interpreter exit: once in CI's 2.0 leg the
    summary line was printed and the process then slept forever with two threads. Nothing is
    left to do after pytest_unconfigure, so the interpreter's exit handlers are skipped.
    """
    status = getattr(config, "openpose_exitstatus", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
