"""Frames stacked along time: whole sequences ``(T, ...)`` and batches for training loops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..events import EVENTS_DTYPE, as_events, parse_time
from .accumulate import DEFAULT_CAPACITY
from .representations import Representation
from .sources import event_arrays
from .windows import Frames, Time

__all__ = ["batches", "sequence"]


def sequence(
    source: Any,
    *,
    window: Time | None = None,
    events: int | None = None,
    windows: int | None = None,
    representation: str | Representation = "counts",
    device: Any = "cpu",
    dtype: Any = None,
    sensor_size: tuple[int, int] | None = None,
    merge_polarity: bool = False,
    start: Time | None = None,
    stop: Time | None = None,
    drop_last: bool = False,
    tau: int | float | str | None = None,
    bins: int | None = None,
    chunk_events: int = DEFAULT_CAPACITY,
) -> Any:
    """Every frame of ``source`` in one array of shape ``(T, *frame)``: ``(T, P, H, W)``,
    or ``(T, bins, P, H, W)`` for voxel grids. A new array, owned by the caller.

    Windows are ``window`` long, or ``events`` events each (see :func:`frames`), or, with
    ``windows=T``, exactly T windows of equal whole-µs duration ``ceil(span / T)`` covering
    the span from ``start`` (default: the first event) to ``stop`` (default: the last
    event + 1 µs); the last one may end up to T − 1 µs after ``stop``. Other arguments are
    those of :func:`frames`.
    """
    sensor_source = source
    if windows is not None:
        if window is not None or events is not None:
            raise ValueError("give one of window=, events= and windows=")
        if isinstance(windows, bool) or not isinstance(windows, (int, np.integer)) or windows < 1:
            raise ValueError(f"windows must be a positive integer, got {windows!r}")
        array = (
            as_events(source)
            if isinstance(source, np.ndarray)
            else _concatenate(list(event_arrays(source)))
        )
        window, start, stop = _equal_windows(array, int(windows), start, stop)
        source = array
    iterator = Frames(
        source,
        window=window,
        events=events,
        representation=representation,
        device=device,
        dtype=dtype,
        sensor_size=sensor_size if sensor_size is not None else _size(sensor_source),
        merge_polarity=merge_polarity,
        start=start,
        stop=stop,
        drop_last=drop_last,
        tau=tau,
        bins=bins,
        chunk_events=chunk_events,
    )
    collected = list(iterator)
    return iterator.backend.stack(collected, iterator.shape, iterator.dtype)


def _size(source: Any) -> tuple[int, int] | None:
    properties = getattr(source, "properties", None)
    width = getattr(properties, "width", None)
    height = getattr(properties, "height", None)
    return None if width is None or height is None else (int(width), int(height))


def _concatenate(arrays: list[Any]) -> Any:
    return np.concatenate(arrays) if arrays else np.empty(0, EVENTS_DTYPE)


def _equal_windows(
    array: Any, count: int, start: Time | None, stop: Time | None
) -> tuple[int, int | None, int | None]:
    first = parse_time(start) if start is not None else None
    end = parse_time(stop) if stop is not None else None
    if first is None or end is None:
        if not len(array):
            return 1, None, None  # no events and no span given: no window
        t = array["t"]
        first = int(t.min()) if first is None else first
        end = int(t.max()) + 1 if end is None else end
    if end <= first:
        raise ValueError("stop must come after start")
    duration = -(-(end - first) // count)
    return duration, first, first + duration * count


def batches(
    source: Any,
    *,
    batch_size: int,
    steps: int,
    time_first: bool = False,
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
) -> Iterator[Any]:
    """Consecutive windows of one stream as batches of clips.

    Frames are grouped into clips of ``steps`` consecutive windows and clips into batches
    of ``batch_size``: arrays of shape ``(B, T, *frame)``, or ``(T, B, *frame)`` with
    ``time_first=True`` (the order spiking networks step through). At the end of the
    stream a clip short of ``steps`` windows is padded with zero frames and a last batch
    holds the clips there are, unless ``drop_last`` drops both (and a last window cut short).

    Like :func:`frames`, each batch is an array of its own unless ``reuse=True`` writes them
    all into one array, valid until the next one is asked for. Other arguments are those of
    :func:`frames`.
    """
    for name, value in (("batch_size", batch_size), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    iterator = Frames(
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
        reuse=True,  # each frame is copied into the batch at once
        tau=tau,
        bins=bins,
        chunk_events=chunk_events,
    )
    return _batches(iterator, int(batch_size), int(steps), time_first, drop_last, reuse)


def _batches(
    iterator: Frames, size: int, steps: int, time_first: bool, drop_last: bool, reuse: bool
) -> Iterator[Any]:
    backend = iterator.backend
    shape = (steps, size, *iterator.shape) if time_first else (size, steps, *iterator.shape)
    buffer: Any = None
    clip = step = 0
    for frame in iterator:
        if buffer is None:
            buffer = backend.empty(shape, iterator.dtype)
        backend.copy_(buffer[step, clip] if time_first else buffer[clip, step], frame)
        step += 1
        if step == steps:
            step = 0
            clip += 1
            if clip == size:
                yield buffer
                clip = 0
                if not reuse:
                    buffer = None
    if buffer is None or drop_last or (clip == 0 and step == 0):
        return
    if step:
        backend.fill_(buffer[step:, clip] if time_first else buffer[clip, step:], 0)
        clip += 1
    yield buffer[:, :clip] if time_first else buffer[:clip]
