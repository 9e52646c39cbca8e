"""What the Prophesee USB cameras (EVK4 family, EVK3 HD) share: identification, the command
frames and their replies, register encodings (biases, ROI masks, pixel mask) and the event-rate
controller. Their live EVT 3.0 stream is decoded by
:class:`~aerflow.formats.evt3.Evt3StreamDecoder`.

Facts come from ``usb-devices.md`` §2.1–2.3 and ``usb-sequences.md`` §2–4 (the protocol
notes of this project). Values marked [I] there are inferences, not observations: each one
sits behind a named constant here, with the reason in its comment.
"""

from __future__ import annotations

import logging
import operator
import struct
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, DeviceProtocolError
from .usb import CONTROL_IN_STANDARD, CONTROL_IN_VENDOR, GET_DESCRIPTOR, UsbHandle

__all__ = [
    "CommandChannel",
    "RateLimiter",
    "Row",
]

log = logging.getLogger(__name__)

# -- endpoints --------------------------------------------------------------------------------
COMMAND_OUT_ENDPOINT = 0x02
"""Bulk OUT: command frames, host to device."""
COMMAND_IN_ENDPOINT = 0x82
"""Bulk IN: one reply per command frame."""
DATA_ENDPOINT = 0x81
"""Bulk IN: the EVT 3.0 event stream."""

SENSOR_WIDTH = 1280
SENSOR_HEIGHT = 720

# -- identification (EP0) ---------------------------------------------------------------------
TYPE_REQUEST = 0x72
"""Vendor control IN request whose 2-byte reply starts with the board/sensor type byte."""
TYPE_REPLY_LENGTH = 2
TYPE_EVK3_HD = 0x30
TYPE_IMX636 = 0x31
"""EVK4, SilkyEvCam HD and IDS uEye XCP-E (Sony IMX636)."""
TYPE_IMX646 = 0x35
"""SilkyEvCam HD Lite (Sony IMX646)."""

LANGUAGE_TABLE_INDEX = 0
MANUFACTURER_STRING_INDEX = 1
PRODUCT_STRING_INDEX = 2
LANGID_ENGLISH_US = 0x0409
STRING_DESCRIPTOR_TYPE = 0x03
DESCRIPTOR_READ_LENGTH = 255
"""A string descriptor's length is one byte: asking for 255 bytes reads any of them whole."""

# -- command frames ("Treuzell" protocol, usb-sequences.md §2.1) -------------------------------
WRITE_FLAG = 0x40000000
ERROR_FLAG = 0x80000000
"""Set in a reply's property when the command failed (0x80000000 alone: unknown command)."""
PROPERTY_DEVICE_COUNT = 0x00010000
PROPERTY_DEVICE_NAME = 0x00010001
PROPERTY_DEVICE_COMPATIBLE = 0x00010003
PROPERTY_REGISTER = 0x00010102
PROPERTY_FPGA_STATE = 0x71
PROPERTY_SERIAL = 0x72
PROPERTY_RELEASE_VERSION = 0x79
PROPERTY_BUILD_DATE = 0x7A
SENSOR_DEVICE_ID = 0
"""The device id of the sensor in register frames (ND's "reserved word")."""

FRAME_HEADER = struct.Struct("<II")
REGISTER_FRAME = struct.Struct("<IIIII")
"""property, payload length (12), device id, address, value (write) or count (read)."""
REGISTER_FRAME_LENGTH = REGISTER_FRAME.size  # 20
SERIAL_REQUEST = FRAME_HEADER.pack(PROPERTY_SERIAL, 0)
SERIAL_REPLY_LENGTH = 16
SERIAL_OFFSET = 8
"""The serial is the little-endian u32 at this offset of the reply, printed as %08X (ND)."""

# Legacy commands (usb-sequences.md §2.2), used for the EVK3 HD.
LEGACY_WRITE = 0x56
LEGACY_READ = 0x55
LEGACY_WRITE_FRAME = struct.Struct("<III")
"""0x56, address, value: 12 bytes and no length field."""


def frame(property: int, *payload: int) -> bytes:
    """A command frame: property, payload length, then the payload's u32 words."""
    return FRAME_HEADER.pack(property, 4 * len(payload)) + struct.pack(
        f"<{len(payload)}I", *payload
    )


