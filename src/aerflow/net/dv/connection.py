"""One client of a :class:`~.server.DvServer`: its socket, the bytes queued for it in order,
and the sending of them (``sendmsg``, or joined TLS writes)."""

from __future__ import annotations

import socket
import ssl
from collections import deque

__all__ = ["SEND_VECTOR", "TLS_GATHER", "UNIX_SEND_BUFFER", "Connection"]

SEND_VECTOR = 64
"""Buffers per ``sendmsg`` call."""
TLS_GATHER = 1 << 18
"""Bytes joined for one TLS write."""
UNIX_SEND_BUFFER = 1 << 20
"""The send buffer asked for on a UNIX socket connection. Linux's default (208 KiB) holds
less than one DV packet of 16384 events: the sending thread and the client then wake each
other several times a packet."""


class Connection:
    """One client: its socket and the bytes queued for it. The server's lock guards the queue;
    only the sending thread takes bytes off its head."""

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

    def drop(self) -> None:
        """Forget what is queued; the sending thread closes the socket."""
        self.dropped = True
        self.queue.clear()
        self.queued = 0

    def head(self) -> list[memoryview]:
        """The first queued buffers, for one ``sendmsg``."""
        queue = self.queue
        return [queue[i] for i in range(min(SEND_VECTOR, len(queue)))]

    def consume(self, sent: int) -> None:
        """Take ``sent`` bytes off the head of the queue."""
        self.queued -= sent
        queue = self.queue
        while sent:
            first = queue[0]
            if sent >= len(first):
                sent -= len(first)
                queue.popleft()
            else:
                queue[0] = first[sent:]
                sent = 0

    def send_tls(self) -> int:
        """Send the first queued bytes over TLS, which has no sendmsg: small buffers are first
        joined (each send is a TLS record of its own). Raises BlockingIOError when the socket
        takes nothing now; the same bytes are sent on the next try, as TLS needs."""
        queue = self.queue
        if not self.retrying and len(queue) > 1 and len(queue[0]) < TLS_GATHER:
            parts: list[memoryview] = []
            total = 0
            while queue and total < TLS_GATHER:
                parts.append(queue.popleft())
                total += len(parts[-1])
            queue.appendleft(memoryview(b"".join(parts)))
        try:
            sent = self.socket.send(queue[0])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            self.retrying = True
            raise BlockingIOError from None
        self.retrying = False
        return sent
