"""DV's network streams over TCP and UNIX sockets: :class:`DvClient` (a source) and
:class:`DvServer` (a sink).

iniVation's DV software and dv-processing (``dv.io.NetworkWriter`` / ``NetworkReader``) move
live data this way. As soon as a client connects, the server sends it the AEDAT 4 IOHeader
alone (a size-prefixed ``IOHE`` FlatBuffer, no version line, data table position -1) whose XML
description lists the streams, then packets exactly as an AEDAT 4 file holds them: int32
stream id, int32 payload size, the payload compressed as the header says. The client sends
nothing; the stream ends when the connection does. The framing, the description and the
packet codecs are the AEDAT 4 file code's own (:mod:`aerflow.formats.aedat4_packets`,
:mod:`~aerflow.formats.aedat4_description`, :func:`~aerflow.formats.aedat4.scan_packets`).
TCP streams may be encrypted with TLS (``tls_cert``, ``tls_key``, ``tls_ca``), as dv-processing's
are. Byte-level facts: ``docs/formats/dv-network.md``.

    from aerflow.net import DvClient, DvServer

    with DvClient("tcp://127.0.0.1:7777") as client:       # a stream of packets
        for packet in client: ...

    with DvServer("tcp://127.0.0.1:7777", width=640, height=480) as server:
        server.write(packet)                                 # to every connected client
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import ssl
import stat
import struct
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from .._extent import event_extent
from ..errors import (
    ConfigurationError,
    FormatError,
    NetworkError,
    NetworkTimeoutError,
    OutOfRangeWarning,
    TruncatedDataWarning,
)
from ..events import (
    EVENTS_DTYPE,
    IMU_DTYPE,
    TRIGGERS_DTYPE,
    Frame,
    Packet,
    as_events,
    empty_imu,
    empty_triggers,
)
from ..formats.aedat4 import SCAN_NEGATIVE_SIZE, SCAN_TORN, scan_packets
from ..formats.aedat4_description import (
    COMPRESSIONS,
    HeaderError,
    StreamInfo,
    build_description,
    build_io_header,
    parse_description,
    parse_io_header,
)
from ..formats.aedat4_packets import (
    PACKET_HEADER,
    PayloadError,
    compress,
    decode_events,
    decode_frame,
    decode_imu,
    decode_triggers,
    decompress,
    encode_events,
    encode_frame,
    encode_imu,
    encode_triggers,
)
from ..formats.aedat4_writer import (
    DEFAULT_PACKET_EVENTS,
    EVENTS_ID,
    FRAMES_ID,
    IMU_ID,
    TRIGGERS_ID,
    describe_stream,
)
from ..sinks import ClosedOnExit
from ..stream import Properties, Stream
from ._wakeup import ClosedByWakeUp
from .address import Address, parse_address

__all__ = [
    "DEFAULT_DV_PORT",
    "DvAddress",
    "DvClient",
    "DvClientStats",
    "DvServer",
    "DvServerStats",
    "parse_dv_address",
]

log = logging.getLogger(__name__)

DEFAULT_DV_PORT = 7777
"""Where ``tcp://HOST`` without a port connects or listens."""

STREAM_NAMES = {"events": EVENTS_ID, "frames": FRAMES_ID, "imu": IMU_ID, "triggers": TRIGGERS_ID}
"""What a :class:`DvServer` can serve, with the stream id each gets (DV's usual ids)."""

_EVENTS, _TRIGGERS, _IMU, _FRAMES, _SKIPPED = range(5)
_KINDS = {"EVTS": _EVENTS, "TRIG": _TRIGGERS, "IMUS": _IMU, "FRME": _FRAMES}
_MAX_HEADER = 1 << 24  # an XML description of a few streams takes a few KiB
_MAX_PACKET = 1 << 30
_RECEIVE_BUFFER = 1 << 22  # what one packet of a client holds at most, unless a DV packet is larger
_SCAN_SLOTS = 4096
_RETRY_GAP_S = 0.1
_BROKEN = {
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
}
"""Errors of an established connection that the network or the server's going away cause."""
_SEND_VECTOR = 64  # buffers per sendmsg call
_TLS_GATHER = 1 << 18  # bytes joined for one TLS send
_MAX_UNIX_PATH = 107  # sun_path holds 108 bytes with the terminating NUL
_COORDINATE_LIMIT = 1 << 15
_MAX_TIME = (1 << 63) - 1


# -- addresses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DvAddress:
    """A TCP address (``tcp``) or a UNIX socket path (``path``): exactly one is set. ``tls``:
    the TCP stream is encrypted."""

    tcp: Address | None = None
    path: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix://{self.path}"
        return f"{'tls' if self.tls else 'tcp'}://{self.tcp}"

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_UNIX if self.tcp is None else self.tcp.family

    @property
    def sockaddr(self) -> Any:
        """What ``socket.bind`` and ``socket.connect`` take."""
        return self.path if self.tcp is None else self.tcp.sockaddr


def parse_dv_address(address: str | int | os.PathLike[str] | Address | DvAddress) -> DvAddress:
    """Read a DV stream address.

    ``"tcp://HOST:PORT"`` (``"tcp://[::1]:7777"`` for IPv6; a bare ``"tcp://PORT"``, ``"PORT"``
    or ``HOST:PORT`` is TCP too, on 127.0.0.1 when no host is named), ``"tls://HOST:PORT"``
    (TCP with TLS), ``"unix:///PATH"`` or any text holding a ``/`` (a UNIX socket), an
    ``os.PathLike`` (a UNIX socket).
    """
    if isinstance(address, DvAddress):
        return address
    if isinstance(address, Address | int):
        return DvAddress(tcp=parse_address(address, default_port=DEFAULT_DV_PORT))
    if isinstance(address, os.PathLike):
        return DvAddress(path=_unix_path(os.fspath(address), address))
    if not isinstance(address, str):
        raise TypeError(f"a DV address is a string like 'tcp://127.0.0.1:7777', got {address!r}")
    text = address.strip()
    scheme, separator, rest = text.partition("://")
    if separator:
        scheme = scheme.lower()
        if scheme == "unix":
            return DvAddress(path=_unix_path(rest, address))
        if scheme in ("tcp", "tls"):
            tcp = parse_address(rest, default_port=DEFAULT_DV_PORT)
            return DvAddress(tcp=tcp, tls=scheme == "tls")
        raise ValueError(
            f"unknown scheme {scheme!r} in {address!r}: DV streams are tcp://HOST:PORT, "
            "tls://HOST:PORT or unix:///PATH"
        )
    if text.lower().startswith("unix:"):
        return DvAddress(path=_unix_path(text[5:], address))
    if "/" in text:
        return DvAddress(path=_unix_path(text, address))
    return DvAddress(tcp=parse_address(text, default_port=DEFAULT_DV_PORT))


