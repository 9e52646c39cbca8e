"""Slow, plain NumPy references for aerflow.tensors: windows and representations.

Written from the documented rules, not from the kernels, and importing nothing from aerflow:

* time windows: window ``k`` holds ``t0 + k·w <= t < t0 + (k+1)·w``; an event older than the
  window open at its arrival stays in that window (a running maximum of the window index,
  over every event at or after ``t0``, in or out of the sensor); events before ``start``
  are ignored; the stream ends at the first event at or after ``stop``;
* count windows: consecutive runs of ``count`` events inside the sensor;
* representations by their definitions, in float64: counts with ``np.add.at``, time
  surfaces from the latest event per pixel, voxel grids from the triangular kernel
  ``max(0, 1 - |b - position|)`` evaluated for every bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NEVER = -np.inf


@dataclass
class Window:
    """One window: the positions of its events in the input, its span and reference time."""

    members: np.ndarray
    first: int
    end: int
    t_ref: int


def windows(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    width: int,
    height: int,
    *,
    window: int | None = None,
    count: int | None = None,
    start: int | None = None,
    stop: int | None = None,
    drop_last: bool = False,
) -> list[Window]:
    t = np.asarray(t, dtype=np.int64)
    inside = (np.asarray(x, np.int64) < width) & (np.asarray(y, np.int64) < height)
    positions = np.arange(len(t))
    cut = len(t)
    if stop is not None:
        beyond = np.flatnonzero(t >= stop)
        cut = int(beyond[0]) if len(beyond) else len(t)
    t, inside, positions = t[:cut], inside[:cut], positions[:cut]
    if window is not None:
        t0 = start if start is not None else (int(t[0]) if len(t) else None)
        if t0 is None:
            return []
        wanted = t >= t0
        t, inside, positions = t[wanted], inside[wanted], positions[wanted]
        index = np.maximum.accumulate((t - t0) // window) if len(t) else t
        if stop is not None:
            total = math.ceil((stop - t0) / window)
            if drop_last and (stop - t0) % window:
                total -= 1
        elif len(t):
            total = int(index[-1]) + (0 if drop_last else 1)
        else:
            total = 0
        out = []
        for k in range(total):
            first = t0 + k * window
            end = first + window if stop is None else min(first + window, stop)
            members = positions[(index == k) & inside]
            out.append(Window(members, first, end, end))
        return out
    assert count is not None
    if start is not None:
        wanted = t >= start
        t, inside, positions = t[wanted], inside[wanted], positions[wanted]
    t, positions = t[inside], positions[inside]
    out = []
    for begin in range(0, len(t), count):
        members = positions[begin : begin + count]
        if len(members) < count and drop_last:
            break
        times = t[begin : begin + count]
        out.append(Window(members, int(times[0]), int(times[-1]) + 1, int(times[-1])))
    return out


def _channel(on: np.ndarray, merged: bool) -> np.ndarray:
    return np.zeros(len(on), np.int64) if merged else np.asarray(on).astype(np.int64)


def counts(events: np.ndarray, width: int, height: int, merged: bool) -> np.ndarray:
    frame = np.zeros((1 if merged else 2, height, width))
    channel = _channel(events["on"], merged)
    np.add.at(frame, (channel, events["y"].astype(np.int64), events["x"].astype(np.int64)), 1)
    return frame


def signed(events: np.ndarray, width: int, height: int) -> np.ndarray:
    both = counts(events, width, height, merged=False)
    return both[1:2] - both[0:1]


def binary(events: np.ndarray, width: int, height: int, merged: bool) -> np.ndarray:
    return (counts(events, width, height, merged) > 0).astype(np.float64)


class TimeSurface:
    """The latest event per pixel, carried from window to window."""

    def __init__(self, width: int, height: int, merged: bool, tau: float) -> None:
        self.latest = np.full((1 if merged else 2, height, width), NEVER)
        self.merged, self.tau = merged, tau

    def __call__(self, events: np.ndarray, t_ref: int) -> np.ndarray:
        channel = _channel(events["on"], self.merged)
        np.maximum.at(
            self.latest,
            (channel, events["y"].astype(np.int64), events["x"].astype(np.int64)),
            events["t"].astype(np.float64),
        )
        age = np.maximum(t_ref - self.latest, 0.0)
        with np.errstate(invalid="ignore"):
            surface = np.exp(-age / self.tau)
        return np.where(np.isfinite(self.latest), surface, 0.0)


def voxel(
    events: np.ndarray, width: int, height: int, merged: bool, bins: int, a: int, b: int
) -> np.ndarray:
    """Zhu et al.'s grid: each event adds p·max(0, 1 − |bin − position|) to every bin, its
    position being (bins − 1)(t − a)/(b − a) clipped to [0, bins − 1] (0 when b <= a)."""
    grid = np.zeros((bins, 1 if merged else 2, height, width))
    t = events["t"].astype(np.float64)
    if bins > 1 and b > a:
        position = np.clip((bins - 1) * (t - a) / (b - a), 0, bins - 1)
    else:
        position = np.zeros(len(t))
    on = np.asarray(events["on"], bool)
    value = np.where(on, 1.0, -1.0) if merged else np.ones(len(t))
    channel = _channel(on, merged)
    y, x = events["y"].astype(np.int64), events["x"].astype(np.int64)
    for k in range(bins):
        weight = np.maximum(0.0, 1.0 - np.abs(k - position))
        np.add.at(grid[k], (channel, y, x), value * weight)
    return grid


def frames(
    events: np.ndarray,
    width: int,
    height: int,
    representation: str,
    *,
    merged: bool = False,
    tau: float = 10_000.0,
    bins: int = 5,
    window: int | None = None,
    count: int | None = None,
    start: int | None = None,
    stop: int | None = None,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Every frame ``aerflow.tensors.frames`` should yield, in float64."""
    spans = windows(
        events["t"],
        events["x"],
        events["y"],
        width,
        height,
        window=window,
        count=count,
        start=start,
        stop=stop,
        drop_last=drop_last,
    )
    surface = TimeSurface(width, height, merged, tau)
    out = []
    for span in spans:
        chosen = events[span.members]
        if representation == "counts":
            out.append(counts(chosen, width, height, merged))
        elif representation == "signed":
            out.append(signed(chosen, width, height))
        elif representation == "binary":
            out.append(binary(chosen, width, height, merged))
        elif representation == "time_surface":
            out.append(surface(chosen, span.t_ref))
        elif representation == "voxel":
            if window is not None:
                a, b = span.first, span.first + window - 1
            else:
                a, b = span.first, span.t_ref
            out.append(voxel(chosen, width, height, merged, bins, a, b))
        else:
            raise ValueError(representation)
    return out
