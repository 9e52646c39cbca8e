"""Real cameras through libusb: the ``libusb1`` package (``usb1``), with the shared library
from ``libusb-package`` when it is installed (else the system's libusb-1.0).

Both come with the ``usb`` extra: ``pip install 'aerflow[usb]'``. Each opened device gets its
own libusb context. Streaming keeps ``in_flight`` asynchronous bulk IN transfers queued, each
resubmitted as soon as its completion has been handed to the callback (libusb completes the
transfers of one endpoint in submission order); a thread per stream runs libusb's event loop
(``handleEventsTimeout(0.1)``) and thus the callbacks.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
import time
from types import ModuleType
from typing import Any

from .._optional import require
from ..errors import (
    DeviceBusyError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
    DevicePermissionError,
    DeviceTimeoutError,
    MissingDependencyError,
)
from .usb import TransferCallback, TransferStatus, UsbDeviceInfo

__all__ = ["LibusbBackend", "LibusbHandle", "usb_error"]

log = logging.getLogger(__name__)

# libusb_error codes (libusb.h)
ERROR_IO = -1
ERROR_INVALID_PARAM = -2
ERROR_ACCESS = -3
ERROR_NO_DEVICE = -4
ERROR_NOT_FOUND = -5
ERROR_BUSY = -6
ERROR_TIMEOUT = -7
ERROR_OVERFLOW = -8
ERROR_PIPE = -9
ERROR_INTERRUPTED = -10
ERROR_NO_MEM = -11
ERROR_NOT_SUPPORTED = -12

# libusb_transfer_status
_TRANSFER_STATUS = {
    0: TransferStatus.COMPLETED,
    1: TransferStatus.ERROR,
    2: TransferStatus.TIMED_OUT,
    3: TransferStatus.CANCELLED,
    4: TransferStatus.STALL,
    5: TransferStatus.NO_DEVICE,
    6: TransferStatus.OVERFLOW,
}

# libusb_speed
_SPEEDS = {
    0: "unknown",
    1: "low",
    2: "full",
    3: "high",
    4: "super",
    5: "super-plus",
    6: "super-plus",
}

STOP_TIMEOUT = 1.0
"""Seconds stop_stream waits for cancelled transfers to come back."""

_leaked: list[Any] = []
"""Transfers (and their buffers) libusb did not give back in time: kept alive for ever so
that a late completion never writes into freed memory."""

_library_lock = threading.Lock()
_library_loaded = False


def usb_error(code: int, action: str, *, serial: str | None = None) -> DeviceError:
    """The aerflow error for libusb error ``code`` while doing ``action`` ("opening the
    device"), with what to do about it where there is something to do."""
    if code == ERROR_ACCESS:
        return DevicePermissionError(
            f"{action}: permission denied. On Linux, give your user access to USB cameras "
            "with `sudo aerflow udev install`, then unplug and replug the camera",
            serial=serial,
        )
    if code == ERROR_BUSY:
        return DeviceBusyError(
            f"{action}: the device is busy: another program (or another aerflow camera) has "
            "it open; close that program first",
            serial=serial,
        )
    if code == ERROR_NO_DEVICE:
        return DeviceDisconnectedError(f"{action}: the device was disconnected", serial=serial)
    if code == ERROR_TIMEOUT:
        return DeviceTimeoutError(f"{action}: the USB transfer timed out", serial=serial)
    if code == ERROR_NOT_FOUND:
        return DeviceNotFoundError(f"{action}: the device was not found", serial=serial)
    if code == ERROR_PIPE:
        return DeviceError(f"{action}: the device stalled the request", serial=serial)
    names = {
        ERROR_IO: "input/output error",
        ERROR_INVALID_PARAM: "invalid parameter",
        ERROR_OVERFLOW: "the device sent more data than expected",
        ERROR_INTERRUPTED: "interrupted",
        ERROR_NO_MEM: "out of memory",
        ERROR_NOT_SUPPORTED: "not supported on this platform",
    }
    return DeviceError(f"{action}: {names.get(code, 'libusb error')} ({code})", serial=serial)


def _translate(error: BaseException, action: str, serial: str | None = None) -> DeviceError:
    code = getattr(error, "value", None)
    return usb_error(code if isinstance(code, int) else -99, action, serial=serial)


def import_usb1() -> ModuleType:
    """The ``usb1`` module, with libusb-package's library loaded into it when available.

    Raises DeviceError (the camera cannot be reached) saying which extra to install when
    ``libusb1`` is missing."""
    try:
        usb1 = require("usb1", extra="usb", purpose="a USB camera", package="libusb1")
    except MissingDependencyError as error:
        raise DeviceError(str(error)) from error
    _load_library(usb1)
    return usb1


def _load_library(usb1: ModuleType) -> None:
    global _library_loaded
    with _library_lock:
        if _library_loaded:
            return
        _library_loaded = True
        try:
            import libusb_package
        except ImportError:
            log.debug("libusb-package is not installed: using the system's libusb-1.0")
            return
        path = libusb_package.get_library_path()
        if path is None:
            log.debug("libusb-package has no library for this platform: using the system's")
            return
        loader: Any = getattr(ctypes, "WinDLL", None) if sys.platform == "win32" else ctypes.CDLL
        try:
            library = loader(str(path), use_errno=True, use_last_error=True)
        except OSError as error:
            log.warning("cannot load %s (%s): using the system's libusb-1.0", path, error)
            return
        if not usb1.loadLibrary(library):
            log.debug("usb1 had already loaded another libusb-1.0")


def _context(usb1: ModuleType) -> Any:
    context = usb1.USBContext()
    try:
        context.open()
    except usb1.USBError as error:
        raise _translate(error, "initialising libusb") from None
    except OSError as error:  # the shared library is missing
        raise DeviceError(
            f"cannot load libusb-1.0 ({error}): pip install 'aerflow[usb]' installs one"
        ) from None
    return context


def _info(device: Any) -> UsbDeviceInfo:
    return UsbDeviceInfo(
        vendor_id=device.getVendorID(),
        product_id=device.getProductID(),
        bus=device.getBusNumber(),
        address=device.getDeviceAddress(),
        bcd_device=device.getbcdDevice(),
        serial_index=device.getSerialNumberDescriptor(),
        speed=_SPEEDS.get(device.getDeviceSpeed(), "unknown"),
    )


class LibusbBackend:
    """Every device on the machine's USB buses, through libusb."""

    def __init__(self) -> None:
        self._usb1 = import_usb1()

    def devices(self) -> list[UsbDeviceInfo]:
        usb1 = self._usb1
        context = _context(usb1)
        try:
            found = []
            for device in context.getDeviceList(skip_on_error=True):
                try:
                    found.append(_info(device))
                except usb1.USBError as error:
                    log.debug("skipping a device libusb cannot describe: %s", error)
            return found
        finally:
            context.close()

    def open(self, info: UsbDeviceInfo) -> LibusbHandle:
        usb1 = self._usb1
        context = _context(usb1)
        where = f"opening the device on bus {info.bus} address {info.address}"
        try:
            device = None
            for candidate in context.getDeviceList(skip_on_error=True):
                if (
                    candidate.getBusNumber() == info.bus
                    and candidate.getDeviceAddress() == info.address
                    and candidate.getVendorID() == info.vendor_id
                    and candidate.getProductID() == info.product_id
                ):
                    device = candidate
                    break
            if device is None:
                raise DeviceNotFoundError(f"{where}: the device is gone")
            try:
                handle = device.open()
            except usb1.USBError as error:
                raise _translate(error, where) from None
            try:
                handle.setAutoDetachKernelDriver(True)
            except usb1.USBError as error:  # not supported outside Linux
                log.debug("auto-detach of the kernel driver unavailable: %s", error)
            try:
                handle.claimInterface(0)
            except usb1.USBError as error:
                handle.close()
                raise _translate(error, f"{where} (claiming interface 0)") from None
        except BaseException:
            context.close()
            raise
        return LibusbHandle(usb1, context, handle, info)


class LibusbHandle:
    """An opened device with interface 0 claimed (see :class:`~aerflow.devices.usb.UsbHandle`)."""

    def __init__(self, usb1: ModuleType, context: Any, handle: Any, info: UsbDeviceInfo) -> None:
        self._usb1 = usb1
        self._context = context
        self._handle = handle
        self._info = info
        self._closed = False
        self._transfers: list[Any] = []
        self._callback: TransferCallback | None = None
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._stopping = False
        self._ended = False
        self._quit = False

    @property
    def info(self) -> UsbDeviceInfo:
        return self._info

    def _check(self) -> None:
        if self._closed:
            raise DeviceError("the device handle is closed")

    @staticmethod
    def _ms(timeout: float) -> int:
        return max(1, round(timeout * 1000))  # 0 would mean "never time out" to libusb

    # -- blocking requests ----------------------------------------------------------------------
    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int, timeout: float
    ) -> bytes:
        self._check()
        try:
            data = self._handle.controlRead(
                request_type, request, value, index, length, self._ms(timeout)
            )
        except self._usb1.USBError as error:
            raise _translate(error, f"control request 0x{request:02X}") from None
        return bytes(data)

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes, timeout: float
    ) -> None:
        self._check()
        try:
            written = self._handle.controlWrite(
                request_type, request, value, index, bytes(data), self._ms(timeout)
            )
        except self._usb1.USBError as error:
            raise _translate(error, f"control request 0x{request:02X}") from None
        if written != len(data):
            raise DeviceError(
                f"control request 0x{request:02X}: {written} of {len(data)} bytes written"
            )

    def bulk_write(self, endpoint: int, data: bytes, timeout: float) -> None:
        self._check()
        try:
            written = self._handle.bulkWrite(endpoint, bytes(data), self._ms(timeout))
        except self._usb1.USBError as error:
            raise _translate(error, f"bulk OUT 0x{endpoint:02X}") from None
        if written != len(data):
            raise DeviceError(f"bulk OUT 0x{endpoint:02X}: {written} of {len(data)} bytes sent")

    def bulk_read(self, endpoint: int, length: int, timeout: float) -> bytes:
        self._check()
        try:
            data = self._handle.bulkRead(endpoint, length, self._ms(timeout))
        except self._usb1.USBError as error:
            raise _translate(error, f"bulk IN 0x{endpoint:02X}") from None
        return bytes(data)

    def clear_halt(self, endpoint: int) -> None:
        self._check()
        try:
            self._handle.clearHalt(endpoint)
        except self._usb1.USBError as error:
            raise _translate(error, f"clearing the halt of 0x{endpoint:02X}") from None

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    # -- streaming ----------------------------------------------------------------------------
    def start_stream(
        self, endpoint: int, buffer_length: int, in_flight: int, callback: TransferCallback
    ) -> None:
        self._check()
        if self._thread is not None:
            raise DeviceError("a stream is already running on this handle")
        usb1 = self._usb1
        self._callback = callback
        self._stopping = self._ended = self._quit = False
        self._transfers = []
        for _ in range(in_flight):
            transfer = self._handle.getTransfer()
            transfer.setBulk(endpoint, bytearray(buffer_length), callback=self._completed)
            self._transfers.append(transfer)
        self._pending = 0
        try:
            for transfer in self._transfers:
                transfer.submit()
                self._pending += 1
        except usb1.USBError as error:
            self._stopping = True
            self._cancel()
            self._drain_without_thread()
            raise _translate(error, f"submitting transfers on 0x{endpoint:02X}") from None
        self._thread = threading.Thread(
            target=self._events, name=f"aerflow-usb-{endpoint:02x}", daemon=True
        )
        self._thread.start()

    def _completed(self, transfer: Any) -> None:
        """Runs on the event thread, inside handleEventsTimeout."""
        try:
            status = _TRANSFER_STATUS.get(transfer.getStatus(), TransferStatus.ERROR)
            if self._ended:
                self._pending -= 1
                return
            length = transfer.getActualLength()
            view = memoryview(transfer.getBuffer())[:length]
            callback = self._callback
            assert callback is not None
            if status not in (TransferStatus.COMPLETED, TransferStatus.TIMED_OUT):
                self._pending -= 1
                self._ended = True
                callback(view, status)
                return
            callback(view, status)
            if self._stopping:
                self._pending -= 1
                return
            try:
                transfer.submit()
            except self._usb1.USBError as error:
                self._pending -= 1
                self._end(
                    TransferStatus.NO_DEVICE
                    if getattr(error, "value", None) == ERROR_NO_DEVICE
                    else TransferStatus.ERROR
                )
        except Exception:  # an exception must not unwind into ctypes
            log.exception("the USB transfer callback failed")
            self._end(TransferStatus.ERROR)

    def _end(self, status: TransferStatus) -> None:
        if self._ended:
            return
        self._ended = True
        callback = self._callback
        if callback is not None:
            try:
                callback(memoryview(b""), status)
            except Exception:
                log.exception("the USB transfer callback failed")

    def _events(self) -> None:
        usb1 = self._usb1
        while self._pending > 0 and not self._quit:
            try:
                self._context.handleEventsTimeout(0.1)
            except usb1.USBErrorInterrupted:
                continue
            except usb1.USBError as error:
                log.debug("libusb event handling failed: %s", error)
                self._end(
                    TransferStatus.NO_DEVICE
                    if getattr(error, "value", None) == ERROR_NO_DEVICE
                    else TransferStatus.ERROR
                )
                break

    def _cancel(self) -> None:
        usb1 = self._usb1
        for transfer in self._transfers:
            try:
                if transfer.isSubmitted():
                    transfer.cancel()
            except usb1.USBError:
                pass  # completed meanwhile, or the device is gone

    def _drain_without_thread(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._pending > 0 and time.monotonic() < deadline:
            try:
                self._context.handleEventsTimeout(0.1)
            except self._usb1.USBError:
                break

    def stop_stream(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._cancel()
        thread.join(timeout=STOP_TIMEOUT)
        if thread.is_alive() or self._pending > 0:
            log.warning(
                "%d USB transfers did not come back within %.0f s of their cancellation",
                self._pending,
                STOP_TIMEOUT,
            )
            self._quit = True
            thread.join(timeout=0.5)
            _leaked.append((self._transfers, self._handle, self._context))
        self._thread = None
        self._transfers = []
        self._end(TransferStatus.CANCELLED)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.stop_stream()
        except Exception:
            log.debug("stopping the stream failed", exc_info=True)
        if any(item[1] is self._handle for item in _leaked):
            return  # libusb still owns buffers: keep the handle and context alive
        try:
            self._handle.releaseInterface(0)
        except Exception:
            log.debug("releasing interface 0 failed", exc_info=True)
        try:
            self._handle.close()
        except Exception:
            log.debug("closing the device failed", exc_info=True)
        try:
            self._context.close()
        except Exception:
            log.debug("closing the libusb context failed", exc_info=True)
