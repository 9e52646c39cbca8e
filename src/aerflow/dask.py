"""Event recordings as a Dask DataFrame: :func:`read_events`.

One row per event with the columns ``t`` (uint64, µs), ``x``, ``y`` (uint16), ``on`` (bool)
and ``file`` (categorical: the path of the recording the event came from), split into
partitions of about ``chunk_events`` events, each a piece of one file. Ordinary Dask
analytics then run over a whole dataset, on all local cores or on a ``dask.distributed``
cluster::

    import aerflow.dask

    events = aerflow.dask.read_events("recordings/**/*.raw")
    counts = events.groupby(["x", "y"]).size().compute()  # events per pixel

Dask is optional (``pip install 'aerflow[batch]'``) and imported when :func:`read_events` is
called.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._optional import require
from .api import open as open_recording
from .errors import AerflowError, FormatError
from .events import EVENTS_DTYPE
from .formats import ChunkedReader, FileReader, ReaderCheckpoint

__all__ = ["COLUMNS", "DEFAULT_CHUNK_EVENTS", "KNOWN_CATEGORIES_MAX_FILES", "read_events"]

log = logging.getLogger(__name__)

COLUMNS = ("t", "x", "y", "on", "file")
"""The columns :func:`read_events` can give, in their default order."""

DEFAULT_CHUNK_EVENTS = 1 << 22
"""Events per partition by default (about 90 MB of DataFrame with every column)."""

KNOWN_CATEGORIES_MAX_FILES = 1000
"""Up to this many files, the ``file`` column's categories (every path) are known to Dask;
beyond, each partition holds only its own path as category and Dask's are unknown, so that
the task graph does not grow with files × partitions."""

PathOrPattern = str | os.PathLike[str]


def _require_dask_dataframe() -> ModuleType:
    return require("dask.dataframe", extra="batch", purpose="aerflow.dask", package="dask")


def expand_paths(paths_or_pattern: PathOrPattern | Iterable[PathOrPattern]) -> list[str]:
    """The files named: each argument is a path, or a glob pattern (``**`` crosses folders)
    whose matches are taken in sorted order. A pattern that matches nothing, or a path that
    does not exist, raises FileNotFoundError."""
    items: list[PathOrPattern]
    if isinstance(paths_or_pattern, (str, os.PathLike)):
        items = [paths_or_pattern]
    else:
        items = list(paths_or_pattern)
    found: list[str] = []
    for item in items:
        name = os.fspath(item)
        if os.path.exists(name):
            found.append(name)
            continue
        if glob.has_magic(name):
            matches = sorted(p for p in glob.glob(name, recursive=True) if os.path.isfile(p))
            if matches:
                found.extend(matches)
                continue
            raise FileNotFoundError(f"no file matches {name!r}")
        raise FileNotFoundError(f"{name}: no such file")
    if not found:
        raise FileNotFoundError("no files given")
    return found


# -- the index: where each file's partitions start ---------------------------------------------
@dataclass(frozen=True)
class _Checkpoint:
    """Where a word-format decoder can start again: the ``event`` number of the first event
    decoded from the reader's ``checkpoint``."""

    event: int
    checkpoint: ReaderCheckpoint


@dataclass(frozen=True)
class _Chunk:
    first: int  # events [first, stop) of the file
    stop: int | None  # None: to the end, however many (a file not indexed)
    t_first: int  # times of its first and last event
    t_last: int
    checkpoint: _Checkpoint | None  # None: decode from the start of the file
    last: bool = False  # the file's last chunk


@dataclass(frozen=True)
class _FileIndex:
    path: str
    size: int
    mtime_ns: int
    events: int
    time_sorted: bool
    chunks: tuple[_Chunk, ...]


def _resumable(reader: FileReader) -> bool:
    """Whether a reader can start at a checkpoint (the word formats that keep the shared
    decoding loop)."""
    return isinstance(reader, ChunkedReader) and reader.resumable


def _failure(path: str, error: Exception) -> AerflowError:
    """``error`` as one of aerflow's errors that names ``path``."""
    if isinstance(error, AerflowError) and path in str(error):
        return error
    return FormatError(f"cannot read events: {type(error).__name__}: {error}", path=path)


