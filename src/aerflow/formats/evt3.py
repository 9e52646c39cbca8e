"""Prophesee EVT 3.0: 16-bit stateful words with vectorised x addresses.

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

import os
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from .._room import OutputRoom
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet
from ._base import SecondShare, whole_second_origin
from .raw import RawReader, RawWriter, order_error

__all__ = [
    "SINGLE_LOOP_US",
    "Evt3Reader",
    "Evt3StreamDecoder",
    "Evt3StreamEncoder",
    "Evt3Writer",
    "encode",
    "new_encoder_state",
]

_ADDR_Y, _ADDR_Y_OTHER, _ADDR_X, _VECT_BASE_X = 0x0, 0x1, 0x2, 0x3
_VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH, _EXT_TRIGGER = 0x4, 0x5, 0x6, 0x8, 0xA

# Decoder state slots.
_STARTED, _LOOP, _HIGH, _LOW, _Y, _IS_CD, _VALID, _BASE_X, _BASE_ON, _DROPPED = range(10)
_STATE_SIZE = 10
# What a mid-file guess must get right; the loop count is relative and drops are summed.
_RESUMABLE = (_STARTED, _HIGH, _LOW, _Y, _IS_CD, _VALID, _BASE_X, _BASE_ON)
_TIME_HIGH_EVERY = 1 << 11  # words between restated TIME_HIGHs in written files
_LONGEST_STEP = 4094  # TIME_HIGH steps up from this on are split in two when written
_WORDS_PER_LOOP = 3  # at most, when the written clock passes a whole counter loop
_MOST_VECTOR_EVENTS = 32  # events from one VECT_12, VECT_12, VECT_8 run
SINGLE_LOOP_US = 1 << 34
"""Streams whose first time (µs) is below this are written from origin 0, later ones from
the whole second before their first time (the EVT 3.0 writer's rule)."""


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True, inline="always")
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


@nb.njit(nogil=True, cache=True, inline="always")
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


@nb.njit(nogil=True, cache=True, inline="always")
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


# Encoder state slots; -1 in _Y means no row was addressed yet.
_E_STARTED, _E_LOOP, _E_HIGH, _E_LOW, _E_Y = range(5)


@nb.njit(nogil=True, cache=True, inline="always")
def _needs_time(target: int, state: Any) -> bool:
    """Whether the clock must move to reach ``target``: tested before calling _emit_time,
    which costs far more than the test when it has nothing to do."""
    return bool(
        state[_E_STARTED] == 0
        or (target >> 12) != ((state[_E_LOOP] << 12) | state[_E_HIGH])
        or (target & 0xFFF) != state[_E_LOW]
    )


@nb.njit(nogil=True, cache=True, inline="always")
def _time_high_up(out: Any, k: int, high: int, value: int) -> int:
    """Append the TIME_HIGH words that move the counter's high part up from ``high`` to
    ``value`` within one loop: one word, or two where the step is 4094 or more, which some
    decoders (faery) do not follow in one go."""
    if value - high >= _LONGEST_STEP:
        out[k] = (_TIME_HIGH << 12) | ((high + value) >> 1)
        k += 1
    out[k] = (_TIME_HIGH << 12) | value
    return k + 1


@nb.njit(nogil=True, cache=True)
def _emit_time(target: int, state: Any, out: Any, k: int) -> int:
    """Append the words that move the decoder's clock to ``target``; -1 if it cannot go there.

    Written as a camera's counter moves, so that every decoder follows it: TIME_HIGH only
    steps up (by less than 4094) or loops from 0xFFF to 0, a drop that decoders counting
    loops at 2048 (OpenEB) and at 4085 (evlib, the evt3 crate) all see. A time that steps
    back within 2047 TIME_HIGH units is written as it is (OpenEB's reading). Every TIME_HIGH
    change is followed by a TIME_LOW before any event, even one of 0: OpenEB resets the low
    part on a change, but some decoders keep the previous one.
    """
    target_loop = target >> 24
    target_high = (target >> 12) & 0xFFF
    target_low = target & 0xFFF
    if state[_E_STARTED] == 0:
        first = target_high if target_loop == 0 else 0
        # Some decoders (faery) start from 0 and follow the first TIME_HIGH like any step.
        k = _time_high_up(out, k, 0, first)
        state[_E_STARTED] = 1
        state[_E_LOOP] = 0
        state[_E_HIGH] = first
        state[_E_LOW] = -1
    loop = state[_E_LOOP]
    high = state[_E_HIGH]
    if target_loop < loop:
        return -1
    while loop < target_loop:
        if high != 0xFFF:
            k = _time_high_up(out, k, high, 0xFFF)
        out[k] = _TIME_HIGH << 12
        k += 1
        high = 0
        loop += 1
        state[_E_LOW] = -1
    if high != target_high:
        if high >= target_high + 2048:
            return -1  # a step this far back would read as a counter wrap
        if target_high > high:
            k = _time_high_up(out, k, high, target_high)
        else:
            out[k] = (_TIME_HIGH << 12) | target_high
            k += 1
        high = target_high
        state[_E_LOW] = -1
    if state[_E_LOW] != target_low:
        out[k] = (_TIME_LOW << 12) | target_low
        k += 1
        state[_E_LOW] = target_low
    state[_E_LOOP] = loop
    state[_E_HIGH] = high
    return k


