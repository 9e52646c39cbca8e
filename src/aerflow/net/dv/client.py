"""The DV network client, :class:`DvClient`: connects (TCP, TLS, UNIX socket), reads the
stream description, receives into one buffer and hands every complete packet in it to the
:class:`~.unpack.Unpacker`; reconnects within ``retry``."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..._checks import check_sensor_size
from ...errors import (
    FormatError,
    NetworkError,
    NetworkTimeoutError,
    OutOfRangeWarning,
    TruncatedDataWarning,
)
from ...events import Packet
from ...formats.aedat4 import SCAN_NEGATIVE_SIZE, SCAN_TORN, scan_packets
from ...formats.aedat4_description import (
    COMPRESSIONS,
    HeaderError,
    StreamInfo,
    parse_description,
    parse_io_header,
)
from ...formats.aedat4_packets import PACKET_HEADER
from ...stream import Properties, Stream
from .._wakeup import ClosedByWakeUp
from ..address import Address
from .common import (
    BROKEN,
    COORDINATE_LIMIT,
    DvAddress,
    TlsFile,
    client_context,
    parse_dv_address,
    secured,
    tls_error,
)
from .unpack import KINDS, SKIPPED, Unpacker

__all__ = ["DvClient", "DvClientStats"]

log = logging.getLogger(__name__)

_MAX_HEADER = 1 << 24  # an XML description of a few streams takes a few KiB
_MAX_PACKET = 1 << 30
_RECEIVE_BUFFER = 1 << 22  # what one packet of a client holds at most, unless a DV packet is larger
_SCAN_SLOTS = 4096
_RETRY_GAP_S = 0.1


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
        self.address = secured(parse_dv_address(address), wanted)
        if tls_key is not None and tls_cert is None:
            raise ValueError("tls_key goes with tls_cert: give the certificate it belongs to")
        self._tls = client_context(tls_ca, tls_cert, tls_key) if self.address.tls else None
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
        self._unpacker = Unpacker(str(self.address))
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
        self._bytes = self._reconnects = 0
        self._broken: str | None = None  # why the connection broke, until it is made again
        self._pending: list[Packet] = []

    # -- state ------------------------------------------------------------------------------
    @property
    def stats(self) -> DvClientStats:
        unpacker = self._unpacker
        return DvClientStats(
            packets=unpacker.packets,
            bytes=self._bytes,
            events=unpacker.events,
            triggers=unpacker.triggers,
            imu=unpacker.imu,
            frames=unpacker.frames,
            skipped=unpacker.skipped,
            malformed=unpacker.malformed,
            out_of_range=unpacker.out_of_range,
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
                packet = self._unpacker.unpack(
                    self._buffer, self._offsets, self._ids, self._sizes, found, self._consumed
                )
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
        unpacker = self._unpacker
        if unpacker.out_of_range:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.address}: dropped {unpacker.out_of_range} events outside the "
                    f"{unpacker.width}x{unpacker.height} sensor"
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
                    raise tls_error(
                        self.address, self._tls_identity, "the TLS handshake with", error
                    ) from None
                if not self._wait(secured, mask, limit, "the TLS handshake"):
                    secured.close()
                    return None
        except BaseException:
            secured.close()
            raise

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
        self._unpacker.codec = header.compression
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
        kinds = self._unpacker.kinds = {
            s.id: KINDS.get(s.type_identifier, SKIPPED) for s in streams
        }
        for stream in events:
            if stream is not chosen:
                kinds[stream.id] = SKIPPED
        if not any(kind != SKIPPED for kind in kinds.values()):
            kinds_text = ", ".join(f"{s.id}: {s.type_identifier or '?'}" for s in streams)
            raise self._error(
                "the server offers no events, triggers, IMU samples or frames "
                f"(streams: {kinds_text or 'none'})",
                0,
            )
        skipped = [s for s in streams if kinds[s.id] == SKIPPED]
        if skipped:
            log.info(
                "%s: skipping streams %s",
                self.address,
                ", ".join(f"{s.id} ({s.type_identifier})" for s in skipped),
            )
        size = self._given_size or (chosen.size if chosen is not None else None)
        if size is not None:
            self._unpacker.width = min(size[0], COORDINATE_LIMIT)
            self._unpacker.height = min(size[1], COORDINATE_LIMIT)
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
                raise tls_error(
                    self.address, self._tls_identity, "the TLS connection to", error
                ) from None
            except OSError as error:
                if error.errno not in BROKEN:
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
