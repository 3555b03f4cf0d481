"""Read PyTorch weight files (``torch.save`` of a state dict) without torch, running nothing.

A ``.pth`` file is a Python pickle plus raw tensor storages, in one of two layouts:

* zip (PyTorch >= 1.6): a zip archive with one folder (its name varies: ``archive``, the file's
  stem, ...) holding ``data.pkl`` (the pickled object), ``data/<key>`` (one raw storage per key)
  and optional ``byteorder`` (``little`` / ``big``, little when absent);
* legacy (``_use_new_zipfile_serialization=False``, files written before PyTorch 1.6): five
  consecutive pickles, the magic number ``0x1950a86a20f9469cfc6c``, the protocol version 1001, a
  dict of system facts (``little_endian``, type sizes), the object, and the list of storage
  keys; then, per key in that order, an int64 element count and the raw elements.

Inside the pickle a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, hooks[, metadata])`` (``_rebuild_tensor`` in very old files), a parameter wraps
one (``_rebuild_parameter``), a storage is a persistent id ``('storage', torch.<Type>Storage,
key, location, numel[, view])`` and a state dict is a ``collections.OrderedDict``.

Why hand-written: torch is not a dependency, and ``pickle.load`` (like ``torch.load`` with
``weights_only=False``) calls whatever callable the file names, so a downloaded weights file could
run any code. :class:`src.model.torch_pickle._WeightsUnpickler` is a subclass of the standard library's pure-Python
unpickler whose ``find_class`` resolves only the names listed in :data:`ALLOWED_GLOBALS`, each to
a stand-in defined here that builds plain data (never torch's or the file's code); any other
name stops the read with one line (:class:`UnsafeWeightsError`) before anything is called.
Opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, NEWOBJ_EX, the copyreg extension codes)
are refused too, and BUILD is accepted only on dictionaries (where it carries the
``_metadata`` attribute of a state dict, which is dropped).

The result is the pickled structure with every tensor replaced by a numpy array (a copy, in the
tensor's own shape, strides applied; storages shared by several tensors are read once).
"""
import io
import math
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from src.model.torch_pickle import StorageRef, StorageType, TensorRef, TorchWeightsError, restricted_unpickle
from src.runtime.messages import first_line, name_list

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
ZIP_SIGNATURE = b"PK\x03\x04"
#: The magic number as pickle's LONG1 opcode writes it (10 little-endian bytes).
LEGACY_MAGIC_LONG1 = b"\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")
#: Nesting depth of dictionaries / lists accepted in a weights file.
MAX_DEPTH = 64
#: Largest pickle accepted (``data.pkl`` of a state dict is a few hundred KB at most).
MAX_PICKLE_BYTES = 64 * 2 ** 20
#: Tensors may hold more bytes than the storages they view (tied weights, views) by this factor
#: plus :data:`EXTRA_TENSOR_BYTES`; beyond it a small file could claim any amount of memory.
MAX_TENSOR_TO_STORAGE = 4
EXTRA_TENSOR_BYTES = 16 * 2 ** 20
#: Keys under which training scripts nest the state dict (tried in this order).
NESTED_STATE_KEYS = ("state_dict", "model", "model_state_dict", "net", "network")


# ---------------------------------------------------------------------------------------------
# Storages and tensors
# ---------------------------------------------------------------------------------------------
def _storage_array(raw, storage_type, big_endian, numel, path, key):
    """The elements of one storage from its raw bytes (a new, writable numpy array)."""
    itemsize = storage_type.itemsize
    if len(raw) < numel * itemsize:
        raise TorchWeightsError(f"{path}: storage '{key}' holds {len(raw)} bytes, its tensors "
                                f"need {numel * itemsize} (truncated file?)")
    raw = raw[:numel * itemsize]
    if storage_type.dtype == "bfloat16":
        halves = np.frombuffer(raw, ">u2" if big_endian else "<u2").astype(np.uint32)
        return (halves << 16).view(np.float32)
    dtype = np.dtype(storage_type.dtype)
    if big_endian and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))


