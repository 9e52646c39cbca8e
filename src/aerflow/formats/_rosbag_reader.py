"""What the ROS 1 and ROS 2 bag readers share: the bag's event topics and the one chosen,
message fields parsed and checked (encoding, ``seq`` gaps), and the messages of a batch decoded
in one numba call per run of one encoding, ``evt3`` payloads as one EVT 3.0 stream; ``read()``
copies each batch into one array as it goes."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ..errors import (
    AerflowError,
    FormatError,
    LostMessagesWarning,
    OutOfRangeWarning,
    TruncatedDataWarning,
)
from ..events import (
    EVENTS_DTYPE,
    TRIGGERS_DTYPE,
    Packet,
    concatenate_packets,
    empty_events,
    empty_triggers,
)
from . import ros_kernels as kernels
from ._base import DEFAULT_CHUNK_SIZE, FileReader, Properties
from ._mapped_memory import _allocate_events
from ._rosbag_encodings import _EVT3_MAX_SIZE, _SENSOR_TIME, _WORD_BYTES, ENCODINGS
from ._rosbag_library import _short_type
from .evt3 import Evt3StreamDecoder
from .ros_messages import (
    EVENT_ARRAY_TYPES,
    EVENT_PACKET_TYPES,
    MalformedMessageError,
    event_array_size,
    parse_event_array,
    parse_event_packet,
)

_RECORD = np.dtype((np.void, EVENTS_DTYPE.itemsize))
_READ_BATCH_BYTES = 1 << 20
"""Message bytes decoded at a time by ``read()``: their events stay in the cache until
copied into the one array."""


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
