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

import enum
import logging
import operator
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..errors import ConfigurationError, DeviceError, DeviceProtocolError, DeviceTimeoutError
from ..formats.evt3 import Evt3StreamDecoder
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
    RateLimiter,
    Row,
    bias_word,
    changed_words,
    check_languages,
    frame,
    mask_indices,
    program_erc,
    read_serial,
    read_string,
    read_type_byte,
    roi_ctrl,
    write_row_column_masks,
)
from .driver import CameraDriver
from .usb import UsbHandle

__all__ = ["Clock", "Evk4Biases", "Evk4Configuration", "Evk4Driver", "RateLimiter"]

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

# -- registers --------------------------------------------------------------------------------
LIFO_CTRL = 0x000C
LIFO_STATUS = 0x0010
LIFO_STATUS_VALID = 1 << 29
LIFO_STATUS_COUNT = (1 << 29) - 1
"""ND keeps 29 bits of the illuminance count; OE 27 (§3.13 item 15)."""
DIG_PAD2_CTRL = 0x0044
DIG_PAD2_SYNC_OUTPUT = 0xCCFCFCCF
DIG_PAD2_SYNC_INPUT = 0xCCFFFCCF
ADC_CONTROL = 0x004C
ADC_CONTROL_OFF = 0x00007640
ADC_CONTROL_START = 0x00007647
"""adc_en, adc_clk_en and adc_start (reserved bits 3..31 = 0xEC8)."""
ADC_STATUS = 0x0050
ADC_STATUS_DONE = 1 << 11
ADC_STATUS_VALUE = 0x3FF
TEMP_CTRL = 0x005C
TEMP_CTRL_CLOSE = 0x00200083
IPH_MIRR_CTRL = 0x0074
TEMPERATURE_SCALE = 0.19
TEMPERATURE_OFFSET = -56.0
TEMPERATURE_POLLS = 5
"""[I] Reads of AdcStatus until its done bit (OE polls up to 5; ND reads once, §3.13 item 14)."""
ILLUMINANCE_POLLS = 10
"""[I] Reads of LifoStatus until its valid bit (OE polls up to 10; ND reads once)."""

MIPI_ON = 0x000002F9
TIME_BASE_INTERNAL = 0x00000645
"""Enabled, internal."""
TIME_BASE_PRIMARY_ARMED = 0x0000064E
"""External mode, primary, external mode enabled; not yet enabled."""
TIME_BASE_PRIMARY = 0x0000064F
TIME_BASE_SECONDARY = 0x0000064B
"""Enabled, external, secondary."""
PRIMARY_PAD_WAIT = 1e-3
TRIGGER_INPUT_ON = 0x0000C5FF
"""EDF 0x7004 with bit 10 (external trigger input) set."""
TRIGGER_INPUT_OFF = 0x0000C1FF
ERC_TABLE_CLOSED_READ_MODIFY_WRITE = None
"""[I] After the ERC table, read 0x602C and clear bit 0 (§3.13 item 4) instead of ND's 0x2."""

DIGITAL_MASK = 0x9100
PIXEL_MASK_SLOTS = 64
DIGITAL_MASK_ENABLE = 1 << 31

BIAS_ADDRESSES: Mapping[str, int] = {
    "pr": 0x1000,
    "fo": 0x1004,
    "hpf": 0x100C,
    "diff_on": 0x1010,
    "diff": 0x1014,
    "diff_off": 0x1018,
    "inv": 0x101C,
    "refr": 0x1020,
    "reqpuy": 0x1040,
    "reqpux": 0x1044,
    "sendreqpdy": 0x1048,
    "unknown_1": 0x104C,
    "unknown_2": 0x1050,
}
"""The 13 bias registers, in the order ND reads and writes them."""
BIASES_WRITTEN_WHOLE = frozenset({"fo", "hpf", "diff_on", "diff", "diff_off", "refr"})
"""[I] The six biases OE writes as 0x11A10000 + value (as ND writes all 13). The other seven
keep the word read from the camera at open with only bits 0..7 changed (§3.13 item 12); with
a camera whose words read 0x11A100VV both rules write ND's values."""

