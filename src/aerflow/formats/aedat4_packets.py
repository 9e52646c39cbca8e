"""AEDAT 4.0 packet payloads: compression, and each FlatBuffer packet type in and out.

The public names of the packet codecs, each kept in its own module: compression
(:mod:`._aedat4_compression`), events (:mod:`._aedat4_events`), triggers, IMU samples and
frames (:mod:`._aedat4_side_channels`, on :mod:`._aedat4_tables`) and the file data table
(:mod:`._aedat4_file_table`); here also the packet header they all follow.

Packet types (schemas of DV, field order as stored):

* ``EVTS`` EventPacket ``{elements: [Event]}``, Event a 16-byte struct ``{t: int64, x: int16,
  y: int16, on: bool}`` (3 bytes of padding) — decoded by a numba kernel straight into
  :data:`~aerflow.EVENTS_DTYPE`;
* ``TRIG`` TriggerPacket ``{elements: [Trigger]}``, Trigger a table ``{timestamp: int64,
  type: int8}``;
* ``IMUS`` IMUPacket ``{elements: [IMU]}``, IMU a table ``{timestamp: int64, temperature,
  accelerometerX/Y/Z, gyroscopeX/Y/Z, magnetometerX/Y/Z: float32}``;
* ``FRME`` Frame (one per packet) ``{timestamp, timestampStartOfFrame, timestampEndOfFrame,
  timestampStartOfExposure, timestampEndOfExposure: int64, format: int8, sizeX, sizeY,
  positionX, positionY: int16, pixels: [uint8]}``;
* ``FTAB`` FileDataTable ``{Table: [FileDataDefinition]}``, FileDataDefinition a table
  ``{ByteOffset: int64, PacketInfo: struct {streamID: int32, size: int32}, NumElements,
  TimestampStart, TimestampEnd: int64}``.

Trigger types map to :data:`~aerflow.TRIGGERS_DTYPE` channels (``id``) and edges
(``rising``) by :data:`TRIGGER_TYPES`.
"""

from __future__ import annotations

import struct

from ..errors import PayloadError
from ._aedat4_compression import compress, decompress
from ._aedat4_events import DV_EVENT_DTYPE, decode_events, encode_events
from ._aedat4_file_table import TABLE_DTYPE, decode_table, encode_table
from ._aedat4_side_channels import _TRIGGER_RECORD as _TRIGGER_RECORD
from ._aedat4_side_channels import (
    TRIGGER_TYPES,
    decode_frame,
    decode_imu,
    decode_triggers,
    encode_frame,
    encode_imu,
    encode_triggers,
)
from ._aedat4_tables import _packet_of_tables as _packet_of_tables

__all__ = [
    "DV_EVENT_DTYPE",
    "PACKET_HEADER",
    "TABLE_DTYPE",
    "TRIGGER_TYPES",
    "PayloadError",
    "compress",
    "decode_events",
    "decode_frame",
    "decode_imu",
    "decode_table",
    "decode_triggers",
    "decompress",
    "encode_events",
    "encode_frame",
    "encode_imu",
    "encode_table",
    "encode_triggers",
]

PACKET_HEADER = struct.Struct("<ii")
"""What precedes every packet payload, in files and on DV's network streams alike: the int32
stream id and the int32 size of the (compressed) payload."""

_MAX_ELEMENTS = 1 << 31
