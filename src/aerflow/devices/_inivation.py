"""What the iniVation DVXplorer and DAVIS346 share: the vendor requests, the register map,
the checks made at open, and the decoders of their 16-bit word streams.

Configuration travels in vendor control request 0xBF (``wValue`` = module, ``wIndex`` =
parameter, 4 bytes big-endian); the DAVIS also takes several writes at once in request 0xC2.
The data endpoint 0x82 streams little-endian 16-bit words: bit 15 set marks a timestamp word
(the low 15 bits of the time in µs), otherwise bits 12..14 give the type (events, special
codes, IMU bytes, APS samples, timestamp wraps).

Decoding choices (the protocol leaves them open):

* Time starts at 0 at the device's reset and never goes backwards: a timestamp word moves
  the clock to ``max(t, offset + low 15 bits)``, a wrap adds 0x8000 to the offset and
  moves the clock to at least the new offset.
* External-input edges are triggers of id :data:`TRIGGER_ID_EDGE` (0), rising or falling. A
  detected *pulse* is a trigger of id :data:`TRIGGER_ID_PULSE` (4) with ``rising=True``:
  the same ids aerflow's AEDAT 4 reader gives the external signal and its pulses.
* An IMU sample takes the time of its IMU start code. Acceleration is in g and rotation in
  °/s (raw × full scale / 32768, aerflow's IMU units); quantities the block does not carry
  are NaN; the magnetometer is always NaN.
* DAVIS frames cover the APS window the decoder was given (the whole sensor by default),
  placed at the window's corner (:attr:`Frame.x`, :attr:`Frame.y`). A pixel is read twice
  (reset, then signal); a pixel without both reads is 0. :attr:`Frame.t` is the frame-start
  time; the exposure times are those of the exposure codes inside the frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from ..errors import DeviceProtocolError
from ..events import EVENTS_DTYPE, IMU_DTYPE, TRIGGERS_DTYPE, Frame, Packet
from .usb import (
    CONTROL_IN_STANDARD,
    CONTROL_IN_VENDOR,
    CONTROL_OUT_VENDOR,
    GET_DESCRIPTOR,
    UsbHandle,
)

__all__ = [
    "TRIGGER_ID_EDGE",
    "TRIGGER_ID_PULSE",
    "Clocks",
    "Davis346StreamDecoder",
    "DvxplorerStreamDecoder",
    "Sleep",
]

log = logging.getLogger(__name__)

VENDOR_ID = 0x152A
DATA_ENDPOINT = 0x82
REQUEST_CONFIG = 0xBF
"""Vendor request reading (0xC0) or writing (0x40) one 32-bit parameter."""
REQUEST_MULTI_WRITE = 0xC2
"""Vendor request writing several parameters at once (DAVIS); ``wValue`` = entry count."""
REQUEST_TIMEOUT = 1.0
"""Seconds allowed for each control request."""
STRING_DESCRIPTOR = 3
NO_SERIAL = "00000000"
"""The serial reported for a device whose descriptor names no serial string."""

# Modules.
MULTIPLEXER, DVS, APS, IMU, EXTERNAL_INPUT, DEVICE, SYSTEM_INFORMATION, USB = 0, 1, 2, 3, 4, 5, 6, 9

# Multiplexer.
MUX_RUN = (MULTIPLEXER, 0)
MUX_TIMESTAMP_RUN = (MULTIPLEXER, 1)
MUX_TIMESTAMP_RESET = (MULTIPLEXER, 2)
MUX_CHIP_RUN = (MULTIPLEXER, 3)
MUX_DROP_EXTERNAL_INPUT_ON_STALL = (MULTIPLEXER, 4)
MUX_DROP_DVS_ON_STALL = (MULTIPLEXER, 5)

# DVS.
DVS_SIZE_COLUMNS = (DVS, 0)
DVS_SIZE_ROWS = (DVS, 1)
DVS_ORIENTATION = (DVS, 2)
DVS_RUN = (DVS, 3)
DVS_WAIT_ON_STALL = (DVS, 4)
DVS_EXTERNAL_AER_CONTROL = (DVS, 5)

# IMU (the rate, filter and range parameters 5..10 differ per model).
IMU_TYPE = (IMU, 0)
IMU_ORIENTATION = (IMU, 1)
IMU_ACCELEROMETER_RUN = (IMU, 2)
IMU_GYROSCOPE_RUN = (IMU, 3)
IMU_TEMPERATURE_RUN = (IMU, 4)

# External input.
EXTERNAL_INPUT_DETECTOR_RUN = (EXTERNAL_INPUT, 0)
EXTERNAL_INPUT_DETECT_RISING = (EXTERNAL_INPUT, 1)
EXTERNAL_INPUT_DETECT_FALLING = (EXTERNAL_INPUT, 2)
EXTERNAL_INPUT_DETECT_PULSES = (EXTERNAL_INPUT, 3)
EXTERNAL_INPUT_PULSE_POLARITY = (EXTERNAL_INPUT, 4)
EXTERNAL_INPUT_PULSE_LENGTH = (EXTERNAL_INPUT, 5)
EXTERNAL_INPUT_GENERATOR_RUN = (EXTERNAL_INPUT, 11)
EXTERNAL_INPUT_GENERATOR_POLARITY = (EXTERNAL_INPUT, 12)
EXTERNAL_INPUT_GENERATOR_INTERVAL = (EXTERNAL_INPUT, 13)
EXTERNAL_INPUT_GENERATOR_LENGTH = (EXTERNAL_INPUT, 14)
EXTERNAL_INPUT_GENERATOR_INJECT_RISING = (EXTERNAL_INPUT, 15)
EXTERNAL_INPUT_GENERATOR_INJECT_FALLING = (EXTERNAL_INPUT, 16)

# System information.
LOGIC_VERSION = (SYSTEM_INFORMATION, 0)
LOGIC_CLOCK = (SYSTEM_INFORMATION, 3)
ADC_CLOCK = (SYSTEM_INFORMATION, 4)
USB_CLOCK = (SYSTEM_INFORMATION, 5)
CLOCK_DEVIATION = (SYSTEM_INFORMATION, 6)
LOGIC_PATCH = (SYSTEM_INFORMATION, 7)

# USB.
USB_RUN = (USB, 0)
USB_EARLY_PACKET_DELAY = (USB, 1)

REQUIRED_LOGIC_VERSION = 18
"""Both models' drivers were written for FPGA logic version 18 exactly."""

