"""AEDAT 4.0 event packets (``EVTS``): the EventPacket FlatBuffer decoded by a numba kernel
straight into :data:`~aerflow.EVENTS_DTYPE`, and encoded as DV's own builder lays it out."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from ..errors import PayloadError
from .aedat4_flatbuffers import read_i64, read_u16, read_u32, root_position, table_field

__all__ = [
    "BAD_BUFFER",
    "BAD_IDENTIFIER",
    "BAD_TABLE",
    "BAD_VECTOR",
    "DV_EVENT_DTYPE",
    "NEGATIVE_TIME",
    "NO_ROOM",
    "OK",
    "decode_events",
    "encode_events",
]

DV_EVENT_DTYPE = np.dtype(
    {
        "names": ["t", "x", "y", "on"],
        "formats": ["<i8", "<i2", "<i2", "?"],
        "offsets": [0, 8, 10, 12],
        "itemsize": 16,
    }
)
"""DV's 16-byte event struct (3 trailing padding bytes)."""

OK, BAD_BUFFER, BAD_IDENTIFIER, BAD_TABLE, BAD_VECTOR, NO_ROOM, NEGATIVE_TIME = range(7)
_EVTS = np.frombuffer(b"EVTS", np.uint8)


@njit(nogil=True, cache=True)
def _decode_events(
    data: Any, identifier: Any, events: Any, start: int, stop: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """Decode the EventPacket FlatBuffer in ``data`` into ``events[start:stop]``.

    Returns (status, elements in the packet, events kept, detail): events outside
    ``width`` x ``height`` are dropped; ``NO_ROOM`` (nothing written) when the packet holds
    more elements than ``stop - start``; on a malformed buffer, ``detail`` is the position
    found wrong.
    """
    root, end = root_position(data, identifier)
    if root == -1:
        return BAD_BUFFER, 0, 0, 0
    if root == -2:
        return BAD_IDENTIFIER, 0, 0, 8
    field = table_field(data, end, root, 0, 4)
    if field < 0:
        return BAD_TABLE, 0, 0, root
    if field == 0:
        return OK, 0, 0, 0
    offset = read_u32(data, field)
    vector = field + offset
    if offset == 0 or vector + 4 > end:
        return BAD_VECTOR, 0, 0, field
    n = read_u32(data, vector)
    first = vector + 4
    if first + 16 * n > end:
        return BAD_VECTOR, n, 0, vector
    if n > stop - start:
        return NO_ROOM, n, 0, 0
    if (data.ctypes.data + first) % 8 == 0:
        return _copy_aligned(data[first : first + 16 * n], n, events, start, width, height)
    k = start
    for i in range(n):  # an unaligned vector (never written so): one byte at a time
        p = first + 16 * i
        t = read_i64(data, p)
        if t < 0:
            return NEGATIVE_TIME, n, k - start, p
        x = read_u16(data, p + 8)
        y = read_u16(data, p + 10)
        if x < width and y < height:
            event = events[k]
            event.t = np.uint64(t)
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = data[p + 12] != 0
            k += 1
    return OK, n, k - start, 0


@njit(nogil=True, cache=True)
def _copy_aligned(
    vector: Any, n: int, events: Any, start: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The events of an 8-aligned vector of 16-byte DV events, read as whole words."""
    words = vector.view(np.int64)
    halves = vector.view(np.uint16)
    k = start
    for i in range(n):
        t = words[2 * i]
        if t < 0:
            return NEGATIVE_TIME, n, k - start, 16 * i
        # int16 coordinates read unsigned: negative ones fall outside the sensor
        x = halves[8 * i + 4]
        y = halves[8 * i + 5]
        if x < width and y < height:
            event = events[k]
            event.t = np.uint64(t)
            event.x = x
            event.y = y
            event.on = vector[16 * i + 12] != 0
            k += 1
    return OK, n, k - start, 0


_EVENT_ERRORS = {
    BAD_BUFFER: "the payload is not a size-prefixed FlatBuffer",
    BAD_IDENTIFIER: "the payload is not an EventPacket (identifier {identifier})",
    BAD_TABLE: "the EventPacket's table does not fit in the payload",
    BAD_VECTOR: "the EventPacket's events vector does not fit in the payload",
    NEGATIVE_TIME: "an event has a negative timestamp",
}


def decode_events(
    data: npt.NDArray[np.uint8],
    events: npt.NDArray[Any],
    start: int,
    stop: int,
    width: int,
    height: int,
) -> tuple[int, int]:
    """Decode an EventPacket payload into ``events[start:stop]``.

    Returns (elements in the packet, events kept); raises :class:`PayloadError` on a
    malformed payload and returns (elements, -1) when they do not fit in ``stop - start``.
    """
    status, n, kept, detail = _decode_events(data, _EVTS, events, start, stop, width, height)
    if status == OK:
        return n, kept
    if status == NO_ROOM:
        return n, -1
    identifier = bytes(data[8:12]).decode("latin-1") if len(data) >= 12 else "?"
    raise PayloadError(_EVENT_ERRORS[status].format(identifier=repr(identifier)), detail)


_EVENTS_HEADER = np.frombuffer(
    struct.pack("<II4sH3HiI", 0, 16, b"EVTS", 0, 6, 8, 4, 6, 4), np.uint8
)


def encode_events(events: npt.NDArray[Any]) -> memoryview:
    """The EventPacket FlatBuffer of ``events`` (:data:`~aerflow.EVENTS_DTYPE`), laid out as
    DV's own builder lays it out: vtable at 14, table at 20, events from byte 32. A view of
    the array it was built in: compressors and files take it as it is, without a copy."""
    n = len(events)
    out = np.empty(32 + 16 * n, np.uint8)
    out[:28] = _EVENTS_HEADER
    out[:4].view("<u4")[0] = 28 + 16 * n
    out[28:32].view("<u4")[0] = n
    _fill_dv_events(events, out[32:].view(DV_EVENT_DTYPE))
    return out.data


@njit(nogil=True, cache=True)
def _fill_dv_events(events: Any, records: Any) -> None:
    # One pass (instead of one strided copy per field) that also zeroes the padding bytes.
    padding = records.view(np.uint8).reshape((-1, 16))
    for i in range(events.size):
        event = events[i]
        record = records[i]
        record.t = np.int64(event.t)
        record.x = np.int16(event.x)
        record.y = np.int16(event.y)
        record.on = event.on
        padding[i, 13] = 0
        padding[i, 14] = 0
        padding[i, 15] = 0