# -- sequences (usb-sequences.md §3.2–3.5) ----------------------------------------------------
STOP: tuple[Row, ...] = (
    (0x0004, 0xF0005042, 0.0),  # A1
    (0x002C, 0x0022C324, 0.0),  # A2
    (0x9028, 0x00000002, 1e-3),  # A3
    (0x9008, 0x00000644, 0.0),  # A4
    (0xB000, 0x000002F8, 300e-6),  # A5
)
"""Analog stop, output off, time base stopped, MIPI off (A1..A5; ND = OE)."""

DESTROY: tuple[Row, ...] = (
    (0x0070, 0x00400008, 0.0),  # B1
    (0x006C, 0x0EE47114, 500e-6),  # B2
    (0xA00C, 0x00020400, 500e-6),  # B3
    (0xA010, 0x00008068, 200e-6),  # B4
    (0x1104, 0x00000000, 200e-6),  # B5
    (0xA020, 0x00000050, 200e-6),  # B6
    (0xA004, 0x000B0500, 200e-6),  # B7
    (0xA008, 0x00002404, 200e-6),  # B8
    (0xA000, 0x000B0500, 0.0),  # B9
    (0xB044, 0x00000000, 0.0),  # B10
    (0xB004, 0x0000000A, 0.0),  # B11
    (0xB040, 0x0000000E, 0.0),  # B12
    (0xB0C8, 0x00000000, 0.0),  # B13
    (0xB040, 0x00000006, 0.0),  # B14
    (0xB040, 0x00000004, 0.0),  # B15
    (0x0000, 0x4F006442, 0.0),  # B16
    (0x0000, 0x0F006442, 0.0),  # B17
    (0x00B8, 0x00000401, 0.0),  # B18
    (0x00B8, 0x00000400, 0.0),  # B19
    (0xB07C, 0x00000000, 0.0),  # B20
)
"""Analog and digital power-down (B1..B20; ND = OE)."""

RESET = 0x400004
"""Board reset register [I]: 1 asserts, 0 releases."""
POWER_ON_WAIT = 1.0
"""[I] After C1: OE waits 1 s here, ND not at all; the larger is kept (§3.13 item 1)."""
RESET_ASSERT_WAIT = 1.0
"""After asserting the reset (C2): 1 s in ND, 500 ms in OE."""
RESET_RELEASE_WAIT = 1.0
"""[I] After releasing the reset (C3): 500 ms in ND, 1 s in OE; the larger is kept."""
MIPI_CONFIGURED_WAIT = 1.0
"""After MipiControl ← 0x158 (C4): 1 s in ND, none in OE."""
MIPI_PHY_WAIT = 300e-6
"""After C5: 300 µs in ND, none in OE."""

