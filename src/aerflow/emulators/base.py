"""The USB side of a camera, modelled in Python, for tests and demos without hardware.

An :class:`EmulatedDevice` answers the same control and bulk requests as the real camera
(from a register file it keeps), records every operation the host makes in ``log``, and plays
a recording on its data endpoint while the host has it streaming. :mod:`aerflow.emulators.usb`
plugs emulated devices in beneath the :class:`~aerflow.devices.usb.UsbHandle` interface, so the
real drivers run unchanged against them.

The emulators take nothing from the drivers but that interface: each model answers from its
own register table, written from the protocol notes (``usb-devices.md``, ``usb-sequences.md``),
so that a wrong constant in a driver makes the driver fail against its emulator instead of
agreeing with itself.
"""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from ..devices.usb import UsbDeviceInfo
from ..errors import OutOfRangeWarning

__all__ = ["EmulatedDevice", "EmulatedStall", "StreamChunk", "warn_outside"]

# Standard USB (chapter 9 of the USB specification), as the protocol notes use it.
REQUEST_TYPE_VENDOR_IN = 0xC0
"""bmRequestType of a vendor request, device to host."""
REQUEST_TYPE_VENDOR_OUT = 0x40
"""bmRequestType of a vendor request, host to device."""
REQUEST_TYPE_STANDARD_IN = 0x80
"""bmRequestType of a standard request, device to host."""
GET_DESCRIPTOR = 0x06
STRING_DESCRIPTOR = 0x03
"""The descriptor type of string descriptors (wValue's high byte in GET_DESCRIPTOR)."""
LANGID_US_ENGLISH = 0x0409


def string_descriptor(text: str) -> bytes:
    """A string descriptor: its length, type 3, then ``text`` in UTF-16LE."""
    body = text.encode("utf-16-le")
    return bytes((len(body) + 2, STRING_DESCRIPTOR)) + body


def language_table() -> bytes:
    """String descriptor 0: the languages offered (US English only)."""
    return bytes((4, STRING_DESCRIPTOR)) + LANGID_US_ENGLISH.to_bytes(2, "little")


class EmulatedStall(Exception):
    """Raised by an emulated device for a request the real device would stall
    (unknown request, wrong length); the emulated handle reports it as a DeviceError."""


@dataclass(frozen=True)
class StreamChunk:
    """Bytes from the data endpoint and the device time (µs) reached at their end, when the
    emulator knows it (used to pace playback in real time)."""

    data: bytes | memoryview
    t_end: int | None = None


class EmulatedDevice(ABC):
    """One emulated camera.

    ``log`` lists what the host did, in order, as tuples whose first item names the
    operation; each model documents its own (for example ``("W", address, value)`` for a
    register write), and every model logs ``("sleep", seconds)`` for the host's delays.
    Tests compare it with the sequences of the protocol specification.

    All request methods are called with ``self.lock`` held by the emulated handle.
    """

    def __init__(self, info: UsbDeviceInfo) -> None:
        self.info = info
        self.log: list[tuple[Any, ...]] = []
        self.lock = threading.RLock()
        self.unplugged = False

    @abstractmethod
    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes: ...

    @abstractmethod
    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None: ...

    @abstractmethod
    def bulk_write(self, endpoint: int, data: bytes) -> None: ...

    @abstractmethod
    def bulk_read(self, endpoint: int, length: int) -> bytes:
        """A reply on a command endpoint, or a blocking read of the data endpoint (the
        drain before start), which returns b"" when the device is not streaming."""

    def clear_halt(self, endpoint: int) -> None:
        self.log.append(("clear_halt", endpoint))

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))

    @abstractmethod
    def stream_chunk(self, length: int) -> StreamChunk | None:
        """The next at most ``length`` bytes of the data endpoint.

        Returns an empty chunk while the host has not started the device's output, and
        None once the recording has been played entirely (the emulated stream then ends
        with TransferStatus.END_OF_RECORDING). Called without ``self.lock`` on the
        emulated transport's thread; must be fast (slices of prepared bytes)."""

    def unplug(self) -> None:
        """Model a cable pulled out: every later request fails with DeviceDisconnectedError
        and the stream ends with TransferStatus.NO_DEVICE."""
        self.unplugged = True


def warn_outside(recording: Any, outside: int, total: int, width: int, height: int) -> None:
    """An emulated camera plays only the events its sensor has: say how many it leaves out,
    as file readers do (an OutOfRangeWarning)."""
    warnings.warn(
        OutOfRangeWarning(
            f"{recording}: {outside} of {total} events lie outside the emulated camera's "
            f"{width}x{height} sensor and are not played"
        ),
        stacklevel=3,
    )