@contextlib.contextmanager
def _naming_file(path: str) -> Any:
    try:
        yield
    except (AerflowError, OSError, ValueError, TypeError, KeyError, IndexError, EOFError) as error:
        failure = _failure(path, error)
        if failure is error:
            raise
        raise failure from error


def _index_file(path: str, chunk_events: int, format: str | None, options: dict[str, Any]) -> Any:
    """Decode ``path`` once and cut it into chunks of about ``chunk_events`` events.

    A cut never falls between two events of the same time in a time-ordered file (it moves
    to the next change of time), so each chunk's time span is disjoint from its neighbours'.
    """
    with _naming_file(path):
        stat = os.stat(path)
        with open_recording(path, "r", format=format, **options) as reader:
            resumable = _resumable(reader)
            chunks: list[_Chunk] = []
            count = 0
            time_sorted = True
            prev_t = -1  # time of the last event so far
            next_cut = chunk_events
            first, t_first, checkpoint = 0, -1, None
            packet_start: _Checkpoint | None = None  # where the current packet began
            for packet in reader:
                t = packet.events["t"]
                n = len(t)
                if n:
                    if t_first < 0:
                        t_first = int(t[0])
                    if time_sorted and (
                        (count and int(t[0]) < prev_t) or bool(np.any(t[1:] < t[:-1]))
                    ):
                        time_sorted = False
                    while next_cut < count + n:
                        i = next_cut - count
                        if time_sorted:
                            before = prev_t if i == 0 else int(t[i - 1])
                            changes = np.flatnonzero(t[i:] != before)
                            if not changes.size:  # the same time to the end of the packet
                                next_cut = count + n
                                break
                            i += int(changes[0])
                        last_before = prev_t if i == 0 else int(t[i - 1])
                        chunks.append(_Chunk(first, count + i, t_first, last_before, checkpoint))
                        first, t_first, checkpoint = count + i, int(t[i]), packet_start
                        next_cut = first + chunk_events
                    prev_t = int(t[-1])
                    count += n
                if resumable:
                    assert isinstance(reader, ChunkedReader)
                    packet_start = _Checkpoint(count, reader.checkpoint())
            if count > first:
                chunks.append(_Chunk(first, count, t_first, prev_t, checkpoint, last=True))
    return _FileIndex(path, stat.st_size, stat.st_mtime_ns, count, time_sorted, tuple(chunks))


def _unindexed(path: str) -> _FileIndex:
    """A file as one partition of events not counted yet."""
    with _naming_file(path):
        stat = os.stat(path)
    chunk = _Chunk(0, None, 0, 0, None, last=True)
    return _FileIndex(path, stat.st_size, stat.st_mtime_ns, 0, False, (chunk,))


# -- reading one partition -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Part:
    """What a worker needs to read one partition (plain values: no open file)."""

    path: str
    size: int
    mtime_ns: int
    format: str | None
    options: tuple[tuple[str, Any], ...]
    chunk: _Chunk
    columns: tuple[str, ...]
    index: str | None
    file_code: int
    categories: tuple[str, ...]
    event_offset: int  # events of the whole dataset before this partition


def _read_chunk(
    path: str, chunk: _Chunk, size: int, mtime_ns: int, format: str | None, options: dict[str, Any]
) -> list[npt.NDArray[Any]]:
    """Events ``[chunk.first, chunk.stop)`` of the file, decoded from its checkpoint, in
    pieces (views of the decoded packets)."""
    with _naming_file(path):
        stat = os.stat(path)
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            raise FormatError("the file changed after read_events indexed it", path=path)
        pieces: list[npt.NDArray[Any]] = []
        with open_recording(path, "r", format=format, **options) as reader:
            if chunk.first == 0 and chunk.last:  # the whole file: the fastest way
                events = reader.read().events
                if chunk.stop is not None and len(events) != chunk.stop:
                    raise FormatError(
                        f"the file holds {len(events)} events, not the {chunk.stop} it held "
                        "when read_events indexed it",
                        path=path,
                    )
                return [events]
            assert chunk.stop is not None
            count = 0
            if chunk.checkpoint is not None and _resumable(reader):
                assert isinstance(reader, ChunkedReader)
                reader.resume(chunk.checkpoint.checkpoint)
                count = chunk.checkpoint.event
            for packet in reader:
                events = packet.events
                n = len(events)
                low, high = max(chunk.first - count, 0), min(chunk.stop - count, n)
                if high > low:
                    pieces.append(events[low:high])
                count += n
                if count >= chunk.stop:
                    break
        if count < chunk.stop:
            raise FormatError(
                f"the file holds {count} events, fewer than the {chunk.stop} it held when "
                "read_events indexed it",
                path=path,
            )
    return pieces


