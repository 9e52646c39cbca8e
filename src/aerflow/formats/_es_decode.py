"""Event Stream decoding kernels: byte state machines that turn DVS, ATIS, color and
generic streams into events (their state array lets an event straddle any window edge), and
the survey that finds where a share of a DVS or ATIS stream ends, for two-thread reading.
The byte layouts are described in :mod:`aerflow.formats.event_stream`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit
from ._es_header import DVS

__all__ = ["ATIS_EVENTS"]

ATIS_EVENTS = ("change", "exposure", "all")
"""What an ATIS stream's events are: change detections, exposure measurements, or both."""
_CHANGE, _EXPOSURE, _ALL = range(3)

# Decoder state slots. _PHASE counts the bytes read of an unfinished event (0: idle) or, in
# generic streams, is the part being read (idle, size bytes, data bytes); _PENDING counts the
# bytes read of an unfinished event, for locating a torn tail.
_T, _PHASE, _PENDING, _X, _Y, _FIRST, _SIZE, _SHIFT, _FILLED, _DROPPED = range(10)
_STATE_SIZE = 10
_G_IDLE, _G_SIZE, _G_DATA = 0, 1, 2
_HUGE = np.int64(1) << 62  # a payload size no file holds (a corrupt varint)
_U1, _U2, _U3, _U4, _U5 = (np.uint64(k) for k in range(1, 6))


# --------------------------------------------------------------------------- #
# Decoding kernels                                                            #
# --------------------------------------------------------------------------- #