FIRMWARE_UPDATE_HINT = (
    "update the camera's firmware and FPGA logic with iniVation's Flashy tool, then reconnect it"
)

TRIGGER_ID_EDGE = 0
"""Trigger id of the external input's rising and falling edges."""
TRIGGER_ID_PULSE = 4
"""Trigger id of a pulse detected on the external input (``rising`` is True): the id
aerflow's AEDAT 4 reader gives DV's "external signal pulse"."""

Write = tuple[int, int, int]
"""One parameter write: (module, parameter, value)."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """A wait between two requests of a sequence."""

    seconds: float


Step = Write | Sleep


# --------------------------------------------------------------------------------------------
# Requests


def spi_write(handle: UsbHandle, module: int, parameter: int, value: int) -> None:
    """Write one 32-bit parameter (vendor request 0xBF, big-endian)."""
    handle.control_write(
        CONTROL_OUT_VENDOR,
        REQUEST_CONFIG,
        module,
        parameter,
        int(value).to_bytes(4, "big"),
        REQUEST_TIMEOUT,
    )


def spi_read(handle: UsbHandle, module: int, parameter: int) -> int:
    """Read one 32-bit parameter."""
    data = handle.control_read(
        CONTROL_IN_VENDOR, REQUEST_CONFIG, module, parameter, 4, REQUEST_TIMEOUT
    )
    if len(data) != 4:
        raise DeviceProtocolError(
            f"parameter {module}:{parameter} read returned {len(data)} bytes instead of 4"
        )
    return int.from_bytes(data, "big")


def spi_read_u64(handle: UsbHandle, module: int, parameter: int) -> int:
    """A 64-bit counter: its high half at ``parameter``, its low half at ``parameter + 1``."""
    high = spi_read(handle, module, parameter)
    low = spi_read(handle, module, parameter + 1)
    return (high << 32) | low


def spi_multi_write(handle: UsbHandle, writes: list[Write]) -> None:
    """Several writes in one request 0xC2 (DAVIS): 6 bytes each, module and parameter as
    single bytes, the value big-endian."""
    payload = b"".join(
        bytes((module, parameter)) + int(value).to_bytes(4, "big")
        for module, parameter, value in writes
    )
    handle.control_write(
        CONTROL_OUT_VENDOR, REQUEST_MULTI_WRITE, len(writes), 0, payload, REQUEST_TIMEOUT
    )


def play(handle: UsbHandle, steps: list[Step]) -> None:
    """Send a sequence of writes and waits, in order."""
    for step in steps:
        if isinstance(step, Sleep):
            handle.sleep(step.seconds)
        else:
            spi_write(handle, *step)


def read_serial(handle: UsbHandle) -> str:
    """The device's serial: the ASCII string descriptor the device descriptor points at, or
    :data:`NO_SERIAL` when it points at none."""
    index = handle.info.serial_index
    if index == 0:
        return NO_SERIAL
    languages = handle.control_read(
        CONTROL_IN_STANDARD, GET_DESCRIPTOR, STRING_DESCRIPTOR << 8, 0, 255, REQUEST_TIMEOUT
    )
    if len(languages) < 4 or languages[1] != STRING_DESCRIPTOR:
        raise DeviceProtocolError("the device lists no language for its string descriptors")
    language = languages[2] | languages[3] << 8
    data = handle.control_read(
        CONTROL_IN_STANDARD,
        GET_DESCRIPTOR,
        STRING_DESCRIPTOR << 8 | index,
        language,
        255,
        REQUEST_TIMEOUT,
    )
    if len(data) < 2 or data[1] != STRING_DESCRIPTOR or data[0] > len(data) or data[0] % 2:
        raise DeviceProtocolError(f"string descriptor {index} (the serial) is malformed")
    text = bytes(data[2 : data[0]]).decode("utf-16-le", errors="replace")
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def check_versions(
    handle: UsbHandle, model: str, minimum_firmware: int, minimum_logic_patch: int
) -> None:
    """The firmware (low byte of bcdDevice), logic version and logic patch checks."""
    firmware = handle.info.bcd_device & 0xFF
    if firmware < minimum_firmware:
        raise DeviceProtocolError(
            f"the {model}'s firmware version is {firmware >> 4}.{firmware & 0xF}; aerflow needs "
            f"{minimum_firmware >> 4}.{minimum_firmware & 0xF} or later: {FIRMWARE_UPDATE_HINT}"
        )
    version = spi_read(handle, *LOGIC_VERSION)
    if version != REQUIRED_LOGIC_VERSION:
        raise DeviceProtocolError(
            f"the {model}'s FPGA logic version is {version}; aerflow supports version "
            f"{REQUIRED_LOGIC_VERSION} only: {FIRMWARE_UPDATE_HINT}"
        )
    patch = spi_read(handle, *LOGIC_PATCH)
    if patch < minimum_logic_patch:
        raise DeviceProtocolError(
            f"the {model}'s FPGA logic patch is {patch}; aerflow needs patch "
            f"{minimum_logic_patch} or later: {FIRMWARE_UPDATE_HINT}"
        )


@dataclass(frozen=True, slots=True)
class Clocks:
    """The FPGA's clocks in MHz (register × deviation / 1000); ``adc`` is 0 where absent."""

    logic: float
    usb: float
    adc: float = 0.0

    def logic_cycles(self, microseconds: float) -> int:
        return round(microseconds * self.logic)

    def usb_cycles(self, microseconds: float) -> int:
        return round(microseconds * self.usb)

    def adc_cycles(self, microseconds: float) -> int:
        return round(microseconds * self.adc)


