"""The ECF block codec of Prophesee HDF5 files, as numba kernels (shared/specs/hdf5-ecf.md §3).

A block encodes up to 65,535 CD events: a u32 header (count << 2, bit 1 layout A, bit 0
layout B, neither layout C), the timestamps (a u64 first time, then run bytes and jump
nibbles), then x, y and polarity in one of three layouts. Everything is little-endian and
unaligned. Decoding checks every read against the block's length and every run against the
event count, so a damaged block gives a status code (turned into a FormatError by the reader)
instead of a read out of bounds. Encoding writes the bytes a fresh official encoder writes.

Encoding is here; decoding, straight into :data:`aerflow.EVENTS_DTYPE` records, is in
:mod:`._ecf_decode` (its names are importable from here too).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._jit import njit
from ._ecf_decode import (
    ENDS_EARLY,
    LONG_JUMP,
    MAX_BLOCK_EVENTS,
    MISSING,
    NEGATIVE_TIME,
    OK,
    RUN_PAST_COUNT,
    STATUS_MESSAGES,
    TOO_FEW,
    TOO_MANY,
    decode_chunks,
)

__all__ = [
    "ENDS_EARLY",
    "LONG_JUMP",
    "MAX_BLOCK_EVENTS",
    "MISSING",
    "NEGATIVE_TIME",
    "OK",
    "RUN_PAST_COUNT",
    "STATUS_MESSAGES",
    "TOO_FEW",
    "TOO_MANY",
    "block_bound",
    "decode_chunks",
    "encode_block",
]

# -- encoding ---------------------------------------------------------------------------------


def block_bound(count: int) -> int:
    """Bytes enough for any block of ``count`` events: 12 bytes of header and first time,
    then per event at most 16 jump nibbles, a run byte and its u16, 5 bytes of coordinates,
    and a packed group's tail."""
    return 12 + 24 * count + 16


@njit(nogil=True, cache=True, inline="always")
def _put_u16(out: Any, at: int, value: int) -> None:
    out[at] = value & 0xFF
    out[at + 1] = (value >> 8) & 0xFF


@njit(nogil=True, cache=True, inline="always")
def _put_u32(out: Any, at: int, value: int) -> None:
    _put_u16(out, at, value & 0xFFFF)
    _put_u16(out, at + 2, (value >> 16) & 0xFFFF)


@njit(nogil=True, cache=True)
def _choose_layout(events: Any, start: int, count: int) -> int:
    """§3.6: 2 (A) when y rarely repeats among the first quarter, else 1 (B) when x rarely
    continues a short ascending run there, else 0 (C)."""
    k = count if count < 16 else math.floor(0.25 * count + 0.5)
    repeats = 0
    for i in range(1, k):
        if events[start + i].y == events[start + i - 1].y:
            repeats += 1
    if repeats <= math.floor(0.20 * k + 0.5):
        return 2
    hits = 0
    first = int(events[start].x)
    for i in range(1, k):
        x = int(events[start + i].x)
        if int(events[start + i - 1].x) < x <= first + 5:
            hits += 1
        else:
            first = x
    return 1 if hits <= math.floor(0.08 * k + 0.5) else 0


@njit(nogil=True, cache=True)
def _encode_times(events: Any, start: int, count: int, out: Any, pos: int) -> int:
    cur = events[start].t if count else np.uint64(0)
    for b in range(8):
        out[pos + b] = np.int64((cur >> np.uint64(8 * b)) & np.uint64(0xFF))
    pos += 8
    i = 0
    fifteen = np.uint64(15)
    while i < count:
        t = events[start + i].t
        if t >= cur + fifteen:
            dt = t - cur
            while dt:
                out[pos] = 0xF0 | np.int64(dt & fifteen)
                pos += 1
                dt >>= np.uint64(4)
            cur = t
        delta = np.int64(0)
        if t >= cur:
            delta = np.int64(t - cur)
            cur = t
        run = 1
        while i + run < count and events[start + i + run].t == cur:
            run += 1
        if run >= 15:
            out[pos] = delta << 4 | 15
            _put_u16(out, pos + 1, run)
            pos += 3
        else:
            out[pos] = delta << 4 | run
            pos += 1
        i += run
    return pos


@njit(nogil=True, cache=True, inline="always")
def _yxp(events: Any, start: int, count: int, i: int) -> int:
    if i >= count:
        return 0  # the tail slots of a fresh encoder hold zeros
    event = events[start + i]
    return (int(event.y) << 12 | int(event.x) << 1 | int(event.on)) & 0xFFFFFFFF


