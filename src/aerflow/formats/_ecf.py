"""The ECF block codec of Prophesee HDF5 files, as numba kernels (shared/specs/hdf5-ecf.md §3).

A block encodes up to 65,535 CD events: a u32 header (count << 2, bit 1 layout A, bit 0
layout B, neither layout C), the timestamps (a u64 first time, then run bytes and jump
nibbles), then x, y and polarity in one of three layouts. Everything is little-endian and
unaligned. Decoding checks every read against the block's length and every run against the
event count, so a damaged block gives a status code (turned into a FormatError by the reader)
instead of a read out of bounds. Encoding writes the bytes a fresh official encoder writes.

The kernels decode straight into :data:`aerflow.EVENTS_DTYPE` records and keep only the first
``keep`` events of a block: an edge chunk written through the HDF5 filter pipeline carries
padding events past the dataset's length.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

__all__ = [
    "MAX_BLOCK_EVENTS",
    "STATUS_MESSAGES",
    "block_bound",
    "decode_chunks",
    "encode_block",
]

MAX_BLOCK_EVENTS = 65535
"""The official decoder refuses larger blocks (and its encoder larger inputs)."""

OK, ENDS_EARLY, TOO_MANY, RUN_PAST_COUNT, LONG_JUMP, TOO_FEW, NEGATIVE_TIME, MISSING = range(8)
STATUS_MESSAGES = {
    ENDS_EARLY: "the block ends before its events do",
    TOO_MANY: "the block header announces more events than the chunk holds",
    RUN_PAST_COUNT: "a run goes past the block's event count",
    LONG_JUMP: "a time jump longer than 16 nibbles",
    TOO_FEW: "the block holds fewer events than the dataset's length needs",
    NEGATIVE_TIME: "a negative timestamp",
    MISSING: "the chunk was never written",
}

_TOP_BIT = np.uint64(1 << 63)
_RAW_RECORD = 16  # Metavision's EventCD: x u16, y u16, p i16, 2 padding bytes, t i64


@nb.njit(nogil=True, cache=True, inline="always")
def _fill_run(out: Any, i: int, run: int, keep: int, value: Any) -> None:
    """``value`` into ``out[i : i + run]`` (up to ``keep``). Most runs are short: four slots
    are written blindly (the scratch has room past the end; later runs overwrite the rest),
    a loop runs only for longer ones."""
    out[i] = value
    out[i + 1] = value
    out[i + 2] = value
    out[i + 3] = value
    if run > 4:
        for k in range(i + 4, min(i + run, keep)):
            out[k] = value


@nb.njit(nogil=True, cache=True, inline="always")
def _u16(data: Any, at: int) -> Any:
    return np.int64(data[at]) | np.int64(data[at + 1]) << 8


@nb.njit(nogil=True, cache=True, inline="always")
def _u32(data: Any, at: int) -> Any:
    return _u16(data, at) | _u16(data, at + 2) << 16


@nb.njit(nogil=True, cache=True, inline="always")
def _u64(data: Any, at: int) -> Any:
    return np.uint64(_u32(data, at)) | np.uint64(_u32(data, at + 4)) << np.uint64(32)


@nb.njit(nogil=True, cache=True)
def _decode_times(data: Any, pos: int, stop: int, count: int, keep: int, ts: Any) -> Any:
    """Timestamps of a block into ts[:keep]; returns (status, next position)."""
    cur = _u64(data, pos)
    pos += 8
    i = 0
    while i < count:
        if pos >= stop:
            return ENDS_EARLY, pos
        byte = np.int64(data[pos])
        pos += 1
        if byte >= 0xF0:
            dt = np.uint64(byte & 0xF)
            shift = 4
            while pos < stop and data[pos] >= 0xF0:
                if shift == 64:
                    return LONG_JUMP, pos
                dt |= np.uint64(data[pos] & 0xF) << np.uint64(shift)
                shift += 4
                pos += 1
            cur += dt  # wrapping: a negative time after a positive one is a long jump
            continue
        cur += np.uint64(byte >> 4)
        run = byte & 0xF
        if run == 15:
            if pos + 2 > stop:
                return ENDS_EARLY, pos
            run = _u16(data, pos)
            pos += 2
        if i + run > count:
            return RUN_PAST_COUNT, pos
        if i < keep and cur >= _TOP_BIT:
            return NEGATIVE_TIME, pos
        _fill_run(ts, i, run, keep, cur)
        i += run
    return OK, pos


@nb.njit(nogil=True, cache=True)
def _decode_packed_yxp(
    data: Any, pos: int, stop: int, count: int, keep: int, xs: Any, ys: Any, ps: Any
) -> Any:
    """Layout A: 24-bit (y, x, p) values, four to three u32 words."""
    groups = (count + 3) // 4
    if pos + 12 * groups > stop:
        return ENDS_EARLY, pos
    for g in range(min(groups, (keep + 3) // 4)):
        at = pos + 12 * g
        w0 = _u32(data, at)
        w1 = _u32(data, at + 4)
        w2 = _u32(data, at + 8)
        v0 = w0 >> 8
        v1 = (w0 & 0xFF) | (w1 >> 16) << 8
        v2 = (w1 & 0xFFFF) | (w2 >> 24) << 16
        v3 = w2 & 0xFFFFFF
        k = 4 * g  # the scratch columns have room for a whole last group
        ys[k], xs[k], ps[k] = (v0 >> 12) & 0x7FF, (v0 >> 1) & 0x7FF, v0 & 1
        ys[k + 1], xs[k + 1], ps[k + 1] = (v1 >> 12) & 0x7FF, (v1 >> 1) & 0x7FF, v1 & 1
        ys[k + 2], xs[k + 2], ps[k + 2] = (v2 >> 12) & 0x7FF, (v2 >> 1) & 0x7FF, v2 & 1
        ys[k + 3], xs[k + 3], ps[k + 3] = (v3 >> 12) & 0x7FF, (v3 >> 1) & 0x7FF, v3 & 1
    return OK, pos + 12 * groups


@nb.njit(nogil=True, cache=True)
def _decode_y_runs(data: Any, pos: int, stop: int, count: int, keep: int, ys: Any) -> Any:
    i = 0
    while i < count:
        if pos + 2 > stop:
            return ENDS_EARLY, pos
        word = _u16(data, pos)
        pos += 2
        run = word & 31
        if run == 31:
            if pos + 2 > stop:
                return ENDS_EARLY, pos
            run = _u16(data, pos)
            pos += 2
        if i + run > count:
            return RUN_PAST_COUNT, pos
        y = word >> 5
        _fill_run(ys, i, run, keep, y)
        i += run
    return OK, pos


@nb.njit(nogil=True, cache=True)
def _decode_packed_xp(
    data: Any, pos: int, stop: int, count: int, keep: int, xs: Any, ps: Any
) -> Any:
    """Layout B: 12-bit (x, p) values, four to three u16 words."""
    groups = (count + 3) // 4
    if pos + 6 * groups > stop:
        return ENDS_EARLY, pos
    for g in range(min(groups, (keep + 3) // 4)):
        at = pos + 6 * g
        w0 = _u16(data, at)
        w1 = _u16(data, at + 2)
        w2 = _u16(data, at + 4)
        v0 = w0 >> 4
        v1 = (w0 & 0xF) | (w1 >> 8) << 4
        v2 = (w1 & 0xFF) | (w2 >> 12) << 8
        v3 = w2 & 0xFFF
        k = 4 * g
        xs[k], ps[k] = v0 >> 1, v0 & 1
        xs[k + 1], ps[k + 1] = v1 >> 1, v1 & 1
        xs[k + 2], ps[k + 2] = v2 >> 1, v2 & 1
        xs[k + 3], ps[k + 3] = v3 >> 1, v3 & 1
    return OK, pos + 6 * groups


@nb.njit(nogil=True, cache=True)
def _decode_masked_x(data: Any, pos: int, stop: int, count: int, xs: Any) -> Any:
    """Layout C's x: a base and a mask of up to five following x (the last word may name
    up to five values past ``count``, and every word writes six slots: the scratch column
    has room for both)."""
    i = 0
    while i < count:
        if pos + 2 > stop:
            return ENDS_EARLY, pos
        word = _u16(data, pos)
        pos += 2
        x = word >> 5
        # Each candidate is written, then kept by moving on when its bit is set (no branch).
        xs[i] = x
        i += 1
        xs[i] = x + 1
        i += (word >> 4) & 1
        xs[i] = x + 2
        i += (word >> 3) & 1
        xs[i] = x + 3
        i += (word >> 2) & 1
        xs[i] = x + 4
        i += (word >> 1) & 1
        xs[i] = x + 5
        i += word & 1
    return OK, pos


@nb.njit(nogil=True, cache=True)
def _decode_p_runs(data: Any, pos: int, stop: int, count: int, keep: int, ps: Any) -> Any:
    i = 0
    while i < count:
        if pos >= stop:
            return ENDS_EARLY, pos
        byte = np.int64(data[pos])
        pos += 1
        run = byte & 127
        if run == 127:
            if pos + 2 > stop:
                return ENDS_EARLY, pos
            run = _u16(data, pos)
            pos += 2
        if i + run > count:
            return RUN_PAST_COUNT, pos
        p = byte >> 7
        _fill_run(ps, i, run, keep, p)
        i += run
    return OK, pos


@nb.njit(nogil=True, cache=True)
def _decode_block(
    data: Any,
    start: int,
    stop: int,
    capacity: int,
    keep: int,
    ts: Any,
    xs: Any,
    ys: Any,
    ps: Any,
) -> Any:
    """One ECF block at data[start:stop], its first ``keep`` events into the scratch columns
    (sized for 65,535 events and 16 more); (status, position)."""
    if stop - start < 12:
        return ENDS_EARLY, start
    header = _u32(data, start)
    count = header >> 2
    if count > MAX_BLOCK_EVENTS or count > capacity:
        return TOO_MANY, start
    if count < keep:
        return TOO_FEW, start
    status, pos = _decode_times(data, start + 4, stop, count, keep, ts)
    if status != OK:
        return status, pos
    if header & 2:
        return _decode_packed_yxp(data, pos, stop, count, keep, xs, ys, ps)
    status, pos = _decode_y_runs(data, pos, stop, count, keep, ys)
    if status != OK:
        return status, pos
    if header & 1:
        return _decode_packed_xp(data, pos, stop, count, keep, xs, ps)
    status, pos = _decode_masked_x(data, pos, stop, count, xs)
    if status != OK:
        return status, pos
    return _decode_p_runs(data, pos, stop, count, keep, ps)


@nb.njit(nogil=True, cache=True)
def _decode_raw(
    data: Any, start: int, stop: int, keep: int, ts: Any, xs: Any, ys: Any, ps: Any
) -> Any:
    """A chunk the optional filter skipped: plain 16-byte EventCD records."""
    if stop - start < keep * _RAW_RECORD:
        return ENDS_EARLY, stop
    for k in range(keep):
        at = start + k * _RAW_RECORD
        t = _u64(data, at + 8)
        if t >= _TOP_BIT:
            return NEGATIVE_TIME, at + 8
        ts[k] = t
        xs[k] = _u16(data, at)
        ys[k] = _u16(data, at + 2)
        p = _u16(data, at + 4)
        ps[k] = 1 if 0 < p < 0x8000 else 0  # the i16 polarity is positive
    return OK, start + keep * _RAW_RECORD


@nb.njit(nogil=True, cache=True)
def _emit(
    ts: Any, xs: Any, ys: Any, ps: Any, keep: int, events: Any, n: int, width: int, height: int
) -> int:
    """The decoded columns into events[n:] as records, those outside the sensor left out;
    returns the new n. Each event is written, then kept by moving on (no branch): a slot is
    written at most once past the last kept event, always below n + keep."""
    for k in range(keep):
        x = xs[k]
        y = ys[k]
        event = events[n]
        event.t = ts[k]
        event.x = x
        event.y = y
        event.on = ps[k] != 0
        n += (x < width) & (y < height)
    return n


@nb.njit(nogil=True, cache=True)
def decode_chunks(
    data: Any,
    offsets: Any,
    sizes: Any,
    capacities: Any,
    keeps: Any,
    raw: Any,
    events: Any,
    n: int,
    width: int,
    height: int,
) -> tuple[int, int, int, int, int]:
    """Decode chunks (file bytes data[offsets[i] : offsets[i] + sizes[i]], an offset below 0
    for a chunk never written) into events[n:], the first ``keeps[i]`` events of each, events
    outside ``width`` x ``height`` dropped.

    Returns (status, chunks decoded, position in the failing chunk, new n, events dropped).
    """
    room = MAX_BLOCK_EVENTS
    for c in range(keeps.size):
        room = max(room, keeps[c])
    ts = np.empty(room + 16, np.uint64)
    xs = np.empty(room + 16, np.uint16)
    ys = np.empty(room + 16, np.uint16)
    ps = np.empty(room + 16, np.uint8)
    dropped = 0
    for c in range(offsets.size):
        start = offsets[c]
        keep = keeps[c]
        if start < 0:
            return MISSING, c, 0, n, dropped
        stop = start + sizes[c]
        if stop > data.size:
            return ENDS_EARLY, c, data.size - start, n, dropped
        if raw[c]:
            status, pos = _decode_raw(data, start, stop, keep, ts, xs, ys, ps)
        else:
            status, pos = _decode_block(data, start, stop, capacities[c], keep, ts, xs, ys, ps)
        if status != OK:
            return status, c, pos - start, n, dropped
        end = _emit(ts, xs, ys, ps, keep, events, n, width, height)
        dropped += n + keep - end
        n = end
    return OK, offsets.size, 0, n, dropped


# -- encoding ---------------------------------------------------------------------------------


def block_bound(count: int) -> int:
    """Bytes enough for any block of ``count`` events: 12 bytes of header and first time,
    then per event at most 16 jump nibbles, a run byte and its u16, 5 bytes of coordinates,
    and a packed group's tail."""
    return 12 + 24 * count + 16


