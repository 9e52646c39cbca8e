"""Prophesee EVT 3.0 decoding: the word types, the decoder's state slots and the numba
kernels that turn words into events and triggers (the file reader's and the stream decoder's).

Decoding follows OpenEB's HAL decoder with its default (basic-check) validator for time and
rows: start at the first TIME_HIGH, a 24-bit time counter that loops when TIME_HIGH drops by
half its range or more, TIME_LOW applied as is (even backwards), ADDR_Y with bit 11 or a row
past the sensor silencing the addresses that follow it.

Vector words follow the format's definition (Prophesee's EVT 3.0 description and OpenEB's
standalone decoder), which faery, evlib and the ``evt3`` crate share: after a VECT_BASE_X, any
number of VECT_12 and VECT_8 words in any order, each giving events at ``base_x + bit`` for its
12 or 8 bits and then advancing ``base_x`` by 12 or 8. Cameras send VECT_12, VECT_12, VECT_8,
which OpenEB's HAL decoder reads as one 32-bit group and rejects otherwise; the two agree on
everything cameras send. An event past the sensor's width, single or in a vector, is dropped
and counted (OpenEB returns single ones and rejects whole groups). OTHERS words and their
CONTINUED payload words change no state, so no word depends on the ones after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit

_ADDR_Y, _ADDR_Y_OTHER, _ADDR_X, _VECT_BASE_X = 0x0, 0x1, 0x2, 0x3
_VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH, _EXT_TRIGGER = 0x4, 0x5, 0x6, 0x8, 0xA

# Decoder state slots.
_STARTED, _LOOP, _HIGH, _LOW, _Y, _IS_CD, _VALID, _BASE_X, _BASE_ON, _DROPPED = range(10)
_STATE_SIZE = 10
# What a mid-file guess must get right; the loop count is relative and drops are summed.
_RESUMABLE = (_STARTED, _HIGH, _LOW, _Y, _IS_CD, _VALID, _BASE_X, _BASE_ON)
_MOST_VECTOR_EVENTS = 32  # events from one VECT_12, VECT_12, VECT_8 run


@njit(nogil=True, cache=True)
def _in_row_limits(width: int, height: int) -> Any:
    """Per `word >> 11`, the bound `word & 0x7FF` must stay under for _decode_in_row to take
    the word: the row and column ranges, no bound on TIME_LOW, 0 (never) for the rest."""
    limits = np.zeros(32, np.int64)
    limits[_ADDR_Y << 1] = height  # rows with bit 11 set are past any sensor
    limits[_ADDR_X << 1] = width
    limits[(_ADDR_X << 1) | 1] = width
    limits[_TIME_LOW << 1] = 1 << 11
    limits[(_TIME_LOW << 1) | 1] = 1 << 11
    return limits


@njit(nogil=True, cache=True, inline="always")
def _vector_at(data: Any, i: int, kind: int) -> tuple[int, int, int]:
    """The vector word at i (kind VECT_12 or VECT_8): (mask, columns it covers, words).

    A camera's VECT_12, VECT_12, VECT_8 run is read as one 32-column mask: the same events
    as word by word, in one pass.
    """
    first = np.int64(data[np.uint64(i)])
    if kind == _VECT_8:
        return first & 0xFF, 8, 1
    if (
        i + 2 < data.size
        and (np.int64(data[np.uint64(i + 1)]) >> 12) == _VECT_12
        and (np.int64(data[np.uint64(i + 2)]) >> 12) == _VECT_8
    ):
        mask = (
            (first & 0xFFF)
            | ((np.int64(data[np.uint64(i + 1)]) & 0xFFF) << 12)
            | ((np.int64(data[np.uint64(i + 2)]) & 0xFF) << 24)
        )
        return mask, 32, 3
    return first & 0xFFF, 12, 1


@njit(nogil=True, cache=True, inline="always")
def _write_vector(
    events: Any, n: int, t: int, y: int, x0: int, on: bool, mask: int, columns: int, width: int
) -> tuple[int, int]:
    """Write the events of a vector mask at columns x0...: (n after, events dropped past the
    sensor's width). Room for 32 events is the caller's check."""
    dropped = 0
    if x0 + columns > width:
        inside = np.int64(0) if x0 >= width else (np.int64(1) << (width - x0)) - 1
        outside = mask & ~inside
        mask &= inside
        while outside != 0:
            dropped += outside & 1
            outside >>= 1
    # Every bit up to the highest set one writes a candidate event and only set bits keep
    # theirs: a branch per bit costs several times more.
    offset = 0
    while mask != 0:
        event = events[np.uint64(n)]
        event.t = np.uint64(t)
        event.x = np.uint16(x0 + offset)
        event.y = np.uint16(y)
        event.on = on
        n += mask & 1
        mask >>= 1
        offset += 1
    return n, dropped


@njit(nogil=True, cache=True, inline="always")
def _row_word(
    events: Any, n: int, t_high: int, low: int, y: int, key: int, x: int, content: int
) -> tuple[int, int, int]:
    """One row, column or TIME_LOW word in _decode_in_row: (n, y, low) after it."""
    kind = key >> 1
    # Masks (all ones where the word is of that kind) rather than `if`s, which LLVM would
    # turn back into branches.
    row_mask = -np.int64(kind == _ADDR_Y)
    low_mask = -np.int64(kind == _TIME_LOW)
    y = (content & row_mask) | (y & ~row_mask)
    low = (content & low_mask) | (low & ~low_mask)
    event = events[np.uint64(n)]
    event.t = np.uint64(t_high | low)
    event.x = np.uint16(x)
    event.y = np.uint16(y)
    event.on = key & 1 == 1
    return n + np.int64(kind == _ADDR_X), y, low


@njit(nogil=True, cache=True)
def _decode_in_row(
    data: Any,
    i: int,
    events: Any,
    n: int,
    t_high: int,
    low: int,
    y: int,
    base_x: int,
    base_on: int,
    dropped: int,
    limits: Any,
    width: int,
) -> tuple[int, int, int, int, int, int, int]:
    """Decode from word i while the row is in the sensor and the words are columns in the
    sensor, rows in the sensor, TIME_LOW, VECT_BASE_X and vector words (nearly all words of
    most streams); stop at any other word or when the output is full. Returns i, n, low, y,
    base_x, base_on and dropped.

    Rows, columns and TIME_LOW come in no predictable order, so they take no branch: every
    such word writes a candidate event and only columns advance n. This is a function of its
    own because LLVM allocates registers far better for this loop alone; its indexes are
    unsigned, which spares it numba's handling of negative ones.
    """
    size = data.size
    capacity = events.size
    stop = min(size, i + capacity - n)
    while i < stop:
        if i + 1 < stop:
            word0 = np.int64(data[np.uint64(i)])
            word1 = np.int64(data[np.uint64(i + 1)])
            key0 = word0 >> 11
            key1 = word1 >> 11
            x0 = word0 & 0x7FF
            x1 = word1 & 0x7FF
            if (x0 < limits[key0]) & (x1 < limits[key1]):
                n, y, low = _row_word(events, n, t_high, low, y, key0, x0, word0 & 0xFFF)
                n, y, low = _row_word(events, n, t_high, low, y, key1, x1, word1 & 0xFFF)
                i += 2
                continue
        word = np.int64(data[np.uint64(i)])
        key = word >> 11
        x = word & 0x7FF
        kind = key >> 1
        if x >= limits[key]:
            if kind == _VECT_BASE_X:
                base_x = x
                base_on = key & 1
                i += 1
                continue
            if (kind != _VECT_12 and kind != _VECT_8) or n + _MOST_VECTOR_EVENTS > capacity:
                break
            mask, columns, words = _vector_at(data, i, kind)
            n, out = _write_vector(
                events, n, t_high | low, y, base_x, base_on != 0, mask, columns, width
            )
            dropped += out
            base_x += columns
            i += words
            stop = min(size, i + capacity - n)
            continue
        n, y, low = _row_word(events, n, t_high, low, y, key, x, word & 0xFFF)
        i += 1
    return i, n, low, y, base_x, base_on, dropped


@njit(nogil=True, cache=True)
def _decode(
    data: Any,
    state: Any,
    width: int,
    height: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    size = data.size
    capacity = events.size
    trigger_capacity = triggers.size
    started = state[_STARTED]
    loop = state[_LOOP]
    high = state[_HIGH]
    low = state[_LOW]
    y = state[_Y]
    is_cd = state[_IS_CD]
    valid = state[_VALID]
    base_x = state[_BASE_X]
    base_on = state[_BASE_ON]
    dropped = state[_DROPPED]
    limits = _in_row_limits(width, height)
    i = 0
    if started == 0:
        while i < size:
            word = np.int64(data[i])
            if (word >> 12) == _TIME_HIGH:
                value = word & 0xFFF
                high = value - 1 if value > 0 else 0
                loop = 0
                low = 0
                started = 1
                break
            i += 1
    while i < size:
        if valid != 0:
            t_high = (loop << 24) | (high << 12)
            i, n, low, y, base_x, base_on, dropped = _decode_in_row(
                data, i, events, n, t_high, low, y, base_x, base_on, dropped, limits, width
            )
        if i >= size:
            break
        word = np.int64(data[i])
        kind = word >> 12
        if kind == _ADDR_X:
            if valid != 0:
                if n >= capacity:
                    break
                x = word & 0x7FF
                if x < width:
                    event = events[n]
                    event.t = np.uint64((loop << 24) | (high << 12) | low)
                    event.x = np.uint16(x)
                    event.y = np.uint16(y)
                    event.on = (word >> 11) & 1 == 1
                    n += 1
                else:
                    dropped += 1
            i += 1
        elif kind == _ADDR_Y:
            y = word & 0xFFF
            is_cd = 1
            valid = 1 if y < height else 0
            i += 1
        elif kind == _TIME_LOW:
            low = word & 0xFFF
            i += 1
        elif kind in (_VECT_12, _VECT_8):
            if valid != 0 and n + _MOST_VECTOR_EVENTS > capacity:
                break
            mask, columns, words = _vector_at(data, i, kind)
            if valid != 0:
                t = (loop << 24) | (high << 12) | low
                n, out = _write_vector(events, n, t, y, base_x, base_on != 0, mask, columns, width)
                dropped += out
            base_x += columns
            i += words
        elif kind == _TIME_HIGH:
            value = word & 0xFFF
            if high >= value + 2048:
                loop += 1
            if high != value:
                low = 0
            high = value
            i += 1
        elif kind == _EXT_TRIGGER:
            if m >= trigger_capacity:
                break
            trigger = triggers[m]
            trigger.t = np.uint64((loop << 24) | (high << 12) | low)
            trigger.id = np.uint8((word >> 8) & 0xF)
            trigger.rising = word & 1 == 1
            m += 1
            i += 1
        else:
            # OTHERS, CONTINUED and unused words change nothing else.
            if kind == _ADDR_Y_OTHER:
                is_cd = 0
            elif kind == _VECT_BASE_X:
                base_x = word & 0x7FF
                base_on = (word >> 11) & 1
            valid = 1 if (is_cd != 0 and y < height) else 0
            i += 1
    state[_STARTED] = started
    state[_LOOP] = loop
    state[_HIGH] = high
    state[_LOW] = low
    state[_Y] = y
    state[_IS_CD] = is_cd
    state[_VALID] = valid
    state[_BASE_X] = base_x
    state[_BASE_ON] = base_on
    state[_DROPPED] = dropped
    return i, n, m