def _tensor_array(ref, storage, path, name):
    """A tensor's values: ``storage[offset + sum(index * stride)]`` in shape ``size`` (a copy)."""
    if ref.storage.view is not None:
        _, view_offset, view_size = ref.storage.view
        storage = storage[view_offset:view_offset + view_size]
    size, stride, offset = ref.size, ref.stride, ref.offset
    if any(d < 0 for d in size) or any(s < 0 for s in stride) or offset < 0:
        raise TorchWeightsError(f"{path}: tensor '{name}' has a negative size, stride or offset")
    count = math.prod(size)   # exact: numpy's int64 product can wrap around
    if count == 0:
        return np.zeros(size, storage.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(size, stride))
    if last >= storage.size:
        raise TorchWeightsError(f"{path}: tensor '{name}' of shape {size} reads past the end of "
                                f"its storage ({storage.size} values)")
    if count > storage.size:
        raise TorchWeightsError(f"{path}: tensor '{name}' of shape {size} repeats the values of a "
                                f"storage of {storage.size} (expanded tensors are not supported)")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride],
                                           writeable=False)
    return np.array(view, copy=True)


def _resolve(obj, arrays_of, path, name="", depth=0, seen=None, done=None):
    """``obj`` with every TensorRef replaced by its array; containers rebuilt (no cycles).

    ``done`` maps ``id`` of each container / TensorRef already resolved to its result, so an
    object the pickle shares (its memo) is resolved once: without it a few hundred bytes of
    nested shared lists would take time and memory exponential in their depth.
    """
    seen = set() if seen is None else seen
    done = {} if done is None else done
    if depth > MAX_DEPTH:
        raise TorchWeightsError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if id(obj) in done:
        return done[id(obj)]
    if isinstance(obj, TensorRef):
        done[id(obj)] = arrays_of(obj, name)
        return done[id(obj)]
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in seen:
            raise TorchWeightsError(f"{path}: '{name}' contains itself")
        seen = seen | {id(obj)}
        done[id(obj)] = result = _resolve_container(obj, arrays_of, path, name, depth, seen, done)
        return result
    if isinstance(obj, (StorageRef, StorageType)) or callable(obj):
        raise TorchWeightsError(f"{path}: '{name}' is a bare {type(obj).__name__}, not a tensor")
    return obj


def _resolve_container(obj, arrays_of, path, name, depth, seen, done):
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for key, value in obj.items():
            out[key] = _resolve(value, arrays_of, path, f"{name}.{key}" if name else str(key),
                                depth + 1, seen, done)
        return out
    items = [_resolve(v, arrays_of, path, f"{name}[{i}]", depth + 1, seen, done)
             for i, v in enumerate(obj)]
    return items if isinstance(obj, list) else tuple(items)


# ---------------------------------------------------------------------------------------------
# The two layouts
# ---------------------------------------------------------------------------------------------
#: What the zipfile module raises for damaged archives (bad headers, CRCs, names, methods).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError,
              UnicodeDecodeError, ValueError)


def _read_zip(path):
    try:
        return _read_zip_entries(path)
    except TorchWeightsError:
        raise
    except ZIP_ERRORS as exc:
        raise TorchWeightsError(f"{path}: damaged zip archive ({type(exc).__name__}: "
                                f"{first_line(exc, 120)})") from None


def _stored_entry(archive, entry, need, path, what):
    """The first ``need`` bytes of an uncompressed archive entry (torch.save writes no other).

    Refusing compressed entries bounds what a read can allocate by the file's own size: a
    deflated entry of a few KB could otherwise claim gigabytes.
    """
    info = archive.getinfo(entry)
    if info.compress_type != zipfile.ZIP_STORED:
        raise TorchWeightsError(f"{path}: {what} is compressed in the archive; torch.save stores "
                                "its entries uncompressed (not a PyTorch weights file?)")
    if info.file_size < need:
        raise TorchWeightsError(f"{path}: {what} holds {info.file_size} bytes, its tensors need "
                                f"{need} (truncated file?)")
    with archive.open(info) as stream:
        return stream.read(need)


