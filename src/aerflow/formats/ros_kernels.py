"""Numba kernels of the ROS bag reader: whole batches of messages decoded in one call.

Each kernel takes the payloads of several messages concatenated into one byte array, with
per-message ``starts`` and ``ends`` (and whatever else a message carries, such as its
``time_base``), and writes packed events straight into an EVENTS_DTYPE array. Times come out
in integer µs, ``floor(ns / 1000)`` for the encodings that count in nanoseconds. Events whose
coordinates lie outside the sensor (when it is known: width and height above 0) are dropped
and counted in the returned total.

Every kernel has a plain-Python reference in tests/reference/ros.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit

__all__: list[str] = []

# libcaer_cmp word codes (the top 4 bits of each 16-bit word).
CMP_TIME_HIGH, CMP_TIME_LOW, CMP_ADDR_X, CMP_ADDR_Y, CMP_VECT_BASE_Y, CMP_VECT_8 = range(6)
# libcaer_cmp state carried from one message to the next: x, vector polarity, vector base y.
CMP_X, CMP_POLARITY, CMP_BASE_Y = range(3)
CMP_STATE_SIZE = 3
# libcaer: the 31-bit µs counter of a polarity event; a drop within a message is one loop.
LIBCAER_LOOP_NS = (1 << 31) * 1000


@njit(nogil=True, cache=True, inline="always")
def _u16(data: Any, i: int) -> Any:
    return np.int64(data[i]) | (np.int64(data[i + 1]) << 8)


@njit(nogil=True, cache=True, inline="always")
def _u32(data: Any, i: int) -> Any:
    return _u16(data, i) | (_u16(data, i + 2) << 16)


@njit(nogil=True, cache=True, inline="always")
def _inside(x: int, y: int, width: int, height: int) -> bool:
    return width <= 0 or height <= 0 or (x < width and y < height)


@njit(nogil=True, cache=True)
def decode_event_arrays(
    data: Any,
    starts: Any,
    counts: Any,
    cdr: bool,
    width: int,
    height: int,
    events: Any,
    n: int,
) -> tuple[int, int, int]:
    """``dvs_msgs`` / ``prophesee_event_msgs`` events of each message, whose first event
    starts at ``starts[i]``: (events written up to, dropped, index of a message whose
    event time is negative or -1).

    ROS1 events are 13 packed bytes (x, y, secs, nsecs, polarity). In CDR the first event
    of a sequence (which starts 4-aligned) is x, y, sec, nanosec, polarity at 0, 2, 4, 8,
    12; each later one starts 2 bytes past a multiple of 4, so its time is padded by two
    bytes: x, y, sec, nanosec, polarity at 0, 2, 6, 10, 14, 16 bytes apart.
    """
    dropped = 0
    for message in range(starts.size):
        p = starts[message]
        for k in range(counts[message]):
            if cdr and k > 0:
                time_at = p + 6
                polarity_at = p + 14
                step = 16
            else:
                time_at = p + 4
                polarity_at = p + 12
                step = 14 if cdr else 13
            x = _u16(data, p)
            y = _u16(data, p + 2)
            seconds = _u32(data, time_at)
            if cdr and seconds >= 1 << 31:
                return n, dropped, message  # builtin_interfaces/Time seconds are signed
            nanoseconds = _u32(data, time_at + 4)
            p += step
            if not _inside(x, y, width, height):
                dropped += 1
                continue
            event = events[n]
            event.t = np.uint64(seconds * 1_000_000 + nanoseconds // 1000)
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = data[polarity_at] != 0
            n += 1
    return n, dropped, -1


@njit(nogil=True, cache=True)
def decode_mono(
    data: Any,
    starts: Any,
    ends: Any,
    time_bases: Any,
    width: int,
    height: int,
    events: Any,
    n: int,
) -> tuple[int, int]:
    """``mono`` payloads: one little-endian 64-bit word per event, polarity in bit 63, y in
    bits 48-62, x in bits 32-47, ns after the message's time base in bits 0-31: (events
    written up to, dropped)."""
    dropped = 0
    for message in range(starts.size):
        base = time_bases[message]
        for p in range(starts[message], ends[message], 8):
            low = _u32(data, p)
            high = _u32(data, p + 4)
            x = high & 0xFFFF
            y = (high >> 16) & 0x7FFF
            if not _inside(x, y, width, height):
                dropped += 1
                continue
            event = events[n]
            event.t = np.uint64((base + low) // 1000)
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = (high >> 31) != 0
            n += 1
    return n, dropped


@njit(nogil=True, cache=True)
def decode_trigger(
    data: Any, starts: Any, ends: Any, time_bases: Any, triggers: Any, m: int
) -> int:
    """``trigger`` payloads: one 64-bit word per edge, rising in bit 63, the id in bits
    48-55, ns after the message's time base in bits 0-31: triggers written up to."""
    for message in range(starts.size):
        base = time_bases[message]
        for p in range(starts[message], ends[message], 8):
            low = _u32(data, p)
            high = _u32(data, p + 4)
            trigger = triggers[m]
            trigger.t = np.uint64((base + low) // 1000)
            trigger.id = np.uint8((high >> 16) & 0xFF)
            trigger.rising = (high >> 31) != 0
            m += 1
    return m


@njit(nogil=True, cache=True)
def decode_libcaer(
    data: Any,
    starts: Any,
    ends: Any,
    time_bases: Any,
    width: int,
    height: int,
    events: Any,
    n: int,
) -> tuple[int, int, int]:
    """``libcaer`` payloads: libcaer polarity events of 8 bytes, a 32-bit address word (x in
    bits 17-31, y in bits 2-16, polarity in bit 1) then a signed 32-bit µs timestamp. Time is
    ``time_base + timestamp * 1000`` ns, plus one counter loop (2**31 µs) each time the
    timestamp drops within the message: (events written up to, dropped, index of a message
    with a negative timestamp or -1)."""
    dropped = 0
    for message in range(starts.size):
        high = time_bases[message]
        last = 0
        for p in range(starts[message], ends[message], 8):
            address = _u32(data, p)
            stamp = _u32(data, p + 4)
            if stamp >= 1 << 31:
                return n, dropped, message
            if stamp < last:
                high += LIBCAER_LOOP_NS
            last = stamp
            x = (address >> 17) & 0x7FFF
            y = (address >> 2) & 0x7FFF
            if not _inside(x, y, width, height):
                dropped += 1
                continue
            event = events[n]
            event.t = np.uint64((high + stamp * 1000) // 1000)
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = (address >> 1) & 1 != 0
            n += 1
    return n, dropped, -1


@njit(nogil=True, cache=True)
def count_libcaer_cmp(data: Any, starts: Any, ends: Any) -> int:
    """The most events the ``libcaer_cmp`` payloads can yield (before sensor checks)."""
    total = 0
    for message in range(starts.size):
        for p in range(starts[message], ends[message], 2):
            word = _u16(data, p)
            code = word >> 12
            if code == CMP_ADDR_Y:
                total += 1
            elif code == CMP_VECT_8:
                bits = word & 0xFF
                while bits:
                    bits &= bits - 1
                    total += 1
    return total


@njit(nogil=True, cache=True)
def decode_libcaer_cmp(
    data: Any,
    starts: Any,
    ends: Any,
    time_bases: Any,
    state: Any,
    width: int,
    height: int,
    events: Any,
    n: int,
) -> tuple[int, int]:
    """``libcaer_cmp`` payloads (16-bit words, the code in the top 4 bits): TIME_HIGH and
    TIME_LOW set the upper and lower 12 bits of a µs offset from the message's time base
    (both 0 at each message's start), ADDR_X sets x (11 bits), ADDR_Y gives one event at
    (x, its 11-bit y) with its polarity bit 11, VECT_BASE_Y sets a base y (11 bits) and a
    polarity (bit 11), VECT_8 gives an event at x, ``base_y + i`` for each set bit i of its
    low 8 bits, then advances the base by 8. Other codes change nothing. x, the vector
    polarity and the base y carry over from one message to the next (in ``state``):
    (events written up to, dropped)."""
    dropped = 0
    x = state[CMP_X]
    polarity = state[CMP_POLARITY]
    base_y = state[CMP_BASE_Y]
    for message in range(starts.size):
        base_us = time_bases[message] // 1000
        high = 0
        low = 0
        for p in range(starts[message], ends[message], 2):
            word = _u16(data, p)
            code = word >> 12
            if code == CMP_ADDR_Y:
                y = word & 0x7FF
                if _inside(x, y, width, height):
                    event = events[n]
                    event.t = np.uint64(base_us + (high | low))
                    event.x = np.uint16(x)
                    event.y = np.uint16(y)
                    event.on = (word >> 11) & 1 != 0
                    n += 1
                else:
                    dropped += 1
            elif code == CMP_ADDR_X:
                x = word & 0x7FF
            elif code == CMP_TIME_LOW:
                low = word & 0xFFF
            elif code == CMP_TIME_HIGH:
                high = (word & 0xFFF) << 12
            elif code == CMP_VECT_BASE_Y:
                base_y = word & 0x7FF
                polarity = (word >> 11) & 1
            elif code == CMP_VECT_8:
                for i in range(8):
                    if (word >> i) & 1:
                        y = base_y + i
                        if _inside(x, y, width, height):
                            event = events[n]
                            event.t = np.uint64(base_us + (high | low))
                            event.x = np.uint16(x)
                            event.y = np.uint16(y)
                            event.on = polarity != 0
                            n += 1
                        else:
                            dropped += 1
                base_y += 8
    state[CMP_X] = x
    state[CMP_POLARITY] = polarity
    state[CMP_BASE_Y] = base_y
    return n, dropped


# -- encoding (the writer) ------------------------------------------------------------------


@njit(nogil=True, cache=True, inline="always")
def _cmp_flush(words: Any, w: int, mask: int, group: int, last_y: int, polarity: int) -> int:
    if mask == 0:
        return w
    if mask & (mask - 1) == 0:  # one row: ADDR_Y carries its own y and polarity
        words[w] = (CMP_ADDR_Y << 12) | (polarity << 11) | last_y
        return w + 1
    words[w] = (CMP_VECT_BASE_Y << 12) | (polarity << 11) | group
    words[w + 1] = (CMP_VECT_8 << 12) | mask
    return w + 2


@njit(nogil=True, cache=True)
def encode_libcaer_cmp(t: Any, x: Any, y: Any, on: Any, base_us: int, words: Any) -> int:
    """One ``libcaer_cmp`` payload of events (times in µs, ``0 <= t - base_us < 2**24``,
    x and y below 2048) into ``words`` (uint16, at least ``4 * len(t) + 1``): words written.

    As libcaer_driver compresses a packet (ADDR_X first; TIME_HIGH, TIME_LOW and ADDR_X when
    they change; a row group of 8 sent as ADDR_Y when one bit is set, else VECT_BASE_Y +
    VECT_8), except that an event joins the open group only when it has the same time, x and
    polarity and a larger y in the same 8 rows: the decoder then gives back the events in
    exactly their order, duplicates included. Time restarts at 0 in each message, as the
    decoder's does."""
    w = 0
    x_now = np.int64(x[0])
    words[w] = (CMP_ADDR_X << 12) | x_now
    w += 1
    high = np.int64(0)
    low = np.int64(0)
    mask = np.int64(0)
    group = np.int64(-1)
    last_y = np.int64(-1)
    polarity = np.int64(0)
    for i in range(t.size):
        dt = np.int64(t[i]) - base_us
        event_high = dt >> 12
        event_low = dt & 0xFFF
        ex = np.int64(x[i])
        ey = np.int64(y[i])
        ep = np.int64(1) if on[i] else np.int64(0)
        joins = (
            mask != 0
            and event_high == high
            and event_low == low
            and ex == x_now
            and ep == polarity
            and (ey & ~7) == group
            and ey > last_y
        )
        if not joins:
            w = _cmp_flush(words, w, mask, group, last_y, polarity)
            mask = 0
            if event_high != high:
                high = event_high
                words[w] = (CMP_TIME_HIGH << 12) | high
                w += 1
            if event_low != low:
                low = event_low
                words[w] = (CMP_TIME_LOW << 12) | low
                w += 1
            if ex != x_now:
                x_now = ex
                words[w] = (CMP_ADDR_X << 12) | x_now
                w += 1
            polarity = ep
            group = ey & ~7
        mask |= np.int64(1) << (ey & 7)
        last_y = ey
    return _cmp_flush(words, w, mask, group, last_y, polarity)
