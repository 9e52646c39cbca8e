"""Prophesee EVK4 and its clones (Sony IMX636 / IMX646, 1280 × 720, EVT 3.0 over USB 3).

Covers the Prophesee EVK4, CenturyArks SilkyEvCam HD and HD Lite and the IDS uEye XCP-E: the
same board answering the type request with 0x31 (IMX636) or 0x35 (IMX646). The open, start,
update and close sequences are neuromorphic-drivers' (ND), as listed in ``usb-sequences.md``
§3, with the changes that its §3.13 recommends where ND and OpenEB (OE) disagree; each such
change is a named constant below, marked [I] (inferred, not observed on hardware).

Settings that change while streaming: biases, the x/y masks and their mode, the pixel mask,
``enable_output`` and ``enable_external_trigger``. The clock and the rate limiter are
programmed at open only; changing them live raises ConfigurationError (reopen the camera).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import ConfigurationError, DeviceError, DeviceProtocolError, DeviceTimeoutError
from ..formats.evt3 import Evt3StreamDecoder
from ._evk4_registers import (
    ADC_CONTROL,
    ADC_CONTROL_OFF,
    ADC_CONTROL_START,
    ADC_STATUS,
    ADC_STATUS_DONE,
    ADC_STATUS_VALUE,
    BIAS_ADDRESSES,
    BIASES_WRITTEN_WHOLE,
    DESTROY,
    DIG_PAD2_CTRL,
    DIG_PAD2_SYNC_INPUT,
    DIG_PAD2_SYNC_OUTPUT,
    DIGITAL_MASK,
    ERC_TABLE_CLOSED_READ_MODIFY_WRITE,
    ILLUMINANCE_POLLS,
    INIT,
    IPH_MIRR_CTRL,
    LIFO_CTRL,
    LIFO_STATUS,
    LIFO_STATUS_COUNT,
    LIFO_STATUS_VALID,
    MIPI_ON,
    PRIMARY_PAD_WAIT,
    SENSORS,
    STOP,
    TEMP_CTRL,
    TEMP_CTRL_CLOSE,
    TEMPERATURE_OFFSET,
    TEMPERATURE_POLLS,
    TEMPERATURE_SCALE,
    TIME_BASE_INTERNAL,
    TIME_BASE_PRIMARY,
    TIME_BASE_PRIMARY_ARMED,
    TIME_BASE_SECONDARY,
    TRIGGER_INPUT_OFF,
    TRIGGER_INPUT_ON,
)
from ._prophesee import (
    ANALOG_CONTROL,
    ANALOG_START,
    BIAS_IDAC_MASK,
    DATA_ENDPOINT,
    EDF_RESERVED_7004,
    MANUFACTURER_STRING_INDEX,
    MIPI_CONTROL,
    PRODUCT_STRING_INDEX,
    RO_CTRL,
    RO_CTRL_OUTPUT_DISABLE,
    ROI_CTRL,
    SENSOR_HEIGHT,
    SENSOR_WIDTH,
    SERIAL_REQUEST,
    TIME_BASE_CTRL,
    TYPE_IMX636,
    TYPE_IMX646,
    CommandChannel,
    bias_word,
    changed_words,
    check_languages,
    frame,
    program_erc,
    read_serial,
    read_string,
    read_type_byte,
    roi_ctrl,
    write_row_column_masks,
)
from .driver import CameraDriver
from .prophesee_evk4_configuration import (
    Clock,
    Evk4Biases,
    Evk4Configuration,
    RateLimiter,
    pixel_mask_words,
)
from .usb import UsbHandle

__all__ = [
    "Clock",
    "Evk4Biases",
    "Evk4Configuration",
    "Evk4Driver",
    "RateLimiter",
    "pixel_mask_words",
]

log = logging.getLogger(__name__)

# -- transport --------------------------------------------------------------------------------
COMMAND_TIMEOUT = 1.0
"""Seconds for each command and for its reply (ND)."""
REPLY_LENGTH = 1024
"""Bytes asked for each command's reply (ND, OE)."""
DRAIN_LENGTH = 131072
DRAIN_TIMEOUT = 1.0
DRAIN_MAXIMUM_READS = 8192
"""[I] ND drains EP 0x81 until an empty read or a timeout, with no limit; after this many
full reads (1 GiB) the camera is taken to be streaming still, and the open fails."""

