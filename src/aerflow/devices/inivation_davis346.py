"""iniVation DAVIS346 (152A:841A, 346×260): open, live configuration and close.

The open sequence follows neuromorphic-drivers' order (checks, stop everything, 100 ms, clear
the data endpoint's halt, chip biases, FPGA filters and APS window, chip configuration,
start). Where it and libcaer (iniVation's own library) disagree, the choice our protocol
notes recommend is taken; each such value is a named constant below marked "[I]" (an
interpretation, not checked on hardware).

Every setting of :class:`Davis346Configuration` changes live: biases, region of interest
(DVS filter and APS window), pixel filter, activity filter, skip filter, polarity filter,
exposure and frame interval. :meth:`Davis346Driver.update_configuration` writes only the
groups that changed.
"""

from __future__ import annotations

import enum
import functools
import logging
import weakref
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..errors import ConfigurationError
from . import _inivation as ini
from ._inivation import APS, DEVICE, DVS, Sleep, Step, Write
from .driver import CameraDriver, StreamDecoder
from .usb import UsbHandle

__all__ = [
    "COARSE_CURRENTS_PA",
    "ActivityFilter",
    "Davis346Biases",
    "Davis346Configuration",
    "Davis346Driver",
    "PolarityFilter",
    "RegionOfInterest",
    "bias_register",
    "coarse_fine",
]

log = logging.getLogger(__name__)

PRODUCT_ID = 0x841A
WIDTH, HEIGHT = ini.DAVIS346_WIDTH, ini.DAVIS346_HEIGHT
MINIMUM_FIRMWARE = 0x06
"""Lowest firmware version (low byte of bcdDevice) accepted."""
MINIMUM_LOGIC_PATCH = 1
"""[I] Logic patch 1 or later (libcaer's minimum; neuromorphic-drivers requires exactly 1)."""

# DVS filters (DAVIS only).
DVS_HAS_PIXEL_FILTER = (DVS, 10)
DVS_PIXEL_FILTER_ROW = 11
"""Row of pixel-filter slot i is parameter 11 + 2i, its column 12 + 2i (i = 0..7)."""
PIXEL_FILTER_SLOTS = 8
DVS_HAS_BACKGROUND_ACTIVITY_FILTER = (DVS, 30)
DVS_BACKGROUND_ACTIVITY = (DVS, 31)
DVS_BACKGROUND_ACTIVITY_TIME = (DVS, 32)
DVS_REFRACTORY_PERIOD = (DVS, 33)
DVS_REFRACTORY_PERIOD_TIME = (DVS, 34)
DVS_HAS_ROI_FILTER = (DVS, 40)
DVS_ROI_START_COLUMN = (DVS, 41)
DVS_ROI_START_ROW = (DVS, 42)
DVS_ROI_END_COLUMN = (DVS, 43)
DVS_ROI_END_ROW = (DVS, 44)
DVS_HAS_SKIP_FILTER = (DVS, 50)
DVS_SKIP_EVENTS = (DVS, 51)
DVS_SKIP_EVENTS_EVERY = (DVS, 52)
DVS_HAS_POLARITY_FILTER = (DVS, 60)
DVS_POLARITY_FLATTEN = (DVS, 61)
DVS_POLARITY_SUPPRESS = (DVS, 62)
DVS_POLARITY_SUPPRESS_TYPE = (DVS, 63)
FILTER_TIME_UNIT_US = 250
"""The activity and refractory filters count time in 250 µs units."""

# APS.
APS_ORIENTATION = (APS, 2)
APS_RUN = (APS, 4)
APS_WAIT_ON_STALL = (APS, 5)
APS_HAS_GLOBAL_SHUTTER = (APS, 6)
APS_GLOBAL_SHUTTER = (APS, 7)
APS_START_COLUMN = (APS, 8)
APS_START_ROW = (APS, 9)
APS_END_COLUMN = (APS, 10)
APS_END_ROW = (APS, 11)
APS_EXPOSURE = (APS, 12)
APS_FRAME_INTERVAL = (APS, 13)