@nb.njit(nogil=True, cache=True)
def _encode(
    events: Any, triggers: Any, origin: int, width: int, state: Any, out: Any
) -> tuple[int, int]:
    """Encode into ``out``: (words, -1), or (0, index of an item that cannot be written)."""
    n = events.size
    n_triggers = triggers.size
    i = 0
    j = 0
    k = 0
    repeated_at = 0
    while i < n or j < n_triggers:
        if k - repeated_at >= _TIME_HIGH_EVERY and state[_E_STARTED] != 0:
            # Restate the clock now and then, as cameras do: readers can then start mid-file.
            # Cameras follow every TIME_HIGH with a TIME_LOW before any event, and some
            # decoders rely on it.
            out[k] = (_TIME_HIGH << 12) | state[_E_HIGH]
            out[k + 1] = (_TIME_LOW << 12) | state[_E_LOW]
            k += 2
            repeated_at = k
        if j < n_triggers and (i >= n or triggers[j].t <= events[i].t):
            t = np.int64(triggers[j].t) - origin
            if _needs_time(t, state):
                k = _emit_time(t, state, out, k)
                if k < 0:
                    return 0, n + j
            trigger = triggers[j]
            out[k] = (
                (_EXT_TRIGGER << 12)
                | ((np.int64(trigger.id) & 0xF) << 8)
                | (1 if trigger.rising else 0)
            )
            k += 1
            j += 1
            continue
        event = events[i]
        t = np.int64(event.t) - origin
        if _needs_time(t, state):
            k = _emit_time(t, state, out, k)
            if k < 0:
                return 0, i
        y = np.int64(event.y)
        if state[_E_Y] != y:
            out[k] = (_ADDR_Y << 12) | y
            k += 1
            state[_E_Y] = y
        x0 = np.int64(event.x)
        polarity = 1 if event.on else 0
        # A run of same-time, same-row, same-polarity events with rising x inside 32 columns
        # is one vector group, which the decoder returns in the same order.
        end = i + 1
        while (
            end < n
            and events[end].t == event.t
            and events[end].y == event.y
            and events[end].on == event.on
            and events[end].x > events[end - 1].x
            and np.int64(events[end].x) < x0 + 32
            and (j >= n_triggers or triggers[j].t > event.t)
        ):
            end += 1
        if end - i >= 4 and x0 + 32 <= width:
            mask = np.int64(0)
            for e in range(i, end):
                mask |= np.int64(1) << (np.int64(events[e].x) - x0)
            out[k] = (_VECT_BASE_X << 12) | (polarity << 11) | x0
            out[k + 1] = (_VECT_12 << 12) | (mask & 0xFFF)
            out[k + 2] = (_VECT_12 << 12) | ((mask >> 12) & 0xFFF)
            out[k + 3] = (_VECT_8 << 12) | ((mask >> 24) & 0xFF)
            k += 4
            i = end
        else:
            out[k] = (_ADDR_X << 12) | (polarity << 11) | x0
            k += 1
            i += 1
    return k, -1


def new_encoder_state() -> npt.NDArray[np.int64]:
    """The state :func:`encode` carries from one call to the next, before the first."""
    return np.array([0, 0, 0, 0, -1], np.int64)