def read_type_byte(handle: UsbHandle, timeout: float) -> int:
    """The board/sensor type byte (control IN 0xC0/0x72, 2 bytes)."""
    reply = handle.control_read(CONTROL_IN_VENDOR, TYPE_REQUEST, 0, 0, TYPE_REPLY_LENGTH, timeout)
    if len(reply) != TYPE_REPLY_LENGTH:
        raise DeviceProtocolError(
            f"the type request (0x{TYPE_REQUEST:02X}) returned {len(reply)} bytes, "
            f"expected {TYPE_REPLY_LENGTH}"
        )
    return reply[0]


def parse_serial(reply: bytes) -> str:
    """The serial in a reply to :data:`SERIAL_REQUEST`."""
    if len(reply) < SERIAL_OFFSET + 4 or FRAME_HEADER.unpack_from(reply)[0] != PROPERTY_SERIAL:
        raise DeviceProtocolError(f"unexpected reply to the serial request: {reply.hex(' ')}")
    (serial,) = struct.unpack_from("<I", reply, SERIAL_OFFSET)
    return f"{serial:08X}"


def read_serial(handle: UsbHandle, timeout: float) -> str:
    """Send the serial request on the command channel and decode the reply."""
    handle.bulk_write(COMMAND_OUT_ENDPOINT, SERIAL_REQUEST, timeout)
    return parse_serial(handle.bulk_read(COMMAND_IN_ENDPOINT, SERIAL_REPLY_LENGTH, timeout))


def read_string_descriptor(handle: UsbHandle, index: int, language: int, timeout: float) -> bytes:
    """The body of a string descriptor (what follows its 2-byte header), read whole."""
    reply = handle.control_read(
        CONTROL_IN_STANDARD,
        GET_DESCRIPTOR,
        (STRING_DESCRIPTOR_TYPE << 8) | index,
        language,
        DESCRIPTOR_READ_LENGTH,
        timeout,
    )
    if len(reply) < 2 or reply[1] != STRING_DESCRIPTOR_TYPE or not 2 <= reply[0] <= len(reply):
        raise DeviceProtocolError(
            f"string descriptor {index} is malformed: {bytes(reply[:16]).hex(' ')}"
        )
    return bytes(reply[2 : reply[0]])


def check_languages(handle: UsbHandle, timeout: float) -> None:
    """The language table must offer US English, in which the strings are read."""
    body = read_string_descriptor(handle, LANGUAGE_TABLE_INDEX, 0, timeout)
    languages = struct.unpack(f"<{len(body) // 2}H", body[: len(body) & ~1])
    if LANGID_ENGLISH_US not in languages:
        raise DeviceProtocolError(
            "the camera's string descriptors are not in US English "
            f"(languages {', '.join(f'0x{language:04X}' for language in languages) or 'none'})"
        )


def read_string(handle: UsbHandle, index: int, timeout: float) -> str:
    """A string descriptor, decoded (UTF-16LE), in US English."""
    body = read_string_descriptor(handle, index, LANGID_ENGLISH_US, timeout)
    try:
        return body.decode("utf-16-le")
    except UnicodeDecodeError:
        raise DeviceProtocolError(
            f"string descriptor {index} is not UTF-16: {body[:32].hex(' ')}"
        ) from None


# -- the command channel ----------------------------------------------------------------------
Row = tuple[int, int, float]
"""One step of a register sequence: address, value, delay after it in seconds (0: none)."""


