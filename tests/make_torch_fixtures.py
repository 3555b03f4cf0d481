"""Write the PyTorch fixture files of tests/data/torch/ with torch itself (not run by the suite).

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    /tmp/torchvenv/bin/python tests/make_torch_fixtures.py

torch is never a requirement of this repository: the files are committed, and
tests/test_torch_weights.py checks that the torch-free reader (src/model/torch_weights.py) returns
the arrays torch saved, which this script also writes to ``expected.npz`` (names with ``/`` for
nesting). Made with torch 2.13.0 (CPU wheel, Python 3.11).
"""
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "data" / "torch"


def plain_state():
    """A state dict with the cases the reader must handle, all small."""
    torch.manual_seed(19)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 2, 1))
    net(torch.randn(2, 3, 6, 6))                   # BatchNorm running stats and counter move
    state = net.state_dict()                       # an OrderedDict with _metadata
    shared = torch.arange(30, dtype=torch.float32) * 0.5
    state["shared_a"] = shared[3:15].view(3, 4)    # two tensors on one storage, with an offset
    state["shared_b"] = shared.view(5, 6)[1:, ::2]  # a strided view of the same storage
    state["transposed"] = torch.randn(3, 5).t()     # non-contiguous (strides (1, 5))
    state["half"] = torch.randn(2, 3).half()
    state["double"] = torch.randn(4, dtype=torch.float64)
    state["bfloat16"] = torch.randn(3).bfloat16()
    state["int32"] = torch.tensor([[1, -2], [3, 2 ** 31 - 1]], dtype=torch.int32)
    state["uint8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    state["bool"] = torch.tensor([True, False, True])
    state["scalar"] = torch.tensor(2.5)
    state["empty"] = torch.zeros(0, 3)
    state["parameter"] = torch.nn.Parameter(torch.randn(2, 2))
    return state


def nested_state():
    """What training scripts save: the weights under 'state_dict', names with 'module.'."""
    torch.manual_seed(20)
    inner = OrderedDict((f"module.{k}", v) for k, v in
                        torch.nn.Conv2d(3, 2, 3).state_dict().items())
    return {"epoch": 7, "arch": "tiny", "state_dict": inner, "best": 0.25}


def expected_arrays(state, prefix=""):
    arrays = {}
    for key, value in state.items():
        if isinstance(value, dict):
            arrays.update(expected_arrays(value, f"{prefix}{key}/"))
        elif isinstance(value, torch.Tensor):
            value = value.detach()
            if value.dtype == torch.bfloat16:
                value = value.float()           # numpy has no bfloat16; the reader widens it
            arrays[prefix + key] = value.numpy().copy()
    return arrays


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    states = {"plain": plain_state(), "nested": nested_state()}
    expected = {}
    for name, state in states.items():
        torch.save(state, OUT / f"{name}_zip.pth")
        torch.save(state, OUT / f"{name}_legacy.pth", _use_new_zipfile_serialization=False)
        expected.update(expected_arrays(state, f"{name}/"))
    # pickle protocol 4 (frames) in the legacy layout
    torch.save(states["plain"], OUT / "plain_legacy_protocol4.pth",
               _use_new_zipfile_serialization=False, pickle_protocol=4)
    np.savez(OUT / "expected.npz", **expected)
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")
    print(f"torch {torch.__version__}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
