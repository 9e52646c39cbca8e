"""Prophesee EVT 2.1: 64-bit words, each a 32-pixel run of one row with a validity mask.

Every word is a 32-bit header (type, 6 time bits, base x, y) and a 32-bit payload (the mask).
``little`` files store the header in the high half of each little-endian 64-bit word; ``legacy``
files store it in the low half. Decoding follows OpenEB: start at the first TIME_HIGH; a
TIME_HIGH step down by the whole 28-bit range is a counter loop (2**34 µs), any other step is
applied as is; ERC-count OTHERS words move the clock's low bits; events past the sensor are
dropped and counted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from ..errors import FormatError
from . import _time_high as th
from ._base import DEFAULT_CHUNK_SIZE, SecondShare
from .raw import RawReader, RawWriter, order_error

__all__ = ["Evt21Reader", "Evt21Writer"]

_EVT_NEG, _EVT_POS, _EXT_TRIGGER, _OTHERS = 0x0, 0x1, 0xA, 0xE
_LITTLE, _LEGACY = 0, 1
_ORDERS = {"little": _LITTLE, "legacy": _LEGACY}

_STARTED, _LAST, _DROPPED = range(3)
_IN_LOOP = (1 << 34) - 1  # the clock bits below the loop counter
_STATE_SIZE = 3


@njit(nogil=True, cache=True)
def _decode(
    data: Any,
    state: Any,
    width: int,
    height: int,
    order: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    size = data.size
    capacity = events.size
    trigger_capacity = triggers.size
    started = state[_STARTED]
    last = state[_LAST]
    dropped = state[_DROPPED]
    i = 0
    while i < size:
        word = data[i]
        low_half = np.int64(word & np.uint64(0xFFFFFFFF))
        high_half = np.int64(word >> np.uint64(32))
        if order == _LITTLE:
            header = high_half
            payload = low_half
        else:
            header = low_half
            payload = high_half
        kind = header >> 28
        if started == 0:
            if kind != th.TIME_HIGH:
                i += 1
                continue
            started = 1
        if kind <= _EVT_POS:
            if n + 32 > capacity:
                break
            last = (last & ~np.int64(0x3F)) + ((header >> 22) & 0x3F)
            x0 = (header >> 11) & 0x7FF
            y = header & 0x7FF
            on = kind == _EVT_POS
            offset = 0
            while payload != 0:
                if payload & 1:
                    x = x0 + offset
                    if x < width and y < height:
                        event = events[n]
                        event.t = np.uint64(last)
                        event.x = np.uint16(x)
                        event.y = np.uint16(y)
                        event.on = on
                        n += 1
                    else:
                        dropped += 1
                payload >>= 1
                offset += 1
        elif kind == th.TIME_HIGH:
            t = (header & th.HIGH_MAX) << 6
            last_high = last & th.MAX_TIMESTAMP
            loop = last >> 34
            if t < last_high and last_high - t >= th.MAX_TIMESTAMP:
                loop += 1
            if t != last_high:
                last = t | (loop << 34)
        elif kind == _EXT_TRIGGER:
            if m >= trigger_capacity:
                break
            last = (last & ~np.int64(0x3F)) + ((header >> 22) & 0x3F)
            trigger = triggers[m]
            trigger.t = np.uint64(last)
            trigger.id = np.uint8((header >> 8) & 0x1F)
            trigger.rising = header & 1 == 1
            m += 1
        elif kind == _OTHERS:
            subtype = header & 0xFFFF
            if subtype == 0x0014 or subtype == 0x0016:
                last = (last & ~np.int64(0x3F)) + ((header >> 22) & 0x3F)
        i += 1
    state[_STARTED] = started
    state[_LAST] = last
    state[_DROPPED] = dropped
    return i, n, m


@njit(nogil=True, cache=True)
def _bit_count(value: int) -> int:
    value = value - ((value >> 1) & 0x55555555)
    value = (value & 0x33333333) + ((value >> 2) & 0x33333333)
    return (((value + (value >> 4)) & 0x0F0F0F0F) * 0x01010101 & 0xFFFFFFFF) >> 24


@njit(nogil=True, cache=True)
def _survey(words: Any, started: int, width: int, height: int, order: int) -> tuple[int, int]:
    """(events the decoder would return, value of the last TIME_HIGH or -1): a cheap pass
    that tells a second thread where its share of the output starts and its clock."""
    count = 0
    last_high = -1
    for i in range(words.size):
        word = words[i]
        low_half = np.int64(word & np.uint64(0xFFFFFFFF))
        high_half = np.int64(word >> np.uint64(32))
        header, payload = (high_half, low_half) if order == _LITTLE else (low_half, high_half)
        kind = header >> 28
        if kind == th.TIME_HIGH:
            started = 1
            last_high = header & th.HIGH_MAX
        elif kind <= _EVT_POS and started != 0 and (header & 0x7FF) < height:
            columns = width - ((header >> 11) & 0x7FF)
            if columns >= 32:
                count += _bit_count(payload)
            elif columns > 0:
                count += _bit_count(payload & ((np.int64(1) << columns) - 1))
    return count, last_high


@njit(nogil=True, cache=True)
def _encode(
    events: Any, triggers: Any, origin: int, state: Any, headers: Any, masks: Any
) -> tuple[int, int]:
    n = events.size
    n_triggers = triggers.size
    i = 0
    j = 0
    k = 0
    while i < n or j < n_triggers:
        if j < n_triggers and (i >= n or triggers[j].t <= events[i].t):
            t = np.int64(triggers[j].t) - origin
            if th.needs_time_high(t, state):
                before = k
                k = th.emit_time_high(t, th.MAX_TIMESTAMP, state, headers, k)
                if k < 0:
                    return 0, n + j
                masks[before:k] = 0
            trigger = triggers[j]
            headers[k] = (
                (_EXT_TRIGGER << 28)
                | ((t & 0x3F) << 22)
                | ((np.int64(trigger.id) & 0x1F) << 8)
                | (1 if trigger.rising else 0)
            )
            masks[k] = 0
            j += 1
            k += 1
            continue
        event = events[i]
        t = np.int64(event.t) - origin
        if th.needs_time_high(t, state):
            before = k
            k = th.emit_time_high(t, th.MAX_TIMESTAMP, state, headers, k)
            if k < 0:
                return 0, i
            masks[before:k] = 0
        x0 = np.int64(event.x)
        # Same time, row and polarity with rising x inside 32 columns: one word, same order.
        mask = np.int64(1)
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
            mask |= np.int64(1) << (np.int64(events[end].x) - x0)
            end += 1
        kind = _EVT_POS if event.on else _EVT_NEG
        headers[k] = (kind << 28) | ((t & 0x3F) << 22) | (x0 << 11) | np.int64(event.y)
        masks[k] = mask
        k += 1
        i = end
    return k, -1


class Evt21Reader(RawReader):
    """Reads Prophesee RAW files in EVT 2.1 (either word order)."""

    format_name = "evt21"
    encoding = "evt21"
    word = np.dtype("<u8")
    events_per_byte = 0.5
    decoder = staticmethod(_decode)
    state_size = _STATE_SIZE
    max_group_events = 32

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        width: int | None = None,
        height: int | None = None,
        order: str | None = None,
    ) -> None:
        super().__init__(path, chunk_size=chunk_size, width=width, height=height)
        chosen = order or self._order or "little"
        if chosen not in _ORDERS:
            self.close()
            raise FormatError(
                f"unknown EVT 2.1 word order {chosen!r} (expected little or legacy)",
                path=self.path,
                offset=0,
            )
        self.order = chosen
        self._decoder_options = (self._width, self._height, _ORDERS[chosen])

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare:
        split = len(words) // 2
        state = self._state
        count, last_high = _survey(
            words[:split], int(state[_STARTED]), self._width, self._height, _ORDERS[self.order]
        )
        second = np.zeros(_STATE_SIZE, np.int64)
        if last_high >= 0:
            second[_STARTED], second[_LAST] = 1, last_high << 6
        else:
            second[_STARTED], second[_LAST] = state[_STARTED], state[_LAST] & _IN_LOOP
        return SecondShare(start=split, state=second, first_events=count)

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int]:
        # The second share counted time loops from zero: add those of the first.
        shift = int(first[_LAST]) & ~_IN_LOOP
        joined = second.copy()
        joined[_LAST] += shift
        joined[_DROPPED] += first[_DROPPED]
        return joined, shift


class Evt21Writer(RawWriter):
    """Writes Prophesee RAW files in EVT 2.1."""

    format_name = "evt21"
    most_trigger_id = 0x1F  # 5 bits
    encoding = "evt21"
    format_field = "EVT21"
    legacy_evt = None
    single_loop_us = 1 << 34

    def __init__(self, path: str | os.PathLike[str], *, order: str = "little", **options: Any):
        if order not in _ORDERS:
            raise ValueError(f"order must be 'little' or 'legacy', got {order!r}")
        self.order = order
        super().__init__(path, **options)
        self._state = np.zeros(3, np.int64)

    def _header_entries(self, origin: int) -> dict[str, str]:
        entries = super()._header_entries(origin)
        entries["format"] = f"EVT21;endianness={self.order};height={self.height};width={self.width}"
        entries["endianness"] = self.order
        return entries

    def _encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any], last: int
    ) -> npt.NDArray[Any]:
        wraps = max((last >> 34) - int(self._state[th.LOOP]), 0)
        bound = 2 * (len(events) + len(triggers)) + 2 * wraps + 4
        headers = np.empty(bound, np.int64)
        masks = np.empty(bound, np.int64)
        count, bad = _encode(events, triggers, self._origin, self._state, headers, masks)
        if bad >= 0:
            raise ValueError(order_error(events, triggers, bad, "EVT 2.1"))
        high, low = (headers, masks) if self.order == "little" else (masks, headers)
        words = (high[:count].astype(np.uint64) << np.uint64(32)) | low[:count].astype(np.uint64)
        encoded: npt.NDArray[Any] = words.astype("<u8")
        return encoded