class CommandChannel:
    """Commands on EP 0x02 and their replies on EP 0x82, one round trip each, as both
    reference drivers do. ``serial`` names the camera in error messages."""

    def __init__(
        self, handle: UsbHandle, *, timeout: float, reply_length: int, serial: str | None
    ) -> None:
        self.handle = handle
        self.timeout = timeout
        self.reply_length = reply_length
        self.serial = serial

    def error(self, message: str) -> DeviceProtocolError:
        return DeviceProtocolError(message, serial=self.serial)

    def request(self, data: bytes) -> bytes:
        """Send one command and return its reply."""
        self.handle.bulk_write(COMMAND_OUT_ENDPOINT, data, self.timeout)
        return self.handle.bulk_read(COMMAND_IN_ENDPOINT, self.reply_length, self.timeout)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.handle.sleep(seconds)

    def _check_reply(self, request: bytes, reply: bytes, what: str) -> None:
        if len(reply) < FRAME_HEADER.size:
            raise self.error(f"{what}: the reply has {len(reply)} bytes")
        property, length = FRAME_HEADER.unpack_from(reply)
        expected = FRAME_HEADER.unpack_from(request)[0]
        if property & ERROR_FLAG:
            detail = ""
            if property == ERROR_FLAG:
                detail = " (unknown command)"
            elif len(reply) >= 20:
                detail = f" (error {struct.unpack_from('<I', reply, 16)[0]})"
            raise self.error(f"{what}: the camera reported a failure{detail}")
        if property != expected:
            raise self.error(
                f"{what}: the reply is for command 0x{property:08X}, not 0x{expected:08X}"
            )
        if length != len(reply) - FRAME_HEADER.size:
            raise self.error(
                f"{what}: the reply says {length} payload bytes but has "
                f"{len(reply) - FRAME_HEADER.size}"
            )

    def write(self, address: int, value: int) -> None:
        """Write a 32-bit register with a 20-byte frame; the reply must name the same device
        and address (OpenEB's check)."""
        request = REGISTER_FRAME.pack(
            PROPERTY_REGISTER | WRITE_FLAG, 12, SENSOR_DEVICE_ID, address, value
        )
        reply = self.request(request)
        what = f"writing 0x{value:08X} to register 0x{address:04X}"
        self._check_reply(request, reply, what)
        if len(reply) < 16 or reply[8:16] != request[8:16]:
            raise self.error(f"{what}: the reply names another register: {reply.hex(' ')}")

    def read(self, address: int) -> int:
        """Read a 32-bit register: the reply's first 16 bytes echo the request, then the
        value."""
        request = REGISTER_FRAME.pack(PROPERTY_REGISTER, 12, SENSOR_DEVICE_ID, address, 1)
        reply = self.request(request)
        what = f"reading register 0x{address:04X}"
        self._check_reply(request, reply, what)
        if len(reply) < REGISTER_FRAME_LENGTH or reply[:16] != request[:16]:
            raise self.error(f"{what}: the reply does not echo the request: {reply.hex(' ')}")
        value: int = struct.unpack_from("<I", reply, 16)[0]
        return value

    def legacy_write(self, address: int, value: int) -> None:
        """Write a 32-bit register with the 12-byte legacy command (0x56); its reply is read
        and ignored, as by ND."""
        self.request(LEGACY_WRITE_FRAME.pack(LEGACY_WRITE, address, value))

    def run(self, rows: Iterable[Row], *, legacy: bool = False) -> None:
        """Write a register sequence with its delays."""
        write = self.legacy_write if legacy else self.write
        for address, value, delay in rows:
            write(address, value)
            self.sleep(delay)


# -- registers shared by the IMX636 and the Gen4.1 ---------------------------------------------
ROI_CTRL = 0x0004
ROI_CTRL_FIXED = 0x1E000A << 11
"""Bits 11..31 of RoiCtrl, always written as 0x1E000A."""
ROI_TD_ENABLE = 1 << 1
ROI_TD_SHADOW_TRIGGER = 1 << 5
"""Latches the x and y mask words just written."""
ROI_TD_RONI_N_EN = 1 << 6
"""1: a pixel is off if its column or its row is masked; 0: only if both are [I]."""
ROI_TD_RSTN = 1 << 10
ANALOG_CONTROL = 0x002C
ANALOG_STOP = 0x0022C324
ANALOG_START = 0x0022C724
SPARE0 = 0x0018
TD_ROI_X = 0x2000
TD_ROI_Y = 0x4000
X_MASK_WORDS = 40
Y_MASK_WORDS = 23
Y_LAST_WORD_FILL = 0x00FF0000
"""Bits 16..23 of the last y word are written as ones and 24..31 as zeros (ND) [R]."""
EDF_PIPELINE_CONTROL = 0x7000
EDF_RESERVED_7004 = 0x7004
READOUT_CTRL = 0x9000
TIME_BASE_CTRL = 0x9008
RO_CTRL = 0x9028
RO_CTRL_OUTPUT_DISABLE = 1 << 1
MIPI_CONTROL = 0xB000
BGEN_CTRL = 0x1100