INIT: tuple[Row, ...] = (
    (0x001C, 0x00000001, POWER_ON_WAIT),  # C1
    (RESET, 0x00000001, RESET_ASSERT_WAIT),  # C2
    (RESET, 0x00000000, RESET_RELEASE_WAIT),  # C3
    (MIPI_CONTROL, 0x00000158, MIPI_CONFIGURED_WAIT),  # C4
    (0xB044, 0x00000000, MIPI_PHY_WAIT),  # C5
    (0xB004, 0x0000000A, 0.0),  # C6
    (0xB040, 0x00000000, 0.0),  # C7
    (0xB0C8, 0x00000000, 0.0),  # C8
    (0xB040, 0x00000000, 0.0),  # C9
    (0xB040, 0x00000000, 0.0),  # C10
    (0x0000, 0x4F006442, 0.0),  # C11
    (0x0000, 0x0F006442, 0.0),  # C12
    (0x00B8, 0x00000400, 0.0),  # C13
    (0x00B8, 0x00000400, 0.0),  # C14
    (0xB07C, 0x00000000, 0.0),  # C15
    (0xB074, 0x00000002, 0.0),  # C16
    (0xB078, 0x000000A0, 0.0),  # C17
    (0x00C0, 0x00000110, 0.0),  # C18
    (0x00C0, 0x00000210, 0.0),  # C19
    (0xB120, 0x00000001, 0.0),  # C20
    (0xE120, 0x00000000, 0.0),  # C21
    (0xB068, 0x00000004, 0.0),  # C22
    (0xB07C, 0x00000001, 10e-6),  # C23
    (0xB07C, 0x00000003, 1e-3),  # C24
    (0x00B8, 0x00000401, 0.0),  # C25
    (0x00B8, 0x00000409, 0.0),  # C26
    (0x0000, 0x4F006442, 0.0),  # C27
    (0x0000, 0x4F00644A, 0.0),  # C28
    (0xB080, 0x00000077, 0.0),  # C29
    (0xB084, 0x0000000F, 0.0),  # C30
    (0xB088, 0x00000037, 0.0),  # C31
    (0xB08C, 0x00000037, 0.0),  # C32
    (0xB090, 0x000000DF, 0.0),  # C33
    (0xB094, 0x00000057, 0.0),  # C34
    (0xB098, 0x00000037, 0.0),  # C35
    (0xB09C, 0x00000067, 0.0),  # C36
    (0xB0A0, 0x00000037, 0.0),  # C37
    (0xB0A4, 0x0000002F, 0.0),  # C38
    (0xB0AC, 0x00000028, 0.0),  # C39
    (0xB0CC, 0x00000001, 0.0),  # C40
    (0xB000, 0x000002F8, 0.0),  # C41
    (0xB004, 0x0000008A, 0.0),  # C42
    (0xB01C, 0x00000030, 0.0),  # C43
    (0xB020, 0x00002000, 0.0),  # C44
    (0xB02C, 0x000000FF, 0.0),  # C45
    (0xB030, 0x00003E80, 0.0),  # C46
    (0xB028, 0x00000FA0, 0.0),  # C47
    (0xA000, 0x000B0501, 200e-6),  # C48
    (0xA008, 0x00002405, 200e-6),  # C49
    (0xA004, 0x000B0501, 200e-6),  # C50
    (0xA020, 0x00000150, 200e-6),  # C51
    (0xB040, 0x00000007, 0.0),  # C52
    (0xB064, 0x00000006, 0.0),  # C53
    (0xB040, 0x0000000F, 100e-6),  # C54
    (0xB004, 0x0000008A, 200e-6),  # C55
    (0xB0C8, 0x00000003, 200e-6),  # C56
    (0xB044, 0x00000001, 0.0),  # C57
    (0xB000, 0x000002F9, 0.0),  # C58
    (0x7008, 0x00000001, 0.0),  # C59
    (0x7000, 0x00070001, 0.0),  # C60
    (0x8000, 0x0001E085, 0.0),  # C61
    (0x9008, 0x00000644, 0.0),  # C62
    (0x0004, 0xF0005042, 0.0),  # C63
    (0x0018, 0x00000200, 0.0),  # C64
    (0x1014, 0x11A1504D, 0.0),  # C65
    (0x9004, 0x00000000, 1e-3),  # C66
    (0x9000, 0x00000200, 0.0),  # C67
)
"""Reset, MIPI and readout set-up (C1..C67; the first five delays per §3.13 item 1)."""

