"""AEDAT 4.0 packet payloads: compression, and each FlatBuffer packet type in and out.

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
import threading
from typing import Any

import lz4.frame  # type: ignore[import-untyped]
import numba as nb
import numpy as np
import numpy.typing as npt
import zstandard

from ..errors import PayloadError
from ..events import IMU_DTYPE, TRIGGERS_DTYPE, Frame
from .aedat4_flatbuffers import (
    Builder,
    FlatBufferError,
    Table,
    read_i32,
    read_i64,
    read_u16,
    read_u32,
    root_position,
    root_table,
    table_field,
)

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

NONE, LZ4, LZ4_HIGH, ZSTD, ZSTD_HIGH = range(5)
DEFAULT_LEVELS = {LZ4: 0, LZ4_HIGH: 9, ZSTD: 3, ZSTD_HIGH: 19}
"""Compression levels by code: LZ4 fast, LZ4 HC level 9, Zstd 3 (its default), Zstd 19."""

DV_EVENT_DTYPE = np.dtype(
    {
        "names": ["t", "x", "y", "on"],
        "formats": ["<i8", "<i2", "<i2", "?"],
        "offsets": [0, 8, 10, 12],
        "itemsize": 16,
    }
)
"""DV's 16-byte event struct (3 trailing padding bytes)."""

TABLE_DTYPE = np.dtype(
    [
        ("offset", "<i8"),
        ("stream", "<i4"),
        ("size", "<i4"),
        ("count", "<i8"),
        ("t_start", "<i8"),
        ("t_end", "<i8"),
    ]
)
"""File data table entries: payload byte offset, stream id, payload size, element count and
first/last timestamp (0 where the writer left them unset)."""

TRIGGER_TYPES: dict[int, tuple[int, bool]] = {
    0: (5, True),  # timestamp reset
    1: (0, True),  # external signal, rising edge
    2: (0, False),  # external signal, falling edge
    3: (4, True),  # external signal, pulse
    4: (1, True),  # external generator, rising edge
    5: (1, False),  # external generator, falling edge
    6: (2, True),  # frame begin
    7: (2, False),  # frame end
    8: (3, True),  # exposure begin
    9: (3, False),  # exposure end
}
"""DV trigger type -> (``id``, ``rising``): channel 0 external signal, 1 external generator,
2 frame begin/end, 3 exposure begin/end, 4 external pulse, 5 timestamp reset. Unknown types
read as id 255, rising."""
UNKNOWN_TRIGGER_ID = 255
_TRIGGER_CODES = {value: code for code, value in TRIGGER_TYPES.items()}

PACKET_HEADER = struct.Struct("<ii")
"""What precedes every packet payload, in files and on DV's network streams alike: the int32
stream id and the int32 size of the (compressed) payload."""

_MAX_ELEMENTS = 1 << 31


# -- compression ------------------------------------------------------------------------------

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_PAYLOAD = 1 << 32
_ZSTD_MAX_RATIO = 1 << 15  # one 4-byte RLE block can stand for a 128 KiB block
_local = threading.local()


def decompress(code: int, payload: Any) -> Any:
    """The FlatBuffer bytes of one packet payload (``payload`` itself when uncompressed).

    Zstd (de)compressor objects are not thread-safe: each thread keeps its own.
    """
    if code == NONE:
        return payload
    try:
        if code in (LZ4, LZ4_HIGH):
            return _decompress_lz4(payload)
        return _decompress_zstd(payload)
    except PayloadError:
        raise
    except (RuntimeError, ValueError, zstandard.ZstdError, MemoryError, OverflowError) as error:
        name = "LZ4" if code in (LZ4, LZ4_HIGH) else "Zstd"
        raise PayloadError(f"cannot decompress the {name} data ({error})") from None


