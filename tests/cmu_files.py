"""CMU's network as a random-weight caffemodel, converted by the CLI (the ``cmu_model``
fixture of tests/conftest.py), and CMU-ordered maps put in our channel order. The caffemodel
(~210 MB) and its checkpoint are written once per test session.
"""
import subprocess
import sys
from types import SimpleNamespace

from src.model.caffe_import import heatmap_channel_map, paf_channel_map
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


def maps_from_cmu(heatmaps, pafs, channel_axis=0):
    """CMU-ordered heatmaps (19) and PAFs (38) in our channel order (what the converter does to
    the weights of the last convs, applied to maps)."""
    return (heatmap_channel_map().apply(heatmaps, channel_axis),
            paf_channel_map().apply(pafs, channel_axis))
