"""Slow, plain-Python reference decoder for iniVation AEDAT 4.0 files.

Written from the format description (``docs/formats/aedat4.md``) and the DV FlatBuffers
schemas it cites, to cross-check aerflow's reader and writer. It
imports nothing from ``aerflow``: the FlatBuffers are walked field by field with ``struct``
(vtable lookups, uoffsets, vectors), packets one after another from the end of the header,
and payloads decompressed with the ``lz4`` and ``zstandard`` packages.

What it returns:

* events: ``t, x, y, on`` of the first ``EVTS`` stream, in file order, those outside the
  sensor (``sizeX`` x ``sizeY`` from the description, when given) left out;
* triggers: ``t, id, rising`` with the trigger type mapped as aerflow documents it
  (channel 0 external signal rising/falling, 1 generator, 2 frame begin/end, 3 exposure
  begin/end, 4 pulse, 5 timestamp reset; anything else id 255, rising);
* IMU samples: ``t``, temperature, accelerometer, gyroscope, magnetometer (absent = 0);
* frames: dicts of the Frame table's fields, pixels as a numpy array ``(H, W[, C])``;
* the file data table entries as dicts.

Only complete packets are decoded: a file cut inside a packet yields the packets before it.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import zstandard

__all__ = [
    "EVENTS",
    "IMU",
    "TRIGGERS",
    "decode_file",
    "parse_header",
    "read_fb",
]

EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TRIGGERS = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])
IMU = np.dtype(
    [
        ("t", "<u8"),
        ("temperature", "<f4"),
        ("accelerometer", "<f4", (3,)),
        ("gyroscope", "<f4", (3,)),
        ("magnetometer", "<f4", (3,)),
    ]
)

MAGIC = b"#!AER-DAT4.0\r\n"
TRIGGER_MAP = {
    0: (5, True),
    1: (0, True),
    2: (0, False),
    3: (4, True),
    4: (1, True),
    5: (1, False),
    6: (2, True),
    7: (2, False),
    8: (3, True),
    9: (3, False),
}


# --------------------------------------------------------------------------- #
# FlatBuffers, one field at a time                                            #
# --------------------------------------------------------------------------- #


class FB:
    """A size-prefixed FlatBuffer: ``data`` starts with the uint32 size prefix."""

    def __init__(self, data: bytes) -> None:
        (size,) = struct.unpack_from("<I", data, 0)
        assert size + 4 <= len(data), "size prefix past the data"
        self.data = data[: size + 4]
        self.identifier = self.data[8:12]
        (root,) = struct.unpack_from("<I", self.data, 4)
        self.root = 4 + root  # positions count from the size prefix

    def field_position(self, table: int, index: int) -> int | None:
        (soffset,) = struct.unpack_from("<i", self.data, table)
        vtable = table - soffset
        vtable_size, _ = struct.unpack_from("<HH", self.data, vtable)
        if 4 + 2 * index + 2 > vtable_size:
            return None
        (offset,) = struct.unpack_from("<H", self.data, vtable + 4 + 2 * index)
        return None if offset == 0 else table + offset

    def scalar(self, table: int, index: int, fmt: str, default: Any = 0) -> Any:
        position = self.field_position(table, index)
        if position is None:
            return default
        return struct.unpack_from("<" + fmt, self.data, position)[0]

    def target(self, table: int, index: int) -> int | None:
        position = self.field_position(table, index)
        if position is None:
            return None
        (offset,) = struct.unpack_from("<I", self.data, position)
        return position + offset

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(first element position, length); (0, 0) when absent."""
        start = self.target(table, index)
        if start is None:
            return 0, 0
        (length,) = struct.unpack_from("<I", self.data, start)
        return start + 4, length

    def tables(self, table: int, index: int) -> list[int]:
        first, length = self.vector(table, index)
        out = []
        for i in range(length):
            slot = first + 4 * i
            (offset,) = struct.unpack_from("<I", self.data, slot)
            out.append(slot + offset)
        return out