def roi_ctrl(*, intersection: bool, latch: bool, running: bool) -> int:
    """RoiCtrl: td_enable always; td_roni_n_en unless ``intersection``; the shadow trigger
    when ``latch``; td_rstn when ``running`` (0 during open, 1 once started)."""
    value = ROI_CTRL_FIXED | ROI_TD_ENABLE
    if not intersection:
        value |= ROI_TD_RONI_N_EN
    if latch:
        value |= ROI_TD_SHADOW_TRIGGER
    if running:
        value |= ROI_TD_RSTN
    return value


ROI_CTRL_STOP = roi_ctrl(intersection=False, latch=False, running=False)  # 0xF0005042


def x_mask_words(columns: Collection[int]) -> tuple[int, ...]:
    """The 40 TdRoiX words: bit i of word k masks column 32k + i."""
    words = [0] * X_MASK_WORDS
    for column in columns:
        words[column >> 5] |= 1 << (column & 31)
    return tuple(words)


def y_mask_words(rows: Collection[int], height: int = SENSOR_HEIGHT) -> tuple[int, ...]:
    """The 23 TdRoiY words: rows in reverse order, bit i of word k masks row
    ``height - 1 - (32k + i)`` (ND; OpenEB does not reverse them, usb-sequences.md §3.13
    item 11, unresolved [I]); the last word's bits 16..23 are set."""
    words = [0] * Y_MASK_WORDS
    for row in rows:
        n = height - 1 - row
        words[n >> 5] |= 1 << (n & 31)
    words[-1] |= Y_LAST_WORD_FILL
    return tuple(words)


def mask_indices(values: Iterable[int], limit: int, name: str) -> tuple[int, ...]:
    """``values`` as a sorted tuple of distinct indices in 0..limit-1, else
    ConfigurationError."""
    try:
        result = sorted({operator.index(value) for value in values})
    except TypeError:
        raise ConfigurationError(f"{name} must be a collection of integers") from None
    outside = [value for value in result if not 0 <= value < limit]
    if outside:
        raise ConfigurationError(f"{name} holds {outside[:5]}, outside 0..{limit - 1}")
    return tuple(result)


# -- biases -----------------------------------------------------------------------------------
BIAS_IDAC_MASK = 0xFF


def bias_word(
    value: int,
    *,
    vdac: int = 0,
    buf_stg: int = 1,
    ibtype: int = 0,
    mux_sel: int = 0,
    mux_en: int = 1,
    vdac_en: int = 0,
    buf_en: int = 1,
    idac_en: int = 1,
    single: int = 1,
) -> int:
    """A bias register: idac_ctl (bits 0..7) = ``value``, vdac_ctl (8..15), buf_stg (16..18),
    ibtype_sel (19), mux_sel (20), mux_en (21), vdac_en (22), buf_en (23), idac_en (24),
    single (28). The defaults give the EVK4's 0x11A100VV."""
    return (
        (value & 0xFF)
        | (vdac & 0xFF) << 8
        | (buf_stg & 0x7) << 16
        | (ibtype & 1) << 19
        | (mux_sel & 1) << 20
        | (mux_en & 1) << 21
        | (vdac_en & 1) << 22
        | (buf_en & 1) << 23
        | (idac_en & 1) << 24
        | (single & 1) << 28
    )


# -- event-rate controller (usb-sequences.md §3.6, §4.3) --------------------------------------
ERC_RESERVED_6000 = 0x6000
ERC_IDLE = 0x00155400
"""0x6000 with the ERC mode bits at 0 while programming. The upper bits look like a
hardware read-back in ND [I]."""
ERC_RUNNING = 0x00155401
ERC_IN_DROP_RATE_CONTROL = 0x6004
ERC_REFERENCE_PERIOD = 0x6008
ERC_TARGET_EVENT_RATE = 0x600C
ERC_ENABLE = 0x6028
ERC_ENABLE_ON = 0x3
ERC_ENABLE_OFF = 0x2
ERC_RESERVED_602C = 0x602C
ERC_TABLE = 0x6800
ERC_TABLE_WORDS = 230
ERC_TABLE_VALUE = 0x08080808
ERC_T_DROP_LUT = 0x6400
ERC_T_DROP_LUT_WORDS = 256
ERC_T_DROPPING_CONTROL = 0x6050
ERC_H_DROPPING_CONTROL = 0x6060
ERC_V_DROPPING_CONTROL = 0x6070
REFERENCE_PERIOD_BITS = 10
TARGET_EVENT_RATE_BITS = 22