# IMU (InvenSense).
IMU_SAMPLE_RATE_DIVIDER = (ini.IMU, 5)
IMU_ACCELEROMETER_FILTER = (ini.IMU, 6)
IMU_ACCELEROMETER_FULL_SCALE = (ini.IMU, 7)
IMU_GYROSCOPE_FILTER = (ini.IMU, 9)
IMU_GYROSCOPE_FULL_SCALE = (ini.IMU, 10)
IMU_TYPE_6050_6150, IMU_TYPE_9250 = 1, 2

# Chip configuration (module 5).
CHIP_VDACS: tuple[Write, ...] = (
    (DEVICE, 0, 27 | 6 << 6),  # ApsOverflowLevel
    (DEVICE, 1, 21 | 6 << 6),  # ApsCas
    (DEVICE, 2, 32 | 7 << 6),  # AdcRefHigh
    (DEVICE, 3, 1 | 7 << 6),  # AdcRefLow
    (DEVICE, 4, 21 | 7 << 6),  # AdcTestVoltage
)
"""The voltage DACs: voltage (bits 0..5) + current × 0x40, fixed values."""
SHIFTED_SOURCE = 1 << 4 | 33 << 10
"""SSP and SSN: shifted-source mode, split gate, ref 1, reg 33."""
CHIP_SSP, CHIP_SSN = 35, 36
CHIP_GLOBAL_SHUTTER = (DEVICE, 142)
CHIP_CONFIGURATION: tuple[Write, ...] = (
    (DEVICE, 128, 0),  # DigitalMux0..3
    (DEVICE, 129, 0),
    (DEVICE, 130, 0),
    (DEVICE, 131, 0),
    (DEVICE, 132, 0),  # AnalogMux0..2
    (DEVICE, 133, 0),
    (DEVICE, 134, 0),
    (DEVICE, 135, 0),  # BiasMux0
    (DEVICE, 136, 1),  # ResetCalibNeuron
    (DEVICE, 137, 0),  # TypeNCalibNeuron
    (DEVICE, 138, 1),  # ResetTestPixel
    (DEVICE, 140, 0),  # AERnArow
    (DEVICE, 141, 0),  # UseAOut
    (DEVICE, 143, 1),  # SelectGrayCounter
    (DEVICE, 144, 0),  # TestADC
)

STOP_WAIT = 0.1
"""Seconds between stopping everything and clearing the endpoint halt (libcaer: 10 ms)."""
DETECT_PULSES = True
"""[I] Pulse detection on the external input (10 µs, active high) and the detector running,
as libcaer configures them; neuromorphic-drivers leaves both off, so no trigger arrives."""
PULSE_LENGTH_US = 10
GYROSCOPE_FILTER_ALWAYS = True
"""[I] Write the gyroscope low-pass filter for every IMU type (libcaer); neuromorphic-drivers
writes it for the InvenSense 9250 only."""
APS_WINDOW_INDEPENDENT_OF_DVS_ROI = True
"""[I] Program the APS window whether or not the DVS has an ROI filter (libcaer);
neuromorphic-drivers programs it only with the DVS ROI filter."""
APS_WINDOW_RESTORES_RUN = True
"""[I] The APS window multi-write ends with APS run ← 1 when the APS was running (libcaer);
neuromorphic-drivers' ends with 0, leaving the APS stopped after a live ROI change."""


# --------------------------------------------------------------------------------------------
# Coarse/fine biases

COARSE_CURRENTS_PA = (11, 94, 756, 6054, 48437, 387500, 3_100_000, 24_800_000)
"""Current (pA) of each coarse setting at fine 255."""
BIAS_INDEX_MAX = 2040

