"""Prophesee EVT 2.0: 32-bit words, one event each, a 34-bit clock from TIME_HIGH.

Decoding follows OpenEB: start at the first TIME_HIGH; a TIME_HIGH that drops by nearly the
whole range (at least 2**34 - 64 - 10000 µs) is a counter loop; any other TIME_HIGH is applied
as is; IMU, monitoring, continued and padding words are skipped. Events past the sensor are
dropped and counted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from . import _time_high as th
from ._base import SecondShare
from .raw import RawReader, RawWriter, order_error

__all__ = ["Evt2Reader", "Evt2Writer"]

_CD_OFF, _CD_ON, _EXT_TRIGGER = 0x0, 0x1, 0xA
_LOOP_GAP = th.MAX_TIMESTAMP - 10000
_TIME_LOOP = 1 << 34

_STARTED, _BASE, _SHIFT, _DROPPED = range(4)
_STATE_SIZE = 4


_U = np.uint64  # indices made unsigned: numba then leaves out the negative-index wraparound


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
    base = state[_BASE]
    shift = state[_SHIFT]
    dropped = state[_DROPPED]
    i = 0
    if started == 0:
        while i < size:
            word = np.int64(data[_U(i)])
            if (word >> 28) == th.TIME_HIGH:
                base = (word & th.HIGH_MAX) << 6
                started = 1
                break
            i += 1
    full = False
    while i < size and not full:
        # A word yields at most one event: up to `roomy` every event fits, and the inner
        # loop spares the room test per event (~15 % of it). Without room, only words that
        # yield no event go on, one at a time.
        room = capacity - n
        if room <= 0:
            if (np.int64(data[_U(i)]) >> 28) <= _CD_ON:
                break
            room = 1
        roomy = min(size, i + room)
        while i < roomy:
            word = np.int64(data[_U(i)])
            kind = word >> 28
            if kind <= _CD_ON:
                x = (word >> 11) & 0x7FF
                y = word & 0x7FF
                if ((x - width) & (y - height)) < 0:  # x < width and y < height (one branch)
                    event = events[_U(n)]
                    event.t = np.uint64(base + ((word >> 22) & 0x3F))
                    event.x = np.uint16(x)
                    event.y = np.uint16(y)
                    event.on = kind == _CD_ON
                    n += 1
                else:
                    dropped += 1
            elif kind == th.TIME_HIGH:
                new_base = ((word & th.HIGH_MAX) << 6) + shift
                if new_base < base and base - new_base >= _LOOP_GAP:
                    shift += _TIME_LOOP
                    new_base += _TIME_LOOP
                base = new_base
            elif kind == _EXT_TRIGGER:
                if m >= trigger_capacity:
                    full = True
                    break
                trigger = triggers[_U(m)]
                trigger.t = np.uint64(base + ((word >> 22) & 0x3F))
                trigger.id = np.uint8((word >> 8) & 0x1F)
                trigger.rising = word & 1 == 1
                m += 1
            i += 1
    state[_STARTED] = started
    state[_BASE] = base
    state[_SHIFT] = shift
    state[_DROPPED] = dropped
    return i, n, m


@njit(nogil=True, cache=True)
def _survey(words: Any, started: int, width: int, height: int) -> tuple[int, int]:
    """(events the decoder would return, value of the last TIME_HIGH or -1): a cheap pass
    that tells a second thread where its share of the output starts and its clock.

    The count is one branch-free loop, which LLVM vectorises (6x quicker than a loop that
    also tracks TIME_HIGH words); an unstarted stream counts nothing before its first
    TIME_HIGH, found first, and the last TIME_HIGH is found from the end."""
    n = words.size
    begin = 0
    if started == 0:
        begin = n
        for i in range(n):
            if np.int64(words[_U(i)]) >> 28 == th.TIME_HIGH:
                begin = i
                break
    last_high = -1
    for i in range(n - 1, begin - 1, -1):
        word = np.int64(words[_U(i)])
        if word >> 28 == th.TIME_HIGH:
            last_high = word & th.HIGH_MAX
            break
    width32 = np.uint32(width)
    height32 = np.uint32(height)
    count = 0
    for i in range(begin, n):
        word = words[_U(i)]  # uint32: CD when below 2**29 (kinds 0 and 1)
        count += np.int64(
            (word < np.uint32(1 << 29))
            & (((word >> np.uint32(11)) & np.uint32(0x7FF)) < width32)
            & ((word & np.uint32(0x7FF)) < height32)
        )
    return count, last_high


@njit(nogil=True, cache=True)
def _encode(events: Any, triggers: Any, origin: int, state: Any, out: Any) -> tuple[int, int]:
    n = events.size
    n_triggers = triggers.size
    i = 0
    j = 0
    k = 0
    while i < n or j < n_triggers:
        if j < n_triggers and (i >= n or triggers[j].t <= events[i].t):
            t = np.int64(triggers[j].t) - origin
            if th.needs_time_high(t, state):
                k = th.emit_time_high(t, _LOOP_GAP, state, out, k)
                if k < 0:
                    return 0, n + j
            trigger = triggers[j]
            out[k] = (
                (_EXT_TRIGGER << 28)
                | ((t & 0x3F) << 22)
                | ((np.int64(trigger.id) & 0x1F) << 8)
                | (1 if trigger.rising else 0)
            )
            j += 1
        else:
            event = events[i]
            t = np.int64(event.t) - origin
            if th.needs_time_high(t, state):
                k = th.emit_time_high(t, _LOOP_GAP, state, out, k)
                if k < 0:
                    return 0, i
            kind = _CD_ON if event.on else _CD_OFF
            out[k] = (
                (kind << 28) | ((t & 0x3F) << 22) | (np.int64(event.x) << 11) | np.int64(event.y)
            )
            i += 1
        k += 1
    return k, -1


class Evt2Reader(RawReader):
    """Reads Prophesee RAW files in EVT 2.0."""

    format_name = "evt2"
    encoding = "evt2"
    word = np.dtype("<u4")
    events_per_byte = 0.25
    decoder = staticmethod(_decode)
    state_size = _STATE_SIZE
    max_group_events = 1

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare:
        split = len(words) // 2
        state = self._state
        count, last_high = _survey(words[:split], int(state[_STARTED]), self._width, self._height)
        second = np.zeros(_STATE_SIZE, np.int64)
        if last_high >= 0:
            second[_STARTED], second[_BASE] = 1, last_high << 6
        else:
            second[_STARTED], second[_BASE] = state[_STARTED], state[_BASE] - state[_SHIFT]
        return SecondShare(start=split, state=second, first_events=count)

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int]:
        # The second share counted time loops from zero: add those of the first.
        shift = int(first[_SHIFT])
        joined = second.copy()
        joined[_BASE] += shift
        joined[_SHIFT] += shift
        joined[_DROPPED] += first[_DROPPED]
        return joined, shift


class Evt2Writer(RawWriter):
    """Writes Prophesee RAW files in EVT 2.0."""

    format_name = "evt2"
    most_trigger_id = 0x1F  # 5 bits
    encoding = "evt2"
    format_field = "EVT2"
    legacy_evt = "2.0"
    single_loop_us = 1 << 34

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(path, **options)
        self._state = np.zeros(3, np.int64)

    def _encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any], last: int
    ) -> npt.NDArray[Any]:
        # Enough words for every item, a TIME_HIGH before each and two per counter wrap.
        wraps = max((last >> 34) - int(self._state[th.LOOP]), 0)
        out = np.empty(2 * (len(events) + len(triggers)) + 2 * wraps + 4, "<u4")
        count, bad = _encode(events, triggers, self._origin, self._state, out)
        if bad >= 0:
            raise ValueError(order_error(events, triggers, bad, "EVT 2.0"))
        return out[:count]
