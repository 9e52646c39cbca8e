"""iniVation AEDAT 4.0 (DV): compressed FlatBuffer packets of events, triggers, IMU and frames.

Layout: ``#!AER-DAT4.0\\r\\n``, a size-prefixed IOHeader FlatBuffer (compression, position of the
file data table, XML description of the streams: see :mod:`.aedat4_description`), then packets
``{int32 stream id, int32 size, payload}`` whose payloads are FlatBuffers compressed as the
header says (:mod:`.aedat4_packets`), then optionally the compressed file data table, which
lists every packet with its element count and first/last timestamp.

Reading: the packet headers are walked once on opening (a numba kernel over the mapped
file, :mod:`._aedat4_scan`); the file data table, when it agrees with them, gives the event
count and time range without decoding anything, lets :meth:`Aedat4Reader.seek_time` and
:meth:`Aedat4Reader.read_range` skip packets, and lets :meth:`Aedat4Reader.read` place every
packet's events in the output before decoding it. Packets are independent, so several threads
decompress and decode them at once (lz4, zstandard and the numba kernel release the GIL),
each straight into its share of the output; iteration decodes ahead on the same threads and
yields packets in file order. Timestamps are absolute (Unix µs), as stored.

The events come from one ``EVTS`` stream (the first, unless ``stream`` names another);
triggers, IMU samples and frames from every stream of their type. Packets of other types
(bounding boxes, poses...) are skipped.

This module holds the reader: opening a file, positioning and reading on threads; packets are
decoded by :mod:`._aedat4_decode`, and the writer is :mod:`.aedat4_writer`'s.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, NotThisFormatError, OutOfRangeWarning, TruncatedDataWarning
from ..events import Packet, parse_time
from ._aedat4_compression import decompress
from ._aedat4_decode import (
    EVENTS,
    FRAMES,
    IMU,
    SKIPPED,
    TRIGGERS,
    PacketDecoder,
    _CountMismatch,
    _Decoded,
    _has_data,
    _join,
    _packet,
    release_pages,
)
from ._aedat4_file_table import decode_table
from ._aedat4_scan import SCAN_END, SCAN_FULL, SCAN_NEGATIVE_SIZE, SCAN_TORN, scan_packets
from ._base import (
    DEFAULT_CHUNK_SIZE,
    FileReader,
    Properties,
    check_sensor_size,
    chunk_and_threads,
)
from ._mapped_memory import _allocate_events
from .aedat4_description import (
    COMPRESSIONS,
    MAGIC,
    HeaderError,
    StreamInfo,
    parse_description,
    parse_io_header,
)
from .aedat4_flatbuffers import read_i32
from .aedat4_packets import PACKET_HEADER, PayloadError
from .aedat4_writer import Aedat4Writer

__all__ = [
    "SCAN_END",
    "SCAN_FULL",
    "SCAN_NEGATIVE_SIZE",
    "SCAN_TORN",
    "Aedat4Reader",
    "Aedat4Writer",
    "StreamInfo",
    "scan_packets",
]

log = logging.getLogger(__name__)

_KINDS = {"TRIG": TRIGGERS, "IMUS": IMU, "FRME": FRAMES}
_COORDINATE_LIMIT = 1 << 15  # events hold int16 coordinates
_HEADER = PACKET_HEADER.size  # int32 stream id, int32 payload size
_READ_BATCH_MIN = 1 << 18
_READ_BATCH_MAX = 1 << 23


class Aedat4Reader(FileReader):
    """Reads AEDAT 4.0 files (DV, dv-processing, faery, aedat...).

    ``chunk_size``: bytes of file gathered into each packet that iteration yields (whole
    AEDAT packets, at least one). ``threads``: how many threads decompress and decode
    (default: 2, or 1 on a single core). ``width``/``height`` override the sensor size of
    the description; ``stream`` picks an event stream by id when a file has several.
    """

    format_name = "aedat4"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int | None = None,
        width: int | None = None,
        height: int | None = None,
        stream: int | None = None,
    ) -> None:
        super().__init__(path)
        self.chunk_size, self.threads = chunk_and_threads(chunk_size, threads)
        size = check_sensor_size(width, height)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        self._map: mmap.mmap | None = None
        self._dropped = 0
        self._next = 0
        self._t_min: int | None = None
        self._torn_warned = False
        try:
            self._open(size, stream)
        except BaseException:
            self.close()
            raise

    # -- opening ----------------------------------------------------------------------------------

    def _open(self, size: tuple[int, int] | None, stream: int | None) -> None:
        file_size = os.fstat(self._file.fileno()).st_size
        head = self._file.read(len(MAGIC))
        if head != MAGIC:
            if head.startswith(MAGIC[:12]):
                raise FormatError(
                    "the version line '#!AER-DAT4.0' does not end in CR LF",
                    path=self.path,
                    offset=12,
                )
            raise NotThisFormatError(
                "not an AEDAT 4.0 file (it does not start with '#!AER-DAT4.0')",
                path=self.path,
                offset=0,
            )
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._data = np.frombuffer(self._map, np.uint8)
        try:
            header = parse_io_header(self._map, file_size)
            self.streams: list[StreamInfo] = parse_description(header.description, len(MAGIC))
        except HeaderError as error:
            raise FormatError(str(error), path=self.path, offset=error.offset) from None
        self.compression = COMPRESSIONS[header.compression]
        self._codec = header.compression
        self._data_offset = header.data_offset
        self.metadata = _metadata(header.compression, header.data_table_position, self.streams)
        self.metadata["description"] = header.description

        events_stream = self._event_stream(stream)
        self.event_stream = events_stream
        kinds = {s.id: _KINDS.get(s.type_identifier, SKIPPED) for s in self.streams}
        if events_stream is not None:
            kinds[events_stream.id] = EVENTS
        described = events_stream.size if events_stream is not None else None
        geometry = size or described
        self._width, self._height = (
            (min(geometry[0], _COORDINATE_LIMIT), min(geometry[1], _COORDINATE_LIMIT))
            if geometry
            else (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
        )

        table_position = header.data_table_position
        end = file_size
        table = None
        if self._data_offset <= table_position < file_size:
            end = table_position
            table = self._read_table(table_position, file_size)
        self._scan_packets(end, kinds)
        release_pages(self._map, self._offsets, self._sizes, np.arange(len(self._offsets)))
        self._apply_table(table)
        self._decoder = PacketDecoder(
            self.path,
            self._map,
            self._codec,
            offsets=self._offsets,
            streams=self._streams,
            sizes=self._sizes,
            kinds=self._kinds,
            counts=self._counts,
            width=self._width,
            height=self._height,
        )
        self.properties = self._properties(geometry)

    def _event_stream(self, chosen: int | None) -> StreamInfo | None:
        candidates = [s for s in self.streams if s.type_identifier == "EVTS"]
        if chosen is None:
            return candidates[0] if candidates else None
        for candidate in candidates:
            if candidate.id == chosen:
                return candidate
        raise ValueError(
            f"{self.path} has no event stream {chosen} "
            f"(event streams: {[s.id for s in candidates]})"
        )

    def _read_table(self, position: int, file_size: int) -> npt.NDArray[Any] | None:
        assert self._map is not None
        try:
            payload = decompress(self._codec, memoryview(self._map)[position:file_size])
            return decode_table(payload)
        except PayloadError as error:
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.path}: the file data table at byte {position} cannot be read "
                    f"({error}); packets are found by walking the file"
                ),
                stacklevel=4,
            )
            return None

    def _scan_packets(self, end: int, kinds: dict[int, int]) -> None:
        capacity = max(16, min((end - self._data_offset) // _HEADER + 1, 1 << 16))
        offsets: npt.NDArray[Any] = np.empty(capacity, np.int64)
        streams: npt.NDArray[Any] = np.empty(capacity, np.int32)
        sizes: npt.NDArray[Any] = np.empty(capacity, np.int64)
        position, n = self._data_offset, 0
        while True:
            found, position, status = scan_packets(
                self._data, position, end, offsets[n:], streams[n:], sizes[n:]
            )
            n += found
            if status != SCAN_FULL:
                break
            capacity *= 2
            offsets, streams, sizes = (np.resize(a, capacity) for a in (offsets, streams, sizes))
        if status == SCAN_NEGATIVE_SIZE:
            raise FormatError(
                f"packet header with a negative payload size "
                f"({int(read_i32(self._data, position + 4))})",
                path=self.path,
                offset=position,
            )
        self._torn_at = position if status == SCAN_TORN else None
        self._offsets = offsets[:n].copy()
        self._streams = streams[:n].copy()
        self._sizes = sizes[:n].copy()
        self._kinds = np.full(n, SKIPPED, np.int8)
        for stream_id in np.unique(self._streams).tolist():
            kind = kinds.get(stream_id)
            if kind is None:
                log.warning(
                    "%s: packets of stream %d, which the description does not name, are skipped",
                    self.path,
                    stream_id,
                )
            else:
                self._kinds[self._streams == stream_id] = kind

    def _apply_table(self, table: npt.NDArray[Any] | None) -> None:
        """Per-packet element counts and time ranges from the file data table, where its entry
        matches the packet walked (same payload offset, stream and size); -1 elsewhere."""
        n = len(self._offsets)
        self._counts = np.full(n, -1, np.int64)
        self._t_first = np.full(n, -1, np.int64)
        self._t_last = np.full(n, -1, np.int64)
        self.table = table
        if table is None or n == 0 or len(table) == 0:
            return
        payloads = self._offsets + _HEADER
        index = np.clip(np.searchsorted(payloads, table["offset"]), 0, n - 1)
        match = (
            (payloads[index] == table["offset"])
            & (self._streams[index] == table["stream"])
            & (self._sizes[index] == table["size"])
        )
        index, entries = index[match], table[match]
        counted = entries["count"] > 0
        self._counts[index[counted]] = entries["count"][counted]
        timed = (entries["t_start"] > 0) & (entries["t_end"] >= entries["t_start"])
        self._t_first[index[timed]] = entries["t_start"][timed]
        self._t_last[index[timed]] = entries["t_end"][timed]

    def _properties(self, geometry: tuple[int, int] | None) -> Properties:
        events = self._kinds == EVENTS
        count: int | None = None
        time_range: tuple[int, int] | None = None
        if self._torn_at is None and np.all(self._counts[events] > 0):
            count = int(self._counts[events].sum())
        if events.any() and np.all(self._t_first[events] >= 0):
            time_range = (int(self._t_first[events].min()), int(self._t_last[events].max()))
        return Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=0,
            event_count=count,
            time_range=time_range,
        )

    # -- positioning ------------------------------------------------------------------------------

    @property
    def dropped_out_of_range(self) -> int:
        return self._dropped

    def _restart(self) -> None:
        self._next = 0
        self._t_min = None
        self._dropped = 0

    def seek_time(self, t: int | str) -> None:
        """Start the next iteration or :meth:`read` at time ``t`` (µs, or a string such as
        ``"2.5s"``): it holds only what happens at or after ``t``. Packets the file data
        table places wholly before ``t`` are skipped without being decoded."""
        start = parse_time(t)
        with self._using(restart=False):
            timed = self._t_last >= 0
            before = timed & (self._t_last < start)
            self._next = len(before) if before.all() else int(np.argmin(before))
            self._t_min = start
            self._at_start = True  # the next iteration starts here, not at the first event

    def read_range(self, t_start: int | str, t_end: int | str) -> Packet:
        """Everything with ``t_start <= t < t_end``, decoding only the packets that the file
        data table does not place outside the range (all of them without a table). The
        iteration position is unchanged."""
        start, end = parse_time(t_start), parse_time(t_end)
        with self._using(restart=False):
            timed = self._t_first >= 0
            outside = timed & ((self._t_last < start) | (self._t_first >= end))
            indices = np.flatnonzero(~outside & (self._kinds != SKIPPED))
            decoded = self._decode_all(indices, (start, end))
            self._finish()
        return decoded

    # -- iteration and reading --------------------------------------------------------------------

    def _iterate(self) -> Iterator[Packet]:
        batches = self._chunks(self._next)
        bound = self._time_bound()
        if self.threads == 1:
            for stop, indices in batches:
                decoded = self._decoder.decode_local(indices, bound)
                self._next = stop
                if _has_data(decoded):
                    yield self._emit(decoded)
        else:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="aerflow-aedat4") as pool:
                pending: list[tuple[int, Future[_Decoded]]] = []
                try:
                    for stop, indices in batches:
                        pending.append(
                            (stop, pool.submit(self._decoder.decode_local, indices, bound))
                        )
                        if len(pending) <= self.threads:
                            continue
                        stop_done, future = pending.pop(0)
                        decoded = future.result()
                        self._next = stop_done
                        if _has_data(decoded):
                            yield self._emit(decoded)
                    while pending:
                        stop_done, future = pending.pop(0)
                        decoded = future.result()
                        self._next = stop_done
                        if _has_data(decoded):
                            yield self._emit(decoded)
                finally:
                    for _, future in pending:
                        future.cancel()
        self._finish()

    def _read(self) -> Packet:
        """Everything from the current position on as one packet, decoded on ``threads``
        threads."""
        indices = np.arange(self._next, len(self._offsets))
        indices = indices[self._kinds[indices] != SKIPPED]
        decoded = self._decode_all(indices, self._time_bound())
        self._next = len(self._offsets)
        self._finish()
        return decoded

    def _time_bound(self) -> tuple[int, int] | None:
        return None if self._t_min is None else (self._t_min, 1 << 64)

    def _chunks(self, first: int) -> Iterator[tuple[int, npt.NDArray[np.int64]]]:
        """Runs of packets of about ``chunk_size`` stored bytes: (index after, indices)."""
        n = len(self._offsets)
        start = first
        while start < n:
            stop = start
            gathered = 0
            while stop < n and (stop == start or gathered < self.chunk_size):
                gathered += int(self._sizes[stop]) + _HEADER
                stop += 1
            indices = np.arange(start, stop)
            yield stop, indices[self._kinds[indices] != SKIPPED]
            start = stop

    def _decode_all(self, indices: npt.NDArray[np.int64], bound: tuple[int, int] | None) -> Packet:
        """Decode the packets ``indices`` (in order) into one packet, on several threads."""
        counts = self._counts[indices][self._kinds[indices] == EVENTS]
        if bound is None and np.all(counts > 0):
            try:
                return self._decode_direct(indices, int(counts.sum()))
            except _CountMismatch:
                log.warning(
                    "%s: the file data table's event counts are wrong; decoding without them",
                    self.path,
                )
        parts = self._map_batches(
            self._split(indices), lambda run: self._decoder.decode_local(run, bound)
        )
        if len(parts) == 1:
            return self._emit(parts[0])
        total = sum(len(part.events) for part in parts)
        events = _allocate_events(total)
        position = 0
        for part in parts:
            events[position : position + len(part.events)] = part.events
            position += len(part.events)
            part.events = events[:0]
        return self._emit(_join(events, parts))

    def _decode_direct(self, indices: npt.NDArray[np.int64], total: int) -> Packet:
        """Decode with every event packet's place in the output known from the table."""
        events = _allocate_events(total)
        is_events = self._kinds[indices] == EVENTS
        places = np.zeros(len(indices) + 1, np.int64)
        places[1:] = np.cumsum(np.where(is_events, self._counts[indices], 0))
        batches = self._split(indices)
        first = 0
        jobs = []
        for batch in batches:
            jobs.append((batch, places[first : first + len(batch) + 1]))
            first += len(batch)
        parts = self._map_batches(jobs, lambda job: self._decoder.decode_into(events, *job))
        kept = [part.events for part in parts]  # per packet: (place, events kept, expected)
        dropped = sum(part.dropped for part in parts)
        if dropped:
            write = 0
            for runs in kept:
                for place, n_kept, _ in runs.tolist():
                    if write != place:
                        events[write : write + n_kept] = events[place : place + n_kept]
                    write += n_kept
            events = events[:write]
        for part in parts:
            part.events = events[:0]
        return self._emit(_join(events, parts))

    def _split(self, indices: npt.NDArray[np.int64]) -> list[npt.NDArray[np.int64]]:
        """Runs of ``indices`` of about equal stored bytes, a few per thread."""
        if len(indices) == 0:
            return []
        sizes = self._sizes[indices] + _HEADER
        total = int(sizes.sum())
        target = min(max(total // (8 * self.threads), _READ_BATCH_MIN), _READ_BATCH_MAX)
        cuts = np.searchsorted(np.cumsum(sizes), np.arange(target, total, target), side="right")
        return [run for run in np.split(indices, np.unique(cuts)) if len(run)]

    def _map_batches(self, jobs: Sequence[Any], work: Callable[[Any], _Decoded]) -> list[_Decoded]:
        if self.threads == 1 or len(jobs) < 2:
            return [work(job) for job in jobs]
        with ThreadPoolExecutor(
            min(self.threads, len(jobs)), thread_name_prefix="aerflow-aedat4"
        ) as pool:
            futures = [pool.submit(work, job) for job in jobs]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()

    def _emit(self, decoded: _Decoded) -> Packet:
        self._dropped += decoded.dropped
        return _packet(decoded)

    # -- the end ----------------------------------------------------------------------------------

    def _finish(self) -> None:
        if self._torn_at is not None and not self._torn_warned:
            self._torn_warned = True
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.path}: the file ends inside the packet at byte {self._torn_at} "
                    f"({os.fstat(self._file.fileno()).st_size - self._torn_at} trailing bytes "
                    "ignored)"
                ),
                stacklevel=3,
            )
        self._warn_dropped()

    def _warn_dropped(self) -> None:
        if self._dropped:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.path}: dropped {self._dropped} events outside the "
                    f"{self._width}x{self._height} sensor"
                ),
                stacklevel=3,
            )

    def _close(self) -> None:
        self._data = np.empty(0, np.uint8)
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a view lives on (an error on its way up)
                self._map.close()
            self._map = None
        decoder: PacketDecoder | None = getattr(self, "_decoder", None)  # none if opening failed
        if decoder is not None:
            decoder.close()
        self._file.close()


def _metadata(compression: int, table_position: int, streams: list[StreamInfo]) -> dict[str, str]:
    metadata = {
        "compression": COMPRESSIONS[compression],
        "data_table_position": str(table_position),
    }
    for stream in streams:
        for key, value in stream.attributes.items():
            metadata[f"{stream.id}/{key}"] = value
        for key, value in stream.info.items():
            metadata[f"{stream.id}/info/{key}"] = value
    return metadata
