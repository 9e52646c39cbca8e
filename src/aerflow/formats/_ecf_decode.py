"""Decoding ECF blocks (shared/specs/hdf5-ecf.md §3) straight into event records.

A block holds the timestamps (a u64 first time, then run bytes and jump nibbles), then x, y
and polarity in one of three layouts; each part is one pass over its own bytes, and every
pass writes its field of the :data:`aerflow.EVENTS_DTYPE` records in place, in the output
array itself: no columns in between and no copy afterwards. Every read is checked against
the block's length and every run against the event count, so a damaged block gives a status
code (turned into a FormatError by the reader) instead of a read out of bounds.

The passes write a few records past a block's event count (runs are filled four at a time,
packed groups four at a time, layout C's last mask may name values past the count).
A block is decoded in place only when the output it owns has room for that; otherwise (the
last chunk of a call, an edge chunk with padding past the dataset's length) it goes through
a scratch array and its first ``keep`` events are copied out. Events outside the sensor are
rare: each pass tracks its largest coordinate, and only a chunk that exceeds the sensor is
compacted afterwards.
"""

from __future__ import annotations

import sys
from typing import Any

import numba as nb
import numpy as np
from numba.core import types as nbt
from numba.extending import intrinsic

from ..events import EVENTS_DTYPE

__all__ = ["MAX_BLOCK_EVENTS", "STATUS_MESSAGES", "decode_chunks"]

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
_U = np.uint64  # indices made unsigned: numba then leaves out the negative-index wraparound
_SLACK = 16  # records a block's passes may write past its count (at most 5 are)