def _column(pieces: list[npt.NDArray[Any]], name: str) -> npt.NDArray[Any]:
    """One field of the events in ``pieces``, as one contiguous array (one copy)."""
    if len(pieces) == 1:
        return np.ascontiguousarray(pieces[0][name])
    if not pieces:
        return np.empty(0, EVENTS_DTYPE[name])
    return np.concatenate([piece[name] for piece in pieces])


def _frame(pieces: list[npt.NDArray[Any]], part: _Part) -> Any:
    """The pandas DataFrame of one partition."""
    pd: Any = importlib.import_module("pandas")
    n = sum(len(piece) for piece in pieces)
    data: dict[str, Any] = {}
    for name in part.columns:
        if name == "file":
            data[name] = pd.Categorical.from_codes(
                np.full(n, part.file_code, np.int32), categories=list(part.categories)
            )
        else:
            data[name] = _column(pieces, name)
    if part.index == "time":
        times = data["t"] if "t" in data else _column(pieces, "t")
        index: Any = pd.Index(times, name="time", copy=False)
    elif part.index == "event":
        index = pd.RangeIndex(part.event_offset, part.event_offset + n, name="event")
    else:
        index = pd.RangeIndex(n)
    return pd.DataFrame(data, index=index, columns=list(part.columns))


def _load(part: _Part) -> Any:
    pieces = _read_chunk(
        part.path, part.chunk, part.size, part.mtime_ns, part.format, dict(part.options)
    )
    return _frame(pieces, part)


def _meta(columns: Sequence[str], index: str | None, categories: Sequence[str] | None) -> Any:
    """The empty DataFrame that describes the partitions (``categories`` None: unknown)."""
    empty = _Part(
        "",
        0,
        0,
        None,
        (),
        _Chunk(0, 0, 0, 0, None),
        tuple(columns),
        index,
        0,
        tuple(categories or ()),
        0,
    )
    meta = _frame([], empty)
    if categories is None and "file" in columns:
        utils: Any = importlib.import_module("dask.dataframe.utils")
        meta = utils.clear_known_categories(meta, cols=["file"])
    return meta


def _divisions(
    parts: Sequence[_Part], indices: Sequence[_FileIndex], index: str | None, total: int
) -> tuple[Any, ...] | None:
    if index == "event":
        return (*(part.event_offset for part in parts), total - 1)
    if index != "time" or not all(file.time_sorted for file in indices):
        return None
    spans = [(part.chunk.t_first, part.chunk.t_last) for part in parts]
    if any(last < first for first, last in spans) or any(
        spans[i][1] >= spans[i + 1][0] for i in range(len(spans) - 1)
    ):
        return None  # the partitions' time spans overlap (files recorded side by side)
    return (*(np.uint64(first) for first, _ in spans), np.uint64(spans[-1][1]))