FLAGS_N_TYPE = 0b1111
"""Enabled, N-type, normal type, normal current level."""
FLAGS_P_TYPE = 0b1101
"""Enabled, P-type, normal type, normal current level."""
FLAGS_N_TYPE_DISABLED = 0b1110
"""N-type, disabled (``padfollbn``)."""


@functools.cache
def _coarse_fine_table() -> tuple[tuple[int, int], ...]:
    pairs = sorted(
        ((coarse, fine) for coarse in range(8) for fine in range(1, 256)),
        key=lambda pair: (COARSE_CURRENTS_PA[pair[0]] * pair[1], pair[0]),
    )
    return ((0, 0), *pairs)


def coarse_fine(index: int) -> tuple[int, int]:
    """The (coarse, fine) pair of a bias value 0..2040, ordered by current (monotonic):
    (0, 0) first, then every pair with fine ≥ 1 by coarse current × fine, the smaller coarse
    first on ties. Values above 2040 are clamped."""
    table = _coarse_fine_table()
    return table[min(max(int(index), 0), BIAS_INDEX_MAX)]


def bias_register(index: int, flags: int) -> int:
    """The register value of a coarse/fine bias: flags | fine << 4 | coarse << 12."""
    coarse, fine = coarse_fine(index)
    return flags | fine << 4 | coarse << 12


_BIASES: tuple[tuple[str, int, int], ...] = (
    ("localbufbn", 8, FLAGS_N_TYPE),
    ("padfollbn", 9, FLAGS_N_TYPE_DISABLED),
    ("diffbn", 10, FLAGS_N_TYPE),
    ("onbn", 11, FLAGS_N_TYPE),
    ("offbn", 12, FLAGS_N_TYPE),
    ("pixinvbn", 13, FLAGS_N_TYPE),
    ("prbp", 14, FLAGS_P_TYPE),
    ("prsfbp", 15, FLAGS_P_TYPE),
    ("refrbp", 16, FLAGS_P_TYPE),
    ("readoutbufbp", 17, FLAGS_P_TYPE),
    ("apsrosfbn", 18, FLAGS_N_TYPE),
    ("adccompbp", 19, FLAGS_P_TYPE),
    ("colsellowbn", 20, FLAGS_N_TYPE),
    ("dacbufbp", 21, FLAGS_P_TYPE),
    ("lcoltimeoutbn", 22, FLAGS_N_TYPE),
    ("aepdbn", 23, FLAGS_N_TYPE),
    ("aepuxbp", 24, FLAGS_P_TYPE),
    ("aepuybp", 25, FLAGS_P_TYPE),
    ("ifrefrbn", 26, FLAGS_N_TYPE),
    ("ifthrbn", 27, FLAGS_N_TYPE),
    ("biasbuffer", 34, FLAGS_N_TYPE),
)
"""(field, chip parameter, flags) of every coarse/fine bias, in the order they are written."""


@dataclass(frozen=True)
class Davis346Biases:
    """Coarse/fine biases as values 0..2040 (a monotonic current scale, see
    :func:`coarse_fine`). The defaults are libcaer's DAVIS346 defaults."""

    localbufbn: int = 1461
    padfollbn: int = 2000
    diffbn: int = 1063
    onbn: int = 1564
    offbn: int = 583
    pixinvbn: int = 1691
    prbp: int = 575
    prsfbp: int = 153
    refrbp: int = 993
    readoutbufbp: int = 1457
    apsrosfbn: int = 1776
    adccompbp: int = 1202
    colsellowbn: int = 1
    dacbufbp: int = 1597
    lcoltimeoutbn: int = 1330
    aepdbn: int = 1632
    aepuxbp: int = 1110
    aepuybp: int = 1937
    ifrefrbn: int = 1564
    ifthrbn: int = 1564
    biasbuffer: int = 1563

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"DAVIS346 bias {f.name} must be an int, not {value!r}")
            if not 0 <= value <= BIAS_INDEX_MAX:
                raise ConfigurationError(
                    f"DAVIS346 bias {f.name} must lie in [0, {BIAS_INDEX_MAX}], not {value}"
                )

    def registers(self) -> list[Write]:
        """(module, parameter, value) of every bias, in writing order."""
        return [
            (DEVICE, parameter, bias_register(getattr(self, name), flags))
            for name, parameter, flags in _BIASES
        ]


