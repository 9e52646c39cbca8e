"""Frames in event-time windows: fixed durations or fixed event counts.

Windows are deterministic: they depend on the events only, never on how the source cuts them
into packets or on the wall clock.

* By time (``window=``): window ``k`` holds the events with ``t0 + k·w <= t < t0 + (k+1)·w``,
  where ``t0`` is ``start`` or the first event's time. Windows without events are yielded
  (as empty frames), none is skipped. The last window is the one holding the last event, or,
  with ``stop``, the one ending at or after ``stop``.
* By count (``events=N``): every window holds exactly ``N`` events; the last one may hold
  fewer. Events dropped for lying outside the sensor do not count.

``drop_last=True`` drops a last window that the stream (or ``stop``) cut short.

Events before ``start`` are ignored, and the stream ends at the first event at or after
``stop``. In time windows an event older than the current window (a stream out of order)
is counted in the current window; :attr:`Frames.late` says how many were.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..events import parse_time
from . import _kernels as kernels
from ._backend import dtype_name, make_backend
from .accumulate import DEFAULT_CAPACITY, Engine
from .representations import Representation, resolve
from .sources import event_arrays, sensor_size_of

__all__ = ["Frames", "frames"]

log = logging.getLogger(__name__)

Time = int | str


def _time(value: Time | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name}: {error}") from error


def window_length(window: Time | None, events: int | None) -> tuple[int | None, int | None]:
    """A window given as a duration (µs, at least 1) or as an event count (at least 1),
    validated: ``(window_us, events)``, either or both None when not given."""
    window_us = _time(window, "window")
    if window_us is not None and window_us < 1:
        raise ValueError("window must be at least 1 µs")
    if events is not None:
        if isinstance(events, bool) or not isinstance(events, (int, np.integer)):
            raise TypeError(f"events must be an int, got {events!r}")
        if events < 1:
            raise ValueError("events must be at least 1")
    return window_us, None if events is None else int(events)


class Frames:
    """An iterator of frames, one per window; see :func:`frames`.

    Besides iterating, it tells :attr:`dropped` (events outside the sensor), :attr:`late`,
    :attr:`last_window` (the time span of the latest frame) and :attr:`shape`.
    """

    def __init__(
        self,
        source: Any,
        *,
        window: Time | None = None,
        events: int | None = None,
        representation: str | Representation = "counts",
        device: Any = "cpu",
        dtype: Any = None,
        sensor_size: tuple[int, int] | None = None,
        merge_polarity: bool = False,
        start: Time | None = None,
        stop: Time | None = None,
        drop_last: bool = False,
        reuse: bool = False,
        tau: int | float | str | None = None,
        bins: int | None = None,
        chunk_events: int = DEFAULT_CAPACITY,
        ring_size: int | None = None,
    ) -> None:
        if (window is None) == (events is None):
            raise ValueError("give exactly one of window= (a duration) and events= (a count)")
        self._window, self._count = window_length(window, events)
        self._start = _time(start, "start")
        self._stop = _time(stop, "stop")
        if self._start is not None and self._stop is not None and self._stop <= self._start:
            raise ValueError("stop must come after start")
        if chunk_events < 1:
            raise ValueError("chunk_events must be at least 1")
        self.representation = resolve(representation, tau=tau, bins=bins)
        self.dtype = dtype_name("float32" if dtype is None else dtype)
        self.representation.check_dtype(self.dtype)
        self.sensor_size = sensor_size_of(source, sensor_size)
        self.merge_polarity = bool(merge_polarity)
        self.backend = backend = make_backend(device)
        backend.dtype(self.dtype)  # NumPy has no bfloat16
        capacity = chunk_events
        # Count-window voxel grids need a window's last event before placing its first: a
        # window's events stay staged until it is complete, so a buffer must hold two.
        self._hold_back = self._count is not None and self.representation.name == "voxel"
        if self._hold_back:
            assert self._count is not None
            capacity = max(capacity, 2 * self._count)
        width, height = self.sensor_size
        self._engine = Engine(
            self.representation,
            backend,
            width=width,
            height=height,
            merged=self.merge_polarity,
            dtype=self.dtype,
            slots=ring_size,
            capacity=capacity,
        )
        self.shape: tuple[int, ...] = self._engine.frame_shape
        """The shape of every frame."""
        self.device = device
        self._source = source
        self._drop_last = bool(drop_last)
        self._reuse = bool(reuse)
        self._state = np.zeros(kernels.STATE_SIZE, np.int64)
        self._t0 = self._start
        self.last_window: tuple[int, int] | None = None
        """(first µs, end µs exclusive) of the latest frame: the window's bounds for time
        windows, its first and last event (+1) for count windows."""
        self.last_event_count = 0
        """Events in the latest frame."""
        self.count = 0
        """Frames yielded so far."""
        self._frames = self._run()

    def __iter__(self) -> Frames:
        return self

    def __next__(self) -> Any:
        return next(self._frames)

    @property
    def dropped(self) -> int:
        """Events dropped so far because their coordinates lie outside the sensor."""
        return int(self._state[kernels.DROPPED])

    @property
    def late(self) -> int:
        """Events so far whose time belonged to a window already handed out (time windows
        of a stream out of order); each was counted in the window open at the time."""
        return int(self._state[kernels.LATE])

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> Iterator[Any]:
        engine = self._engine
        state = self._state
        by_time = self._window is not None
        kernel = kernels.pack_by_time if by_time else kernels.pack_by_count
        parameter = self._window if by_time else self._count
        assert parameter is not None
        stop = -1 if self._stop is None else self._stop
        stopped = False
        for events in event_arrays(self._source):
            size = len(events)
            if not size:
                continue
            if self._t0 is None:
                self._t0 = int(events["t"][0]) if by_time else 0
            position = 0
            while position < size:
                position, engine.n, reason = kernel(
                    events,
                    position,
                    engine.width,
                    engine.height,
                    engine.two_channels,
                    engine.slot_stride,
                    engine.slots,
                    self._t0,
                    parameter,
                    stop,
                    state,
                    engine.indices,
                    engine.times,
                    engine.store_times,
                    engine.n,
                    engine.slot_count,
                    engine.slot_first,
                    engine.slot_last,
                )
                if reason == kernels.STOPPED:
                    stopped = True
                    break
                finished = state[kernels.CURRENT] > state[kernels.FIRST_OPEN]
                if reason != kernels.CONSUMED or finished:
                    self._flush(final=False)
                    yield from self._emit(int(state[kernels.CURRENT]))
                    if reason == kernels.RING_FULL and engine.slots < engine.max_slots:
                        # Every finished window is out and the open one is empty: the ring
                        # may grow (it starts small, so short sources allocate little).
                        assert engine.n == 0
                        engine.resize(min(2 * engine.slots, engine.max_slots))
            if stopped:
                break
        self._flush(final=True)
        yield from self._emit(self._end())
        if self.dropped or self.late:
            log.info(
                "frames: %d events outside the %dx%d sensor dropped, %d late events",
                self.dropped,
                *self.sensor_size,
                self.late,
            )

    def _flush(self, final: bool) -> None:
        engine = self._engine
        state = self._state
        count = engine.n
        if self._hold_back and not final:
            current = int(state[kernels.CURRENT])
            if current - int(state[kernels.FIRST_OPEN]) < engine.slots:
                count -= int(engine.slot_count[current % engine.slots])
        engine.flush(
            count,
            by_time=self._window is not None,
            t0=self._t0 or 0,
            window=self._window or 1,
            first_open=int(state[kernels.FIRST_OPEN]),
        )

    def _end(self) -> int:
        """The index past the last window to yield once the stream has ended."""
        state = self._state
        first_open = int(state[kernels.FIRST_OPEN])
        current = int(state[kernels.CURRENT])
        if self._window is not None:
            if self._t0 is None:
                return first_open
            if self._stop is not None:
                span = self._stop - self._t0
                end = -(-span // self._window)
                if self._drop_last and span % self._window:
                    end -= 1
            elif not state[kernels.SEEN]:
                return first_open
            else:
                end = current if self._drop_last else current + 1
            return max(end, first_open)
        engine = self._engine
        partial = (
            current - first_open < engine.slots and engine.slot_count[current % engine.slots] > 0
        )
        return current + 1 if partial and not self._drop_last else current

    def _emit(self, end: int) -> Iterator[Any]:
        engine = self._engine
        state = self._state
        while state[kernels.FIRST_OPEN] < end:
            k = int(state[kernels.FIRST_OPEN])
            slot = k % engine.slots
            if self._window is not None:
                assert self._t0 is not None
                first = self._t0 + k * self._window
                last = first + self._window
                if self._stop is not None:
                    last = min(last, self._stop)
                t_ref = last
            else:
                first = int(engine.slot_first[slot])
                t_ref = int(engine.slot_last[slot])
                last = t_ref + 1
            self.last_window = (first, last)
            self.last_event_count = int(engine.slot_count[slot])
            frame = engine.finalize(slot, t_ref, fresh=not self._reuse)
            state[kernels.FIRST_OPEN] = k + 1
            self.count += 1
            yield frame


def frames(
    source: Any,
    *,
    window: Time | None = None,
    events: int | None = None,
    representation: str | Representation = "counts",
    device: Any = "cpu",
    dtype: Any = None,
    sensor_size: tuple[int, int] | None = None,
    merge_polarity: bool = False,
    start: Time | None = None,
    stop: Time | None = None,
    drop_last: bool = False,
    reuse: bool = False,
    tau: int | float | str | None = None,
    bins: int | None = None,
    chunk_events: int = DEFAULT_CAPACITY,
    ring_size: int | None = None,
) -> Frames:
    """Accumulate a source's events into one frame per window, on a torch device.

    Args:
        source: an events array, a :class:`~aerflow.Packet`, or an iterable of them (a
            reader from :func:`aerflow.open`, a stream).
        window: the window duration (µs, or ``"10ms"``...); or
        events: the number of events per window (exactly one of the two).
        representation: ``"counts"``, ``"signed"``, ``"binary"``, ``"time_surface"``,
            ``"voxel"`` or a :class:`Representation` object (see
            :mod:`aerflow.tensors.representations`).
        device: a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...), or ``"numpy"`` for
            NumPy arrays.
        dtype: the frames' dtype (torch, NumPy or a name); float32 by default. Counts in
            small integer dtypes saturate at the dtype's maximum.
        sensor_size: (width, height); taken from ``source.properties`` when not given.
            Events outside it are dropped and counted (:attr:`Frames.dropped`).
        merge_polarity: one channel for both polarities (P = 1) instead of OFF, ON (P = 2).
        start, stop: event times (µs) where the first window starts and where the stream
            is cut; by default the first event's time and the end of the source.
        drop_last: drop a last window cut short by the end of the stream or ``stop``.
        reuse: write every frame into one array, valid only until the next frame is asked
            for (copy it to keep it). By default each frame is an array of its own, so
            ``list(frames(...))`` keeps them all; reusing spares an allocation per frame
            (see BENCHMARKS.md).
        tau: the time constant of ``"time_surface"``; bins: the time bins of ``"voxel"``.
        chunk_events, ring_size: tuning: events per upload to the device, and windows
            accumulated together in device memory (default: as many as fit 64 MB, ≤ 64).

    Returns:
        a :class:`Frames` iterator of arrays of shape :attr:`Frames.shape`: ``(P, H, W)``,
        or ``(bins, P, H, W)`` for voxel grids.
    """
    return Frames(
        source,
        window=window,
        events=events,
        representation=representation,
        device=device,
        dtype=dtype,
        sensor_size=sensor_size,
        merge_polarity=merge_polarity,
        start=start,
        stop=stop,
        drop_last=drop_last,
        reuse=reuse,
        tau=tau,
        bins=bins,
        chunk_events=chunk_events,
        ring_size=ring_size,
    )
