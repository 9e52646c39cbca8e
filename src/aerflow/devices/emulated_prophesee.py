"""Emulated Prophesee cameras: the EVK4 (and its clones) and the EVK3 HD, on the USB side.

Each keeps a register file, answers the type request, the string descriptors and every
command frame the drivers send (a malformed one stalls, as :class:`EmulatedStall`), and plays
EVT 3.0 bytes on the data endpoint 0x81 while the host has the output started: the time base
enabled (TimeBaseCtrl bit 0), the readout output not disabled (RoCtrl bit 1 clear) and MIPI
on (MipiControl bit 0). Enabling the time base rewinds the recording (the camera's clock
restarts).

``log`` records, in order:

- ``("C", bmRequestType, bRequest, wValue, wIndex, wLength)`` for each control request
  (``wLength`` is the data for a control write);
- ``("W", address, value)`` for each register write and ``("R", address)`` for each read;
- ``("B", bytes)`` for every other command frame on EP 0x02 (serial, version, legacy read...);
- ``("drain", n)`` for each host read of the data endpoint outside streaming (n bytes
  returned), and ``("sleep", seconds)`` for the host's delays.

What is played: a Prophesee RAW EVT 3.0 recording as its data bytes (header stripped); any
other file aerflow reads, encoded with the EVT 3.0 writer's encoder; None, three seconds of
the synthetic sensor at 1280 × 720. The bytes are prepared up front (the synthetic ones at
the first read of the data endpoint), so each data-endpoint read is a slice. With
``loop=True`` the bytes are replayed for ever, each pass shifted in time (only its TIME_HIGH
words are rewritten) so that the clock keeps running forward.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import mmap
import os
import struct
import threading
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from ..errors import DeviceTimeoutError
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, concatenate_packets
from ._prophesee import (
    COMMAND_IN_ENDPOINT,
    COMMAND_OUT_ENDPOINT,
    DATA_ENDPOINT,
    ERROR_FLAG,
    FRAME_HEADER,
    LANGID_ENGLISH_US,
    LEGACY_READ,
    LEGACY_WRITE,
    LEGACY_WRITE_FRAME,
    MIPI_CONTROL,
    PROPERTY_BUILD_DATE,
    PROPERTY_DEVICE_COMPATIBLE,
    PROPERTY_DEVICE_COUNT,
    PROPERTY_DEVICE_NAME,
    PROPERTY_FPGA_STATE,
    PROPERTY_REGISTER,
    PROPERTY_RELEASE_VERSION,
    PROPERTY_SERIAL,
    RO_CTRL,
    RO_CTRL_OUTPUT_DISABLE,
    SENSOR_DEVICE_ID,
    SENSOR_HEIGHT,
    SENSOR_WIDTH,
    STRING_DESCRIPTOR_TYPE,
    TIME_BASE_CTRL,
    TYPE_EVK3_HD,
    TYPE_IMX636,
    TYPE_IMX646,
    TYPE_REQUEST,
    WRITE_FLAG,
    frame,
)
from .emulation import EmulatedDevice, EmulatedStall, StreamChunk, warn_outside
from .usb import (
    CONTROL_IN_STANDARD,
    CONTROL_IN_VENDOR,
    GET_DESCRIPTOR,
    UsbDeviceInfo,
)

__all__ = ["PRODUCTS", "EmulatedEvk3Hd", "EmulatedEvk4"]

log = logging.getLogger(__name__)

EMULATED_BUS = 0
_addresses = itertools.count(1)

# -- what an emulated board answers [I: the reference drivers ignore these replies] -------------
RELEASE_VERSION = 0x00030900
"""Above 0x00030800, the lowest version OpenEB accepts for EVK3/EVK4 boards."""
BUILD_DATE = 0x0000000065A0B100
FPGA_STATE = 0
DEVICE_NAME = b"CCam5 Imx636 Event-Based Camera\0"
DEVICE_COMPATIBLE = b"psee,ccam5_imx636\0psee,ccam5_gen42\0"
BCD_DEVICE = 0x0309
SERIAL_STRING_INDEX = 3
MAXIMUM_READ_COUNT = 256
"""Most registers one read frame may ask for here."""
ERC_602C = 0x602C
ERC_602C_READS_AS_ONE = 0x2
"""[I] Bit 1 of 0x602C reads back as 1, the hardware behaviour that ND's literal 0x2 after the
ERC table suggests (usb-sequences.md §3.13 item 4)."""

LIFO_CTRL = 0x000C
LIFO_CTRL_COUNTING = 1 << 2
LIFO_STATUS = 0x0010
LIFO_STATUS_VALID = 1 << 29
ADC_CONTROL = 0x004C
ADC_CONTROL_RUN = 0x7
"""adc_en, adc_clk_en and adc_start: a conversion starts."""
ADC_STATUS = 0x0050
ADC_STATUS_DONE = 1 << 11

FACTORY_BIAS_VALUES: Mapping[int, int] = {
    0x1000: 0x7C,
    0x1004: 0x53,
    0x100C: 0x00,
    0x1010: 0x66,
    0x1014: 0x4D,
    0x1018: 0x49,
    0x101C: 0x5B,
    0x1020: 0x14,
    0x1040: 0x8C,
    0x1044: 0x7C,
    0x1048: 0x94,
    0x104C: 0x74,
    0x1050: 0x51,
}
"""The EVK4's factory bias values, here ND 0.16's absolute defaults; the registers read
0x11A100VV."""

SYNTHETIC_DURATION_US = 3_000_000
SYNTHETIC_RATE = 1_000_000.0
PLAYBACK_BLOCK = 1 << 25
"""Bytes copied (and their TIME_HIGH words shifted) at a time for a looped pass."""


@dataclass(frozen=True)
class Product:
    """What an emulated EVK4-family board says about itself."""

    vendor_id: int
    product_id: int
    manufacturer: str
    type_byte: int


PRODUCTS: Mapping[str, Product] = {
    "EVK4": Product(0x04B4, 0x00F5, "Prophesee", TYPE_IMX636),
    "SilkyEvCam HD v03.09.00C": Product(0x31F7, 0x0003, "CenturyArks", TYPE_IMX636),
    "SilkyEvCam HD Lite v03.09.01C": Product(0x31F7, 0x0004, "CenturyArks", TYPE_IMX646),
    "UE-39B0XCP": Product(0x1409, 0x8E00, "IDS Imaging Development Systems GmbH", TYPE_IMX636),
}
"""The EVK4 family by product string. [I] Which of the driver's ids each product uses is not
in the sources: the EVK4 gets 04B4:00F5, the SilkyEvCam HD 31F7:0003 and the HD Lite
31F7:0004."""
EVK3_HD = Product(0x04B4, 0x00F4, "Prophesee", TYPE_EVK3_HD)
"""[I] The EVK3 HD's id among the two it shares with the EVK4, and its strings."""
EVK3_HD_PRODUCT = "EVK3"


