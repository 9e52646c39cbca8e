"""Events over UDP: :class:`UdpSender` (a sink) and :class:`UdpReceiver` (a source).

Work moves in batches of datagrams, never event by event. The sender encodes a whole packet
into a reusable buffer of datagram slots with one numba call and hands the slots to the
kernel with ``sendmmsg`` (up to 1024 datagrams a system call); the receiver waits in
``poll`` (no sleeping, no busy loop), then takes every queued datagram with ``recvmmsg`` into
a preallocated buffer and decodes the whole batch into one packet with one numba call. Both
system calls are reached through ``ctypes`` on Linux; elsewhere (or when libc lacks them) a
``send``/``recv_into`` loop does the same work a datagram at a time.

The wire formats and their byte layouts are described in :mod:`aerflow.net.codecs`.
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

from ..errors import NetworkError, NetworkTimeoutError
from ..events import EVENTS_DTYPE, Packet, as_events, empty_events
from ..formats._base import check_sensor_size
from ..registry import Option
from ..sinks import ClosedOnExit
from ..stream import Properties, Stream
from ._wakeup import ClosedByWakeUp
from .address import Address, parse_address
from .codecs import (
    AERFLOW_MAGIC,
    MAX_DATAGRAM_BYTES,
    WIRE_FORMATS,
    DatagramDecoder,
    DatagramEncoder,
    StreamStats,
    WireFormat,
    get_wire_format,
)

__all__ = [
    "DEFAULT_PORT",
    "PACE_SPAN_US",
    "PACKET_EVENTS",
    "RECEIVE_OPTIONS",
    "SEND_OPTIONS",
    "UdpReceiver",
    "UdpReceiverStats",
    "UdpSender",
    "UdpSenderStats",
    "receive",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 3333
"""SPIF's and aestream's port."""

PACE_SPAN_US = 1000
"""When pacing, the events of one datagram span at most this many µs (the added latency)."""

# Python does not name it; 33 on Linux's generic socket ABI (x86-64, Arm, RISC-V).
_SO_RCVBUFFORCE = (
    33
    if sys.platform.startswith("linux")
    and platform.machine() in ("x86_64", "aarch64", "arm64", "riscv64")
    else None
)
_MAX_VECTOR = 1024  # UIO_MAXIOV: the most messages one sendmmsg/recvmmsg call takes
_RECEIVE_BUFFER_BYTES = 1 << 24  # datagram slots of a receiver (touched once, then reused)
PACKET_EVENTS = 1 << 18
"""A receiver stops taking datagrams into a packet at about this many events: the packet's
array stays under 4 MiB, which the allocator reuses from packet to packet (larger NumPy
arrays get fresh huge pages each time, several times slower to fill)."""
_EOS_REPEATS = 3  # copies of the end-of-stream datagram, in case one is lost
_EOS_GAP_S = 0.001
_RATE_BURST_S = 0.01  # unused rate budget kept at most this long


# -- options, for command lines and configuration built from them -------------------------------

_WIRE_OPTION = Option(
    "wire",
    str,
    "wire format: aerflow (default), spif, spif-t, faery-t64, faery-t32",
    "aerflow",
    tuple(WIRE_FORMATS),
)
SEND_OPTIONS = (
    _WIRE_OPTION,
    Option("width", int, "sensor width, sent in aerflow headers and checked"),
    Option("height", int, "sensor height, sent in aerflow headers and checked"),
    Option("datagram_bytes", int, "largest UDP payload (default 1472, spif 512; up to 65507)"),
    Option("pace", float, "send in step with event time, at this speed (1 = real time)"),
    Option("rate_limit", float, "at most this many events per second"),
    Option("stream_id", int, "aerflow stream id (default random)"),
)
"""The keywords of :class:`UdpSender` besides the address."""

RECEIVE_OPTIONS = (
    _WIRE_OPTION,
    Option("width", int, "sensor width (aerflow senders announce theirs)"),
    Option("height", int, "sensor height (aerflow senders announce theirs)"),
    Option("timeout", float, "seconds to wait for the first datagram"),
    Option("idle_timeout", float, "end after this many seconds without a datagram"),
    Option("buffer_bytes", int, "socket receive buffer to ask for", 1 << 26),
    Option("max_datagram", int, "largest datagram accepted", MAX_DATAGRAM_BYTES),
)
"""The keywords of :class:`UdpReceiver` besides the address."""


# -- sendmmsg / recvmmsg through ctypes ---------------------------------------------------------


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("header", _MsgHdr), ("length", ctypes.c_uint))


def _load_mmsg() -> tuple[Any, Any] | None:
    """libc's (recvmmsg, sendmmsg), or None where they are not available."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        recvmmsg = libc.recvmmsg
        sendmmsg = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = (
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    )
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    sendmmsg.restype = ctypes.c_int
    return recvmmsg, sendmmsg


