"""Turning the stored chunks of a Prophesee HDF5 file into events: the part of
:class:`~aerflow.formats.hdf5.Hdf5Reader` that decodes (ECF chunks on up to ``threads``
threads, plain or filter-skipped records, OpenEB's older compressed ``event_buffers``).

ECF chunks are decoded by :func:`._ecf.decode_chunks` straight from the memory-mapped file
into one output array: the reader's threads each own a contiguous part of it (sized from the
chunks' event counts), and only the gaps that events dropped outside the sensor leave are
closed afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import mmap
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError
from ..events import EVENTS_DTYPE
from ._ecf import STATUS_MESSAGES, decode_chunks
from ._mapped_memory import _allocate_events, _move_down
from .hdf5_writer import CD_DTYPE

__all__ = ["ChunkDecoding"]

_PARALLEL_MIN_EVENTS = 1 << 18


class ChunkDecoding:
    """Decoding for :class:`~aerflow.formats.hdf5.Hdf5Reader`, which sets these attributes
    when it opens a file."""

    path: str
    threads: int
    layout: str
    compressed: bool
    _count: int
    _rows: int
    _keeps: npt.NDArray[np.int64]
    _offsets: npt.NDArray[np.int64]
    _sizes: npt.NDArray[np.int64]
    _capacities: npt.NDArray[np.int64]
    _raw: npt.NDArray[np.bool_]
    _copying: bool
    _events: Any
    _buffers: Any
    _backend: str
    _map: mmap.mmap | None
    _data: npt.NDArray[np.uint8]
    _width: int
    _height: int
    _dropped: int

    def _decode(
        self, first: int, stop: int, *, limits: tuple[int, int] | None = None
    ) -> npt.NDArray[Any]:
        """The events of chunks first..stop-1, on ``threads`` threads when there are many."""
        if self.layout == "event_buffers":
            return self._decode_buffers(first, stop)
        if not self.compressed:
            return self._decode_plain(first, stop, limits)
        total = int(self._keeps[first:stop].sum())
        events = _allocate_events(total)
        places = np.zeros(stop - first + 1, np.int64)
        np.cumsum(self._keeps[first:stop], out=places[1:])
        parts = min(self.threads, stop - first)
        if total < _PARALLEL_MIN_EVENTS or parts < 2:
            end, dropped = self._decode_into(events, first, stop, 0, limits)
            self._dropped += dropped
            return events[:end]
        cuts = np.linspace(first, stop, parts + 1).round().astype(np.int64)
        spans = [(int(a), int(b)) for a, b in itertools.pairwise(cuts) if b > a]
        with ThreadPoolExecutor(len(spans), thread_name_prefix="aerflow-hdf5") as pool:
            futures = [
                pool.submit(self._decode_into, events, a, b, int(places[a - first]), limits)
                for a, b in spans
            ]
            results = [future.result() for future in futures]
        ends = [end for end, _ in results]
        self._dropped += sum(dropped for _, dropped in results)  # counted here, not racing
        write = 0
        size = EVENTS_DTYPE.itemsize
        for (a, _), end in zip(spans, ends, strict=True):
            place = int(places[a - first])
            if place != write:  # events dropped before: close the gap
                _move_down(events.view(np.uint8), write * size, place * size, (end - place) * size)
            write += end - place
        return events[:write]

    def _decode_into(
        self,
        events: npt.NDArray[Any],
        first: int,
        stop: int,
        n: int,
        limits: tuple[int, int] | None,
    ) -> tuple[int, int]:
        """Chunks first..stop-1 into events[n:]; (the new n, events dropped)."""
        width, height = limits or (self._width, self._height)
        if self._copying:
            stored = [
                bytes(self._events.id.read_direct_chunk((unit * self._rows,))[1])
                if self._offsets[unit] >= 0
                else b""
                for unit in range(first, stop)
            ]
            sizes = np.array([len(s) for s in stored], np.int64)
            offsets = np.zeros(len(stored), np.int64)
            np.cumsum(sizes[:-1], out=offsets[1:])
            offsets[self._offsets[first:stop] < 0] = -1
            data = np.frombuffer(b"".join(stored), np.uint8)
        else:
            data, offsets, sizes = self._data, self._offsets[first:stop], self._sizes[first:stop]
        status, done, where, end, dropped = decode_chunks(
            data,
            offsets,
            sizes,
            self._capacities[first:stop],
            self._keeps[first:stop],
            self._raw[first:stop],
            events,
            n,
            width,
            height,
        )
        self._release(first, stop)
        if status:
            raise self._chunk_error(first + done, status, where)
        return int(end), int(dropped)

    def _chunk_error(self, unit: int, status: int, where: int) -> FormatError:
        start = int(self._offsets[unit])
        first = unit * self._rows
        return FormatError(
            f"/CD/events chunk {unit} (events {first}..{first + int(self._keeps[unit]) - 1}): "
            f"{STATUS_MESSAGES[status]} (byte {where} of the chunk's {int(self._sizes[unit])})",
            path=self.path,
            offset=None if start < 0 or self._copying else start + where,
        )

    def _release(self, first: int, stop: int) -> None:
        """Let the pages of decoded chunks go from this process (they stay in the page cache):
        memory stays bounded by the chunks being decoded, whatever the file size."""
        if self._map is None or self._copying or not hasattr(self._map, "madvise"):
            return
        offsets = self._offsets[first:stop]
        if len(offsets) == 0 or int(offsets.min()) < 0:
            return
        start = int(offsets.min())
        start -= start % mmap.PAGESIZE
        end = int((offsets + self._sizes[first:stop]).max())
        with contextlib.suppress(OSError, ValueError):
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def _records_to_events(
        self, records: npt.NDArray[Any], where: str, limits: tuple[int, int] | None = None
    ) -> npt.NDArray[Any]:
        times = records["t"].astype(np.int64)
        if len(times) and int(times.min()) < 0:
            raise FormatError(f"{where}: a negative timestamp", path=self.path)
        events = np.empty(len(records), EVENTS_DTYPE)
        events["t"] = times
        events["x"] = records["x"]
        events["y"] = records["y"]
        events["on"] = records["p"] > 0
        width, height = limits or (self._width, self._height)
        inside = (events["x"] < width) & (events["y"] < height)
        if not inside.all():
            self._dropped += int(len(events) - inside.sum())
            events = events[inside]
        return events

    def _decode_plain(
        self, first: int, stop: int, limits: tuple[int, int] | None
    ) -> npt.NDArray[Any]:
        start = first * self._rows
        end = min(stop * self._rows, self._count)
        try:
            records = self._events[start:end]
        except OSError as error:
            raise FormatError(f"/CD/events[{start}:{end}]: {error}", path=self.path) from None
        return self._records_to_events(records, f"/CD/events[{start}:{end}]", limits)

    def _decode_buffers(self, first: int, stop: int) -> npt.NDArray[Any]:
        parts = []
        for unit in range(first, stop):
            blob = np.asarray(self._buffers[unit], np.uint8).tobytes()
            if not blob:
                continue  # preallocated and never written: OpenEB's writer left it
            try:
                raw = _decompress(self._backend, blob)
            except Exception as error:  # zlib.error, zstandard.ZstdError
                raise FormatError(
                    f"event_buffers[{unit}] does not decompress with {self._backend}: {error}",
                    path=self.path,
                ) from None
            if len(raw) % CD_DTYPE.itemsize:
                raise FormatError(
                    f"event_buffers[{unit}] holds {len(raw)} bytes, not whole 16-byte EventCD "
                    "records",
                    path=self.path,
                )
            records = np.frombuffer(raw, CD_DTYPE)
            parts.append(self._records_to_events(records, f"event_buffers[{unit}]"))
        return np.concatenate(parts) if parts else np.empty(0, EVENTS_DTYPE)


def _decompress(backend: str, blob: bytes) -> bytes:
    if backend == "zlib":
        import zlib

        return zlib.decompress(blob)
    zstandard = importlib.import_module("zstandard")
    return bytes(zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 31))