@dataclass(frozen=True)
class RegionOfInterest:
    """The pixels kept (DVS ROI filter) and read (APS window): a rectangle in sensor
    coordinates."""

    left: int = 0
    top: int = 0
    width: int = WIDTH
    height: int = HEIGHT

    def __post_init__(self) -> None:
        for name in ("left", "top", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"region_of_interest.{name} must be an int")
        if self.left < 0 or self.top < 0 or self.width < 1 or self.height < 1:
            raise ConfigurationError("region_of_interest needs left, top ≥ 0 and width, height ≥ 1")
        if self.left + self.width > WIDTH or self.top + self.height > HEIGHT:
            raise ConfigurationError(
                f"region_of_interest {self.width}×{self.height} at ({self.left}, {self.top}) "
                f"does not fit the {WIDTH}×{HEIGHT} sensor"
            )

    @property
    def right(self) -> int:
        """The last column (inclusive)."""
        return self.left + self.width - 1

    @property
    def bottom(self) -> int:
        """The last row (inclusive)."""
        return self.top + self.height - 1


def _filter_time(name: str, microseconds: int) -> int:
    if isinstance(microseconds, bool) or not isinstance(microseconds, int):
        raise ConfigurationError(f"activity_filter.{name} must be an int (µs)")
    if microseconds < 0 or microseconds % FILTER_TIME_UNIT_US or microseconds > 0xFFFFFFFF * 250:
        raise ConfigurationError(
            f"activity_filter.{name} must be a non-negative multiple of {FILTER_TIME_UNIT_US} µs, "
            f"not {microseconds}"
        )
    return microseconds // FILTER_TIME_UNIT_US