def read_events(
    paths_or_pattern: PathOrPattern | Iterable[PathOrPattern],
    columns: Sequence[str] | None = None,
    chunk_events: int | None = DEFAULT_CHUNK_EVENTS,
    *,
    index: Literal["time", "event"] | None = "time",
    format: str | None = None,
    **options: Any,
) -> Any:
    """The events of one or many recordings as a lazy ``dask.dataframe.DataFrame``.

    Args:
        paths_or_pattern: a path, a glob pattern (``"data/**/*.raw"``; matches in sorted
            order) or a list of them. Any format :func:`aerflow.open` reads.
        columns: a subset of ``t`` (uint64 µs), ``x``, ``y`` (uint16), ``on`` (bool) and
            ``file`` (categorical, its categories the paths in order; unknown to Dask
            beyond :data:`KNOWN_CATEGORIES_MAX_FILES` files); all by default.
        chunk_events: about how many events a partition holds. A file smaller than that is
            one partition; a cut inside a time-ordered file moves to the next change of
            time, so no time is split between two partitions. ``None``: one partition per
            file, and with ``index=None`` nothing is decoded before computing (no index).
        index: ``"time"``: the index (named ``time``) holds each event's time, like ``t``;
            ``"event"``: the event's number in the whole dataset (files in order, from 0);
            ``None``: a per-partition range index, no divisions.
        format, options: the format and reader options for :func:`aerflow.open`, the same
            for every file (by default each file's format is detected).

    Divisions. Dask keeps one sorted index over all partitions, which are in file order then
    time order. With ``index="time"`` the divisions are known (``df.known_divisions``) when
    that order is also time order: always for a single time-ordered file, and for several
    files when each one starts after the previous one ends (a recording split into parts).
    Files recorded side by side (the usual dataset: every file from near 0) overlap in
    time, so Dask cannot have a sorted time index over them: their divisions are unknown,
    each partition's index still holds its times (select a file with
    ``df[df.file == path]``, or call ``read_events`` per file for time-indexed access).
    A file out of time order also gives unknown divisions. With ``index="event"`` the
    divisions are always known: the first event number of each partition and the last one.

    Building the DataFrame decodes every file once to index it (count its events, find the
    cuts, note where decoding can start again), as Dask tasks on the current scheduler
    (a ``dask.distributed`` client when one is active); with ``chunk_events=None`` and
    ``index=None`` nothing is decoded until the partitions are (errors then come at compute
    time). The partitions themselves are read
    on the workers when computed; the graph holds paths and positions, never an open file.
    Word formats (EVT 2/2.1/3, DAT, AEDAT 2, ATIS, Event Stream) start each partition where
    it begins; other formats decode from the start of the file up to the partition, so
    prefer ``chunk_events`` at least as large as their files.

    Raises:
        FormatError: a file that cannot be read (naming it), when indexing; or when a
            partition is computed, a file that changed since.
        MissingDependencyError: Dask is missing (``pip install 'aerflow[batch]'``).
    """
    dd = _require_dask_dataframe()
    dask: Any = importlib.import_module("dask")

    if chunk_events is not None:
        if isinstance(chunk_events, bool) or not isinstance(chunk_events, (int, np.integer)):
            raise TypeError(f"chunk_events must be an int or None, got {chunk_events!r}")
        if chunk_events < 1:
            raise ValueError("chunk_events must be at least 1")
    chosen = tuple(COLUMNS if columns is None else columns)
    unknown = [name for name in chosen if name not in COLUMNS]
    if unknown or len(set(chosen)) != len(chosen) or not chosen:
        raise ValueError(f"columns must be distinct names among {', '.join(COLUMNS)}, got {chosen}")
    if index not in ("time", "event", None):
        raise ValueError(f"index must be 'time', 'event' or None, got {index!r}")
    paths = expand_paths(paths_or_pattern)
    if len(set(paths)) != len(paths):
        raise ValueError("a file is named twice")

    indices: list[_FileIndex]
    if chunk_events is None and index is None:
        indices = [_unindexed(path) for path in paths]
    else:
        cut = int(chunk_events) if chunk_events is not None else sys.maxsize
        tasks = [
            dask.delayed(_index_file, pure=False)(path, cut, format, options) for path in paths
        ]
        indices = list(dask.compute(*tasks))
    known = len(paths) <= KNOWN_CATEGORIES_MAX_FILES
    categories = tuple(paths)
    frozen_options = tuple(sorted(options.items()))
    parts: list[_Part] = []
    offset = 0
    for code, file in enumerate(indices):
        for chunk in file.chunks:
            parts.append(
                _Part(
                    file.path,
                    file.size,
                    file.mtime_ns,
                    format,
                    frozen_options,
                    chunk,
                    chosen,
                    index,
                    code if known else 0,
                    categories if known else (file.path,),
                    offset + chunk.first,
                )
            )
        offset += file.events
    meta = _meta(chosen, index, categories if known else None)
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    divisions = _divisions(parts, indices, index, offset)
    return dd.from_map(
        _load,
        parts,
        meta=meta,
        divisions=divisions,
        label="read-events",
        enforce_metadata=False,
    )