def _read_zip_entries(path):
    file_size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise TorchWeightsError(f"{path}: a zip archive with {len(pickles)} '<folder>/data.pkl' "
                                    "entries, not a PyTorch weights file (expected exactly one)")
        folder = pickles[0][:-len("data.pkl")]
        big_endian = False
        if folder + "byteorder" in names:
            entry = folder + "byteorder"
            order = _stored_entry(archive, entry, min(archive.getinfo(entry).file_size, 16), path,
                                  "the byte order").strip()
            if order not in (b"little", b"big"):
                raise TorchWeightsError(f"{path}: unknown byte order {order[:20]!r}")
            big_endian = order == b"big"
        storages = {}
        pickle_size = archive.getinfo(pickles[0]).file_size
        if pickle_size > min(MAX_PICKLE_BYTES, file_size):
            raise TorchWeightsError(f"{path}: its data.pkl claims {pickle_size} bytes, more than "
                                    f"a weights file's pickle can hold")
        raw_pickle = _stored_entry(archive, pickles[0], pickle_size, path, "data.pkl")
        obj = restricted_unpickle(io.BytesIO(raw_pickle), path, storages)
        arrays = {}
        for key, ref in storages.items():
            entry = f"{folder}data/{key}"
            if entry not in names:
                raise TorchWeightsError(f"{path}: storage '{key}' is missing from the archive")
            need = ref.numel * ref.type.itemsize
            raw = _stored_entry(archive, entry, need, path, f"storage '{key}'")
            arrays[key] = _storage_array(raw, ref.type, big_endian, ref.numel, path, key)
    return obj, arrays


def _read_legacy(path):
    with open(path, "rb") as stream:
        file_size = os.fstat(stream.fileno()).st_size
        storages = {}
        magic = restricted_unpickle(stream, path, storages)
        if magic != LEGACY_MAGIC:
            raise TorchWeightsError(f"{path}: a pickle, but not a PyTorch weights file (no magic "
                                    "number)")
        protocol = restricted_unpickle(stream, path, storages)
        if protocol != LEGACY_PROTOCOL:
            raise TorchWeightsError(f"{path}: PyTorch legacy file of protocol {protocol!r}, "
                                    f"only {LEGACY_PROTOCOL} is known")
        sys_info = restricted_unpickle(stream, path, storages)
        if not isinstance(sys_info, dict):
            raise TorchWeightsError(f"{path}: the PyTorch header is not a dictionary")
        big_endian = not sys_info.get("little_endian", True)
        obj = restricted_unpickle(stream, path, storages)
        keys = restricted_unpickle(stream, path, storages)
        if (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
                or sorted(keys) != sorted(storages)):
            raise TorchWeightsError(f"{path}: the list of storage keys does not match the "
                                    "storages the tensors name")
        arrays = {}
        for key in keys:
            ref = storages[key]
            head = stream.read(8)
            if len(head) != 8:
                raise TorchWeightsError(f"{path}: truncated before storage '{key}'")
            count = struct.unpack(">q" if big_endian else "<q", head)[0]
            if count * ref.type.itemsize > file_size - stream.tell():
                raise TorchWeightsError(f"{path}: storage '{key}' of {count} values runs past the "
                                        "end of the file (truncated file?)")
            if count < ref.numel:
                raise TorchWeightsError(f"{path}: storage '{key}' holds {count} values, its "
                                        f"tensors need {ref.numel}")
            raw = stream.read(count * ref.type.itemsize)
            arrays[key] = _storage_array(raw, ref.type, big_endian, count, path, key)
    return obj, arrays


