"""Numba kernels of the tensor path: packing events into compact indices, on the host.

A window's accumulator is one *slot* of a ring of ``n_slots`` slots; window ``k`` lives in
slot ``k % n_slots``. Packing turns each event into one int32 index into the flattened ring
(slot, channel, row, column), checks its coordinates (events outside the sensor are counted
and dropped, never written) and keeps the window bookkeeping in a small ``int64`` state
array, so that windows continue across packets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit

# Slots of the window state array.
CURRENT = 0
"""The window the next event goes to (absolute index from the first window)."""
FIRST_OPEN = 1
"""The first window not yet handed out; the ring holds windows FIRST_OPEN .. + n_slots - 1."""
DROPPED = 2
"""Events dropped because their coordinates lie outside the sensor."""
SKIPPED = 3
"""Events earlier than the start time, ignored."""
LATE = 4
"""Events whose time belongs to a window already closed, counted in the current one."""
SEEN = 5
"""1 once an event at or after the start time was seen."""
STATE_SIZE = 6

# Why a packing call returned.
CONSUMED = 0
"""Every event of the input was handled."""
STAGING_FULL = 1
"""The index buffer is full; flush it and call again from the returned position."""
RING_FULL = 2
"""The next event belongs to a window the ring has no free slot for; hand windows out."""
STOPPED = 3
"""An event at or after the stop time was reached; nothing after it is wanted."""


@njit(nogil=True, cache=True)
def pack_by_time(
    events: Any,
    begin: int,
    width: int,
    height: int,
    two_channels: bool,
    slot_stride: int,
    n_slots: int,
    t0: int,
    window: int,
    stop: int,
    state: Any,
    indices: Any,
    times: Any,
    store_times: bool,
    n: int,
    slot_count: Any,
    slot_first: Any,
    slot_last: Any,
) -> tuple[int, int, int]:
    """Pack ``events[begin:]`` into ``indices[n:]`` for windows ``[t0 + k·window, + window)``.

    ``stop`` < 0 means no stop time. Returns (position reached, new n, reason).
    """
    current = state[CURRENT]
    limit = state[FIRST_OPEN] + n_slots
    plane = width * height
    capacity = indices.shape[0]
    size = events.shape[0]
    window_start = t0 + current * window
    window_end = window_start + window
    slot = current % n_slots
    base = slot * slot_stride
    # The open slot's bookkeeping lives in locals, written back when the slot changes.
    filled = slot_count[slot]
    first = slot_first[slot]
    last = slot_last[slot]
    seen = state[SEEN]
    reason = CONSUMED
    i = begin
    while i < size:
        event = events[i]
        t = np.int64(event.t)
        if t < t0:
            state[SKIPPED] += 1
            i += 1
            continue
        if stop >= 0 and t >= stop:
            reason = STOPPED
            break
        seen = 1
        if t >= window_end:
            slot_count[slot] = filled
            slot_first[slot] = first
            slot_last[slot] = last
            current = (t - t0) // window
            window_start = t0 + current * window
            window_end = window_start + window
            slot = current % n_slots
            base = slot * slot_stride
            filled = slot_count[slot]
            first = slot_first[slot]
            last = slot_last[slot]
            if current >= limit:
                reason = RING_FULL
                break
        elif t < window_start:
            state[LATE] += 1
        x = np.int64(event.x)
        y = np.int64(event.y)
        if x >= width or y >= height:
            state[DROPPED] += 1
            i += 1
            continue
        if n >= capacity:
            reason = STAGING_FULL
            break
        index = base + y * width + x
        if two_channels and event.on:
            index += plane
        indices[n] = index
        if store_times:
            times[n] = t
        if filled == 0:
            first = t
        filled += 1
        last = t
        n += 1
        i += 1
    slot_count[slot] = filled
    slot_first[slot] = first
    slot_last[slot] = last
    state[CURRENT] = current
    state[SEEN] = seen
    return i, n, reason


@njit(nogil=True, cache=True)
def pack_by_count(
    events: Any,
    begin: int,
    width: int,
    height: int,
    two_channels: bool,
    slot_stride: int,
    n_slots: int,
    t0: int,
    count: int,
    stop: int,
    state: Any,
    indices: Any,
    times: Any,
    store_times: bool,
    n: int,
    slot_count: Any,
    slot_first: Any,
    slot_last: Any,
) -> tuple[int, int, int]:
    """Pack ``events[begin:]`` into ``indices[n:]`` for windows of ``count`` kept events
    (events dropped outside the sensor do not count). Returns (position, new n, reason)."""
    current = state[CURRENT]
    limit = state[FIRST_OPEN] + n_slots
    plane = width * height
    capacity = indices.shape[0]
    size = events.shape[0]
    slot = current % n_slots
    base = slot * slot_stride
    seen = state[SEEN]
    reason = CONSUMED
    i = begin
    while i < size:
        event = events[i]
        t = np.int64(event.t)
        if t < t0:
            state[SKIPPED] += 1
            i += 1
            continue
        if stop >= 0 and t >= stop:
            reason = STOPPED
            break
        seen = 1
        x = np.int64(event.x)
        y = np.int64(event.y)
        if x >= width or y >= height:
            state[DROPPED] += 1
            i += 1
            continue
        if current >= limit:
            reason = RING_FULL
            break
        if n >= capacity:
            reason = STAGING_FULL
            break
        index = base + y * width + x
        if two_channels and event.on:
            index += plane
        indices[n] = index
        if store_times:
            times[n] = t
        filled = slot_count[slot]
        if filled == 0:
            slot_first[slot] = t
        slot_count[slot] = filled + 1
        slot_last[slot] = t
        n += 1
        i += 1
        if filled + 1 == count:
            current += 1
            slot = current % n_slots
            base = slot * slot_stride
    state[CURRENT] = current
    state[SEEN] = seen
    return i, n, reason


@njit(nogil=True, cache=True)
def voxel_weights(
    indices: Any,
    times: Any,
    n: int,
    plane: int,
    slot_stride: int,
    n_slots: int,
    bins: int,
    merged: bool,
    by_time: bool,
    t0: int,
    window: int,
    first_open: int,
    slot_first: Any,
    slot_last: Any,
    weights_low: Any,
    weights_high: Any,
) -> None:
    """Turn packed indices (slot, polarity, pixel) into voxel-grid indices of the lower of
    the two time bins each event touches, with the weights of that bin and the next.

    An event's position in its window, ``(bins - 1) · (t - a) / (b - a)``, runs from 0 at
    ``a`` to ``bins - 1`` at ``b``: the window's first and last µs for time windows, its
    first and last event for count windows. Merged grids carry the polarity as a sign.
    """
    channels = 1 if merged else 2
    # Events of one window sit together, so the slot (and its scale) is recomputed only
    # when an index leaves the current slot's range: no division in the common case.
    low_bound = 0
    high_bound = -1
    slot = 0
    a = 0
    scale = 0.0
    top = np.float64(bins - 1)
    for i in range(n):
        index = np.int64(indices[i])
        if index < low_bound or index > high_bound:
            slot = index // slot_stride
            low_bound = slot * slot_stride
            high_bound = low_bound + slot_stride - 1
            if by_time:
                k = first_open + (slot - first_open % n_slots) % n_slots
                a = t0 + k * window
                span = window - 1
            else:
                a = slot_first[slot]
                span = slot_last[slot] - a
            scale = top / span if bins > 1 and span > 0 else 0.0
        rest = index - low_bound
        on = 1 if rest >= plane else 0
        pixel = rest - on * plane
        position = min(max(np.float64(times[i] - a) * scale, 0.0), top)
        low = 0
        fraction = 0.0
        if bins > 1:
            low = min(np.int64(position), bins - 2)
            fraction = position - low
        sign = 1.0
        channel = on
        if merged:
            channel = 0
            sign = 1.0 if on else -1.0
        indices[i] = low_bound + (low * channels + channel) * plane + pixel
        weights_high[i] = sign * fraction
        weights_low[i] = sign * (1.0 - fraction)


@njit(nogil=True, cache=True)
def add_ones(flat: Any, indices: Any) -> None:
    for i in range(indices.shape[0]):
        flat[indices[i]] += 1


@njit(nogil=True, cache=True)
def add_values(flat: Any, indices: Any, values: Any, offset: int) -> None:
    for i in range(indices.shape[0]):
        flat[indices[i] + offset] += values[i]


@njit(nogil=True, cache=True)
def maximum_at(flat: Any, indices: Any, values: Any) -> None:
    for i in range(indices.shape[0]):
        j = indices[i]
        if values[i] > flat[j]:
            flat[j] = values[i]


# -- finishing a window on the host: one pass instead of several array operations ----------
@njit(nogil=True, cache=True)
def finish_counts(cell: Any, out: Any, high: int, binary: bool) -> None:
    """``out = min(cell, high)`` (or ``cell > 0`` when ``binary``), then clear ``cell``."""
    for i in range(cell.shape[0]):
        value = cell[i]
        if binary:
            value = 1 if value > 0 else 0
        elif value > high:
            value = high
        out[i] = value
        cell[i] = 0


@njit(nogil=True, cache=True)
def finish_signed(off: Any, on: Any, out: Any, low: int, high: int) -> None:
    """``out = clip(on - off, low, high)``, then clear both."""
    for i in range(on.shape[0]):
        value = on[i] - off[i]
        value = min(max(value, low), high)
        out[i] = value
        on[i] = 0
        off[i] = 0


@njit(nogil=True, cache=True)
def finish_copy(cell: Any, out: Any) -> None:
    for i in range(cell.shape[0]):
        out[i] = cell[i]
        cell[i] = 0


@njit(nogil=True, cache=True)
def finish_surface(
    cell: Any, latest: Any, out: Any, t_ref: int, tau: float, oldest: int, never: int
) -> None:
    """Fold the window's latest times into ``latest`` and evaluate the surface at ``t_ref``:
    ``exp((latest - t_ref) / tau)`` for ages up to ``-oldest``, 0 beyond."""
    for i in range(cell.shape[0]):
        if cell[i] > latest[i]:
            latest[i] = cell[i]
        cell[i] = never
        age = latest[i] - t_ref
        if age > 0:
            age = 0
        if age <= oldest:
            out[i] = 0.0
        else:
            out[i] = np.exp(age / tau)
