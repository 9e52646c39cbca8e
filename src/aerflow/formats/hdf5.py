"""Prophesee HDF5 event files (Metavision 4+): CD events compressed with the ECF codec.

Layout (shared/specs/hdf5-ecf.md): ``/CD/events`` holds 16-byte EventCD records (x, y, p, t)
in chunks of 16,384, each chunk one ECF block (:mod:`._ecf`); ``/CD/indexes`` is a seek table
with one entry per 2 ms; ``/EXT_TRIGGER/events`` holds unfiltered trigger records; the root
attributes hold ``geometry`` ("1280x720") and the camera's metadata as strings.

Reading needs h5py only, no filter plugin: the chunks' places in the file come from HDF5's
chunk index, and the blocks are decoded straight from the memory-mapped file by numba
kernels that release the GIL, so :meth:`Hdf5Reader.read` decodes on two threads. A chunk
holds more events than the dataset needs when it went through the HDF5 filter pipeline
(padding past the end): only ``min(count, length - offset)`` are kept. OpenEB's older layout
(``event_buffers`` of zlib or zstd compressed EventCD records) is read too; other HDF5 files
are refused as not Prophesee event files.

Writing does what OpenEB's writer does: blocks of 16,384 events stored by direct chunk
writes (the last one holding what is left), the index tables, string attributes. ECF keeps
11 bits of x and y and cannot store time going backwards, so the writer refuses such events.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, NotThisFormatError, OutOfRangeWarning
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet, empty_triggers, parse_time
from ._base import (
    DEFAULT_CHUNK_SIZE,
    FileReader,
    Properties,
    chunk_and_threads,
)
from ._base import check_sensor_size as _check_sensor_size
from .hdf5_decode import ChunkDecoding
from .hdf5_writer import (
    CD_DTYPE,
    ECF_FILTER,
    INDEX_PERIOD_US,
    SIGNATURE,
    Hdf5NotInstalledError,
    Hdf5Writer,
    require_h5py,
)

__all__ = ["Hdf5NotInstalledError", "Hdf5Reader", "Hdf5Writer", "require_h5py"]

log = logging.getLogger(__name__)

_NO_LIMIT = 1 << 16  # events hold 16-bit coordinates: nothing is dropped
_TRIGGER_BLOCK = 1 << 16
_GEOMETRY = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
_FORMAT_SIZE = re.compile(r"(width|height)\s*=\s*(\d+)", re.IGNORECASE)


def _text(value: Any) -> str:
    """An attribute as text, whatever string type HDF5 stored it with."""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace").rstrip("\0")
    if isinstance(value, np.ndarray):
        if value.shape == ():
            return _text(value[()])
        return str(value.tolist())
    return str(value)


def _size_from(text: str | None, pattern: str) -> tuple[int, int] | None:
    if not text:
        return None
    if pattern == "geometry":
        found = _GEOMETRY.match(text)
        size = (int(found.group(1)), int(found.group(2))) if found else None
    else:
        fields = {key.lower(): int(value) for key, value in _FORMAT_SIZE.findall(text)}
        size = (fields["width"], fields["height"]) if len(fields) == 2 else None
    if size is None or not (0 < size[0] <= _NO_LIMIT and 0 < size[1] <= _NO_LIMIT):
        return None
    return size


def _has_signature(path: str) -> bool:
    with open(path, "rb") as file:
        head = file.read(1 << 16)
    return any(head.startswith(SIGNATURE, at) for at in (0, 512, 1024, 2048, 4096, 8192))


class Hdf5Reader(ChunkDecoding, FileReader):
    """Reads Prophesee HDF5 event files (ECF-compressed ``/CD/events``, or OpenEB's older
    ``event_buffers`` layout).

    ``chunk_size``: stored bytes gathered into each packet that iteration yields (whole HDF5
    chunks, at least one). ``threads``: threads decoding in :meth:`read` (default 2, or 1 on
    a single core). ``width``/``height`` override the sensor size of the ``geometry``
    attribute; events outside the sensor are dropped and counted.
    """

    format_name = "hdf5"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        super().__init__(path)
        self.chunk_size, self.threads = chunk_and_threads(chunk_size, threads)
        size = _check_sensor_size(width, height)
        h5py = require_h5py()
        self._h5: Any = None
        self._map: mmap.mmap | None = None
        self._data: npt.NDArray[np.uint8] = np.empty(0, np.uint8)
        self._dropped = 0
        self._next = 0
        self._t_min: int | None = None
        self._trigger_next = 0
        self._trigger_cache: tuple[int, npt.NDArray[Any]] | None = None
        try:
            self._open(h5py, size)
        except BaseException:
            self.close()
            raise

    # -- opening ----------------------------------------------------------------------------------

    def _open(self, h5py: ModuleType, size: tuple[int, int] | None) -> None:
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as error:
            if not _has_signature(self.path):
                raise NotThisFormatError(
                    "not an HDF5 file (no HDF5 signature)", path=self.path, offset=0
                ) from None
            raise FormatError(f"HDF5 cannot open the file: {error}", path=self.path) from None
        root = self._h5
        self.metadata = {key: _text(root.attrs[key]) for key in root.attrs}
        cd = root.get("CD")
        if isinstance(cd, h5py.Group) and isinstance(cd.get("events"), h5py.Dataset):
            self.layout = "ecf"
            self._open_cd(h5py, cd["events"])
            self._open_triggers(h5py)
        elif "CD" not in root and isinstance(root.get("event_buffers"), h5py.Dataset):
            self.layout = "event_buffers"
            self._open_buffers(root["event_buffers"])
            self._triggers: Any = None
        else:
            names = ", ".join(sorted(root.keys())[:8]) or "nothing"
            raise NotThisFormatError(
                "not a Prophesee event file: an HDF5 file without a /CD/events dataset or "
                f"OpenEB's event_buffers (its root holds {names})",
                path=self.path,
            )
        geometry = (
            size
            or _size_from(self.metadata.get("geometry"), "geometry")
            or _size_from(self.metadata.get("format"), "format")
        )
        self._width, self._height = geometry or (_NO_LIMIT, _NO_LIMIT)
        if geometry is None and self._count:
            geometry = self._extent()
        self.properties = Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=0,
            event_count=self._count,
            time_range=self._time_range(),
        )

    def _open_cd(self, h5py: ModuleType, dataset: Any) -> None:
        self._events = dataset
        fields = dataset.dtype.fields or {}
        expected: dict[str, Any] = dict(CD_DTYPE.fields or {})
        if dataset.ndim != 1 or any(
            name not in fields
            or fields[name][1] != expected[name][1]
            or fields[name][0].itemsize != expected[name][0].itemsize
            for name in expected
        ):
            raise FormatError(
                f"/CD/events holds {dataset.dtype} records, not Metavision's EventCD "
                "(x u16 @0, y u16 @2, p i16 @4, t i64 @8)",
                path=self.path,
            )
        self._count = int(dataset.shape[0])
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        self.compressed = ECF_FILTER in filters
        if not self.compressed:
            self._open_plain(dataset)
            return
        if filters != [ECF_FILTER] or plist.get_layout() != h5py.h5d.CHUNKED:
            raise FormatError(
                f"/CD/events goes through the filters {filters}: ECF (36559) must be the only one",
                path=self.path,
            )
        rows = int(dataset.chunks[0])
        self._rows = rows
        units = -(-self._count // rows)
        offsets = np.full(units, -1, np.int64)
        sizes = np.zeros(units, np.int64)
        masks = np.zeros(units, np.int64)
        for info in self._chunk_infos(dataset):
            first = int(info.chunk_offset[0])
            if first % rows or first >= self._count:
                continue  # past the end (a shrunk dataset): not part of the data
            offsets[first // rows] = int(info.byte_offset)
            sizes[first // rows] = int(info.size)
            masks[first // rows] = int(info.filter_mask)
        starts = np.arange(units, dtype=np.int64) * rows
        self._keeps = np.minimum(rows, self._count - starts)
        self._capacities = np.full(units, rows, np.int64)
        self._raw = (masks & 1) != 0
        self._sizes = sizes
        self._offsets = self._locate(dataset, offsets)
        self._first_times = self._block_first_times()
        self._index = self._read_index()

    def _chunk_infos(self, dataset: Any) -> list[Any]:
        infos: list[Any] = []
        try:
            dataset.id.chunk_iter(infos.append)
        except (AttributeError, NotImplementedError, RuntimeError, TypeError):
            infos = [dataset.id.get_chunk_info(i) for i in range(dataset.id.get_num_chunks())]
        return infos

    def _locate(self, dataset: Any, offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Map the file and check a stored chunk's bytes there against HDF5's copy: the
        mapping is then read directly (else every chunk is copied out by HDF5)."""
        present = np.flatnonzero(offsets >= 0)
        self._copying = True
        if len(present) == 0 or os.path.getsize(self.path) == 0:
            return offsets
        with open(self.path, "rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self._data = np.frombuffer(self._map, np.uint8)
        first = int(present[0])
        _, stored = dataset.id.read_direct_chunk((first * self._rows,))
        stored = bytes(stored)
        for shift in (0, int(self._h5.userblock_size)):
            start = int(offsets[first]) + shift
            if bytes(self._map[start : start + len(stored)]) == stored:
                self._copying = False
                return np.where(offsets >= 0, offsets + shift, offsets)
        log.warning("%s: chunks are not where HDF5 says; reading them through HDF5", self.path)
        return offsets

    def _block_first_times(self) -> npt.NDArray[np.int64] | None:
        """Each chunk's first timestamp, from the bytes before its runs (the u64 after an ECF
        header, the t of a raw first record); None when unknown for any chunk."""
        if self._copying or len(self._offsets) == 0:
            return None
        if np.any(self._offsets < 0) or np.any(self._sizes < 16):
            return None
        at = self._offsets + np.where(self._raw, 8, 4)
        if int(at.max()) + 8 > len(self._data):
            return None
        gathered = self._data[at[:, None] + np.arange(8)]
        return np.ascontiguousarray(gathered).view("<i8").ravel().astype(np.int64)

    def _read_index(self) -> tuple[npt.NDArray[Any], int] | None:
        table = self._h5.get("CD/indexes")
        if table is None or "offset" not in table.attrs or table.shape[0] < 2:
            return None
        try:
            offset = int(_text(table.attrs["offset"]))
            entries = np.asarray(table[:], dtype=[("id", "<u8"), ("ts", "<i8")])
        except (ValueError, TypeError, OSError):
            log.warning("%s: /CD/indexes cannot be read; seeking without it", self.path)
            return None
        if np.any(np.diff(entries["id"][1:].astype(np.int64)) < 0):
            return None
        return entries, offset

    def _open_plain(self, dataset: Any) -> None:
        """/CD/events without ECF: read through HDF5 (which applies any standard filter)."""
        self._rows = int(dataset.chunks[0]) if dataset.chunks else 1 << 16
        units = -(-self._count // self._rows)
        starts = np.arange(units, dtype=np.int64) * self._rows
        self._keeps = np.minimum(self._rows, self._count - starts)
        self._sizes = self._keeps * CD_DTYPE.itemsize
        self._first_times = None
        self._index = None
        self._copying = True

    def _open_buffers(self, dataset: Any) -> None:
        backend = _text(dataset.attrs.get("compression_backend", "zlib")).lower()
        if backend not in ("zlib", "zstandard", "zstd"):
            raise FormatError(
                f"event_buffers compressed with {backend!r} (zlib or zstandard expected)",
                path=self.path,
            )
        self.compressed = True
        self._backend = backend
        self._buffers = dataset
        for key in ("width", "height"):
            if key in dataset.attrs:
                self.metadata[key] = _text(dataset.attrs[key])
        if "width" in self.metadata and "height" in self.metadata:
            self.metadata.setdefault(
                "geometry", f"{self.metadata['width']}x{self.metadata['height']}"
            )
        self._rows = 0
        units = int(dataset.shape[0])
        self._keeps = np.full(units, -1, np.int64)
        self._sizes = np.full(units, self.chunk_size, np.int64)  # one buffer per packet
        self._count = None  # type: ignore[assignment]
        times = self._h5.get("event_buffers_start_times")
        self._first_times = None
        if times is not None and times.shape[0] >= units:
            first = np.asarray(times[:units], np.int64)
            self._first_times = first
        self._index = None
        self._copying = True

    def _open_triggers(self, h5py: ModuleType) -> None:
        dataset = self._h5.get("EXT_TRIGGER/events")
        self._triggers = None
        if dataset is None:
            return
        fields = dataset.dtype.fields or {}
        if not isinstance(dataset, h5py.Dataset) or not {"p", "t", "id"} <= set(fields):
            raise FormatError(
                f"/EXT_TRIGGER/events holds {dataset.dtype} records, not (p, t, id)",
                path=self.path,
            )
        self._triggers = dataset

    def _extent(self) -> tuple[int, int] | None:
        """The sensor size the events need, when no attribute gives it (one pass)."""
        width = height = 0
        for packet in self._packets(0, None, stop=len(self._keeps)):
            if len(packet.events):
                width = max(width, int(packet.events["x"].max()) + 1)
                height = max(height, int(packet.events["y"].max()) + 1)
        self._dropped = 0
        return (width, height) if width else None

    def _time_range(self) -> tuple[int, int] | None:
        if not self._count or self._first_times is None or self.layout != "ecf":
            return None
        last = len(self._keeps) - 1
        try:
            events = self._decode(last, last + 1, limits=(_NO_LIMIT, _NO_LIMIT))
        except FormatError:
            return None
        self._dropped = 0
        if len(events) == 0:
            return None
        return int(self._first_times[0]), int(events["t"][-1])

    # -- positioning ------------------------------------------------------------------------------

    @property
    def dropped_out_of_range(self) -> int:
        return self._dropped

    def _restart(self) -> None:
        self._next = 0
        self._t_min = None
        self._trigger_next = 0
        self._dropped = 0

    def _unit_at(self, start: int) -> int:
        """The first chunk that can hold an event at or after ``start``."""
        first = self._first_times
        units = len(self._keeps)
        if units == 0:
            return 0
        by_times: int | None = None
        if first is not None and bool(np.all(np.diff(first) >= 0)):
            by_times = max(int(np.searchsorted(first, start, side="left")) - 1, 0)
        by_index: int | None = None
        if self._index is not None and self._count:
            entries, offset = self._index
            relative = start + offset
            if relative <= 0:
                by_index = 0
            else:
                row = min(relative // INDEX_PERIOD_US + 1, len(entries) - 1)
                event = int(entries["id"][row])
                by_index = min(event, self._count) // self._rows if event <= self._count else None
        if by_times is None:
            # Unordered or unknown chunk times: only the table may skip (else decode all).
            return min(by_index, units) if by_index is not None and first is None else 0
        if by_index is not None and by_index <= by_times + 1:
            return min(by_index, units)
        return by_times

    def _units_before(self, end: int) -> int:
        """The chunks to decode from :meth:`_unit_at` for events before ``end``."""
        first = self._first_times
        units = len(self._keeps)
        if first is None or not bool(np.all(np.diff(first) >= 0)):
            return units
        return int(np.searchsorted(first, end, side="left"))

    def seek_time(self, t: int | str) -> None:
        """Start the next iteration or :meth:`read` at time ``t`` (µs, or a string such as
        ``"2.5s"``): it holds only what happens at or after ``t``. Chunks wholly before ``t``
        are skipped (found with ``/CD/indexes`` and the chunks' first times) undecoded."""
        start = parse_time(t)
        with self._using(restart=False):
            self._next = self._unit_at(start)
            self._t_min = start
            self._trigger_next = self._trigger_row(start)
            self._trigger_cache = None
            self._at_start = True  # the next iteration starts here, not at the first event

    def read_range(self, t_start: int | str, t_end: int | str) -> Packet:
        """Everything with ``t_start <= t < t_end``, decoding only the chunks that can hold
        such events. The iteration position is unchanged."""
        start, end = parse_time(t_start), parse_time(t_end)
        with self._using(restart=False):
            first = self._unit_at(start)
            stop = max(self._units_before(end), first)
            if self.layout == "ecf":
                events = self._decode(first, stop)
            else:
                parts = [p.events for p in self._packets(first, None, stop=stop)]
                events = np.concatenate(parts) if parts else np.empty(0, EVENTS_DTYPE)
            times = events["t"]
            events = events[(times >= start) & (times < end)]
            triggers = self._all_triggers()
            triggers = triggers[(triggers["t"] >= start) & (triggers["t"] < end)]
        self._warn_dropped()
        return Packet(events, triggers)

    # -- iteration and reading --------------------------------------------------------------------

    def _iterate(self) -> Iterator[Packet]:
        yield from self._packets(self._next, self._t_min)
        self._warn_dropped()

    def _packets(self, first: int, bound: int | None, stop: int | None = None) -> Iterator[Packet]:
        units = len(self._keeps) if stop is None else stop
        unit = first
        while unit < units:
            end = unit + 1
            gathered = int(self._sizes[unit])
            while end < units and gathered < self.chunk_size:
                gathered += int(self._sizes[end])
                end += 1
            events = self._decode(unit, end)
            if bound is not None:
                events = events[events["t"] >= np.uint64(bound)]
            if stop is None:
                self._next = end
            unit = end
            last = end >= units
            if self._triggers is not None and stop is None:
                limit = None if last else (int(events["t"][-1]) + 1 if len(events) else 0)
                triggers = self._triggers_before(limit, bound)
            else:
                triggers = empty_triggers()
            if len(events) or len(triggers):
                yield Packet(events, triggers)
        if stop is None and self._triggers is not None:
            rest = self._triggers_before(None, bound)
            if len(rest):
                yield Packet(np.empty(0, EVENTS_DTYPE), rest)

    def _read(self) -> Packet:
        if self.layout != "ecf":
            return super()._read()
        events = self._decode(self._next, len(self._keeps))
        if self._t_min is not None:
            events = events[events["t"] >= np.uint64(self._t_min)]
        triggers = self._triggers_before(None, self._t_min)
        self._next = len(self._keeps)
        self._warn_dropped()
        return Packet(events, triggers)

    # -- triggers ---------------------------------------------------------------------------------

    def _trigger_block(self, row: int) -> npt.NDArray[Any]:
        """Triggers from ``row`` on (a block of them, cached)."""
        if self._trigger_cache is not None:
            start, block = self._trigger_cache
            if start <= row < start + len(block):
                return block[row - start :]
        records = self._triggers[row : row + _TRIGGER_BLOCK]
        times = records["t"].astype(np.int64)
        ids = records["id"].astype(np.int64)
        where = f"/EXT_TRIGGER/events[{row}:{row + len(records)}]"
        if len(times) and int(times.min()) < 0:
            raise FormatError(f"{where}: a negative timestamp", path=self.path)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) > 255):
            raise FormatError(f"{where}: a trigger id outside 0..255", path=self.path)
        block = np.empty(len(records), TRIGGERS_DTYPE)
        block["t"], block["id"], block["rising"] = times, ids, records["p"] > 0
        self._trigger_cache = (row, block)
        return block

    def _triggers_before(self, limit: int | None, bound: int | None) -> npt.NDArray[Any]:
        """The triggers not yet handed out with t below ``limit`` (all when None)."""
        if self._triggers is None:
            return empty_triggers()
        total = int(self._triggers.shape[0])
        parts = []
        while self._trigger_next < total:
            block = self._trigger_block(self._trigger_next)
            cut = len(block)
            if limit is not None:
                cut = int(np.searchsorted(block["t"], np.uint64(limit), side="left"))
            parts.append(block[:cut])
            self._trigger_next += cut
            if cut < len(block):
                break
        triggers = np.concatenate(parts) if parts else empty_triggers()
        if bound is not None:
            triggers = triggers[triggers["t"] >= np.uint64(bound)]
        return triggers

    def _all_triggers(self) -> npt.NDArray[Any]:
        if self._triggers is None:
            return empty_triggers()
        blocks = []
        for row in range(0, int(self._triggers.shape[0]), _TRIGGER_BLOCK):
            blocks.append(self._trigger_block(row)[:_TRIGGER_BLOCK].copy())
        return np.concatenate(blocks) if blocks else empty_triggers()

    def _trigger_row(self, start: int) -> int:
        if self._triggers is None or self._triggers.shape[0] == 0:
            return 0
        times = self._triggers.fields("t")[:].astype(np.int64)
        return int(np.searchsorted(times, start, side="left"))

    # -- the end ----------------------------------------------------------------------------------

    def _warn_dropped(self) -> None:
        if self._dropped:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.path}: dropped {self._dropped} events outside the "
                    f"{self._width}x{self._height} sensor"
                ),
                stacklevel=4,
            )

    def _close(self) -> None:
        self._data = np.empty(0, np.uint8)
        if self._map is not None:
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        if self._h5 is not None:
            with contextlib.suppress(Exception):
                self._h5.close()
            self._h5 = None
