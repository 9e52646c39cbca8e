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

import functools
import logging
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigurationError
from . import _inivation as ini
from . import inivation_stream
from ._davis346_registers import (
    APS_END_COLUMN,
    APS_END_ROW,
    APS_EXPOSURE,
    APS_FRAME_INTERVAL,
    APS_GLOBAL_SHUTTER,
    APS_HAS_GLOBAL_SHUTTER,
    APS_ORIENTATION,
    APS_RUN,
    APS_START_COLUMN,
    APS_START_ROW,
    APS_WAIT_ON_STALL,
    CHIP_CONFIGURATION,
    CHIP_GLOBAL_SHUTTER,
    CHIP_SSN,
    CHIP_SSP,
    CHIP_VDACS,
    DVS_HAS_BACKGROUND_ACTIVITY_FILTER,
    DVS_HAS_PIXEL_FILTER,
    DVS_HAS_POLARITY_FILTER,
    DVS_HAS_ROI_FILTER,
    DVS_HAS_SKIP_FILTER,
    DVS_PIXEL_FILTER_ROW,
    DVS_ROI_END_COLUMN,
    DVS_ROI_END_ROW,
    DVS_ROI_START_COLUMN,
    DVS_ROI_START_ROW,
    DVS_SKIP_EVENTS,
    DVS_SKIP_EVENTS_EVERY,
    HEIGHT,
    IMU_ACCELEROMETER_FILTER,
    IMU_ACCELEROMETER_FULL_SCALE,
    IMU_GYROSCOPE_FILTER,
    IMU_GYROSCOPE_FULL_SCALE,
    IMU_SAMPLE_RATE_DIVIDER,
    IMU_TYPE_9250,
    MINIMUM_FIRMWARE,
    MINIMUM_LOGIC_PATCH,
    PIXEL_FILTER_SLOTS,
    PRODUCT_ID,
    SHIFTED_SOURCE,
    WIDTH,
)
from ._inivation import DEVICE, DVS, Sleep, Step, Write
from .driver import CameraDriver, StreamDecoder
from .inivation_davis346_configuration import (
    COARSE_CURRENTS_PA,
    ActivityFilter,
    Davis346Biases,
    Davis346Configuration,
    PolarityFilter,
    RegionOfInterest,
    bias_register,
    coarse_fine,
)
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
        self._decoders: weakref.WeakSet[inivation_stream.Davis346StreamDecoder] = weakref.WeakSet()

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
        decoder = inivation_stream.Davis346StreamDecoder(
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
