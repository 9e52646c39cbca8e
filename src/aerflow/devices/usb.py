"""The USB operations a camera driver needs, as one small interface.

Two implementations sit beneath it: libusb for real cameras (``_libusb.py``, the ``usb`` extra)
and emulated devices (:mod:`aerflow.emulators`). Drivers only ever talk to a
:class:`UsbHandle`, so the same driver code runs against both, and tests watch every request
it makes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CONTROL_IN_STANDARD",
    "CONTROL_IN_VENDOR",
    "CONTROL_OUT_VENDOR",
    "GET_DESCRIPTOR",
    "TransferCallback",
    "TransferStatus",
    "UsbBackend",
    "UsbDeviceInfo",
    "UsbHandle",
]

CONTROL_IN_VENDOR = 0xC0
"""bmRequestType of a vendor request to the device, device to host."""
CONTROL_OUT_VENDOR = 0x40
"""bmRequestType of a vendor request to the device, host to device."""
CONTROL_IN_STANDARD = 0x80
"""bmRequestType of a standard request to the device, device to host (GET_DESCRIPTOR)."""
GET_DESCRIPTOR = 0x06


@dataclass(frozen=True)
class UsbDeviceInfo:
    """What enumeration tells about a device before it is opened."""

    vendor_id: int
    product_id: int
    bus: int
    address: int
    bcd_device: int = 0
    """The device release number (binary-coded decimal, 0xJJMN)."""
    serial_index: int = 0
    """iSerialNumber of the device descriptor (0: no serial string)."""
    speed: str = "unknown"
    """"low", "full", "high", "super", "super-plus" or "unknown"."""


class TransferStatus(enum.Enum):
    """How one streaming bulk transfer ended."""

    COMPLETED = "completed"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"
    STALL = "stall"
    NO_DEVICE = "no device"
    OVERFLOW = "overflow"
    ERROR = "error"
    END_OF_RECORDING = "end of recording"
    """Only emulated devices: the recording they play has no more data."""


TransferCallback = Callable[[memoryview, TransferStatus], None]
"""Receives each completed streaming transfer, in submission order, on the transport's thread.

The view holds the bytes received (possibly none) and is valid only during the call: copy
what you keep. Any status other than COMPLETED or TIMED_OUT ends the stream; the transport
makes no further calls after it.
"""


class UsbHandle(Protocol):
    """An opened device with interface 0 claimed.

    Every method raises :class:`~aerflow.errors.DeviceDisconnectedError` once the device is
    gone, :class:`~aerflow.errors.DeviceTimeoutError` when a transfer times out, and
    :class:`~aerflow.errors.DeviceError` for other USB failures. Timeouts are in seconds.
    """

    @property
    def info(self) -> UsbDeviceInfo: ...

    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int, timeout: float
    ) -> bytes:
        """A control transfer from the device; returns what it sent (may be shorter)."""
        ...

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes, timeout: float
    ) -> None:
        """A control transfer to the device; a short write is an error."""
        ...

    def bulk_write(self, endpoint: int, data: bytes, timeout: float) -> None:
        """A blocking bulk OUT transfer of all of ``data``."""
        ...

    def bulk_read(self, endpoint: int, length: int, timeout: float) -> bytes:
        """A blocking bulk IN transfer of at most ``length`` bytes."""
        ...

    def clear_halt(self, endpoint: int) -> None: ...

    def sleep(self, seconds: float) -> None:
        """Wait between two requests (a register sequence's delay).

        Emulated devices record the delay instead of waiting, so that tests can check the
        sequence's timing without taking seconds."""
        ...

    def start_stream(
        self, endpoint: int, buffer_length: int, in_flight: int, callback: TransferCallback
    ) -> None:
        """Keep ``in_flight`` bulk IN transfers of ``buffer_length`` bytes queued on
        ``endpoint``, resubmitting each as it completes, and hand each to ``callback``."""
        ...

    def stop_stream(self) -> None:
        """Cancel the streaming transfers and wait (at most about a second) for them to end.
        Does nothing if no stream runs."""
        ...

    def close(self) -> None:
        """Stop any stream, release the interface and the device. Never raises."""
        ...


class UsbBackend(Protocol):
    """Finds and opens devices."""

    def devices(self) -> list[UsbDeviceInfo]:
        """Every device on the bus (or every emulated one), unopened."""
        ...

    def open(self, info: UsbDeviceInfo) -> UsbHandle:
        """Open ``info`` and claim interface 0, detaching a kernel driver if one is bound.

        Raises DeviceBusyError when another program holds it, DevicePermissionError when the
        OS refuses access, DeviceNotFoundError when it has gone."""
        ...
