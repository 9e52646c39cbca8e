"""Writing AEDAT 4.0: packets of events, triggers, IMU samples and frames, the file data table
and a header that DV-family tools (dv-processing, aedat, faery) accept.

Streams get DV's usual ids: 0 events, 1 frames, 2 IMU, 3 triggers. The header is written
first with room reserved for its final form, which is written on closing, when the streams
actually used, the sensor size and the position of the file data table are known. Packets
are compressed on a few threads (lz4 and zstandard release the GIL) while the caller goes
on, and written in order.
Side-channel packets are placed before the event packet whose time span reaches theirs, so
the file is ordered by time as DV orders it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from .._extent import event_extent
from ..events import IMU_DTYPE, TRIGGERS_DTYPE, Frame, Packet, as_events
from ._file_writer import FileWriter
from .aedat4_description import (
    COMPRESSIONS,
    MAGIC,
    StreamInfo,
    build_description,
    build_io_header,
    io_header_size,
)
from .aedat4_packets import (
    PACKET_HEADER,
    TABLE_DTYPE,
    compress,
    encode_events,
    encode_frame,
    encode_imu,
    encode_table,
    encode_triggers,
)

__all__ = ["DEFAULT_PACKET_EVENTS", "Aedat4Writer", "describe_stream"]

log = logging.getLogger(__name__)

DEFAULT_PACKET_EVENTS = 16384
"""Events per packet: 256 KiB of FlatBuffer, a few ms of a busy sensor."""

EVENTS_ID, FRAMES_ID, IMU_ID, TRIGGERS_ID = 0, 1, 2, 3
_STREAMS = {
    EVENTS_ID: ("EVTS", "events", "Array of events (polarity ON/OFF)."),
    FRAMES_ID: ("FRME", "frames", "Standard frame (8-bit image)."),
    IMU_ID: ("IMUS", "imu", "Inertial Measurement Unit data samples."),
    TRIGGERS_ID: ("TRIG", "triggers", "External triggers and special signals."),
}
_COORDINATE_LIMIT = 1 << 15
_MAX_TIME = (1 << 63) - 1
_COMPRESSING_BYTES = 1 << 25  # uncompressed bytes being compressed before the writer waits


class Aedat4Writer(FileWriter):
    """Writes AEDAT 4.0 files.

    ``compression``: ``"lz4"`` (default), ``"lz4_high"``, ``"zstd"``, ``"zstd_high"`` or
    ``"none"``; ``level`` overrides the codec's level. ``packet_events``: events per packet.
    ``width``/``height``: the sensor (default: just large enough for the events).
    ``camera``: the source name stored for every stream. ``threads``: compression threads.
    """

    format_name = "aedat4"
    needs_seek = True
    stores = ("triggers", "imu", "frames")

    most_trigger_id = 5

    def _why_unwritten(self, channel: str) -> str:
        if channel == "triggers":
            return (
                "AEDAT 4 triggers have channels 0-5 (external signal, generator, frame, "
                "exposure, pulse, timestamp reset)"
            )
        return super()._why_unwritten(channel)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        compression: str = "lz4",
        level: int | None = None,
        packet_events: int = DEFAULT_PACKET_EVENTS,
        camera: str = "aerflow",
        threads: int | None = None,
    ) -> None:
        names = [name.lower() for name in COMPRESSIONS]
        if str(compression).lower() not in names:
            raise ValueError(f"compression must be one of {names}, got {compression!r}")
        size = check_sensor_size(width, height)
        if size is not None and (size[0] > _COORDINATE_LIMIT or size[1] > _COORDINATE_LIMIT):
            raise ValueError("AEDAT 4 stores int16 coordinates: the sensor must fit 32768x32768")
        if not 1 <= int(packet_events) <= 1 << 26:
            raise ValueError("packet_events must be in 1..2**26")
        if threads is not None and int(threads) < 1:
            raise ValueError("threads must be at least 1")
        if not camera or any(ord(c) < 32 for c in camera):
            raise ValueError("camera must be a non-empty printable name")
        super().__init__(path)
        self._code = names.index(str(compression).lower())
        self._level = level
        self.size = size
        self.packet_events = int(packet_events)
        self.camera = camera
        self._threads = int(threads) if threads is not None else min(2, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[npt.NDArray[Any]] = []
        self._pending_count = 0
        self._triggers: list[npt.NDArray[Any]] = []
        self._imu: list[npt.NDArray[Any]] = []
        self._frames: list[Frame] = []
        self._compressing: deque[tuple[int, Future[bytes | memoryview], int, int, int, int]] = (
            deque()
        )
        self._compressing_bytes = 0
        self._entries: list[tuple[int, int, int, int, int, int]] = []
        self._used: set[int] = {EVENTS_ID}
        self._extent = [0, 0]  # largest x + 1, y + 1 seen
        self._frame_extent = [0, 0]
        self._header_size = io_header_size(self._description(full=True).encode()) + 256
        self._header_size += -self._header_size % 8
        self._file.write(MAGIC)
        self._file.write(
            build_io_header(self._code, -1, self._description().encode(), self._header_size)
        )
        self._offset = len(MAGIC) + self._header_size

    # -- taking data ------------------------------------------------------------------------------

    def _write_packet(self, packet: Packet) -> None:
        events = as_events(packet.events)
        triggers = np.asarray(packet.triggers)
        imu = np.asarray(packet.imu)
        self._check_events(events)
        if len(triggers):
            triggers = triggers.astype(TRIGGERS_DTYPE, copy=False)
            self._check_times(triggers["t"], "trigger")
            self._triggers.append(triggers.copy())
        if len(imu):
            if imu.dtype != IMU_DTYPE:
                raise TypeError(f"IMU samples must have aerflow.IMU_DTYPE, not {imu.dtype}")
            self._check_times(imu["t"], "IMU sample")
            self._imu.append(imu.copy())
        for frame in packet.frames:
            if not 0 <= frame.t <= _MAX_TIME:
                raise ValueError(f"frame time {frame.t} µs is outside 0..2**63-1")
            self._frames.append(frame)
        if len(events):
            self._pending.append(events)
            self._pending_count += len(events)
            if self._pending_count >= self.packet_events:
                self._emit_full_packets()
            else:
                self._pending[-1] = events.copy()  # the caller may reuse its array
        if (
            sum(len(a) for a in self._triggers) + sum(len(a) for a in self._imu)
            >= self.packet_events
            or len(self._frames) > 16
        ):
            self._flush_side_channels(None)

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        self._write_packet(Packet(events, triggers))

    def _check_events(self, events: npt.NDArray[Any]) -> None:
        if len(events) == 0:
            return
        _, t_max, x_max, y_max = event_extent(events)
        if t_max > _MAX_TIME:
            raise ValueError(f"event time {t_max} µs does not fit AEDAT 4's int64")
        width, height = self.size or (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
        if x_max >= width or y_max >= height:
            raise ValueError(
                f"events lie outside the {width}x{height} sensor (max x {x_max}, max y {y_max})"
            )
        self._extent = [max(self._extent[0], x_max + 1), max(self._extent[1], y_max + 1)]

    @staticmethod
    def _check_times(t: npt.NDArray[Any], what: str) -> None:
        if len(t) and int(t.max()) > _MAX_TIME:
            raise ValueError(f"{what} time {int(t.max())} µs does not fit AEDAT 4's int64")

    # -- packets ----------------------------------------------------------------------------------

    def _emit_full_packets(self) -> None:
        size = self.packet_events
        *held, events = self._pending
        if held:
            # Complete the packet begun by the held events; the rest are emitted in place,
            # without copying the caller's (possibly large) array.
            need = size - (self._pending_count - len(events))
            self._emit_events(np.concatenate([*held, events[:need]]))
            events = events[need:]
        full = len(events) // size * size
        for start in range(0, full, size):
            self._emit_events(events[start : start + size])
        rest = events[full:]
        self._pending = [rest.copy()] if len(rest) else []  # a copy: see _write_packet
        self._pending_count = len(rest)

    def _emit_events(self, events: npt.NDArray[Any]) -> None:
        first, last, _, _ = event_extent(events)
        self._flush_side_channels(last)
        self._enqueue(EVENTS_ID, encode_events(events), len(events), first, last)

    def _flush_side_channels(self, until: int | None) -> None:
        """Queue triggers, IMU samples and frames up to time ``until`` (all when None)."""
        for stream, held in ((TRIGGERS_ID, self._triggers), (IMU_ID, self._imu)):
            if not held:
                continue
            items = np.concatenate(held)
            now = items if until is None else items[items["t"] <= until]
            later = items[:0] if until is None else items[items["t"] > until]
            held.clear()
            if len(later):
                held.append(later)
            if len(now):
                encode = encode_triggers if stream == TRIGGERS_ID else encode_imu
                t = now["t"]
                self._enqueue(stream, encode(now), len(now), int(t.min()), int(t.max()))
        frames = self._frames
        self._frames = [f for f in frames if until is not None and f.t > until]
        for frame in frames:
            if until is None or frame.t <= until:
                height, width = np.asarray(frame.pixels).shape[:2]
                self._frame_extent = [
                    max(self._frame_extent[0], frame.x + width),
                    max(self._frame_extent[1], frame.y + height),
                ]
                self._enqueue(FRAMES_ID, encode_frame(frame), 1, frame.t, frame.t)

    def _enqueue(
        self, stream: int, payload: bytes | memoryview, count: int, first: int, last: int
    ) -> None:
        """Compress ``payload`` (on the pool when there is one, so that compressing overlaps
        the caller's next packets) and write it once it and every packet before it are done."""
        self._used.add(stream)
        if self._threads == 1:
            self._write_payload(stream, self._compress(payload), count, first, last)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="aerflow-aedat4")
        self._compressing.append(
            (stream, self._pool.submit(self._compress, payload), count, first, last, len(payload))
        )
        self._compressing_bytes += len(payload)
        self._write_compressed(final=False)

    def _write_compressed(self, final: bool) -> None:
        """Write the compressed packets at the head of the queue: those done, and more (waiting
        for them) while the queue holds too much or the file is closing."""
        while self._compressing:
            stream, future, count, first, last, size = self._compressing[0]
            if not (final or future.done() or self._compressing_bytes > _COMPRESSING_BYTES):
                return
            data = future.result()
            self._compressing.popleft()
            self._compressing_bytes -= size
            self._write_payload(stream, data, count, first, last)

    def _write_payload(
        self, stream: int, data: bytes | memoryview, count: int, first: int, last: int
    ) -> None:
        self._file.write(PACKET_HEADER.pack(stream, len(data)))
        self._file.write(data)
        self._entries.append((self._offset + 8, stream, len(data), count, first, last))
        self._offset += 8 + len(data)

    def _compress(self, payload: bytes | memoryview) -> bytes | memoryview:
        return compress(self._code, payload, self._level)

    # -- closing ----------------------------------------------------------------------------------

    def _finalize(self) -> None:
        try:
            if self._pending:
                events = np.concatenate(self._pending)
                self._pending = []
                for start in range(0, len(events), self.packet_events):
                    self._emit_events(events[start : start + self.packet_events])
            self._flush_side_channels(None)
            self._write_compressed(final=True)
            table = np.zeros(len(self._entries), TABLE_DTYPE)
            if self._entries:
                columns = list(zip(*self._entries, strict=True))
                for name, column in zip(
                    ("offset", "stream", "size", "count", "t_start", "t_end"), columns, strict=True
                ):
                    table[name] = column
            table_position = self._offset
            self._file.write(self._compress(encode_table(table)))
            header = build_io_header(
                self._code, table_position, self._description().encode(), self._header_size
            )
            self._file.seek(len(MAGIC))
            self._file.write(header)
            self._file.seek(0, os.SEEK_END)
        finally:
            self._shutdown()

    def abort(self) -> None:
        self._shutdown()
        super().abort()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _description(self, full: bool = False) -> str:
        """The XML description: the streams used so far (every stream when ``full``, with the
        largest sizes, to reserve room for the header)."""
        compression = COMPRESSIONS[self._code]
        limit = str(_COORDINATE_LIMIT)
        sensor = self.size or (max(self._extent[0], 1), max(self._extent[1], 1))
        frame_size = self.size or (
            max(self._frame_extent[0], 1),
            max(self._frame_extent[1], 1),
        )
        streams = []
        for stream in _STREAMS:
            if not full and stream not in self._used:
                continue
            size: tuple[str, str] | None = None
            if stream == EVENTS_ID:
                size = (limit, limit) if full else (str(sensor[0]), str(sensor[1]))
            elif stream == FRAMES_ID:
                size = (limit, limit) if full else (str(frame_size[0]), str(frame_size[1]))
            streams.append(describe_stream(stream, compression, self.camera, size))
        return build_description(streams)


def describe_stream(
    stream: int, compression: str, source: str, size: tuple[str, str] | None = None
) -> StreamInfo:
    """How aerflow describes one of its streams (``EVENTS_ID``, ``FRAMES_ID``, ``IMU_ID``,
    ``TRIGGERS_ID``), in files and to DV network clients: ``compression`` is a name of
    :data:`COMPRESSIONS`, ``source`` the camera, ``size`` (sizeX, sizeY) where it has one."""
    identifier, output, description = _STREAMS[stream]
    info = {"source": source, "tsOffset": "0"}
    if size is not None:
        info["sizeX"], info["sizeY"] = size
    attributes = {
        "compression": compression,
        "originalModuleName": "aerflow",
        "originalOutputName": output,
        "typeDescription": description,
    }
    return StreamInfo(stream, identifier, attributes, info)