@dataclass(frozen=True)
class RateLimiter:
    """The event-rate controller: at most ``maximum_events_per_period`` events in each
    ``reference_period_us`` (a 10-bit field, 1–1023 µs; the ND README suggests at most 200)
    and the excess dropped by the camera. ``maximum_events_per_period`` is a 22-bit field
    (1–4194303)."""

    reference_period_us: int = 200
    maximum_events_per_period: int = 4000

    def __post_init__(self) -> None:
        for name, bits in (
            ("reference_period_us", REFERENCE_PERIOD_BITS),
            ("maximum_events_per_period", TARGET_EVENT_RATE_BITS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"RateLimiter.{name} must be an integer, not {value!r}")
            if not 1 <= value < 1 << bits:
                raise ConfigurationError(
                    f"RateLimiter.{name} must lie in 1..{(1 << bits) - 1} (a {bits}-bit field), "
                    f"not {value}"
                )


def program_erc(
    channel: CommandChannel,
    limiter: RateLimiter | None,
    *,
    legacy: bool,
    table_closed: int | None,
) -> None:
    """The ERC block E1..E13 (ND). ``table_closed`` is the value written to 0x602C after the
    230-word table; None reads 0x602C and clears only bit 0 (usb-sequences.md §3.13 item 4:
    ND's 0x2 looks like that read-modify-write on real hardware [I])."""
    write = channel.legacy_write if legacy else channel.write
    write(ERC_RESERVED_6000, ERC_IDLE)
    write(ERC_IN_DROP_RATE_CONTROL, 1 if limiter else 0)
    if limiter is not None:
        write(ERC_REFERENCE_PERIOD, limiter.reference_period_us & 0x3FF)
        write(ERC_TARGET_EVENT_RATE, limiter.maximum_events_per_period & 0x3FFFFF)
    write(ERC_ENABLE, ERC_ENABLE_ON if limiter else ERC_ENABLE_OFF)
    write(ERC_RESERVED_602C, 1)
    for k in range(ERC_TABLE_WORDS):
        write(ERC_TABLE + 4 * k, ERC_TABLE_VALUE)
    if table_closed is None:
        table_closed = channel.read(ERC_RESERVED_602C) & ~1
    write(ERC_RESERVED_602C, table_closed)
    for k in range(ERC_T_DROP_LUT_WORDS):
        write(ERC_T_DROP_LUT + 4 * k, ((2 * k + 1) << 16) | (2 * k))
    write(ERC_T_DROPPING_CONTROL, 1 if limiter else 0)
    write(ERC_H_DROPPING_CONTROL, 0)
    write(ERC_V_DROPPING_CONTROL, 0)
    write(ERC_RESERVED_6000, ERC_RUNNING)


def changed_words(
    base: int, old: Sequence[int] | None, new: Sequence[int]
) -> list[tuple[int, int]]:
    """(address, value) of the words of ``new`` that differ from ``old`` (all when None)."""
    return [(base + 4 * k, value) for k, value in enumerate(new) if old is None or old[k] != value]


def write_row_column_masks(write: Callable[[int, int], None], previous: Any, config: Any) -> None:
    """Write the x/y mask words that changed (all when ``previous`` is None) and, if any did
    or the mask mode changed, latch the ROI (td_rstn = 0 during open, 1 while running)."""
    masks = changed_words(
        TD_ROI_X,
        None if previous is None else x_mask_words(previous.x_mask),
        x_mask_words(config.x_mask),
    ) + changed_words(
        TD_ROI_Y,
        None if previous is None else y_mask_words(previous.y_mask),
        y_mask_words(config.y_mask),
    )
    mode_changed = (
        previous is not None and previous.mask_intersection_only != config.mask_intersection_only
    )
    if masks or mode_changed:
        for address, value in masks:
            write(address, value)
        write(
            ROI_CTRL,
            roi_ctrl(
                intersection=config.mask_intersection_only, latch=True, running=previous is not None
            ),
        )
