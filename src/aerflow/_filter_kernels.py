"""Numba kernels behind the stateful filters: plain arrays in, masks and split points out.

Per-pixel state maps are indexed ``[y, x]``; events outside them are never kept (the public
filters count them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import njit

NEVER = np.iinfo(np.int64).min
"""The time a pixel that has seen nothing last fired."""


@njit(nogil=True, cache=True)
def refractory_mask(t: Any, x: Any, y: Any, last: Any, period: int, keep: Any) -> None:
    """Keep an event when its pixel kept none in the ``period`` µs before it."""
    height, width = last.shape
    for i in range(len(t)):
        xi, yi = np.int64(x[i]), np.int64(y[i])
        if xi >= width or yi >= height:
            keep[i] = False
            continue
        ti = np.int64(t[i])
        previous = last[yi, xi]
        if previous == NEVER or ti - previous >= period:
            keep[i] = True
            last[yi, xi] = ti
        else:
            keep[i] = False


@njit(nogil=True, cache=True)
def denoise_mask(t: Any, x: Any, y: Any, last: Any, window: int, keep: Any) -> None:
    """Keep an event when one of the 8 neighbouring pixels fired within ``window`` µs before
    it; every event (kept or not) updates its own pixel."""
    height, width = last.shape
    for i in range(len(t)):
        xi, yi = np.int64(x[i]), np.int64(y[i])
        if xi >= width or yi >= height:
            keep[i] = False
            continue
        ti = np.int64(t[i])
        supported = False
        for dy in range(-1, 2):
            row = yi + dy
            if row < 0 or row >= height:
                continue
            for dx in range(-1, 2):
                column = xi + dx
                if (dx == 0 and dy == 0) or column < 0 or column >= width:
                    continue
                previous = last[row, column]
                if previous != NEVER and ti - previous <= window:
                    supported = True
        keep[i] = supported
        last[yi, xi] = ti


@njit(nogil=True, cache=True)
def decimate_mask(x: Any, y: Any, counts: Any, factor: int, keep: Any) -> None:
    """Keep every ``factor``-th event of each pixel."""
    height, width = counts.shape
    for i in range(len(x)):
        xi, yi = np.int64(x[i]), np.int64(y[i])
        if xi >= width or yi >= height:
            keep[i] = False
            continue
        counts[yi, xi] += 1
        if counts[yi, xi] == factor:
            counts[yi, xi] = 0
            keep[i] = True
        else:
            keep[i] = False


@njit(nogil=True, cache=True)
def window_splits(t: Any, end: int, duration: int, splits: Any) -> tuple[int, int]:
    """Indices where times first reach ``end``, ``end + duration``, ... in arrival order.

    An event earlier than its window's start (time stepping back) stays in the window where
    it arrives. Returns (splits found, the end of the window open after the last event);
    stops early when ``splits`` is full.
    """
    found = 0
    for i in range(len(t)):
        ti = np.int64(t[i])
        while ti >= end:
            if found == len(splits):
                return found, end
            splits[found] = i
            found += 1
            end += duration
    return found, end