def _decompress_lz4(payload: Any) -> bytes:
    head = bytes(payload[:14])
    if head[:4] != _LZ4_MAGIC:
        raise PayloadError(f"not an LZ4 frame (it starts {head[:4].hex()}, not 04224d18)")
    if len(head) >= 14 and head[4] & 0x08:  # the frame header holds the content size
        (size,) = struct.unpack_from("<Q", head, 6)
        if size > 255 * len(payload) + (1 << 16) or size > _MAX_PAYLOAD:
            raise PayloadError(
                f"the LZ4 frame claims {size} bytes, more than {len(payload)} bytes can hold"
            )
    data: bytes = lz4.frame.decompress(payload)
    return data


def _decompress_zstd(payload: Any) -> bytes:
    if bytes(payload[:4]) != _ZSTD_MAGIC:
        raise PayloadError(f"not a Zstd frame (it starts {bytes(payload[:4]).hex()}, not 28b52ffd)")
    decompressor = getattr(_local, "zstd", None)
    if decompressor is None:
        decompressor = _local.zstd = zstandard.ZstdDecompressor()
    size = zstandard.frame_content_size(payload)
    limit = min(len(payload) * _ZSTD_MAX_RATIO + (1 << 20), _MAX_PAYLOAD)
    if size > limit:
        raise PayloadError(f"the Zstd frame claims {size} bytes, more than it can hold")
    if size >= 0:
        data: bytes = decompressor.decompress(payload)
        return data
    # No content size in the frame: stream it out, bounded.
    parts = []
    total = 0
    with decompressor.stream_reader(payload, read_across_frames=False) as reader:
        while True:
            part = reader.read(1 << 20)
            if not part:
                break
            total += len(part)
            if total > limit:
                raise PayloadError("the Zstd frame expands beyond any plausible packet")
            parts.append(part)
    return b"".join(parts)


def compress(code: int, data: bytes | memoryview, level: int | None = None) -> bytes | memoryview:
    """Compress one packet payload (or the file data table) with the file's codec."""
    if code == NONE:
        return data
    chosen = DEFAULT_LEVELS[code] if level is None else level
    if code in (LZ4, LZ4_HIGH):
        # Independent blocks: about 15 % faster to compress than linked ones here, and no
        # larger (each block of up to 64 KiB holds some 4000 events).
        out: bytes = lz4.frame.compress(
            data, compression_level=chosen, block_linked=False, store_size=True
        )
        return out
    compressors = getattr(_local, "zstd_compressors", None)
    if compressors is None:
        compressors = _local.zstd_compressors = {}
    compressor = compressors.get(chosen)
    if compressor is None:
        compressor = compressors[chosen] = zstandard.ZstdCompressor(level=chosen)
    out = compressor.compress(data)
    return out


# -- events: the fast path --------------------------------------------------------------------

OK, BAD_BUFFER, BAD_IDENTIFIER, BAD_TABLE, BAD_VECTOR, NO_ROOM, NEGATIVE_TIME = range(7)
_EVTS = np.frombuffer(b"EVTS", np.uint8)


