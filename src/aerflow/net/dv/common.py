"""What DV's network client and server share: addresses (TCP, TLS, UNIX sockets), TLS
contexts and errors, and the limits of DV's packets."""

from __future__ import annotations

import errno
import os
import socket
import ssl
from dataclasses import dataclass, replace
from typing import Any

from ...errors import ConfigurationError, NetworkError
from ..address import Address, parse_address

__all__ = [
    "BROKEN",
    "COORDINATE_LIMIT",
    "DEFAULT_DV_PORT",
    "MAX_TIME",
    "DvAddress",
    "TlsFile",
    "client_context",
    "parse_dv_address",
    "secured",
    "server_context",
    "tls_error",
    "tls_reason",
]

DEFAULT_DV_PORT = 7777
"""Where ``tcp://HOST`` without a port connects or listens."""

COORDINATE_LIMIT = 1 << 15
"""DV events hold int16 coordinates."""
MAX_TIME = (1 << 63) - 1
"""DV times are int64 µs."""
BROKEN = {
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
}
"""Errors of an established connection that the network or the server's going away cause."""
_MAX_UNIX_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


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


def secured(address: DvAddress, wanted: bool) -> DvAddress:
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
            f"cannot load the TLS {what} {os.fspath(path or '')}: {tls_reason(error)}"
        ) from None


def client_context(ca: TlsFile, cert: TlsFile, key: TlsFile) -> ssl.SSLContext:
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


def server_context(cert: TlsFile, key: TlsFile, ca: TlsFile) -> ssl.SSLContext:
    """Presents ``cert`` (with ``key``); with ``ca``, asks every client for a certificate
    signed by it and refuses those without one (mutual TLS, as dv-processing's server)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load("certificate or key", cert, lambda: context.load_cert_chain(cert, key))  # type: ignore[arg-type]
    if ca is not None:
        _load("CA file", ca, lambda: context.load_verify_locations(cafile=ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_reason(error: OSError) -> str:
    """One line saying why a TLS operation failed."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    reason = getattr(error, "reason", None)
    if isinstance(error, ssl.SSLError) and reason:
        return str(reason).lower().replace("_", " ")
    return error.strerror or str(error)


def tls_error(address: DvAddress, identity: bool, what: str, error: OSError) -> NetworkError:
    """A client's TLS failure as one line with a hint; ``identity``: the client presents a
    certificate."""
    reason = tls_reason(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        hint = " (give tls_ca= the CA file that signed the server's certificate)"
    elif not identity and (
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
    return NetworkError(code, f"{what} {address} failed: {reason}{hint}")
