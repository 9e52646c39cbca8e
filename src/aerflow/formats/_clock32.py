"""Writing 32-bit timestamps that readers unwrap (DAT, AEDAT 2.0): a drop of more than
2**31 µs between consecutive times is read as one counter wrap."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

HALF = np.int64(1) << 31
WRAP = np.int64(1) << 32
MAX_ORIGIN = 1 << 62
"""The largest time origin a header may hold (readers refuse larger ones)."""
MAX_RELATIVE = 1 << 62
"""Times are stored at most this far after the origin: readers unwrap into int64 and add the
origin, and both sums then stay below 2**63."""


class Clock32Writer:
    """Turns absolute times into the 32-bit values a writer stores, and refuses times that a
    reader's unwrap would not give back. Keeps its place across ``write()`` calls."""

    def __init__(self, format_label: str) -> None:
        self.format_label = format_label
        self._previous = np.int64(-1)  # the last 32-bit time written, -1 before the first
        self._offset = np.int64(0)

    @property
    def state(self) -> npt.NDArray[np.int64]:
        """(the last 32-bit time written or -1, the offset of its counter loops), for a kernel
        that writes times by the same rule; :meth:`advance` takes its result back."""
        return np.array([self._previous, self._offset], np.int64)

    def advance(self, state: npt.NDArray[np.int64]) -> None:
        self._previous, self._offset = np.int64(state[0]), np.int64(state[1])

    def low_times(self, times: npt.NDArray[np.uint64], origin: int) -> npt.NDArray[np.int64]:
        """``times - origin`` modulo 2**32, checked against the unwrap rule and the limits
        above before anything is written."""
        if len(times) == 0:
            return np.empty(0, np.int64)
        first, last = int(times.min()), int(times.max())
        if origin > MAX_ORIGIN:
            raise ValueError(
                f"{self.format_label} cannot store t={first} µs: the file's time origin (a "
                "whole second before its first time) must lie in 0..2**62 µs"
            )
        if first < origin:
            raise ValueError(f"timestamp {first} µs is before the time origin {origin} µs")
        if last - origin >= MAX_RELATIVE:
            raise ValueError(
                f"{self.format_label} cannot store t={last} µs: it lies 2**62 µs or more after "
                f"the file's time origin {origin} µs"
            )
        # Subtracting in uint64 keeps times of 2**63 µs and more exact.
        since: npt.NDArray[np.uint64] = times.astype(np.uint64) - np.uint64(origin)
        relative = since.astype(np.int64)
        low = relative & 0xFFFFFFFF
        previous = np.concatenate(([self._previous], low[:-1]))
        wrapped = (low < previous) & (previous - low > HALF) & (previous >= 0)
        offsets = self._offset + WRAP * np.cumsum(wrapped)
        bad = np.flatnonzero(offsets + low != relative)
        if len(bad):
            raise ValueError(
                f"{self.format_label} keeps 32-bit times: item {int(bad[0])} "
                f"(t={int(relative[bad[0]]) + origin} µs) is more than 2**31 µs from the "
                "one before it"
            )
        self._previous = low[-1]
        self._offset = offsets[-1]
        return low
