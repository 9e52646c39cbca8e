"""Event Stream encoding kernels: DVS and ATIS change-detection events into bytes with the
fewest overflow bytes (the byte layout is described in :mod:`aerflow.formats.event_stream`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit
from ._es_header import DVS

_MAX_GAP_US = 1 << 32
"""The writer refuses a gap longer than this (~72 min) between consecutive events: it would
take tens of MB of overflow bytes (a sign of absolute timestamps, to shift first)."""


@njit(nogil=True, cache=True, inline="always")
def _event_bytes(gap: int, kind: int) -> int:
    """Bytes of an event ``gap`` µs after the previous one, overflow bytes included."""
    if kind == DVS:
        return gap // 127 + 5
    overflows = gap // 63
    return overflows // 3 + (1 if overflows % 3 else 0) + 5


@njit(nogil=True, cache=True)
def _piece_end(
    events: Any, start: int, origin: int, previous: int, kind: int, budget: int
) -> tuple[int, int]:
    """(end, bytes): events ``start..end-1``, checked already, take ``bytes`` and at most
    ``budget`` of them (or one event, whatever its gap)."""
    total = 0
    i = start
    while i < events.size:
        t = np.int64(events[i].t) - origin
        size = _event_bytes(t - previous, kind)
        if i > start and total + size > budget:
            break
        total += size
        previous = t
        i += 1
    return i, total


@njit(nogil=True, cache=True)
def _measure(events: Any, origin: int, previous: int, kind: int) -> tuple[int, int, int]:
    """(bytes needed, index of the first bad event or -1, why: 0 before the previous event,
    1 before the origin, 2 too long a gap) to write DVS (``kind`` 1) or ATIS (2) events."""
    total = 0
    for i in range(events.size):
        t = np.int64(events[i].t) - origin
        if t < 0:
            return 0, i, 1
        if t < previous:
            return 0, i, 0
        gap = t - previous
        if gap > _MAX_GAP_US:
            return 0, i, 2
        total += _event_bytes(gap, kind)
        previous = t
    return total, -1, 0


@njit(nogil=True, cache=True)
def _encode(events: Any, origin: int, previous: int, kind: int, out: Any) -> int:
    """Write DVS (``kind`` 1) or ATIS change-detection (2) events into ``out``; returns the
    time of the last one. ``out`` has the size :func:`_measure` gave."""
    k = 0
    for i in range(events.size):
        event = events[i]
        t = np.int64(event.t) - origin
        gap = t - previous
        previous = t
        on = 1 if event.on else 0
        if kind == DVS:
            for _ in range(gap // 127):
                out[k] = 0xFF
                k += 1
            out[k] = ((gap % 127) << 1) | on
        else:
            overflows = gap // 63
            for _ in range(overflows // 3):
                out[k] = 0xFF
                k += 1
            if overflows % 3:
                out[k] = 0xFC | (overflows % 3)
                k += 1
            out[k] = ((gap % 63) << 2) | (on << 1)
        x = np.int64(event.x)
        y = np.int64(event.y)
        out[k + 1] = x & 0xFF
        out[k + 2] = x >> 8
        out[k + 3] = y & 0xFF
        out[k + 4] = y >> 8
        k += 5
    return previous
