"""Emulated devices beneath the :class:`~aerflow.devices.usb.UsbHandle` interface."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from ..devices.usb import TransferCallback, TransferStatus, UsbDeviceInfo
from ..errors import (
    DeviceBusyError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
)
from .base import EmulatedDevice, EmulatedStall

__all__ = ["EmulatedBackend", "EmulatedHandle"]

log = logging.getLogger(__name__)


class EmulatedBackend:
    """A bus holding the given emulated devices.

    ``speed`` paces playback by the recording's own time (1.0 = real time, 2.0 = twice as
    fast); None plays as fast as the consumer takes it."""

    def __init__(self, devices: Sequence[EmulatedDevice], *, speed: float | None = None) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.emulated = list(devices)
        self.speed = speed
        self._claimed: set[int] = set()

    @property
    def lossless_by_default(self) -> bool:
        """Whether a camera opened here waits for its consumer by default (rather than
        discarding data when its ring is full): when playing as fast as the consumer takes
        it, so that recordings arrive whole."""
        return self.speed is None

    def devices(self) -> list[UsbDeviceInfo]:
        return [device.info for device in self.emulated if not device.unplugged]

    def open(self, info: UsbDeviceInfo) -> EmulatedHandle:
        for device in self.emulated:
            if device.info == info and not device.unplugged:
                if id(device) in self._claimed:
                    raise DeviceBusyError(
                        f"the emulated device on bus {info.bus} address {info.address} "
                        "is already open"
                    )
                self._claimed.add(id(device))
                return EmulatedHandle(device, self)
        raise DeviceNotFoundError(f"no emulated device on bus {info.bus} address {info.address}")

    def _release(self, device: EmulatedDevice) -> None:
        self._claimed.discard(id(device))


class EmulatedHandle:
    """Forwards each request to the emulated device, as libusb would to the real one."""

    def __init__(self, device: EmulatedDevice, backend: EmulatedBackend) -> None:
        self.device = device
        self._backend = backend
        self._closed = False
        self._stream: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def info(self) -> UsbDeviceInfo:
        return self.device.info

    def _check(self) -> None:
        if self._closed:
            raise DeviceError("the device handle is closed")
        if self.device.unplugged:
            raise DeviceDisconnectedError("the device was disconnected")

    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int, timeout: float
    ) -> bytes:
        with self.device.lock:
            self._check()
            try:
                return bytes(self.device.control_read(request_type, request, value, index, length))[
                    :length
                ]
            except EmulatedStall as stall:
                raise DeviceError(f"control request 0x{request:02X} stalled: {stall}") from None

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes, timeout: float
    ) -> None:
        with self.device.lock:
            self._check()
            try:
                self.device.control_write(request_type, request, value, index, bytes(data))
            except EmulatedStall as stall:
                raise DeviceError(f"control request 0x{request:02X} stalled: {stall}") from None

    def bulk_write(self, endpoint: int, data: bytes, timeout: float) -> None:
        with self.device.lock:
            self._check()
            try:
                self.device.bulk_write(endpoint, bytes(data))
            except EmulatedStall as stall:
                raise DeviceError(f"bulk OUT 0x{endpoint:02X} stalled: {stall}") from None

    def bulk_read(self, endpoint: int, length: int, timeout: float) -> bytes:
        with self.device.lock:
            self._check()
            try:
                return bytes(self.device.bulk_read(endpoint, length))[:length]
            except EmulatedStall as stall:
                raise DeviceError(f"bulk IN 0x{endpoint:02X} stalled: {stall}") from None

    def clear_halt(self, endpoint: int) -> None:
        with self.device.lock:
            self._check()
            self.device.clear_halt(endpoint)

    def sleep(self, seconds: float) -> None:
        with self.device.lock:
            self.device.sleep(seconds)

    def start_stream(
        self, endpoint: int, buffer_length: int, in_flight: int, callback: TransferCallback
    ) -> None:
        self._check()
        if self._stream is not None:
            raise DeviceError("a stream is already running on this handle")
        self._stop.clear()
        self._stream = threading.Thread(
            target=self._play,
            args=(buffer_length, callback),
            name=f"aerflow-emulated-usb-{endpoint:02x}",
            daemon=True,
        )
        self._stream.start()

    def _play(self, buffer_length: int, callback: TransferCallback) -> None:
        speed = self._backend.speed
        started = time.monotonic()
        first_t: int | None = None
        idle = 0.0005
        while not self._stop.is_set():
            if self.device.unplugged:
                callback(memoryview(b""), TransferStatus.NO_DEVICE)
                return
            chunk = self.device.stream_chunk(buffer_length)
            if chunk is None:
                callback(memoryview(b""), TransferStatus.END_OF_RECORDING)
                return
            if len(chunk.data) == 0:
                # Output not started yet: a real transfer would wait; do not spin.
                self._stop.wait(idle)
                continue
            if speed is not None and chunk.t_end is not None:
                if first_t is None:
                    first_t = chunk.t_end
                    started = time.monotonic()
                due = started + (chunk.t_end - first_t) / 1e6 / speed
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
            callback(memoryview(chunk.data), TransferStatus.COMPLETED)
        callback(memoryview(b""), TransferStatus.CANCELLED)

    def stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._stop.set()
        stream.join(timeout=1.0)
        if stream.is_alive():
            log.warning("the emulated stream thread did not stop within 1 s")

    def close(self) -> None:
        if self._closed:
            return
        self.stop_stream()
        self._closed = True
        self._backend._release(self.device)
