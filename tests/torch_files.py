"""Write PyTorch weight files without torch, for tests: state dicts of numpy arrays.

Writes what ``torch.save(OrderedDict of tensors)`` writes (checked by reading torch's own files in
tests/data/torch/ and these with the same reader): protocol-2 pickle opcodes emitted directly
(Python's pickler would need torch's functions importable to name them), each tensor
``torch._utils._rebuild_tensor_v2(persistent storage id, 0, shape, contiguous strides, False,
OrderedDict())``. Zip layout: ``<folder>/data.pkl``, ``<folder>/data/<key>``,
``<folder>/version``, ``<folder>/byteorder``; legacy layout: magic number, protocol 1001,
system facts, the object, the storage keys, then per storage an int64 count and the raw values.
Also builds the malicious files of the safety tests.
"""
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
                 np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
                 np.dtype("int32"): "IntStorage", np.dtype("uint8"): "ByteStorage"}


class PickleEmitter:
    """Protocol-2 pickle opcodes into a buffer."""

    def __init__(self):
        self.out = io.BytesIO()
        self.out.write(pickle.PROTO + b"\x02")

    def op(self, code, payload=b""):
        self.out.write(code + payload)

    def global_(self, module, name):
        self.op(pickle.GLOBAL, f"{module}\n{name}\n".encode())

    def string(self, text):
        data = text.encode("utf-8")
        self.op(pickle.BINUNICODE, struct.pack("<I", len(data)) + data)

    def integer(self, value):
        if -2 ** 31 <= value < 2 ** 31:
            self.op(pickle.BININT, struct.pack("<i", value))
        else:                                      # LONG1: any size (torch's large counts)
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.op(pickle.LONG1, bytes([len(data)]) + data)

    def int_tuple(self, values):
        self.op(pickle.MARK)
        for value in values:
            self.integer(int(value))
        self.op(pickle.TUPLE)

    def empty_ordered_dict(self):
        self.global_("collections", "OrderedDict")
        self.op(pickle.EMPTY_TUPLE + pickle.REDUCE)

    def tensor(self, key, array, legacy):
        """The tensor ``array`` over storage ``key`` (its whole storage, its strides)."""
        strides = [s // array.itemsize for s in array.strides] if array.size else [1] * array.ndim
        self.tensor_over(key, STORAGE_NAMES[array.dtype], array.size, array.shape, strides, legacy)

    def tensor_over(self, key, storage_type, numel, size, stride, legacy=False):
        """A ``_rebuild_tensor_v2`` of any size and stride over a storage of ``numel`` elements
        (also sizes and strides no tensor of the storage could have)."""
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.op(pickle.MARK)
        self.op(pickle.MARK)                       # the persistent id tuple
        self.string("storage")
        self.global_("torch", storage_type)
        self.string(key)
        self.string("cpu")
        self.integer(numel)
        if legacy:
            self.op(pickle.NONE)                   # no storage view
        self.op(pickle.TUPLE + pickle.BINPERSID)
        self.integer(0)                            # storage offset
        self.int_tuple(size)
        self.int_tuple(stride)
        self.op(pickle.NEWFALSE)                   # requires_grad
        self.empty_ordered_dict()                  # backward hooks
        self.op(pickle.TUPLE + pickle.REDUCE)

    def stop(self):
        self.op(pickle.STOP)
        return self.out.getvalue()


def state_pickle(state, legacy=False):
    """The pickle of ``OrderedDict(state)`` with storage keys '0', '1', ...; returns
    ``(bytes, [(key, contiguous array)])``."""
    emitter, storages = PickleEmitter(), []
    emitter.empty_ordered_dict()
    emitter.op(pickle.MARK)
    for index, (name, array) in enumerate(state.items()):
        array = np.array(array, order="C")     # (ascontiguousarray makes 0-d arrays 1-d)
        emitter.string(name)
        emitter.tensor(str(index), array, legacy)
        storages.append((str(index), array))
    emitter.op(pickle.SETITEMS)
    return emitter.stop(), storages


def zip_file_bytes(data_pkl, storages, folder="archive"):
    """A zip-layout weights file from a pickle and its ``[(key, array)]`` storages."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{folder}/data.pkl", data_pkl)
        archive.writestr(f"{folder}/byteorder", "little")
        for key, array in storages:
            archive.writestr(f"{folder}/data/{key}", array.astype(array.dtype.newbyteorder("<")).tobytes())
        archive.writestr(f"{folder}/version", "3\n")
    return buffer.getvalue()


def legacy_file_bytes(object_pickle, storages, header_pickles=None):
    """A legacy-layout weights file: the header pickles, the object, keys, raw storages."""
    header = header_pickles or [
        pickle.dumps(LEGACY_MAGIC, protocol=2), pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True,
                      "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)]
    parts = list(header) + [object_pickle, pickle.dumps([key for key, _ in storages], protocol=2)]
    for _, array in storages:
        parts.append(struct.pack("<q", array.size) + array.tobytes())
    return b"".join(parts)


def write_state_dict(path, state, layout="zip", folder="archive"):
    """Write ``state`` ({name: numpy array}) as ``torch.save`` would, in ``layout`` 'zip' or
    'legacy'. Returns the path."""
    data, storages = state_pickle(state, legacy=layout == "legacy")
    content = zip_file_bytes(data, storages, folder) if layout == "zip" else \
        legacy_file_bytes(data, storages)
    with open(path, "wb") as stream:
        stream.write(content)
    return path


class Payload:
    """An object whose unpickling calls ``function(*args)`` (what an attacker puts in a file)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def malicious_pickle(function, *args):
    """A state-dict-like pickle with one entry whose loading calls ``function(*args)``."""
    return pickle.dumps({"conv1_1.weight": Payload(function, *args)}, protocol=2)


def write_malicious(path, function, *args, layout="zip"):
    """A weights file in ``layout`` whose object pickle calls ``function(*args)`` when loaded
    by ``pickle`` (or ``torch.load(weights_only=False)``)."""
    data = malicious_pickle(function, *args)
    content = zip_file_bytes(data, [], "archive") if layout == "zip" else \
        legacy_file_bytes(data, [])
    with open(path, "wb") as stream:
        stream.write(content)
    return path
