"""Events over UDP: :class:`UdpSender` (a sink) here, :class:`UdpReceiver` (a source) in
:mod:`aerflow.net.udp_receiver`.

Work moves in batches of datagrams, never event by event. The sender encodes a whole packet
into a reusable buffer of datagram slots with one numba call and hands the slots to the
kernel with ``sendmmsg`` (up to 1024 datagrams a system call); the receiver waits in
``poll`` (no sleeping, no busy loop), then takes every queued datagram with ``recvmmsg`` into
a preallocated buffer and decodes the whole batch into one packet with one numba call. Both
system calls are reached through ``ctypes`` on Linux (:mod:`aerflow.net.mmsg`); elsewhere (or
when libc lacks them) a ``send``/``recv_into`` loop does the same work a datagram at a time.

The wire formats and their byte layouts are described in :mod:`aerflow.net.wire`.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from ..errors import NetworkError
from ..events import Packet, as_events
from ..sinks import ClosedOnExit
from .address import Address, parse_address
from .mmsg import MAX_VECTOR, MMSG, Vectors, open_socket
from .wire import DatagramEncoder, WireFormat, get_wire_format

__all__ = [
    "DEFAULT_PORT",
    "PACE_SPAN_US",
    "UdpSender",
    "UdpSenderStats",
    "mmsg_enabled",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 3333
"""SPIF's and aestream's port."""

PACE_SPAN_US = 1000
"""When pacing, the events of one datagram span at most this many µs (the added latency)."""

_EOS_REPEATS = 3  # copies of the end-of-stream datagram, in case one is lost
_EOS_GAP_S = 0.001
_RATE_BURST_S = 0.01  # unused rate budget kept at most this long

_MMSG = MMSG
_USE_MMSG = _MMSG is not None and os.environ.get("AERFLOW_UDP_MMSG", "1") != "0"
"""Whether new senders and receivers use sendmmsg/recvmmsg (tests switch it off to cover the
one-datagram-at-a-time path; so does ``AERFLOW_UDP_MMSG=0``)."""


def mmsg_enabled() -> bool:
    """Whether a sender or receiver made now uses sendmmsg/recvmmsg."""
    return _USE_MMSG


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
    :data:`~aerflow.net.wire.WIRE_FORMATS` (``"aerflow"`` by default). ``width`` and
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
        self._socket = open_socket(self.address)
        try:
            self._socket.connect(self.address.sockaddr)
        except OSError as error:
            self._socket.close()
            raise NetworkError(error.errno, f"cannot send to {self.address}: {error}") from error
        self._vectors: Vectors | None = None
        if _USE_MMSG:
            encoder = self._encoder
            self._vectors = Vectors(encoder.buffer, encoder.stride, encoder.slots, 0)
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
                count = min(stop - i, MAX_VECTOR)
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