@nb.njit(nogil=True, cache=True)
def _decode_events(
    data: Any, identifier: Any, events: Any, start: int, stop: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """Decode the EventPacket FlatBuffer in ``data`` into ``events[start:stop]``.

    Returns (status, elements in the packet, events kept, detail): events outside
    ``width`` x ``height`` are dropped; ``NO_ROOM`` (nothing written) when the packet holds
    more elements than ``stop - start``; on a malformed buffer, ``detail`` is the position
    found wrong.
    """
    root, end = root_position(data, identifier)
    if root == -1:
        return BAD_BUFFER, 0, 0, 0
    if root == -2:
        return BAD_IDENTIFIER, 0, 0, 8
    field = table_field(data, end, root, 0, 4)
    if field < 0:
        return BAD_TABLE, 0, 0, root
    if field == 0:
        return OK, 0, 0, 0
    offset = read_u32(data, field)
    vector = field + offset
    if offset == 0 or vector + 4 > end:
        return BAD_VECTOR, 0, 0, field
    n = read_u32(data, vector)
    first = vector + 4
    if first + 16 * n > end:
        return BAD_VECTOR, n, 0, vector
    if n > stop - start:
        return NO_ROOM, n, 0, 0
    if (data.ctypes.data + first) % 8 == 0:
        return _copy_aligned(data[first : first + 16 * n], n, events, start, width, height)
    k = start
    for i in range(n):  # an unaligned vector (never written so): one byte at a time
        p = first + 16 * i
        t = read_i64(data, p)
        if t < 0:
            return NEGATIVE_TIME, n, k - start, p
        x = read_u16(data, p + 8)
        y = read_u16(data, p + 10)
        if x < width and y < height:
            event = events[k]
            event.t = np.uint64(t)
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = data[p + 12] != 0
            k += 1
    return OK, n, k - start, 0


@nb.njit(nogil=True, cache=True)
def _copy_aligned(
    vector: Any, n: int, events: Any, start: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The events of an 8-aligned vector of 16-byte DV events, read as whole words."""
    words = vector.view(np.int64)
    halves = vector.view(np.uint16)
    k = start
    for i in range(n):
        t = words[2 * i]
        if t < 0:
            return NEGATIVE_TIME, n, k - start, 16 * i
        # int16 coordinates read unsigned: negative ones fall outside the sensor
        x = halves[8 * i + 4]
        y = halves[8 * i + 5]
        if x < width and y < height:
            event = events[k]
            event.t = np.uint64(t)
            event.x = x
            event.y = y
            event.on = vector[16 * i + 12] != 0
            k += 1
    return OK, n, k - start, 0


_EVENT_ERRORS = {
    BAD_BUFFER: "the payload is not a size-prefixed FlatBuffer",
    BAD_IDENTIFIER: "the payload is not an EventPacket (identifier {identifier})",
    BAD_TABLE: "the EventPacket's table does not fit in the payload",
    BAD_VECTOR: "the EventPacket's events vector does not fit in the payload",
    NEGATIVE_TIME: "an event has a negative timestamp",
}


def decode_events(
    data: npt.NDArray[np.uint8],
    events: npt.NDArray[Any],
    start: int,
    stop: int,
    width: int,
    height: int,
) -> tuple[int, int]:
    """Decode an EventPacket payload into ``events[start:stop]``.

    Returns (elements in the packet, events kept); raises :class:`PayloadError` on a
    malformed payload and returns (elements, -1) when they do not fit in ``stop - start``.
    """
    status, n, kept, detail = _decode_events(data, _EVTS, events, start, stop, width, height)
    if status == OK:
        return n, kept
    if status == NO_ROOM:
        return n, -1
    identifier = bytes(data[8:12]).decode("latin-1") if len(data) >= 12 else "?"
    raise PayloadError(_EVENT_ERRORS[status].format(identifier=repr(identifier)), detail)


_EVENTS_HEADER = np.frombuffer(
    struct.pack("<II4sH3HiI", 0, 16, b"EVTS", 0, 6, 8, 4, 6, 4), np.uint8
)


def encode_events(events: npt.NDArray[Any]) -> memoryview:
    """The EventPacket FlatBuffer of ``events`` (:data:`~aerflow.EVENTS_DTYPE`), laid out as
    DV's own builder lays it out: vtable at 14, table at 20, events from byte 32. A view of
    the array it was built in: compressors and files take it as it is, without a copy."""
    n = len(events)
    out = np.empty(32 + 16 * n, np.uint8)
    out[:28] = _EVENTS_HEADER
    out[:4].view("<u4")[0] = 28 + 16 * n
    out[28:32].view("<u4")[0] = n
    _fill_dv_events(events, out[32:].view(DV_EVENT_DTYPE))
    return out.data


@nb.njit(nogil=True, cache=True)
def _fill_dv_events(events: Any, records: Any) -> None:
    # One pass (instead of one strided copy per field) that also zeroes the padding bytes.
    padding = records.view(np.uint8).reshape((-1, 16))
    for i in range(events.size):
        event = events[i]
        record = records[i]
        record.t = np.int64(event.t)
        record.x = np.int16(event.x)
        record.y = np.int16(event.y)
        record.on = event.on
        padding[i, 13] = 0
        padding[i, 14] = 0
        padding[i, 15] = 0


# -- tables of fixed layout, shared by the side channels and the file data table ---------------


def _packet_of_tables(
    identifier: bytes, table_size: int, field_offsets: tuple[int, ...], records: Any
) -> bytes:
    """A ``{elements: [Table]}`` FlatBuffer whose element tables are ``records`` (a structured
    array whose first field, the int32 soffset, is filled here), all sharing one vtable."""
    builder = Builder(identifier)
    root_vtable = builder.vtable(8, (4,))
    root = builder.table(root_vtable, 8)
    builder.set_root(root)
    element_vtable = builder.vtable(table_size, field_offsets)
    n = len(records)
    vector = len(builder.data) + (-len(builder.data) % 4)
    first_table = vector + 4 + 4 * n
    first_table += -first_table % 8
    slots = vector + 4 + 4 * np.arange(n, dtype=np.int64)
    tables = first_table + table_size * np.arange(n, dtype=np.int64)
    placed = builder.vector((tables - slots).astype("<u4").tobytes(), n, 4)
    assert placed == vector
    records["soffset"] = tables - element_vtable
    builder.align(8)
    placed = builder.append(records.tobytes())
    assert placed == first_table
    builder.refer(root + 4, vector)
    return builder.finish()


_I8 = struct.Struct("<b")
_I16 = struct.Struct("<h")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")


def _root(buffer: Any, identifier: bytes) -> Table:
    try:
        return root_table(buffer, identifier)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None


# -- triggers ----------------------------------------------------------------------------------

_TRIGGER_RECORD = np.dtype(
    {
        "names": ["soffset", "type", "t"],
        "formats": ["<i4", "i1", "<i8"],
        "offsets": [0, 4, 8],
        "itemsize": 16,
    }
)


def decode_triggers(buffer: Any) -> npt.NDArray[Any]:
    """A TriggerPacket payload as :data:`~aerflow.TRIGGERS_DTYPE`."""
    try:
        elements = _root(buffer, b"TRIG").tables(0)
        out = np.empty(len(elements), TRIGGERS_DTYPE)
        for i, element in enumerate(elements):
            t = element.scalar(0, _I64, 0)
            code = element.scalar(1, _I8, 0)
            if t < 0:
                raise PayloadError("a trigger has a negative timestamp", element.position)
            out[i] = (t, *TRIGGER_TYPES.get(code, (UNKNOWN_TRIGGER_ID, True)))
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    return out


def encode_triggers(triggers: npt.NDArray[Any]) -> bytes:
    """The TriggerPacket FlatBuffer of ``triggers`` (:data:`~aerflow.TRIGGERS_DTYPE`)."""
    records = np.zeros(len(triggers), _TRIGGER_RECORD)
    records["t"] = triggers["t"]
    codes = [
        _trigger_code(int(i), bool(r))
        for i, r in zip(triggers["id"].tolist(), triggers["rising"].tolist(), strict=True)
    ]
    records["type"] = codes
    return _packet_of_tables(b"TRIG", 16, (8, 4), records)


def _trigger_code(channel: int, rising: bool) -> int:
    if channel in (4, 5):
        return _TRIGGER_CODES[(channel, True)]
    code = _TRIGGER_CODES.get((channel, rising))
    if code is None:
        raise ValueError(
            f"AEDAT 4 triggers have channels 0-5 (external signal, generator, frame, exposure, "
            f"pulse, timestamp reset), not {channel}"
        )
    return code


# -- IMU ---------------------------------------------------------------------------------------

_IMU_RECORD = np.dtype(
    {
        "names": ["soffset", "values", "t"],
        "formats": ["<i4", ("<f4", (10,)), "<i8"],
        "offsets": [0, 4, 48],
        "itemsize": 56,
    }
)
_IMU_FIELDS = (48, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40)


def decode_imu(buffer: Any) -> npt.NDArray[Any]:
    """An IMUPacket payload as :data:`~aerflow.IMU_DTYPE` (absent fields read as 0, the
    schema's default)."""
    try:
        elements = _root(buffer, b"IMUS").tables(0)
        out = np.zeros(len(elements), IMU_DTYPE)
        values = np.zeros((len(elements), 10), np.float32)
        for i, element in enumerate(elements):
            t = element.scalar(0, _I64, 0)
            if t < 0:
                raise PayloadError("an IMU sample has a negative timestamp", element.position)
            out["t"][i] = t
            for j in range(10):
                values[i, j] = element.scalar(1 + j, _F32, 0.0)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    out["temperature"] = values[:, 0]
    out["accelerometer"] = values[:, 1:4]
    out["gyroscope"] = values[:, 4:7]
    out["magnetometer"] = values[:, 7:10]
    return out


def encode_imu(imu: npt.NDArray[Any]) -> bytes:
    """The IMUPacket FlatBuffer of ``imu`` (:data:`~aerflow.IMU_DTYPE`)."""
    records = np.zeros(len(imu), _IMU_RECORD)
    records["t"] = imu["t"]
    records["values"][:, 0] = imu["temperature"]
    records["values"][:, 1:4] = imu["accelerometer"]
    records["values"][:, 4:7] = imu["gyroscope"]
    records["values"][:, 7:10] = imu["magnetometer"]
    return _packet_of_tables(b"IMUS", 56, _IMU_FIELDS, records)


# -- frames ------------------------------------------------------------------------------------

_FRAME_DEPTHS: dict[int, np.dtype[Any]] = {0: np.dtype("u1"), 2: np.dtype("<u2")}
"""OpenCV depth codes (format & 7) that frames use: 8-bit and 16-bit unsigned."""


def decode_frame(buffer: Any) -> Frame:
    """A Frame payload as :class:`~aerflow.Frame`: pixels ``(H, W)`` grey or ``(H, W, C)``
    (BGR / BGRA, as stored), ``uint8`` or ``uint16``."""
    try:
        table = _root(buffer, b"FRME")
        t, _, _, exposure_start, exposure_end = (table.scalar(i, _I64, 0) for i in range(5))
        code = table.scalar(5, _I8, 0)
        width, height, x, y = (table.scalar(i, _I16, 0) for i in range(6, 10))
        found = table.vector(10, 1)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    depth = _FRAME_DEPTHS.get(code & 7)
    channels = (code >> 3) + 1
    if code < 0 or depth is None or channels not in (1, 3, 4):
        raise PayloadError(f"unsupported frame format {code}", table.position)
    if width < 0 or height < 0:
        raise PayloadError(f"a frame of {width}x{height} pixels", table.position)
    start, length = found if found is not None else (0, 0)
    expected = width * height * channels * depth.itemsize
    if length != expected:
        raise PayloadError(
            f"a {width}x{height} frame of format {code} needs {expected} bytes of pixels, "
            f"the packet has {length}",
            table.position,
        )
    pixels = np.frombuffer(buffer, depth, count=width * height * channels, offset=start).copy()
    shape = (height, width) if channels == 1 else (height, width, channels)
    return Frame(
        t=t,
        pixels=pixels.reshape(shape),
        exposure_start=exposure_start or None,
        exposure_end=exposure_end or None,
        x=x,
        y=y,
    )


def encode_frame(frame: Frame) -> bytes:
    """The Frame FlatBuffer of ``frame`` (frame start/end taken as its exposure, else ``t``)."""
    pixels = np.asarray(frame.pixels)
    depth = {np.dtype("u1"): 0, np.dtype("u2"): 2}.get(pixels.dtype.newbyteorder("<"))
    if depth is None or pixels.dtype.byteorder == ">":
        raise ValueError(f"AEDAT 4 frames hold uint8 or uint16 pixels, not {pixels.dtype}")
    if pixels.ndim == 2:
        channels = 1
    elif pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4):
        channels = pixels.shape[2]
    else:
        raise ValueError(f"frame pixels must be (H, W) or (H, W, 3|4), not {pixels.shape}")
    height, width = pixels.shape[:2]
    limit = (1 << 15) - 1
    if not (width <= limit and height <= limit and 0 <= frame.x <= limit and 0 <= frame.y <= limit):
        raise ValueError("AEDAT 4 frame sizes and positions are 16-bit (at most 32767)")
    code = depth | (channels - 1) << 3
    start = frame.t if frame.exposure_start is None else frame.exposure_start
    end = frame.t if frame.exposure_end is None else frame.exposure_end
    builder = Builder(b"FRME")
    vtable = builder.vtable(64, (24, 32, 40, 48, 56, 8, 10, 12, 14, 16, 4))
    table = builder.table(vtable, 64)
    builder.set_root(table)
    builder.pack("<b", table + 8, code)
    builder.pack("<4h", table + 10, width, height, frame.x, frame.y)
    builder.pack("<5q", table + 24, frame.t, start, end, start, end)
    data = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).tobytes()
    builder.refer(table + 4, builder.vector(data, len(data), 4))
    return builder.finish()


# -- the file data table -----------------------------------------------------------------------

_FTAB = np.frombuffer(b"FTAB", np.uint8)
_TABLE_RECORD = np.dtype(
    {
        "names": ["soffset", "stream", "size", "offset", "count", "t_start", "t_end"],
        "formats": ["<i4", "<i4", "<i4", "<i8", "<i8", "<i8", "<i8"],
        "offsets": [0, 4, 8, 16, 24, 32, 40],
        "itemsize": 48,
    }
)


@nb.njit(nogil=True, cache=True)
def _decode_table(data: Any, end: int, first: int, out: Any) -> tuple[int, int]:
    """Fill ``out`` (TABLE_DTYPE) from the vector of FileDataDefinition offsets starting at
    ``first``. Returns (status, position found wrong)."""
    for i in range(out.size):
        slot = first + 4 * i
        table = slot + read_u32(data, slot)
        positions = np.empty(5, np.int64)
        for j in range(5):
            positions[j] = table_field(data, end, table, j, 8)
            if positions[j] < 0:
                return BAD_TABLE, table
        entry = out[i]
        entry.offset = read_i64(data, positions[0]) if positions[0] else 0
        if positions[1]:
            entry.stream = read_i32(data, positions[1])
            entry.size = read_i32(data, positions[1] + 4)
        else:
            entry.stream = 0
            entry.size = 0
        entry.count = read_i64(data, positions[2]) if positions[2] else 0
        entry.t_start = read_i64(data, positions[3]) if positions[3] else 0
        entry.t_end = read_i64(data, positions[4]) if positions[4] else 0
    return OK, 0


def decode_table(buffer: Any) -> npt.NDArray[Any]:
    """A FileDataTable payload as :data:`TABLE_DTYPE` entries, in stored order."""
    data = np.frombuffer(buffer, np.uint8)
    try:
        root = _root(data, b"FTAB")
        found = root.vector(0, 4)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    first, length = found if found is not None else (0, 0)
    out = np.zeros(length, TABLE_DTYPE)
    status, where = _decode_table(data, root.end, first, out)
    if status != OK:
        raise PayloadError("a file data table entry does not fit in the table", where)
    return out


def encode_table(entries: npt.NDArray[Any]) -> bytes:
    """The FileDataTable FlatBuffer of ``entries`` (:data:`TABLE_DTYPE`)."""
    records = np.zeros(len(entries), _TABLE_RECORD)
    for name in ("stream", "size", "offset", "count", "t_start", "t_end"):
        records[name] = entries[name]
    return _packet_of_tables(b"FTAB", 48, (16, 4, 24, 32, 40), records)
