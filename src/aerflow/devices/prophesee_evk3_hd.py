"""Prophesee EVK3 HD (Gen4.1 sensor, 1280 × 720, EVT 3.0 over USB 3).

It shares its USB ids with the EVK4 and answers the type request with 0x30. Registers are
written with the legacy 12-byte command (0x56) and never read, as by neuromorphic-drivers
(ND), whose open, start and close sequences (``usb-sequences.md`` §4) this follows, with the
changes of its §4.9 for that legacy path, each a named constant marked [I] (inferred).

Settings that change while streaming: biases and the x/y masks with their mode. The rate
limiter is programmed at open only; changing it live raises ConfigurationError.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..errors import ConfigurationError, DeviceError
from ..formats.evt3 import Evt3StreamDecoder
from ._prophesee import (
    ANALOG_CONTROL,
    ANALOG_START,
    BGEN_CTRL,
    DATA_ENDPOINT,
    MIPI_CONTROL,
    RO_CTRL,
    ROI_CTRL,
    SENSOR_HEIGHT,
    SENSOR_WIDTH,
    SPARE0,
    TIME_BASE_CTRL,
    TYPE_EVK3_HD,
    CommandChannel,
    RateLimiter,
    Row,
    bias_word,
    frame,
    mask_indices,
    program_erc,
    read_serial,
    read_type_byte,
    roi_ctrl,
    write_row_column_masks,
)
from .driver import CameraDriver
from .usb import UsbHandle

__all__ = ["Evk3HdBiases", "Evk3HdConfiguration", "Evk3HdDriver", "RateLimiter"]

log = logging.getLogger(__name__)

IDENTIFY_TIMEOUT = 1.0
"""Seconds for the type and serial requests (ND)."""
COMMAND_TIMEOUT = 0.1
"""Seconds for each command and its reply once open (ND)."""
REPLY_LENGTH = 16
"""Bytes asked for each reply (ND)."""

OPEN_WAIT = 150e-3
"""P3: after opening the device, before the first command (ND)."""
FPGA_STATE_REQUEST = frame(0x71)
LEGACY_READ_REQUEST = bytes.fromhex("5500000000080000")
"""P5: the legacy read command (0x55), of address 0x0800 by analogy [I]; reply ignored."""
PREAMBLE_WAIT = 5e-3

BURST = 0x00000005
"""BgenCtrl: transfer the biases written with single = 0 to the bias generator [I]."""
BIAS_BURST_AFTER_UPDATE = True
"""[I] ND rewrites changed biases while streaming without a burst, so they may never reach
the bias generator (§4.9 item 9); the burst is written again after them."""
MIPI_ON = 0x000002DD
TIME_BASE_INTERNAL = 0x00000645

PLL_WAIT = 200e-6
"""[I] OE's waits after the PLL/analog writes, added to ND's legacy path (§4.9 item 8)."""
MIPI_PHY_WAIT = 1e-3
"""[I] OE's 1 ms after 0xB07C ← 3 (H12)."""
BIAS_GENERATOR_WAIT = 300e-6
"""[I] OE's 300 µs after 0xA010 ← 0xA06B (K20) and after 0xA00C ← 0x20401 (K25)."""
ANALOG_RAMP_WAIT = 100e-6
"""[I] OE's 100 µs after each analog ramp step of 0x006C (K27, K28)."""
ANALOG_SETTLE_WAIT = 1e-3
"""[I] OE's 1 ms after 0xA00C ← 0x401 (K24) and after 0x0070 ← 0x480000 (K29)."""
CLOSE_B044 = 0x00000000
"""[I] Z17: OE writes 0 (then checks it), ND 0x2 (§4.9 item 10)."""

