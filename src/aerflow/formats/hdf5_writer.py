"""Writing Prophesee HDF5 event files as OpenEB's HDF5EventFileWriter writes them.

CD events go out in ECF blocks of 16,384 (:func:`._ecf.encode_block`) stored with direct
chunk writes, so no filter plugin is needed, and the last block holds only what is left.
``/CD/indexes`` and ``/EXT_TRIGGER/indexes`` get OpenEB's 2 ms seek tables; the root gets
``version``, ``geometry`` and the given metadata as variable-length ASCII strings. h5py is
imported when a file is opened, never by ``import aerflow``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from .._optional import require
from ..errors import MissingDependencyError
from ..events import EVENTS_DTYPE
from ._ecf import block_bound, encode_block, encode_blocks, period_starts
from ._file_writer import FileWriter

__all__ = [
    "CD_DTYPE",
    "CHUNK_EVENTS",
    "ECF_FILTER",
    "INDEX_DTYPE",
    "INDEX_PERIOD_US",
    "SIGNATURE",
    "TRIGGER_DTYPE",
    "Hdf5NotInstalledError",
    "Hdf5Writer",
    "require_h5py",
]

log = logging.getLogger(__name__)

SIGNATURE = b"\x89HDF\r\n\x1a\n"
ECF_FILTER = 0x8ECF
CHUNK_EVENTS = 16384
INDEX_PERIOD_US = 2000
CD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "p", "t"],
        "formats": ["<u2", "<u2", "<i2", "<i8"],
        "offsets": [0, 2, 4, 8],
        "itemsize": 16,
    }
)
TRIGGER_DTYPE = np.dtype(
    {
        "names": ["p", "t", "id"],
        "formats": ["<i2", "<i8", "<i2"],
        "offsets": [0, 8, 16],
        "itemsize": 24,
    }
)
INDEX_DTYPE = np.dtype(
    {"names": ["id", "ts"], "formats": ["<u8", "<i8"], "offsets": [0, 8], "itemsize": 16}
)
_COORDINATE_LIMIT = 2048  # ECF keeps 11 bits of x and y
_MAX_TIME = (1 << 63) - 1  # stored as int64
_GROUP_EVENTS = 64 * CHUNK_EVENTS  # encoded together, then stored: 25 MiB of blocks at most
_MAX_INDEX_ENTRIES = 1 << 22  # 64 MiB of seek table; longer silences get none


Hdf5NotInstalledError = MissingDependencyError
"""What a missing h5py raises (the name this module has always exported)."""


def require_h5py() -> ModuleType:
    """The ``h5py`` module, imported now; an actionable error when it is missing."""
    return require("h5py", extra="hdf5", purpose="Prophesee HDF5 files")


class _IndexTable:
    """OpenEB's seek table over one stream of times, appended as events arrive.

    Entry 0 is (0, -1); entry k describes period k-1 = [(k-1)·P, k·P) of time relative to the
    first event: the id and relative time of the period's first event, or a repeat of the
    latest entry when the period is empty. A period's entry is written once a later period
    has begun; closing adds the last period's.
    """

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset
        self._first: int | None = None
        self._period = -1
        self._pending = np.zeros(1, INDEX_DTYPE)  # the current period's first event
        self._written = 0
        self.abandoned = False

    def add(self, times: npt.NDArray[np.uint64], first_id: int) -> None:
        if len(times) == 0 or self.abandoned:
            return
        if self._first is None:
            self._first = int(times[0])
            self._dataset.attrs.create("offset", str(-self._first), dtype=_ascii())
            self._append(np.array([(0, -1)], INDEX_DTYPE))
        last = (int(times[-1]) - self._first) // INDEX_PERIOD_US
        if last >= _MAX_INDEX_ENTRIES:
            self._abandon()
            return
        room = min(len(times), last - self._period)
        if room <= 0:
            return
        starts = np.empty(room, np.int64)
        new = np.empty(room, np.int64)
        found = period_starts(times, self._first, INDEX_PERIOD_US, self._period, starts, new)
        starts, new = starts[:found], new[:found]
        relative = times[starts].astype(np.int64) - self._first
        # Entries for the pending period and the empty ones after it, then for each new
        # period but the last, with the empty ones between.
        bounds = np.concatenate(([self._period], new))
        firsts = np.zeros(len(new), INDEX_DTYPE)
        firsts["id"] = first_id + starts
        firsts["ts"] = relative
        described = (
            np.concatenate((self._pending, firsts[:-1])) if self._period >= 0 else firsts[:-1]
        )
        repeats = np.diff(bounds) if self._period >= 0 else np.diff(bounds)[1:]
        if len(described):
            self._append(np.repeat(described, repeats))
        self._pending = firsts[-1:].copy()
        self._period = int(new[-1])

    def close(self) -> None:
        if self._first is not None and not self.abandoned:
            self._append(self._pending)

    def _append(self, entries: npt.NDArray[Any]) -> None:
        end = self._written + len(entries)
        self._dataset.resize((end,))
        self._dataset[self._written : end] = entries
        self._written = end

    def _abandon(self) -> None:
        log.warning(
            "%s: the recording spans more than %d index periods of %d µs: no seek table written",
            self._dataset.file.filename,
            _MAX_INDEX_ENTRIES,
            INDEX_PERIOD_US,
        )
        self.abandoned = True
        self._dataset.resize((0,))
        with contextlib.suppress(KeyError):
            del self._dataset.attrs["offset"]


def _ascii() -> Any:
    return require_h5py().string_dtype("ascii")


class Hdf5Writer(FileWriter):
    """Writes Prophesee HDF5 event files (ECF-compressed CD events, triggers, seek tables).

    ``width``/``height``: the sensor, stored as the ``geometry`` attribute (default: just
    large enough for the events); both at most 2048, ECF's coordinate limit. ``metadata``:
    more root attributes (e.g. a RAW file's camera header). Events must come in time order,
    as ECF stores no backward step; triggers too.
    """

    format_name = "hdf5"
    needs_seek = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        size = check_sensor_size(width, height)
        if size is not None and (size[0] > _COORDINATE_LIMIT or size[1] > _COORDINATE_LIMIT):
            raise ValueError(
                f"ECF stores 11-bit coordinates: the sensor must fit "
                f"{_COORDINATE_LIMIT}x{_COORDINATE_LIMIT}, not {size[0]}x{size[1]}"
            )
        h5py = require_h5py()
        super().__init__(path)
        self.size = size
        self._metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._output.file.close()  # h5py writes by name
        working = self._output.working_path
        assert working is not None
        try:
            self._h5 = h5py.File(working, "w")
            self._create(h5py)
        except BaseException:
            self._discard()
            raise
        self._pending = np.empty(CHUNK_EVENTS, EVENTS_DTYPE)
        self._n_pending = 0
        self._written = 0
        self._triggers_written = 0
        self._last_t = 0
        self._last_trigger_t = 0
        self._extent = [0, 0]
        self._block = np.empty(block_bound(CHUNK_EVENTS), np.uint8)
        self._group: npt.NDArray[np.uint8] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._threads = min(2, os.cpu_count() or 1)

    def _create(self, h5py: ModuleType) -> None:
        root = self._h5
        root.attrs.create("version", "1.0", dtype=_ascii())
        common = {"shape": (0,), "maxshape": (None,), "chunks": (CHUNK_EVENTS,)}
        self._cd = root.create_dataset(
            "CD/events",
            dtype=CD_DTYPE,
            compression=ECF_FILTER,
            allow_unknown_filter=True,
            **common,
        )
        self._cd_index = _IndexTable(root.create_dataset("CD/indexes", dtype=INDEX_DTYPE, **common))
        self._trigger_events = root.create_dataset(
            "EXT_TRIGGER/events", dtype=TRIGGER_DTYPE, **common
        )
        self._trigger_index = _IndexTable(
            root.create_dataset("EXT_TRIGGER/indexes", dtype=INDEX_DTYPE, **common)
        )

    # -- events -----------------------------------------------------------------------------------

    def _check(self, times: npt.NDArray[np.uint64], last: int, what: str) -> None:
        if len(times) == 0:
            return
        if int(times.max()) > _MAX_TIME:
            raise ValueError(f"{what} past 2**63 - 1 µs cannot be stored (HDF5 holds int64)")
        if int(times[0]) < last or (len(times) > 1 and bool(np.any(times[1:] < times[:-1]))):
            where = 0 if int(times[0]) < last else int(np.argmax(times[1:] < times[:-1])) + 1
            raise ValueError(
                f"{what} go back in time (at {what} {where} of this write: "
                f"{int(times[where])} µs after {last if where == 0 else int(times[where - 1])} "
                "µs); ECF would store the later time instead: sort them first"
            )

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events):
            width, height = self.size or (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
            x_max, y_max = int(events["x"].max()), int(events["y"].max())
            if x_max >= width or y_max >= height:
                raise ValueError(
                    f"events lie outside the {width}x{height} sensor (max x {x_max}, max y "
                    f"{y_max})" + ("; ECF stores 11-bit coordinates" if self.size is None else "")
                )
            self._check(events["t"], self._last_t, "events")
        self._check(triggers["t"], self._last_trigger_t, "triggers")
        if len(events):
            self._extent = [max(self._extent[0], x_max + 1), max(self._extent[1], y_max + 1)]
            self._last_t = int(events["t"][-1])
            self._cd_index.add(events["t"], self._written + self._n_pending)
            self._add_events(events)
        if len(triggers):
            self._last_trigger_t = int(triggers["t"][-1])
            self._add_triggers(triggers)

    def _add_events(self, events: npt.NDArray[Any]) -> None:
        used = 0
        if self._n_pending:
            used = min(CHUNK_EVENTS - self._n_pending, len(events))
            self._pending[self._n_pending : self._n_pending + used] = events[:used]
            self._n_pending += used
            if self._n_pending < CHUNK_EVENTS:
                return
            self._store_block(self._pending, 0, CHUNK_EVENTS)
            self._n_pending = 0
        events = np.ascontiguousarray(events[used:])
        whole = len(events) - len(events) % CHUNK_EVENTS
        for start in range(0, whole, _GROUP_EVENTS):
            self._store_blocks(events, start, min(_GROUP_EVENTS, whole - start) // CHUNK_EVENTS)
        rest = len(events) - whole
        self._pending[:rest] = events[whole:]
        self._n_pending = rest

    def _store_block(self, events: npt.NDArray[Any], start: int, count: int) -> None:
        length = encode_block(events, start, count, self._block)
        offset = self._written
        self._cd.resize((offset + count,))
        self._cd.id.write_direct_chunk((offset,), self._block[:length].tobytes(), 0)
        self._written += count

    def _store_blocks(self, events: npt.NDArray[Any], start: int, blocks: int) -> None:
        """Whole blocks from events[start:], encoded on up to two threads (the kernel
        releases the GIL), stored in order."""
        bound = block_bound(CHUNK_EVENTS)
        shares = (
            [blocks] if blocks < 2 or self._threads < 2 else [blocks // 2, blocks - blocks // 2]
        )
        if self._group is None or len(self._group) < blocks * bound:
            self._group = np.empty(blocks * bound, np.uint8)
        ends = np.zeros(blocks, np.int64)
        jobs = []
        first = 0
        for share in shares:
            region = self._group[first * bound : (first + share) * bound]
            jobs.append((start + first * CHUNK_EVENTS, share, region, ends[first : first + share]))
            first += share
        if len(jobs) == 1:
            encode_blocks(events, jobs[0][0], jobs[0][1], CHUNK_EVENTS, jobs[0][2], jobs[0][3])
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="aerflow-hdf5")
            futures = [
                self._pool.submit(encode_blocks, events, a, n, CHUNK_EVENTS, region, until)
                for a, n, region, until in jobs
            ]
            for future in futures:
                future.result()
        offset = self._written
        self._cd.resize((offset + blocks * CHUNK_EVENTS,))
        first = 0
        for _, share, region, until in jobs:
            begin = 0
            for b in range(share):
                block = region[begin : int(until[b])]
                chunk = offset + (first + b) * CHUNK_EVENTS
                self._cd.id.write_direct_chunk((chunk,), block.tobytes(), 0)
                begin = int(until[b])
            first += share
        self._written += blocks * CHUNK_EVENTS

    def _add_triggers(self, triggers: npt.NDArray[Any]) -> None:
        records = np.zeros(len(triggers), TRIGGER_DTYPE)
        records["p"] = triggers["rising"]
        records["t"] = triggers["t"]
        records["id"] = triggers["id"]
        start = self._triggers_written
        self._trigger_index.add(triggers["t"], start)
        self._trigger_events.resize((start + len(records),))
        self._trigger_events[start:] = records
        self._triggers_written += len(records)

    # -- the end ----------------------------------------------------------------------------------

    def _finalize(self) -> None:
        if self._n_pending:
            self._store_block(self._pending, 0, self._n_pending)
            self._n_pending = 0
        self._cd_index.close()
        self._trigger_index.close()
        width, height = self.size or (self._extent[0], self._extent[1])
        root = self._h5
        if width and height:
            root.attrs.create("geometry", f"{width}x{height}", dtype=_ascii())
        for key, value in self._metadata.items():
            if key in ("version", "geometry"):
                continue
            try:
                root.attrs.create(key, value.encode("ascii"), dtype=_ascii())
            except UnicodeEncodeError:
                root.attrs.create(key, value, dtype=require_h5py().string_dtype("utf-8"))
        self._h5.close()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_pool()

    def _stop_pool(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown()
            self._pool = None

    def _discard(self) -> None:
        self._stop_pool()
        h5 = getattr(self, "_h5", None)
        if h5 is not None:
            with contextlib.suppress(Exception):
                h5.close()
        super()._discard()
