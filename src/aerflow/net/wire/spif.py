"""The ``spif`` and ``spif-t`` wire formats: SPIF's and aestream's 32-bit event words.

``spif`` — SPIF / aestream, no timestamps (one 32-bit word per event)::

    bit 31     1 (no timestamp follows)
    bits 30-16 x (15 bits)
    bit 15     polarity (1 = ON)
    bits 14-0  y (15 bits)

``spif-t`` — the same word with bit 31 = 0, followed by a second word holding the low 32
bits of the time in µs (8 bytes per event). Receivers of ``spif`` and ``spif-t`` read both
variants word by word: a word with bit 31 = 1 takes the time it was received (µs since
the receiver's first datagram), a word with bit 31 = 0 takes the next word as its time,
unwrapped to 64 bits. A lone last word whose timestamp is missing (aestream's own test
sends one) also takes the arrival time and is counted in ``untimed``. aestream sends the
last datagram of a timestamped stream with twice its length, the second half repeating
the previous datagram's words; a receiver that sees exactly that (a datagram of 4k words
after a full 64-word one, its second half equal to the same words of the previous one)
reads the first half only and counts the datagram as malformed.

Times of ``spif-t`` are unwrapped as :mod:`aerflow.net.wire` describes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._jit import njit
from .common import (
    C_EVENTS,
    C_MALFORMED,
    C_OUT_OF_RANGE,
    C_UNTIMED,
    S_LAST,
    S_OFFSET,
    S_PREVIOUS,
    _group,
    _unwrap,
)

__all__ = ["AESTREAM_WORDS"]

AESTREAM_WORDS = 64
"""Words in a full timestamped aestream datagram (32 events, 256 bytes)."""
_AESTREAM_WORDS = AESTREAM_WORDS


@njit(nogil=True, cache=True)
def _encode_spif(
    events: Any,
    start: int,
    timestamps: bool,
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
        if timestamps:
            words = out32[w0 : w0 + 2 * k]
            for j in range(k):
                event = chunk[j]
                word = (np.uint32(event.x) << 16) | np.uint32(event.y)
                if event.on:
                    word |= np.uint32(0x8000)
                words[2 * j] = word
                words[2 * j + 1] = np.uint32(event.t & np.uint64(0xFFFFFFFF))
            lengths[s] = 8 * k
        else:
            words = out32[w0 : w0 + k]
            for j in range(k):
                event = chunk[j]
                word = (np.uint32(event.x) << 16) | np.uint32(event.y) | np.uint32(0x80000000)
                if event.on:
                    word |= np.uint32(0x8000)
                words[j] = word
            lengths[s] = 4 * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


@njit(nogil=True, cache=True)
def _decode_spif(
    buf32: Any,
    stride: int,
    lengths: Any,
    arrivals: Any,
    n: int,
    out: Any,
    x_limit: int,
    y_limit: int,
    state: Any,
    counters: Any,
    previous: Any,
) -> int:
    last = state[S_LAST]
    offset = state[S_OFFSET]
    m = 0
    for d in range(n):
        length = lengths[d]
        if length < 0:
            continue
        if length & 3:
            counters[C_MALFORMED] += 1
        words = length >> 2
        w0 = (d * stride) >> 2
        timed = words >= 2 and (buf32[w0] & 0x80000000) == 0
        if timed and state[S_PREVIOUS] and words % 4 == 0 and words // 2 < _AESTREAM_WORDS:
            # aestream sends its last timestamped datagram with twice its length: the
            # second half repeats what the previous (full) datagram left in its buffer.
            stale = True
            for j in range(words // 2, min(words, _AESTREAM_WORDS)):
                if buf32[w0 + j] != previous[j]:
                    stale = False
                    break
            if stale:
                words //= 2
                counters[C_MALFORMED] += 1
        source = buf32[w0 : w0 + words]
        if timed and words == _AESTREAM_WORDS:
            for j in range(_AESTREAM_WORDS):
                previous[j] = source[j]
            state[S_PREVIOUS] = 1
        else:
            state[S_PREVIOUS] = 0
        dst = out[m : m + words]
        arrival = arrivals[d]
        kept = 0
        j = 0
        while j < words:
            word = np.int64(source[j])
            x = (word >> 16) & 0x7FFF
            y = word & 0x7FFF
            if word & 0x80000000:
                t = arrival
                j += 1
            elif j + 1 < words:
                t, last, offset = _unwrap(np.int64(source[j + 1]), last, offset)
                j += 2
            else:
                t = arrival
                counters[C_UNTIMED] += 1
                j += 1
            if x < x_limit and y < y_limit:
                event = dst[kept]
                event.t = np.uint64(t)
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = (word >> 15) & 1 == 1
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
    state[S_LAST] = last
    state[S_OFFSET] = offset
    counters[C_EVENTS] += m
    return m
