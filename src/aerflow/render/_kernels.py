"""Numba kernels behind the renderer: per-pixel state in, palette indices out.

State maps are indexed ``[y, x]`` on the accumulation grid (the sensor, or the output size
when that is smaller); ``xmap``/``ymap`` take sensor coordinates to grid cells and
``rows``/``cols`` take output pixels to grid cells. Events outside the sensor are counted
and skipped, never written.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._jit import njit

NEVER = -(1 << 62)
"""The time a cell that has seen no event last fired (far enough back to fade fully, yet
safe to subtract from)."""


@njit(nogil=True, cache=True)
def accumulate(
    t: Any,
    x: Any,
    y: Any,
    on: Any,
    begin: int,
    stop: int,
    xmap: Any,
    ymap: Any,
    last_t: Any,
    last_on: Any,
    level: Any,
    tau: float,
) -> tuple[int, int]:
    """Add events from index ``begin`` until the first one at or after ``stop`` (µs).

    Every event sets its cell's time and polarity; with ``tau > 0`` it also decays the cell's
    signed ``level`` by ``exp(-dt / tau)`` and adds +1 (ON) or -1 (OFF). Returns the index
    of the first event not added and the number of events outside the sensor."""
    width, height = len(xmap), len(ymap)
    dropped = 0
    i = begin
    n = len(t)
    while i < n:
        ti = np.int64(t[i])
        if ti >= stop:
            break
        xi, yi = np.int64(x[i]), np.int64(y[i])
        if xi >= width or yi >= height:
            dropped += 1
            i += 1
            continue
        gx, gy = xmap[xi], ymap[yi]
        if tau > 0:
            dt = ti - last_t[gy, gx]
            value = level[gy, gx]
            if dt > 0:
                value *= math.exp(-dt / tau)
            level[gy, gx] = value + (1.0 if on[i] else -1.0)
        last_t[gy, gx] = ti
        last_on[gy, gx] = on[i]
        i += 1
    return i, dropped


@njit(nogil=True, cache=True)
def render_polarity(
    last_t: Any,
    last_on: Any,
    now: int,
    horizon: int,
    lut_on: Any,
    lut_off: Any,
    background: int,
    rows: Any,
    cols: Any,
    out: Any,
) -> None:
    """Each pixel: its latest event's polarity ramp (``lut_on``/``lut_off``), looked up by
    age in ``len(lut)`` equal buckets up to ``horizon`` µs; older or empty: ``background``."""
    buckets = len(lut_on)
    for oy in range(len(rows)):
        gy = rows[oy]
        for ox in range(len(cols)):
            gx = cols[ox]
            age = now - last_t[gy, gx]
            if age >= horizon:
                out[oy, ox] = background
            else:
                k = max(age, 0) * buckets // horizon
                out[oy, ox] = lut_on[k] if last_on[gy, gx] else lut_off[k]


@njit(nogil=True, cache=True)
def render_surface(
    last_t: Any, now: int, horizon: int, lut: Any, rows: Any, cols: Any, out: Any
) -> None:
    """Each pixel: ``lut`` at its latest event's age (any polarity); older or empty: 0."""
    buckets = len(lut)
    for oy in range(len(rows)):
        gy = rows[oy]
        for ox in range(len(cols)):
            gx = cols[ox]
            age = now - last_t[gy, gx]
            if age >= horizon:
                out[oy, ox] = 0
            else:
                out[oy, ox] = lut[max(age, 0) * buckets // horizon]


@njit(nogil=True, cache=True)
def render_counts(
    last_t: Any,
    level: Any,
    now: int,
    tau: float,
    scale: float,
    levels: int,
    rows: Any,
    cols: Any,
    out: Any,
) -> None:
    """Each pixel: ``levels + round(levels * clip(level * exp(-age / tau) * scale, -1, 1))``."""
    horizon = 40.0 * tau  # exp(-40) is far below one step at any sensible contrast
    for oy in range(len(rows)):
        gy = rows[oy]
        for ox in range(len(cols)):
            gx = cols[ox]
            age = now - last_t[gy, gx]
            value = level[gy, gx]
            if age >= horizon or value == 0.0:
                out[oy, ox] = levels
                continue
            if age > 0:
                value *= math.exp(-age / tau)
            value = min(max(value * scale, -1.0), 1.0)
            out[oy, ox] = levels + np.int64(round(value * levels))


@njit(nogil=True, cache=True)
def to_yuv420(indices: Any, lut_y: Any, lut_u: Any, lut_v: Any, y: Any, u: Any, v: Any) -> None:
    """Planar 4:2:0 YUV of an index image of even size: ``y`` per pixel, ``u``/``v`` the
    rounded mean over each 2 x 2 block."""
    height, width = indices.shape
    for row in range(0, height, 2):
        for column in range(0, width, 2):
            a, b = indices[row, column], indices[row, column + 1]
            c, d = indices[row + 1, column], indices[row + 1, column + 1]
            y[row, column], y[row, column + 1] = lut_y[a], lut_y[b]
            y[row + 1, column], y[row + 1, column + 1] = lut_y[c], lut_y[d]
            half_row, half_column = row // 2, column // 2
            total_u = np.int32(lut_u[a]) + lut_u[b] + lut_u[c] + lut_u[d]
            total_v = np.int32(lut_v[a]) + lut_v[b] + lut_v[c] + lut_v[d]
            u[half_row, half_column] = (total_u + 2) // 4
            v[half_row, half_column] = (total_v + 2) // 4


@njit(nogil=True, cache=True)
def intervals(
    t: Any, x: Any, y: Any, last_t: Any, per_pixel: bool, edges: Any, counts: Any
) -> tuple[int, int, int]:
    """Histogram the time since the previous event of the same pixel (``per_pixel``) or of
    any pixel (``last_t`` is then 1 x 1) into ``counts`` by the bin ``edges`` (µs, rising;
    bin k is ``edges[k] <= dt < edges[k + 1]``). Returns the intervals of 0 µs or less, those
    at or past the last edge, and the events outside ``last_t``'s grid (skipped)."""
    height, width = last_t.shape
    zero = beyond = outside = 0
    last_edge = edges[len(edges) - 1]
    for i in range(len(t)):
        row, column = 0, 0
        if per_pixel:
            column, row = np.int64(x[i]), np.int64(y[i])
            if column >= width or row >= height:
                outside += 1
                continue
        ti = np.int64(t[i])
        previous = last_t[row, column]
        last_t[row, column] = ti
        if previous == NEVER:
            continue
        dt = ti - previous
        if dt <= 0:
            zero += 1
        elif dt >= last_edge:
            beyond += 1
        else:
            counts[np.searchsorted(edges, dt, side="right") - 1] += 1
    return zero, beyond, outside
