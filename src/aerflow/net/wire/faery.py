"""faery's wire formats, ``faery-t64`` and ``faery-t32``.

``faery-t64`` — faery's ``t64_x16_y16_on8``: 13-byte records ``t u64, x u16, y u16, on u8``
(the bytes of :data:`~aerflow.EVENTS_DTYPE`).

``faery-t32`` — faery's ``t32_x16_y15_on1``: 8-byte records ``t u32 (low 32 bits of µs),
x u16, (y << 1 | on) u16``; y < 2^15.

Times of ``faery-t32`` are unwrapped as :mod:`aerflow.net.wire` describes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._jit import njit
from .common import C_EVENTS, C_MALFORMED, C_OUT_OF_RANGE, S_LAST, S_OFFSET, _group, _unwrap

__all__: list[str] = []


@njit(nogil=True, cache=True)
def _encode_faery_t32(
    events: Any,
    start: int,
    out16: Any,
    out32: Any,
    stride: int,
    per_datagram: int,
    max_span: int,
    lengths: Any,
    last_times: Any,
    counts: Any,
) -> tuple[int, int]:
    n = events.size
    i = start
    s = 0
    while i < n and s < lengths.size:
        chunk = events[i:]
        k, _, hi = _group(chunk, per_datagram, max_span)
        w0 = (s * stride) >> 2
        words = out32[w0 : w0 + 2 * k]
        halves = out16[2 * w0 : 2 * w0 + 4 * k]
        for j in range(k):
            event = chunk[j]
            words[2 * j] = np.uint32(event.t & np.uint64(0xFFFFFFFF))
            halves[4 * j + 2] = event.x
            halves[4 * j + 3] = np.uint16((np.int64(event.y) << 1) | (1 if event.on else 0))
        lengths[s] = 8 * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


@njit(nogil=True, cache=True)
def _encode_faery_t64(
    events: Any,
    start: int,
    out8: Any,
    stride: int,
    per_datagram: int,
    max_span: int,
    lengths: Any,
    last_times: Any,
    counts: Any,
) -> tuple[int, int]:
    """The records are the bytes of EVENTS_DTYPE, polarity made 0 or 1."""
    n = events.size
    source = events.view(np.uint8)
    i = start
    s = 0
    while i < n and s < lengths.size:
        k, _, hi = _group(events[i:], per_datagram, max_span)
        dst = out8[s * stride : s * stride + 13 * k]
        src = source[13 * i : 13 * (i + k)]
        for byte in range(13 * k):
            dst[byte] = src[byte]
        for j in range(k):
            if dst[13 * j + 12] > 1:
                dst[13 * j + 12] = 1
        lengths[s] = 13 * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


@njit(nogil=True, cache=True)
def _decode_faery_t32(
    buf16: Any,
    buf32: Any,
    stride: int,
    lengths: Any,
    n: int,
    out: Any,
    x_limit: int,
    y_limit: int,
    state: Any,
    counters: Any,
) -> int:
    last = state[S_LAST]
    offset = state[S_OFFSET]
    m = 0
    for d in range(n):
        length = lengths[d]
        if length < 0:
            continue
        if length & 7:
            counters[C_MALFORMED] += 1
        records = length >> 3
        w0 = (d * stride) >> 2
        words = buf32[w0 : w0 + 2 * records]
        halves = buf16[2 * w0 : 2 * w0 + 4 * records]
        dst = out[m : m + records]
        kept = 0
        for j in range(records):
            t, last, offset = _unwrap(np.int64(words[2 * j]), last, offset)
            x = np.int64(halves[4 * j + 2])
            packed = np.int64(halves[4 * j + 3])
            y = packed >> 1
            if x < x_limit and y < y_limit:
                event = dst[kept]
                event.t = np.uint64(t)
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = (packed & 1) == 1
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
    state[S_LAST] = last
    state[S_OFFSET] = offset
    counters[C_EVENTS] += m
    return m


@njit(nogil=True, cache=True)
def _decode_faery_t64(
    buf8: Any,
    stride: int,
    lengths: Any,
    n: int,
    out: Any,
    x_limit: int,
    y_limit: int,
    counters: Any,
) -> int:
    m = 0
    for d in range(n):
        length = lengths[d]
        if length < 0:
            continue
        records = length // 13
        if records * 13 != length:
            counters[C_MALFORMED] += 1
        source = buf8[d * stride : d * stride + 13 * records]
        dst = out[m : m + records].view(np.uint8)
        if x_limit >= 1 << 16 and y_limit >= 1 << 16:  # every record is kept: copy bytes
            for byte in range(13 * records):
                dst[byte] = source[byte]
            for j in range(records):
                if dst[13 * j + 12] > 1:
                    dst[13 * j + 12] = 1
            m += records
            continue
        kept = 0
        for j in range(records):
            b = 13 * j
            x = np.int64(source[b + 8]) | (np.int64(source[b + 9]) << 8)
            y = np.int64(source[b + 10]) | (np.int64(source[b + 11]) << 8)
            if x < x_limit and y < y_limit:
                k = 13 * kept
                for byte in range(12):
                    dst[k + byte] = source[b + byte]
                dst[k + 12] = 1 if source[b + 12] else 0
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
    counters[C_EVENTS] += m
    return m