DIGITAL_INIT: tuple[Row, ...] = (
    (0x7008, 0x00000001, 0.0),  # H1
    (0x7000, 0xFFFF0001, 0.0),  # H2
    (0x8000, 0x0001E085, 0.0),  # H3
    (0x9008, 0x00000644, 0.0),  # H4
    (0x0064, 0x00000001, 0.0),  # H5
    (0xB074, 0x00000002, 0.0),  # H6
    (0xB078, 0x000000A0, 0.0),  # H7
    (0x0000, 0x10006442, 0.0),  # H8
    (0x0000, 0x10001442, 0.0),  # H9
    (0x0000, 0x10001442, 0.0),  # H10
    (0xB068, 0x00000004, 0.0),  # H11
    (0xB07C, 0x00000003, MIPI_PHY_WAIT),  # H12
    (0x0000, 0x50001442, 0.0),  # H13
    (0x0000, 0x5000144A, 0.0),  # H14
    (0x0000, 0x5000140A, 0.0),  # H15
    (0x0000, 0x5000640A, 0.0),  # H16
    (0x0000, 0x5000644A, 0.0),  # H17
    (0xB080, 0x00000077, 0.0),  # H18
    (0xB084, 0x0000000F, 0.0),  # H19
    (0xB088, 0x00000037, 0.0),  # H20
    (0xB08C, 0x00000037, 0.0),  # H21
    (0xB090, 0x000000DF, 0.0),  # H22
    (0xB094, 0x00000057, 0.0),  # H23
    (0xB098, 0x00000037, 0.0),  # H24
    (0xB09C, 0x00000067, 0.0),  # H25
    (0xB0A0, 0x00000037, 0.0),  # H26
    (0xB0A4, 0x0000002F, 0.0),  # H27
    (0xB0AC, 0x00000028, 0.0),  # H28
    (0xB0CC, 0x00000001, 0.0),  # H29
    (0xB000, 0x000002D8, 0.0),  # H30
    (0xB004, 0x0000008A, 0.0),  # H31
    (0xB01C, 0x00000030, 0.0),  # H32
    (0xB020, 0x00002000, 0.0),  # H33
    (0xB02C, 0x000000FF, 0.0),  # H34
    (0xB030, 0x00003E80, 0.0),  # H35
    (0xB028, 0x00000FA0, 0.0),  # H36
    (0xB040, 0x00000007, 0.0),  # H37
    (0xA000, 0x000000A1, PLL_WAIT),  # H38
    (0xA008, 0x00002401, PLL_WAIT),  # H39
    (0xA004, 0x000000A1, PLL_WAIT),  # H40
    (0xA020, 0x00000160, PLL_WAIT),  # H41
    (0xB040, 0x0000000F, 0.0),  # H42
    (0xB004, 0x0000008A, PLL_WAIT),  # H43
    (0xB0C8, 0x00000003, PLL_WAIT),  # H44
    (0xB044, 0x00000001, 0.0),  # H45
    (0xB000, 0x000002DD, 0.0),  # H46
    (0x9008, 0x00000640, 0.0),  # H47
    (0x8000, 0x0001E085, 0.0),  # H48
    (0x7008, 0x00000001, 0.0),  # H49
    (0x7000, 0x00070001, 0.0),  # H50
    (0x6000, 0x00155403, 0.0),  # H51
    (0xD000, 0x00000005, 0.0),  # H52
    (0xC000, 0x00000005, 0.0),  # H53
)
"""H1..H53: pipeline, global control, MIPI and PLL (ND, with OE's waits)."""