def read_fb(data: bytes) -> FB:
    return FB(data)


def decompress(compression: int, payload: bytes) -> bytes:
    if compression == 0:
        return payload
    if compression in (1, 2):
        return lz4.frame.decompress(payload)
    if compression in (3, 4):
        reader = zstandard.ZstdDecompressor().stream_reader(payload)
        return reader.read()
    raise ValueError(f"unknown compression {compression}")


# --------------------------------------------------------------------------- #
# Header and description                                                      #
# --------------------------------------------------------------------------- #


def parse_header(data: bytes) -> dict[str, Any]:
    """compression, table position, description text and the byte after the header."""
    assert data.startswith(MAGIC), "not AEDAT 4.0"
    fb = FB(data[len(MAGIC) :])
    description_start = fb.target(fb.root, 2)
    text = ""
    if description_start is not None:
        (length,) = struct.unpack_from("<I", fb.data, description_start)
        text = fb.data[description_start + 4 : description_start + 4 + length].decode()
    return {
        "compression": fb.scalar(fb.root, 0, "i", 0),
        "table_position": fb.scalar(fb.root, 1, "q", -1),
        "description": text,
        "data_offset": len(MAGIC) + 4 + struct.unpack_from("<I", data, len(MAGIC))[0],
    }


def parse_streams(description: str) -> dict[int, dict[str, str]]:
    """Stream id -> attributes (stream and info attributes together), read with regular
    expressions from DV's XML layout (one ``<node name="N">`` per stream under outInfo)."""
    streams: dict[int, dict[str, str]] = {}
    current: int | None = None
    for line in description.splitlines():
        node = re.search(r'<node name="(\d+)"', line)
        if node:
            current = int(node.group(1))
            streams[current] = {}
            continue
        attr = re.search(r'<attr key="([^"]+)" type="[^"]*">([^<]*)</attr>', line)
        if attr and current is not None:
            streams[current][attr.group(1)] = attr.group(2)
    return streams


# --------------------------------------------------------------------------- #
# Packets                                                                     #
# --------------------------------------------------------------------------- #