# -- the data endpoint ----------------------------------------------------------------------------
@nb.njit(nogil=True, cache=True)
def _time_high_index(data: Any) -> tuple[Any, Any]:
    """Byte offsets of the TIME_HIGH words in little-endian EVT 3.0 ``data`` (uint8) and the
    time each sets (µs, its low 12 bits 0), with the decoder's wrap rule (a drop of 2048 or
    more is a counter loop)."""
    n = data.size // 2
    count = 0
    for i in range(n):
        if (data[2 * i + 1] >> 4) == 0x8:
            count += 1
    positions = np.empty(count, np.int64)
    times = np.empty(count, np.int64)
    k = 0
    loop = 0
    high = -1
    for i in range(n):
        upper = np.int64(data[2 * i + 1])
        if (upper >> 4) == 0x8:
            value = ((upper & 0xF) << 8) | np.int64(data[2 * i])
            if high >= 0 and high >= value + 2048:
                loop += 1
            high = value
            positions[k] = 2 * i
            times[k] = (loop << 24) | (value << 12)
            k += 1
    return positions, times


class _Playback:
    """EVT 3.0 bytes played in slices, once or looped; each slice's end time comes from an
    index of the TIME_HIGH words (so it is exact to a TIME_HIGH step, 4096 µs).

    A looped pass starts at the first TIME_HIGH and is shifted by a whole number of TIME_HIGH
    steps (4096 µs) past the end of the previous one, by rewriting its TIME_HIGH words in a
    copy; the other words are unchanged."""

    def __init__(self, data: npt.NDArray[np.uint8], *, loop: bool, keep: Any = None) -> None:
        self._data = data[: data.size & ~1]
        self._view = self._data.data
        self._keep = keep  # a mapping the data lives in
        self._positions, self._times = _time_high_index(self._data)
        self._position_list = self._positions.tolist()
        self._time_list = self._times.tolist()
        if self._positions.size:
            self._loop_start = int(self._positions[0])
            first = int(self._times[0]) >> 12
            last = int(self._times[-1]) >> 12
            self._period = (last - first + 2) << 12
        else:
            self._loop_start = 0
            self._period = 0
        self._loop = loop and self._loop_start < self._data.size
        self.rewind()

    @property
    def size(self) -> int:
        return int(self._data.size)

    def rewind(self) -> None:
        self._pass = 0
        self._offset = 0
        self._block: memoryview | None = None
        self._block_start = self._block_end = 0

    def _make_block(self, start: int) -> None:
        end = min(start + PLAYBACK_BLOCK, self._data.size)
        block = self._data[start:end].copy()
        first = int(np.searchsorted(self._positions, start))
        stop = int(np.searchsorted(self._positions, end))
        where = self._positions[first:stop] - start
        shift = ((self._pass * self._period) >> 12) & 0xFFF
        value = ((block[where + 1].astype(np.int64) & 0xF) << 8) | block[where]
        value = (value + shift) & 0xFFF
        block[where] = value & 0xFF
        block[where + 1] = 0x80 | (value >> 8)
        self._block = block.data
        self._block_start, self._block_end = start, end

    def next(self, length: int) -> StreamChunk | None:
        size = self._data.size
        if self._offset >= size:
            if not self._loop:
                return None
            self._pass += 1
            self._offset = self._loop_start
            self._block = None
        start = self._offset
        if self._pass == 0:
            end = min(start + length, size)
            data = self._view[start:end]
        else:
            if self._block is None or start >= self._block_end:
                self._make_block(start)
            assert self._block is not None
            end = min(start + length, self._block_end)
            data = self._block[start - self._block_start : end - self._block_start]
        self._offset = end
        # bisect on lists: a NumPy call per 128 KiB transfer costs the player more.
        index = bisect.bisect_right(self._position_list, end - 2) - 1
        t_end = None if index < 0 else self._time_list[index] + self._pass * self._period
        return StreamChunk(data, t_end)


