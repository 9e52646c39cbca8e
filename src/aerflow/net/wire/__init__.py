"""Wire formats of events over UDP: one module per format, a registry, and the encoder and
decoder that run their numba kernels a batch of datagrams at a time.

Every format is little-endian, and every datagram holds whole events only: a sender never
splits an event across datagrams, and a receiver counts a torn tail (bytes that do not make
a whole event) as malformed and keeps the whole events before it.

- ``aerflow`` (:mod:`.aerflow`): aerflow's own datagrams, a 32-byte header (stream id,
  sequence number, sensor size, end of stream) and 8-byte records;
- ``spif``, ``spif-t`` (:mod:`.spif`): SPIF's and aestream's 32-bit words, without or with a
  timestamp word;
- ``faery-t64``, ``faery-t32`` (:mod:`.faery`): faery's 13- and 8-byte records.

Each module's docstring gives its byte layout. A new wire format is a module here with its
encode and decode kernels, an entry in :data:`~.registry.WIRE_FORMATS` and a branch in
:class:`~.codec.DatagramEncoder` and :class:`~.codec.DatagramDecoder`.

Unwrapping of 32-bit times (``spif-t``, ``faery-t32``) follows faery's rule event by event:
a time more than 2^31 µs below the previous one means the 32-bit counter wrapped, and 2^32
is added from then on; a time more than 2^31 µs above the previous one after a wrap is a
late event from before the wrap and gets 2^32 less. Wraps stop counting once 2^62 µs have
been added (a sender would need 2^30 of them): unwrapped times stay below 2^62 + 2^32 µs
rather than wrapping past 2^64 to small ones.
"""

from __future__ import annotations

from .aerflow import (
    AERFLOW_HEADER_BYTES,
    AERFLOW_MAGIC,
    AERFLOW_VERSION,
    FLAG_ABORTED,
    FLAG_END_OF_STREAM,
    WINDOW,
    AerflowHeader,
    StreamStats,
    aerflow_header,
    parse_aerflow_header,
)
from .codec import (
    DatagramDecoder,
    DatagramEncoder,
    decode_datagrams,
    encode_datagrams,
    pack_datagrams,
)
from .common import MAX_DATAGRAM_BYTES, MTU_DATAGRAM_BYTES
from .registry import WIRE_FORMATS, WireFormat, get_wire_format, wire_format_names

__all__ = [
    "AERFLOW_HEADER_BYTES",
    "AERFLOW_MAGIC",
    "AERFLOW_VERSION",
    "FLAG_ABORTED",
    "FLAG_END_OF_STREAM",
    "MAX_DATAGRAM_BYTES",
    "MTU_DATAGRAM_BYTES",
    "WINDOW",
    "WIRE_FORMATS",
    "AerflowHeader",
    "DatagramDecoder",
    "DatagramEncoder",
    "StreamStats",
    "WireFormat",
    "aerflow_header",
    "decode_datagrams",
    "encode_datagrams",
    "get_wire_format",
    "pack_datagrams",
    "parse_aerflow_header",
    "wire_format_names",
]
