"""A map-style PyTorch dataset over event files: :class:`EventDataset`.

Items are whole recordings, or fixed windows inside them (a duration or an event count, the
vocabulary of :func:`aerflow.tensors.frames`), each accumulated into one tensor of shape
``(P, H, W)`` (``(bins, P, H, W)`` for voxel grids). The dataset holds paths and a small
index, never an open file, so ``DataLoader(num_workers=N)`` (fork or spawn) and
``DistributedSampler`` work: every item opens and decodes its file in the process that asks
for it.
"""

from __future__ import annotations

import glob
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from ..api import open as open_recording
from ..errors import AerflowError, FormatError
from ..events import EVENTS_DTYPE
from ._torch import require_torch
from .representations import Representation
from .windows import Frames, Time, window_length

__all__ = ["EventDataset"]

PathOrPattern = str | os.PathLike[str]


def _expand(paths: PathOrPattern | Iterable[PathOrPattern]) -> list[str]:
    """Paths and glob patterns (``**`` crosses folders; matches sorted) as a list of files."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found: list[str] = []
    for item in items:
        name = os.fspath(item)
        if not os.path.exists(name) and glob.has_magic(name):
            matches = sorted(p for p in glob.glob(name, recursive=True) if os.path.isfile(p))
            if not matches:
                raise FileNotFoundError(f"no file matches {name!r}")
            found.extend(matches)
        else:
            found.append(name)
    if not found:
        raise FileNotFoundError("no files given")
    return found


@dataclass(frozen=True)
class _Recording:
    """What the index keeps of a file: its events and the time span they cover."""

    events: int
    t_first: int  # the earliest time (the first, in a time-ordered file)
    t_last: int  # the latest time


class EventDataset:
    """Recordings, or windows inside them, as tensors; a map-style ``torch`` dataset.

    Args:
        paths: files or glob patterns (``"data/**/*.raw"``, matches in sorted order); any
            format :func:`aerflow.open` reads.
        window: a duration (µs, or ``"50ms"``): item = one time window; window ``k`` of a
            file holds its events with ``t0 + k·w <= t < t0 + (k+1)·w``, ``t0`` the file's
            earliest event time, up to the window holding its latest event (for a
            time-ordered file, the windows of :func:`~aerflow.tensors.frames`, one per item;
            a file out of order loses no event to a window already passed).
        events: instead of ``window``, a count: window ``k`` holds the file's events
            ``k·N`` to ``(k+1)·N``, the last one possibly fewer. With neither, each item is
            a whole recording (one window from its earliest event to its latest).
        representation, dtype, merge_polarity, tau, bins: as for
            :func:`~aerflow.tensors.frames`. Each item is computed from its own events only:
            a time surface does not carry over from the previous window.
        sensor_size: (width, height) for every file; by default each file's own (from its
            header: give it for formats without one, and to batch files of several sizes).
        labels: a sequence with one label per file (in the order of the expanded paths), a
            mapping from path to label, or a function of the path. Items are then
            ``(tensor, label)``; without labels, just the tensor.
        drop_last: leave out each file's last window when it is cut short (time windows: the
            one holding the latest event; count windows: one of fewer than ``events``).
        transform: a function applied to each tensor.
        format, options: the format and reader options for :func:`aerflow.open`.
        cache_files: decoded files each process keeps (the most recently used): windows of
            one file read in order decode it once.

    The index (events and time span per file) is built on first use of ``len()`` or an
    item, by decoding each file once in the process that asks (the main process, with a
    ``DataLoader``); whole-recording datasets need none. Items are CPU tensors.
    """

    def __init__(
        self,
        paths: PathOrPattern | Iterable[PathOrPattern],
        window: Time | None = None,
        *,
        events: int | None = None,
        representation: str | Representation = "counts",
        sensor_size: tuple[int, int] | None = None,
        labels: Sequence[Any] | Mapping[str, Any] | Callable[[str], Any] | None = None,
        dtype: Any = None,
        merge_polarity: bool = False,
        tau: int | float | str | None = None,
        bins: int | None = None,
        drop_last: bool = False,
        transform: Callable[[Any], Any] | None = None,
        format: str | None = None,
        cache_files: int = 1,
        **options: Any,
    ) -> None:
        require_torch()
        if window is not None and events is not None:
            raise ValueError("give at most one of window= (a duration) and events= (a count)")
        self.window, self.events = window_length(window, events)
        if isinstance(cache_files, bool) or not isinstance(cache_files, int) or cache_files < 0:
            raise ValueError(f"cache_files must be a non-negative int, got {cache_files!r}")
        self.paths = _expand(paths)
        self.labels = self._labels(labels)
        self.representation = representation
        self.sensor_size = sensor_size
        self.dtype = dtype
        self.merge_polarity = bool(merge_polarity)
        self.tau = tau
        self.bins = bins
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.format = format
        self.options = dict(options)
        self.cache_files = cache_files
        # Check the frame options now rather than in a worker (no file is opened).
        self._frames(np.empty(0, EVENTS_DTYPE), (1, 1), window=1, start=0, stop=1)
        self._recordings: list[_Recording] | None = None
        self._starts: npt.NDArray[np.int64] | None = None
        self._cache: OrderedDict[str, tuple[npt.NDArray[Any], tuple[int, int], bool]] = (
            OrderedDict()
        )

    def _labels(self, labels: Any) -> list[Any] | None:
        if labels is None:
            return None
        if callable(labels):
            return [labels(path) for path in self.paths]
        if isinstance(labels, Mapping):
            missing = [path for path in self.paths if path not in labels]
            if missing:
                raise KeyError(f"no label for {missing[0]}")
            return [labels[path] for path in self.paths]
        listed = list(labels)
        if len(listed) != len(self.paths):
            raise ValueError(f"{len(listed)} labels for {len(self.paths)} files")
        return listed

    # -- pickling: paths and index only -------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    # -- the index ----------------------------------------------------------------------------
    def _scan(self, path: str) -> _Recording:
        count, first, last = 0, np.iinfo(np.int64).max, -1
        try:
            with open_recording(path, "r", format=self.format, **self.options) as reader:
                for packet in reader:
                    t = packet.events["t"]
                    if len(t):
                        first = min(first, int(t.min()))
                        last = max(last, int(t.max()))
                        count += len(t)
        except (AerflowError, OSError, ValueError, TypeError, KeyError, IndexError) as error:
            _reraise_naming(path, error)
        return _Recording(count, first, last)

    def _windows(self, recording: _Recording) -> int:
        if self.window is None and self.events is None:
            return 1
        if not recording.events:
            return 0
        if self.window is not None:
            full, rest = divmod(recording.t_last - recording.t_first + 1, self.window)
            # The window holding the latest event is cut short by the end of the recording.
            return full if self.drop_last else full + (1 if rest else 0)
        assert self.events is not None
        full, rest = divmod(recording.events, self.events)
        return full if self.drop_last else full + (1 if rest else 0)

    def _index(self) -> npt.NDArray[np.int64]:
        if self._starts is None:
            if self.window is None and self.events is None:
                counts = [1] * len(self.paths)
            else:
                self._recordings = [self._scan(path) for path in self.paths]
                counts = [self._windows(recording) for recording in self._recordings]
            self._starts = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        return self._starts

    def __len__(self) -> int:
        return int(self._index()[-1])

    def locate(self, index: int) -> tuple[str, int, int]:
        """Which file item ``index`` comes from and what part of it: ``(path, start, stop)``
        in µs (time windows; whole recordings: earliest event to latest + 1), or in event
        numbers (count windows)."""
        file, k = self._file_and_window(index)
        path = self.paths[file]
        if self.events is None and self.window is None:
            return (path, *self._whole(self._load(path)[0]))
        return (path, *self._bounds(file, k))

    def _bounds(self, file: int, k: int) -> tuple[int, int]:
        """Window ``k`` of file ``file``: event numbers (count windows) or µs."""
        if self.events is not None:
            return k * self.events, (k + 1) * self.events
        assert self.window is not None
        assert self._recordings is not None
        start = self._recordings[file].t_first + k * self.window
        return start, start + self.window

    @staticmethod
    def _whole(events: npt.NDArray[Any]) -> tuple[int, int]:
        """A whole recording's span: its earliest event's time to its latest + 1 µs."""
        if not len(events):
            return 0, 1
        return int(events["t"].min()), int(events["t"].max()) + 1

    def _file_and_window(self, index: int) -> tuple[int, int]:
        starts = self._index()
        total = int(starts[-1])
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset indices must be integers, got {index!r}")
        if index < 0:
            index += total
        if not 0 <= index < total:
            raise IndexError(f"index {index} out of range for {total} items")
        file = int(np.searchsorted(starts, index, side="right")) - 1
        return file, int(index - starts[file])

    # -- items --------------------------------------------------------------------------------
    def _load(self, path: str) -> tuple[npt.NDArray[Any], tuple[int, int], bool]:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        try:
            with open_recording(path, "r", format=self.format, **self.options) as reader:
                events = reader.read().events
                size = self.sensor_size or (reader.properties.width, reader.properties.height)
        except (AerflowError, OSError, ValueError, TypeError, KeyError, IndexError) as error:
            _reraise_naming(path, error)
        if size[0] is None or size[1] is None:
            raise ValueError(f"{path}: the file does not say its sensor size: pass sensor_size=")
        times = events["t"]
        ordered = bool(np.all(times[1:] >= times[:-1]))
        loaded = (events, (int(size[0]), int(size[1])), ordered)
        if self.cache_files:
            self._cache[path] = loaded
            while len(self._cache) > self.cache_files:
                self._cache.popitem(last=False)
        return loaded

    def _frames(self, chosen: npt.NDArray[Any], size: tuple[int, int], **window: Any) -> Any:
        iterator = Frames(
            chosen,
            representation=self.representation,
            device="cpu",
            dtype=self.dtype,
            sensor_size=size,
            merge_polarity=self.merge_polarity,
            tau=self.tau,
            bins=self.bins,
            **window,
        )
        frames = list(iterator)
        if frames:
            return frames[0]
        # A count window whose events all lie outside the sensor.
        torch = require_torch()
        return torch.zeros(iterator.shape, dtype=getattr(torch, iterator.dtype))

    def __getitem__(self, index: int) -> Any:
        file, k = self._file_and_window(index)
        events, size, ordered = self._load(self.paths[file])
        if self.events is None and self.window is None:
            start, stop = self._whole(events)
        else:
            start, stop = self._bounds(file, k)
        if self.events is not None:
            tensor = self._frames(events[start:stop], size, events=self.events)
        else:
            times = events["t"]
            if ordered:
                low, high = np.searchsorted(times, [start, stop])
                chosen = events[low:high]
            else:
                chosen = events[(times >= start) & (times < stop)]
            tensor = self._frames(chosen, size, window=stop - start, start=start, stop=stop)
        if self.transform is not None:
            tensor = self.transform(tensor)
        if self.labels is None:
            return tensor
        return tensor, self.labels[file]

    def __repr__(self) -> str:
        if self.window is not None:
            what = f"windows of {self.window} µs"
        elif self.events is not None:
            what = f"windows of {self.events} events"
        else:
            what = "whole recordings"
        return f"EventDataset({len(self.paths)} files, {what})"


def _reraise_naming(path: str, error: Exception) -> NoReturn:
    """Raise ``error``, or a FormatError naming ``path`` in its place."""
    if isinstance(error, AerflowError) and path in str(error):
        raise error
    raise FormatError(f"cannot read events: {type(error).__name__}: {error}", path=path) from error