READOUT_INIT: tuple[Row, ...] = (
    (0x9000, 0x00000208, 0.0),  # K1
    (0x7008, 0x00000001, 0.0),  # K2
    (0x7000, 0x00070001, 0.0),  # K3
    (0x8000, 0x0001E085, 0.0),  # K4
    (0x9008, 0x00000644, 0.0),  # K5
    (0x0004, 0xF0005042, 0.0),  # K6
    (0x002C, 0x0022C324, 0.0),  # K7
    (0xA000, 0x000002A1, 0.0),  # K8
    (0xA000, 0x000002A1, PLL_WAIT),  # K9
    (0xA008, 0x00082401, PLL_WAIT),  # K10
    (0xA004, 0x000002A1, 0.0),  # K11
    (0xA004, 0x000002A1, PLL_WAIT),  # K12
    (0xA020, 0x00000160, 0.0),  # K13
    (0xA020, 0x00000160, PLL_WAIT),  # K14
    (0xA008, 0x00082401, 0.0),  # K15
    (0x004C, 0x00007141, 0.0),  # K16
    (0x0054, 0x00000210, 0.0),  # K17
    (0x0008, 0x60000000, 0.0),  # K18
    (0x1104, 0x00000001, 0.0),  # K19
    (0xA010, 0x0000A06B, BIAS_GENERATOR_WAIT),  # K20
    (0x1100, 0x00000004, PLL_WAIT),  # K21
    (0xA010, 0x0180A063, 0.0),  # K22
    (0xA00C, 0x00000400, 0.0),  # K23
    (0xA00C, 0x00000401, ANALOG_SETTLE_WAIT),  # K24
    (0xA00C, 0x00020401, BIAS_GENERATOR_WAIT),  # K25
    (0x0070, 0x00400000, 0.0),  # K26
    (0x006C, 0x0EE47117, ANALOG_RAMP_WAIT),  # K27
    (0x006C, 0x0EE4711F, ANALOG_RAMP_WAIT),  # K28
    (0x0070, 0x00480000, ANALOG_SETTLE_WAIT),  # K29
)
"""K1..K29: readout, analog and bias-generator power-up (ND, with OE's waits)."""

CLOSE: tuple[Row, ...] = (
    (0x0004, 0xF0005042, 0.0),  # Z1
    (0x002C, 0x0022C324, 0.0),  # Z2
    (0xC000, 0x00000002, 0.0),  # Z3
    (0x9028, 0x00000002, 0.0),  # Z4
    (0xC000, 0x00000005, 1e-3),  # Z5
    (0x9008, 0x00000644, 0.0),  # Z6
    (0xB000, 0x000002D8, 300e-6),  # Z7
    (0x0070, 0x00400000, 0.0),  # Z8
    (0x006C, 0x0EE47114, 500e-6),  # Z9
    (0xA00C, 0x00000400, 500e-6),  # Z10
    (0xA010, 0x00008068, 200e-6),  # Z11
    (0x1104, 0x00000000, 200e-6),  # Z12
    (0xA020, 0x00000060, 200e-6),  # Z13
    (0xA004, 0x000002A0, 200e-6),  # Z14
    (0xA008, 0x00002400, 200e-6),  # Z15
    (0xA000, 0x000002A0, 0.0),  # Z16
    (0xB044, CLOSE_B044, 0.0),  # Z17
    (0xB004, 0x0000000A, 0.0),  # Z18
    (0xB040, 0x0000000E, 0.0),  # Z19
    (0xB0C8, 0x00000000, 0.0),  # Z20
    (0xB040, 0x00000006, 0.0),  # Z21
    (0xB040, 0x00000004, 0.0),  # Z22
    (0x0000, 0x50006442, 0.0),  # Z23
    (0x0000, 0x10006442, 0.0),  # Z24
    (0xB07C, 0x00000000, 0.0),  # Z25
)
"""Z1..Z25: stop, then analog and digital power-down."""

EXTRA_BIASES: tuple[Row, ...] = (
    (0x1044, 0x01A98A7C, 0.0),
    (0x1048, 0x01A98B94, 0.0),
    (0x101C, 0x01A1575B, 0.0),
    (0x1050, 0x01A1B251, 0.0),
)
"""[I] The four bias registers OE's Gen4.1 sequence writes at open and ND does not (§4.9
item 9), written before the configured ones, at OE's values."""


@dataclass(frozen=True)
class _Bias:
    address: int
    vdac: int
    ibtype: int = 0
    buf_en: int = 1


