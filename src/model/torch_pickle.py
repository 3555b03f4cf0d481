"""The restricted unpickler of PyTorch weight files: plain data out, nothing of the file run.

:func:`restricted_unpickle` reads one pickle of a ``.pth`` file with :class:`_WeightsUnpickler`, which
resolves only the globals of :data:`ALLOWED_GLOBALS` (each to a stand-in here that builds plain
data) and refuses the opcodes that build arbitrary objects; tensors come out as
:class:`TensorRef` views of :class:`StorageRef` storages, which :mod:`src.model.torch_weights`
(the file layouts) resolves into numpy arrays. See that module's docstring for why this is
hand-written.
"""
import _compat_pickle
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from src.errors import OpenPoseError
from src.runtime.messages import first_line


class TorchWeightsError(OpenPoseError, ValueError):
    """A file that is not a readable PyTorch weights file (one-line message)."""


class UnsafeWeightsError(TorchWeightsError):
    """A weights file names a Python global (or opcode) that could run code; nothing was run."""


@dataclass(frozen=True)
class StorageType:
    """Stand-in for ``torch.<Name>Storage``: the element type of a storage."""

    name: str
    dtype: str      # numpy dtype, little-endian; "bfloat16" is read as uint16 and widened

    @property
    def itemsize(self):
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


STORAGE_TYPES = {name: StorageType(name, dtype) for name, dtype in (
    ("FloatStorage", "<f4"), ("DoubleStorage", "<f8"), ("HalfStorage", "<f2"),
    ("BFloat16Storage", "bfloat16"), ("LongStorage", "<i8"), ("IntStorage", "<i4"),
    ("ShortStorage", "<i2"), ("CharStorage", "i1"), ("ByteStorage", "u1"), ("BoolStorage", "?"))}


@dataclass(frozen=True)
class StorageRef:
    """A storage named by the pickle; its elements are read after the pickle (legacy layout)."""

    key: str
    type: StorageType
    numel: int
    view: tuple = None      # (root key, offset, size) of the legacy storage views


@dataclass(frozen=True)
class TensorRef:
    """A tensor named by the pickle: a strided view of a storage, resolved into an array."""

    storage: StorageRef
    offset: int
    size: tuple
    stride: tuple


def _int_tuple(value, what):
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise TorchWeightsError(f"{what} is {value!r}, expected a tuple of integers")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """Stand-in for ``torch._utils._rebuild_tensor`` / ``_rebuild_tensor_v2``: records the view.

    The ignored trailing arguments are ``requires_grad``, the backward hooks and the metadata.
    """
    if not isinstance(storage, StorageRef):
        raise TorchWeightsError(f"tensor storage is a {type(storage).__name__}, not a storage")
    if type(storage_offset) is not int:
        raise TorchWeightsError(f"tensor offset is {storage_offset!r}, expected an integer")
    size, stride = _int_tuple(size, "tensor size"), _int_tuple(stride, "tensor stride")
    if len(size) != len(stride):
        raise TorchWeightsError(f"tensor size {size} and stride {stride} differ in length")
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    """Stand-in for ``torch._utils._rebuild_parameter`` (and ``_with_state``): the tensor."""
    if not isinstance(data, TensorRef):
        raise TorchWeightsError(f"parameter data is a {type(data).__name__}, not a tensor")
    return data


def _encode_latin1(text, encoding="latin1"):
    """Stand-in for ``_codecs.encode``, which protocol-2 pickles use for ``bytes`` values."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TorchWeightsError(f"_codecs.encode with {type(text).__name__} / {encoding!r}")
    return text.encode("latin1")


#: The only globals a weights file may name, each mapped to its stand-in.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("_codecs", "encode"): _encode_latin1,
    **{("torch", name): storage_type for name, storage_type in STORAGE_TYPES.items()},
}

_REFUSED_OPCODES = {pickle.INST: "INST", pickle.OBJ: "OBJ", pickle.NEWOBJ: "NEWOBJ",
                    pickle.NEWOBJ_EX: "NEWOBJ_EX", pickle.EXT1: "EXT1", pickle.EXT2: "EXT2",
                    pickle.EXT4: "EXT4"}


class _WeightsUnpickler(pickle._Unpickler):
    """The standard pure-Python unpickler, restricted to tensor files (see the module docstring).

    The pure-Python class is used (not the C one) because its opcode table can be narrowed.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, stream, path, storages):
        super().__init__(stream)
        self._path = path
        self._storages = storages      # {key: StorageRef}, filled as the pickle names them

    def find_class(self, module, name):
        if self.proto < 3 and self.fix_imports:    # Python 2 names, as pickle itself maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            else:
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise UnsafeWeightsError(
                f"{self._path}: refuses to load '{module}.{name}' from a weights file (a weights "
                "file needs only tensors and dictionaries; this name could run code, so the file "
                "may be malicious; nothing was run)")
        return target

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise TorchWeightsError(f"unknown persistent id {str(pid)[:80]}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, StorageType):
            raise TorchWeightsError(f"storage type {storage_type!r} is not a torch storage type")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise TorchWeightsError(f"bad storage id {str(pid)[:80]}")
        view = pid[5] if len(pid) == 6 else None
        root = self._storages.setdefault(key, StorageRef(key, storage_type, numel))
        if root.type != storage_type:
            raise TorchWeightsError(f"storage '{key}' is named with two types")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and type(view[1]) is int and type(view[2]) is int):
            raise TorchWeightsError(f"bad storage view {str(view)[:80]}")
        view_key, offset, size = view
        if offset < 0 or size < 0 or offset + size > numel:
            raise TorchWeightsError(f"storage view '{view_key}' lies outside storage '{key}'")
        return StorageRef(key, storage_type, numel, (view_key, offset, size))

    def _build_dicts_only(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) not in (dict, OrderedDict) or not isinstance(state, (dict, tuple)):
            raise UnsafeWeightsError(
                f"{self._path}: refuses pickle opcode BUILD on a {type(inst).__name__} in a weights "
                "file (only a state dict's metadata is accepted; nothing was run)")
        # a state dict's ``_metadata`` attribute (module versions): not needed, dropped


def _refusal(opcode_name):
    def refuse(self):
        raise UnsafeWeightsError(
            f"{self._path}: refuses pickle opcode {opcode_name} in a weights file (it builds "
            "arbitrary objects and tensor files never use it; nothing was run)")
    return refuse


for _opcode, _opcode_name in _REFUSED_OPCODES.items():
    _WeightsUnpickler.dispatch[_opcode[0]] = _refusal(_opcode_name)
_WeightsUnpickler.dispatch[pickle.BUILD[0]] = _WeightsUnpickler._build_dicts_only


def restricted_unpickle(stream, path, storages):
    """One restricted pickle from ``stream``; errors of the pickle machinery as one line."""
    try:
        return _WeightsUnpickler(stream, path, storages).load()
    except TorchWeightsError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise TorchWeightsError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, RecursionError, MemoryError) as exc:
        raise TorchWeightsError(f"{path}: corrupt or truncated pickle in a PyTorch weights file "
                                f"({type(exc).__name__}: {first_line(exc, 120)})") from None