# -- identification ---------------------------------------------------------------------------
TYPE_BYTES: Mapping[int, str] = {TYPE_IMX636: "IMX636", TYPE_IMX646: "IMX646"}
MANUFACTURERS = ("Prophesee", "CenturyArks", "IDS Imaging Development Systems GmbH")
PRODUCTS = (
    "EVK4",
    "SilkyEvCam HD v03.09.00C",
    "SilkyEvCam HD Lite v03.09.01C",
    "UE-39B0XCP",
)
"""Compared as decoded strings, whole (ND compares truncated UTF-16 bytes; §2.2.2)."""

INFORMATION_REQUESTS = (
    frame(0x79),  # P6 release version
    frame(0x7A),  # P7 build date
    frame(0x00010000),  # P8 device count
    frame(0x00010003, 0),  # P9 "compatible" strings of device 0
    frame(0x72),  # P10 serial
    frame(0x00010000),  # P11 device count
    frame(0x00010001, 0),  # P12 name of device 0
    frame(0x00010003, 0),  # P13 "compatible" strings of device 0
)
"""Sent after the descriptor checks; their replies are read and ignored (ND)."""


class Evk4Driver(CameraDriver):
    """The EVK4 family. Extras: :meth:`temperature_celsius`, :meth:`illuminance`,
    :meth:`biases_bounds`, and ``manufacturer``, ``product``, ``sensor`` once open."""

    name: ClassVar[str] = "prophesee_evk4"
    model: ClassVar[str] = "Prophesee EVK4"
    ids: ClassVar[tuple[tuple[int, int], ...]] = (
        (0x04B4, 0x00F4),
        (0x04B4, 0x00F5),
        (0x31F7, 0x0003),
        (0x31F7, 0x0004),
        (0x1409, 0x8E00),
    )
    width: ClassVar[int] = SENSOR_WIDTH
    height: ClassVar[int] = SENSOR_HEIGHT
    data_endpoint: ClassVar[int] = DATA_ENDPOINT
    raw_format: ClassVar[str | None] = "evt3"
    configuration_type: ClassVar[type] = Evk4Configuration

    def __init__(self, handle: UsbHandle, serial: str) -> None:
        super().__init__(handle, serial)
        self._channel = CommandChannel(
            handle, timeout=COMMAND_TIMEOUT, reply_length=REPLY_LENGTH, serial=serial
        )
        self.manufacturer: str | None = None
        self.product: str | None = None
        self._firmware: tuple[int, ...] | None = None

    # -- identification -----------------------------------------------------------------------
    @classmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        """The type byte (P1), then the serial (P2); None for another board."""
        type_byte = read_type_byte(handle, COMMAND_TIMEOUT)
        if type_byte not in TYPE_BYTES:
            log.debug("type byte 0x%02X: not an EVK4", type_byte)
            return None
        return read_serial(handle, COMMAND_TIMEOUT)

    def _check_descriptors(self) -> None:
        """P3..P5: the language table, the manufacturer and the product strings."""
        check_languages(self.handle, COMMAND_TIMEOUT)
        manufacturer = read_string(self.handle, MANUFACTURER_STRING_INDEX, COMMAND_TIMEOUT)
        if manufacturer not in MANUFACTURERS:
            raise DeviceProtocolError(
                f"unexpected manufacturer {manufacturer!r} (expected one of "
                f"{', '.join(MANUFACTURERS)})",
                serial=self.serial,
            )
        product = read_string(self.handle, PRODUCT_STRING_INDEX, COMMAND_TIMEOUT)
        if product not in PRODUCTS:
            raise DeviceProtocolError(
                f"unexpected product {product!r} (expected one of {', '.join(PRODUCTS)})",
                serial=self.serial,
            )
        self.manufacturer, self.product = manufacturer, product

    # -- biases -------------------------------------------------------------------------------
    @property
    def firmware_biases(self) -> dict[str, int] | None:
        """The factory bias values read at open (None before)."""
        if self._firmware is None:
            return None
        return {
            name: word & BIAS_IDAC_MASK
            for name, word in zip(BIAS_ADDRESSES, self._firmware, strict=True)
        }

    def biases_bounds(self) -> dict[str, tuple[int, int]]:
        """The offsets each bias accepts, (minimum, maximum), from the factory values."""
        firmware = self.firmware_biases
        if firmware is None:
            raise ConfigurationError("the bias bounds are known once the camera is open")
        return {name: (-value, 255 - value) for name, value in firmware.items()}

    def _bias_words(self, biases: Evk4Biases) -> dict[str, int]:
        """The word written for each bias; ConfigurationError if one leaves 0..255."""
        assert self._firmware is not None
        words = {}
        for (name, offset), firmware in zip(biases.items(), self._firmware, strict=True):
            value = (firmware & BIAS_IDAC_MASK) + offset
            if not 0 <= value <= 255:
                raise ConfigurationError(
                    f"bias {name}: factory value {firmware & BIAS_IDAC_MASK} + offset {offset} "
                    f"= {value} lies outside 0..255 (offsets allowed: "
                    f"{-(firmware & BIAS_IDAC_MASK)}..{255 - (firmware & BIAS_IDAC_MASK)})"
                )
            if name in BIASES_WRITTEN_WHOLE:
                words[name] = bias_word(value)
            else:
                words[name] = (firmware & ~BIAS_IDAC_MASK) | value
        return words

    # -- open ---------------------------------------------------------------------------------
    def open(self, configuration: Any) -> None:
        config = self.checked_configuration(configuration)
        channel = self._channel
        with self.lock:
            self._check_descriptors()
            for request in INFORMATION_REQUESTS:
                channel.request(request)
            self._firmware = tuple(channel.read(address) for address in BIAS_ADDRESSES.values())
            self._bias_words(config.biases)  # fails before anything is written
            channel.run(STOP)
            channel.run(DESTROY)
            channel.run(INIT)
            channel.run(SENSORS)
            program_erc(
                channel,
                config.rate_limiter,
                legacy=False,
                table_closed=ERC_TABLE_CLOSED_READ_MODIFY_WRITE,
            )
            channel.write(EDF_RESERVED_7004, _trigger_input(config))
            self._drain()
            channel.request(SERIAL_REQUEST)
            self._apply(None, config)
            self._start(config)
        log.info(
            "%s: %s %s (%s) started", self.serial, self.manufacturer, self.product, self.sensor
        )

    @property
    def sensor(self) -> str | None:
        """ "IMX636" or "IMX646" (the SilkyEvCam HD Lite) once open, None before."""
        if self.product is None:
            return None
        return "IMX646" if self.product == PRODUCTS[2] else "IMX636"

    def _drain(self) -> None:
        """G1: empty the data endpoint of what the camera sent before it was configured."""
        for _ in range(DRAIN_MAXIMUM_READS):
            try:
                data = self.handle.bulk_read(DATA_ENDPOINT, DRAIN_LENGTH, DRAIN_TIMEOUT)
            except DeviceTimeoutError:
                return
            if not data:
                return
        raise DeviceProtocolError(
            f"the camera kept streaming after {DRAIN_MAXIMUM_READS} reads with its output off",
            serial=self.serial,
        )

    def _apply(self, previous: Evk4Configuration | None, config: Evk4Configuration) -> None:
        """Write the biases, masks and pixel mask that differ from ``previous`` (all when
        None: the open's H1..H5, with the ROI latched while td_rstn = 0)."""
        channel = self._channel
        words = self._bias_words(config.biases)
        old = None if previous is None else self._bias_words(previous.biases)
        for name, word in words.items():
            if old is None or old[name] != word:
                channel.write(BIAS_ADDRESSES[name], word)
        write_row_column_masks(channel.write, previous, config)
        for address, value in changed_words(
            DIGITAL_MASK,
            None if previous is None else pixel_mask_words(previous.pixel_mask),
            pixel_mask_words(config.pixel_mask),
        ):
            channel.write(address, value)

    def _start(self, config: Evk4Configuration) -> None:
        """I1..I5: MIPI on, output on, the time base in the configured clock mode, analog
        start, ROI enabled."""
        channel = self._channel
        channel.write(MIPI_CONTROL, MIPI_ON)
        if config.enable_output:
            channel.write(RO_CTRL, 0)
        if config.clock is Clock.INTERNAL:
            channel.write(TIME_BASE_CTRL, TIME_BASE_INTERNAL)
        elif config.clock is Clock.INTERNAL_WITH_OUTPUT_ENABLED:
            channel.write(TIME_BASE_CTRL, TIME_BASE_PRIMARY_ARMED)
            channel.write(DIG_PAD2_CTRL, DIG_PAD2_SYNC_OUTPUT)
            channel.sleep(PRIMARY_PAD_WAIT)
            channel.write(TIME_BASE_CTRL, TIME_BASE_PRIMARY)
        else:
            channel.write(TIME_BASE_CTRL, TIME_BASE_SECONDARY)
            channel.write(DIG_PAD2_CTRL, DIG_PAD2_SYNC_INPUT)
        channel.write(ANALOG_CONTROL, ANALOG_START)
        channel.write(
            ROI_CTRL,
            roi_ctrl(intersection=config.mask_intersection_only, latch=False, running=True),
        )

    # -- while streaming ----------------------------------------------------------------------
    def update_configuration(self, previous: Any, configuration: Any) -> None:
        """Write what changed, in ND's order: output enable, biases, x/y masks with the ROI
        latch, pixel mask; then the trigger input (which ND applies at open only). The clock
        and the rate limiter cannot change while streaming: ConfigurationError, nothing
        written (reopen the camera to change them)."""
        old = self.checked_configuration(previous)
        new = self.checked_configuration(configuration)
        if old.clock != new.clock:
            raise ConfigurationError("the clock cannot change while streaming; reopen the camera")
        if old.rate_limiter != new.rate_limiter:
            raise ConfigurationError(
                "the rate limiter cannot change while streaming; reopen the camera"
            )
        with self.lock:
            if self._firmware is None:
                raise ConfigurationError("the camera is not open")
            self._bias_words(new.biases)  # fails before anything is written
            if old.enable_output != new.enable_output:
                self._channel.write(RO_CTRL, 0 if new.enable_output else RO_CTRL_OUTPUT_DISABLE)
            self._apply(old, new)
            if old.enable_external_trigger != new.enable_external_trigger:
                self._channel.write(EDF_RESERVED_7004, _trigger_input(new))

    def temperature_celsius(self) -> float:
        """The sensor's temperature: start the ADC, then read AdcStatus until it is done;
        °C = value × 0.19 − 56."""
        with self.lock:
            self._channel.write(ADC_CONTROL, ADC_CONTROL_START)
            for _ in range(TEMPERATURE_POLLS):
                status = self._channel.read(ADC_STATUS)
                if status & ADC_STATUS_DONE:
                    return (status & ADC_STATUS_VALUE) * TEMPERATURE_SCALE + TEMPERATURE_OFFSET
        raise DeviceTimeoutError(
            f"the temperature ADC gave no value after {TEMPERATURE_POLLS} reads",
            serial=self.serial,
        )

    def illuminance(self) -> int:
        """The illuminance counter (LifoStatus bits 0..28), a raw sensor count that falls as
        light grows; not a value in lux."""
        with self.lock:
            for _ in range(ILLUMINANCE_POLLS):
                status = self._channel.read(LIFO_STATUS)
                if status & LIFO_STATUS_VALID:
                    return status & LIFO_STATUS_COUNT
        raise DeviceTimeoutError(
            f"the illuminance counter gave no value after {ILLUMINANCE_POLLS} reads",
            serial=self.serial,
        )

    # -- close --------------------------------------------------------------------------------
    def close(self) -> None:
        """X0..X6: factory biases back, LIFO, mirror, thermometer and ADC off, then the stop
        and destroy blocks. Gives up (with a warning) at the first failed request."""
        channel = self._channel
        with self.lock:
            try:
                if self._firmware is not None:
                    for name, word in self._bias_words(Evk4Biases()).items():
                        channel.write(BIAS_ADDRESSES[name], word)
                channel.write(LIFO_CTRL, 0)
                channel.write(IPH_MIRR_CTRL, 0)
                channel.write(TEMP_CTRL, TEMP_CTRL_CLOSE)
                channel.write(ADC_CONTROL, ADC_CONTROL_OFF)
                channel.run(STOP)
                channel.run(DESTROY)
            except DeviceError as error:
                log.warning("%s: the close sequence stopped early: %s", self.serial, error)
            self._firmware = None

    def decoder(self) -> Evt3StreamDecoder:
        return Evt3StreamDecoder(SENSOR_WIDTH, SENSOR_HEIGHT)


def _trigger_input(config: Evk4Configuration) -> int:
    return TRIGGER_INPUT_ON if config.enable_external_trigger else TRIGGER_INPUT_OFF
