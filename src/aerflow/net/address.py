"""Network addresses as users write them: ``"host:port"``, ``"[::1]:port"``, ``"port"``.

IPv4 and IPv6 literals are taken as they are; a host name is resolved once here (IPv4
preferred, as every peer tool of the SPIF and faery formats speaks IPv4), so sockets are
opened on numeric addresses and the family is known before any socket exists.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

from ..errors import NetworkError

__all__ = ["DEFAULT_HOST", "Address", "parse_address"]

DEFAULT_HOST = "127.0.0.1"
"""Where a bare port is bound or sent to: this machine only, never all interfaces."""


class Address(NamedTuple):
    """A numeric host, a port and the socket family (``socket.AF_INET`` or ``AF_INET6``)."""

    host: str
    port: int
    family: socket.AddressFamily

    def __str__(self) -> str:
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def sockaddr(self) -> tuple[str, int]:
        """What ``socket.bind`` and ``socket.connect`` take."""
        return self.host, self.port


def _port(text: str | int, original: object) -> int:
    try:
        port = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"bad port in address {original!r}: expected a number") from None
    if isinstance(text, str) and not text.strip().isdigit():
        raise ValueError(f"bad port in address {original!r}: expected a number")
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} in address {original!r} is outside 0..65535")
    return port


def _literal(host: str) -> Address | None:
    """The address of an IP literal (port 0 for now), None for a host name."""
    bare, _, scope = host.partition("%")
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return None
    if ip.version == 6:
        return Address(f"{ip.compressed}%{scope}" if scope else ip.compressed, 0, socket.AF_INET6)
    if scope:
        raise ValueError(f"an IPv4 address takes no scope: {host!r}")
    return Address(ip.compressed, 0, socket.AF_INET)


def _resolve(host: str, port: int) -> Address:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as error:
        raise NetworkError(f"cannot resolve host {host!r}: {error.strerror}") from error
    usable = [entry for entry in found if entry[0] in (socket.AF_INET, socket.AF_INET6)]
    if not usable:
        raise NetworkError(f"host {host!r} has no IPv4 or IPv6 address")
    usable.sort(key=lambda entry: entry[0] != socket.AF_INET)  # IPv4 first, order kept
    family, _, _, _, sockaddr = usable[0]
    return Address(str(sockaddr[0]), port, socket.AddressFamily(family))


def parse_address(
    address: str | int | tuple[str, int] | Address,
    *,
    default_host: str = DEFAULT_HOST,
    default_port: int | None = None,
) -> Address:
    """Read a UDP address.

    Accepted forms: ``"127.0.0.1:3333"``, ``"localhost:3333"``, ``"[::1]:3333"``,
    ``"[fe80::1%eth0]:3333"``, ``"3333"`` or ``3333`` (a port on ``default_host``,
    127.0.0.1), a ``(host, port)`` tuple, and, when ``default_port`` is given, a host
    alone (``"::1"``, ``"localhost"``). ``"0.0.0.0:3333"`` / ``"[::]:3333"`` name every
    interface; nothing else does. Port 0 asks the system for a free port when binding.

    Raises ValueError for malformed text, :class:`~aerflow.errors.NetworkError` (an
    OSError) when a host name cannot be resolved.
    """
    if isinstance(address, Address):
        return address
    if isinstance(address, bool):
        raise TypeError("an address cannot be a bool")
    if isinstance(address, int):
        return _complete(default_host, _port(address, address))
    if isinstance(address, tuple):
        if len(address) != 2:
            raise ValueError(f"an address tuple is (host, port), got {address!r}")
        host, port = address
        return _complete(str(host), _port(port, address))
    if not isinstance(address, str):
        raise TypeError(f"an address is a string like '127.0.0.1:3333', got {address!r}")
    text = address.strip()
    if not text:
        raise ValueError("empty address: give 'host:port' or a port")
    if text.isdigit():
        return _complete(default_host, _port(text, address))
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host:
            raise ValueError(f"bad IPv6 address {address!r}: expected '[host]:port'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {address!r}: expected ':port' after ']'")
            port = _port(rest[1:], address)
        elif default_port is not None:
            port = default_port
        else:
            raise ValueError(f"address {address!r} has no port: write '[host]:port'")
        result = _complete(host, port)
        if result.family != socket.AF_INET6:
            raise ValueError(f"only IPv6 addresses go in brackets: {address!r}")
        return result
    if text.count(":") > 1:  # a bare IPv6 literal: no port possible without brackets
        if default_port is None:
            raise ValueError(
                f"address {address!r}: put an IPv6 address in brackets, e.g. '[::1]:3333'"
            )
        return _complete(text, default_port)
    host, colon, port_text = text.rpartition(":")
    if not colon:
        if default_port is None:
            raise ValueError(f"address {address!r} has no port: write 'host:port'")
        return _complete(text, default_port)
    if not host:
        raise ValueError(
            f"address {address!r} names no host: write e.g. '127.0.0.1{text}' "
            f"(or '0.0.0.0{text}' for every interface)"
        )
    return _complete(host, _port(port_text, address))


def _complete(host: str, port: int) -> Address:
    literal = _literal(host)
    if literal is not None:
        return literal._replace(port=port)
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"bad host name {host!r}")
    return _resolve(host, port)