def read_clocks(handle: UsbHandle, *, adc: bool) -> Clocks:
    """Read the clock registers in the reference drivers' order: logic, (ADC,) USB, deviation."""
    logic = spi_read(handle, *LOGIC_CLOCK)
    adc_register = spi_read(handle, *ADC_CLOCK) if adc else 0
    usb = spi_read(handle, *USB_CLOCK)
    deviation = spi_read(handle, *CLOCK_DEVIATION) / 1000.0
    return Clocks(logic * deviation, usb * deviation, adc_register * deviation)


def stop(handle: UsbHandle, steps: list[Step]) -> None:
    """The close sequence, best effort: a device that is gone is not an error here."""
    from ..errors import DeviceError

    try:
        play(handle, steps)
    except DeviceError as error:
        log.info("stopping the camera failed (%s); it may have been disconnected", error)


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

# Orientation bits.
IMU_FLIP_Z, IMU_FLIP_Y, IMU_FLIP_X = 1, 2, 4
"""IMU orientation register bits (both models)."""
FLIP_Y, FLIP_X, INVERT_XY = 1, 2, 4
"""DVS and APS orientation register bits."""

DVXPLORER_ACCELEROMETER_G = np.array([2.0, 4.0, 8.0, 16.0])
"""Full scale in g by the 2-bit accelerometer scale of the DVXplorer's IMU config byte."""
DVXPLORER_GYROSCOPE_DPS = np.array([2000.0, 1000.0, 500.0, 250.0, 125.0, 125.0, 125.0, 125.0])
"""Full scale in °/s by the 3-bit gyroscope scale of the DVXplorer's IMU config byte."""
DAVIS_ACCELEROMETER_G = np.array([2.0, 4.0, 8.0, 16.0])
DAVIS_GYROSCOPE_DPS = np.array([250.0, 500.0, 1000.0, 2000.0])

