"""iniVation AEDAT 3 packet decoding: the packet layout (types, header, special events), the
decoder's state slots and error codes, and the numba kernel that reads packets into events,
triggers, IMU samples and frame positions (see ``aedat3`` for what is read and how)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit

SPECIAL, POLARITY, FRAME, IMU6, IMU9 = 0, 1, 2, 3, 4
_HEADER_SIZE = 28
_MIN_SIZE = (8, 8, 36, 36, 48)  # smallest event size of each known type
_TS_OFFSET = (4, 4, 8, 4, 4)  # where each known type keeps its main timestamp

# Special event types.
_TIMESTAMP_RESET = 1
# type -> (trigger id, rising) for the external input types; pulses count as rising edges
_TRIGGER_KINDS = {2: (0, 1), 3: (0, 0), 4: (0, 1), 6: (1, 1), 7: (1, 0), 8: (1, 1)}
_TRIGGER_KINDS |= {9: (2, 1), 10: (2, 0), 11: (2, 1)}
_TRIGGER_ID = np.full(128, -1, np.int64)
_TRIGGER_RISING = np.zeros(128, np.int64)
for _kind, (_id, _rising) in _TRIGGER_KINDS.items():
    _TRIGGER_ID[_kind] = _id
    _TRIGGER_RISING[_kind] = _rising

# Decoder state slots (the last one counts events dropped outside the sensor).
(
    _REMAINING,
    _SKIP,
    _PAD,
    _TYPE,
    _SIZE,
    _OVERFLOW,
    _SHIFT,
    _LATEST,
    _NEED,
    _STOP,
    _ERROR,
    _ERROR_AT,
    _RESETS,
    _DROPPED,
) = range(14)
_STATE_SIZE = 14
_STOP_DATA, _STOP_FULL, _STOP_ERROR = 0, 1, 2
_ERRORS = {
    1: "event size is not positive",
    2: "negative event capacity or number, or more events than capacity",
    3: "negative timestamp overflow",
    4: "timestamp offset outside the event or not where the event type keeps it",
    5: "event size too small for the event type",
    6: "frame event with an impossible size, position or channel count",
}
_FRAME_COLUMNS = 5  # byte offset in the window, start/end of frame, start/end of exposure
_IMU_COLUMNS = 10  # temperature, accelerometer xyz, gyroscope xyz, magnetometer xyz (bits)
_NAN_BITS = 0x7FC00000


@njit(nogil=True, cache=True)
def _u32(data: Any, i: int) -> Any:
    return (
        np.int64(data[i])
        | (np.int64(data[i + 1]) << 8)
        | (np.int64(data[i + 2]) << 16)
        | (np.int64(data[i + 3]) << 24)
    )


@njit(nogil=True, cache=True)
def _word(phases: Any, i: int) -> Any:
    """The little-endian 32-bit word at byte ``i``: one load from the view that starts at
    byte ``i & 3`` (see :func:`_phases`)."""
    return np.int64(phases[i & 3, i >> 2])


@njit(nogil=True, cache=True)
def _i32(data: Any, i: int) -> Any:
    value = _u32(data, i)
    return value - (np.int64(1) << 32) if value >= np.int64(1) << 31 else value


@njit(nogil=True, cache=True)
def _i16(data: Any, i: int) -> Any:
    value = np.int64(data[i]) | (np.int64(data[i + 1]) << 8)
    return value - 65536 if value >= 32768 else value


@njit(nogil=True, cache=True)
def _decode(
    data: Any,
    phases: Any,
    state: Any,
    source: int,
    width: int,
    height: int,
    flip: int,
    trigger_id: Any,
    trigger_rising: Any,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
    imu_t: Any,
    imu_bits: Any,
    k: int,
    frames: Any,
) -> tuple[int, int, int, int, int]:
    size = data.size
    capacity = events.size
    trigger_capacity = triggers.size
    imu_capacity = imu_t.size
    frame_capacity = frames.shape[0]
    remaining = state[_REMAINING]
    skip = state[_SKIP]
    pad = state[_PAD]
    kind = state[_TYPE]
    event_size = state[_SIZE]
    base = state[_OVERFLOW] << 31
    shift = state[_SHIFT]
    latest = state[_LATEST]
    resets = state[_RESETS]
    dropped = state[_DROPPED]
    stop = _STOP_DATA
    need = 0
    error = 0
    error_at = 0
    f = 0
    i = 0
    while True:
        if skip > 0:
            step = min(skip, size - i)
            i += step
            skip -= step
            if skip > 0:
                need = skip
                break
            continue
        if remaining > 0:
            if i + event_size > size:
                need = event_size
                break
            if kind == POLARITY:
                while remaining > 0 and i + event_size <= size:
                    if n >= capacity:
                        stop = _STOP_FULL
                        break
                    word = _word(phases, i)
                    if word & 1:
                        t = shift + base + (_word(phases, i + 4) & 0x7FFFFFFF)
                        if t > latest:
                            latest = t
                        x = word >> 17
                        y = (word >> 2) & 0x7FFF
                        if x < width and y < height:
                            event = events[n]
                            event.t = np.uint64(t)
                            event.x = np.uint16(x)
                            event.y = np.uint16(height - 1 - y if flip else y)
                            event.on = (word >> 1) & 1 == 1
                            n += 1
                        else:
                            dropped += 1
                    i += event_size
                    remaining -= 1
                if stop == _STOP_FULL:
                    break
            else:
                if data[i] & 1:
                    if kind == SPECIAL:
                        word = _word(phases, i)
                        special = (word >> 1) & 0x7F
                        t = shift + base + (_word(phases, i + 4) & 0x7FFFFFFF)
                        if special == _TIMESTAMP_RESET:
                            shift = latest
                            resets += 1
                        elif trigger_id[special] >= 0:
                            if m >= trigger_capacity:
                                stop = _STOP_FULL
                                break
                            trigger = triggers[m]
                            trigger.t = np.uint64(t)
                            trigger.id = np.uint8(trigger_id[special])
                            trigger.rising = trigger_rising[special] == 1
                            m += 1
                            if t > latest:
                                latest = t
                    elif kind == FRAME:
                        if f >= frame_capacity:
                            stop = _STOP_FULL
                            break
                        channels = (_word(phases, i) >> 1) & 7
                        length_x = _i32(data, i + 20)
                        length_y = _i32(data, i + 24)
                        if (
                            (channels != 1 and channels != 3 and channels != 4)
                            or length_x < 0
                            or length_y < 0
                            or length_x > event_size
                            or length_y > event_size
                            or length_x * length_y > event_size
                            or _i32(data, i + 28) < 0
                            or _i32(data, i + 32) < 0
                            or 36 + 2 * length_x * length_y * channels > event_size
                        ):
                            stop = _STOP_ERROR
                            error = 6
                            error_at = i
                            break
                        frames[f, 0] = i
                        for column in range(4):
                            frames[f, 1 + column] = (
                                shift + base + (_word(phases, i + 4 + 4 * column) & 0x7FFFFFFF)
                            )
                        if frames[f, 2] > latest:
                            latest = frames[f, 2]
                        f += 1
                    else:  # IMU6 or IMU9
                        if k >= imu_capacity:
                            stop = _STOP_FULL
                            break
                        t = shift + base + (_word(phases, i + 4) & 0x7FFFFFFF)
                        imu_t[k] = np.uint64(t)
                        imu_bits[k, 0] = np.uint32(_word(phases, i + 32))
                        for axis in range(6):
                            imu_bits[k, 1 + axis] = np.uint32(_word(phases, i + 8 + 4 * axis))
                        for axis in range(3):
                            imu_bits[k, 7 + axis] = (
                                np.uint32(_word(phases, i + 36 + 4 * axis))
                                if kind == IMU9
                                else np.uint32(_NAN_BITS)
                            )
                        k += 1
                        if t > latest:
                            latest = t
                i += event_size
                remaining -= 1
            if remaining == 0:
                skip = pad
            continue
        # A packet header.
        if i + _HEADER_SIZE > size:
            need = _HEADER_SIZE
            break
        packet_type = _i16(data, i)
        packet_source = _i16(data, i + 2)
        packet_size = _i32(data, i + 4)
        ts_offset = _i32(data, i + 8)
        overflow = _i32(data, i + 12)
        packet_capacity = _i32(data, i + 16)
        number = _i32(data, i + 20)
        if packet_size <= 0:
            error = 1
        elif packet_capacity < 0 or number < 0 or number > packet_capacity:
            error = 2
        elif overflow < 0:
            error = 3
        elif ts_offset < 0 or ts_offset + 4 > packet_size:
            error = 4
        elif 0 <= packet_type <= IMU9:
            if packet_size < (8, 8, 36, 36, 48)[packet_type]:
                error = 5
            elif ts_offset != (4, 4, 8, 4, 4)[packet_type]:
                error = 4
        if error:
            stop = _STOP_ERROR
            error_at = i
            break
        i += _HEADER_SIZE
        if 0 <= packet_type <= IMU9 and (source < 0 or packet_source == source):
            kind = packet_type
            event_size = packet_size
            base = overflow << 31
            remaining = number
            pad = (packet_capacity - number) * packet_size
            if remaining == 0:
                skip = pad
        else:
            skip = packet_capacity * packet_size
    state[_REMAINING] = remaining
    state[_SKIP] = skip
    state[_PAD] = pad
    state[_TYPE] = kind
    state[_SIZE] = event_size
    state[_OVERFLOW] = base >> 31
    state[_SHIFT] = shift
    state[_LATEST] = latest
    state[_NEED] = need
    state[_STOP] = stop
    state[_ERROR] = error
    state[_ERROR_AT] = error_at
    state[_RESETS] = resets
    state[_DROPPED] = dropped
    return i, n, m, k, f


def _phases(data: npt.NDArray[np.uint8]) -> Any:
    """Four overlapping little-endian 32-bit views of ``data``, row k starting at byte k, so
    that the word at any byte ``i`` is ``[i & 3, i >> 2]``: one load, although packet
    contents have no fixed alignment. The kernel reads only words that lie wholly inside
    ``data`` (the last column of rows 1-3 may reach past it and is never read)."""
    columns = len(data) // 4
    source = data if columns else np.zeros(4, np.uint8)
    words = source[: max(columns, 1) * 4].view("<u4")
    return np.lib.stride_tricks.as_strided(words, shape=(4, columns), strides=(1, 4))


_KERNEL: Any = _decode  # typed loosely: numba's dispatcher signature is not mypy's business