def torch_file_kind(head):
    """``'zip'``, ``'legacy'`` or None: the PyTorch layout the first bytes of a file show.

    ``head`` should hold at least the first 32 bytes. A zip archive counts as 'zip' here;
    :func:`read_torch_file` then checks that it holds ``<folder>/data.pkl``.
    """
    if head.startswith(ZIP_SIGNATURE):
        return "zip"
    if head[:1] == pickle.PROTO and LEGACY_MAGIC_LONG1 in head[:32]:
        return "legacy"
    return None


def is_torch_zip(path):
    """True when ``path`` is a zip archive with one ``<folder>/data.pkl`` (PyTorch's layout)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(n.count("/") == 1 and n.endswith("/data.pkl")
                       for n in archive.namelist()) == 1
    except ZIP_ERRORS:
        return False


def read_torch_file(path):
    """The object a PyTorch weights file holds, tensors as numpy arrays.

    Returns:
        the unpickled structure (dicts, OrderedDicts, lists, numbers, strings), each tensor or
        parameter a new numpy array of its shape and dtype (bfloat16 as float32).

    Raises:
        UnsafeWeightsError: the file names a global or opcode outside the allow-list (nothing
            was called).
        TorchWeightsError: missing, not a PyTorch file, truncated or corrupt (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise TorchWeightsError(f"{path}: no such file")
    with open(path, "rb") as stream:
        head = stream.read(64)
    kind = torch_file_kind(head)
    if kind is None:
        raise TorchWeightsError(f"{path}: not a PyTorch weights file (neither its zip layout nor "
                                "its legacy one)")
    try:
        obj, arrays = _read_zip(path) if kind == "zip" else _read_legacy(path)
    except OSError as exc:
        raise TorchWeightsError(f"{path}: cannot read ({first_line(exc)})") from None

    storage_bytes = sum(a.nbytes for a in arrays.values())
    budget = MAX_TENSOR_TO_STORAGE * storage_bytes + EXTRA_TENSOR_BYTES
    tensor_bytes = [0]

    def array_of(ref, name):
        # Each tensor is a copy: many tensors over one storage would multiply memory unbounded.
        tensor_bytes[0] += math.prod(ref.size) * arrays[ref.storage.key].itemsize
        if tensor_bytes[0] > budget:
            raise TorchWeightsError(f"{path}: its tensors would take more than {budget} bytes "
                                    f"from {storage_bytes} bytes of storages (at '{name}')")
        return _tensor_array(ref, arrays[ref.storage.key], path, name)
    return _resolve(obj, array_of, path)


def state_dict_of(obj, path="<weights>"):
    """The flat ``{name: array}`` state dict inside a loaded weights file.

    Unwraps ``{'state_dict': ...}`` / ``{'model': ...}`` (and the other keys of
    :data:`NESTED_STATE_KEYS`) and drops a ``module.`` prefix that every name carries
    (``nn.DataParallel``'s). Non-tensor entries beside the state dict (epoch, optimizer ...) are
    ignored.

    Raises:
        TorchWeightsError: no dictionary of tensors found, or a name that is not a string.
    """
    for _ in range(4):
        if not isinstance(obj, dict):
            break
        if obj and all(isinstance(v, np.ndarray) for v in obj.values()):
            break
        nested = next((obj[k] for k in NESTED_STATE_KEYS if isinstance(obj.get(k), dict)), None)
        if nested is None:
            break
        obj = nested
    if not isinstance(obj, dict) or not obj:
        raise TorchWeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    state = OrderedDict((k, v) for k, v in obj.items() if isinstance(v, np.ndarray))
    if not state:
        raise TorchWeightsError(f"{path}: a dictionary without tensors (keys: "
                                f"{name_list([str(k) for k in obj], quote=True)})")
    if not all(isinstance(k, str) for k in state):
        raise TorchWeightsError(f"{path}: a state dict whose names are not all strings")
    if all(k.startswith("module.") for k in state):
        state = OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state


def read_state_dict(path):
    """``state_dict_of(read_torch_file(path))``: the tensors of a PyTorch weights file by name."""
    return state_dict_of(read_torch_file(path), path)
