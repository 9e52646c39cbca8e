"""An opened camera: the ring of USB buffers, the decode thread, iteration (finding and
opening one is :mod:`.selection`).

Threads of one camera:

- the transport's (libusb's event loop, or an emulated device's player) copies each completed
  bulk transfer into the :class:`~aerflow.devices.ring.Ring`;
- the camera's decode thread takes the ring buffers waiting, in order (consecutive ones as
  one view, in place), and decodes them with the driver's decoder (numba kernels that release
  the GIL) into a packet, handed over through a small bounded queue (one item per run of USB
  buffers, never per event);
- the caller's thread iterates ``(status, packet)``, merging the packets waiting (at most
  ``max_buffers`` USB buffers per iteration).

In raw mode there is no decode thread: the caller's thread takes the ring buffers' bytes.
Configuration updates run on the caller's thread, under the driver's lock.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, NoReturn, TypeVar, cast

from ..errors import (
    DeviceDisconnectedError,
    DeviceError,
    DeviceProtocolError,
)
from ..events import Packet, concatenate_packets, empty_events
from ..properties import Properties
from ..stream import Stream
from .driver import CameraDriver
from .ring import (
    Ring,
    RingEnded,
)
from .status import RingStatus, Status
from .usb import TransferStatus, UsbHandle

__all__ = [
    "DECODED_AHEAD",
    "DEFAULT_MAX_BUFFERS",
    "Camera",
    "CameraStream",
    "resolve_configuration",
]

log = logging.getLogger(__name__)

DECODED_AHEAD = 4
"""Decoded USB buffers that may wait for the caller (the decode thread's bounded hand-off),
besides the one being decoded."""
DEFAULT_MAX_BUFFERS = 16
"""USB buffers merged at most into one iteration's packet."""
DECODE_BATCH_BYTES = 1 << 21
"""The most bytes the decode thread decodes as one piece. Its packets then stay small
enough (about 14 MB of events at most) for the allocator to reuse freed ones instead of
mapping, and faulting in, fresh memory for each."""
BUFFER_ALIGNMENT = 512
"""buffer_length must be a multiple of this (the bulk endpoints' packet size at USB 2; a
USB 3 endpoint's is 1024, so multiples of 1024 are best for real cameras)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _End:
    """The stream ended with ``status`` after every buffer before it."""

    status: TransferStatus


_TIMEOUT = object()
_CLOSED = object()


class _Handoff:
    """A bounded FIFO between the decode thread and the caller; closing wakes both.

    Its length counts the USB buffers behind the decoded items waiting (tuples, whose last
    field is that count; not the end marker) plus those the decode thread has *reserved*
    (taken from the ring and is decoding), so that the caller knows they will come."""

    def __init__(self, capacity: int) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._capacity = capacity
        self._condition = threading.Condition(threading.Lock())
        self._closed = False
        self._reserved = 0
        self._data = 0

    def __len__(self) -> int:
        return self._data + self._reserved

    def reserve(self, buffers: int) -> None:
        """Announce an item of ``buffers`` USB buffers being prepared (counted by len()
        until it is put)."""
        with self._condition:
            self._reserved += buffers

    def put(self, item: Any, *, reserved: bool = False) -> bool:
        """Append, waiting for room; False (and nothing added) once closed. ``reserved``:
        the item announced by :meth:`reserve`."""
        with self._condition:
            while len(self._items) >= self._capacity and not self._closed:
                self._condition.wait()
            if self._closed:
                return False
            self._items.append(item)
            if isinstance(item, tuple):
                self._data += item[-1]
                if reserved:
                    self._reserved -= item[-1]
            self._condition.notify_all()
            return True

    def get(self, timeout: float | None) -> Any:
        """The next item, _TIMEOUT after ``timeout`` seconds, or _CLOSED."""
        with self._condition:
            if not self._items and not self._closed:
                if timeout is None:
                    while not self._items and not self._closed:
                        self._condition.wait()
                else:
                    deadline = time.monotonic() + timeout
                    while not self._items and not self._closed:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return _TIMEOUT
                        self._condition.wait(remaining)
            if self._closed:
                return _CLOSED
            item = self._items.popleft()
            if isinstance(item, tuple):
                self._data -= item[-1]
            self._condition.notify_all()
            return item

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._items.clear()
            self._reserved = self._data = 0
            self._condition.notify_all()


class Camera(Generic[T]):
    """An opened camera streaming into its ring; iterate it for ``(status, packet)``.

    ``packet`` is an :class:`aerflow.Packet` (events, triggers, IMU samples, frames), or in
    raw mode the undecoded bytes of the data endpoint (``bytes``, None on timeout). Each
    iteration merges the USB buffers waiting, up to ``max_buffers``. Without a timeout an
    iteration waits for data; with one it returns an empty packet (None in raw mode) and a
    status whose ``ring`` is None when nothing came in time.

    Iteration ends (StopIteration) when an emulated recording ends or the camera is closed;
    it raises :class:`~aerflow.errors.DeviceDisconnectedError` once the data received before
    a disconnection has been returned, and the camera then releases the device and its
    threads. Use it as a context manager, or call :meth:`close`.

    Build it with :func:`aerflow.devices.open`.
    """

    def __init__(
        self,
        handle: UsbHandle,
        driver: CameraDriver,
        configuration: Any,
        *,
        raw: bool,
        timeout: float | None,
        buffer_length: int,
        ring_length: int,
        in_flight: int,
        max_buffers: int,
        lossless: bool,
    ) -> None:
        self.handle = handle
        self.driver = driver
        """The model's driver, for its extras (e.g. ``camera.driver.temperature()``)."""
        self.raw = raw
        self.timeout = timeout
        self._configuration = configuration
        self._max_buffers = max_buffers
        self._ring = Ring(buffer_length, ring_length, lossless=lossless)
        self._handoff = _Handoff(DECODED_AHEAD)
        self._current_t: int | None = None
        self._pending: _End | BaseException | None = None
        self._finished: _End | BaseException | None = None
        self._close_lock = threading.Lock()
        self._closed = False
        self._decode_thread: threading.Thread | None = None
        self.properties = Properties(
            format=driver.name, width=driver.width, height=driver.height, live=True
        )
        """Standard stream properties: format is the driver's name, live is True."""
        decoder = None if raw else driver.decoder()
        handle.start_stream(driver.data_endpoint, buffer_length, in_flight, self._ring.push)
        if decoder is not None:
            self._decode_thread = threading.Thread(
                target=self._decode,
                args=(decoder,),
                name=f"aerflow-camera-decode-{driver.serial}",
                daemon=True,
            )
            self._decode_thread.start()

    # -- facts --------------------------------------------------------------------------------
    @property
    def serial(self) -> str:
        return self.driver.serial

    @property
    def name(self) -> str:
        """The driver's name, e.g. "prophesee_evk4"."""
        return self.driver.name

    @property
    def model(self) -> str:
        """The model's name, e.g. "Prophesee EVK4"."""
        return self.driver.model

    @property
    def sensor_size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.driver.width, self.driver.height

    @property
    def configuration(self) -> Any:
        """The configuration in force (the model's frozen dataclass)."""
        return self._configuration

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ring_capacity(self) -> int:
        """The most USB buffers the camera holds for the caller (ring, plus decoded ahead)."""
        return self._ring.ring_length + (0 if self.raw else DECODED_AHEAD + 1)

    def raw_header(self) -> bytes:
        """A file header for the raw bytes, when the data endpoint speaks a file format: for
        EVT 3.0 cameras (Prophesee), the header of a Prophesee .raw file, so that the header
        followed by every raw packet is a recording aerflow (and Metavision) reads. Raises
        ValueError for cameras whose stream is no file format."""
        from ..formats.prophesee_header import format_header

        encodings = {"evt3": ("3.0", "EVT3"), "evt2": ("2.0", "EVT2"), "evt21": ("2.1", "EVT21")}
        raw_format = self.driver.raw_format
        if raw_format not in encodings:
            raise ValueError(f"the {self.model}'s raw stream is not a file format")
        evt, name = encodings[raw_format]
        width, height = self.sensor_size
        entries = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "evt": evt,
            "format": f"{name};height={height};width={width}",
            "geometry": f"{width}x{height}",
            "camera_integrator_name": self.model.split()[0],
            "serial_number": self.serial,
        }
        return format_header(entries)

    def backlog(self) -> int:
        """USB buffers received and not yet returned (in the ring or decoded and waiting)."""
        return self._ring.backlog + len(self._handoff)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Camera {self.name} {self.serial!r} ({state}{', raw' if self.raw else ''})>"

    # -- decoding thread ------------------------------------------------------------------------
    def _decode(self, decoder: Any) -> None:
        ring = self._ring
        handoff = self._handoff
        batch_buffers = min(self._max_buffers, max(1, DECODE_BATCH_BYTES // ring.buffer_length))
        try:
            while True:
                try:
                    # Buffers already waiting are decoded together, in place in the ring: one
                    # packet, one hand-off and no merging by the caller, which matters when
                    # all share one core.
                    buffer = ring.next(None, most=batch_buffers)
                except RingEnded as end:
                    handoff.put(_End(end.status))
                    return
                assert buffer is not None
                data, buffers = buffer.data, buffer.buffers
                handoff.reserve(buffers)
                packet = decoder.decode(data)
                ring.release()
                item = (
                    packet,
                    buffer.system_time,
                    buffer.first_after_gap,
                    decoder.current_t,
                    buffers,
                )
                if not handoff.put(item, reserved=True):
                    return
        except BaseException as error:  # handed to the caller, raised there
            log.debug("the decode thread failed", exc_info=True)
            handoff.put(error)

    # -- iteration ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[Status, T]]:
        return self

    def __next__(self) -> tuple[Status, T]:
        if self._finished is not None:
            self._finish(self._finished)
        if self._pending is not None:
            self._finish(self._pending)
        if self._closed:
            raise StopIteration
        if self.raw:
            return cast("tuple[Status, T]", self._next_raw())
        return cast("tuple[Status, T]", self._next_decoded())

    def _finish(self, end: _End | BaseException) -> NoReturn:
        """Close and end the iteration with ``end`` (again at every later call)."""
        self._finished = end
        self.close()
        if isinstance(end, BaseException):
            raise end
        status = end.status
        if status in (TransferStatus.END_OF_RECORDING, TransferStatus.CANCELLED):
            raise StopIteration
        if status is TransferStatus.NO_DEVICE:
            raise DeviceDisconnectedError("the camera was disconnected", serial=self.serial)
        if status is TransferStatus.OVERFLOW:
            raise DeviceProtocolError(
                "the camera sent more than a USB transfer holds (buffer_length should be a "
                "multiple of 1024)",
                serial=self.serial,
            )
        if status is TransferStatus.STALL:
            raise DeviceError("the data endpoint stalled", serial=self.serial)
        raise DeviceError(f"the USB stream failed ({status.value})", serial=self.serial)

    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _next_decoded(self) -> tuple[Status, Packet]:
        handoff = self._handoff
        deadline = self._deadline()
        first = handoff.get(self.timeout)
        if first is _TIMEOUT:
            return Status(time.time(), None, self._current_t), Packet(empty_events())
        if first is _CLOSED:
            raise StopIteration
        if not isinstance(first, tuple):
            self._finish(first)
        items = [first]
        buffers = first[-1]
        wanted = min(self._max_buffers, buffers + len(handoff) + self._ring.backlog)
        while buffers < wanted:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            item = handoff.get(remaining)
            if item is _TIMEOUT or item is _CLOSED:
                break
            if not isinstance(item, tuple):
                self._pending = item
                break
            items.append(item)
            buffers += item[-1]
        overflow: list[int] = []
        offset = 0
        for packet, _, after_gap, _, _ in items:
            if after_gap:
                overflow.append(offset)
            offset += len(packet.events)
        self._current_t = items[-1][3]
        merged = concatenate_packets([item[0] for item in items])
        return self._status(items[0][1], buffers, overflow, self._current_t), merged

    def _next_raw(self) -> tuple[Status, bytes | None]:
        ring = self._ring
        try:
            first = ring.next(self.timeout, most=self._max_buffers)
        except RingEnded as end:
            self._finish(_End(end.status))
        if first is None:
            return Status(time.time(), None, None), None
        parts = [first.data.tobytes()]
        overflow = [0] if first.first_after_gap else []
        size = len(parts[0])
        buffers = first.buffers
        wanted = min(self._max_buffers, buffers + ring.backlog)
        while buffers < wanted:
            try:
                buffer = ring.next(0, most=wanted - buffers)
            except RingEnded as end:
                self._pending = _End(end.status)
                break
            if buffer is None:
                break
            if buffer.first_after_gap:
                overflow.append(size)
            parts.append(buffer.data.tobytes())
            size += len(parts[-1])
            buffers += buffer.buffers
        ring.release()
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._status(first.system_time, buffers, overflow, None), data

    def _status(
        self, first_time: float, buffers: int, overflow: list[int], current_t: int | None
    ) -> Status:
        ring = self._ring
        ring_status = RingStatus(
            system_time=first_time,
            backlog=self.backlog(),
            buffers=buffers,
            clutch_engaged=ring.clutch_engaged,
            dropped_buffers=ring.dropped_buffers,
            overflow_indices=tuple(overflow),
            dropped_bytes=ring.dropped_bytes,
        )
        return Status(time.time(), ring_status, current_t)

    def clear_backlog(self, until: int = 0) -> None:
        """Discard the USB buffers waiting, leaving at most ``until``.

        Decoded cameras still decode what they discard, so the decoder's time stays right.
        Data keeps arriving meanwhile: this discards what waited when it was called."""
        if until < 0:
            raise ValueError(f"until must not be negative, not {until}")
        if self._closed or self._pending is not None:
            return
        excess = self.backlog() - until
        if self.raw:
            for _ in range(excess):
                try:
                    if self._ring.next(0) is None:
                        break
                except RingEnded as end:
                    self._pending = _End(end.status)
                    break
            self._ring.release()
            return
        while excess > 0:
            item = self._handoff.get(None)
            if item is _TIMEOUT or item is _CLOSED:
                break
            if not isinstance(item, tuple):
                self._pending = item
                break
            self._current_t = item[3]
            excess -= item[-1]

    # -- configuration --------------------------------------------------------------------------
    def update_configuration(self, configuration: Any) -> None:
        """Apply ``configuration`` (the model's configuration dataclass, or a TOML/JSON file
        holding one) while streaming: the driver writes only what changed, before this
        returns. Raises ConfigurationError for another model's configuration or a change
        the hardware cannot make live (nothing is then written)."""
        configuration = resolve_configuration(type(self.driver), configuration)
        if self._closed:
            raise DeviceError("the camera is closed", serial=self.serial)
        with self.driver.lock:
            self.driver.update_configuration(self._configuration, configuration)
        self._configuration = configuration

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the device and the stream, release the device, and join the camera's
        threads. Safe to call more than once and from another thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._ring.close()
        self._handoff.close()
        try:
            with self.driver.lock:
                self.driver.close()
        except Exception:
            log.warning("%s: the camera's stop sequence failed", self.serial, exc_info=True)
        try:
            self.handle.stop_stream()
        except Exception:
            log.warning("%s: stopping the USB stream failed", self.serial, exc_info=True)
        try:
            self.handle.close()
        except Exception:
            log.warning("%s: closing the USB device failed", self.serial, exc_info=True)
        thread = self._decode_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
            if thread.is_alive():
                log.warning("%s: the decode thread did not stop within 5 s", self.serial)
        log.debug("%s: closed", self.serial)

    def __enter__(self) -> Camera[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def stream(self) -> CameraStream:
        """This camera as a pipeline :class:`~aerflow.stream.Stream` of packets (decoded
        cameras only): filters, sinks, :func:`aerflow.pipeline.run` and the tensor
        functions accept it. Closing the stream closes the camera."""
        if self.raw:
            raise ValueError(
                "a raw camera yields bytes, not packets: open it without raw=True to use it "
                "as a stream"
            )
        return CameraStream(cast("Camera[Packet]", self))


class CameraStream(Stream):
    """A decoded camera as a live stream of packets; iterations that timed out empty are
    skipped. ``last_status`` is the status that came with the latest packet."""

    def __init__(self, camera: Camera[Packet]) -> None:
        self.camera = camera
        self.properties = camera.properties
        self.last_status: Status | None = None

    def __iter__(self) -> Iterator[Packet]:
        for status, packet in self.camera:
            if status.ring is None:
                continue
            self.last_status = status
            yield packet

    def close(self) -> None:
        self.camera.close()


# -- configuration --------------------------------------------------------------------------------
def resolve_configuration(driver: type[CameraDriver], configuration: Any) -> Any:
    """``configuration`` checked against ``driver``: None gives the default, a path is
    loaded (TOML or JSON), an instance must be of the driver's configuration type."""
    if isinstance(configuration, (str, os.PathLike)):
        from .config_files import load

        return load(configuration, driver.configuration_type)
    return driver.checked_configuration(configuration)