ADC_MISC_CTRL_CALIBRATE = 0x00000212
"""[I] D3: ND writes 0x42 (0x210 put into an 8-bit field); the register's reserved bits
2..9 reset to 0x84, which gives 0x212 (§3.13 item 6)."""
IPH_MIRROR_WAIT = 20e-6
"""[I] After D9: ND 10 µs, OE 20 µs; OE's longer waits are kept (§3.13 item 8)."""
IPH_MIRROR_SETTLE = 1.02e-3
"""[I] After D10: OE's 20 µs then 1 ms (ND: 20 µs)."""
LIFO_WAIT = 1e-3
"""[I] After D11 and D12: OE's 1 ms each (ND: 5 µs, then none)."""

SENSORS: tuple[Row, ...] = (
    (0x004C, 0x00007641, 0.0),  # D1
    (0x004C, 0x00007643, 0.0),  # D2
    (0x0054, ADC_MISC_CTRL_CALIBRATE, 100e-6),  # D3
    (0x005C, 0x00200082, 0.0),  # D4
    (0x005C, 0x00200083, 100e-6),  # D5
    (0x004C, 0x00007641, 0.0),  # D6
    (0x004C, 0x00007643, 0.0),  # D7
    (0x0054, 0x00001212, 0.0),  # D8
    (0x0074, 0x00000002, IPH_MIRROR_WAIT),  # D9
    (0x0074, 0x00000003, IPH_MIRROR_SETTLE),  # D10
    (0x000C, 0x00000001, LIFO_WAIT),  # D11
    (0x000C, 0x00000003, LIFO_WAIT),  # D12
    (0x000C, 0x00000007, 0.0),  # D13
    (0xC008, 0x00089C0F, 0.0),  # D14
    (0xC000, 0x00000005, 0.0),  # D15
    (0xD00C, 0x0000022D, 0.0),  # D16
    (0xD004, 0x01000B90, 0.0),  # D17
    (0xD008, 0x00030D40, 0.0),  # D18
    (0xD0C0, 0x0A118004, 0.0),  # D19
    (0xD0C4, 0x00000000, 0.0),  # D20
    (0xD000, 0x00000005, 0.0),  # D21
)
"""Thermometer, illuminance counter, anti-flicker and STC/trail filters (bypassed), D1..D21."""


class Clock(enum.Enum):
    """Where the time base comes from (several cameras can share one clock)."""

    INTERNAL = "internal"
    """The camera's own clock (default)."""
    INTERNAL_WITH_OUTPUT_ENABLED = "internal with output enabled"
    """Primary: the camera's own clock, also sent out on the sync pad."""
    EXTERNAL = "external"
    """Secondary: the clock comes in on the sync pad from a primary camera. Open the
    secondaries first, wait a second, then open the primary."""


@dataclass(frozen=True)
class Evk4Biases:
    """Bias offsets from the camera's factory values.

    At open the driver reads each bias register (its bits 0..7); the value written is that
    factory value plus the offset, which must stay within 0..255
    (:meth:`Evk4Driver.biases_bounds` gives the range per bias once open). All offsets 0
    (the default) keep the factory tuning, as in neuromorphic-drivers 0.18 and OpenEB.
    """

    pr: int = 0
    fo: int = 0
    hpf: int = 0
    diff_on: int = 0
    diff: int = 0
    diff_off: int = 0
    inv: int = 0
    refr: int = 0
    reqpuy: int = 0
    reqpux: int = 0
    sendreqpdy: int = 0
    unknown_1: int = 0
    unknown_2: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"Evk4Biases.{item.name} must be an integer offset")
            if not -255 <= value <= 255:
                raise ConfigurationError(
                    f"Evk4Biases.{item.name} = {value}: an offset lies in -255..255"
                )

    def items(self) -> list[tuple[str, int]]:
        """(name, offset) in register order."""
        return [(name, getattr(self, name)) for name in BIAS_ADDRESSES]


