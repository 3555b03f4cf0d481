"""src/parallel/collectives.py: packing pickled objects into int32 words for an AllGather (the
exchanges themselves run in tests/test_distributed.py's real launches)."""
import pickle

import numpy as np
import pytest

from src.parallel import collectives


def test_pack_unpack_payloads():
    objs = [{"a": 1}, list(range(21)), "x" * 13, np.arange(5, dtype=np.float32)]
    payloads = [pickle.dumps(o) for o in objs]
    width = max(map(len, payloads))
    words = [collectives.pack_payload(p, width) for p in payloads]
    assert {w.dtype for w in words} == {np.dtype(np.int32)}
    assert {w.size for w in words} == {-(-width // 4)}
    out = collectives.unpack_payloads(np.concatenate(words), [len(p) for p in payloads])
    assert out[:3] == objs[:3]
    np.testing.assert_array_equal(out[3], objs[3])
    with pytest.raises(ValueError, match="longer"):
        collectives.pack_payload(b"12345", 4)