def encode(
    events: npt.NDArray[Any],
    triggers: npt.NDArray[Any],
    origin: int,
    last: int,
    width: int,
    state: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.uint16], int]:
    """EVT 3.0 words of ``events`` and ``triggers`` (each in time order, times at most
    ``last`` µs after ``origin``), going on from ``state``: (words, -1), or (no words, the
    index of an item that cannot be written, events first, then triggers)."""
    loops = max((last >> 24) - int(state[_E_LOOP]), 0)
    items = len(events) + len(triggers)
    # Each item takes at most a TIME_HIGH pair, a TIME_LOW, an ADDR_Y and its own word.
    size = 5 * items + items // 256 + _WORDS_PER_LOOP * loops + 8
    out = np.empty(size, np.uint16)
    count, bad = _encode(events, triggers, origin, width, state, out)
    return out[:count], bad


_FIRST_TRIGGERS = 64


def _grown(array: npt.NDArray[Any], filled: int) -> npt.NDArray[Any]:
    larger = np.empty(2 * array.size, array.dtype)
    larger[:filled] = array[:filled]
    return larger


def _as_bytes(data: npt.NDArray[Any] | bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    """``data`` as a one-dimensional uint8 array, without a copy where its memory allows."""
    if isinstance(data, np.ndarray):
        array = data if data.dtype == np.uint8 else np.ascontiguousarray(data).view(np.uint8)
        return np.ascontiguousarray(array.reshape(-1))
    return np.frombuffer(data, np.uint8)


class Evt3StreamDecoder:
    """Decodes an EVT 3.0 byte stream (a camera's data endpoint, stdin, message payloads)
    chunk by chunk, cut anywhere.

    It runs the file decoder's kernel with its state kept between chunks. A word cut by a
    chunk's end is decoded when the next chunk brings its second byte: that one word on its
    own, then the rest of the chunk in place (no EVT 3.0 word depends on the words after it,
    so nothing else waits and nothing is copied). Events before the first TIME_HIGH word are
    dropped, as OpenEB does. Output arrays are sized by the previous chunk's events per word
    (one at first) and grow when a chunk yields more. Events outside ``width`` × ``height``
    are dropped and counted.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._state = np.zeros(_STATE_SIZE, np.int64)
        self._pending: int | None = None  # the first byte of a word cut by a chunk's end
        self._room = OutputRoom(density=1.0, floor=0.25)  # events per word

    @property
    def current_t(self) -> int:
        """The decoder's time in µs after the last chunk (0 before the first TIME_HIGH)."""
        state = self._state
        if state[_STARTED] == 0:
            return 0
        return int((state[_LOOP] << 24) | (state[_HIGH] << 12) | state[_LOW])

    @property
    def dropped_out_of_range(self) -> int:
        """Events dropped so far because they lie outside the sensor."""
        return int(self._state[_DROPPED])

    @property
    def pending_bytes(self) -> int:
        """Bytes kept from the last chunk, waiting for the rest of their word (0 or 1)."""
        return 0 if self._pending is None else 1

    def decode(self, data: npt.NDArray[Any] | bytes | bytearray | memoryview) -> Packet:
        """The events and triggers of ``data`` following the bytes decoded before."""
        chunk = _as_bytes(data)
        pieces = []
        if self._pending is not None and chunk.size:
            pieces.append(np.array([self._pending, chunk[0]], np.uint8).view("<u2"))
            self._pending = None
            chunk = chunk[1:]
        if chunk.size % 2:
            self._pending = int(chunk[-1])
            chunk = chunk[:-1]
        # A chunk that starts on an odd address gives an unaligned view: the kernel reads it
        # as it is (numba compiles a version for unaligned arrays).
        pieces.append(chunk.view("<u2"))
        words = sum(piece.size for piece in pieces)
        events = np.empty(self._room.events(words) + _MOST_VECTOR_EVENTS, EVENTS_DTYPE)
        triggers = np.empty(_FIRST_TRIGGERS, TRIGGERS_DTYPE)
        n = m = 0
        for piece in pieces:
            events, n, triggers, m = self._decode_words(piece, events, n, triggers, m)
        self._room.observe(words, n)
        return Packet(events[:n], triggers[:m])

    def _decode_words(
        self,
        words: npt.NDArray[Any],
        events: npt.NDArray[Any],
        n: int,
        triggers: npt.NDArray[Any],
        m: int,
    ) -> tuple[npt.NDArray[Any], int, npt.NDArray[Any], int]:
        """Decode all of ``words`` after the n events and m triggers already out; the kernel
        stops where an output is full, and decoding then goes on into a larger one."""
        start = 0
        while True:
            consumed, n, m = _decode(
                words[start:], self._state, self.width, self.height, events, n, triggers, m
            )
            start += consumed
            events_full = events.size - n < _MOST_VECTOR_EVENTS
            if start >= words.size or not (events_full or m == triggers.size):
                return events, n, triggers, m
            if events_full:
                events = _grown(events, n)
            if m == triggers.size:
                triggers = _grown(triggers, m)


class Evt3StreamEncoder:
    """Encodes events and triggers into an EVT 3.0 word stream, call after call, its clock
    carried over (the encoder of the EVT 3.0 writers and of the emulated cameras).

    Times are written relative to ``origin`` µs: None takes the origin a file would (0 while
    the first time fits one loop of the 24-bit counter's 2**34 µs span, else the whole second
    before it). Each call's events and triggers must each be in time order and not before
    the previous call's; :meth:`encode` raises ValueError naming the first item that is not.
    """

    def __init__(self, width: int, *, origin: int | None = 0) -> None:
        self.width = width
        self.origin = origin
        self._state = new_encoder_state()

    def encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[np.uint16]:
        """The words of ``events`` and ``triggers`` (both in time order) after those of the
        calls before."""
        if triggers is None:
            triggers = np.empty(0, TRIGGERS_DTYPE)
        times = [int(a["t"].max()) for a in (events, triggers) if len(a)]
        if not times:
            return np.empty(0, np.uint16)
        if self.origin is None:
            first = min(int(a["t"][0]) for a in (events, triggers) if len(a))
            self.origin = whole_second_origin(first, SINGLE_LOOP_US)
        last = max(max(times) - self.origin, 0)
        words, bad = encode(events, triggers, self.origin, last, self.width, self._state)
        if bad >= 0:
            raise ValueError(order_error(events, triggers, bad, "EVT 3.0"))
        return words


class Evt3Reader(RawReader):
    """Reads Prophesee RAW files in EVT 3.0."""

    format_name = "evt3"
    encoding = "evt3"
    word = np.dtype("<u2")
    events_per_byte = 0.5
    decoder = staticmethod(_decode)
    state_size = _STATE_SIZE
    max_group_events = _MOST_VECTOR_EVENTS
    warm_up_words = 1 << 16
    """Words decoded just before the middle of a large file to guess the state there."""

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare | None:
        """Guess the decoder state in the middle by decoding a stretch just before it from
        scratch: every field is overwritten by the words of a few milliseconds of real data
        (except the time loop count, which the join adds). The join checks the guess."""
        middle = len(words) // 2
        if middle < 2 * self.warm_up_words:
            return None
        guess = np.zeros(_STATE_SIZE, np.int64)
        # Decoding stops early when the scratch fills up: the guess then holds for that point.
        scratch = np.empty(self.warm_up_words, EVENTS_DTYPE)
        scratch_triggers = np.empty(self.warm_up_words, TRIGGERS_DTYPE)
        stretch = words[middle - self.warm_up_words : middle]
        consumed, n, _ = _decode(
            stretch, guess, self._width, self._height, scratch, 0, scratch_triggers, 0
        )
        if guess[_STARTED] == 0:
            return None
        guess[_DROPPED] = 0
        start = middle - self.warm_up_words + consumed
        # Room for the first share's events: its density guessed from the stretch, with margin.
        first_events = int(start * n / max(consumed, 1) * 1.25) + 1024
        return SecondShare(start=start, state=guess, first_events=first_events)

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int] | None:
        guess = share.state
        if any(first[slot] != guess[slot] for slot in _RESUMABLE):
            return None
        loops = int(first[_LOOP] - guess[_LOOP])
        joined = second.copy()
        joined[_LOOP] += loops
        joined[_DROPPED] += first[_DROPPED]
        return joined, loops << 24


class Evt3Writer(RawWriter):
    """Writes Prophesee RAW files in EVT 3.0 (vector groups where events allow)."""

    format_name = "evt3"
    most_trigger_id = 0xF  # 4 bits
    encoding = "evt3"
    format_field = "EVT3"
    legacy_evt = "3.0"
    single_loop_us = SINGLE_LOOP_US

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(path, **options)
        self._state = new_encoder_state()

    def _encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any], last: int
    ) -> npt.NDArray[Any]:
        words, bad = encode(events, triggers, self._origin, last, self.width, self._state)
        if bad >= 0:
            raise ValueError(order_error(events, triggers, bad, "EVT 3.0"))
        return words
