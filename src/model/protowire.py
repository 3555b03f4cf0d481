"""A small reader and writer of the protobuf wire format (no generated code, no protobuf package).

Enough to read Caffe's ``.caffemodel`` (src/model/caffe_import.py) and the protobuf parts of the
weight files src/model/weight_import.py reads, and to write a caffemodel for the benchmark's
stand-in (src/model/cmu_synthetic.py). Hand-written because no well-kept library fits: reading
a caffemodel through the protobuf package needs Caffe's ``caffe.proto`` compiled into generated
code (Caffe is unmaintained and not installable here), while these readers need a few public
field numbers only. ONNX files are edited with the ``onnx`` package instead
(src/model/onnx_model.py).

A message is a sequence of fields; each starts with a varint key ``field_number << 3 | wire_type``.
Wire types: 0 varint, 1 fixed 64 bit, 2 length-delimited (bytes, strings, sub-messages, packed
repeated numbers), 5 fixed 32 bit. Groups (3, 4) are obsolete and rejected.
"""

import numpy as np

from src.errors import OpenPoseError

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
#: A varint holds at most 64 bits, i.e. 10 bytes of 7 bits.
MAX_VARINT_BYTES = 10


class WireFormatError(OpenPoseError, ValueError):
    """Bytes that are not a well-formed protobuf message (truncated or corrupt)."""


def read_varint(buf, pos, end):
    """Decode the varint starting at ``buf[pos]``; returns ``(value, next_pos)``."""
    value = shift = 0
    for count in range(MAX_VARINT_BYTES):
        if pos >= end:
            raise WireFormatError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if count == MAX_VARINT_BYTES - 1:
            break
    raise WireFormatError(f"varint longer than {MAX_VARINT_BYTES} bytes at byte {pos}")


def iter_fields(buf, start=0, end=None):
    """Yield the fields of the message in ``buf[start:end]``.

    Yields:
        ``(field_number, wire_type, value, (field_start, field_end))``: ``value`` is an int for
        varints, a memoryview of the payload for length-delimited fields and the raw 4 or 8 bytes
        for the fixed types; the span is the field's byte range, key included (for copying a
        field verbatim).

    Raises:
        WireFormatError: a truncated field, a bad wire type or field number 0.
    """
    view = memoryview(buf)
    end = len(view) if end is None else end
    pos = start
    while pos < end:
        field_start = pos
        key, pos = read_varint(view, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireFormatError(f"field number 0 at byte {field_start}")
        if wire_type == VARINT:
            value, pos = read_varint(view, pos, end)
        elif wire_type == LENGTH_DELIMITED:
            length, pos = read_varint(view, pos, end)
            if pos + length > end:
                raise WireFormatError(f"field {number} at byte {field_start} runs "
                                      f"{pos + length - end} bytes past the end of its message")
            value = view[pos:pos + length]
            pos += length
        elif wire_type in (FIXED32, FIXED64):
            size = 4 if wire_type == FIXED32 else 8
            if pos + size > end:
                raise WireFormatError(f"truncated fixed-size field {number} at byte {field_start}")
            value = bytes(view[pos:pos + size])
            pos += size
        else:
            raise WireFormatError(f"unsupported wire type {wire_type} (field {number}) at byte "
                                  f"{field_start}")
        yield number, wire_type, value, (field_start, pos)


def packed_varints(payload):
    """The integers of a packed repeated varint field (e.g. int64 dims)."""
    values, pos, end = [], 0, len(payload)
    while pos < end:
        value, pos = read_varint(payload, pos, end)
        values.append(value - (1 << 64) if value >= 1 << 63 else value)
    return values


def packed_floats(payload, dtype="<f4"):
    """A packed repeated float (``<f4``) or double (``<f8``) field as a float32 array."""
    itemsize = np.dtype(dtype).itemsize
    if len(payload) % itemsize:
        raise WireFormatError(f"packed field of {len(payload)} bytes is not a multiple of "
                              f"{itemsize}")
    return np.frombuffer(payload, dtype=dtype).astype(np.float32)


def utf8(payload):
    """A string field's text (undecodable bytes replaced)."""
    return bytes(payload).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def encode_varint(value):
    """Varint bytes of a non-negative int (negative ints as their 64-bit two's complement)."""
    value = int(value)
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number, wire_type):
    """The key bytes that start a field."""
    return encode_varint(number << 3 | wire_type)


def varint_field(number, value):
    """A varint field (int, bool, enum)."""
    return key(number, VARINT) + encode_varint(value)


def bytes_field(number, payload):
    """A length-delimited field (bytes, str, or an encoded sub-message)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return key(number, LENGTH_DELIMITED) + encode_varint(len(payload)) + bytes(payload)


def packed_varint_field(number, values):
    """A packed repeated varint field."""
    return bytes_field(number, b"".join(encode_varint(v) for v in values))


def packed_float_field(number, values):
    """A packed repeated float field (little-endian float32)."""
    return bytes_field(number, np.ascontiguousarray(values, dtype="<f4").tobytes())