def _unix_path(path: str, original: object) -> str:
    if not path:
        raise ValueError(f"no socket path in {original!r}: write unix:///path/to/socket")
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        raise ValueError(f"UNIX socket paths hold at most {_MAX_UNIX_PATH} bytes: {path!r}")
    return path


# -- TLS ----------------------------------------------------------------------------------------

TlsFile = str | os.PathLike[str] | None


def _secured(address: DvAddress, wanted: bool) -> DvAddress:
    """``address``, made a TLS one when TLS options are given."""
    if not (wanted or address.tls):
        return address
    if address.tcp is None:
        raise ValueError(
            f"TLS is for TCP streams only, not the UNIX socket {address.path} (DV and "
            "dv-processing have no TLS there either): serve tcp://HOST:PORT"
        )
    return replace(address, tls=True)


def _load(what: str, path: TlsFile, load: Any) -> None:
    try:
        load()
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(
            f"cannot load the TLS {what} {os.fspath(path or '')}: {_tls_reason(error)}"
        ) from None


def _client_context(ca: TlsFile, cert: TlsFile, key: TlsFile) -> ssl.SSLContext:
    """Verifies the server against ``ca`` (the system's CAs when None), host name included;
    presents ``cert`` (with ``key``) to a server that asks for a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _load("CA file", ca, lambda: context.load_verify_locations(cafile=ca))
    if cert is not None:
        _load("certificate or key", cert, lambda: context.load_cert_chain(cert, key))
    return context


def _server_context(cert: TlsFile, key: TlsFile, ca: TlsFile) -> ssl.SSLContext:
    """Presents ``cert`` (with ``key``); with ``ca``, asks every client for a certificate
    signed by it and refuses those without one (mutual TLS, as dv-processing's server)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load("certificate or key", cert, lambda: context.load_cert_chain(cert, key))  # type: ignore[arg-type]
    if ca is not None:
        _load("CA file", ca, lambda: context.load_verify_locations(cafile=ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _tls_reason(error: OSError) -> str:
    """One line saying why a TLS operation failed."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    reason = getattr(error, "reason", None)
    if isinstance(error, ssl.SSLError) and reason:
        return str(reason).lower().replace("_", " ")
    return error.strerror or str(error)


# -- client -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DvClientStats:
    """What a client has received so far.

    ``skipped`` counts packets of streams it does not take (a second event stream, types
    aerflow has no place for, ids the description does not name); ``malformed`` packets
    whose payload did not decompress or decode (skipped, the framing being intact);
    ``out_of_range`` events outside the sensor (dropped); ``reconnects`` times the connection
    broke and was made again (with ``retry``).
    """

    packets: int = 0
    bytes: int = 0
    events: int = 0
    triggers: int = 0
    imu: int = 0
    frames: int = 0
    skipped: int = 0
    malformed: int = 0
    out_of_range: int = 0
    reconnects: int = 0


class DvClient(ClosedByWakeUp, Stream):
    """Connects to a DV server (DV's network output, dv-processing's ``NetworkWriter``, a
    :class:`DvServer`) at ``address`` and yields its data as packets.

    ``address``: ``"tcp://HOST:PORT"`` or ``"unix:///PATH"`` (see :func:`parse_dv_address`).
    The connection is made, and the stream description read, by :meth:`wait_for_data` or the
    first iteration: :attr:`properties` then hold the sensor size of the event stream (unless
    ``width``/``height`` are given), :attr:`streams` the streams described. Events come from
    one event stream (the first, or the one whose id is ``stream``), triggers, IMU samples and
    frames from every stream of their type; other streams are skipped and counted.

    ``retry``: the reconnect policy, in seconds. A refused connection (no server yet) is tried
    again for that long; and when an established connection breaks (reset, or ended inside a
    packet) the client connects again, for that long, reads the description again and goes
    on (logged, counted in ``stats.reconnects``; the packet cut is lost). Without ``retry``
    a broken connection ends the stream. ``timeout``: seconds to wait for the connection and
    then for each piece of data; past it, :class:`~aerflow.errors.NetworkTimeoutError` (a
    TimeoutError). Iteration ends when the server closes the connection between two packets,
    or when :meth:`close` is called (from any thread). A server that is not a DV server, or
    breaks the framing, raises :class:`~aerflow.errors.FormatError` naming the byte of the
    connection; a packet cut by the end of the connection is dropped with a
    :class:`~aerflow.errors.TruncatedDataWarning`.

    TLS (TCP only), as an address ``"tls://HOST:PORT"`` or any of: ``tls_ca``, the CA file
    (PEM) that signed the server's certificate (default: the system's CAs; the certificate
    must name the address's host); ``tls_cert`` and ``tls_key``, the client's certificate
    chain and private key (PEM; the key may be in the certificate file), for a server that
    asks for one (dv-processing's encrypted server always does).
    """

    def __init__(
        self,
        address: str | int | os.PathLike[str] | Address | DvAddress = "tcp://127.0.0.1:7777",
        *,
        timeout: float | None = None,
        retry: float | None = None,
        stream: int | None = None,
        width: int | None = None,
        height: int | None = None,
        tls_ca: TlsFile = None,
        tls_cert: TlsFile = None,
        tls_key: TlsFile = None,
    ) -> None:
        wanted = any(f is not None for f in (tls_ca, tls_cert, tls_key))
        self.address = _secured(parse_dv_address(address), wanted)
        if tls_key is not None and tls_cert is None:
            raise ValueError("tls_key goes with tls_cert: give the certificate it belongs to")
        self._tls = _client_context(tls_ca, tls_cert, tls_key) if self.address.tls else None
        self._tls_identity = tls_cert is not None
        for name, value in (("timeout", timeout), ("retry", retry)):
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be None or a number of seconds >= 0")
        self.timeout = timeout
        self.retry = retry
        self._chosen_stream = stream
        self._given_size = check_sensor_size(width, height)
        self.properties = Properties(
            format="dv",
            width=None if self._given_size is None else self._given_size[0],
            height=None if self._given_size is None else self._given_size[1],
            live=True,
        )
        self.metadata: dict[str, str] = {"address": str(self.address)}
        self.streams: list[StreamInfo] = []
        self.compression = "NONE"
        self._codec = 0
        self._kinds: dict[int, int] = {}
        self._width = self._height = _COORDINATE_LIMIT
        self._socket: socket.socket | None = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._lock = threading.Lock()
        self._closing = False
        self._released = False
        self._busy = False
        self._opened = False
        self._ended = False
        self._buffer = np.empty(_RECEIVE_BUFFER, np.uint8)
        self._start = self._end = 0  # the bytes received and not yet taken
        self._consumed = 0  # bytes of the connection before _buffer[0]
        self._offsets = np.empty(_SCAN_SLOTS, np.int64)
        self._ids = np.empty(_SCAN_SLOTS, np.int32)
        self._sizes = np.empty(_SCAN_SLOTS, np.int64)
        self._packets = self._bytes = self._events = 0
        self._triggers = self._imu = self._frames = 0
        self._skipped = self._malformed = self._out_of_range = 0
        self._reconnects = 0
        self._broken: str | None = None  # why the connection broke, until it is made again
        self._unknown_ids: set[int] = set()
        self._pending: list[Packet] = []

    # -- state ------------------------------------------------------------------------------
    @property
    def stats(self) -> DvClientStats:
        return DvClientStats(
            packets=self._packets,
            bytes=self._bytes,
            events=self._events,
            triggers=self._triggers,
            imu=self._imu,
            frames=self._frames,
            skipped=self._skipped,
            malformed=self._malformed,
            out_of_range=self._out_of_range,
            reconnects=self._reconnects,
        )

    @property
    def closed(self) -> bool:
        return self._closing

    def wait_for_data(self) -> Properties:
        """Connect and read the stream description (if not done yet), then return the
        properties. Raises like iteration does."""
        self._guarded(self._open)
        return self.properties

    # -- iteration --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Packet]:
        while True:
            packet = self._guarded(self._next_packet)
            if packet is None:
                return
            yield packet

    def _guarded(self, work: Any) -> Any:
        with self._lock:
            if self._closing or self._ended:
                return None
            if self._busy:
                raise RuntimeError("a DvClient is used by one thread at a time")
            self._busy = True
        try:
            return work()
        finally:
            with self._lock:
                self._busy = False
                if self._closing:
                    self._release()

    def _next_packet(self) -> Packet | None:
        if not self._opened:
            self._open()
        while not self._closing:
            found, stop, status = scan_packets(
                self._buffer, self._start, self._end, self._offsets, self._ids, self._sizes
            )
            if found:
                packet = self._decode(found)
                self._start = stop
                if packet is not None:
                    return packet
                continue
            if status == SCAN_NEGATIVE_SIZE:
                size = int(self._buffer[stop + 4 : stop + 8].view("<i4")[0])
                raise self._error(f"a packet header gives a negative size ({size})", stop)
            if status == SCAN_TORN and self._end - stop >= PACKET_HEADER.size:
                size = int(self._buffer[stop + 4 : stop + 8].view("<i4")[0])
                if size > _MAX_PACKET:
                    raise self._error(
                        f"a packet header gives a size of {size} bytes, more than any DV "
                        f"packet ({_MAX_PACKET}): not a DV packet stream",
                        stop,
                    )
                self._make_room(PACKET_HEADER.size + size)
            else:
                self._make_room(PACKET_HEADER.size)
            if not self._receive():
                if self._closing:
                    return None
                cut = self._end - self._start
                if self.retry is not None and (self._broken is not None or cut):
                    self._reconnect(self._broken or f"ended inside a packet, {cut} bytes into it")
                    continue
                self._finish()
                return None
        return None

    def _reconnect(self, why: str) -> None:
        """Connect again after the connection broke, for ``retry`` seconds at most, and read
        the description again."""
        log.warning(
            "%s: the connection broke (%s): connecting again for up to %s s",
            self.address,
            why,
            self.retry,
        )
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._start = self._end = self._consumed = 0  # offsets count from the new connection
        self._broken = None
        size = self.properties.sensor_size
        assert self.retry is not None
        self._connect(time.monotonic() + self.retry, why)
        if self._closing:
            return
        self._read_header()
        if self.properties.sensor_size != size:
            raise NetworkError(
                errno.ECONNABORTED,
                f"{self.address} came back with another sensor ({self.properties.sensor_size} "
                f"instead of {size}): not the same stream",
            )
        self._reconnects += 1
        log.info("%s: connected again (%d reconnects)", self.address, self._reconnects)

    def _finish(self) -> None:
        self._ended = True
        left = self._end - self._start
        if left:
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.address}: the server closed the connection inside a packet at "
                    f"byte {self._consumed + self._start} ({left} bytes dropped)"
                ),
                stacklevel=4,
            )
        if self._out_of_range:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.address}: dropped {self._out_of_range} events outside the "
                    f"{self._width}x{self._height} sensor"
                ),
                stacklevel=4,
            )
        log.debug("%s ended: %s", self.address, self.stats)

    def _error(self, message: str, position: int) -> FormatError:
        return FormatError(message, path=str(self.address), offset=self._consumed + position)

    # -- connecting -------------------------------------------------------------------------
    def _open(self) -> None:
        if self._opened:
            return
        self._connect(None if self.retry is None else time.monotonic() + self.retry)
        if self._closing:
            return
        self._read_header()
        self._opened = True

    def _connect(self, give_up: float | None, broken: str | None = None) -> None:
        """Connect (and shake hands, with TLS), trying a refused connection again until
        ``give_up``; ``broken``: why the previous connection broke."""
        address = self.address
        while not self._closing:
            sock = socket.socket(address.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(address.sockaddr)
            # EAGAIN is a full backlog of a UNIX socket server: retried like a refusal.
            if code in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                limit = None if self.timeout is None else time.monotonic() + self.timeout
                if not self._wait(sock, select.POLLOUT, limit, "the connection"):
                    sock.close()
                    return
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                if address.tcp is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls is not None:
                    secured = self._handshake(sock)
                    if secured is None:
                        return
                    sock = secured
                self._socket = sock
                log.info("connected to the DV server at %s", address)
                return
            sock.close()
            absent = code in (errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET, errno.EAGAIN)
            if absent and give_up is not None and time.monotonic() < give_up:
                self._pause(min(_RETRY_GAP_S, give_up - time.monotonic()))
                continue
            if broken is not None:
                raise NetworkError(
                    code,
                    f"the connection to {address} broke ({broken}) and could not be made "
                    f"again within the {self.retry} s of retry=: {os.strerror(code)}",
                )
            hint = (
                " (no server there: start it first, or give retry= the seconds to keep trying)"
                if absent
                else ""
            )
            raise NetworkError(code, f"cannot connect to {address}: {os.strerror(code)}{hint}")

    def _handshake(self, sock: socket.socket) -> ssl.SSLSocket | None:
        """The TLS connection over ``sock`` once the handshake is done (None on close)."""
        assert self._tls is not None
        assert self.address.tcp is not None
        secured = self._tls.wrap_socket(
            sock,
            server_hostname=self.address.tcp.host,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=False,
        )
        limit = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            while True:
                try:
                    secured.do_handshake()
                    log.debug("%s: %s, %s", self.address, secured.version(), secured.cipher())
                    return secured
                except ssl.SSLWantReadError:
                    mask = select.POLLIN
                except ssl.SSLWantWriteError:
                    mask = select.POLLOUT
                except OSError as error:
                    raise self._tls_error("the TLS handshake with", error) from None
                if not self._wait(secured, mask, limit, "the TLS handshake"):
                    secured.close()
                    return None
        except BaseException:
            secured.close()
            raise

    def _tls_error(self, what: str, error: OSError) -> NetworkError:
        reason = _tls_reason(error)
        if isinstance(error, ssl.SSLCertVerificationError):
            hint = " (give tls_ca= the CA file that signed the server's certificate)"
        elif not self._tls_identity and (
            "certificate" in reason or "unknown ca" in reason or "handshake failure" in reason
        ):
            # TLS 1.2 servers (dv-processing's) say no more than "handshake failure".
            hint = " (does the server ask for a client certificate? give tls_cert= and tls_key=)"
        elif "certificate" in reason or "unknown ca" in reason:
            hint = " (the server did not accept the client certificate)"
        elif any(w in reason for w in ("wrong version", "record layer", "length", "unexpected")):
            hint = " (is the server serving TLS?)"
        else:
            hint = ""
        code = errno.EPROTO if isinstance(error, ssl.SSLError) else error.errno or errno.EPROTO
        return NetworkError(code, f"{what} {self.address} failed: {reason}{hint}")

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless :meth:`close` is called meanwhile."""
        poller = select.poll()
        poller.register(self._wake_read, select.POLLIN)
        if poller.poll(max(1, int(seconds * 1000))):
            with contextlib.suppress(OSError):
                os.read(self._wake_read, 64)

    def _wait(self, sock: socket.socket, mask: int, limit: float | None, what: str) -> bool:
        """Wait until ``sock`` is ready for ``mask``: True when it may be, False on close;
        NetworkTimeoutError past ``limit``."""
        poller = select.poll()
        poller.register(sock.fileno(), mask)
        poller.register(self._wake_read, select.POLLIN)
        while True:
            if self._closing:
                return False
            wait_ms = None
            if limit is not None:
                left = limit - time.monotonic()
                if left <= 0:
                    raise NetworkTimeoutError(
                        errno.ETIMEDOUT,
                        f"{what} from {self.address} did not come within {self.timeout} s",
                    )
                wait_ms = max(1, int(np.ceil(left * 1000)))
            for fd, _ in poller.poll(wait_ms):
                if fd == self._wake_read:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_read, 64)
                    return not self._closing
                return True

    def _read_header(self) -> None:
        self._make_room(4)
        while self._end - self._start < 4:
            if not self._receive():
                raise self._header_error("the server closed the connection before its header")
        size = int(self._buffer[self._start : self._start + 4].view("<u4")[0])
        if not 8 <= size <= _MAX_HEADER:
            first = self._buffer[self._start : self._start + 4].tobytes()
            raise self._error(
                f"not a DV network stream: its first 4 bytes ({first.hex()}) would give a "
                f"header of {size} bytes",
                self._start,
            )
        self._make_room(4 + size)
        while self._end - self._start < 4 + size:
            if not self._receive():
                raise self._header_error(
                    f"the server closed the connection inside its {size}-byte header"
                )
        view = self._buffer[self._start : self._start + 4 + size]
        try:
            header = parse_io_header(view, len(view), start=0)
            streams = parse_description(header.description, 0)
        except HeaderError as error:
            raise self._error(f"not a DV stream header: {error}", error.offset) from None
        self._start += 4 + size
        self._codec = header.compression
        self.compression = COMPRESSIONS[header.compression]
        self.streams = streams
        self._choose_streams(streams)
        self.metadata.update(
            {
                "compression": self.compression,
                "description": header.description,
                **{f"{s.id}/{k}": v for s in streams for k, v in s.attributes.items()},
                **{f"{s.id}/info/{k}": v for s in streams for k, v in s.info.items()},
            }
        )

    def _header_error(self, message: str) -> NetworkError:
        return NetworkError(errno.ECONNABORTED, f"{self.address}: {message}")

    def _choose_streams(self, streams: list[StreamInfo]) -> None:
        events = [s for s in streams if s.type_identifier == "EVTS"]
        chosen: StreamInfo | None = events[0] if events else None
        if self._chosen_stream is not None:
            chosen = next((s for s in events if s.id == self._chosen_stream), None)
            if chosen is None:
                raise ValueError(
                    f"{self.address} has no event stream {self._chosen_stream} "
                    f"(event streams: {[s.id for s in events]})"
                )
        self._kinds = {s.id: _KINDS.get(s.type_identifier, _SKIPPED) for s in streams}
        for stream in events:
            if stream is not chosen:
                self._kinds[stream.id] = _SKIPPED
        if not any(kind != _SKIPPED for kind in self._kinds.values()):
            kinds = ", ".join(f"{s.id}: {s.type_identifier or '?'}" for s in streams) or "none"
            raise self._error(
                f"the server offers no events, triggers, IMU samples or frames (streams: {kinds})",
                0,
            )
        skipped = [s for s in streams if self._kinds[s.id] == _SKIPPED]
        if skipped:
            log.info(
                "%s: skipping streams %s",
                self.address,
                ", ".join(f"{s.id} ({s.type_identifier})" for s in skipped),
            )
        size = self._given_size or (chosen.size if chosen is not None else None)
        if size is not None:
            self._width = min(size[0], _COORDINATE_LIMIT)
            self._height = min(size[1], _COORDINATE_LIMIT)
            self.properties = replace(self.properties, width=size[0], height=size[1])

    # -- receiving --------------------------------------------------------------------------
    def _make_room(self, needed: int) -> None:
        """Make the buffer hold ``needed`` bytes from the first one not taken."""
        if self._start + needed <= len(self._buffer) and self._start < len(self._buffer) // 2:
            return
        left = self._end - self._start
        if needed > len(self._buffer):
            grown = np.empty(max(needed, 2 * len(self._buffer)), np.uint8)
            grown[:left] = self._buffer[self._start : self._end]
            self._buffer = grown
        elif left:
            self._buffer[:left] = self._buffer[self._start : self._end]
        self._consumed += self._start
        self._start, self._end = 0, left

    def _receive(self) -> bool:
        """Receive what has arrived (waiting for something first): False at the end of the
        connection or on close."""
        sock = self._socket
        assert sock is not None
        if self._broken is not None:
            return False
        limit = None if self.timeout is None else time.monotonic() + self.timeout
        # TLS may hold decrypted bytes that the socket no longer signals.
        held = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        if not held and not self._wait(sock, select.POLLIN, limit, "data"):
            return False
        view = memoryview(self._buffer)  # type: ignore[arg-type]
        got_any = False
        while self._end < len(self._buffer):
            try:
                got = sock.recv_into(view[self._end :])
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except ssl.SSLEOFError:
                # TLS tells a clean end (close_notify) from a cut connection, reset or not.
                return self._break("it ended without a TLS close_notify", got_any)
            except ssl.SSLError as error:
                raise self._tls_error("the TLS connection to", error) from None
            except OSError as error:
                if error.errno not in _BROKEN:
                    raise NetworkError(
                        error.errno, f"cannot receive from {self.address}: {error}"
                    ) from error
                return self._break(os.strerror(error.errno or errno.ECONNRESET).lower(), got_any)
            if got == 0:
                return got_any
            got_any = True
            self._end += got
            self._bytes += got
        return True

    def _break(self, why: str, got_any: bool) -> bool:
        self._broken = why
        if self.retry is None:
            log.warning("%s: the connection broke (%s)", self.address, why)
        return got_any

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, found: int) -> Packet | None:
        """The ``found`` packets just scanned as one aerflow packet (None when they hold
        nothing aerflow keeps)."""
        offsets = self._offsets[:found].tolist()
        ids = self._ids[:found].tolist()
        sizes = self._sizes[:found].tolist()
        self._packets += found
        event_payloads: list[tuple[int, int, Any]] = []
        triggers: list[npt.NDArray[Any]] = []
        imu: list[npt.NDArray[Any]] = []
        frames: list[Frame] = []
        view = memoryview(self._buffer)  # type: ignore[arg-type]
        for offset, stream, size in zip(offsets, ids, sizes, strict=True):
            kind = self._kinds.get(stream)
            if kind is None:
                self._skipped += 1
                if stream not in self._unknown_ids:
                    self._unknown_ids.add(stream)
                    log.warning(
                        "%s: packets of stream %d, which the description does not name, "
                        "are skipped",
                        self.address,
                        stream,
                    )
                continue
            if kind == _SKIPPED:
                self._skipped += 1
                continue
            start = offset + PACKET_HEADER.size
            payload = view[start : start + size]
            try:
                data = decompress(self._codec, payload)
                if kind == _EVENTS:
                    event_payloads.append((offset, stream, np.frombuffer(data, np.uint8)))
                elif kind == _TRIGGERS:
                    triggers.append(decode_triggers(data))
                elif kind == _IMU:
                    imu.append(decode_imu(data))
                else:
                    frames.append(decode_frame(data))
            except PayloadError as error:
                self._bad_packet(offset, stream, error)
        events = self._decode_events(event_payloads)
        self._triggers += sum(len(a) for a in triggers)
        self._imu += sum(len(a) for a in imu)
        self._frames += len(frames)
        if not (len(events) or triggers or imu or frames):
            return None
        return Packet(
            events,
            np.concatenate(triggers) if triggers else empty_triggers(),
            np.concatenate(imu) if imu else empty_imu(),
            tuple(frames),
        )

    def _decode_events(self, payloads: list[tuple[int, int, Any]]) -> npt.NDArray[Any]:
        capacity = sum(len(data) // 16 for _, _, data in payloads)  # 16 bytes an event at least
        events = np.empty(capacity, EVENTS_DTYPE)
        kept = 0
        for offset, stream, data in payloads:
            try:
                elements, taken = decode_events(
                    data, events, kept, capacity, self._width, self._height
                )
            except PayloadError as error:
                self._bad_packet(offset, stream, error)
                continue
            kept += taken
            self._out_of_range += elements - taken
        self._events += kept
        events.resize(kept, refcheck=False)  # no view of it exists: shrink in place
        return events

    def _bad_packet(self, offset: int, stream: int, error: PayloadError) -> None:
        self._malformed += 1
        where = "" if error.offset is None else f" (at byte {error.offset} of its payload)"
        log.warning(
            "%s: the packet of stream %d at byte %d is skipped: %s%s",
            self.address,
            stream,
            self._consumed + offset,
            error,
            where,
        )

    # -- closing ----------------------------------------------------------------------------
    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._socket is not None:
            self._socket.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
        log.debug("closed %s: %s", self.address, self.stats)

    def __enter__(self) -> DvClient:
        return self

    def __repr__(self) -> str:
        return f"DvClient({str(self.address)!r})"


# -- server -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DvServerStats:
    """What a server has sent so far: ``packets``, ``events`` and ``bytes`` once each (not
    per client); ``clients`` connected now, ``served`` ever accepted, ``dropped`` for falling
    too far behind."""

    packets: int = 0
    events: int = 0
    bytes: int = 0
    clients: int = 0
    served: int = 0
    dropped: int = 0


class _Connection:
    """One client: its socket and the bytes queued for it."""

    def __init__(self, sock: socket.socket, name: str, header: bytes) -> None:
        self.socket = sock
        self.name = name
        self.queue: deque[memoryview] = deque([memoryview(header)])
        self.queued = len(header)
        self.dropped = False
        self.secure = isinstance(sock, ssl.SSLSocket)
        self.handshaking = self.secure
        self.wants_write = False  # a TLS handshake or write waits until the socket may take more
        self.retrying = False  # a TLS write is to be repeated with the same bytes

    @property
    def live(self) -> bool:
        """Connected, and through its TLS handshake."""
        return not (self.dropped or self.handshaking)


class DvServer(ClosedOnExit):
    """Serves packets to any number of DV clients (DV, dv-processing's ``NetworkReader``, a
    :class:`DvClient`) at ``address``.

    ``address``: ``"tcp://HOST:PORT"`` (port 0: any free port, see :attr:`address`) or
    ``"unix:///PATH"`` (the path must not exist; it is removed on closing). A bare port binds
    127.0.0.1 only: ``"tcp://0.0.0.0:7777"`` to serve every interface.

    ``streams``: what to serve, among ``events`` (default), ``triggers``, ``imu``,
    ``frames`` (a list or comma-separated text). Serve one stream to dv-processing's
    ``NetworkReader``: it decodes every packet as its one stream's type, and fails on the
    packets of a second stream; aerflow's client takes them all. ``width`` and
    ``height`` (needed with ``events``) go into the description, ``camera`` as its source.
    ``compression``: ``"none"`` (default), ``"lz4"``, ``"lz4_high"``, ``"zstd"``,
    ``"zstd_high"``. ``packet_events``: events per DV packet at most.

    TLS (TCP only): ``tls_cert``, the server's certificate chain, and ``tls_key``, its private
    key (PEM; the key may be in the certificate file); with ``tls_ca`` too, every client must
    present a certificate signed by that CA (mutual TLS, as dv-processing's encrypted server
    does), and one that does not is refused at the handshake. A client counts as connected
    once its handshake is done.

    Every client gets the description on connecting, then every packet written from then on.
    Sending runs on a thread of its own and never waits for a client: each has a queue of at
    most ``queue_bytes``, and one that falls further behind is dropped (and logged) while the
    others go on. ``clients``: the first :meth:`write` waits until that many clients are
    connected. :meth:`close` stops listening, goes on sending what is queued, and keeps the
    connections open for ``linger`` seconds (less when every client has gone) before ending
    them (the clients' end of stream): dv-processing's ``NetworkReader`` drops the packets
    it has received but not yet handed out when its connection ends. :meth:`abort` ends
    every connection at once.
    """

    def __init__(
        self,
        address: str | int | os.PathLike[str] | Address | DvAddress = "tcp://127.0.0.1:7777",
        *,
        width: int | None = None,
        height: int | None = None,
        streams: str | Sequence[str] = ("events",),
        compression: str = "none",
        level: int | None = None,
        camera: str = "aerflow",
        clients: int = 0,
        queue_bytes: int = 1 << 26,
        packet_events: int = DEFAULT_PACKET_EVENTS,
        linger: float = 1.0,
        tls_cert: TlsFile = None,
        tls_key: TlsFile = None,
        tls_ca: TlsFile = None,
    ) -> None:
        wanted = any(f is not None for f in (tls_ca, tls_cert, tls_key))
        requested = _secured(parse_dv_address(address), wanted)
        if requested.tls and tls_cert is None:
            raise ValueError("a TLS server needs its certificate: give tls_cert (and tls_key)")
        self._tls = _server_context(tls_cert, tls_key, tls_ca) if requested.tls else None
        names = (
            [s.strip().lower() for s in streams.split(",")]
            if isinstance(streams, str)
            else [str(s).strip().lower() for s in streams]
        )
        unknown = [n for n in names if n not in STREAM_NAMES]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(
                f"streams must name each of {', '.join(STREAM_NAMES)} at most once, got {streams!r}"
            )
        codes = [name.lower() for name in COMPRESSIONS]
        if str(compression).lower() not in codes:
            raise ValueError(f"compression must be one of {codes}, got {compression!r}")
        sensor = check_sensor_size(width, height)
        if sensor is not None and max(sensor) > _COORDINATE_LIMIT:
            raise ValueError("DV streams hold int16 coordinates: the sensor must fit 32768x32768")
        if "events" in names and sensor is None:
            raise ValueError("an events stream needs the sensor size: give width and height")
        if not 1 <= int(packet_events) <= 1 << 26:
            raise ValueError("packet_events must be in 1..2**26")
        if int(queue_bytes) < 1 << 16:
            raise ValueError("queue_bytes must be at least 65536")
        if int(clients) < 0:
            raise ValueError("clients must be >= 0")
        if not linger >= 0:
            raise ValueError("linger must be a number of seconds >= 0")
        if not camera or any(ord(c) < 32 for c in camera):
            raise ValueError("camera must be a non-empty printable name")
        self.sensor_size = sensor
        self.streams = tuple(names)
        self._ids = {name: STREAM_NAMES[name] for name in names}
        self._code = codes.index(str(compression).lower())
        self._level = level
        self.compression = COMPRESSIONS[self._code]
        self.packet_events = int(packet_events)
        self.queue_bytes = int(queue_bytes)
        self.wait_clients = int(clients)
        self.linger = float(linger)
        size = None if sensor is None else (str(sensor[0]), str(sensor[1]))
        description = build_description(
            [
                describe_stream(
                    STREAM_NAMES[name],
                    self.compression,
                    camera,
                    size if name in ("events", "frames") else None,
                )
                for name in names
            ]
        )
        self.description = description
        self._header = build_io_header(self._code, -1, description.encode())
        self._listener, self.address = self._listen(requested)
        self._unix_identity: tuple[int, int] | None = None
        if self.address.path is not None:
            found = os.stat(self.address.path)
            self._unix_identity = (found.st_dev, found.st_ino)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._connections: list[_Connection] = []
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._closed = False
        self._finishing = False  # close(): stop accepting, send what is queued
        self._stopping = False  # end every connection now
        self._failure: BaseException | None = None
        self._waited = False
        self._packets = self._events = self._bytes = 0
        self._served = self._dropped = 0
        self._thread = threading.Thread(target=self._serve, name="aerflow-dv-server", daemon=True)
        self._thread.start()
        log.info("serving DV clients at %s (%s)", self.address, ", ".join(names))

    @staticmethod
    def _listen(requested: DvAddress) -> tuple[socket.socket, DvAddress]:
        if requested.path is not None and os.path.lexists(requested.path):
            raise NetworkError(
                errno.EEXIST,
                f"cannot serve at {requested}: {requested.path} exists (remove it first, or "
                "name another path)",
            )
        try:
            listener = socket.socket(requested.family, socket.SOCK_STREAM)
        except OSError as error:
            raise NetworkError(
                error.errno, f"cannot open a socket for {requested}: {error}"
            ) from error
        try:
            if requested.tcp is not None:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(requested.sockaddr)
            listener.listen(16)
            listener.setblocking(False)
        except OSError as error:
            listener.close()
            raise NetworkError(error.errno, f"cannot serve at {requested}: {error}") from error
        if requested.tcp is None:
            return listener, requested
        host, port = listener.getsockname()[:2]
        bound = Address(str(host), int(port), requested.tcp.family)
        return listener, DvAddress(tcp=bound, tls=requested.tls)

    # -- state ------------------------------------------------------------------------------
    @property
    def stats(self) -> DvServerStats:
        with self._lock:
            connected = sum(c.live for c in self._connections)
        return DvServerStats(
            self._packets, self._events, self._bytes, connected, self._served, self._dropped
        )

    @property
    def clients(self) -> int:
        """Clients connected now."""
        with self._lock:
            return sum(c.live for c in self._connections)

    def wait_for_clients(self, count: int = 1, timeout: float | None = None) -> bool:
        """Block until ``count`` clients are connected: True, or False past ``timeout`` or
        when the server closes."""
        limit = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while sum(c.live for c in self._connections) < count:
                if self._closed or self._failure is not None:
                    return False
                left = None if limit is None else limit - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # Short waits: a Ctrl-C reaches the waiting thread promptly.
                self._changed.wait(0.1 if left is None else min(left, 0.1))
        return True

    # -- writing ----------------------------------------------------------------------------
    def write(self, events: npt.ArrayLike | Packet, triggers: npt.ArrayLike | None = None) -> None:
        """Send a packet (or events, with ``triggers``) to every client connected. Channels
        that are not among :attr:`streams` are left out. Raises ValueError, sending nothing,
        when events lie outside the sensor or times do not fit DV's int64."""
        if self._closed:
            raise ValueError("write to a closed DvServer")
        self._check_failure()
        if isinstance(events, Packet):
            packet = events
        else:
            packet = Packet(
                as_events(events),
                empty_triggers() if triggers is None else np.asarray(triggers, TRIGGERS_DTYPE),
            )
        chunks = self._encode(packet)
        if not self._waited:
            self._waited = True
            if self.wait_clients and not self.wait_for_clients(self.wait_clients):
                self._check_failure()
                return
        if chunks:
            self._broadcast(chunks)

    def _encode(self, packet: Packet) -> list[memoryview]:
        """Header and payload of each DV packet ``packet`` makes, every check done first."""
        ids = self._ids
        events = as_events(packet.events) if "events" in ids else packet.events[:0]
        triggers = np.asarray(packet.triggers) if "triggers" in ids else empty_triggers()
        imu = np.asarray(packet.imu) if "imu" in ids else empty_imu()
        frames = packet.frames if "frames" in ids else ()
        if len(events):
            _, t_max, x_max, y_max = event_extent(np.ascontiguousarray(events))
            width, height = self.sensor_size or (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
            if x_max >= width or y_max >= height:
                raise ValueError(
                    f"events lie outside the {width}x{height} sensor (max x {x_max}, max y {y_max})"
                )
            if t_max > _MAX_TIME:
                raise ValueError(f"event time {t_max} µs does not fit DV's int64")
        for name, items in (("trigger", triggers), ("IMU sample", imu)):
            if len(items) and int(items["t"].max()) > _MAX_TIME:
                raise ValueError(f"{name} time {int(items['t'].max())} µs does not fit DV's int64")
        if len(imu) and imu.dtype != IMU_DTYPE:
            raise TypeError(f"IMU samples must have aerflow.IMU_DTYPE, not {imu.dtype}")
        payloads: list[tuple[int, bytes | memoryview, int]] = []
        if len(triggers):
            payloads.append((ids["triggers"], encode_triggers(triggers.astype(TRIGGERS_DTYPE)), 0))
        if len(imu):
            payloads.append((ids["imu"], encode_imu(imu), 0))
        for frame in frames:
            if not 0 <= frame.t <= _MAX_TIME:
                raise ValueError(f"frame time {frame.t} µs is outside 0..2**63-1")
            payloads.append((ids["frames"], encode_frame(frame), 0))
        data = np.ascontiguousarray(events)
        for start in range(0, len(data), self.packet_events):
            part = data[start : start + self.packet_events]
            payloads.append((ids["events"], encode_events(part), len(part)))
        chunks: list[memoryview] = []
        for stream, payload, count in payloads:
            body = compress(self._code, payload, self._level)
            chunks.append(memoryview(PACKET_HEADER.pack(stream, len(body))))
            chunks.append(memoryview(body))
            self._packets += 1
            self._events += count
            self._bytes += PACKET_HEADER.size + len(body)
        return chunks

    def _broadcast(self, chunks: list[memoryview]) -> None:
        size = sum(len(chunk) for chunk in chunks)
        wake = False
        with self._lock:
            for connection in self._connections:
                if connection.dropped:
                    continue
                if connection.queued + size > self.queue_bytes:
                    connection.dropped = True
                    connection.queue.clear()
                    connection.queued = 0
                    self._dropped += 1
                    log.warning(
                        "DV client %s fell more than %d bytes behind: dropped (the others go on)",
                        connection.name,
                        self.queue_bytes,
                    )
                    wake = True
                    continue
                wake = wake or not connection.queue
                connection.queue.extend(chunks)
                connection.queued += size
        if wake:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe already wakes the thread
            os.write(self._wake_write, b"x")

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise NetworkError(
                errno.EIO, f"the DV server at {self.address} failed: {self._failure}"
            ) from self._failure

    # -- the sending thread -----------------------------------------------------------------
    def _serve(self) -> None:
        listener: socket.socket | None = self._listener
        deadline: float | None = None
        try:
            while True:
                with self._lock:
                    stopping = self._stopping
                    finishing = self._finishing
                    connections = [c for c in self._connections if not c.dropped]
                    gone = [c for c in self._connections if c.dropped]
                    if gone:
                        self._connections = connections
                        self._changed.notify_all()
                for connection in gone:
                    connection.socket.close()
                if finishing and listener is not None:
                    listener.close()
                    listener = None
                    deadline = time.monotonic() + self.linger
                if stopping or (finishing and not connections):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    self._warn_unsent(connections)
                    break
                poller = select.poll()
                poller.register(self._wake_read, select.POLLIN)
                if listener is not None:
                    poller.register(listener.fileno(), select.POLLIN)
                by_fd: dict[int, _Connection] = {}
                for connection in connections:
                    fd = connection.socket.fileno()
                    by_fd[fd] = connection
                    writing = connection.wants_write or (
                        bool(connection.queue) and not connection.handshaking
                    )
                    poller.register(fd, select.POLLIN | (select.POLLOUT if writing else 0))
                wait_ms = None
                if deadline is not None:
                    wait_ms = max(1, int((deadline - time.monotonic()) * 1000))
                for fd, mask in poller.poll(wait_ms):
                    if fd == self._wake_read:
                        with contextlib.suppress(OSError):
                            os.read(self._wake_read, 4096)
                    elif listener is not None and fd == listener.fileno():
                        self._accept(listener)
                    elif fd in by_fd:
                        self._service(by_fd[fd], mask)
        except BaseException as error:  # raised to the writer at its next write
            self._failure = error
            log.error("the DV server at %s failed: %s", self.address, error)
        finally:
            if listener is not None:
                listener.close()
            with self._lock:
                connections, self._connections = self._connections, []
                self._changed.notify_all()
            for connection in connections:
                self._end_connection(connection.socket, reset=self._stopping)

    def _end_connection(self, sock: socket.socket, reset: bool) -> None:
        """Close a client's connection: a TCP one with a reset when ``reset`` (the client
        sees a broken stream, not a clean end), else with a TLS close_notify and a FIN."""
        if reset and self.address.tcp is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return
        if isinstance(sock, ssl.SSLSocket):
            with contextlib.suppress(OSError, ValueError):  # sent, or never to be sent
                sock.unwrap()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _warn_unsent(self, connections: list[_Connection]) -> None:
        with self._lock:
            late = [(c.name, c.queued) for c in connections if c.queued]
        for name, queued in late:
            log.warning(
                "DV client %s did not take its last %d bytes within linger=%s s",
                name,
                queued,
                self.linger,
            )

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        sock.setblocking(False)
        if self.address.tcp is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            name = str(Address(str(peer[0]), int(peer[1]), self.address.tcp.family))
        else:
            name = f"{self.address.path} #{self._served + 1}"
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        connection = _Connection(sock, name, self._header)
        with self._lock:
            self._connections.append(connection)
            self._served += 1
            self._changed.notify_all()
        if connection.handshaking:
            self._handshake(connection)
        else:
            log.info("DV client %s connected", name)

    def _handshake(self, connection: _Connection) -> None:
        sock = connection.socket
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            connection.wants_write = False
            return
        except ssl.SSLWantWriteError:
            connection.wants_write = True
            return
        except OSError as error:
            with self._lock:
                connection.dropped = True
                connection.queue.clear()
                connection.queued = 0
            log.warning(
                "DV client %s refused: TLS handshake: %s", connection.name, _tls_reason(error)
            )
            return
        with self._lock:
            connection.handshaking = connection.wants_write = False
            self._changed.notify_all()
        log.info("DV client %s connected (%s)", connection.name, sock.version())

    def _service(self, connection: _Connection, mask: int) -> None:
        if connection.handshaking:
            self._handshake(connection)
            return
        if mask & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                data = connection.socket.recv(4096)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._gone(connection, "disconnected")
                return
            if data:
                log.debug("DV client %s sent %d bytes (ignored)", connection.name, len(data))
        if mask & select.POLLOUT:
            self._send(connection)

    def _send(self, connection: _Connection) -> None:
        with self._lock:
            if connection.dropped or not connection.queue:
                return
            try:
                if connection.secure:
                    sent = self._send_tls(connection)
                else:
                    count = min(_SEND_VECTOR, len(connection.queue))
                    sent = connection.socket.sendmsg([connection.queue[i] for i in range(count)])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                connection.dropped = True
                connection.queue.clear()
                connection.queued = 0
                log.info("DV client %s went away (%s)", connection.name, error)
                return
            connection.queued -= sent
            queue = connection.queue
            while sent:
                first = queue[0]
                if sent >= len(first):
                    sent -= len(first)
                    queue.popleft()
                else:
                    queue[0] = first[sent:]
                    sent = 0

    @staticmethod
    def _send_tls(connection: _Connection) -> int:
        """Send the first queued bytes over TLS, which has no sendmsg: small buffers are first
        joined (each send is a TLS record of its own). Raises BlockingIOError when the socket
        takes nothing now; the same bytes are sent on the next try, as TLS needs."""
        queue = connection.queue
        if not connection.retrying and len(queue) > 1 and len(queue[0]) < _TLS_GATHER:
            parts: list[memoryview] = []
            total = 0
            while queue and total < _TLS_GATHER:
                parts.append(queue.popleft())
                total += len(parts[-1])
            queue.appendleft(memoryview(b"".join(parts)))
        try:
            sent = connection.socket.send(queue[0])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            connection.retrying = True
            raise BlockingIOError from None
        connection.retrying = False
        return sent

    def _gone(self, connection: _Connection, why: str) -> None:
        with self._lock:
            if not connection.dropped:
                connection.dropped = True
                connection.queue.clear()
                connection.queued = 0
        log.info("DV client %s %s", connection.name, why)

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop listening, keep sending what is queued for ``linger`` seconds at most (less
        when every client has gone), then end every connection. Safe to call more than
        once."""
        self._shutdown(finish=True)

    def abort(self) -> None:
        """End every connection now, dropping what is queued: TCP clients see their
        connection reset (a broken stream, which a :class:`DvClient` with ``retry`` connects
        again after), not the clean end of :meth:`close`."""
        self._shutdown(finish=False)

    def _shutdown(self, finish: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._finishing = True
            if not finish:
                self._stopping = True
            self._changed.notify_all()
        self._wake()
        self._thread.join()
        self._remove_socket_file()
        os.close(self._wake_read)
        os.close(self._wake_write)
        log.debug("closed %s: %s", self.address, self.stats)

    def _remove_socket_file(self) -> None:
        path = self.address.path
        if path is None or self._unix_identity is None:
            return
        with contextlib.suppress(OSError):
            found = os.stat(path)
            if stat.S_ISSOCK(found.st_mode) and (found.st_dev, found.st_ino) == self._unix_identity:
                os.unlink(path)

    def __repr__(self) -> str:
        return f"DvServer({str(self.address)!r}, streams={','.join(self.streams)!r})"