@dataclass(frozen=True)
class ActivityFilter:
    """The FPGA's background-activity filter (drops events with no recent neighbour within
    ``mask_isolated_time_us``) and refractory filter. Times are multiples of 250 µs."""

    mask_isolated: bool = True
    mask_isolated_time_us: int = 2000
    refractory_period: bool = False
    refractory_period_time_us: int = 250

    def __post_init__(self) -> None:
        for name in ("mask_isolated", "refractory_period"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"activity_filter.{name} must be a bool")
        _filter_time("mask_isolated_time_us", self.mask_isolated_time_us)
        _filter_time("refractory_period_time_us", self.refractory_period_time_us)

    def registers(self) -> list[Write]:
        return [
            (*DVS_BACKGROUND_ACTIVITY, int(self.mask_isolated)),
            (*DVS_BACKGROUND_ACTIVITY_TIME, self.mask_isolated_time_us // FILTER_TIME_UNIT_US),
            (*DVS_REFRACTORY_PERIOD, int(self.refractory_period)),
            (*DVS_REFRACTORY_PERIOD_TIME, self.refractory_period_time_us // FILTER_TIME_UNIT_US),
        ]


class PolarityFilter(enum.Enum):
    """The FPGA's polarity filter."""

    DISABLED = "disabled"
    FLATTEN = "flatten"
    """Every event becomes OFF."""
    MASK_ON = "mask_on"
    """ON events are dropped (the rest flattened)."""
    MASK_OFF = "mask_off"
    """OFF events are dropped."""
    MASK_OFF_FLATTEN = "mask_off_flatten"
    """OFF events are dropped and the ON events flattened."""

    def registers(self) -> list[Write]:
        flatten = self in (PolarityFilter.FLATTEN, PolarityFilter.MASK_OFF_FLATTEN)
        suppress = self in (
            PolarityFilter.MASK_ON,
            PolarityFilter.MASK_OFF,
            PolarityFilter.MASK_OFF_FLATTEN,
        )
        return [
            (*DVS_POLARITY_FLATTEN, int(flatten)),
            (*DVS_POLARITY_SUPPRESS, int(suppress)),
            (*DVS_POLARITY_SUPPRESS_TYPE, int(self is PolarityFilter.MASK_ON)),
        ]


@dataclass(frozen=True)
class Davis346Configuration:
    """Everything the DAVIS346 driver sets; every field changes live.

    ``pixel_filter`` lists up to 8 (x, y) pixels whose events the FPGA drops (hot pixels).
    ``skip_events_every`` > 0 makes the FPGA drop events, keeping one in that many (0: off).
    ``exposure_us`` and ``frame_interval_us`` time the APS frames.
    """

    biases: Davis346Biases = field(default_factory=Davis346Biases)
    region_of_interest: RegionOfInterest = field(default_factory=RegionOfInterest)
    pixel_filter: tuple[tuple[int, int], ...] = ()
    activity_filter: ActivityFilter = field(default_factory=ActivityFilter)
    skip_events_every: int = 0
    polarity_filter: PolarityFilter = PolarityFilter.DISABLED
    exposure_us: int = 4000
    frame_interval_us: int = 40000

    def __post_init__(self) -> None:
        for name, kind in (
            ("biases", Davis346Biases),
            ("region_of_interest", RegionOfInterest),
            ("activity_filter", ActivityFilter),
            ("polarity_filter", PolarityFilter),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ConfigurationError(f"{name} must be a {kind.__name__}")
        try:
            pixels = tuple(tuple(pixel) for pixel in self.pixel_filter)
        except TypeError:
            raise ConfigurationError("pixel_filter must be a sequence of (x, y) pairs") from None
        if len(pixels) > PIXEL_FILTER_SLOTS:
            raise ConfigurationError(
                f"pixel_filter takes at most {PIXEL_FILTER_SLOTS} pixels, not {len(pixels)}"
            )
        for pixel in pixels:
            if (
                len(pixel) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in pixel)
                or not (0 <= pixel[0] < WIDTH and 0 <= pixel[1] < HEIGHT)
            ):
                raise ConfigurationError(
                    f"pixel_filter entries are (x, y) inside {WIDTH}×{HEIGHT}, not {pixel!r}"
                )
        object.__setattr__(self, "pixel_filter", pixels)
        for name, low in (("skip_events_every", 0), ("exposure_us", 1), ("frame_interval_us", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value:
                raise ConfigurationError(f"{name} must be an integer ≥ {low}, not {value!r}")
            if value > 0xFFFFFFFF:
                raise ConfigurationError(f"{name} must fit 32 bits, not {value}")


# --------------------------------------------------------------------------------------------
# Sequences

STOP_SEQUENCE: list[Step] = [
    (*ini.DVS_RUN, 0),
    (*APS_RUN, 0),
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
"""Every run off before configuring (the chip last)."""

CLOSE_SEQUENCE: list[Step] = [
    (*ini.DVS_RUN, 0),
    (*APS_RUN, 0),
    (*ini.IMU_ACCELEROMETER_RUN, 0),
    (*ini.IMU_GYROSCOPE_RUN, 0),
    (*ini.IMU_TEMPERATURE_RUN, 0),
    (*ini.EXTERNAL_INPUT_DETECTOR_RUN, 0),
    (*ini.MUX_RUN, 0),
    (*ini.MUX_TIMESTAMP_RUN, 0),
    (*ini.USB_RUN, 0),
    (*ini.MUX_CHIP_RUN, 0),
]


@dataclass(frozen=True)
class Features:
    """What this camera's FPGA has (read at open)."""

    pixel_filter: bool = True
    activity_filter: bool = True
    roi_filter: bool = True
    skip_filter: bool = True
    polarity_filter: bool = True
    global_shutter: bool = True


class Davis346Driver(CameraDriver):
    """The iniVation DAVIS346: polarity events, APS frames, IMU samples and triggers."""

    name: ClassVar[str] = "inivation_davis346"
    model: ClassVar[str] = "iniVation DAVIS346"
    ids: ClassVar[tuple[tuple[int, int], ...]] = ((ini.VENDOR_ID, PRODUCT_ID),)
    width: ClassVar[int] = WIDTH
    height: ClassVar[int] = HEIGHT
    data_endpoint: ClassVar[int] = ini.DATA_ENDPOINT
    raw_format: ClassVar[str | None] = None
    configuration_type: ClassVar[type] = Davis346Configuration

    def __init__(self, handle: UsbHandle, serial: str) -> None:
        super().__init__(handle, serial)
        self.clocks: ini.Clocks | None = None
        self.features = Features()
        self.dvs_orientation = 0
        self.aps_orientation = 0
        self.imu_orientation = 0
        self.imu_type = 0
        self._aps_running = False
        self._window = (0, 0, WIDTH, HEIGHT)
        self._decoders: weakref.WeakSet[ini.Davis346StreamDecoder] = weakref.WeakSet()

    @classmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        return ini.read_serial(handle)

    # ---------------------------------------------------------------------------- open

    def open(self, configuration: Any) -> None:
        configuration = self.checked_configuration(configuration)
        with self.lock:
            handle = self.handle
            ini.check_versions(handle, self.model, MINIMUM_FIRMWARE, MINIMUM_LOGIC_PATCH)
            self.clocks = ini.read_clocks(handle, adc=True)
            ini.check_clocks(self.clocks, self.model)
            read = functools.partial(ini.spi_read, handle)
            self.features = Features(
                pixel_filter=read(*DVS_HAS_PIXEL_FILTER) == 1,
                activity_filter=read(*DVS_HAS_BACKGROUND_ACTIVITY_FILTER) == 1,
                roi_filter=read(*DVS_HAS_ROI_FILTER) == 1,
                skip_filter=read(*DVS_HAS_SKIP_FILTER) == 1,
                polarity_filter=read(*DVS_HAS_POLARITY_FILTER) == 1,
                global_shutter=read(*APS_HAS_GLOBAL_SHUTTER) == 1,
            )
            self.dvs_orientation = read(*ini.DVS_ORIENTATION)
            self.aps_orientation = read(*APS_ORIENTATION)
            self.imu_orientation = read(*ini.IMU_ORIENTATION)
            self.imu_type = read(*ini.IMU_TYPE)
            self._check_features(Davis346Configuration(), configuration)
            self._check_registers(configuration)
            ini.play(handle, [*STOP_SEQUENCE, Sleep(STOP_WAIT)])
            self._aps_running = False
            handle.clear_halt(self.data_endpoint)
            ini.play(handle, list(CHIP_VDACS))
            self._write_changes(None, configuration)
            ini.play(handle, self._chip_and_start_sequence())
            self._aps_running = True

    def _chip_and_start_sequence(self) -> list[Step]:
        assert self.clocks is not None
        clocks = self.clocks
        shutter = int(self.features.global_shutter)
        steps: list[Step] = [
            (DEVICE, CHIP_SSP, SHIFTED_SOURCE),
            (DEVICE, CHIP_SSN, SHIFTED_SOURCE),
            *CHIP_CONFIGURATION,
            Sleep(0.01),
            (*ini.MUX_CHIP_RUN, 1),
            (*ini.USB_EARLY_PACKET_DELAY, clocks.usb_cycles(1000)),
            Sleep(0.2),
            (*ini.USB_RUN, 1),
            (*ini.MUX_DROP_DVS_ON_STALL, 1),
            (*ini.MUX_DROP_EXTERNAL_INPUT_ON_STALL, 1),
            (*ini.MUX_TIMESTAMP_RUN, 1),
            (*ini.MUX_RUN, 1),
            Sleep(0.05),
            (*ini.DVS_WAIT_ON_STALL, 0),
            (*ini.DVS_EXTERNAL_AER_CONTROL, 0),
            (*ini.DVS_RUN, 1),
            (*APS_WAIT_ON_STALL, 1),
            (*APS_GLOBAL_SHUTTER, shutter),
            (*CHIP_GLOBAL_SHUTTER, shutter),
            (*APS_RUN, 1),
            (*IMU_SAMPLE_RATE_DIVIDER, 0),
            (*IMU_ACCELEROMETER_FILTER, 1),
            (*IMU_ACCELEROMETER_FULL_SCALE, 1),  # ±4 g
        ]
        if GYROSCOPE_FILTER_ALWAYS or self.imu_type == IMU_TYPE_9250:
            steps.append((*IMU_GYROSCOPE_FILTER, 1))
        steps += [
            (*IMU_GYROSCOPE_FULL_SCALE, 1),  # ±500 °/s
            (*ini.IMU_ACCELEROMETER_RUN, 1),
            (*ini.IMU_GYROSCOPE_RUN, 1),
            (*ini.IMU_TEMPERATURE_RUN, 1),
            (*ini.EXTERNAL_INPUT_DETECT_RISING, 0),
            (*ini.EXTERNAL_INPUT_DETECT_FALLING, 0),
            (*ini.EXTERNAL_INPUT_GENERATOR_LENGTH, clocks.logic_cycles(5)),
            (*ini.EXTERNAL_INPUT_GENERATOR_INTERVAL, clocks.logic_cycles(5)),
            (*ini.EXTERNAL_INPUT_GENERATOR_INJECT_RISING, 0),
            (*ini.EXTERNAL_INPUT_GENERATOR_INJECT_FALLING, 0),
            (*ini.EXTERNAL_INPUT_DETECT_PULSES, int(DETECT_PULSES)),
            (*ini.EXTERNAL_INPUT_PULSE_POLARITY, 1),
            (*ini.EXTERNAL_INPUT_PULSE_LENGTH, clocks.logic_cycles(PULSE_LENGTH_US)),
            (*ini.EXTERNAL_INPUT_DETECTOR_RUN, int(DETECT_PULSES)),
        ]
        return steps

    # ------------------------------------------------------------------- configuration

    def update_configuration(self, previous: Any, configuration: Any) -> None:
        previous = self.checked_configuration(previous)
        configuration = self.checked_configuration(configuration)
        with self.lock:
            self._check_features(previous, configuration)
            self._check_registers(configuration)
            self._write_changes(previous, configuration)

    def _check_features(
        self, previous: Davis346Configuration, configuration: Davis346Configuration
    ) -> None:
        """A setting the FPGA cannot apply must keep its previous (at open: default) value."""
        missing = [
            (self.features.pixel_filter, "pixel_filter", "pixel filter"),
            (self.features.activity_filter, "activity_filter", "background-activity filter"),
            (self.features.skip_filter, "skip_events_every", "skip filter"),
            (self.features.polarity_filter, "polarity_filter", "polarity filter"),
        ]
        for present, name, what in missing:
            if not present and getattr(previous, name) != getattr(configuration, name):
                raise ConfigurationError(f"this DAVIS346 has no {what}; {name} cannot change")
        if (
            not self.features.roi_filter
            and not APS_WINDOW_INDEPENDENT_OF_DVS_ROI
            and previous.region_of_interest != configuration.region_of_interest
        ):
            raise ConfigurationError("this DAVIS346 has no ROI filter")

    def _check_registers(self, configuration: Davis346Configuration) -> None:
        if self.clocks is None:
            return
        for name in ("exposure_us", "frame_interval_us"):
            cycles = self.clocks.adc_cycles(getattr(configuration, name))
            if cycles > 0xFFFFFFFF:
                raise ConfigurationError(f"{name} is too long for the APS's 32-bit counter")

    def _write_changes(
        self, previous: Davis346Configuration | None, configuration: Davis346Configuration
    ) -> None:
        """Write the groups that differ from ``previous`` (all of them when None)."""
        assert self.clocks is not None
        handle = self.handle

        def changed(name: str) -> bool:
            return previous is None or getattr(previous, name) != getattr(configuration, name)

        new_biases = configuration.biases.registers()
        old_biases = previous.biases.registers() if previous is not None else None
        steps: list[Step] = [
            write
            for i, write in enumerate(new_biases)
            if old_biases is None or old_biases[i] != write
        ]
        if self.features.pixel_filter and changed("pixel_filter"):
            steps += pixel_filter_registers(configuration.pixel_filter)
        if self.features.activity_filter and changed("activity_filter"):
            steps += configuration.activity_filter.registers()
        roi = configuration.region_of_interest
        roi_changed = changed("region_of_interest")
        if self.features.roi_filter and roi_changed:
            steps += [
                (*DVS_ROI_START_COLUMN, roi.left),
                (*DVS_ROI_START_ROW, roi.top),
                (*DVS_ROI_END_COLUMN, roi.right),
                (*DVS_ROI_END_ROW, roi.bottom),
            ]
        if self.features.skip_filter and changed("skip_events_every"):
            every = configuration.skip_events_every
            steps += [(*DVS_SKIP_EVENTS, int(every > 0)), (*DVS_SKIP_EVENTS_EVERY, every)]
        if self.features.polarity_filter and changed("polarity_filter"):
            steps += configuration.polarity_filter.registers()
        ini.play(handle, steps)
        if roi_changed and (APS_WINDOW_INDEPENDENT_OF_DVS_ROI or self.features.roi_filter):
            running = int(self._aps_running and APS_WINDOW_RESTORES_RUN)
            ini.spi_multi_write(
                handle,
                [
                    (*APS_RUN, 0),
                    (*APS_START_COLUMN, roi.left),
                    (*APS_START_ROW, roi.top),
                    (*APS_END_COLUMN, roi.right),
                    (*APS_END_ROW, roi.bottom),
                    (*APS_RUN, running),
                ],
            )
            self._window = (roi.left, roi.top, roi.width, roi.height)
            for decoder in list(self._decoders):
                decoder.aps_window = self._window
        steps = []
        if changed("exposure_us"):
            steps.append((*APS_EXPOSURE, self.clocks.adc_cycles(configuration.exposure_us)))
        if changed("frame_interval_us"):
            steps.append(
                (*APS_FRAME_INTERVAL, self.clocks.adc_cycles(configuration.frame_interval_us))
            )
        ini.play(handle, steps)

    # --------------------------------------------------------------------------- close

    def close(self) -> None:
        with self.lock:
            ini.stop(self.handle, CLOSE_SEQUENCE)
            self._aps_running = False

    def decoder(self) -> StreamDecoder:
        decoder = ini.Davis346StreamDecoder(
            dvs_orientation=self.dvs_orientation,
            aps_orientation=self.aps_orientation,
            imu_orientation=self.imu_orientation,
            imu_type=self.imu_type,
            aps_window=self._window,
        )
        self._decoders.add(decoder)
        return decoder


def pixel_filter_registers(pixels: tuple[tuple[int, int], ...]) -> list[Write]:
    """Row and column of each of the 8 slots; an unused slot points outside the sensor
    (row 260, column 346)."""
    writes: list[Write] = []
    for i in range(PIXEL_FILTER_SLOTS):
        x, y = pixels[i] if i < len(pixels) else (WIDTH, HEIGHT)
        writes.append((DVS, DVS_PIXEL_FILTER_ROW + 2 * i, y))
        writes.append((DVS, DVS_PIXEL_FILTER_ROW + 2 * i + 1, x))
    return writes
