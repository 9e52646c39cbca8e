"""iniVation DVXplorer (152A:8419, 640×480): open, configuration and close.

The open sequence follows neuromorphic-drivers' order (checks, stop everything, 100 ms, clear
the data endpoint's halt, sensor bring-up, FPGA configuration and start). Where it and
libcaer (iniVation's own library) disagree, the choice our protocol notes recommend is taken;
each such value is a named constant below marked "[I]" (an interpretation, not checked on
hardware).

The biases are written at open only. The protocol notes give no evidence that the sensor's
bias registers may be rewritten while it streams, so :meth:`DvxplorerDriver.update_configuration`
refuses a bias change (ConfigurationError): close and reopen the camera to apply one.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ConfigurationError, DeviceProtocolError
from . import _inivation as ini
from . import inivation_stream
from ._inivation import DEVICE, Sleep, Step, Write
from .driver import CameraDriver, StreamDecoder
from .usb import UsbHandle

__all__ = ["PRESETS", "DvxplorerBiases", "DvxplorerConfiguration", "DvxplorerDriver"]

log = logging.getLogger(__name__)

PRODUCT_ID = 0x8419
WIDTH, HEIGHT = 640, 480
MINIMUM_FIRMWARE = 0x09
"""Lowest firmware version (low byte of bcdDevice) accepted (neuromorphic-drivers' check)."""
MINIMUM_LOGIC_PATCH = 4
"""[I] Lowest logic patch accepted. neuromorphic-drivers requires exactly 4 and libcaer at
least 2; the sequence below is neuromorphic-drivers', written for patch 4, so we take 4 as a
minimum rather than an exact value."""
MIPI_DEVICE_TYPE = 4
"""The high byte of bcdDevice of the MIPI/CX3 DVXplorer variant, which speaks another
protocol (libcaer); it is refused at open."""

# Model-specific registers.
DEVICE_CONTROL_MODE = (DEVICE, 0x3000)
SENSOR_MODE_OFF, SENSOR_MODE_STREAM = 0x00, 0x02
IMU_ACCELEROMETER_DATA_RATE = (ini.IMU, 5)
IMU_ACCELEROMETER_FILTER = (ini.IMU, 6)
IMU_ACCELEROMETER_RANGE = (ini.IMU, 7)
IMU_GYROSCOPE_DATA_RATE = (ini.IMU, 8)
IMU_GYROSCOPE_FILTER = (ini.IMU, 9)
IMU_GYROSCOPE_RANGE = (ini.IMU, 10)

# Sensor bias registers (one byte each).
BIAS_CURRENT_RANGE_SELECT = 0x000B
BIAS_CURRENT_LEVEL_SELECT_LOG = 0x000C
BIAS_OTP_TRIM = 0x000D
BIAS_PINS_DBGP = 0x000F
BIAS_PINS_DBGN = 0x0010
BIAS_CURRENT_LEVEL_SELECT = 0x0012
BIAS_PINS_BUFP = 0x0013
BIAS_PINS_BUFN = 0x0014
BIAS_PINS_DOB = 0x0015
BIAS_AMP = 0x0018
BIAS_ON = 0x001C
BIAS_OFF = 0x001E

BIAS_PINS_DEBUG = (0x07, 0xFF)
"""[I] DBGP, DBGN: libcaer's values (neuromorphic-drivers writes 0x00, 0x00)."""
EVENT_DETECTION_TIME = 2
"""[I] GH count (0x3241/0x3242, µs): libcaer's 2 (neuromorphic-drivers writes 7)."""
DIGITAL_ENABLE = 0x06
"""[I] 0x3200: area blocking off (bit 1) and, as libcaer, subsampling off (bit 2);
neuromorphic-drivers writes 0x02."""
SELX_AND_EVENT_LIMITS: tuple[tuple[int, int], ...] = (
    (0x3261, 0x00),
    (0x3262, 0x0F),
    (0x3251, 0x0A),
)
"""[I] Next SELX start (15) and maximum event number (15 − 5), written as libcaer does;
neuromorphic-drivers writes neither."""
ACTIVITY_DECISION: tuple[tuple[int, int], ...] = (
    (0x3500, 0x01),
    (0x3501, 0x01),
    (0x3502, 0x2C),
    (0x3503, 0x00),
    (0x3504, 0x14),
    (0x3505, 0x01),
    (0x3506, 0x03),
    (0x3513, 0x01),
    (0x3514, 0x2C),
)
"""[I] Activity decision bypassed, with libcaer's thresholds (neuromorphic-drivers writes
only 0x3500 ← 1)."""
AREA_BLOCKING: tuple[tuple[int, int], ...] = tuple(
    pair for i in range(20) for pair in ((0x3205 + 2 * i, 0x7F), (0x3206 + 2 * i, 0xFF))
)
"""[I] Area blocking 0x7FFF in all 20 slots (nothing blocked), as libcaer writes it."""
TIMESTAMP_RESET_AT_START = True
"""[I] Reset the sensor's timestamp (0x3238 ← 1, ← 0) before streaming, as libcaer does."""
MULTIPLEXER_START_WAIT = 0.05
"""[I] Seconds to wait after the multiplexer starts: libcaer's 50 ms (neuromorphic-drivers
waits 10 ms)."""
DETECT_PULSES = True
"""[I] The external input detects pulses (10 µs, active high) as libcaer configures it;
neuromorphic-drivers leaves pulse detection unconfigured."""
PULSE_LENGTH_US = 10
GENERATOR_RUN = False
"""[I] The external-input generator stays off (libcaer); neuromorphic-drivers runs it."""
STOP_WAIT = 0.1
"""Seconds between stopping everything and clearing the endpoint halt."""


@dataclass(frozen=True)
class DvxplorerBiases:
    """The sensor's bias settings.

    ``on`` and ``off`` take 0..17: 0..8 is that level in one current range, 9..17 level
    ``value − 9`` in the other (a range bit of register 0x0B for ON, 0x12 for OFF). ``amp``
    0..8, ``sf`` 0..3 (two range bits), ``log_d`` 0..2; ``nrst``, ``log`` and ``log_a`` are
    range bits. The defaults are libcaer's "default" sensitivity; :data:`PRESETS` holds its
    other four.
    """

    amp: int = 4
    on: int = 9
    off: int = 17
    sf: int = 3
    nrst: bool = False
    log: bool = False
    log_a: bool = True
    log_d: int = 1

    def __post_init__(self) -> None:
        for name, high in (("amp", 8), ("on", 17), ("off", 17), ("sf", 3), ("log_d", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise ConfigurationError(
                    f"DVXplorer bias {name} must be an integer in [0, {high}], not {value!r}"
                )
        for name in ("nrst", "log", "log_a"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"DVXplorer bias {name} must be a bool")

    def registers(self) -> list[tuple[int, int]]:
        """(sensor register, byte) pairs in the order they are written.

        Unlike neuromorphic-drivers, ``amp`` is written as is (its ``max(amp, 8)`` wrote 8
        whatever the setting) and ``on``/``off`` above 8 become level ``value − 9`` in the
        high range (its ``max(value − 9, 8)`` wrote 8 for all of them).
        """
        range_select = (
            (1 if self.nrst else 0)
            + (2 if self.on > 8 else 0)
            + (4 if self.sf > 1 else 0)
            + (8 if self.log else 0)
        )
        log_select = (self.log_d & 3) * 4 + (0x10 if self.log_a else 0)
        level_select = (
            0x6D + (2 if self.off < 9 else 0) + (0x10 if self.sf == 1 or self.sf > 2 else 0)
        )
        return [
            (BIAS_CURRENT_RANGE_SELECT, range_select),
            (BIAS_CURRENT_LEVEL_SELECT_LOG, log_select),
            (BIAS_CURRENT_LEVEL_SELECT, level_select),
            (BIAS_AMP, min(self.amp, 8)),
            (BIAS_ON, self.on if self.on < 9 else self.on - 9),
            (BIAS_OFF, self.off if self.off < 9 else self.off - 9),
        ]


PRESETS: dict[str, DvxplorerBiases] = {
    "very_low": DvxplorerBiases(on=15, off=11),
    "low": DvxplorerBiases(on=12, off=14),
    "default": DvxplorerBiases(),
    "high": DvxplorerBiases(on=5, off=3),
    "very_high": DvxplorerBiases(on=2, off=6),
}
"""libcaer's five sensitivity presets as bias settings (same registers, byte for byte)."""


@dataclass(frozen=True)
class DvxplorerConfiguration:
    """Everything the DVXplorer driver sets. Biases apply at open only."""

    biases: DvxplorerBiases = field(default_factory=DvxplorerBiases)

    def __post_init__(self) -> None:
        if not isinstance(self.biases, DvxplorerBiases):
            raise ConfigurationError("biases must be a DvxplorerBiases")


def _sensor(address: int, value: int) -> Write:
    return (DEVICE, address, value)


STOP_SEQUENCE: list[Step] = [
    (*ini.DVS_RUN, 0),
    (*DEVICE_CONTROL_MODE, SENSOR_MODE_OFF),
    (*ini.IMU_ACCELEROMETER_RUN, 0),
    (*ini.IMU_GYROSCOPE_RUN, 0),
    (*ini.IMU_TEMPERATURE_RUN, 0),
    (*ini.EXTERNAL_INPUT_DETECTOR_RUN, 0),
    (*ini.EXTERNAL_INPUT_GENERATOR_RUN, 0),
    (*ini.MUX_RUN, 0),
    (*ini.MUX_TIMESTAMP_RUN, 0),
    (*ini.USB_RUN, 0),
    (*ini.MUX_CHIP_RUN, 0),
]
"""Every run off, the sensor last (held in reset). Also the close sequence."""


def bring_up_sequence(biases: DvxplorerBiases) -> list[Step]:
    """The sensor's bring-up: biases, clocks, timing, cropper (full frame), digital restart."""
    steps: list[Step] = [(*ini.MUX_CHIP_RUN, 1), Sleep(0.01)]
    steps += [
        _sensor(BIAS_OTP_TRIM, 0x24),
        _sensor(BIAS_PINS_DBGP, BIAS_PINS_DEBUG[0]),
        _sensor(BIAS_PINS_DBGN, BIAS_PINS_DEBUG[1]),
        _sensor(BIAS_PINS_BUFP, 0x03),
        _sensor(BIAS_PINS_BUFN, 0x7F),
        _sensor(BIAS_PINS_DOB, 0x00),
    ]
    steps += [_sensor(address, value) for address, value in biases.registers()]
    steps += [
        _sensor(0x3011, 0xA0),  # system clock divider
        _sensor(0x3019, 0x00),  # parallel-out control
        _sensor(0x301E, 0x01),  # parallel-out enable
        _sensor(0x3067, 0x80),  # packet format
        _sensor(0x3255, 0x0C),  # digital mode control
        _sensor(0x3266, 0x08),  # boot sequence
        _sensor(0x3235, 0x03),  # timestamp reference unit 999 (1 ms), high byte
        _sensor(0x3236, 0xE7),  # low byte
        _sensor(0x3234, 0x31),  # timestamp sub-unit 50 − 1 (50 MHz sensor clock)
        _sensor(0x323D, 0x32),  # DTAG reference
        _sensor(0x3243, 0x32),  # GH count fine
        _sensor(0x3247, 0x32),  # GRS count fine
        _sensor(0x3259, 0x32),  # GRS end fine
        _sensor(0x3244, 0x00),  # GRS count = 0 (24 bits)
        _sensor(0x3245, 0x00),
        _sensor(0x3246, 0x00),
        _sensor(0x3256, 0x00),  # GRS end = 1 (24 bits)
        _sensor(0x3257, 0x00),
        _sensor(0x3258, 0x01),
        _sensor(0x323C, 0x04),  # first SELX start
        _sensor(0x324C, 0x06),  # SELX width
        _sensor(0x324E, 0x04),  # AY start
        _sensor(0x324F, 0x06),  # AY end
        _sensor(0x3253, 0x08),  # R start
        _sensor(0x3254, 0x0A),  # R end
    ]
    steps += [_sensor(address, value) for address, value in SELX_AND_EVENT_LIMITS]
    steps += [_sensor(0x324B, 0x04)]  # next GH count
    steps += [_sensor(address, value) for address, value in ACTIVITY_DECISION]
    steps += [
        _sensor(0x3600, 0x01),  # spatial histogram off
        _sensor(0x3260, 0x00),  # external trigger mode: timestamp reset
        _sensor(0x3248, 0x00),  # no global reset during readout
        _sensor(0x3200, DIGITAL_ENABLE),
        _sensor(0x3202, 0x00),  # dual binning off
        _sensor(0x3255, 0x0D),  # digital mode control + global hold
        _sensor(0x3204, 0x00),  # no subsampling
    ]
    steps += [_sensor(address, value) for address, value in AREA_BLOCKING]
    steps += [
        _sensor(0x3201, 0x00),  # DTAG control: stop
        _sensor(0x325C, 0x00),  # fixed read time off
        _sensor(0x325D, 0xAF),  # read time interval 45000 = 50 × 900
        _sensor(0x325E, 0xC8),
        _sensor(0x3240, 0x00),  # GH count, thousands
        _sensor(0x3241, (EVENT_DETECTION_TIME >> 8) & 0xFF),
        _sensor(0x3242, EVENT_DETECTION_TIME & 0xFF),
        _sensor(0x3201, 0x01),  # DTAG control: start
        _sensor(0x3300, 0x01),  # cropper bypassed while it is programmed
        _sensor(0x3305, 0x00),  # X start 0
        _sensor(0x3306, 0x00),
        _sensor(0x3307, (WIDTH - 1) >> 8),  # X end 639
        _sensor(0x3308, (WIDTH - 1) & 0xFF),
        _sensor(0x3301, 0x00),  # Y start group
        _sensor(0x3302, 0xFF),  # Y start mask
        _sensor(0x3303, (HEIGHT - 1) // 8),  # Y end group 59
        _sensor(0x3304, 0xFF),  # Y end mask
        _sensor(0x3300, 0x00),  # cropper active, full frame
        _sensor(0x3201, 0x02),  # DTAG control: restart
    ]
    return steps


def start_sequence(clocks: ini.Clocks) -> list[Step]:
    """FPGA configuration (stall policy, IMU, external input, USB) and the start."""
    steps: list[Step] = [
        (*ini.MUX_DROP_EXTERNAL_INPUT_ON_STALL, 1),
        (*ini.MUX_DROP_DVS_ON_STALL, 0),
        (*IMU_ACCELEROMETER_DATA_RATE, 6),  # 800 Hz
        (*IMU_ACCELEROMETER_FILTER, 2),  # normal
        (*IMU_ACCELEROMETER_RANGE, 1),  # ±4 g
        (*IMU_GYROSCOPE_DATA_RATE, 5),  # 800 Hz
        (*IMU_GYROSCOPE_FILTER, 2),  # normal
        (*IMU_GYROSCOPE_RANGE, 2),  # ±500 °/s
        (*ini.EXTERNAL_INPUT_DETECT_RISING, 0),
        (*ini.EXTERNAL_INPUT_DETECT_FALLING, 0),
    ]
    if DETECT_PULSES:
        steps += [
            (*ini.EXTERNAL_INPUT_DETECT_PULSES, 1),
            (*ini.EXTERNAL_INPUT_PULSE_POLARITY, 1),
            (*ini.EXTERNAL_INPUT_PULSE_LENGTH, clocks.logic_cycles(PULSE_LENGTH_US)),
        ]
    steps += [
        (*ini.EXTERNAL_INPUT_GENERATOR_LENGTH, clocks.logic_cycles(5)),
        (*ini.EXTERNAL_INPUT_GENERATOR_INTERVAL, clocks.logic_cycles(5)),
        (*ini.EXTERNAL_INPUT_GENERATOR_INJECT_RISING, 0),
        (*ini.EXTERNAL_INPUT_GENERATOR_INJECT_FALLING, 0),
        (*ini.USB_EARLY_PACKET_DELAY, clocks.usb_cycles(1000)),
        (*ini.USB_RUN, 1),
        (*ini.MUX_TIMESTAMP_RUN, 1),
        (*ini.MUX_RUN, 1),
        Sleep(MULTIPLEXER_START_WAIT),
        (*ini.DVS_RUN, 1),
    ]
    if TIMESTAMP_RESET_AT_START:
        steps += [_sensor(0x3238, 0x01), _sensor(0x3238, 0x00)]
    steps += [
        (*DEVICE_CONTROL_MODE, SENSOR_MODE_STREAM),
        (*ini.IMU_ACCELEROMETER_RUN, 1),
        (*ini.IMU_GYROSCOPE_RUN, 1),
        (*ini.IMU_TEMPERATURE_RUN, 1),
        (*ini.EXTERNAL_INPUT_DETECTOR_RUN, 1),
    ]
    if GENERATOR_RUN:
        steps.append((*ini.EXTERNAL_INPUT_GENERATOR_RUN, 1))
    return steps


class DvxplorerDriver(CameraDriver):
    """The iniVation DVXplorer: polarity events, external-input triggers and IMU samples."""

    name: ClassVar[str] = "inivation_dvxplorer"
    model: ClassVar[str] = "iniVation DVXplorer"
    ids: ClassVar[tuple[tuple[int, int], ...]] = ((ini.VENDOR_ID, PRODUCT_ID),)
    width: ClassVar[int] = WIDTH
    height: ClassVar[int] = HEIGHT
    data_endpoint: ClassVar[int] = ini.DATA_ENDPOINT
    raw_format: ClassVar[str | None] = None
    configuration_type: ClassVar[type] = DvxplorerConfiguration

    def __init__(self, handle: UsbHandle, serial: str) -> None:
        super().__init__(handle, serial)
        self.clocks: ini.Clocks | None = None
        self.dvs_orientation = 0
        self.imu_orientation = 0
        self.imu_type = 0

    @classmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        return ini.read_serial(handle)

    def open(self, configuration: Any) -> None:
        configuration = self.checked_configuration(configuration)
        with self.lock:
            handle = self.handle
            device_type = handle.info.bcd_device >> 8
            if device_type == MIPI_DEVICE_TYPE:
                raise DeviceProtocolError(
                    "this is the MIPI (CX3) DVXplorer variant, which aerflow does not support",
                    serial=self.serial,
                )
            ini.check_versions(handle, self.model, MINIMUM_FIRMWARE, MINIMUM_LOGIC_PATCH)
            columns = ini.spi_read(handle, *ini.DVS_SIZE_COLUMNS)
            rows = ini.spi_read(handle, *ini.DVS_SIZE_ROWS)
            self.imu_type = ini.spi_read(handle, *ini.IMU_TYPE)
            log.debug("%s: DVS %d×%d, IMU type %d", self.serial, columns, rows, self.imu_type)
            if (columns, rows) != (WIDTH, HEIGHT):
                raise DeviceProtocolError(
                    f"this DVXplorer reports a {columns}×{rows} sensor; aerflow supports the "
                    f"{WIDTH}×{HEIGHT} DVXplorer only",
                    serial=self.serial,
                )
            self.dvs_orientation = ini.spi_read(handle, *ini.DVS_ORIENTATION)
            self.imu_orientation = ini.spi_read(handle, *ini.IMU_ORIENTATION)
            self.clocks = ini.read_clocks(handle, adc=False)
            ini.check_clocks(self.clocks, self.model)
            ini.play(handle, [*STOP_SEQUENCE, Sleep(STOP_WAIT)])
            handle.clear_halt(self.data_endpoint)
            ini.play(handle, bring_up_sequence(configuration.biases))
            ini.play(handle, start_sequence(self.clocks))

    def update_configuration(self, previous: Any, configuration: Any) -> None:
        previous = self.checked_configuration(previous)
        configuration = self.checked_configuration(configuration)
        if previous.biases != configuration.biases:
            changed = [
                f.name
                for f in dataclasses.fields(DvxplorerBiases)
                if getattr(previous.biases, f.name) != getattr(configuration.biases, f.name)
            ]
            raise ConfigurationError(
                f"DVXplorer biases apply at open only (changed: {', '.join(changed)}); "
                "close the camera and open it again with the new configuration"
            )

    def close(self) -> None:
        with self.lock:
            ini.stop(self.handle, STOP_SEQUENCE)

    def decoder(self) -> StreamDecoder:
        return inivation_stream.DvxplorerStreamDecoder(self.imu_orientation)
