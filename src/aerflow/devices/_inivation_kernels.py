"""The numba kernels that decode the iniVation word streams (see :mod:`.inivation_stream` for
the decoders that run them, and :mod:`._inivation` for the decoding choices), with the slots of
the state they carry from chunk to chunk."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit
from ._inivation import (
    FLIP_X,
    FLIP_Y,
    IMU_FLIP_X,
    IMU_FLIP_Y,
    IMU_FLIP_Z,
    INVERT_XY,
    TRIGGER_ID_EDGE,
    TRIGGER_ID_PULSE,
)

# --------------------------------------------------------------------------------------------
# Word-stream decoding (numba kernels and their state)

# Shared state slots.
_T, _OFFSET = 0, 1
_IMU_STATE, _IMU_T, _ACCEL_SCALE, _GYRO_SCALE, _HAS_TEMPERATURE, _IMU_INDEX = 2, 3, 4, 5, 6, 7
_IMU_BYTES = 8  # 14 slots
# DVXplorer slots.
_COLUMN, _GROUP0, _GROUP1 = 22, 23, 24
_DVX_STATE_SIZE = 25
# DAVIS slots.
_ROW = 22
_F_START, _F_EXPOSURE_START, _F_EXPOSURE_END = 23, 24, 25
_F_RESET_COLUMN, _F_SIGNAL_COLUMN, _F_KIND, _F_ROW = 26, 27, 28, 29
_F_READ_ROWS, _F_READ_COLUMNS, _F_WIDTH, _F_HEIGHT, _F_X, _F_Y = 30, 31, 32, 33, 34, 35
_WINDOW_X, _WINDOW_Y, _WINDOW_WIDTH, _WINDOW_HEIGHT = 36, 37, 38, 39
_OUT_START, _OUT_END, _OUT_EXPOSURE_START, _OUT_EXPOSURE_END = 40, 41, 42, 43
_OUT_WIDTH, _OUT_HEIGHT, _OUT_X, _OUT_Y = 44, 45, 46, 47
_DAVIS_STATE_SIZE = 48

_IMU_NONE, _IMU_STARTED, _IMU_TYPED = 0, 1, 2
_KIND_IDLE, _KIND_RESET, _KIND_SIGNAL = 0, 1, 2

# IMU value columns.
_AX, _AY, _AZ, _GX, _GY, _GZ, _TEMPERATURE = range(7)

# APS pixel values.
APS_SATURATED = 1023 << 6
APS_RESET_MINIMUM = 384
"""A reset read below this saturates the pixel (as does a signal read of 0)."""


@njit(nogil=True, cache=True)
def _i16(high: int, low: int) -> int:
    value = (high << 8) | low
    return value - 65536 if value >= 32768 else value


@njit(nogil=True, cache=True)
def _imu_word(word: int, state: Any, davis: bool) -> None:
    """An IMU word (type 5): a data byte (sub-type 0) or the config byte (sub-type 3)."""
    subtype = (word >> 8) & 0xF
    if subtype == 0:
        if state[_IMU_STATE] == _IMU_TYPED:
            index = state[_IMU_INDEX]
            if index < 14:
                state[_IMU_BYTES + index] = word & 0xFF
            if index == 5:
                if state[_HAS_TEMPERATURE] != 0:
                    index = 6
                elif state[_GYRO_SCALE] >= 0:
                    index = 8
                else:
                    index = 14
            elif index == 7:
                index = 8 if state[_GYRO_SCALE] >= 0 else 14
            else:
                index += 1
            state[_IMU_INDEX] = index
    elif subtype == 3 and state[_IMU_STATE] != _IMU_NONE:
        has_temperature = (word >> 5) & 1
        has_gyroscope = (word >> 6) & 1
        has_accelerometer = (word >> 7) & 1
        if has_accelerometer:
            state[_ACCEL_SCALE] = (word >> 2) & 3 if davis else (word >> 3) & 3
        else:
            state[_ACCEL_SCALE] = -1
        if has_gyroscope:
            state[_GYRO_SCALE] = word & 3 if davis else word & 7
        else:
            state[_GYRO_SCALE] = -1
        state[_HAS_TEMPERATURE] = has_temperature
        for j in range(14):
            state[_IMU_BYTES + j] = 0
        if has_accelerometer:
            state[_IMU_INDEX] = 0
        elif has_temperature:
            state[_IMU_INDEX] = 6
        elif has_gyroscope:
            state[_IMU_INDEX] = 8
        else:
            state[_IMU_INDEX] = 14
        state[_IMU_STATE] = _IMU_TYPED


@njit(nogil=True, cache=True)
def _imu_end(
    state: Any,
    imu_t: Any,
    imu_values: Any,
    k: int,
    davis: bool,
    flips: int,
    accelerometer_g: Any,
    gyroscope_dps: Any,
    temperature_divisor: float,
    temperature_offset: float,
) -> int:
    """The IMU end code: emit the sample if all 14 bytes arrived; returns the new count."""
    if state[_IMU_STATE] == _IMU_TYPED and state[_IMU_INDEX] == 14:
        b = _IMU_BYTES
        if davis:
            ax = _i16(state[b + 0], state[b + 1])
            ay = _i16(state[b + 2], state[b + 3])
        else:  # the DVXplorer sends y before x
            ax = _i16(state[b + 2], state[b + 3])
            ay = _i16(state[b + 0], state[b + 1])
        az = _i16(state[b + 4], state[b + 5])
        raw_temperature = _i16(state[b + 6], state[b + 7])
        gx = _i16(state[b + 8], state[b + 9])
        gy = _i16(state[b + 10], state[b + 11])
        gz = _i16(state[b + 12], state[b + 13])
        sx = -1.0 if flips & IMU_FLIP_X else 1.0
        sy = -1.0 if flips & IMU_FLIP_Y else 1.0
        sz = -1.0 if flips & IMU_FLIP_Z else 1.0
        accel = state[_ACCEL_SCALE]
        if accel >= 0:
            g = accelerometer_g[accel]
            imu_values[k, _AX] = sx * (ax * g / 32768.0)
            imu_values[k, _AY] = sy * (ay * g / 32768.0)
            imu_values[k, _AZ] = sz * (az * g / 32768.0)
        else:
            imu_values[k, _AX] = np.nan
            imu_values[k, _AY] = np.nan
            imu_values[k, _AZ] = np.nan
        gyro = state[_GYRO_SCALE]
        if gyro >= 0:
            d = gyroscope_dps[gyro]
            imu_values[k, _GX] = sx * (gx * d / 32768.0)
            imu_values[k, _GY] = sy * (gy * d / 32768.0)
            imu_values[k, _GZ] = sz * (gz * d / 32768.0)
        else:
            imu_values[k, _GX] = np.nan
            imu_values[k, _GY] = np.nan
            imu_values[k, _GZ] = np.nan
        if state[_HAS_TEMPERATURE] != 0 and temperature_divisor > 0:
            imu_values[k, _TEMPERATURE] = raw_temperature / temperature_divisor + temperature_offset
        else:
            imu_values[k, _TEMPERATURE] = np.nan
        imu_t[k] = state[_IMU_T]
        k += 1
    state[_IMU_STATE] = _IMU_NONE
    return k


@njit(nogil=True, cache=True, inline="always")
def _special_event(
    code: int,
    t: int,
    state: Any,
    triggers: Any,
    m: int,
    imu_t: Any,
    imu_values: Any,
    k: int,
    davis: bool,
    flips: int,
    accelerometer_g: Any,
    gyroscope_dps: Any,
    temperature_divisor: float,
    temperature_offset: float,
) -> tuple[int, int]:
    """The special-event codes both cameras share (0-7: triggers, IMU start and end);
    returns the trigger and IMU sample counts after it."""
    if code == 2 or code == 3 or code == 4:
        trigger = triggers[m]
        trigger.t = np.uint64(t)
        trigger.id = np.uint8(TRIGGER_ID_PULSE if code == 4 else TRIGGER_ID_EDGE)
        trigger.rising = code != 2
        m += 1
    elif code == 5:
        state[_IMU_STATE] = _IMU_STARTED
        state[_IMU_T] = t
    elif code == 7:
        k = _imu_end(
            state,
            imu_t,
            imu_values,
            k,
            davis,
            flips,
            accelerometer_g,
            gyroscope_dps,
            temperature_divisor,
            temperature_offset,
        )
    return m, k


@njit(nogil=True, cache=True)
def _decode_dvxplorer(
    data: Any,
    state: Any,
    events: Any,
    triggers: Any,
    imu_t: Any,
    imu_values: Any,
    imu_flips: int,
    accelerometer_g: Any,
    gyroscope_dps: Any,
    temperature_divisor: float,
    temperature_offset: float,
) -> tuple[int, int, int]:
    """Decode every whole word of ``data``; returns (events, triggers, IMU samples) written."""
    n = 0
    m = 0
    k = 0
    t = state[_T]
    offset = state[_OFFSET]
    column = state[_COLUMN]
    group0 = state[_GROUP0]
    group1 = state[_GROUP1]
    for w in range(data.size // 2):
        word = np.int64(data[2 * w]) | (np.int64(data[2 * w + 1]) << 8)
        if word & 0x8000:
            candidate = offset + (word & 0x7FFF)
            if candidate > t:
                t = candidate
            continue
        kind = (word >> 12) & 7
        if kind == 0:
            code = word & 0xFFF
            if code <= 7:
                m, k = _special_event(
                    code,
                    t,
                    state,
                    triggers,
                    m,
                    imu_t,
                    imu_values,
                    k,
                    False,
                    imu_flips,
                    accelerometer_g,
                    gyroscope_dps,
                    temperature_divisor,
                    temperature_offset,
                )
        elif kind == 1:
            column = word & 0x3FF
            if column >= 640:
                column = -1
        elif kind == 2 or kind == 3:
            group = group1 if kind == 2 else group0
            if column >= 0 and group >= 0:
                on = (word >> 8) & 1 == 0
                for bit in range(8):
                    if (word >> bit) & 1:
                        event = events[n]
                        event.t = np.uint64(t)
                        event.x = np.uint16(column)
                        event.y = np.uint16(group * 8 + bit)
                        event.on = on
                        n += 1
        elif kind == 4:
            group0 = word & 0x3F
            distance = (word >> 6) & 0x1F
            group1 = group0 - distance if (word >> 11) & 1 else group0 + distance
            if group0 >= 60:
                group0 = -1
            if group1 < 0 or group1 >= 60:
                group1 = -1
        elif kind == 5:
            _imu_word(word, state, False)
        elif kind == 7:
            offset += 0x8000
            if offset > t:
                t = offset
    state[_T] = t
    state[_OFFSET] = offset
    state[_COLUMN] = column
    state[_GROUP0] = group0
    state[_GROUP1] = group1
    return n, m, k


@njit(nogil=True, cache=True)
def _decode_davis(
    data: Any,
    start: int,
    state: Any,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
    imu_t: Any,
    imu_values: Any,
    k: int,
    reset: Any,
    pixels: Any,
    orientation: Any,
    accelerometer_g: Any,
    gyroscope_dps: Any,
    temperature_divisor: float,
    temperature_offset: float,
) -> tuple[int, int, int, int, bool]:
    """Decode words of ``data`` from word ``start`` on. Returns (next word, events, triggers,
    IMU samples, frame completed): it stops right after a frame end so that the caller can
    copy the frame out of ``pixels`` (its size and times are in the _OUT_* slots)."""
    dvs_invert = orientation[0] != 0
    aps = orientation[1]
    imu_flips = orientation[2]
    dvs_rows = 346 if dvs_invert else 260
    dvs_columns = 260 if dvs_invert else 346
    aps_invert = aps & INVERT_XY != 0
    t = state[_T]
    offset = state[_OFFSET]
    row = state[_ROW]
    words = data.size // 2
    w = start
    while w < words:
        word = np.int64(data[2 * w]) | (np.int64(data[2 * w + 1]) << 8)
        w += 1
        if word & 0x8000:
            candidate = offset + (word & 0x7FFF)
            if candidate > t:
                t = candidate
            continue
        kind = (word >> 12) & 7
        if kind == 0:
            code = word & 0xFFF
            if code <= 7:
                m, k = _special_event(
                    code,
                    t,
                    state,
                    triggers,
                    m,
                    imu_t,
                    imu_values,
                    k,
                    True,
                    imu_flips,
                    accelerometer_g,
                    gyroscope_dps,
                    temperature_divisor,
                    temperature_offset,
                )
            elif code == 8 or code == 9:
                width = state[_WINDOW_WIDTH]
                height = state[_WINDOW_HEIGHT]
                state[_F_START] = t
                state[_F_EXPOSURE_START] = -1
                state[_F_EXPOSURE_END] = -1
                state[_F_RESET_COLUMN] = 0
                state[_F_SIGNAL_COLUMN] = 0
                state[_F_KIND] = _KIND_IDLE
                state[_F_WIDTH] = width
                state[_F_HEIGHT] = height
                state[_F_X] = state[_WINDOW_X]
                state[_F_Y] = state[_WINDOW_Y]
                state[_F_READ_ROWS] = width if aps_invert else height
                state[_F_READ_COLUMNS] = height if aps_invert else width
                for j in range(width * height):
                    reset[j] = -1
                    pixels[j] = -1
            elif code == 10:
                if state[_F_START] >= 0:
                    state[_OUT_START] = state[_F_START]
                    state[_OUT_END] = t
                    state[_OUT_EXPOSURE_START] = state[_F_EXPOSURE_START]
                    state[_OUT_EXPOSURE_END] = state[_F_EXPOSURE_END]
                    state[_OUT_WIDTH] = state[_F_WIDTH]
                    state[_OUT_HEIGHT] = state[_F_HEIGHT]
                    state[_OUT_X] = state[_F_X]
                    state[_OUT_Y] = state[_F_Y]
                    state[_F_START] = -1
                    state[_F_EXPOSURE_START] = -1
                    state[_F_EXPOSURE_END] = -1
                    state[_F_RESET_COLUMN] = -1
                    state[_F_SIGNAL_COLUMN] = -1
                    state[_T] = t
                    state[_OFFSET] = offset
                    state[_ROW] = row
                    return w, n, m, k, True
            elif code == 11 or code == 12:
                slot = _F_RESET_COLUMN if code == 11 else _F_SIGNAL_COLUMN
                column = state[slot]
                if column >= 0:
                    if column < state[_F_READ_COLUMNS]:
                        state[slot] = column + 1
                        state[_F_KIND] = _KIND_RESET if code == 11 else _KIND_SIGNAL
                        state[_F_ROW] = 0
                    else:
                        state[slot] = -1
                        state[_F_KIND] = _KIND_IDLE
            elif code == 13:
                state[_F_KIND] = _KIND_IDLE
            elif code == 14:
                state[_F_EXPOSURE_START] = t
            elif code == 15:
                state[_F_EXPOSURE_END] = t
        elif kind == 1:
            row = word & 0xFFF
            if row >= dvs_rows:
                row = -1
        elif kind == 2 or kind == 3:
            if row >= 0:
                column = word & 0xFFF
                if column < dvs_columns:
                    event = events[n]
                    event.t = np.uint64(t)
                    event.x = np.uint16(row if dvs_invert else column)
                    event.y = np.uint16(column if dvs_invert else row)
                    event.on = kind == 3
                    n += 1
        elif kind == 4:
            frame_kind = state[_F_KIND]
            if frame_kind != _KIND_IDLE:
                column = state[_F_RESET_COLUMN if frame_kind == _KIND_RESET else _F_SIGNAL_COLUMN]
                if column > 0:
                    read_row = state[_F_ROW]
                    read_rows = state[_F_READ_ROWS]
                    read_columns = state[_F_READ_COLUMNS]
                    r = read_rows - 1 - read_row if aps & FLIP_Y else read_row
                    c = read_columns - 1 - (column - 1) if aps & FLIP_X else column - 1
                    index = c * state[_F_WIDTH] + r if aps_invert else r * state[_F_WIDTH] + c
                    value = word & 0xFFF
                    if frame_kind == _KIND_RESET:
                        reset[index] = value
                    else:
                        before = reset[index]
                        if before >= 0:
                            if before < APS_RESET_MINIMUM or value == 0:
                                pixels[index] = APS_SATURATED
                            elif before < value:
                                pixels[index] = 0
                            else:
                                pixels[index] = min(before - value, 1023) << 6
                    if read_row < read_rows - 1:
                        state[_F_ROW] = read_row + 1
                    else:
                        state[_F_KIND] = _KIND_IDLE
        elif kind == 5:
            _imu_word(word, state, True)
        elif kind == 7:
            offset += 0x8000
            if offset > t:
                t = offset
    state[_T] = t
    state[_OFFSET] = offset
    state[_ROW] = row
    return w, n, m, k, False
