"""Slow, plain-Python reference decoder and encoder for Event Stream (.es) 2.x files.

Written from the format description (``docs/formats/event-stream.md`` and the Event
Stream 2.0 specification it cites), to cross-check the kernels of
``aerflow.formats.event_stream``. It imports nothing from ``aerflow``, walks the payload one
byte at a time through the state machine of the spec, and keeps every field as a plain Python
integer:

* the header is ``Event Stream``, three version bytes (major 2), a type byte (0 generic,
  1 DVS, 2 ATIS, 4 color) and, for DVS/ATIS/color, width and height as little-endian uint16;
* every event stores the time elapsed since the previous one; in the idle state (between
  events) special bytes add time (*overflow*) or do nothing (*reset*);
* DVS: ``0xFF`` adds 127 µs, ``0xFE`` is a reset, any other byte starts a 5-byte event
  ``t[6..0] is_increase | x lo | x hi | y lo | y hi``;
* ATIS: a byte ``0b111111xx`` adds ``63 * xx`` µs (``xx = 0``, ``0xFC``, is the reset), any
  other byte starts a 5-byte event ``t[5..0] polarity is_tc | x lo | x hi | y lo | y hi``;
* color: ``0xFF`` adds 254 µs, ``0xFE`` is a reset, any other byte starts an 8-byte event
  ``t | x lo | x hi | y lo | y hi | r | g | b``;
* generic: ``0xFF`` adds 254 µs, ``0xFE`` is a reset, any other byte is ``t``, followed by
  size bytes ``s[6..0] is_last`` (``is_last`` is 0 on the last one; ``n = sum s_i << 7i``)
  and ``n`` data bytes.

Inside an event every byte is data, whatever its value (resets only resynchronise a reader
that lost track, because five in a row always reach the idle state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EVENTS",
    "MAGIC",
    "Decoded",
    "decode",
    "encode_atis",
    "encode_color",
    "encode_dvs",
    "encode_generic",
    "header",
]

MAGIC = b"Event Stream"
EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TYPES = {0: "generic", 1: "dvs", 2: "atis", 4: "color"}
CODES = {name: code for code, name in TYPES.items()}


@dataclass
class Decoded:
    """What a file holds, in file order.

    ``dvs``: (t, x, y, on); ``atis``: (t, x, y, is_tc, polarity); ``color``: (t, x, y, r, g,
    b); ``generic``: (t, payload). Events outside the sensor are kept here (``inside`` tells
    whether one is inside). ``torn_at`` is the file offset where an unfinished event starts
    when the file ends inside one, else None.
    """

    stream_type: str
    version: tuple[int, int, int]
    width: int | None
    height: int | None
    data_offset: int
    records: list[tuple[object, ...]] = field(default_factory=list)
    torn_at: int | None = None

    def inside(self, record: tuple[object, ...]) -> bool:
        if self.width is None or self.height is None:
            return True
        x, y = record[1], record[2]
        assert isinstance(x, int)
        assert isinstance(y, int)
        return x < self.width and y < self.height

    def events(self, atis: str = "change") -> np.ndarray:
        """The records as EVENTS, the way aerflow maps them (outside the sensor dropped).

        DVS: as is. ATIS: change detections (``atis="change"``, on = polarity), exposure
        measurements (``"exposure"``, on = is_second) or both (``"all"``). Color: on when the
        colour is not black. Generic: t only (x = y = 0, on False).
        """
        rows: list[tuple[int, int, int, bool]] = []
        for record in self.records:
            if self.stream_type == "generic":
                rows.append((int(record[0]), 0, 0, False))  # type: ignore[call-overload]
                continue
            if not self.inside(record):
                continue
            t, x, y = (int(v) for v in record[:3])  # type: ignore[call-overload]
            if self.stream_type == "dvs":
                rows.append((t, x, y, bool(record[3])))
            elif self.stream_type == "atis":
                if self.wanted(record, atis):
                    rows.append((t, x, y, bool(record[4])))
            else:
                r, g, b = record[3:6]
                rows.append((t, x, y, (r, g, b) != (0, 0, 0)))
        out = np.empty(len(rows), EVENTS)
        for i, row in enumerate(rows):
            out[i] = row
        return out

    def wanted(self, record: tuple[object, ...], atis: str) -> bool:
        """False for ATIS records of the kind ``atis`` leaves out (they are not dropped)."""
        if self.stream_type != "atis" or atis == "all":
            return True
        return (atis == "exposure") == bool(record[3])

    def dropped(self, atis: str = "change") -> int:
        """Events left out because they lie outside the sensor."""
        if self.stream_type == "generic":
            return 0
        return sum(
            1 for record in self.records if self.wanted(record, atis) and not self.inside(record)
        )


def parse_header(data: bytes) -> tuple[str, tuple[int, int, int], int | None, int | None, int]:
    """(type name, version, width, height, offset of the first event byte)."""
    if data[:12] != MAGIC:
        raise ValueError("not an Event Stream file")
    if len(data) < 16:
        raise ValueError("header cut short")
    version = (data[12], data[13], data[14])
    if version[0] != 2:
        raise ValueError(f"unsupported version {version}")
    if data[15] not in TYPES:
        raise ValueError(f"unsupported stream type {data[15]}")
    name = TYPES[data[15]]
    if name == "generic":
        return name, version, None, None, 16
    if len(data) < 20:
        raise ValueError("header cut short")
    width = data[16] | data[17] << 8
    height = data[18] | data[19] << 8
    return name, version, width, height, 20


def decode(data: bytes) -> Decoded:
    """Decode a whole file."""
    name, version, width, height, offset = parse_header(data)
    out = Decoded(name, version, width, height, offset)
    t = 0
    i = offset
    size = len(data)
    fixed = {"dvs": 5, "atis": 5, "color": 8}
    while i < size:
        byte = data[i]
        if name == "dvs":
            if byte == 0xFF:
                t += 127
                i += 1
                continue
            if byte == 0xFE:
                i += 1
                continue
        elif name == "atis":
            if byte & 0xFC == 0xFC:
                t += 63 * (byte & 0x03)
                i += 1
                continue
        else:  # color and generic
            if byte == 0xFF:
                t += 254
                i += 1
                continue
            if byte == 0xFE:
                i += 1
                continue
        start = i
        if name in fixed:
            if i + fixed[name] > size:
                out.torn_at = start
                break
            x = data[i + 1] | data[i + 2] << 8
            y = data[i + 3] | data[i + 4] << 8
            if name == "dvs":
                t += byte >> 1
                out.records.append((t, x, y, byte & 1 == 1))
            elif name == "atis":
                t += byte >> 2
                out.records.append((t, x, y, byte & 1 == 1, byte & 2 == 2))
            else:
                t += byte
                out.records.append((t, x, y, data[i + 5], data[i + 6], data[i + 7]))
            i += fixed[name]
            continue
        # generic: time, size bytes, data bytes
        t += byte
        i += 1
        n = 0
        shift = 0
        last = False
        while i < size:
            size_byte = data[i]
            i += 1
            n += (size_byte >> 1) << shift
            shift += 7
            if size_byte & 1 == 0:
                last = True
                break
        if not last or i + n > size:
            out.torn_at = start
            break
        out.records.append((t, bytes(data[i : i + n])))
        i += n
    return out


def header(stream_type: str, width: int = 0, height: int = 0) -> bytes:
    """A version 2.0.0 header."""
    head = MAGIC + bytes([2, 0, 0, CODES[stream_type]])
    if stream_type != "generic":
        head += bytes([width & 0xFF, width >> 8, height & 0xFF, height >> 8])
    return head


def _times(times: list[int]) -> list[int]:
    deltas = []
    previous = 0
    for t in times:
        if t < previous:
            raise ValueError("times must not decrease")
        deltas.append(t - previous)
        previous = t
    return deltas


def encode_dvs(events: list[tuple[int, int, int, bool]], width: int, height: int) -> bytes:
    """The file the spec describes for these (t, x, y, on) events."""
    out = bytearray(header("dvs", width, height))
    for delta, (_, x, y, on) in zip(_times([e[0] for e in events]), events, strict=True):
        out += b"\xff" * (delta // 127)
        out.append((delta % 127) << 1 | int(on))
        out += bytes([x & 0xFF, x >> 8, y & 0xFF, y >> 8])
    return bytes(out)


def encode_atis(events: list[tuple[int, int, int, bool, bool]], width: int, height: int) -> bytes:
    """The file for these (t, x, y, is_tc, polarity) events: overflow bytes of 3 x 63 µs,
    then one for the 1 or 2 x 63 µs left."""
    out = bytearray(header("atis", width, height))
    for delta, (_, x, y, is_tc, polarity) in zip(
        _times([e[0] for e in events]), events, strict=True
    ):
        overflows = delta // 63
        out += b"\xff" * (overflows // 3)
        if overflows % 3:
            out.append(0xFC | overflows % 3)
        out.append((delta % 63) << 2 | int(polarity) << 1 | int(is_tc))
        out += bytes([x & 0xFF, x >> 8, y & 0xFF, y >> 8])
    return bytes(out)


def encode_color(
    events: list[tuple[int, int, int, int, int, int]], width: int, height: int
) -> bytes:
    out = bytearray(header("color", width, height))
    for delta, (_, x, y, r, g, b) in zip(_times([e[0] for e in events]), events, strict=True):
        out += b"\xff" * (delta // 254)
        out.append(delta % 254)
        out += bytes([x & 0xFF, x >> 8, y & 0xFF, y >> 8, r, g, b])
    return bytes(out)


def encode_generic(events: list[tuple[int, bytes]]) -> bytes:
    """Generic events with the fewest size bytes (one, 0x00, for an empty payload)."""
    out = bytearray(header("generic"))
    for delta, (_, payload) in zip(_times([e[0] for e in events]), events, strict=True):
        out += b"\xff" * (delta // 254)
        out.append(delta % 254)
        n = len(payload)
        while True:
            more = n >> 7
            out.append((n & 0x7F) << 1 | (1 if more else 0))
            n = more
            if not n:
                break
        out += payload
    return bytes(out)