def walk_packets(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(header offset, stream id, payload size) of every complete packet in [start, end)."""
    packets = []
    position = start
    while position + 8 <= end:
        stream, size = struct.unpack_from("<ii", data, position)
        if size < 0 or position + 8 + size > end:
            break
        packets.append((position, stream, size))
        position += 8 + size
    return packets


def decode_event_payload(buffer: bytes) -> list[tuple[int, int, int, bool]]:
    fb = FB(buffer)
    assert fb.identifier == b"EVTS", fb.identifier
    first, length = fb.vector(fb.root, 0)
    rows = []
    for i in range(length):
        t, x, y, on = struct.unpack_from("<qhh?", fb.data, first + 16 * i)
        rows.append((t, x, y, on))
    return rows


def decode_trigger_payload(buffer: bytes) -> list[tuple[int, int, bool]]:
    fb = FB(buffer)
    assert fb.identifier == b"TRIG"
    rows = []
    for table in fb.tables(fb.root, 0):
        t = fb.scalar(table, 0, "q")
        kind = fb.scalar(table, 1, "b")
        channel, rising = TRIGGER_MAP.get(kind, (255, True))
        rows.append((t, channel, rising))
    return rows


def decode_imu_payload(buffer: bytes) -> list[tuple[Any, ...]]:
    fb = FB(buffer)
    assert fb.identifier == b"IMUS"
    rows = []
    for table in fb.tables(fb.root, 0):
        t = fb.scalar(table, 0, "q")
        values = [fb.scalar(table, 1 + j, "f", 0.0) for j in range(10)]
        rows.append((t, values[0], values[1:4], values[4:7], values[7:10]))
    return rows


def decode_frame_payload(buffer: bytes) -> dict[str, Any]:
    fb = FB(buffer)
    assert fb.identifier == b"FRME"
    names = ("t", "begin_t", "end_t", "exposure_begin_t", "exposure_end_t")
    frame: dict[str, Any] = {name: fb.scalar(fb.root, i, "q") for i, name in enumerate(names)}
    frame["format"] = fb.scalar(fb.root, 5, "b")
    for i, name in enumerate(("width", "height", "x", "y")):
        frame[name] = fb.scalar(fb.root, 6 + i, "h")
    first, length = fb.vector(fb.root, 10)
    raw = fb.data[first : first + length]
    depth = {0: "u1", 2: "<u2"}[frame["format"] & 7]
    channels = (frame["format"] >> 3) + 1
    pixels = np.frombuffer(raw, depth)
    shape = (frame["height"], frame["width"]) + ((channels,) if channels > 1 else ())
    frame["pixels"] = pixels.reshape(shape)
    return frame


def decode_table_payload(buffer: bytes) -> list[dict[str, int]]:
    fb = FB(buffer)
    assert fb.identifier == b"FTAB"
    entries = []
    for table in fb.tables(fb.root, 0):
        info = fb.field_position(table, 1)
        stream, size = struct.unpack_from("<ii", fb.data, info) if info else (0, 0)
        entries.append(
            {
                "offset": fb.scalar(table, 0, "q"),
                "stream": stream,
                "size": size,
                "count": fb.scalar(table, 2, "q"),
                "t_start": fb.scalar(table, 3, "q"),
                "t_end": fb.scalar(table, 4, "q"),
            }
        )
    return entries


# --------------------------------------------------------------------------- #
# Whole files                                                                 #
# --------------------------------------------------------------------------- #


def decode_file(path: str | Path | bytes) -> dict[str, Any]:
    """Decode a whole file; see the module docstring for what comes back."""
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    header = parse_header(data)
    streams = parse_streams(header["description"])
    compression = header["compression"]
    table_position = header["table_position"]
    end = len(data)
    table: list[dict[str, int]] | None = None
    if header["data_offset"] <= table_position < len(data):
        end = table_position
        try:
            table = decode_table_payload(decompress(compression, data[table_position:]))
        except Exception:  # a cut table: the packets are still walked
            table = None
    packets = walk_packets(data, header["data_offset"], end)
    event_ids = sorted(i for i, s in streams.items() if s.get("typeIdentifier") == "EVTS")
    event_id = event_ids[0] if event_ids else None
    width = height = None
    if event_id is not None and "sizeX" in streams[event_id]:
        width, height = int(streams[event_id]["sizeX"]), int(streams[event_id]["sizeY"])
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    imu: list[tuple[Any, ...]] = []
    frames: list[dict[str, Any]] = []
    for position, stream, size in packets:
        kind = streams.get(stream, {}).get("typeIdentifier")
        if kind is None or (kind == "EVTS" and stream != event_id):
            continue
        payload = decompress(compression, data[position + 8 : position + 8 + size])
        if kind == "EVTS":
            for t, x, y, on in decode_event_payload(payload):
                if width is None or (0 <= x < width and 0 <= y < height):
                    events.append((t, x, y, on))
        elif kind == "TRIG":
            triggers.extend(decode_trigger_payload(payload))
        elif kind == "IMUS":
            imu.extend(decode_imu_payload(payload))
        elif kind == "FRME":
            frames.append(decode_frame_payload(payload))
    return {
        "header": header,
        "streams": streams,
        "packets": packets,
        "table": table,
        "events": np.array(events, EVENTS) if events else np.empty(0, EVENTS),
        "triggers": np.array(triggers, TRIGGERS) if triggers else np.empty(0, TRIGGERS),
        "imu": np.array(imu, IMU) if imu else np.empty(0, IMU),
        "frames": frames,
        "torn": _after(packets, header["data_offset"]) != end,
    }


def _after(packets: list[tuple[int, int, int]], start: int) -> int:
    if not packets:
        return start
    position, _, size = packets[-1]
    return position + 8 + size
