"""The DV network server, :class:`DvServer`: serves packets to any number of DV clients, each
with a bounded queue, from one sending thread that never waits for a client."""

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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..._checks import check_sensor_size
from ...errors import NetworkError
from ...events import TRIGGERS_DTYPE, Packet, as_events, empty_triggers
from ...formats.aedat4_description import COMPRESSIONS, build_description, build_io_header
from ...formats.aedat4_writer import (
    DEFAULT_PACKET_EVENTS,
    EVENTS_ID,
    FRAMES_ID,
    IMU_ID,
    TRIGGERS_ID,
    describe_stream,
)
from ...sinks import ClosedOnExit
from ..address import Address
from .common import (
    COORDINATE_LIMIT,
    DvAddress,
    TlsFile,
    parse_dv_address,
    secured,
    server_context,
    tls_reason,
)
from .connection import UNIX_SEND_BUFFER, Connection
from .pack import encode_packet

__all__ = ["STREAM_NAMES", "DvServer", "DvServerStats"]

log = logging.getLogger(__name__)

STREAM_NAMES = {"events": EVENTS_ID, "frames": FRAMES_ID, "imu": IMU_ID, "triggers": TRIGGERS_ID}
"""What a :class:`DvServer` can serve, with the stream id each gets (DV's usual ids)."""


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
        requested = secured(parse_dv_address(address), wanted)
        if requested.tls and tls_cert is None:
            raise ValueError("a TLS server needs its certificate: give tls_cert (and tls_key)")
        self._tls = server_context(tls_cert, tls_key, tls_ca) if requested.tls else None
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
        if sensor is not None and max(sensor) > COORDINATE_LIMIT:
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
        self._connections: list[Connection] = []
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
        encoded = encode_packet(
            packet, self._ids, self.sensor_size, self._code, self._level, self.packet_events
        )
        self._packets += encoded.packets
        self._events += encoded.events
        self._bytes += encoded.bytes
        if not self._waited:
            self._waited = True
            if self.wait_clients and not self.wait_for_clients(self.wait_clients):
                self._check_failure()
                return
        if encoded.chunks:
            self._broadcast(encoded.chunks)

    def _broadcast(self, chunks: list[memoryview]) -> None:
        size = sum(len(chunk) for chunk in chunks)
        wake = False
        with self._lock:
            for connection in self._connections:
                if connection.dropped:
                    continue
                if connection.queued + size > self.queue_bytes:
                    connection.drop()
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
                by_fd: dict[int, Connection] = {}
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

    def _warn_unsent(self, connections: list[Connection]) -> None:
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
            with contextlib.suppress(OSError):  # fewer wake-ups of this thread and the client
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SEND_BUFFER)
            name = f"{self.address.path} #{self._served + 1}"
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        connection = Connection(sock, name, self._header)
        with self._lock:
            self._connections.append(connection)
            self._served += 1
            self._changed.notify_all()
        if connection.handshaking:
            self._handshake(connection)
        else:
            log.info("DV client %s connected", name)

    def _handshake(self, connection: Connection) -> None:
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
                connection.drop()
            log.warning(
                "DV client %s refused: TLS handshake: %s", connection.name, tls_reason(error)
            )
            return
        with self._lock:
            connection.handshaking = connection.wants_write = False
            self._changed.notify_all()
        log.info("DV client %s connected (%s)", connection.name, sock.version())

    def _service(self, connection: Connection, mask: int) -> None:
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

    def _send(self, connection: Connection) -> None:
        """Send what the socket takes of the connection's queue. The lock is not held while
        the kernel copies the bytes, so that :meth:`write` never waits for a send: only this
        thread takes bytes off the queue, and a connection dropped meanwhile stays dropped."""
        with self._lock:
            if connection.dropped or not connection.queue:
                return
            if connection.secure:  # TLS repeats a write with the same bytes: all under the lock
                try:
                    sent = connection.send_tls()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as error:
                    connection.drop()
                    log.info("DV client %s went away (%s)", connection.name, error)
                    return
                connection.consume(sent)
                return
            buffers = connection.head()
        try:
            sent = connection.socket.sendmsg(buffers)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            with self._lock:
                connection.drop()
            log.info("DV client %s went away (%s)", connection.name, error)
            return
        with self._lock:
            if not connection.dropped:
                connection.consume(sent)

    def _gone(self, connection: Connection, why: str) -> None:
        with self._lock:
            if not connection.dropped:
                connection.drop()
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