@njit(nogil=True, cache=True)
def _encode_layout_a(events: Any, start: int, count: int, out: Any, pos: int) -> int:
    for base in range(0, count, 4):
        v0 = _yxp(events, start, count, base)
        v1 = _yxp(events, start, count, base + 1)
        v2 = _yxp(events, start, count, base + 2)
        v3 = _yxp(events, start, count, base + 3)
        _put_u32(out, pos, (v0 << 8 | (v1 & 0xFF)) & 0xFFFFFFFF)
        _put_u32(out, pos + 4, ((v1 >> 8) << 16 | (v2 & 0xFFFF)) & 0xFFFFFFFF)
        _put_u32(out, pos + 8, ((v2 >> 16) << 24 | (v3 & 0xFFFFFF)) & 0xFFFFFFFF)
        pos += 12
    return pos


@njit(nogil=True, cache=True)
def _encode_y_runs(events: Any, start: int, count: int, out: Any, pos: int) -> int:
    i = 0
    while i < count:
        y = int(events[start + i].y)
        run = 1
        while i + run < count and int(events[start + i + run].y) == y:
            run += 1
        if run >= 31:
            _put_u16(out, pos, (y << 5 | 31) & 0xFFFF)
            _put_u16(out, pos + 2, run)
            pos += 4
        else:
            _put_u16(out, pos, (y << 5 | run) & 0xFFFF)
            pos += 2
        i += run
    return pos


@njit(nogil=True, cache=True, inline="always")
def _xp(events: Any, start: int, count: int, i: int) -> int:
    if i >= count:
        return 0
    event = events[start + i]
    return (int(event.x) << 1 | int(event.on)) & 0xFFFF


@njit(nogil=True, cache=True)
def _encode_layout_b(events: Any, start: int, count: int, out: Any, pos: int) -> int:
    for base in range(0, count, 4):
        v0 = _xp(events, start, count, base)
        v1 = _xp(events, start, count, base + 1)
        v2 = _xp(events, start, count, base + 2)
        v3 = _xp(events, start, count, base + 3)
        _put_u16(out, pos, (v0 << 4 | (v1 & 0xF)) & 0xFFFF)
        _put_u16(out, pos + 2, ((v1 >> 4) << 8 | (v2 & 0xFF)) & 0xFFFF)
        _put_u16(out, pos + 4, ((v2 >> 8) << 12 | (v3 & 0xFFF)) & 0xFFFF)
        pos += 6
    return pos


@njit(nogil=True, cache=True)
def _encode_layout_c(events: Any, start: int, count: int, out: Any, pos: int) -> int:
    i = 0
    while i < count:
        x = int(events[start + i].x)
        mask = 0
        i += 1
        for j in range(5):
            if i < count and int(events[start + i].x) == x + j + 1:
                mask |= 16 >> j
                i += 1
        _put_u16(out, pos, (x << 5 | mask) & 0xFFFF)
        pos += 2
    i = 0
    while i < count:
        on = events[start + i].on
        run = 1
        while i + run < count and events[start + i + run].on == on:
            run += 1
        bit = 128 if on else 0
        if run >= 127:
            out[pos] = bit | 127
            _put_u16(out, pos + 1, run)
            pos += 3
        else:
            out[pos] = bit | run
            pos += 1
        i += run
    return pos


@njit(nogil=True, cache=True)
def encode_block(events: Any, start: int, count: int, out: Any) -> int:
    """events[start : start + count] (at most 65,535) as one ECF block in ``out`` (at least
    :func:`block_bound` bytes); returns its length."""
    layout = _choose_layout(events, start, count) if count else 2
    _put_u32(out, 0, count << 2 | layout)
    pos = _encode_times(events, start, count, out, 4)
    if layout == 2:
        return _encode_layout_a(events, start, count, out, pos)
    pos = _encode_y_runs(events, start, count, out, pos)
    if layout == 1:
        return _encode_layout_b(events, start, count, out, pos)
    return _encode_layout_c(events, start, count, out, pos)


@njit(nogil=True, cache=True)
def period_starts(
    times: Any, first: int, period: int, last_period: int, starts: Any, periods: Any
) -> int:
    """Where each period of ``period`` µs after ``first`` begins among non-decreasing
    ``times``, for periods after ``last_period``: fills starts[:m] (event indices) and
    periods[:m], returns m."""
    m = 0
    origin = np.uint64(first)
    for i in range(times.size):
        q = np.int64(times[i] - origin) // period
        if q > last_period:
            starts[m] = i
            periods[m] = q
            last_period = q
            m += 1
    return m


@njit(nogil=True, cache=True)
def encode_blocks(
    events: Any, start: int, blocks: int, per_block: int, out: Any, ends: Any
) -> None:
    """``blocks`` blocks of ``per_block`` events from events[start:], one after another in
    ``out`` (at least ``blocks`` times :func:`block_bound`); block b ends at ends[b]."""
    pos = 0
    for b in range(blocks):
        pos += encode_block(events, start + b * per_block, per_block, out[pos:])
        ends[b] = pos