@nb.njit(nogil=True, cache=True, inline="always")
def _put_u16(out: Any, at: int, value: int) -> None:
    out[at] = value & 0xFF
    out[at + 1] = (value >> 8) & 0xFF


@nb.njit(nogil=True, cache=True, inline="always")
def _put_u32(out: Any, at: int, value: int) -> None:
    _put_u16(out, at, value & 0xFFFF)
    _put_u16(out, at + 2, (value >> 16) & 0xFFFF)


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True, inline="always")
def _yxp(events: Any, start: int, count: int, i: int) -> int:
    if i >= count:
        return 0  # the tail slots of a fresh encoder hold zeros
    event = events[start + i]
    return (int(event.y) << 12 | int(event.x) << 1 | int(event.on)) & 0xFFFFFFFF


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True, inline="always")
def _xp(events: Any, start: int, count: int, i: int) -> int:
    if i >= count:
        return 0
    event = events[start + i]
    return (int(event.x) << 1 | int(event.on)) & 0xFFFF


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
def encode_blocks(
    events: Any, start: int, blocks: int, per_block: int, out: Any, ends: Any
) -> None:
    """``blocks`` blocks of ``per_block`` events from events[start:], one after another in
    ``out`` (at least ``blocks`` times :func:`block_bound`); block b ends at ends[b]."""
    pos = 0
    for b in range(blocks):
        pos += encode_block(events, start + b * per_block, per_block, out[pos:])
        ends[b] = pos
