"""The event messages of ROS bags, read and written field by field without ROS.

ROS1 serialisation is packed little-endian with ``uint32`` lengths before strings and arrays.
ROS2 bags hold CDR: a 4-byte encapsulation header (``00 01``: little-endian), then every
primitive aligned to its own size counted from the end of that header. Only the fields before
the events are parsed here, in Python; the events themselves are decoded in bulk by
:mod:`aerflow.formats.ros_kernels`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import MalformedMessageError

__all__ = [
    "EVENT_ARRAY_TYPES",
    "EVENT_PACKET_TYPES",
    "EventArrayFields",
    "EventPacketFields",
    "MalformedMessageError",
    "event_array_bytes",
    "event_array_size",
    "event_packet_bytes",
    "message_definitions",
    "parse_event_array",
    "parse_event_packet",
]

EVENT_PACKET_TYPES = ("event_camera_msgs/msg/EventPacket", "event_array_msgs/msg/EventArray")
"""Packets of encoded events (``event_array_msgs`` was the package's name before 1.1.0)."""
EVENT_ARRAY_TYPES = ("dvs_msgs/msg/EventArray", "prophesee_event_msgs/msg/EventArray")
"""Arrays of one struct per event."""

_EVENT_PACKET_FIELDS = """uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
_ARRAY_FIELDS = "uint32 height\nuint32 width\n{package}/Event[] events\n"


def message_definitions(ros2: bool) -> dict[str, str]:
    """``.msg`` text of every message type aerflow reads and writes, by type name, as the
    packages define them (for registering with a ``rosbags`` type store)."""
    header = "std_msgs/Header header\n" if ros2 else "Header header\n"
    time = "builtin_interfaces/Time" if ros2 else "time"
    event = f"uint16 x\nuint16 y\n{time} ts\nbool polarity\n"
    texts = dict.fromkeys(EVENT_PACKET_TYPES, header + _EVENT_PACKET_FIELDS)
    for name in EVENT_ARRAY_TYPES:
        package = name.split("/")[0]
        texts[f"{package}/msg/Event"] = event
        texts[name] = header + _ARRAY_FIELDS.format(package=package)
    return texts


@dataclass(frozen=True)
class EventPacketFields:
    stamp_ns: int
    height: int
    width: int
    seq: int
    time_base: int
    encoding: str
    is_bigendian: bool
    payload_start: int
    payload_end: int


@dataclass(frozen=True)
class EventArrayFields:
    stamp_ns: int
    height: int
    width: int
    count: int
    events_start: int


_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_TWO_U32 = struct.Struct("<II")


class _Cursor:
    """Reads fields in order, aligned to their size past ``origin`` (CDR) or packed (ROS1)."""

    def __init__(self, data: Any, cdr: bool) -> None:
        self.data = data
        self.size = len(data)
        self.cdr = cdr
        self.origin = 4 if cdr else 0
        self.at = self.origin
        if cdr:
            if self.size < 4:
                raise MalformedMessageError("shorter than its 4-byte CDR header")
            if data[1] != 1:
                raise MalformedMessageError(
                    f"CDR encapsulation {bytes(data[:2]).hex()} is not little-endian CDR (0001)"
                )

    def _take(self, size: int, what: str) -> int:
        if self.cdr:
            self.at += -(self.at - self.origin) % size
        at = self.at
        if at + size > self.size:
            raise MalformedMessageError(f"ends inside its {what} at byte {self.size}")
        self.at = at + size
        return at

    def u8(self, what: str) -> int:
        return int(self.data[self._take(1, what)])

    def u32(self, what: str) -> int:
        value: int = _U32.unpack_from(self.data, self._take(4, what))[0]
        return value

    def i32(self, what: str) -> int:
        value: int = _I32.unpack_from(self.data, self._take(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = _U64.unpack_from(self.data, self._take(8, what))[0]
        return value

    def blob(self, what: str) -> tuple[int, int]:
        length = self.u32(f"{what} length")
        start = self.at
        if start + length > self.size:
            raise MalformedMessageError(
                f"declares {length} bytes of {what} but only {self.size - start} follow"
            )
        self.at = start + length
        return start, start + length

    def string(self, what: str) -> str:
        start, end = self.blob(what)
        raw = bytes(self.data[start:end])
        if self.cdr:
            raw = raw.rstrip(b"\x00")  # CDR strings count their terminating NUL
        return raw.decode("utf-8", "replace")

    def header_stamp(self) -> int:
        """Reads ``std_msgs/Header`` and returns its stamp in ns."""
        if self.cdr:
            seconds = self.i32("header stamp")
            nanoseconds = self.u32("header stamp")
        else:
            self.u32("header seq")
            seconds = self.u32("header stamp")
            nanoseconds = self.u32("header stamp")
        self.blob("header frame_id")
        return seconds * 1_000_000_000 + nanoseconds


def parse_event_packet(data: Any, cdr: bool) -> EventPacketFields:
    """The fields of an ``event_camera_msgs/EventPacket`` and where its payload lies."""
    cursor = _Cursor(data, cdr)
    stamp = cursor.header_stamp()
    height = cursor.u32("height")
    width = cursor.u32("width")
    seq = cursor.u64("seq")
    time_base = cursor.u64("time_base")
    encoding = cursor.string("encoding")
    is_bigendian = cursor.u8("is_bigendian") != 0
    start, end = cursor.blob("events")
    return EventPacketFields(
        stamp, height, width, seq, time_base, encoding, is_bigendian, start, end
    )


def event_array_size(count: int, cdr: bool) -> int:
    """Bytes of ``count`` events in an EventArray (CDR pads every event after the first)."""
    if count == 0:
        return 0
    return 16 * count - 3 if cdr else 13 * count


def parse_event_array(data: Any, cdr: bool) -> EventArrayFields:
    """The fields of a ``dvs_msgs``/``prophesee_event_msgs`` EventArray and where its first
    event starts, checking that the message holds every event it declares."""
    cursor = _Cursor(data, cdr)
    stamp = cursor.header_stamp()
    height = cursor.u32("height")
    width = cursor.u32("width")
    count = cursor.u32("events length")
    need = event_array_size(count, cdr)
    if cursor.at + need > cursor.size:
        raise MalformedMessageError(
            f"declares {count} events ({need} bytes) but only {cursor.size - cursor.at} "
            "bytes follow"
        )
    return EventArrayFields(stamp, height, width, count, cursor.at)


class _Builder:
    """Writes fields in order, aligned like :class:`_Cursor` reads them."""

    def __init__(self, cdr: bool) -> None:
        self.cdr = cdr
        self.parts: list[bytes] = [b"\x00\x01\x00\x00"] if cdr else []
        self.size = 0  # bytes after the CDR header

    def _add(self, raw: bytes, align: int) -> None:
        if self.cdr and self.size % align:
            pad = align - self.size % align
            self.parts.append(bytes(pad))
            self.size += pad
        self.parts.append(raw)
        self.size += len(raw)

    def u8(self, value: int) -> None:
        self._add(bytes((value,)), 1)

    def u32(self, value: int) -> None:
        self._add(_U32.pack(value), 4)

    def u64(self, value: int) -> None:
        self._add(_U64.pack(value), 8)

    def string(self, value: str) -> None:
        raw = value.encode() + (b"\x00" if self.cdr else b"")
        self.u32(len(raw))
        self._add(raw, 1)

    def header(self, seq: int, stamp_ns: int, frame_id: str) -> None:
        seconds, nanoseconds = divmod(stamp_ns, 1_000_000_000)
        if not self.cdr:
            self.u32(seq & 0xFFFFFFFF)
        self._add(_TWO_U32.pack(seconds, nanoseconds), 4)
        self.string(frame_id)

    def finish(self) -> bytes:
        return b"".join(self.parts)


def event_packet_bytes(
    *,
    cdr: bool,
    seq: int,
    stamp_ns: int,
    frame_id: str,
    width: int,
    height: int,
    time_base: int,
    encoding: str,
    payload: bytes | memoryview,
) -> bytes:
    """A serialised ``event_camera_msgs/EventPacket`` (little-endian payload)."""
    builder = _Builder(cdr)
    builder.header(seq, stamp_ns, frame_id)
    builder.u32(height)
    builder.u32(width)
    builder.u64(seq)
    builder.u64(time_base)
    builder.string(encoding)
    builder.u8(0)
    builder.u32(len(payload))
    builder._add(bytes(payload), 1)
    return builder.finish()


_ROS1_EVENT = np.dtype(
    {
        "names": ["x", "y", "secs", "nsecs", "polarity"],
        "formats": ["<u2", "<u2", "<u4", "<u4", "u1"],
        "offsets": [0, 2, 4, 8, 12],
        "itemsize": 13,
    }
)
_CDR_LATER_EVENT = np.dtype(
    {
        "names": ["x", "y", "secs", "nsecs", "polarity"],
        "formats": ["<u2", "<u2", "<u4", "<u4", "u1"],
        "offsets": [0, 2, 6, 10, 14],
        "itemsize": 16,
    }
)


def event_array_bytes(
    events: npt.NDArray[Any],
    *,
    cdr: bool,
    seq: int,
    stamp_ns: int,
    frame_id: str,
    width: int,
    height: int,
) -> bytes:
    """A serialised ``dvs_msgs``/``prophesee_event_msgs`` EventArray of ``events``
    (EVENTS_DTYPE, times in µs since the epoch of the ROS clock)."""
    builder = _Builder(cdr)
    builder.header(seq, stamp_ns, frame_id)
    builder.u32(height)
    builder.u32(width)
    count = len(events)
    builder.u32(count)
    seconds, micros = np.divmod(events["t"], np.uint64(1_000_000))
    if count and int(seconds.max()) >= (1 << 31 if cdr else 1 << 32):
        raise ValueError(
            f"t={int(events['t'].max())} µs is past the last second a ROS "
            f"{'2' if cdr else '1'} time holds"
        )
    nanos = micros * np.uint64(1000)
    if not cdr:
        records = np.empty(count, _ROS1_EVENT)
        records["x"], records["y"] = events["x"], events["y"]
        records["secs"], records["nsecs"] = seconds, nanos
        records["polarity"] = events["on"]
        builder._add(records.tobytes(), 1)
        return builder.finish()
    raw = np.zeros(16 * count + 2, np.uint8) if count else np.zeros(0, np.uint8)
    if count:
        first = raw[:13]
        first[0:2] = np.frombuffer(np.uint16(events["x"][0]).tobytes(), np.uint8)
        first[2:4] = np.frombuffer(np.uint16(events["y"][0]).tobytes(), np.uint8)
        first[4:8] = np.frombuffer(np.uint32(seconds[0]).tobytes(), np.uint8)
        first[8:12] = np.frombuffer(np.uint32(nanos[0]).tobytes(), np.uint8)
        first[12] = 1 if events["on"][0] else 0
        later = raw[14 : 14 + 16 * (count - 1)].view(_CDR_LATER_EVENT)
        later["x"], later["y"] = events["x"][1:], events["y"][1:]
        later["secs"], later["nsecs"] = seconds[1:], nanos[1:]
        later["polarity"] = events["on"][1:]
    builder._add(raw[: event_array_size(count, True)].tobytes(), 1)
    return builder.finish()