BIASES: Mapping[str, _Bias] = {
    "pr": _Bias(0x1000, 0xC4),
    "fo_p": _Bias(0x1004, 0xE8),
    "fo_n": _Bias(0x1008, 0x00, buf_en=0),
    "hpf": _Bias(0x100C, 0xFF),
    "diff_on": _Bias(0x1010, 0x63),
    "diff": _Bias(0x1014, 0x50),
    "diff_off": _Bias(0x1018, 0x37),
    "refr": _Bias(0x1020, 0xCD, ibtype=1),
    "reqpuy": _Bias(0x1040, 0x8A, ibtype=1),
    "blk": _Bias(0x104C, 0x92),
}
"""Each bias's register, fixed vdac_ctl and flags (single = 0), in ND's write order."""


@dataclass(frozen=True)
class Evk3HdBiases:
    """Absolute bias values (0..255), ND's defaults (equal to OE's for these registers)."""

    pr: int = 0x69
    fo_p: int = 0x4A
    fo_n: int = 0x00
    hpf: int = 0x00
    diff_on: int = 0x73
    diff: int = 0x50
    diff_off: int = 0x34
    refr: int = 0x44
    reqpuy: int = 0x94
    blk: int = 0x78

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ConfigurationError(
                    f"Evk3HdBiases.{item.name} must be an integer in 0..255, not {value!r}"
                )

    def words(self) -> dict[str, int]:
        """The register word of each bias, in write order."""
        return {
            name: bias_word(
                getattr(self, name),
                vdac=bias.vdac,
                ibtype=bias.ibtype,
                buf_en=bias.buf_en,
                single=0,
            )
            for name, bias in BIASES.items()
        }


@dataclass(frozen=True)
class Evk3HdConfiguration:
    """Everything the EVK3 HD driver programs: ``biases`` (absolute), ``x_mask`` and
    ``y_mask`` (columns and rows to switch off, any iterable of integers, stored as sorted
    tuples), ``mask_intersection_only`` (as for the EVK4) and ``rate_limiter`` (open time
    only)."""

    biases: Evk3HdBiases = field(default_factory=Evk3HdBiases)
    x_mask: Collection[int] = ()
    y_mask: Collection[int] = ()
    mask_intersection_only: bool = False
    rate_limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.biases, Evk3HdBiases):
            raise ConfigurationError("Evk3HdConfiguration.biases must be an Evk3HdBiases")
        object.__setattr__(self, "x_mask", mask_indices(self.x_mask, SENSOR_WIDTH, "x_mask"))
        object.__setattr__(self, "y_mask", mask_indices(self.y_mask, SENSOR_HEIGHT, "y_mask"))
        if not isinstance(self.mask_intersection_only, bool):
            raise ConfigurationError(
                "Evk3HdConfiguration.mask_intersection_only must be True or False"
            )
        if self.rate_limiter is not None and not isinstance(self.rate_limiter, RateLimiter):
            raise ConfigurationError(
                "Evk3HdConfiguration.rate_limiter must be a RateLimiter or None"
            )


