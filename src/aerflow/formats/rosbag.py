"""ROS1 ``.bag`` and ROS2 bags (a folder with ``metadata.yaml``, or one ``.mcap`` / ``.db3``
file) of event messages, read and written without ROS through the pure-Python ``rosbags``.

Three message families: ``event_camera_msgs/EventPacket`` (``event_array_msgs/EventArray``
before 1.1.0) with the encodings ``evt3``, ``mono``, ``trigger``, ``libcaer`` and
``libcaer_cmp``, and ``dvs_msgs/EventArray`` / ``prophesee_event_msgs/EventArray``. The
container (chunks, sqlite, MCAP) is read by ``rosbags``; message fields are parsed here and
the events of many messages are decoded in one numba call (see docs/formats/ros.md).

One topic is read: ``topic=``, or the bag's only event topic. Its ``evt3`` payloads form one
EVT 3.0 stream decoded by :class:`~aerflow.formats.evt3.Evt3StreamDecoder`, state carried
across messages. Gaps in EventPacket ``seq`` are counted in :attr:`lost_messages`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from .._optional import require
from .._output import Output
from ..errors import (
    AerflowError,
    FormatError,
    LostMessagesWarning,
    MissingDependencyError,
    NotThisFormatError,
    OutOfRangeWarning,
    OutputError,
    TruncatedDataWarning,
)
from ..events import (
    EVENTS_DTYPE,
    TRIGGERS_DTYPE,
    Packet,
    concatenate_packets,
    empty_events,
    empty_triggers,
    parse_time,
)
from . import ros_kernels as kernels
from ._base import (
    DEFAULT_CHUNK_SIZE,
    FileReader,
    FileWriter,
    Properties,
    TimeOrigin,
    _allocate_events,
)
from .evt3 import Evt3StreamDecoder, Evt3StreamEncoder
from .ros_detect import ROS1_MAGIC, is_ros2_folder, sniff_ros1, sniff_ros2
from .ros_messages import (
    EVENT_ARRAY_TYPES,
    EVENT_PACKET_TYPES,
    MalformedMessageError,
    event_array_bytes,
    event_array_size,
    event_packet_bytes,
    message_definitions,
    parse_event_array,
    parse_event_packet,
)

__all__ = [
    "ENCODINGS",
    "EventTopic",
    "LostMessagesWarning",
    "MissingRosbagsError",
    "Ros1BagReader",
    "Ros1BagWriter",
    "Ros2BagReader",
    "Ros2BagWriter",
]

log = logging.getLogger(__name__)

ENCODINGS = ("evt3", "mono", "trigger", "libcaer", "libcaer_cmp")
"""EventPacket encodings aerflow decodes."""
_WORD_BYTES = {"evt3": 2, "mono": 8, "trigger": 8, "libcaer": 8, "libcaer_cmp": 2}
_SENSOR_TIME = ("evt3", "mono", "trigger")
"""Encodings whose times are the camera's own clock; the others give ROS (host) time."""
_EVT3_MAX_SIZE = 2048  # 11-bit addresses
_EVT3_MAX_SPAN_US = 1 << 46  # as the .raw writer: each 2**24 µs loop costs up to 3 words
_RECORD = np.dtype((np.void, EVENTS_DTYPE.itemsize))
_READ_BATCH_BYTES = 1 << 20
"""Message bytes decoded at a time by ``read()``: their events stay in the cache until
copied into the one array."""


MissingRosbagsError = MissingDependencyError
"""What a missing ``rosbags`` raises (the name this module has always exported)."""


def _rosbags(module: str) -> ModuleType:
    return require(f"rosbags.{module}", extra="ros", purpose="ROS bags (read without ROS)")


def _short_type(msgtype: str) -> str:
    return msgtype.replace("/msg/", "/")


def _full_type(name: str) -> str:
    package, _, message = name.partition("/")
    return name if "/msg/" in name else f"{package}/msg/{message}"


@dataclass(frozen=True)
class EventTopic:
    """An event topic of a bag, as its first message describes it."""

    name: str
    message_type: str
    messages: int
    encoding: str | None
    """EventPacket encoding; None for EventArray types."""
    width: int
    height: int

    @property
    def sensor_size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None


class _Batch:
    """Messages of one topic gathered for one decoding call."""

    def __init__(self) -> None:
        self.first_index = 0
        self.raws: list[Any] = []
        self.size = 0