@njit(nogil=True, cache=True)
def _decode_polarity(
    data: Any,
    state: Any,
    kind: int,
    mode: int,
    width: int,
    height: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    """DVS (``kind`` 1) or ATIS (``kind`` 2) bytes into events; stops when ``events`` is full.

    ATIS ``mode``: 0 change detections (on = polarity), 1 exposure measurements (on = is
    second), 2 both.
    """
    size = data.size
    capacity = events.size
    t = state[_T]
    phase = state[_PHASE]
    dropped = state[_DROPPED]
    i = 0
    if phase != 0:
        # Finish an event that began in an earlier window, byte by byte.
        x = state[_X]
        y = state[_Y]
        first = state[_FIRST]
        while phase < 5 and i < size:
            byte = np.int64(data[i])
            if phase == 1:
                x = byte
            elif phase == 2:
                x |= byte << 8
            elif phase == 3:
                y = byte
            else:
                y |= byte << 8
                if kind == DVS:
                    wanted = True
                    on = first & 1 == 1
                else:
                    exposure = first & 1 == 1
                    wanted = mode == _ALL or (mode == _EXPOSURE) == exposure
                    on = first & 2 == 2
                if wanted:
                    if x < width and y < height:
                        if n >= capacity:
                            break  # no room: the last byte is read again next time
                        event = events[n]
                        event.t = np.uint64(t)
                        event.x = np.uint16(x)
                        event.y = np.uint16(y)
                        event.on = on
                        n += 1
                    else:
                        dropped += 1
            phase += 1
            i += 1
        if phase < 5:
            state[_PHASE] = phase
            state[_PENDING] = phase
            state[_X] = x
            state[_Y] = y
            state[_DROPPED] = dropped
            return i, n, m
        phase = 0
    # Whole events. Unsigned positions and output indices spare every access a negative-index
    # check (a third of the time).
    j = np.uint64(i)
    end = np.uint64(size)
    k = np.uint64(n)
    room = np.uint64(capacity)
    if kind == DVS:
        while j < end:
            byte = np.int64(data[j])
            if byte >= 0xFE:
                if byte == 0xFF:
                    t += 127
                j += _U1
                continue
            if j + _U5 > end:
                break
            x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
            y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
            if x < width and y < height:
                if k >= room:
                    break
                event = events[k]
                event.t = np.uint64(t + (byte >> 1))
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = byte & 1 == 1
                k += _U1
            else:
                dropped += 1
            t += byte >> 1
            j += _U5
    else:
        while j < end:
            byte = np.int64(data[j])
            if byte >= 0xFC:
                t += 63 * (byte & 3)
                j += _U1
                continue
            if j + _U5 > end:
                break
            exposure = byte & 1 == 1
            if mode == _ALL or (mode == _EXPOSURE) == exposure:
                x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
                y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
                if x < width and y < height:
                    if k >= room:
                        break
                    event = events[k]
                    event.t = np.uint64(t + (byte >> 2))
                    event.x = np.uint16(x)
                    event.y = np.uint16(y)
                    event.on = byte & 2 == 2
                    k += _U1
                else:
                    dropped += 1
            t += byte >> 2
            j += _U5
    n = np.int64(k)
    i = np.int64(j)
    if i < size and i + 5 > size:
        # An event starts here and ends in the next window: keep its first bytes in the state.
        byte = np.int64(data[i])
        special = byte >= 0xFE if kind == DVS else byte >= 0xFC
        if not special:
            t += byte >> 1 if kind == DVS else byte >> 2
            state[_FIRST] = byte
            x = 0
            y = 0
            phase = 1
            i += 1
            while i < size:
                value = np.int64(data[i])
                if phase == 1:
                    x = value
                elif phase == 2:
                    x |= value << 8
                else:
                    y = value
                phase += 1
                i += 1
            state[_X] = x
            state[_Y] = y
    state[_T] = t
    state[_PHASE] = phase
    state[_PENDING] = phase
    state[_DROPPED] = dropped
    return i, n, m


@njit(nogil=True, cache=True)
def _decode_color(
    data: Any, state: Any, width: int, height: int, colors: Any, n: int
) -> tuple[int, int]:
    """Color stream bytes into ``colors`` (COLOR_DTYPE); stops when ``colors`` is full."""
    size = data.size
    capacity = colors.size
    t = state[_T]
    phase = state[_PHASE]
    dropped = state[_DROPPED]
    x = state[_X]
    y = state[_Y]
    rgb = state[_FIRST]  # r | g << 8 once read
    i = 0
    while i < size:
        byte = np.int64(data[i])
        if phase == 0:
            if byte >= 0xFE:
                if byte == 0xFF:
                    t += 254
                i += 1
                continue
            if i + 8 <= size:
                x = np.int64(data[i + 1]) | (np.int64(data[i + 2]) << 8)
                y = np.int64(data[i + 3]) | (np.int64(data[i + 4]) << 8)
                if x < width and y < height:
                    if n >= capacity:
                        break
                    color = colors[n]
                    color.t = np.uint64(t + byte)
                    color.x = np.uint16(x)
                    color.y = np.uint16(y)
                    color.r = np.uint8(data[i + 5])
                    color.g = np.uint8(data[i + 6])
                    color.b = np.uint8(data[i + 7])
                    n += 1
                else:
                    dropped += 1
                t += byte
                i += 8
                continue
            t += byte
            x = 0
            y = 0
            rgb = 0
        elif phase == 1:
            x = byte
        elif phase == 2:
            x |= byte << 8
        elif phase == 3:
            y = byte
        elif phase == 4:
            y |= byte << 8
        elif phase == 5:
            rgb = byte
        elif phase == 6:
            rgb |= byte << 8
        else:
            if x < width and y < height:
                if n >= capacity:
                    break
                color = colors[n]
                color.t = np.uint64(t)
                color.x = np.uint16(x)
                color.y = np.uint16(y)
                color.r = np.uint8(rgb & 0xFF)
                color.g = np.uint8(rgb >> 8)
                color.b = np.uint8(byte)
                n += 1
            else:
                dropped += 1
            phase = 0
            i += 1
            continue
        phase += 1
        i += 1
    state[_T] = t
    state[_PHASE] = phase
    state[_PENDING] = phase
    state[_X] = x
    state[_Y] = y
    state[_FIRST] = rgb
    state[_DROPPED] = dropped
    return i, n


@njit(nogil=True, cache=True)
def _decode_generic(
    data: Any, state: Any, keep: bool, times: Any, offsets: Any, n: int, payload: Any, m: int
) -> tuple[int, int, int]:
    """Generic stream bytes into event times and payloads.

    With ``keep``, event k's time goes to ``times[n]`` and its payload to ``payload``, ending
    at ``offsets[n + 1]`` (``offsets[n]`` is where the next payload starts); decoding stops
    when either output is full. Without, events are only counted.
    """
    size = data.size
    t = state[_T]
    part = state[_PHASE]
    pending = state[_PENDING]
    length = state[_SIZE]
    shift = state[_SHIFT]
    filled = state[_FILLED]
    capacity = times.size
    room = payload.size
    i = 0
    while i < size:
        if part == _G_IDLE:
            byte = np.int64(data[i])
            i += 1
            if byte == 0xFF:
                t += 254
            elif byte != 0xFE:
                if keep and n >= capacity:
                    i -= 1
                    break
                t += byte
                part = _G_SIZE
                pending = 1
                length = 0
                shift = 0
                filled = 0
        elif part == _G_SIZE:
            byte = np.int64(data[i])
            if shift <= 49:
                length += (byte >> 1) << shift
            elif byte >> 1 != 0:
                length = _HUGE  # more data bytes than any file holds
            if byte & 1 == 0:
                if length == 0:
                    if keep:
                        if n >= capacity:
                            break
                        times[n] = t
                        offsets[n + 1] = m
                    n += 1
                    part = _G_IDLE
                    pending = 0
                else:
                    part = _G_DATA
                    pending += 1
            else:
                shift += 7
                pending += 1
            i += 1
        else:
            take = min(length - filled, size - i)
            if keep:
                if length - filled == take and n >= capacity:
                    take -= 1  # the last byte waits for room for the event
                take = min(take, room - m)
                if take <= 0:
                    break
                payload[m : m + take] = data[i : i + take]
                m += take
            i += take
            filled += take
            pending += take
            if filled == length:
                if keep:
                    times[n] = t
                    offsets[n + 1] = m
                n += 1
                part = _G_IDLE
                pending = 0
    state[_T] = t
    state[_PHASE] = part
    state[_PENDING] = pending
    state[_SIZE] = length
    state[_SHIFT] = shift
    state[_FILLED] = filled
    return i, n, m


@njit(nogil=True, cache=True)
def _survey(
    data: Any, t: int, kind: int, mode: int, width: int, height: int, target: int
) -> tuple[int, int, int]:
    """From an idle state at time ``t``: the first idle position at or after ``target``, the
    time there and the events the decoder returns before it; (-1, ...) when the data end
    inside an event first."""
    end = np.uint64(data.size)
    stop = np.uint64(target)
    j = np.uint64(0)
    count = 0
    if kind == DVS:
        while j < stop:
            byte = np.int64(data[j])
            if byte >= 0xFE:
                if byte == 0xFF:
                    t += 127
                j += _U1
                continue
            if j + _U5 > end:
                return -1, t, count
            x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
            y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
            if x < width and y < height:
                count += 1
            t += byte >> 1
            j += _U5
    else:
        while j < stop:
            byte = np.int64(data[j])
            if byte >= 0xFC:
                t += 63 * (byte & 3)
                j += _U1
                continue
            if j + _U5 > end:
                return -1, t, count
            exposure = byte & 1 == 1
            if mode == _ALL or (mode == _EXPOSURE) == exposure:
                x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
                y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
                if x < width and y < height:
                    count += 1
            t += byte >> 2
            j += _U5
    i = np.int64(j)
    return i, t, count