def _encode(events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """EVT 3.0 bytes of ``events`` and ``triggers`` (in time order), with the EVT 3.0 writer's
    encoder, times kept as they are (less a whole number of seconds when they are too large
    for the counters, as the writer does)."""
    from ..formats._base import whole_second_origin
    from ..formats.evt3 import encode, new_encoder_state

    first = min(
        int(events["t"][0]) if len(events) else 1 << 62,
        int(triggers["t"][0]) if len(triggers) else 1 << 62,
    )
    origin = whole_second_origin(first, 1 << 34) if first < 1 << 62 else 0
    last = max(
        int(events["t"][-1]) if len(events) else 0,
        int(triggers["t"][-1]) if len(triggers) else 0,
    )
    span = max(last - origin, 0)
    words, bad = encode(events, triggers, origin, span, SENSOR_WIDTH, new_encoder_state())
    if bad >= 0:
        raise ValueError(f"cannot encode item {bad} of the recording in EVT 3.0")
    return words.view(np.uint8)


def _in_order(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if len(array) > 1 and np.any(np.diff(array["t"].astype(np.int64)) < 0):
        return array[np.argsort(array["t"], kind="stable")]
    return array


def _recording(path: str, loop: bool) -> _Playback:
    """A recording's EVT 3.0 bytes: a RAW EVT 3.0 file's own data, or any other file
    decoded and encoded."""
    from .. import api
    from ..formats.raw import read_prophesee_header
    from ..registry import detect

    if detect(path).name == "evt3":
        with open(path, "rb") as file:
            offset = read_prophesee_header(file, path).data_offset
            size = os.fstat(file.fileno()).st_size
            if size <= offset:
                return _Playback(np.empty(0, np.uint8), loop=loop)
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        data = np.frombuffer(mapping, np.uint8, offset=offset)
        return _Playback(data, loop=loop, keep=mapping)
    with api.open(path) as reader:
        packet = concatenate_packets(list(reader))
    events = packet.events.astype(EVENTS_DTYPE, copy=False)
    triggers = packet.triggers.astype(TRIGGERS_DTYPE, copy=False)
    inside = (events["x"] < SENSOR_WIDTH) & (events["y"] < SENSOR_HEIGHT)
    if not inside.all():
        warn_outside(path, int((~inside).sum()), len(events), SENSOR_WIDTH, SENSOR_HEIGHT)
        events = events[inside]
    valid = triggers["id"] <= 0xF
    if not valid.all():
        log.warning("%s: triggers with ids above 15 are not played (EVT 3.0 ids are 4-bit)", path)
        triggers = triggers[valid]
    return _Playback(_encode(_in_order(events), _in_order(triggers)), loop=loop)


def _synthetic(loop: bool) -> _Playback:
    from ..synthetic import SyntheticSensor

    sensor = SyntheticSensor(
        SENSOR_WIDTH,
        SENSOR_HEIGHT,
        rate=SYNTHETIC_RATE,
        duration=SYNTHETIC_DURATION_US,
        packet_duration=SYNTHETIC_DURATION_US,
    )
    events = concatenate_packets(list(sensor)).events
    return _Playback(_encode(events, np.empty(0, TRIGGERS_DTYPE)), loop=loop)


# -- the boards -----------------------------------------------------------------------------------
def _serial(serial: str | None, address: int) -> int:
    if serial is None:
        return 0x00050000 + address
    try:
        value = int(serial, 16)
    except ValueError:
        value = -1
    if not 0 <= value <= 0xFFFFFFFF or len(serial) > 8:
        raise ValueError(f"an emulated Prophesee serial is 1 to 8 hex digits, not {serial!r}")
    return value


def _string_descriptor(text: str) -> bytes:
    body = text.encode("utf-16-le")
    return bytes((len(body) + 2, STRING_DESCRIPTOR_TYPE)) + body


class _EmulatedProphesee(EmulatedDevice):
    """What the EVK4 and the EVK3 HD share: EP0, the register file, replies and playback."""

    def __init__(
        self,
        recording: str | os.PathLike[str] | None,
        *,
        serial: str | None,
        loop: bool,
        product: Product,
        product_string: str,
        type_byte: int | None,
        manufacturer: str | None,
    ) -> None:
        address = next(_addresses)
        super().__init__(
            UsbDeviceInfo(
                product.vendor_id,
                product.product_id,
                EMULATED_BUS,
                address,
                bcd_device=BCD_DEVICE,
                serial_index=SERIAL_STRING_INDEX,
                speed="super",
            )
        )
        self.serial_number = _serial(serial, address)
        self.type_byte = product.type_byte if type_byte is None else type_byte
        self.manufacturer = product.manufacturer if manufacturer is None else manufacturer
        self.product = product_string
        self.registers: dict[int, int] = {}
        self._replies: collections.deque[bytes] = collections.deque()
        self._loop = loop
        self._data_lock = threading.Lock()
        self._streaming = False
        self._playback: _Playback | None = None
        if recording is not None:
            self._playback = _recording(os.fspath(recording), loop)

    @property
    def serial(self) -> str:
        """The serial the driver reads (%08X)."""
        return f"{self.serial_number:08X}"

    @property
    def streaming(self) -> bool:
        """Whether the host has the camera's output started."""
        return self._streaming

    # -- EP0 ----------------------------------------------------------------------------------
    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        self.log.append(("C", request_type, request, value, index, length))
        if request_type == CONTROL_IN_VENDOR and request == TYPE_REQUEST:
            if value != 0 or index != 0:
                raise EmulatedStall("the type request takes wValue 0 and wIndex 0")
            return bytes((self.type_byte, 0))
        if request_type == CONTROL_IN_STANDARD and request == GET_DESCRIPTOR:
            kind, number = value >> 8, value & 0xFF
            if kind != STRING_DESCRIPTOR_TYPE:
                raise EmulatedStall(f"descriptor type {kind} is not emulated")
            if number == 0:
                return bytes((4, STRING_DESCRIPTOR_TYPE)) + struct.pack("<H", LANGID_ENGLISH_US)
            if index != LANGID_ENGLISH_US:
                raise EmulatedStall(f"no strings in language 0x{index:04X}")
            strings = {1: self.manufacturer, 2: self.product, SERIAL_STRING_INDEX: self.serial}
            if number not in strings:
                raise EmulatedStall(f"no string descriptor {number}")
            return _string_descriptor(strings[number])
        raise EmulatedStall(f"control request 0x{request_type:02X}/0x{request:02X}")

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        self.log.append(("C", request_type, request, value, index, data))
        raise EmulatedStall(f"control request 0x{request_type:02X}/0x{request:02X}")

    # -- command channel ----------------------------------------------------------------------
    def bulk_write(self, endpoint: int, data: bytes) -> None:
        if endpoint != COMMAND_OUT_ENDPOINT:
            raise EmulatedStall(f"no bulk OUT endpoint 0x{endpoint:02X}")
        reply = self._command(bytes(data))
        if reply is not None:
            self._replies.append(reply)

    def bulk_read(self, endpoint: int, length: int) -> bytes:
        if endpoint == COMMAND_IN_ENDPOINT:
            if not self._replies:
                raise DeviceTimeoutError("no reply is waiting on EP 0x82")
            return self._replies.popleft()
        if endpoint == DATA_ENDPOINT:
            data = b""
            if self._streaming:
                chunk = self._next(length)
                data = b"" if chunk is None else bytes(chunk.data)
            self.log.append(("drain", len(data)))
            return data
        raise EmulatedStall(f"no bulk IN endpoint 0x{endpoint:02X}")

    @abstractmethod
    def _command(self, data: bytes) -> bytes | None:
        """The model's reply to a command frame on the control endpoint (None: no reply)."""

    def _information(self, data: bytes) -> bytes | None:
        """The reply to a non-register frame, or None when it is not one of them."""
        if len(data) < FRAME_HEADER.size:
            return None
        property, length = FRAME_HEADER.unpack_from(data)
        if length != len(data) - FRAME_HEADER.size:
            raise EmulatedStall(f"the frame says {length} payload bytes but has {len(data) - 8}")
        empty = {
            PROPERTY_SERIAL: FRAME_HEADER.pack(PROPERTY_SERIAL, 8)
            + struct.pack("<Q", self.serial_number),
            PROPERTY_RELEASE_VERSION: frame(PROPERTY_RELEASE_VERSION, RELEASE_VERSION),
            PROPERTY_BUILD_DATE: FRAME_HEADER.pack(PROPERTY_BUILD_DATE, 8)
            + struct.pack("<Q", BUILD_DATE),
            PROPERTY_FPGA_STATE: frame(PROPERTY_FPGA_STATE, FPGA_STATE),
            PROPERTY_DEVICE_COUNT: frame(PROPERTY_DEVICE_COUNT, 1),
        }
        strings = {
            PROPERTY_DEVICE_NAME: DEVICE_NAME,
            PROPERTY_DEVICE_COMPATIBLE: DEVICE_COMPATIBLE,
        }
        if property in empty:
            if length != 0:
                raise EmulatedStall(f"command 0x{property:X} takes no payload")
            self.log.append(("B", data))
            return empty[property]
        if property in strings:
            if length != 4:
                raise EmulatedStall(f"command 0x{property:X} takes a device id")
            self.log.append(("B", data))
            (device,) = struct.unpack_from("<I", data, 8)
            if device != SENSOR_DEVICE_ID:
                return frame(property | ERROR_FLAG, device, 0, 1)
            body = struct.pack("<I", device) + strings[property]
            return FRAME_HEADER.pack(property, len(body)) + body
        return None

    # -- registers ----------------------------------------------------------------------------
    def write_register(self, address: int, value: int) -> None:
        """A register write from the host: logged, stored, and acted on."""
        self.log.append(("W", address, value))
        before = self.registers.get(address, 0)
        self.registers[address] = value
        if address == TIME_BASE_CTRL and value & 1 and not before & 1:
            self._restart_clock()
        if address in (RO_CTRL, TIME_BASE_CTRL, MIPI_CONTROL):
            registers = self.registers
            self._streaming = (
                registers.get(RO_CTRL, 0) & RO_CTRL_OUTPUT_DISABLE == 0
                and registers.get(TIME_BASE_CTRL, 0) & 1 == 1
                and registers.get(MIPI_CONTROL, 0) & 1 == 1
            )

    def read_register(self, address: int) -> int:
        """A register read from the host: logged, answered from the register file."""
        self.log.append(("R", address))
        return self.registers.get(address, 0)

    def _restart_clock(self) -> None:
        """The time base starts: play from the beginning."""
        with self._data_lock:
            if self._playback is not None:
                self._playback.rewind()

    # -- data endpoint ------------------------------------------------------------------------
    def _next(self, length: int) -> StreamChunk | None:
        with self._data_lock:
            if self._playback is None:  # the synthetic events, made when first asked for
                self._playback = _synthetic(self._loop)
            return self._playback.next(length)

    def stream_chunk(self, length: int) -> StreamChunk | None:
        if not self._streaming:
            return StreamChunk(b"")
        return self._next(length)


class EmulatedEvk4(_EmulatedProphesee):
    """An emulated EVK4 (or clone) speaking the 20-byte register frames.

    Options: ``product`` ("EVK4", "SilkyEvCam HD v03.09.00C", "SilkyEvCam HD Lite
    v03.09.01C" or "UE-39B0XCP") sets the USB ids, manufacturer string and type byte
    together; ``type_byte`` and ``manufacturer`` override them (to model other boards);
    ``factory_biases`` maps bias register addresses to the words they read (default
    0x11A100VV with ND 0.16's values); ``temperature_celsius`` is what the thermometer
    measures and ``illuminance`` the illuminance counter; ``adc_ready`` False makes the
    thermometer never finish.
    """

    def __init__(
        self,
        recording: str | os.PathLike[str] | None = None,
        *,
        serial: str | None = None,
        loop: bool = False,
        product: str = "EVK4",
        type_byte: int | None = None,
        manufacturer: str | None = None,
        factory_biases: Mapping[int, int] | None = None,
        temperature_celsius: float = 35.0,
        illuminance: int = 12345,
        adc_ready: bool = True,
    ) -> None:
        if product not in PRODUCTS:
            raise ValueError(
                f"unknown EVK4-family product {product!r} (known: {', '.join(PRODUCTS)})"
            )
        super().__init__(
            recording,
            serial=serial,
            loop=loop,
            product=PRODUCTS[product],
            product_string=product,
            type_byte=type_byte,
            manufacturer=manufacturer,
        )
        for address, value in FACTORY_BIAS_VALUES.items():
            self.registers[address] = 0x11A10000 | value
        self.registers.update(factory_biases or {})
        self.temperature_celsius = temperature_celsius
        self.illuminance = illuminance
        self.adc_ready = adc_ready

    def _command(self, data: bytes) -> bytes | None:
        if len(data) < FRAME_HEADER.size:
            raise EmulatedStall(f"a command frame has at least 8 bytes, not {len(data)}")
        property, length = FRAME_HEADER.unpack_from(data)
        if length != len(data) - FRAME_HEADER.size:
            raise EmulatedStall(f"the frame says {length} payload bytes but has {len(data) - 8}")
        if property in (PROPERTY_REGISTER, PROPERTY_REGISTER | WRITE_FLAG):
            if length < 12 or length % 4:
                raise EmulatedStall(f"a register frame has 12 or more payload bytes, not {length}")
            device, address, *values = struct.unpack_from(f"<{length // 4}I", data, 8)
            if device != SENSOR_DEVICE_ID:
                return frame(property | ERROR_FLAG, device, address, 1)
            if property & WRITE_FLAG:
                for k, value in enumerate(values):
                    self.write_register(address + 4 * k, value)
                return data
            if len(values) != 1 or not 1 <= values[0] <= MAXIMUM_READ_COUNT:
                raise EmulatedStall("a register read frame holds one count, 1 to 256")
            read = [self.read_register(address + 4 * k) for k in range(values[0])]
            return frame(PROPERTY_REGISTER, device, address, *read)
        reply = self._information(data)
        if reply is not None:
            return reply
        self.log.append(("B", data))
        return frame(ERROR_FLAG)  # "unknown command"

    def write_register(self, address: int, value: int) -> None:
        super().write_register(address, value)
        if address == ADC_CONTROL and value & ADC_CONTROL_RUN == ADC_CONTROL_RUN:
            raw = round((self.temperature_celsius + 56.0) / 0.19) & 0x3FF
            self.registers[ADC_STATUS] = raw | (ADC_STATUS_DONE if self.adc_ready else 0)

    def read_register(self, address: int) -> int:
        value = super().read_register(address)
        if address == LIFO_STATUS:
            if self.registers.get(LIFO_CTRL, 0) & LIFO_CTRL_COUNTING:
                return LIFO_STATUS_VALID | (self.illuminance & (LIFO_STATUS_VALID - 1))
            return 0
        if address == ERC_602C:
            return value | ERC_602C_READS_AS_ONE
        return value


class EmulatedEvk3Hd(_EmulatedProphesee):
    """An emulated EVK3 HD with a legacy firmware: registers are written with the 12-byte
    0x56 command (its reply echoes it [I]); the 20-byte register frames are not understood
    (they stall). ``type_byte`` overrides 0x30."""

    def __init__(
        self,
        recording: str | os.PathLike[str] | None = None,
        *,
        serial: str | None = None,
        loop: bool = False,
        type_byte: int | None = None,
    ) -> None:
        super().__init__(
            recording,
            serial=serial,
            loop=loop,
            product=EVK3_HD,
            product_string=EVK3_HD_PRODUCT,
            type_byte=type_byte,
            manufacturer=None,
        )

    def _command(self, data: bytes) -> bytes | None:
        if len(data) == LEGACY_WRITE_FRAME.size and data[:4] == struct.pack("<I", LEGACY_WRITE):
            _, address, value = LEGACY_WRITE_FRAME.unpack(data)
            self.write_register(address, value)
            return data
        if len(data) == 8 and data[:4] == struct.pack("<I", LEGACY_READ):
            self.log.append(("B", data))
            (address,) = struct.unpack_from("<I", data, 4)
            return data + struct.pack("<I", self.registers.get(address, 0))
        if len(data) == 8 and FRAME_HEADER.unpack(data)[0] in (
            PROPERTY_SERIAL,
            PROPERTY_FPGA_STATE,
        ):
            return self._information(data)
        raise EmulatedStall(f"command not understood by this firmware: {data[:16].hex(' ')}")