class Evk3HdDriver(CameraDriver):
    """The EVK3 HD (Gen4.1). No trigger input, clock modes, pixel mask or readouts."""

    name: ClassVar[str] = "prophesee_evk3_hd"
    model: ClassVar[str] = "Prophesee EVK3 HD"
    ids: ClassVar[tuple[tuple[int, int], ...]] = ((0x04B4, 0x00F4), (0x04B4, 0x00F5))
    width: ClassVar[int] = SENSOR_WIDTH
    height: ClassVar[int] = SENSOR_HEIGHT
    data_endpoint: ClassVar[int] = DATA_ENDPOINT
    raw_format: ClassVar[str | None] = "evt3"
    configuration_type: ClassVar[type] = Evk3HdConfiguration

    def __init__(self, handle: UsbHandle, serial: str) -> None:
        super().__init__(handle, serial)
        self._channel = CommandChannel(
            handle, timeout=COMMAND_TIMEOUT, reply_length=REPLY_LENGTH, serial=serial
        )
        self._open = False

    @classmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        """The type byte (P1), then the serial (P2); None for another board."""
        type_byte = read_type_byte(handle, IDENTIFY_TIMEOUT)
        if type_byte != TYPE_EVK3_HD:
            log.debug("type byte 0x%02X: not an EVK3 HD", type_byte)
            return None
        return read_serial(handle, IDENTIFY_TIMEOUT)

    def open(self, configuration: Any) -> None:
        config = self.checked_configuration(configuration)
        channel = self._channel
        with self.lock:
            channel.sleep(OPEN_WAIT)
            channel.request(FPGA_STATE_REQUEST)
            channel.request(LEGACY_READ_REQUEST)
            channel.sleep(PREAMBLE_WAIT)
            channel.run(DIGITAL_INIT, legacy=True)
            program_erc(channel, config.rate_limiter, legacy=True, table_closed=0)
            channel.run(READOUT_INIT, legacy=True)
            channel.run(EXTRA_BIASES, legacy=True)
            self._apply(None, config)
            channel.legacy_write(BGEN_CTRL, BURST)
            channel.legacy_write(ANALOG_CONTROL, ANALOG_START)
            channel.legacy_write(SPARE0, 0x200)
            channel.request(FPGA_STATE_REQUEST)
            channel.legacy_write(MIPI_CONTROL, MIPI_ON)
            channel.legacy_write(RO_CTRL, 0)
            channel.legacy_write(TIME_BASE_CTRL, TIME_BASE_INTERNAL)
            channel.legacy_write(ANALOG_CONTROL, ANALOG_START)
            channel.legacy_write(
                ROI_CTRL,
                roi_ctrl(intersection=config.mask_intersection_only, latch=False, running=True),
            )
            self._open = True
        log.info("%s: Prophesee EVK3 HD started", self.serial)

    def _apply(self, previous: Evk3HdConfiguration | None, config: Evk3HdConfiguration) -> bool:
        """Write the biases and masks that differ from ``previous`` (all when None: J1..J13,
        the ROI latched with td_rstn = 0). Returns whether a bias was written."""
        channel = self._channel
        words = config.biases.words()
        old = None if previous is None else previous.biases.words()
        biases = [(name, word) for name, word in words.items() if old is None or old[name] != word]
        for name, word in biases:
            channel.legacy_write(BIASES[name].address, word)
        write_row_column_masks(channel.legacy_write, previous, config)
        return bool(biases)

    def update_configuration(self, previous: Any, configuration: Any) -> None:
        """Write the changed biases (then the bias burst again [I]) and, if a mask or the mask
        mode changed, the x/y words and the ROI latch. The rate limiter cannot change while
        streaming: ConfigurationError, nothing written (reopen the camera)."""
        old = self.checked_configuration(previous)
        new = self.checked_configuration(configuration)
        if old.rate_limiter != new.rate_limiter:
            raise ConfigurationError(
                "the rate limiter cannot change while streaming; reopen the camera"
            )
        with self.lock:
            if not self._open:
                raise ConfigurationError("the camera is not open")
            if self._apply(old, new) and BIAS_BURST_AFTER_UPDATE:
                self._channel.legacy_write(BGEN_CTRL, BURST)

    def close(self) -> None:
        """Z1..Z25. Gives up (with a warning) at the first failed request."""
        with self.lock:
            try:
                self._channel.run(CLOSE, legacy=True)
            except DeviceError as error:
                log.warning("%s: the close sequence stopped early: %s", self.serial, error)
            self._open = False

    def decoder(self) -> Evt3StreamDecoder:
        return Evt3StreamDecoder(SENSOR_WIDTH, SENSOR_HEIGHT)
