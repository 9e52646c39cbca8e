"""Prophesee EVT 3.0 encoding: the numba kernels that write events and triggers as EVT 3.0
words, moving the written clock as a camera's counter moves (the writers' and the stream
encoder's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from ._evt3_decode import (
    _ADDR_X,
    _ADDR_Y,
    _EXT_TRIGGER,
    _TIME_HIGH,
    _TIME_LOW,
    _VECT_8,
    _VECT_12,
    _VECT_BASE_X,
)

_TIME_HIGH_EVERY = 1 << 11  # words between restated TIME_HIGHs in written files
_LONGEST_STEP = 4094  # TIME_HIGH steps up from this on are split in two when written
_WORDS_PER_LOOP = 3  # at most, when the written clock passes a whole counter loop
SINGLE_LOOP_US = 1 << 34
"""Streams whose first time (µs) is below this are written from origin 0, later ones from
the whole second before their first time (the EVT 3.0 writer's rule)."""


# Encoder state slots; -1 in _Y means no row was addressed yet.
_E_STARTED, _E_LOOP, _E_HIGH, _E_LOW, _E_Y = range(5)


@njit(nogil=True, cache=True, inline="always")
def _needs_time(target: int, state: Any) -> bool:
    """Whether the clock must move to reach ``target``: tested before calling _emit_time,
    which costs far more than the test when it has nothing to do."""
    return bool(
        state[_E_STARTED] == 0
        or (target >> 12) != ((state[_E_LOOP] << 12) | state[_E_HIGH])
        or (target & 0xFFF) != state[_E_LOW]
    )


@njit(nogil=True, cache=True, inline="always")
def _time_high_up(out: Any, k: int, high: int, value: int) -> int:
    """Append the TIME_HIGH words that move the counter's high part up from ``high`` to
    ``value`` within one loop: one word, or two where the step is 4094 or more, which some
    decoders (faery) do not follow in one go."""
    if value - high >= _LONGEST_STEP:
        out[k] = (_TIME_HIGH << 12) | ((high + value) >> 1)
        k += 1
    out[k] = (_TIME_HIGH << 12) | value
    return k + 1


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
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
