"""What the iniVation DVXplorer and DAVIS346 share: the vendor requests, the register map,
the checks made at open, and the facts and choices of their 16-bit word streams (decoded by
:mod:`.inivation_stream`, with the kernels of :mod:`._inivation_kernels`).

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

import numpy as np

from ..errors import DeviceProtocolError
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

DAVIS346_WIDTH, DAVIS346_HEIGHT = 346, 260


def check_clocks(clocks: Clocks, model: str) -> None:
    """Clocks of 0 MHz would turn every time-like register into 0."""
    for name in ("logic", "usb"):
        value = getattr(clocks, name)
        if not (math.isfinite(value) and value > 0):
            raise DeviceProtocolError(f"the {model} reports a {name} clock of {value} MHz")
