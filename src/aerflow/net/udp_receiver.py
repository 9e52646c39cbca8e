"""Events arriving over UDP: :class:`UdpReceiver` (a source) and :func:`receive`.

The receiver waits in ``poll`` (no sleeping, no busy loop), then takes every queued datagram
with ``recvmmsg`` (or a ``recv_into`` loop, see :mod:`aerflow.net.udp`) into a preallocated
buffer and decodes the whole batch into one packet with one numba call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import platform
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from ..errors import NetworkError, NetworkTimeoutError
from ..events import EVENTS_DTYPE, Packet, empty_events
from ..stream import Properties, Stream
from ._wakeup import ClosedByWakeUp
from .address import Address, parse_address
from .mmsg import MAX_VECTOR, MMSG, Vectors, open_socket, raise_errno
from .udp import DEFAULT_PORT, mmsg_enabled
from .wire import (
    AERFLOW_MAGIC,
    MAX_DATAGRAM_BYTES,
    DatagramDecoder,
    StreamStats,
    WireFormat,
    get_wire_format,
)

__all__ = ["PACKET_EVENTS", "UdpReceiver", "UdpReceiverStats", "receive"]

log = logging.getLogger(__name__)

# Python does not name it; 33 on Linux's generic socket ABI (x86-64, Arm, RISC-V).
_SO_RCVBUFFORCE = (
    33
    if sys.platform.startswith("linux")
    and platform.machine() in ("x86_64", "aarch64", "arm64", "riscv64")
    else None
)
_RECEIVE_BUFFER_BYTES = 1 << 24  # datagram slots of a receiver (touched once, then reused)
PACKET_EVENTS = 1 << 18
"""A receiver stops taking datagrams into a packet at about this many events: the packet's
array stays under 4 MiB, which the allocator reuses from packet to packet (larger NumPy
arrays get fresh huge pages each time, several times slower to fill)."""


# -- receiver -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UdpReceiverStats:
    """What a receiver has seen so far.

    ``malformed`` counts datagrams skipped whole or in part (too short, bad header, larger
    than ``max_datagram``, a torn event at the end); ``out_of_range`` events outside the
    sensor (dropped); ``untimed`` ``spif`` events whose announced timestamp word was missing.
    ``lost``, ``duplicated`` (dropped) and ``reordered`` (delivered) datagrams are counted
    from ``aerflow`` sequence numbers, summed over ``streams``.
    """

    datagrams: int = 0
    events: int = 0
    bytes: int = 0
    malformed: int = 0
    out_of_range: int = 0
    untimed: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    streams: tuple[StreamStats, ...] = ()


class UdpReceiver(ClosedByWakeUp, Stream):
    """Receives events sent to ``address`` (default 127.0.0.1:3333) and yields packets.

    Binds only the address given: ``"0.0.0.0:3333"`` or ``"[::]:3333"`` to listen on every
    interface. ``buffer_bytes`` is asked for as the socket's receive buffer
    (:attr:`receive_buffer_bytes` holds what the system granted; on Linux at most
    ``2 × net.core.rmem_max``). Datagrams larger than ``max_datagram`` are counted as
    malformed.

    Each packet holds every datagram that was waiting (up to a batch), decoded at once.
    ``spif`` events without timestamps get their arrival time in µs since the first
    datagram. Iteration ends when every ``aerflow`` stream heard has sent its end-of-stream
    datagram, when ``idle_timeout`` seconds pass without a datagram after the first one, or
    when :meth:`close` is called (from any thread). ``timeout`` limits the wait for the
    first datagram: past it, :class:`~aerflow.errors.NetworkTimeoutError` (a TimeoutError).

    :attr:`properties` has ``format="udp"`` and the sensor size given here, else (for
    ``aerflow``) the size the first datagram announces; :meth:`wait_for_data` blocks until
    that datagram is in.
    """

    def __init__(
        self,
        address: str | int | tuple[str, int] | Address = "127.0.0.1:3333",
        *,
        wire: str | WireFormat = "aerflow",
        width: int | None = None,
        height: int | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        buffer_bytes: int = 1 << 26,
        max_datagram: int = MAX_DATAGRAM_BYTES,
    ) -> None:
        self.wire = get_wire_format(wire)
        requested = parse_address(address, default_port=DEFAULT_PORT)
        sensor = check_sensor_size(width, height)
        for name, value in (("timeout", timeout), ("idle_timeout", idle_timeout)):
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be None or a number of seconds >= 0")
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        if not 1 <= max_datagram <= MAX_DATAGRAM_BYTES:
            raise ValueError(f"max_datagram must lie in 1..{MAX_DATAGRAM_BYTES}")
        self.max_datagram = int(max_datagram)
        self._given_size = sensor
        self._socket = open_socket(requested)
        try:
            self.receive_buffer_bytes = self._set_buffer(int(buffer_bytes))
            self._socket.bind(requested.sockaddr)
            self._socket.setblocking(False)
            host, port = self._socket.getsockname()[:2]
        except OSError as error:
            self._socket.close()
            raise NetworkError(error.errno, f"cannot listen at {requested}: {error}") from error
        self.address = Address(str(host), int(port), requested.family)
        slot = self.max_datagram + 1  # a datagram that fills its slot was larger: malformed
        self._stride = (slot + 7) & ~7
        self._slots = max(64, min(MAX_VECTOR, _RECEIVE_BUFFER_BYTES // self._stride))
        self._buffer = np.zeros(self._slots * self._stride, np.uint8)
        self._buffer.fill(1)  # map every page now, not while datagrams pile up
        self._largest = 0  # the largest datagram so far: how many fit in a packet's budget
        smallest_event = 4 if self.wire.name.startswith("spif") else self.wire.record_bytes
        self._budget_bytes = PACKET_EVENTS * smallest_event
        self._lengths = np.zeros(self._slots, np.int64)
        self._arrivals = np.zeros(self._slots, np.int64)
        self._vectors = (
            Vectors(self._buffer, self._stride, self._slots, slot) if mmsg_enabled() else None
        )
        self._decoder = DatagramDecoder(
            self.wire,
            width=None if sensor is None else sensor[0],
            height=None if sensor is None else sensor[1],
        )
        self._decoder.warm_up()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._poll = select.poll()
        self._poll.register(self._socket.fileno(), select.POLLIN)
        self._poll.register(self._wake_read, select.POLLIN)
        self._lock = threading.Lock()
        self._closing = False
        self._released = False
        self._busy = False
        self._ended = False
        self._pending: list[Packet] = []
        self._first_ns: int | None = None
        self._last_ns = 0
        self._wait_start: float | None = None
        self._datagrams = self._bytes = self._oversized = 0
        self._warned_untimed = False
        self._warned_size = False
        self.properties = Properties(
            format="udp",
            width=None if sensor is None else sensor[0],
            height=None if sensor is None else sensor[1],
            live=True,
        )
        self.metadata = {"wire": self.wire.name, "address": str(self.address)}
        log.info(
            "listening for %s at %s (receive buffer %d bytes granted)",
            self.wire.name,
            self.address,
            self.receive_buffer_bytes,
        )

    def _set_buffer(self, requested: int) -> int:
        """Ask for a receive buffer of ``requested`` bytes; what the system granted.

        Linux caps SO_RCVBUF at ``net.core.rmem_max`` (and reports twice the size set, its
        bookkeeping included); a process allowed to (CAP_NET_ADMIN) gets the size asked for
        through SO_RCVBUFFORCE.
        """
        if requested > 0:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, requested)
            force = getattr(socket, "SO_RCVBUFFORCE", _SO_RCVBUFFORCE)
            granted = int(self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
            if force is not None and granted < requested:
                with contextlib.suppress(OSError):  # EPERM without CAP_NET_ADMIN
                    self._socket.setsockopt(socket.SOL_SOCKET, force, requested)
        granted = int(self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        if granted < requested // 2:
            log.info(
                "asked for a %d-byte UDP receive buffer, got %d (raise net.core.rmem_max "
                "to keep bursts from being dropped)",
                requested,
                granted,
            )
        return granted

    # -- state ------------------------------------------------------------------------------
    @property
    def stats(self) -> UdpReceiverStats:
        decoder = self._decoder
        streams = tuple(decoder.stream_stats())
        return UdpReceiverStats(
            datagrams=self._datagrams,
            events=decoder.events,
            bytes=self._bytes,
            malformed=decoder.malformed + self._oversized,
            out_of_range=decoder.out_of_range,
            untimed=decoder.untimed,
            lost=sum(s.lost for s in streams),
            duplicated=sum(s.duplicated for s in streams),
            reordered=sum(s.reordered for s in streams),
            streams=streams,
        )

    @property
    def closed(self) -> bool:
        return self._closing

    def wait_for_data(self) -> Properties:
        """Block until the first datagram is in (or the stream ends), then return the
        properties, with the sensor size an ``aerflow`` sender announced. The packet read
        meanwhile is yielded first by the iteration. Raises like iteration does."""
        if self._first_ns is None and not self._pending and not self._ended:
            packet = self._guarded_next()
            if packet is not None:
                self._pending.append(packet)
        return self.properties

    # -- iteration --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Packet]:
        while self._pending:
            yield self._pending.pop(0)
        while True:
            packet = self._guarded_next()
            if packet is None:
                return
            yield packet

    def _guarded_next(self) -> Packet | None:
        with self._lock:
            if self._closing or self._ended:
                return None
            if self._busy:
                raise RuntimeError("a UdpReceiver is iterated by one thread at a time")
            self._busy = True
        try:
            return self._next_packet()
        finally:
            with self._lock:
                self._busy = False
                if self._closing:
                    self._release()

    def _next_packet(self) -> Packet | None:
        """The next packet with events, or None at the end."""
        if self._wait_start is None:
            self._wait_start = time.monotonic()
        while not self._closing:
            n = self._fill()
            if n == 0:
                if not self._wait():
                    return None
                continue
            events = self._decode(n)
            if self._decoder.all_ended():
                self._ended = True
                parts = [events]
                while (n := self._fill()) > 0:  # what was already queued behind the end
                    parts.append(self._decode(n))
                events = np.concatenate(parts) if len(parts) > 1 else events
                log.debug("every stream ended: %s", self.stats)
                return Packet(events) if len(events) else None
            if len(events):
                return Packet(events)
        return None

    def _wait(self) -> bool:
        """Wait for a datagram: True when one may be there, False at idle timeout or close."""
        now = time.monotonic()
        if self._first_ns is None:
            limit = None if self.timeout is None else self._wait_start_or(now) + self.timeout
        else:
            limit = None if self.idle_timeout is None else self._last_ns / 1e9 + self.idle_timeout
        if limit is not None and now >= limit:
            if self._first_ns is None:
                raise NetworkTimeoutError(
                    errno.ETIMEDOUT,
                    f"no datagram arrived at {self.address} within {self.timeout} s",
                )
            log.debug("no datagram for %s s: the stream ends", self.idle_timeout)
            return False
        wait_ms = None if limit is None else max(1, int(np.ceil((limit - now) * 1000)))
        for fd, _ in self._poll.poll(wait_ms):
            if fd == self._wake_read:
                with contextlib.suppress(OSError):
                    os.read(self._wake_read, 64)
                return not self._closing
        return True

    def _wait_start_or(self, now: float) -> float:
        return now if self._wait_start is None else self._wait_start

    def _fill(self) -> int:
        """Take the waiting datagrams, up to the slots and about PACKET_EVENTS events; their
        count."""
        n = 0
        taken = 0
        while n < self._slots and taken < self._budget_bytes:
            typical = max(self._largest, 64)
            want = min(self._slots - n, max(1, (self._budget_bytes - taken) // typical))
            got = self._receive(n, want)
            if got == 0:
                break
            now = time.monotonic_ns()
            if self._first_ns is None:
                self._first_ns = now
                self._check_first_datagram(n)
            self._last_ns = now
            self._arrivals[n : n + got] = (now - self._first_ns) // 1000
            lengths = self._lengths[n : n + got]
            taken += int(lengths.sum())
            self._largest = max(self._largest, int(lengths.max()))
            n += got
        return n

    def _check_first_datagram(self, slot: int) -> None:
        """Warn when ``wire`` is not the one the sender speaks: aerflow's own datagrams
        announce themselves, and decoded as another format they give wrong events."""
        if self.wire.name == "aerflow":
            return
        start = slot * self._stride
        if self._buffer[start : start + len(AERFLOW_MAGIC)].tobytes() == AERFLOW_MAGIC:
            log.warning(
                "the datagrams at %s are in the aerflow wire format, not %s: receive them "
                "with wire='aerflow' (--wire aerflow)",
                self.address,
                self.wire.name,
            )

    def _receive(self, first: int, count: int) -> int:
        """Up to ``count`` datagrams received without waiting into slots from ``first``."""
        if self._vectors is not None:
            assert MMSG is not None
            got = MMSG[0](
                self._socket.fileno(), self._vectors.at(first), count, socket.MSG_DONTWAIT, None
            )
            if got < 0:
                code = ctypes.get_errno()
                if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNREFUSED):
                    return 0
                raise_errno("cannot receive at", self.address)
            self._lengths[first : first + got] = self._vectors.message_lengths[first : first + got]
            return int(got)
        view = self._buffer.data
        stride = self._stride
        size = self.max_datagram + 1
        got = 0
        while got < count:
            start = (first + got) * stride
            try:
                length = self._socket.recv_into(view[start : start + size], size)
            except (BlockingIOError, InterruptedError, ConnectionRefusedError):
                break
            except OSError as error:
                raise NetworkError(
                    error.errno, f"cannot receive at {self.address}: {error}"
                ) from error
            self._lengths[first + got] = length
            got += 1
        return got

    def _decode(self, n: int) -> npt.NDArray[Any]:
        lengths = self._lengths
        self._datagrams += n
        self._bytes += int(lengths[:n].sum())
        oversized = lengths[:n] > self.max_datagram
        if oversized.any():
            count = int(oversized.sum())
            self._oversized += count
            self._bytes -= int(lengths[:n][oversized].sum())
            lengths[:n][oversized] = -1
            log.debug("%d datagrams larger than max_datagram=%d skipped", count, self.max_datagram)
        decoder = self._decoder
        result = np.empty(decoder.capacity(lengths, n), EVENTS_DTYPE)
        count = len(decoder.decode(self._buffer, self._stride, lengths, n, self._arrivals, result))
        result.resize(count, refcheck=False)  # no view of it exists: shrink in place
        if not self._warned_untimed and self.wire.times == "none" and len(result):
            self._warned_untimed = True
            log.info("spif events carry no time: using arrival times (µs since first datagram)")
        if self.properties.width is None or not self._warned_size:
            self._learn_size()
        return result

    def _learn_size(self) -> None:
        announced = self._decoder.sensor_size
        if announced is None:
            return
        if self._given_size is None:
            self.properties = replace(self.properties, width=announced[0], height=announced[1])
            self._warned_size = True
        elif announced != self._given_size and not self._warned_size:
            self._warned_size = True
            log.warning(
                "the sender announces a %dx%d sensor; keeping the %dx%d given",
                *announced,
                *self._given_size,
            )

    # -- closing ----------------------------------------------------------------------------
    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._socket.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
        self._vectors = None
        log.debug("closed %s: %s", self.address, self.stats)

    def __repr__(self) -> str:
        return f"UdpReceiver({str(self.address)!r}, wire={self.wire.name!r})"


def receive(
    address: str | int | tuple[str, int] | Address = "127.0.0.1:3333", **options: Any
) -> Packet:
    """Every event of one finite transfer, as one packet: :class:`UdpReceiver` with the same
    arguments, read until the end of stream (or ``idle_timeout``)."""
    with UdpReceiver(address, **options) as receiver:
        packets = [packet.events for packet in receiver]
    return Packet(np.concatenate(packets) if packets else empty_events())