class _RosBagReader(FileReader):
    """What the ROS1 and ROS2 readers share: topics, message parsing, batch decoding."""

    ros2: ClassVar[bool]

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        topic: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__(path)
        self.chunk_size = check_int(chunk_size, "chunk_size")
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self._bag: Any = None
        self._bag = self._guarded_call(self._open_bag)
        try:
            self._describe(topic)
        except BaseException:
            self._close()
            raise

    def _describe(self, topic: str | None) -> None:
        self.topics: list[EventTopic] = self._guarded_call(self._event_topics)
        """Every event topic of the bag."""
        self.other_topics = sorted(
            {c.topic for c in self._bag.connections} - {t.name for t in self.topics}
        )
        self.topic = self._choose(topic)
        """The topic read."""
        self._connections = [c for c in self._bag.connections if c.topic == self.topic.name]
        self.lost_messages = 0
        """EventPacket messages missing from the topic (gaps in ``seq``), counted so far."""
        self._dropped = 0
        chosen = self.topic
        self.time_reference = "sensor" if chosen.encoding in _SENSOR_TIME else "ros"
        """``sensor``: times are the camera's clock; ``ros``: the ROS (host) clock."""
        self._t0 = 0
        if chosen.encoding == "evt3":
            first = self._first_fields(self._connections)
            self._t0 = first.time_base // 1000 if first is not None else 0
        self.properties = Properties(
            format=self.format_name,
            width=chosen.width or None,
            height=chosen.height or None,
            t0=self._t0,
        )
        self.metadata = {
            "topic": chosen.name,
            "message_type": chosen.message_type,
            "messages": str(chosen.messages),
            "time_reference": self.time_reference,
        }
        if chosen.encoding is not None:
            self.metadata["encoding"] = chosen.encoding

    # -- the container --------------------------------------------------------------------
    def _open_bag(self) -> Any:
        raise NotImplementedError

    def _guarded_call(self, function: Any) -> Any:
        """Run ``function``, turning what the container library raises on bad bytes into
        a FormatError naming the file."""
        try:
            return function()
        except (AerflowError, FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as error:
            raise FormatError(
                f"not a readable {self._kind()} bag: {type(error).__name__}: {error}",
                path=self.path,
            ) from error

    def _kind(self) -> str:
        return "ROS 2" if self.ros2 else "ROS 1"

    def _close(self) -> None:
        if self._bag is not None:
            with contextlib.suppress(Exception):
                self._bag.close()

    def _messages(self, connections: list[Any]) -> Generator[Any, None, None]:
        """Raw message bytes of ``connections`` in bag order."""
        found = self._bag.messages(connections=connections)
        try:
            for _, _, raw in found:
                yield raw
        finally:
            found.close()

    def _event_topics(self) -> list[EventTopic]:
        found: dict[str, list[Any]] = {}
        for connection in self._bag.connections:
            if connection.msgtype in EVENT_PACKET_TYPES + EVENT_ARRAY_TYPES:
                found.setdefault(connection.topic, []).append(connection)
        topics = []
        for name, connections in found.items():
            msgtype = connections[0].msgtype
            count = sum(int(c.msgcount) for c in connections)
            encoding, width, height = None, 0, 0
            first = self._first_fields(connections)
            if first is not None:
                width, height = first.width, first.height
                encoding = getattr(first, "encoding", None)
            topics.append(EventTopic(name, _short_type(msgtype), count, encoding, width, height))
        return topics

    def _first_fields(self, connections: list[Any]) -> Any:
        messages = self._messages(connections)
        try:
            raw = next(messages, None)
        finally:
            messages.close()
        if raw is None:
            return None
        return self._parse(connections[0].msgtype, raw, connections[0].topic, 0)

    def _choose(self, topic: str | None) -> EventTopic:
        names = [t.name for t in self.topics]
        if topic is not None:
            for candidate in self.topics:
                if candidate.name == topic:
                    return candidate
            why = "an event topic" if topic in self.other_topics else "a topic"
            raise FormatError(
                f"{topic!r} is not {why} of this bag; event topics: "
                + (", ".join(names) or "none"),
                path=self.path,
            )
        if len(self.topics) == 1:
            return self.topics[0]
        if not self.topics:
            others = ", ".join(self.other_topics) or "none"
            raise FormatError(
                "no event topic (event_camera_msgs/EventPacket, dvs_msgs/EventArray or "
                f"prophesee_event_msgs/EventArray) in this bag; its topics: {others}",
                path=self.path,
            )
        listed = ", ".join(f"{t.name} ({t.message_type})" for t in self.topics)
        raise FormatError(
            f"several event topics: choose one with topic=...: {listed}", path=self.path
        )

    def _parse(self, msgtype: str, raw: Any, topic: str, index: int) -> Any:
        try:
            if msgtype in EVENT_PACKET_TYPES:
                return parse_event_packet(raw, self.ros2)
            return parse_event_array(raw, self.ros2)
        except MalformedMessageError as error:
            raise self._message_error(topic, index, f"the message {error}") from None

    def _message_error(self, topic: str, index: int, reason: str) -> FormatError:
        return FormatError(f"topic {topic}, message {index}: {reason}", path=self.path)

    # -- the reader rule --------------------------------------------------------------------
    @property
    def dropped_out_of_range(self) -> int:
        return self._dropped

    def _restart(self) -> None:
        pass  # every iteration starts a new pass over the bag's messages

    def _iterate(self) -> Iterator[Packet]:
        for packet, _ in self._batches(self.chunk_size):
            if len(packet.events) or len(packet.triggers):
                yield packet

    def _read(self) -> Packet:
        """Every item of the topic in one array, each small batch of messages copied into it
        as soon as it is decoded (while it is still in the cache) instead of gathering every
        packet and concatenating them at the end: one pass over the events fewer, and half
        the memory. The array is sized from the events per message byte of the batches so
        far and the bag's size on disk, in pages that cost nothing until written."""
        stored = _stored_bytes(self.path)
        events = _allocate_events(0)
        triggers: list[npt.NDArray[Any]] = []
        n = 0
        for packet, consumed in self._batches(_READ_BATCH_BYTES):
            count = len(packet.events)
            if n + count > len(events):
                rate = (n + count) / max(consumed, 1)
                capacity = max(int(rate * stored * 1.1), 2 * (n + count)) + (1 << 16)
                larger = _allocate_events(capacity)
                larger[:n].view(_RECORD)[:] = events[:n].view(_RECORD)
                events = larger
            # As whole records: NumPy copies a structured dtype field by field, 3x slower.
            events[n : n + count].view(_RECORD)[:] = packet.events.view(_RECORD)
            n += count
            if len(packet.triggers):
                triggers.append(packet.triggers)
        return Packet(events[:n], np.concatenate(triggers) if triggers else empty_triggers())

    def _batches(self, batch_bytes: int) -> Iterator[tuple[Packet, int]]:
        """The topic decoded a batch of about ``batch_bytes`` of messages at a time, each
        with the message bytes read so far."""
        self.lost_messages = 0
        self._dropped = 0
        self._evt3 = Evt3StreamDecoder(
            self.topic.width or _EVT3_MAX_SIZE, self.topic.height or _EVT3_MAX_SIZE
        )
        self._evt3_dropped = 0
        self._cmp_state = np.zeros(kernels.CMP_STATE_SIZE, np.int64)
        self._last_seq: int | None = None
        batch = _Batch()
        messages = self._messages(self._connections)
        consumed = 0
        try:
            index = 0
            while True:
                raw = self._guarded_call(lambda: next(messages, None))
                if raw is None:
                    break
                batch.raws.append(raw)
                batch.size += len(raw)
                index += 1
                if batch.size >= batch_bytes:
                    consumed += batch.size
                    packet = self._decode(batch)
                    batch = _Batch()
                    batch.first_index = index
                    yield packet, consumed
            if batch.raws:
                consumed += batch.size
                yield self._decode(batch), consumed
        finally:
            messages.close()
        self._finish()

    def _finish(self) -> None:
        if self._evt3.pending_bytes:
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.path}: topic {self.topic.name} ends inside an EVT 3.0 word "
                    f"({self._evt3.pending_bytes} byte ignored)"
                ),
                stacklevel=4,
            )
        if self.lost_messages:
            warnings.warn(
                LostMessagesWarning(
                    f"{self.path}: topic {self.topic.name} lost {self.lost_messages} "
                    "messages (gaps in their seq numbers)"
                ),
                stacklevel=4,
            )
        if self._dropped:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.path}: dropped {self._dropped} events outside the "
                    f"{self.topic.width}x{self.topic.height} sensor"
                ),
                stacklevel=4,
            )

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, batch: _Batch) -> Packet:
        msgtype = self._connections[0].msgtype
        if msgtype in EVENT_ARRAY_TYPES:
            return self._decode_arrays(batch)
        packets: list[Packet] = []
        run: list[tuple[int, Any, Any]] = []  # (index, fields, raw) of one encoding
        for offset, raw in enumerate(batch.raws):
            index = batch.first_index + offset
            fields = self._parse(msgtype, raw, self.topic.name, index)
            self._check_packet(fields, index)
            if run and not self._same_run(run[-1][1], fields):
                packets.append(self._decode_run(run))
                run = []
            run.append((index, fields, raw))
        if run:
            packets.append(self._decode_run(run))
        return packets[0] if len(packets) == 1 else concatenate_packets(packets)

    def _check_packet(self, fields: Any, index: int) -> None:
        topic = self.topic.name
        if fields.encoding not in ENCODINGS:
            raise self._message_error(
                topic,
                index,
                f"unknown encoding {fields.encoding!r} (aerflow reads {', '.join(ENCODINGS)})",
            )
        if fields.is_bigendian:
            raise self._message_error(topic, index, "big-endian payloads are not supported")
        length = fields.payload_end - fields.payload_start
        word = _WORD_BYTES[fields.encoding]
        if length % word:
            raise self._message_error(
                topic,
                index,
                f"the {fields.encoding} payload of {length} bytes ends inside a {word}-byte word",
            )
        if fields.time_base >= 1 << 62:
            raise self._message_error(
                topic, index, f"time_base {fields.time_base} ns is past any usable time"
            )
        if self._last_seq is not None and fields.seq > self._last_seq + 1:
            self.lost_messages += fields.seq - self._last_seq - 1
        self._last_seq = fields.seq

    @staticmethod
    def _same_run(previous: Any, fields: Any) -> bool:
        if previous.encoding != fields.encoding:
            return False
        return bool(fields.encoding != "evt3" or previous.time_base == fields.time_base)

    @staticmethod
    def _gather(run: list[tuple[int, Any, Any]]) -> tuple[Any, Any, Any, Any]:
        """The payloads of a run in one byte array, with their bounds and time bases."""
        parts = [memoryview(raw)[f.payload_start : f.payload_end] for _, f, raw in run]
        data = np.frombuffer(b"".join(parts), np.uint8)
        lengths = np.array([len(p) for p in parts], np.int64)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        time_bases = np.array([f.time_base for _, f, _ in run], np.int64)
        return data, starts, ends, time_bases

    def _decode_run(self, run: list[tuple[int, Any, Any]]) -> Packet:
        encoding = run[0][1].encoding
        data, starts, ends, time_bases = self._gather(run)
        width, height = self.topic.width, self.topic.height
        if encoding == "evt3":
            packet = self._evt3.decode(data)
            dropped = self._evt3.dropped_out_of_range
            self._dropped += dropped - self._evt3_dropped
            self._evt3_dropped = dropped
            shift = int(time_bases[0]) // 1000
            if shift:
                packet.events["t"] += np.uint64(shift)
                packet.triggers["t"] += np.uint64(shift)
            return packet
        if encoding == "trigger":
            triggers = np.empty(len(data) // 8, TRIGGERS_DTYPE)
            m = kernels.decode_trigger(data, starts, ends, time_bases, triggers, 0)
            return Packet(empty_events(), triggers[:m])
        if encoding == "libcaer_cmp":
            events = np.empty(kernels.count_libcaer_cmp(data, starts, ends), EVENTS_DTYPE)
            n, dropped = kernels.decode_libcaer_cmp(
                data, starts, ends, time_bases, self._cmp_state, width, height, events, 0
            )
        elif encoding == "mono":
            events = np.empty(len(data) // 8, EVENTS_DTYPE)
            n, dropped = kernels.decode_mono(
                data, starts, ends, time_bases, width, height, events, 0
            )
        else:
            events = np.empty(len(data) // 8, EVENTS_DTYPE)
            n, dropped, bad = kernels.decode_libcaer(
                data, starts, ends, time_bases, width, height, events, 0
            )
            if bad >= 0:
                raise self._message_error(
                    self.topic.name, run[bad][0], "a libcaer timestamp is negative"
                )
        self._dropped += dropped
        return Packet(events[:n], empty_triggers())

    def _decode_arrays(self, batch: _Batch) -> Packet:
        msgtype = self._connections[0].msgtype
        parts = []
        counts = np.empty(len(batch.raws), np.int64)
        for offset, raw in enumerate(batch.raws):
            index = batch.first_index + offset
            fields = self._parse(msgtype, raw, self.topic.name, index)
            counts[offset] = fields.count
            size = event_array_size(fields.count, self.ros2)
            parts.append(memoryview(raw)[fields.events_start : fields.events_start + size])
        lengths = np.array([len(p) for p in parts], np.int64)
        data = np.frombuffer(b"".join(parts), np.uint8)
        starts = np.cumsum(lengths) - lengths
        events = np.empty(int(counts.sum()), EVENTS_DTYPE)
        n, dropped, bad = kernels.decode_event_arrays(
            data, starts, counts, self.ros2, self.topic.width, self.topic.height, events, 0
        )
        if bad >= 0:
            raise self._message_error(
                self.topic.name, batch.first_index + bad, "an event time is negative"
            )
        self._dropped += dropped
        return Packet(events[:n], empty_triggers())

    # -- description --------------------------------------------------------------------------
    def details(self) -> list[tuple[str, str]]:
        """Rows for ``aerflow info``: every event topic and the one read."""
        rows = []
        for topic in self.topics:
            size = f"{topic.width}x{topic.height}" if topic.sensor_size else "unknown size"
            encoding = f", {topic.encoding}" if topic.encoding else ""
            rows.append(
                (
                    "topic",
                    f"{topic.name}: {topic.message_type}{encoding}, {topic.messages:,} "
                    f"messages, {size}",
                )
            )
        rows.append(("topic read", self.topic.name))
        rows.append(("time reference", f"{self.time_reference} clock"))
        if self.lost_messages:
            rows.append(("lost messages", f"{self.lost_messages:,}"))
        return rows


def _stored_bytes(path: str) -> int:
    """Bytes of a bag on disk: its file, or the files of its folder."""
    if os.path.isdir(path):
        with os.scandir(path) as entries:
            return sum(e.stat().st_size for e in entries if e.is_file())
    return os.path.getsize(path)


def _opened(reader: Any) -> Any:
    """``reader`` opened, or closed again when opening fails half-way."""
    try:
        reader.open()
    except BaseException:
        with contextlib.suppress(Exception):
            reader.close()
        raise
    return reader


class Ros1BagReader(_RosBagReader):
    """Reads event topics of ROS1 bags (v2.0, any chunk compression)."""

    format_name = "rosbag"
    ros2 = False

    def _open_bag(self) -> Any:
        if not os.path.isfile(self.path):
            if os.path.isdir(self.path):
                raise IsADirectoryError(f"{self.path} is a folder, not a ROS 1 .bag file")
            raise FileNotFoundError(f"{self.path}: no such file")
        with open(self.path, "rb") as file:
            if not sniff_ros1(file.read(len(ROS1_MAGIC))):
                raise NotThisFormatError("not a ROS 1 bag (#ROSBAG V2.0)", path=self.path)
        reader = _rosbags("rosbag1").Reader(Path(self.path))
        return _opened(reader)


class Ros2BagReader(_RosBagReader):
    """Reads event topics of ROS2 bags: a bag folder, or its ``.mcap`` or ``.db3`` file."""

    format_name = "rosbag2"
    ros2 = True

    def _open_bag(self) -> Any:
        if os.path.isdir(self.path) and not is_ros2_folder(self.path):
            raise FormatError(
                "a folder without a rosbag2 metadata.yaml: name the bag folder or its "
                ".mcap / .db3 file",
                path=self.path,
            )
        if os.path.isfile(self.path):
            with open(self.path, "rb") as file:
                head = file.read(1 << 16)
            if not sniff_ros2(head):
                raise NotThisFormatError(
                    "not a ROS 2 bag file (MCAP with the ros2 profile, or rosbag2 sqlite3)",
                    path=self.path,
                )
        rosbag2 = _rosbags("rosbag2")
        path = Path(self.path)
        if path.is_file() and path.suffix not in (".mcap", ".db3"):
            # rosbags picks the storage by suffix: give it a name with the right one.
            raise FormatError(
                "a ROS 2 bag file must be named *.mcap or *.db3 (its storage)", path=self.path
            )
        reader = _opened(rosbag2.Reader(path))
        for connection in reader.connections:
            fmt = getattr(connection.ext, "serialization_format", "cdr")
            if fmt != "cdr" and connection.msgtype in EVENT_PACKET_TYPES + EVENT_ARRAY_TYPES:
                raise FormatError(
                    f"topic {connection.topic} is serialised as {fmt!r}, not CDR",
                    path=self.path,
                )
        return reader


# -- writing ------------------------------------------------------------------------------


MESSAGE_TYPES = (
    "event_camera_msgs/EventPacket",
    "dvs_msgs/EventArray",
    "prophesee_event_msgs/EventArray",
)
WRITE_ENCODINGS = ENCODINGS


@dataclass(frozen=True)
class _WrittenEncoding:
    """What one EventPacket encoding holds, for the writer."""

    width: int
    height: int
    """Largest sensor its addresses hold."""
    longest_message_us: int | None
    """Longest ``message_duration`` whose times its per-message offsets hold."""
    stores: tuple[str, ...]
    most_trigger_id: int = 255
    holds_events: bool = True


_WRITTEN = {
    "evt3": _WrittenEncoding(_EVT3_MAX_SIZE, _EVT3_MAX_SIZE, None, ("triggers",), 0xF),
    # mono and trigger: an int32 of ns after time_base (the codec's encoders clamp at 0).
    "mono": _WrittenEncoding(1 << 16, 1 << 15, (1 << 31) // 1000, ()),
    "trigger": _WrittenEncoding(1 << 16, 1 << 16, (1 << 31) // 1000, ("triggers",), 0xFF, False),
    # libcaer: an int32 of µs after time_base; libcaer_cmp: a 24-bit µs offset, 11-bit x, y.
    "libcaer": _WrittenEncoding(1 << 15, 1 << 15, 1 << 31, ()),
    "libcaer_cmp": _WrittenEncoding(_EVT3_MAX_SIZE, _EVT3_MAX_SIZE, 1 << 24, ()),
}
_ARRAY_LIMIT = _WrittenEncoding(1 << 16, 1 << 16, None, ())
_LIBCAER_WORD = np.dtype([("address", "<u4"), ("stamp", "<i4")])


def _packet_payload(
    encoding: str, events: npt.NDArray[Any], triggers: npt.NDArray[Any], base_us: int
) -> npt.NDArray[Any]:
    """The payload of one message of ``encoding`` other than evt3 (times at or after
    ``base_us``, within the encoding's longest message)."""
    if encoding == "trigger":
        dt = (triggers["t"] - np.uint64(base_us)) * np.uint64(1000)
        rising = triggers["rising"].astype(np.uint64) << np.uint64(63)
        edges: npt.NDArray[Any] = rising | (triggers["id"].astype(np.uint64) << np.uint64(48)) | dt
        return edges
    if encoding == "mono":
        dt = (events["t"] - np.uint64(base_us)) * np.uint64(1000)
        on = events["on"].astype(np.uint64) << np.uint64(63)
        xy = (events["y"].astype(np.uint64) << np.uint64(48)) | (
            events["x"].astype(np.uint64) << np.uint64(32)
        )
        mono: npt.NDArray[Any] = on | xy | dt
        return mono
    if encoding == "libcaer":
        words = np.empty(len(events), _LIBCAER_WORD)
        # x bits 17-31, y bits 2-16, polarity bit 1, bit 0: libcaer's valid flag.
        words["address"] = (
            (events["x"].astype(np.uint32) << np.uint32(17))
            | (events["y"].astype(np.uint32) << np.uint32(2))
            | (events["on"].astype(np.uint32) << np.uint32(1))
            | np.uint32(1)
        )
        words["stamp"] = (events["t"] - np.uint64(base_us)).astype(np.int32)
        return words
    words16 = np.empty(4 * len(events) + 1, np.uint16)
    count = kernels.encode_libcaer_cmp(
        events["t"], events["x"], events["y"], events["on"], base_us, words16
    )
    return words16[:count]


class _FolderOutput(Output):
    """A ROS2 bag folder, built under a temporary name beside it and renamed into place on
    success; an existing bag folder is replaced only then, anything else is refused."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.streaming = False
        self.file = io.BytesIO()  # nothing is written through it: the bag writes files
        target = os.path.realpath(self.path)
        if os.path.lexists(target):
            if not os.path.isdir(target):
                raise OutputError(f"{self.path} exists and is not a folder: name a new folder")
            if os.listdir(target) and not is_ros2_folder(target):
                raise OutputError(f"{self.path} is a folder but not a ROS 2 bag: name a new folder")
        self._target = target
        parent = os.path.dirname(target) or "."
        self._root = tempfile.mkdtemp(
            prefix=f".{os.path.basename(target)}.", suffix=".part", dir=parent
        )
        self.working_path = os.path.join(self._root, os.path.basename(target))

    def commit(self) -> None:
        old = None
        if os.path.lexists(self._target):
            old = os.path.join(self._root, ".replaced")
            os.rename(self._target, old)
        assert self.working_path is not None
        os.rename(self.working_path, self._target)
        shutil.rmtree(self._root, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


def _typestore(ros2: bool) -> Any:
    typesys = _rosbags("typesys")
    store = typesys.get_typestore(typesys.Stores.LATEST if ros2 else typesys.Stores.ROS1_NOETIC)
    types: dict[str, Any] = {}
    for name, text in message_definitions(ros2).items():
        types.update(typesys.get_types_from_msg(text, name))
    store.register(types)
    return store


class _RosBagWriter(FileWriter, TimeOrigin):
    """Events (and triggers) to one topic of ``event_camera_msgs/EventPacket`` (``evt3``
    by default, or ``mono``, ``trigger``, ``libcaer``, ``libcaer_cmp``) or EventArray
    messages, each covering ``message_duration`` of event time.

    What an encoding cannot hold: ``mono``, ``libcaer``, ``libcaer_cmp`` and the EventArrays
    hold no triggers, ``evt3`` trigger ids 0-15 only (dropped and counted in
    :attr:`unwritten`); ``trigger`` holds no events (a ValueError at the first write that
    has some)."""

    ros2: ClassVar[bool]
    single_loop_us = 1 << 34

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        topic: str = "/events",
        message_type: str = "event_camera_msgs/EventPacket",
        encoding: str = "evt3",
        message_duration: str | int = "1ms",
        frame_id: str = "",
        time_origin: int | None = None,
    ) -> None:
        width, height = check_int(width, "width"), check_int(height, "height")
        if message_type not in MESSAGE_TYPES:
            raise ValueError(
                f"message_type must be one of {', '.join(MESSAGE_TYPES)}, got {message_type!r}"
            )
        self._packets = message_type == MESSAGE_TYPES[0]
        if encoding not in WRITE_ENCODINGS:
            raise ValueError(
                f"encoding must be one of {', '.join(WRITE_ENCODINGS)}, got {encoding!r}"
            )
        if not self._packets and encoding != "evt3":
            raise ValueError(
                f"encoding= is for event_camera_msgs/EventPacket, not {message_type} "
                f"(got {encoding!r})"
            )
        spec = _WRITTEN[encoding] if self._packets else _ARRAY_LIMIT
        held = f"{message_type} ({encoding})" if self._packets else message_type
        if not (0 < width <= spec.width and 0 < height <= spec.height):
            raise ValueError(
                f"{held} holds a sensor of at most {spec.width}x{spec.height}, got {width}x{height}"
            )
        if not topic.startswith("/"):
            raise ValueError(f"a ROS topic name starts with '/', got {topic!r}")
        self._duration = parse_time(message_duration)
        if self._duration <= 0:
            raise ValueError("message_duration must be positive")
        if spec.longest_message_us is not None and self._duration > spec.longest_message_us:
            raise ValueError(
                f"{held} messages hold at most {spec.longest_message_us} µs of event time, "
                f"got message_duration {self._duration} µs"
            )
        if time_origin is not None and time_origin < 0:
            raise ValueError(f"time_origin must not be negative, got {time_origin}")
        self._folder = self.ros2 and self._writes_folder(os.fspath(path))
        self._scratch: str | None
        if self._folder:
            self.path = os.fspath(path)
            self._output = _FolderOutput(path)
            self._file = self._output.file
            self._closed = False
            self.unwritten = {}
            bag_path = self._output.working_path
            self._scratch = None
        else:
            super().__init__(path)
            beside = os.path.dirname(os.path.realpath(self.path)) or "."
            # Beside the output, so that the finished file is renamed, not copied, into place.
            self._scratch = tempfile.mkdtemp(
                prefix=".aerflow-bag.", dir=None if self._output.streaming else beside
            )
            stem = Path(self.path).stem or "bag"
            bag_path = os.path.join(self._scratch, stem if self.ros2 else f"{stem}.bag")
        assert bag_path is not None
        self._bag_path = bag_path
        self.width, self.height = width, height
        self.topic = topic
        self.message_type = message_type
        self.encoding = encoding if self._packets else None
        """The EventPacket encoding written; None for EventArray messages."""
        self._holds_events = spec.holds_events
        self.frame_id = frame_id
        self._time_origin = time_origin
        self._origin = 0
        self._header_written = False
        self._encoder = Evt3StreamEncoder(width)
        self._seq = 0
        self._window: int | None = None  # index of the message being gathered
        self._pending_events: list[npt.NDArray[Any]] = []
        self._pending_triggers: list[npt.NDArray[Any]] = []
        self.stores = spec.stores
        self.most_trigger_id = spec.most_trigger_id
        self._bag: Any = None
        try:
            self._bag = self._open_bag(bag_path)
            store = _typestore(self.ros2)
            self._connection = self._bag.add_connection(
                topic, _full_type(message_type), typestore=store
            )
        except BaseException:
            self._discard()
            raise

    @staticmethod
    def _writes_folder(path: str) -> bool:
        """A bag folder, unless the path names one storage file: ``-``, ``*.mcap``,
        ``*.db3``, or something already there that is not a folder (a FIFO, a device, a
        file), which gets one MCAP file."""
        if path == "-" or os.path.splitext(path)[1].lower() in (".mcap", ".db3"):
            return False
        target = os.path.realpath(path)
        return os.path.isdir(target) or not os.path.lexists(target)

    def _open_bag(self, bag_path: str) -> Any:
        raise NotImplementedError

    def _why_unwritten(self, channel: str) -> str:
        if channel == "triggers" and "triggers" in self.stores:
            return f"{self.encoding} trigger ids are 0-{self.most_trigger_id}"
        if self.encoding is not None:
            return f"the EventPacket {self.encoding} encoding holds no {channel}"
        return f"{self.message_type} holds no {channel}"

    # -- packets into messages ------------------------------------------------------------
    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events) == 0 and len(triggers) == 0:
            return
        if len(events) and not self._holds_events:
            raise ValueError(
                f"the EventPacket {self.encoding} encoding holds trigger edges only, not the "
                f"{len(events)} events given: write them with another encoding "
                f"({', '.join(e for e in WRITE_ENCODINGS if _WRITTEN[e].holds_events)})"
            )
        if len(events):
            x_max, y_max = int(events["x"].max()), int(events["y"].max())
            if x_max >= self.width or y_max >= self.height:
                raise ValueError(
                    f"events lie outside the {self.width}x{self.height} sensor "
                    f"(max x {x_max}, max y {y_max})"
                )
        first = min(int(a["t"].min()) for a in (events, triggers) if len(a))
        last = max(int(a["t"].max()) for a in (events, triggers) if len(a))
        origin = self._origin_for(first)
        self._check_times(first, last, origin)
        self._origin = origin
        self._header_written = True
        self._gather(events, triggers)

    def _check_times(self, first: int, last: int, origin: int) -> None:
        """Refuse, before anything is sent, times the messages cannot hold."""
        seconds = 1 << (31 if self.ros2 else 32)
        if last >= seconds * 1_000_000:
            raise ValueError(
                f"t={last} µs is past the last ROS {2 if self.ros2 else 1} time "
                f"({seconds} s), where message stamps end"
            )
        if first < origin:
            raise ValueError(f"t={first} µs is before the bag's time origin {origin} µs")
        if self.encoding == "evt3" and last - origin > _EVT3_MAX_SPAN_US:
            raise ValueError(
                f"EVT 3.0 cannot store t={last} µs: it lies more than 2**46 µs (~2.2 years) "
                f"after the time origin {origin} µs, and every counter loop between would be "
                "written out"
            )

    def _gather(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        """Send every whole message before the window of the latest item."""
        last = max(int(a["t"][-1]) for a in (events, triggers) if len(a))
        window = (last - self._origin) // self._duration
        boundary = self._origin + window * self._duration
        if self._window is not None and window > self._window:
            ev = np.concatenate([*self._pending_events, events])
            tr = np.concatenate([*self._pending_triggers, triggers])
            cut_e = int(np.searchsorted(ev["t"], np.uint64(boundary), "left"))
            cut_t = int(np.searchsorted(tr["t"], np.uint64(boundary), "left"))
            self._send_windows(ev[:cut_e], tr[:cut_t])
            self._pending_events = [ev[cut_e:].copy()]
            self._pending_triggers = [tr[cut_t:].copy()]
        else:
            self._pending_events.append(events.copy())
            self._pending_triggers.append(triggers.copy())
        self._window = window if self._window is None else max(window, self._window)

    def _send_windows(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        """One message per non-empty window of ``message_duration`` among these items."""
        if len(events) == 0 and len(triggers) == 0:
            return
        duration = np.uint64(self._duration)
        origin = np.uint64(self._origin)
        windows = np.unique(
            np.concatenate(
                [(events["t"] - origin) // duration, (triggers["t"] - origin) // duration]
            )
        )
        bounds = origin + (windows + np.uint64(1)) * duration
        event_ends = np.searchsorted(events["t"], bounds, "left")
        trigger_ends = np.searchsorted(triggers["t"], bounds, "left")
        e0 = t0 = 0
        for e1, t1 in zip(event_ends.tolist(), trigger_ends.tolist(), strict=False):
            if e1 > e0 or t1 > t0:
                self._send(events[e0:e1], triggers[t0:t1])
            e0, t0 = e1, t1

    def _send(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        firsts = [int(a["t"][0]) for a in (events, triggers) if len(a)]
        first = min(firsts)
        stamp_ns = first * 1000
        if self.encoding == "evt3":
            self._encoder.origin = self._origin  # fixed once the first message is sent
            words = self._encoder.encode(events, triggers)
            time_base = self._origin * 1000
        elif self.encoding is not None:
            for items, what in ((events, "events"), (triggers, "triggers")):
                _check_time_order(items, what)
            # Each message counts from its first item, so every offset is small.
            words = _packet_payload(self.encoding, events, triggers, first)
            time_base = stamp_ns
        if self.encoding is not None:
            raw = event_packet_bytes(
                cdr=self.ros2,
                seq=self._seq,
                stamp_ns=stamp_ns,
                frame_id=self.frame_id,
                width=self.width,
                height=self.height,
                time_base=time_base,
                encoding=self.encoding,
                payload=np.ascontiguousarray(words).view(np.uint8).data,
            )
        else:
            _check_time_order(events, "events")
            raw = event_array_bytes(
                events,
                cdr=self.ros2,
                seq=self._seq,
                stamp_ns=stamp_ns,
                frame_id=self.frame_id,
                width=self.width,
                height=self.height,
            )
        self._bag.write(self._connection, stamp_ns, raw)
        self._seq += 1

    def _finalize(self) -> None:
        if self._pending_events or self._pending_triggers:
            events = np.concatenate(self._pending_events or [empty_events()])
            triggers = np.concatenate(self._pending_triggers or [empty_triggers()])
            self._pending_events, self._pending_triggers = [], []
            self._send_windows(events, triggers)
        self._bag.close()
        self._bag = None
        if self._folder:
            return
        produced = self._produced_file()
        if self._output.streaming:
            with open(produced, "rb") as source:
                shutil.copyfileobj(source, self._output.file, 1 << 20)
        else:
            assert self._output.working_path is not None
            self._output.file.close()
            os.replace(produced, self._output.working_path)
        shutil.rmtree(self._scratch or "", ignore_errors=True)

    def _produced_file(self) -> str:
        return self._bag_path

    def _discard(self) -> None:
        if self._bag is not None:
            with contextlib.suppress(Exception):
                self._bag.close()
            self._bag = None
        if getattr(self, "_scratch", None):
            shutil.rmtree(self._scratch or "", ignore_errors=True)
        super()._discard()


def _check_time_order(items: npt.NDArray[Any], what: str) -> None:
    if len(items) > 1 and bool(np.any(np.diff(items["t"].astype(np.int64)) < 0)):
        raise ValueError(f"{what} must be in time order")


class Ros1BagWriter(_RosBagWriter):
    """Writes events to a ROS1 ``.bag`` (uncompressed chunks)."""

    format_name = "rosbag"
    ros2 = False

    def _open_bag(self, bag_path: str) -> Any:
        writer = _rosbags("rosbag1").Writer(Path(bag_path))
        writer.open()
        return writer


class Ros2BagWriter(_RosBagWriter):
    """Writes events to a ROS2 bag: a folder (MCAP storage), or one ``.mcap`` or ``.db3``
    file when the path ends so."""

    format_name = "rosbag2"
    ros2 = True

    def _open_bag(self, bag_path: str) -> Any:
        rosbag2 = _rosbags("rosbag2")
        sqlite = os.path.splitext(self.path)[1].lower() == ".db3"
        plugin = rosbag2.StoragePlugin.SQLITE3 if sqlite else rosbag2.StoragePlugin.MCAP
        writer = rosbag2.Writer(Path(bag_path), version=9, storage_plugin=plugin)
        writer.open()
        return writer

    def _produced_file(self) -> str:
        name = os.path.basename(self._bag_path)
        suffix = ".db3" if os.path.splitext(self.path)[1].lower() == ".db3" else ".mcap"
        return os.path.join(self._bag_path, name + suffix)
