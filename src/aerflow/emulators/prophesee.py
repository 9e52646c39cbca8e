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
words are rewritten) so that the clock keeps running forward (:mod:`.prophesee_playback`).

Every address, opcode and value the boards answer to comes from
:mod:`.prophesee_registers`, written from the protocol notes, not from the drivers.
"""

from __future__ import annotations

import collections
import itertools
import os
import struct
import threading
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from ..devices.usb import UsbDeviceInfo
from ..errors import DeviceTimeoutError
from .base import (
    GET_DESCRIPTOR,
    LANGID_US_ENGLISH,
    REQUEST_TYPE_STANDARD_IN,
    REQUEST_TYPE_VENDOR_IN,
    STRING_DESCRIPTOR,
    EmulatedDevice,
    EmulatedStall,
    StreamChunk,
    language_table,
    string_descriptor,
)
from .prophesee_playback import Playback, recording_playback, synthetic_playback
from .prophesee_registers import (
    ADC_CONTROL,
    ADC_CONTROL_RUN,
    ADC_STATUS,
    ADC_STATUS_DONE,
    BIAS_ADDRESSES,
    BIAS_WORD,
    COMMAND_IN_ENDPOINT,
    COMMAND_OUT_ENDPOINT,
    DATA_ENDPOINT,
    ERC_602C,
    ERC_602C_READS_AS_ONE,
    ERROR_FLAG,
    FACTORY_BIAS_VALUES,
    FRAME_HEADER,
    LEGACY_READ,
    LEGACY_WRITE,
    LEGACY_WRITE_FRAME,
    LIFO_CTRL,
    LIFO_CTRL_COUNTING,
    LIFO_STATUS,
    LIFO_STATUS_VALID,
    MIPI_CONTROL,
    MIPI_ON,
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
    TEMPERATURE_OFFSET,
    TEMPERATURE_STEP,
    TIME_BASE_CTRL,
    TIME_BASE_ENABLE,
    TYPE_EVK3_HD,
    TYPE_IMX636,
    TYPE_IMX646,
    TYPE_REQUEST,
    WRITE_FLAG,
    frame,
)

__all__ = ["PRODUCTS", "EmulatedEvk3Hd", "EmulatedEvk4"]

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

FACTORY_BIASES: Mapping[int, int] = dict(zip(BIAS_ADDRESSES, FACTORY_BIAS_VALUES, strict=True))
"""The EVK4's factory bias values, here ND 0.16's absolute defaults; the registers read
0x11A100VV."""


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
        self._playback: Playback | None = None
        if recording is not None:
            self._playback = recording_playback(os.fspath(recording), loop)

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
        if request_type == REQUEST_TYPE_VENDOR_IN and request == TYPE_REQUEST:
            if value != 0 or index != 0:
                raise EmulatedStall("the type request takes wValue 0 and wIndex 0")
            return bytes((self.type_byte, 0))
        if request_type == REQUEST_TYPE_STANDARD_IN and request == GET_DESCRIPTOR:
            kind, number = value >> 8, value & 0xFF
            if kind != STRING_DESCRIPTOR:
                raise EmulatedStall(f"descriptor type {kind} is not emulated")
            if number == 0:
                return language_table()
            if index != LANGID_US_ENGLISH:
                raise EmulatedStall(f"no strings in language 0x{index:04X}")
            strings = {1: self.manufacturer, 2: self.product, SERIAL_STRING_INDEX: self.serial}
            if number not in strings:
                raise EmulatedStall(f"no string descriptor {number}")
            return string_descriptor(strings[number])
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
        if address == TIME_BASE_CTRL and value & TIME_BASE_ENABLE and not before & TIME_BASE_ENABLE:
            self._restart_clock()
        if address in (RO_CTRL, TIME_BASE_CTRL, MIPI_CONTROL):
            registers = self.registers
            self._streaming = (
                registers.get(RO_CTRL, 0) & RO_CTRL_OUTPUT_DISABLE == 0
                and registers.get(TIME_BASE_CTRL, 0) & TIME_BASE_ENABLE != 0
                and registers.get(MIPI_CONTROL, 0) & MIPI_ON != 0
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
                self._playback = synthetic_playback(self._loop)
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
        for address, value in FACTORY_BIASES.items():
            self.registers[address] = BIAS_WORD | value
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
            raw = round((self.temperature_celsius - TEMPERATURE_OFFSET) / TEMPERATURE_STEP) & 0x3FF
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
