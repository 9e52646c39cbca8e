"""The time span and coordinate extent of an events array, in one pass.

Writers check every packet's coordinates and times before encoding it; one numba pass over
the packed records costs a fraction of NumPy's one strided reduction per field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._jit import njit

__all__ = ["event_extent"]


def event_extent(events: npt.NDArray[Any]) -> tuple[int, int, int, int]:
    """First and last time, largest x and largest y of ``events`` (EVENTS_DTYPE, non-empty)."""
    if len(events) == 0:
        raise ValueError("an empty events array has no extent")
    t_min, t_max, x_max, y_max = _event_extent(events)
    return int(t_min), int(t_max), int(x_max), int(y_max)


@njit(nogil=True, cache=True)
def _event_extent(events: Any) -> tuple[int, int, int, int]:
    t_min = t_max = np.uint64(events[0].t)
    x_max = y_max = 0
    for i in range(events.size):
        event = events[i]
        t = np.uint64(event.t)
        if t < t_min:
            t_min = t
        elif t > t_max:
            t_max = t
        x_max = max(x_max, int(event.x))
        y_max = max(y_max, int(event.y))
    return t_min, t_max, x_max, y_max
