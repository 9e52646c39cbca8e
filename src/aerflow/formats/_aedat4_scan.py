"""Walking AEDAT 4.0 packet headers (``{int32 stream id, int32 size}`` then the payload): a
numba kernel over the bytes of a mapped file or of a DV network stream's receive buffer."""

from __future__ import annotations

from typing import Any

from .._jit import njit
from .aedat4_flatbuffers import read_i32
from .aedat4_packets import PACKET_HEADER

__all__ = ["SCAN_END", "SCAN_FULL", "SCAN_NEGATIVE_SIZE", "SCAN_TORN", "scan_packets"]

_HEADER = PACKET_HEADER.size  # int32 stream id, int32 payload size

SCAN_END, SCAN_TORN, SCAN_NEGATIVE_SIZE, SCAN_FULL = range(4)
"""Why :func:`scan_packets` stopped: at ``end`` exactly, before a packet that ``end`` cuts,
at a header with a negative size, with its output arrays full."""


@njit(nogil=True, cache=True)
def scan_packets(
    data: Any, position: int, end: int, offsets: Any, streams: Any, sizes: Any
) -> tuple[int, int, int]:
    """Walk packet headers from ``position`` up to ``end``, recording each packet's header
    position, stream id and payload size. Returns (packets found, where it stopped, why:
    one of ``SCAN_*``). Shared by files and DV network streams."""
    n = 0
    while position + _HEADER <= end:
        if n == offsets.size:
            return n, position, SCAN_FULL
        size = read_i32(data, position + 4)
        if size < 0:
            return n, position, SCAN_NEGATIVE_SIZE
        if position + _HEADER + size > end:
            return n, position, SCAN_TORN
        offsets[n] = position
        streams[n] = read_i32(data, position)
        sizes[n] = size
        position += _HEADER + size
        n += 1
    return n, position, SCAN_END if position == end else SCAN_TORN
