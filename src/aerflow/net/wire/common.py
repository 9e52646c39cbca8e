"""What the UDP wire formats share: datagram size limits, the decoders' counters and state,
and the numba pieces every encoder or decoder calls (grouping events into datagrams, 32-bit
time unwrapping, the coordinate check)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..._jit import njit

__all__ = [
    "C_EVENTS",
    "C_MALFORMED",
    "C_OUT_OF_RANGE",
    "C_UNTIMED",
    "MAX_DATAGRAM_BYTES",
    "MAX_UNWRAP",
    "MTU_DATAGRAM_BYTES",
    "N_COUNTERS",
    "N_STATE",
    "S_HEIGHT",
    "S_LAST",
    "S_OFFSET",
    "S_PREVIOUS",
    "S_STREAMS",
    "S_WIDTH",
    "round8",
    "views",
]

MAX_DATAGRAM_BYTES = 65507
"""The largest UDP payload over IPv4 (65535 − 8 bytes UDP − 20 bytes IP header)."""

MTU_DATAGRAM_BYTES = 1472
"""The largest UDP payload that fits one Ethernet frame (1500 − 20 − 8)."""

_HALF = np.int64(1) << 31
_WRAP = np.int64(1) << 32
MAX_UNWRAP = np.int64(1) << 62
"""The most that 32-bit unwrapping adds (see :mod:`aerflow.net.wire`)."""
_MAX_UNWRAP = MAX_UNWRAP

# Counters shared by every decoder (``DatagramDecoder.counters``).
C_MALFORMED, C_OUT_OF_RANGE, C_UNTIMED, C_EVENTS = range(4)
N_COUNTERS = 4
# Decoder state: 32-bit time unwrapping, and the sensor size the first aerflow datagram gave.
S_LAST, S_OFFSET, S_WIDTH, S_HEIGHT, S_STREAMS, S_PREVIOUS = range(6)
N_STATE = 6


def round8(n: int) -> int:
    """``n`` rounded up to a multiple of 8."""
    return (n + 7) & ~7


def views(buffer: npt.NDArray[np.uint8]) -> tuple[Any, Any, Any, Any]:
    """``buffer`` as u8, u16, u32 and u64 (its size a multiple of 8)."""
    return buffer, buffer.view(np.uint16), buffer.view(np.uint32), buffer.view(np.uint64)


@njit(nogil=True, cache=True)
def _first_out_of_range(events: Any, x_limit: int, y_limit: int) -> int:
    """Index of the first event with x >= x_limit or y >= y_limit, else -1."""
    for i in range(events.size):
        event = events[i]
        if event.x >= x_limit or event.y >= y_limit:
            return i
    return -1


# The kernels index views that start at the datagram or event at hand with loop counters
# from 0: numba then drops its negative-index handling and LLVM vectorises the loops (eight
# times faster than indexing the whole buffer with computed offsets).


@njit(nogil=True, cache=True)
def _group(events: Any, per_datagram: int, max_span: int) -> tuple[int, Any, Any]:
    """How many of ``events`` go in one datagram: up to ``per_datagram`` whose times span
    at most ``max_span`` µs. Returns (count, smallest time, largest time)."""
    lo = events[0].t
    hi = lo
    k = min(per_datagram, events.size)
    for j in range(1, k):  # the common case first: all of them fit
        t = events[j].t
        lo = min(lo, t)
        hi = max(hi, t)
    span = np.uint64(max_span)
    if hi - lo <= span:
        return k, lo, hi
    lo = events[0].t
    hi = lo
    k = 1
    while k < per_datagram and k < events.size:
        t = events[k].t
        new_lo = min(lo, t)
        new_hi = max(hi, t)
        if new_hi - new_lo > span:
            break
        lo = new_lo
        hi = new_hi
        k += 1
    return k, lo, hi


# Each encoder fills datagram slots of ``stride`` bytes (a multiple of 8) from event ``start``
# until the events or the slots run out, and notes per slot its length, the largest time of
# its events (for pacing) and its event count. Returns (first event not encoded, slots filled).


@njit(nogil=True, cache=True)
def _unwrap(t32: int, last: int, offset: int) -> tuple[int, int, int]:
    """(64-bit time, new last, new offset) for a 32-bit time after ``last``."""
    t = offset + t32
    if t + _HALF < last and offset < _MAX_UNWRAP:
        offset += _WRAP
        t += _WRAP
    elif t > last + _HALF and offset >= _WRAP:
        return t - _WRAP, last, offset  # late, from before the wrap: the state stays
    return t, t, offset