def _unaligned_load(bits: int) -> Any:
    """A numba intrinsic: the ``bits``-bit little-endian integer at data[at] (any address;
    the caller has checked the bounds), as int64 (as uint64 for 64 bits). One load, where
    assembling bytes takes several instructions per value."""
    stored = {16: nbt.uint16, 32: nbt.uint32, 64: nbt.uint64}[bits]
    result = nbt.uint64 if bits == 64 else nbt.int64

    @intrinsic
    def load(typingctx: Any, data: Any, at: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            array = context.make_array(signature.args[0])(context, builder, args[0])
            pointer = builder.gep(array.data, [args[1]])
            pointer = builder.bitcast(pointer, context.get_value_type(stored).as_pointer())
            value = builder.load(pointer, align=1)
            if bits == 64:
                return value
            return builder.zext(value, context.get_value_type(nbt.int64))

        return result(data, nbt.int64), codegen

    return load


if sys.byteorder == "little":  # every platform numba supports
    _u16 = _unaligned_load(16)
    _u32 = _unaligned_load(32)
    _u64 = _unaligned_load(64)
else:  # pragma: no cover

    @nb.njit(nogil=True, cache=True, inline="always")
    def _u16(data: Any, at: int) -> Any:
        return np.int64(data[_U(at)]) | np.int64(data[_U(at + 1)]) << 8

    @nb.njit(nogil=True, cache=True, inline="always")
    def _u32(data: Any, at: int) -> Any:
        return _u16(data, at) | _u16(data, at + 2) << 16

    @nb.njit(nogil=True, cache=True, inline="always")
    def _u64(data: Any, at: int) -> Any:
        return np.uint64(_u32(data, at)) | np.uint64(_u32(data, at + 4)) << np.uint64(32)


# Runs are filled four records at a time, the first four blindly: fewer branches to guess
# than one store per record, at the cost of up to three records written past the run (the
# owner has room past the end, and later runs overwrite the surplus). One copy per field:
# filling a field view (``out["t"]``) instead was 30 % slower here.


@nb.njit(nogil=True, cache=True, inline="always")
def _fill_t(out: Any, k: int, run: int, value: Any) -> None:
    out[_U(k)].t = value
    out[_U(k + 1)].t = value
    out[_U(k + 2)].t = value
    out[_U(k + 3)].t = value
    for j in range(k + 4, k + run, 4):
        out[_U(j)].t = value
        out[_U(j + 1)].t = value
        out[_U(j + 2)].t = value
        out[_U(j + 3)].t = value


@nb.njit(nogil=True, cache=True, inline="always")
def _fill_y(out: Any, k: int, run: int, value: Any) -> None:
    out[_U(k)].y = value
    out[_U(k + 1)].y = value
    out[_U(k + 2)].y = value
    out[_U(k + 3)].y = value
    for j in range(k + 4, k + run, 4):
        out[_U(j)].y = value
        out[_U(j + 1)].y = value
        out[_U(j + 2)].y = value
        out[_U(j + 3)].y = value


@nb.njit(nogil=True, cache=True, inline="always")
def _fill_on(out: Any, k: int, run: int, value: Any) -> None:
    out[_U(k)].on = value
    out[_U(k + 1)].on = value
    out[_U(k + 2)].on = value
    out[_U(k + 3)].on = value
    for j in range(k + 4, k + run, 4):
        out[_U(j)].on = value
        out[_U(j + 1)].on = value
        out[_U(j + 2)].on = value
        out[_U(j + 3)].on = value


@nb.njit(nogil=True, cache=True)
def _decode_times(
    data: Any, pos: int, stop: int, count: int, keep: int, out: Any, base: int
) -> Any:
    """Timestamps into out[base : base + count].t; (status, next position)."""
    cur = _u64(data, pos)
    pos += 8
    i = 0
    while i < count:
        if pos >= stop:
            return ENDS_EARLY, pos
        byte = np.int64(data[_U(pos)])
        pos += 1
        if byte >= 0xF0:
            dt = np.uint64(byte & 0xF)
            shift = 4
            while pos < stop and data[_U(pos)] >= 0xF0:
                if shift == 64:
                    return LONG_JUMP, pos
                dt |= np.uint64(data[_U(pos)] & 0xF) << np.uint64(shift)
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
        _fill_t(out, base + i, run, cur)
        i += run
    return OK, pos


@nb.njit(nogil=True, cache=True, inline="always")
def _put_yxp(out: Any, k: int, value: int) -> int:
    y = (value >> 12) & 0x7FF
    x = (value >> 1) & 0x7FF
    event = out[_U(k)]
    event.y = y
    event.x = x
    event.on = (value & 1) != 0
    return max(x, y)


@nb.njit(nogil=True, cache=True)
def _decode_packed_yxp(data: Any, pos: int, stop: int, count: int, out: Any, base: int) -> Any:
    """Layout A: 24-bit (y, x, p) values, four to three u32 words; (status, position,
    largest x, largest y) with one bound for both coordinates."""
    groups = (count + 3) // 4
    if pos + 12 * groups > stop:
        return ENDS_EARLY, pos, 0, 0
    top = 0
    for g in range(groups):
        at = pos + 12 * g
        w0 = _u32(data, at)
        w1 = _u32(data, at + 4)
        w2 = _u32(data, at + 8)
        k = base + 4 * g
        top = max(top, _put_yxp(out, k, w0 >> 8))
        top = max(top, _put_yxp(out, k + 1, (w0 & 0xFF) | (w1 >> 16) << 8))
        top = max(top, _put_yxp(out, k + 2, (w1 & 0xFFFF) | (w2 >> 24) << 16))
        top = max(top, _put_yxp(out, k + 3, w2 & 0xFFFFFF))
    return OK, pos + 12 * groups, top, top


@nb.njit(nogil=True, cache=True)
def _decode_y_runs(data: Any, pos: int, stop: int, count: int, out: Any, base: int) -> Any:
    """(status, position, largest y)."""
    i = 0
    top = 0
    while i < count:
        if pos + 2 > stop:
            return ENDS_EARLY, pos, top
        word = _u16(data, pos)
        pos += 2
        run = word & 31
        if run == 31:
            if pos + 2 > stop:
                return ENDS_EARLY, pos, top
            run = _u16(data, pos)
            pos += 2
        if i + run > count:
            return RUN_PAST_COUNT, pos, top
        y = word >> 5
        top = max(top, y)
        _fill_y(out, base + i, run, y)
        i += run
    return OK, pos, top


@nb.njit(nogil=True, cache=True, inline="always")
def _put_xp(out: Any, k: int, value: int) -> int:
    event = out[_U(k)]
    event.x = value >> 1
    event.on = (value & 1) != 0
    return value >> 1


@nb.njit(nogil=True, cache=True)
def _decode_packed_xp(data: Any, pos: int, stop: int, count: int, out: Any, base: int) -> Any:
    """Layout B: 12-bit (x, p) values, four to three u16 words; (status, position,
    largest x)."""
    groups = (count + 3) // 4
    if pos + 6 * groups > stop:
        return ENDS_EARLY, pos, 0
    top = 0
    for g in range(groups):
        at = pos + 6 * g
        w0 = _u16(data, at)
        w1 = _u16(data, at + 2)
        w2 = _u16(data, at + 4)
        k = base + 4 * g
        top = max(top, _put_xp(out, k, w0 >> 4))
        top = max(top, _put_xp(out, k + 1, (w0 & 0xF) | (w1 >> 8) << 4))
        top = max(top, _put_xp(out, k + 2, (w1 & 0xFF) | (w2 >> 12) << 8))
        top = max(top, _put_xp(out, k + 3, w2 & 0xFFF))
    return OK, pos + 6 * groups, top


def _mask_tables() -> tuple[Any, Any, Any]:
    """For each 5-bit mask of layout C: how many x follow the base, their offsets from it
    (bit 4 is +1 ... bit 0 is +5) and the largest offset."""
    counts = np.zeros(32, np.int64)
    offsets = np.zeros((32, 5), np.int64)
    for mask in range(32):
        kept = [j + 1 for j in range(5) if mask & (16 >> j)]
        counts[mask] = len(kept)
        offsets[mask, : len(kept)] = kept
    return counts, offsets, offsets.max(axis=1)


_MASK_COUNTS, _MASK_OFFSETS, _MASK_LAST = _mask_tables()


@nb.njit(nogil=True, cache=True, inline="always")
def _x_word(word: int, out: Any, k: int) -> Any:
    """One word of layout C's x into out[k:]; (events written, largest x). Most masks name
    no x or one: two x are written blindly (the second overwritten later when unused), a
    loop runs only for the rest. A branch on the mask itself would be mispredicted often."""
    x = word >> 5
    mask = word & 31
    out[_U(k)].x = x
    out[_U(k + 1)].x = x + _MASK_OFFSETS[mask, 0]
    following = _MASK_COUNTS[mask]
    if following > 1:
        for q in range(1, following):
            out[_U(k + 1 + q)].x = x + _MASK_OFFSETS[mask, q]
    return 1 + following, x + _MASK_LAST[mask]


@nb.njit(nogil=True, cache=True)
def _decode_masked_x(data: Any, pos: int, stop: int, count: int, out: Any, base: int) -> Any:
    """Layout C's x: a base and a mask of up to five following x (x + 1 for bit 4 ... x + 5
    for bit 0); the last word may name values past ``count``. Sensors rarely read out
    neighbours in one word. Every word gives at least one event, so when the block has two
    bytes per event left no word needs its own bounds check. (status, position, largest x)."""
    i = 0
    top = 0
    if pos + 2 * count <= stop:
        while i < count:
            written, last = _x_word(_u16(data, pos), out, base + i)
            pos += 2
            i += written
            top = max(top, last)
        return OK, pos, top
    while i < count:
        if pos + 2 > stop:
            return ENDS_EARLY, pos, top
        written, last = _x_word(_u16(data, pos), out, base + i)
        pos += 2
        i += written
        top = max(top, last)
    return OK, pos, top


@nb.njit(nogil=True, cache=True)
def _decode_p_runs(data: Any, pos: int, stop: int, count: int, out: Any, base: int) -> Any:
    i = 0
    while i < count:
        if pos >= stop:
            return ENDS_EARLY, pos
        byte = np.int64(data[_U(pos)])
        pos += 1
        run = byte & 127
        if run == 127:
            if pos + 2 > stop:
                return ENDS_EARLY, pos
            run = _u16(data, pos)
            pos += 2
        if i + run > count:
            return RUN_PAST_COUNT, pos
        _fill_on(out, base + i, run, byte >= 128)
        i += run
    return OK, pos


@nb.njit(nogil=True, cache=True)
def _block_count(data: Any, start: int, stop: int) -> int:
    """The event count a block's header announces (0 when there is no header)."""
    return _u32(data, start) >> 2 if stop - start >= 4 else 0


@nb.njit(nogil=True, cache=True)
def _decode_block(
    data: Any, start: int, stop: int, capacity: int, keep: int, out: Any, base: int
) -> Any:
    """One ECF block at data[start:stop], all its events into out[base:] (which has room
    for them and :data:`_SLACK` more); (status, position, largest x, largest y)."""
    if stop - start < 12:
        return ENDS_EARLY, start, 0, 0
    header = _u32(data, start)
    count = header >> 2
    if count > MAX_BLOCK_EVENTS or count > capacity:
        return TOO_MANY, start, 0, 0
    if count < keep:
        return TOO_FEW, start, 0, 0
    status, pos = _decode_times(data, start + 4, stop, count, keep, out, base)
    if status != OK:
        return status, pos, 0, 0
    if header & 2:
        return _decode_packed_yxp(data, pos, stop, count, out, base)
    status, pos, top_y = _decode_y_runs(data, pos, stop, count, out, base)
    if status != OK:
        return status, pos, 0, 0
    if header & 1:
        status, pos, top_x = _decode_packed_xp(data, pos, stop, count, out, base)
        return status, pos, top_x, top_y
    status, pos, top_x = _decode_masked_x(data, pos, stop, count, out, base)
    if status != OK:
        return status, pos, 0, 0
    status, pos = _decode_p_runs(data, pos, stop, count, out, base)
    return status, pos, top_x, top_y


@nb.njit(nogil=True, cache=True)
def _decode_raw(data: Any, start: int, stop: int, keep: int, out: Any, base: int) -> Any:
    """A chunk the optional filter skipped: plain 16-byte EventCD records; (status,
    position, largest x, largest y)."""
    if stop - start < keep * _RAW_RECORD:
        return ENDS_EARLY, stop, 0, 0
    top_x = top_y = 0
    for k in range(keep):
        at = start + k * _RAW_RECORD
        t = _u64(data, at + 8)
        if t >= _TOP_BIT:
            return NEGATIVE_TIME, at + 8, 0, 0
        x = _u16(data, at)
        y = _u16(data, at + 2)
        p = _u16(data, at + 4)
        event = out[_U(base + k)]
        event.t = t
        event.x = x
        event.y = y
        event.on = 0 < p < 0x8000  # the i16 polarity is positive
        top_x = max(top_x, x)
        top_y = max(top_y, y)
    return OK, start + keep * _RAW_RECORD, top_x, top_y


@nb.njit(nogil=True, cache=True)
def _keep_inside(
    source: Any, first: int, keep: int, events: Any, n: int, width: int, height: int
) -> int:
    """source[first : first + keep] into events[n:], those outside the sensor left out
    (source may be events itself, with first >= n); returns the new n."""
    for k in range(first, first + keep):
        event = source[k]
        x = event.x
        y = event.y
        if x < width and y < height:
            target = events[n]
            target.t = event.t
            target.x = x
            target.y = y
            target.on = event.on
            n += 1
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
    outside ``width`` x ``height`` dropped. Only events[n : n + sum(keeps)] is written.

    Returns (status, chunks decoded, position in the failing chunk, new n, events dropped).
    """
    room = MAX_BLOCK_EVENTS
    owned = n
    for c in range(keeps.size):
        room = max(room, keeps[c])
        owned += keeps[c]
    owned = min(owned, events.size)
    scratch = np.empty(0, EVENTS_DTYPE)
    dropped = 0
    for c in range(offsets.size):
        start = offsets[c]
        keep = keeps[c]
        if start < 0:
            return MISSING, c, 0, n, dropped
        stop = start + sizes[c]
        if stop > data.size:
            return ENDS_EARLY, c, data.size - start, n, dropped
        if raw[c] or n + _block_count(data, start, stop) + _SLACK <= owned:
            if raw[c]:
                status, pos, top_x, top_y = _decode_raw(data, start, stop, keep, events, n)
            else:
                status, pos, top_x, top_y = _decode_block(
                    data, start, stop, capacities[c], keep, events, n
                )
            if status != OK:
                return status, c, pos - start, n, dropped
            end = n + keep
            if top_x >= width or top_y >= height:
                end = _keep_inside(events, n, keep, events, n, width, height)
        else:
            if scratch.size == 0:
                scratch = np.empty(room + _SLACK, EVENTS_DTYPE)
            status, pos, _, _ = _decode_block(data, start, stop, capacities[c], keep, scratch, 0)
            if status != OK:
                return status, c, pos - start, n, dropped
            end = _keep_inside(scratch, 0, keep, events, n, width, height)
        dropped += n + keep - end
        n = end
    return OK, offsets.size, 0, n, dropped
