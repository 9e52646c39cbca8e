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

Modules: :mod:`.common` (addresses, TLS), :mod:`.client` and :mod:`.unpack` (the client and
its packet decoding), :mod:`.server`, :mod:`.connection` and :mod:`.pack` (the server, one
client's queue and sending, packet encoding).
"""

from __future__ import annotations

from .client import DvClient, DvClientStats
from .common import DEFAULT_DV_PORT, DvAddress, parse_dv_address
from .server import STREAM_NAMES, DvServer, DvServerStats

__all__ = [
    "DEFAULT_DV_PORT",
    "STREAM_NAMES",
    "DvAddress",
    "DvClient",
    "DvClientStats",
    "DvServer",
    "DvServerStats",
    "parse_dv_address",
]