def _pixels(values: Any) -> tuple[tuple[int, int], ...]:
    try:
        pixels = tuple((operator.index(x), operator.index(y)) for x, y in values)
    except (TypeError, ValueError):
        raise ConfigurationError("pixel_mask must be a sequence of (x, y) pairs") from None
    if len(pixels) > PIXEL_MASK_SLOTS:
        raise ConfigurationError(
            f"pixel_mask holds {len(pixels)} pixels; the camera has {PIXEL_MASK_SLOTS} slots"
        )
    for x, y in pixels:
        if not (0 <= x < SENSOR_WIDTH and 0 <= y < SENSOR_HEIGHT):
            raise ConfigurationError(
                f"pixel_mask pixel ({x}, {y}) lies outside the {SENSOR_WIDTH}x{SENSOR_HEIGHT} "
                "sensor"
            )
    if len(set(pixels)) != len(pixels):
        raise ConfigurationError("pixel_mask names a pixel twice")
    return pixels


def _flag(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{owner}.{name} must be True or False, not {value!r}")


@dataclass(frozen=True)
class Evk4Configuration:
    """Everything the EVK4 driver programs.

    - ``biases``: offsets from the factory biases (:class:`Evk4Biases`).
    - ``x_mask`` / ``y_mask``: columns (0..1279) and rows (0..719) to switch off; any
      iterable of integers (a ``range`` for instance), stored as a sorted tuple. With
      ``mask_intersection_only`` False (the default) a pixel is off when its column **or**
      its row is masked; with True, only when both are [I: the meaning of RoiCtrl bit 6,
      from ND's helper].
    - ``pixel_mask``: up to 64 distinct (x, y) pixels to switch off one by one, stored as a
      tuple of pairs.
    - ``enable_external_trigger``: the camera turns edges on its trigger input into trigger
      events (EDF 0x7004 bit 10).
    - ``clock``: internal, primary or secondary (:class:`Clock`); open time only.
    - ``rate_limiter``: None, or the camera's event-rate controller settings
      (:class:`RateLimiter`); open time only.
    - ``enable_output``: False keeps the sensor running but sends no events.
    """

    biases: Evk4Biases = field(default_factory=Evk4Biases)
    x_mask: Collection[int] = ()
    y_mask: Collection[int] = ()
    pixel_mask: Collection[tuple[int, int]] = ()
    mask_intersection_only: bool = False
    enable_external_trigger: bool = True
    clock: Clock = Clock.INTERNAL
    rate_limiter: RateLimiter | None = None
    enable_output: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.biases, Evk4Biases):
            raise ConfigurationError("Evk4Configuration.biases must be an Evk4Biases")
        object.__setattr__(self, "x_mask", mask_indices(self.x_mask, SENSOR_WIDTH, "x_mask"))
        object.__setattr__(self, "y_mask", mask_indices(self.y_mask, SENSOR_HEIGHT, "y_mask"))
        object.__setattr__(self, "pixel_mask", _pixels(self.pixel_mask))
        for name in ("mask_intersection_only", "enable_external_trigger", "enable_output"):
            _flag("Evk4Configuration", name, getattr(self, name))
        try:
            object.__setattr__(self, "clock", Clock(self.clock))
        except ValueError:
            raise ConfigurationError(
                f"Evk4Configuration.clock must be a Clock, not {self.clock!r}"
            ) from None
        if self.rate_limiter is not None and not isinstance(self.rate_limiter, RateLimiter):
            raise ConfigurationError("Evk4Configuration.rate_limiter must be a RateLimiter or None")


def pixel_mask_words(pixels: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    """The 64 DigitalMask words: slot j holds {x (bits 0..10), 719 − y (bits 16..25), enable
    (bit 31)} for the j-th pixel, 0 for an unused slot. The row is flipped as in ND
    (§3.13 item 11, unresolved [I])."""
    words = [0] * PIXEL_MASK_SLOTS
    for slot, (x, y) in enumerate(pixels):
        words[slot] = x | (SENSOR_HEIGHT - 1 - y) << 16 | DIGITAL_MASK_ENABLE
    return tuple(words)


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