DVXPLORER_TEMPERATURE = (512.0, 23.0)
"""DVXplorer IMU temperature: raw / 512 + 23 °C."""
DAVIS_TEMPERATURE = {1: (340.0, 35.0), 2: (333.87, 21.0)}
"""DAVIS IMU temperature by IMU type: 1 (InvenSense 6050/6150) raw / 340 + 35 °C,
2 (InvenSense 9250) raw / 333.87 + 21 °C. Other types give NaN."""

# APS pixel values.
APS_SATURATED = 1023 << 6
APS_RESET_MINIMUM = 384
"""A reset read below this saturates the pixel (as does a signal read of 0)."""


@nb.njit(nogil=True, cache=True)
def _i16(high: int, low: int) -> int:
    value = (high << 8) | low
    return value - 65536 if value >= 32768 else value


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True, inline="always")
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


@nb.njit(nogil=True, cache=True)
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


@nb.njit(nogil=True, cache=True)
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


class _Scratch:
    """Output arrays reused from chunk to chunk, grown to the largest chunk seen."""

    def __init__(self, events_per_word: int) -> None:
        self.events_per_word = events_per_word
        self.words = 0
        self.events = np.empty(0, EVENTS_DTYPE)
        self.triggers = np.empty(0, TRIGGERS_DTYPE)
        self.imu_t = np.empty(0, np.uint64)
        self.imu_values = np.empty((0, 7), np.float64)

    def reserve(self, words: int) -> None:
        if words <= self.words:
            return
        words = max(words, 2 * self.words)
        self.words = words
        self.events = np.empty(words * self.events_per_word, EVENTS_DTYPE)
        self.triggers = np.empty(words, TRIGGERS_DTYPE)
        # An IMU sample takes at least three words (start, config, end).
        self.imu_t = np.empty(words // 3 + 1, np.uint64)
        self.imu_values = np.empty((words // 3 + 1, 7), np.float64)

    def imu(self, k: int) -> npt.NDArray[Any]:
        out = np.empty(k, IMU_DTYPE)
        out["t"] = self.imu_t[:k]
        values = self.imu_values[:k]
        out["accelerometer"] = values[:, _AX : _AZ + 1]
        out["gyroscope"] = values[:, _GX : _GZ + 1]
        out["temperature"] = values[:, _TEMPERATURE]
        out["magnetometer"] = np.nan
        return out


def _as_bytes(data: Any) -> npt.NDArray[np.uint8]:
    array = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    if array.dtype != np.uint8 or array.ndim != 1:
        array = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return array


class _WordDecoder:
    """Carries the odd trailing byte of a chunk over to the next one."""

    def __init__(self, state_size: int, events_per_word: int) -> None:
        self._state = np.zeros(state_size, np.int64)
        self._pending: int | None = None
        self._scratch = _Scratch(events_per_word)

    @property
    def current_t(self) -> int:
        return int(self._state[_T])

    def _pieces(self, data: Any) -> list[npt.NDArray[np.uint8]]:
        array = _as_bytes(data)
        pieces = []
        if self._pending is not None and array.size > 0:
            pieces.append(np.array([self._pending, array[0]], np.uint8))
            self._pending = None
            array = array[1:]
        if array.size % 2:
            self._pending = int(array[-1])
            array = array[:-1]
        pieces.append(array)
        self._scratch.reserve(sum(piece.size for piece in pieces) // 2 + 1)
        return pieces


class DvxplorerStreamDecoder(_WordDecoder):
    """Decodes the DVXplorer's data endpoint into events, triggers and IMU samples.

    ``imu_orientation`` is the IMU orientation register (bit 0 flips z, bit 1 y, bit 2 x).
    The DVS orientation register is not applied: events come in the sensor's own x and y.
    """

    def __init__(self, imu_orientation: int = 0) -> None:
        super().__init__(_DVX_STATE_SIZE, 8)
        self._imu_flips = int(imu_orientation) & 7
        self._state[_COLUMN] = -1
        self._state[_GROUP0] = -1
        self._state[_GROUP1] = -1

    def decode(self, data: npt.NDArray[np.uint8]) -> Packet:
        scratch = self._scratch
        events, triggers, imu = [], [], []
        for piece in self._pieces(data):
            n, m, k = _decode_dvxplorer(
                piece,
                self._state,
                scratch.events,
                scratch.triggers,
                scratch.imu_t,
                scratch.imu_values,
                self._imu_flips,
                DVXPLORER_ACCELEROMETER_G,
                DVXPLORER_GYROSCOPE_DPS,
                *DVXPLORER_TEMPERATURE,
            )
            events.append(scratch.events[:n].copy())
            triggers.append(scratch.triggers[:m].copy())
            imu.append(scratch.imu(k))
        return _packet(events, triggers, imu, ())


def _packet(
    events: list[npt.NDArray[Any]],
    triggers: list[npt.NDArray[Any]],
    imu: list[npt.NDArray[Any]],
    frames: tuple[Frame, ...],
) -> Packet:
    def join(parts: list[npt.NDArray[Any]], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        if not parts:
            return np.empty(0, dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    return Packet(
        join(events, EVENTS_DTYPE), join(triggers, TRIGGERS_DTYPE), join(imu, IMU_DTYPE), frames
    )


DAVIS346_WIDTH, DAVIS346_HEIGHT = 346, 260


class Davis346StreamDecoder(_WordDecoder):
    """Decodes the DAVIS346's data endpoint into events, triggers, IMU samples and frames.

    ``dvs_orientation`` and ``aps_orientation`` are the DVS and APS orientation registers
    (bit 0 flip y, bit 1 flip x, bit 2 swap x and y; the DVS applies only the swap),
    ``imu_orientation`` the IMU's (bit 0 flips z, bit 1 y, bit 2 x) and ``imu_type`` the IMU
    type register (it sets the temperature formula). Frames cover :attr:`aps_window`.
    """

    def __init__(
        self,
        *,
        dvs_orientation: int = 0,
        aps_orientation: int = 0,
        imu_orientation: int = 0,
        imu_type: int = 1,
        aps_window: tuple[int, int, int, int] = (0, 0, DAVIS346_WIDTH, DAVIS346_HEIGHT),
    ) -> None:
        super().__init__(_DAVIS_STATE_SIZE, 1)
        self._orientation = np.array(
            [(dvs_orientation & INVERT_XY) != 0, aps_orientation & 7, imu_orientation & 7],
            np.int64,
        )
        self._temperature = DAVIS_TEMPERATURE.get(int(imu_type), (0.0, 0.0))
        self._state[_ROW] = -1
        for slot in (_F_START, _F_EXPOSURE_START, _F_EXPOSURE_END):
            self._state[slot] = -1
        self._state[_F_RESET_COLUMN] = -1
        self._state[_F_SIGNAL_COLUMN] = -1
        size = DAVIS346_WIDTH * DAVIS346_HEIGHT
        self._reset = np.full(size, -1, np.int32)
        self._pixels = np.full(size, -1, np.int32)
        self.aps_window = aps_window

    @property
    def aps_window(self) -> tuple[int, int, int, int]:
        """(left, top, width, height) of the APS readout, taken at each frame start."""
        s = self._state
        return int(s[_WINDOW_X]), int(s[_WINDOW_Y]), int(s[_WINDOW_WIDTH]), int(s[_WINDOW_HEIGHT])

    @aps_window.setter
    def aps_window(self, window: tuple[int, int, int, int]) -> None:
        left, top, width, height = (int(v) for v in window)
        if not (
            left >= 0
            and top >= 0
            and width >= 1
            and height >= 1
            and left + width <= DAVIS346_WIDTH
            and top + height <= DAVIS346_HEIGHT
        ):
            raise ValueError(f"the APS window {window} does not fit the 346×260 sensor")
        self._state[_WINDOW_X : _WINDOW_HEIGHT + 1] = (left, top, width, height)

    def decode(self, data: npt.NDArray[np.uint8]) -> Packet:
        scratch = self._scratch
        state = self._state
        events, triggers, imu = [], [], []
        frames: list[Frame] = []
        for piece in self._pieces(data):
            position = 0
            n = m = k = 0
            while True:
                position, n, m, k, done = _decode_davis(
                    piece,
                    position,
                    state,
                    scratch.events,
                    n,
                    scratch.triggers,
                    m,
                    scratch.imu_t,
                    scratch.imu_values,
                    k,
                    self._reset,
                    self._pixels,
                    self._orientation,
                    DAVIS_ACCELEROMETER_G,
                    DAVIS_GYROSCOPE_DPS,
                    *self._temperature,
                )
                if not done:
                    break
                frames.append(self._frame())
            events.append(scratch.events[:n].copy())
            triggers.append(scratch.triggers[:m].copy())
            imu.append(scratch.imu(k))
        return _packet(events, triggers, imu, tuple(frames))

    def _frame(self) -> Frame:
        s = self._state
        width, height = int(s[_OUT_WIDTH]), int(s[_OUT_HEIGHT])
        values = self._pixels[: width * height].reshape(height, width)
        pixels = np.where(values < 0, 0, values).astype(np.uint16)
        exposure_start, exposure_end = int(s[_OUT_EXPOSURE_START]), int(s[_OUT_EXPOSURE_END])
        return Frame(
            t=int(s[_OUT_START]),
            pixels=pixels,
            exposure_start=exposure_start if exposure_start >= 0 else None,
            exposure_end=exposure_end if exposure_end >= 0 else None,
            x=int(s[_OUT_X]),
            y=int(s[_OUT_Y]),
        )


def check_clocks(clocks: Clocks, model: str) -> None:
    """Clocks of 0 MHz would turn every time-like register into 0."""
    for name in ("logic", "usb"):
        value = getattr(clocks, name)
        if not (math.isfinite(value) and value > 0):
            raise DeviceProtocolError(f"the {model} reports a {name} clock of {value} MHz")
