"""CMU's network as a random-weight caffemodel, converted by the CLI (the ``cmu_model``
fixture of tests/conftest.py). The caffemodel (~210 MB) and its checkpoint are written once per
test session.
"""
import subprocess
import sys
from types import SimpleNamespace

from tests.conftest import REPO_ROOT

#: The input size the deploy prototxt declares (OpenCV reshapes to each image anyway).
PROTOTXT_SIZE = (64, 80)


def make_cmu_model(tmp_path_factory):
    """``SimpleNamespace(prototxt, caffemodel, ckpt, convert_stdout)``."""
    from src.model.cmu_synthetic import write_cmu_model
    directory = tmp_path_factory.mktemp("cmu")
    prototxt, caffemodel, _ = write_cmu_model(directory, *PROTOTXT_SIZE, seed=0)
    ckpt = directory / "cmu_converted.ckpt"
    proc = subprocess.run([sys.executable, "scripts/convert_cmu_caffemodel.py", "--caffemodel",
                           caffemodel, "--out", str(ckpt)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return SimpleNamespace(prototxt=prototxt, caffemodel=caffemodel, ckpt=str(ckpt),
                           convert_stdout=proc.stdout)