_MMSG = _load_mmsg()
_USE_MMSG = _MMSG is not None and os.environ.get("AERFLOW_UDP_MMSG", "1") != "0"
"""Whether new senders and receivers use sendmmsg/recvmmsg (tests switch it off to cover the
one-datagram-at-a-time path; so does ``AERFLOW_UDP_MMSG=0``)."""


def _bytes_at(address: int, size: int) -> npt.NDArray[np.uint8]:
    pointer = ctypes.cast(address, ctypes.POINTER(ctypes.c_uint8))
    array: npt.NDArray[np.uint8] = np.ctypeslib.as_array(pointer, shape=(size,))
    return array


class _Vectors:
    """mmsghdr/iovec arrays describing ``slots`` slots of ``stride`` bytes in ``buffer``."""

    def __init__(self, buffer: npt.NDArray[np.uint8], stride: int, slots: int, size: int):
        self.buffer = buffer  # keeps the memory the vectors point into alive
        self.iov = (_IoVec * slots)()
        self.messages = (_MMsgHdr * slots)()
        base = buffer.ctypes.data
        for i in range(slots):
            self.iov[i].base = base + i * stride
            self.iov[i].length = size
            self.messages[i].header.iov = ctypes.addressof(self.iov[i])
            self.messages[i].header.iovlen = 1
        self.address = ctypes.addressof(self.messages)
        raw_iov = _bytes_at(ctypes.addressof(self.iov), ctypes.sizeof(self.iov))
        raw_msg = _bytes_at(self.address, ctypes.sizeof(self.messages))
        iov_step = ctypes.sizeof(_IoVec) // 8
        msg_step = ctypes.sizeof(_MMsgHdr) // 4
        self.iov_lengths = raw_iov.view(np.uint64)[_IoVec.length.offset // 8 :: iov_step]
        self.message_lengths = raw_msg.view(np.uint32)[_MMsgHdr.length.offset // 4 :: msg_step]

    def at(self, index: int) -> int:
        """Address of message ``index``."""
        return self.address + index * ctypes.sizeof(_MMsgHdr)


def _raise_errno(action: str, where: Address) -> None:
    code = ctypes.get_errno()
    raise NetworkError(code, f"{action} {where}: {os.strerror(code)}")


# -- sockets ------------------------------------------------------------------------------------


def _open_socket(address: Address) -> socket.socket:
    try:
        return socket.socket(address.family, socket.SOCK_DGRAM)
    except OSError as error:
        family = "IPv6" if address.family == socket.AF_INET6 else "IPv4"
        raise NetworkError(error.errno, f"cannot open an {family} UDP socket: {error}") from error


# -- sender -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UdpSenderStats:
    """What a sender has handed to the network so far (bytes are UDP payload bytes)."""

    datagrams: int = 0
    events: int = 0
    bytes: int = 0
    refused: int = 0
    """Sends the system refused because nothing listened at the destination (retried)."""


class UdpSender(ClosedOnExit):
    """Sends packets of events to ``address`` in one of the wire formats.

    ``address`` is ``"host:port"``, ``"[::1]:port"`` or a port on 127.0.0.1 (see
    :func:`~aerflow.net.parse_address`). ``wire`` is one of
    :data:`~aerflow.net.codecs.WIRE_FORMATS` (``"aerflow"`` by default). ``width`` and
    ``height`` go into ``aerflow`` headers and bound the coordinates for every format.
    ``datagram_bytes`` caps the UDP payload (default: 1472, one Ethernet frame, or 512 for
    ``spif``/``spif-t`` as aestream reads no more); up to 65507 on loopback.

    ``pace`` (True, or a speed factor) sends each datagram when its events' time has come,
    relative to the first event and to the first send, as if the recording were live;
    ``rate_limit`` caps the rate in events/s. ``stream_id`` (random by default) tells
    ``aerflow`` receivers which sender a datagram came from.

    :meth:`write` raises ValueError, sending nothing of the packet, when a coordinate does
    not fit the format (e.g. x ≥ 32768 for ``spif``) or the sensor. :meth:`close` (or the
    end of a ``with`` block) sends ``aerflow``'s end-of-stream datagram; an exception inside
    the block sends it flagged as aborted.
    """

    def __init__(
        self,
        address: str | int | tuple[str, int] | Address,
        *,
        wire: str | WireFormat = "aerflow",
        width: int | None = None,
        height: int | None = None,
        datagram_bytes: int | None = None,
        pace: bool | float = False,
        rate_limit: float | None = None,
        stream_id: int | None = None,
    ) -> None:
        self.address = parse_address(address, default_port=DEFAULT_PORT)
        if self.address.port == 0:
            raise ValueError(f"cannot send to port 0 ({self.address})")
        self.wire = get_wire_format(wire)
        sensor = check_sensor_size(width, height)
        self.speed = _speed(pace)
        if rate_limit is not None and not (rate_limit > 0 and np.isfinite(rate_limit)):
            raise ValueError(f"rate_limit must be a positive number of events/s, got {rate_limit}")
        self.rate_limit = None if rate_limit is None else float(rate_limit)
        if stream_id is None:
            stream_id = int.from_bytes(os.urandom(4), "little")
        self._encoder = DatagramEncoder(
            self.wire,
            datagram_bytes,
            width=None if sensor is None else sensor[0],
            height=None if sensor is None else sensor[1],
            stream_id=stream_id,
            max_span=PACE_SPAN_US if self.speed else None,
        )
        self.datagram_bytes = self._encoder.datagram_bytes
        self.stream_id = self._encoder.stream_id
        self._socket = _open_socket(self.address)
        try:
            self._socket.connect(self.address.sockaddr)
        except OSError as error:
            self._socket.close()
            raise NetworkError(error.errno, f"cannot send to {self.address}: {error}") from error
        self._vectors: _Vectors | None = None
        if _USE_MMSG:
            encoder = self._encoder
            self._vectors = _Vectors(encoder.buffer, encoder.stride, encoder.slots, 0)
        self._datagrams = self._events = self._bytes = self._refused = 0
        self._time_origin: int | None = None  # event time of the first event sent (pacing)
        self._wall_origin = 0.0
        self._rate_free = 0.0  # monotonic time from which the next event may go (rate limit)
        self._rate_base = 0.0
        self._closed = False
        self._warned_refused = False
        log.debug(
            "sending %s to %s, %d-byte datagrams, stream id %08x",
            self.wire.name,
            self.address,
            self.datagram_bytes,
            self.stream_id,
        )

    @property
    def stats(self) -> UdpSenderStats:
        return UdpSenderStats(self._datagrams, self._events, self._bytes, self._refused)

    @property
    def sensor_size(self) -> tuple[int, int] | None:
        encoder = self._encoder
        return (encoder.width, encoder.height) if encoder.width else None

    def write(self, events: npt.ArrayLike | Packet, triggers: npt.ArrayLike | None = None) -> None:
        """Send events (a :class:`~aerflow.Packet` or any layout :func:`~aerflow.as_events`
        takes). Triggers, IMU samples and frames have no place on the wire and are ignored."""
        if self._closed:
            raise ValueError("write to a closed UdpSender")
        array = events.events if isinstance(events, Packet) else events
        data = np.ascontiguousarray(as_events(array))
        if len(data) == 0:
            return
        encoder = self._encoder
        encoder.check(data)
        position = 0
        while position < len(data):
            position, filled = encoder.encode(data, position)
            self._send_slots(filled)

    def _send_slots(self, filled: int) -> None:
        encoder = self._encoder
        if not self.speed and self.rate_limit is None:
            self._send_range(0, filled)
            return
        due = self._due_times(filled)
        i = 0
        while i < filled:
            now = time.monotonic()
            j = int(np.searchsorted(due, now, side="right"))
            if j > i:
                self._send_range(i, j)
                i = j
            else:
                time.sleep(due[i] - now)
        if self.rate_limit is not None:
            events = int(encoder.counts[:filled].sum())
            self._rate_free = self._rate_base + events / self.rate_limit

    def _due_times(self, filled: int) -> npt.NDArray[np.float64]:
        """Monotonic time at which each slot may go (non-decreasing)."""
        encoder = self._encoder
        now = time.monotonic()
        due = np.full(filled, now)
        if self.speed:
            if self._time_origin is None:
                self._time_origin = int(encoder.last_times[0])
                self._wall_origin = now
            # In uint64, then read as int64: exact for times anywhere in 0..2**64 - 1 (a
            # subtraction in int64 would overflow for times from 2**63 µs on).
            since = encoder.last_times[:filled] - np.uint64(self._time_origin)
            event_time = since.view(np.int64)
            due = np.maximum(due, self._wall_origin + event_time / (1e6 * self.speed))
        if self.rate_limit is not None:
            self._rate_base = max(self._rate_free, now - _RATE_BURST_S)
            before = np.cumsum(encoder.counts[:filled]) - encoder.counts[:filled]
            due = np.maximum(due, self._rate_base + before / self.rate_limit)
        result: npt.NDArray[np.float64] = np.maximum.accumulate(due)
        return result

    def _send_range(self, first: int, stop: int) -> None:
        encoder = self._encoder
        lengths = encoder.lengths
        if self._vectors is not None:
            assert _MMSG is not None
            sendmmsg = _MMSG[1]
            vectors = self._vectors
            vectors.iov_lengths[first:stop] = lengths[first:stop]
            fd = self._socket.fileno()
            i = first
            while i < stop:
                count = min(stop - i, _MAX_VECTOR)
                sent = sendmmsg(fd, vectors.at(i), count, 0)
                if sent < 0:
                    self._send_error(ctypes.get_errno())
                    continue
                i += sent
        else:
            view = encoder.buffer.data
            stride = encoder.stride
            for i in range(first, stop):
                start = i * stride
                chunk = view[start : start + int(lengths[i])]
                while True:
                    try:
                        self._socket.send(chunk)
                        break
                    except OSError as error:
                        self._send_error(error.errno)
        self._datagrams += stop - first
        self._events += int(encoder.counts[first:stop].sum())
        self._bytes += int(lengths[first:stop].sum())

    def _send_error(self, code: int | None) -> None:
        """Decide about a failed send: return to retry it, raise to give up."""
        if code == errno.ECONNREFUSED:
            # An ICMP "port unreachable" for an earlier datagram; this one was not sent.
            self._refused += 1
            if not self._warned_refused:
                self._warned_refused = True
                log.warning("nothing is listening at %s (yet); datagrams may be lost", self.address)
            return
        if code in (errno.EINTR, errno.EAGAIN, errno.ENOBUFS):
            if code != errno.EINTR:
                time.sleep(0.0005)
            return
        raise NetworkError(code, f"cannot send to {self.address}: {os.strerror(code or 0)}")

    def _send_raw(self, datagram: bytes) -> None:
        for _ in range(8):
            try:
                self._socket.send(datagram)
                return
            except OSError as error:
                self._send_error(error.errno)

    def close(self) -> None:
        """Finish the stream (``aerflow``: send the end-of-stream datagram) and close."""
        self._finish(aborted=False)

    def abort(self) -> None:
        """Stop after an error (``aerflow``: the end-of-stream datagram says so)."""
        self._finish(aborted=True)

    def _finish(self, aborted: bool) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.wire.name == "aerflow":
                datagram = self._encoder.end_of_stream(aborted=aborted)
                for repeat in range(_EOS_REPEATS):
                    if repeat:
                        time.sleep(_EOS_GAP_S)
                        # A receiver that had the first copy may be gone: a refusal of the
                        # copies says nothing went missing.
                        self._warned_refused = True
                    self._send_raw(datagram)
                self._datagrams += 1
                self._bytes += len(datagram)
        finally:
            self._socket.close()
            self._vectors = None
        log.debug("sent %s to %s", self.stats, self.address)

    def __repr__(self) -> str:
        return f"UdpSender({str(self.address)!r}, wire={self.wire.name!r})"


def _speed(pace: bool | float) -> float:
    if pace is True:
        return 1.0
    if pace is False or pace is None:
        return 0.0
    speed = float(pace)
    if not (speed > 0 and np.isfinite(speed)):
        raise ValueError(f"pace must be True, False or a positive speed factor, got {pace!r}")
    return speed


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
        self._socket = _open_socket(requested)
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
        self._slots = max(64, min(_MAX_VECTOR, _RECEIVE_BUFFER_BYTES // self._stride))
        self._buffer = np.zeros(self._slots * self._stride, np.uint8)
        self._buffer.fill(1)  # map every page now, not while datagrams pile up
        self._largest = 0  # the largest datagram so far: how many fit in a packet's budget
        smallest_event = 4 if self.wire.name.startswith("spif") else self.wire.record_bytes
        self._budget_bytes = PACKET_EVENTS * smallest_event
        self._lengths = np.zeros(self._slots, np.int64)
        self._arrivals = np.zeros(self._slots, np.int64)
        self._vectors = (
            _Vectors(self._buffer, self._stride, self._slots, slot) if _USE_MMSG else None
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
            assert _MMSG is not None
            got = _MMSG[0](
                self._socket.fileno(), self._vectors.at(first), count, socket.MSG_DONTWAIT, None
            )
            if got < 0:
                code = ctypes.get_errno()
                if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNREFUSED):
                    return 0
                _raise_errno("cannot receive at", self.address)
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
