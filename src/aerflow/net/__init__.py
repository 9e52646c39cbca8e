"""Network transports: events over UDP in aerflow's own format, SPIF/aestream's and faery's,
and DV's network streams over TCP and UNIX sockets (:class:`DvClient`, :class:`DvServer`).

    from aerflow.net import UdpReceiver, UdpSender

    with UdpReceiver("127.0.0.1:3333", idle_timeout=1.0) as receiver:   # a stream of packets
        for packet in receiver: ...

    with UdpSender("127.0.0.1:3333", wire="aerflow", width=640, height=480) as sender:
        sender.write(events)                                            # or a Packet

Wire formats (``wire=``): ``aerflow`` (default; sequence numbers, sensor size, end of stream),
``spif``, ``spif-t``, ``faery-t64``, ``faery-t32``; byte layouts in :mod:`aerflow.net.wire`, one
module per format.

Modules: :mod:`.address` (host:port), :mod:`.wire` (the UDP wire formats, one module each),
:mod:`.mmsg` (UDP sockets, sendmmsg/recvmmsg), :mod:`.udp` (the sender), :mod:`.udp_receiver`,
:mod:`.dv` (DV network streams: client, server and their parts).
"""

from __future__ import annotations

from .address import DEFAULT_HOST, Address, parse_address
from .dv import (
    DEFAULT_DV_PORT,
    DvAddress,
    DvClient,
    DvClientStats,
    DvServer,
    DvServerStats,
    parse_dv_address,
)
from .udp import DEFAULT_PORT, UdpSender, UdpSenderStats
from .udp_receiver import UdpReceiver, UdpReceiverStats, receive
from .wire import (
    MAX_DATAGRAM_BYTES,
    MTU_DATAGRAM_BYTES,
    WIRE_FORMATS,
    StreamStats,
    WireFormat,
    get_wire_format,
    wire_format_names,
)

__all__ = [
    "DEFAULT_DV_PORT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_DATAGRAM_BYTES",
    "MTU_DATAGRAM_BYTES",
    "WIRE_FORMATS",
    "Address",
    "DvAddress",
    "DvClient",
    "DvClientStats",
    "DvServer",
    "DvServerStats",
    "StreamStats",
    "UdpReceiver",
    "UdpReceiverStats",
    "UdpSender",
    "UdpSenderStats",
    "WireFormat",
    "get_wire_format",
    "parse_address",
    "parse_dv_address",
    "receive",
    "wire_format_names",
]
