"""The memory readers decode from and into: windows of a file mapped read-only (their pages
dropped once decoded), events arrays mapped anonymously with huge pages, in-place moves."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import EVENTS_DTYPE

_MAPPED_MIN_EVENTS = 1 << 20


def _allocate_events(capacity: int) -> npt.NDArray[Any]:
    """An events array to fill, large ones mapped anonymously and asked for huge pages.

    The first touch of fresh memory is most of a whole-file read's cost: 266 MB (20.5 M
    events) in 4 KiB pages is 65,000 page faults, a steady 0.12 CPU-s on the project's VM,
    more than decoding them (0.05 s); in 2 MiB transparent huge pages, as NumPy (and so
    most peers) allocates, it is 130 faults and 0.02-0.05 CPU-s, unless the memory has to
    come back from the VM's host (free for a few seconds), when it took 0.2-0.5 s for
    huge-page users alike. Pages past the filled part are never touched, so sizing
    generously costs little.
    """
    if capacity < _MAPPED_MIN_EVENTS:
        return np.empty(capacity, EVENTS_DTYPE)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    buffer = mmap.mmap(-1, capacity * EVENTS_DTYPE.itemsize, flags=flags)
    _advise(buffer, getattr(mmap, "MADV_HUGEPAGE", None))
    return np.frombuffer(buffer, EVENTS_DTYPE)


def _advise(
    buffer: mmap.mmap, option: int | None, start: int = 0, length: int | None = None
) -> None:
    """``madvise`` ``length`` bytes (all by default) from ``start`` where the system has
    ``option``; a hint only, so refusals are ignored."""
    if option is None or length == 0:
        return
    with contextlib.suppress(OSError, ValueError):
        if length is None:
            buffer.madvise(option, start)
        else:
            buffer.madvise(option, start, length)


def _move_down(data: npt.NDArray[np.uint8], target: int, source: int, length: int) -> None:
    """Copy ``length`` bytes of ``data`` from ``source`` to an overlapping ``target`` below
    it, in place, with C's memmove (NumPy would copy the overlapping block to a temporary
    first, and a loop of byte copies runs at a tenth of memmove's speed)."""
    if not 0 <= target <= source or source + length > data.nbytes or length < 0:
        raise ValueError(f"cannot move {length} bytes from {source} to {target}")
    if not data.flags.c_contiguous:
        raise ValueError("the array must be contiguous")
    address = data.ctypes.data
    ctypes.memmove(address + target, address + source, length)


def _grow(events: npt.NDArray[Any], filled: int) -> npt.NDArray[Any]:
    larger = _allocate_events(len(events) + len(events) // 2 + (1 << 16))
    larger[:filled] = events[:filled]
    return larger


class _Window:
    """The whole words among ``length`` bytes at ``offset`` of a file, mapped read-only.

    Words need not be aligned in memory (headers have any length); the kernels only load
    them one at a time, which every supported CPU does at any address.
    """

    def __init__(self, fileno: int, offset: int, length: int, word: np.dtype[Any]) -> None:
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        self._map = mmap.mmap(
            fileno, offset - start + length, offset=start, access=mmap.ACCESS_READ
        )
        self._offset = offset - start
        self._itemsize = word.itemsize
        self.view: npt.NDArray[Any] = np.frombuffer(
            self._map, word, count=length // word.itemsize, offset=self._offset
        )

    def release(self, first: int, end: int) -> None:
        """Drop the mapped pages that lie wholly inside words ``first`` to ``end`` from the
        process (they stay in the page cache, and would be mapped again if read)."""
        page = mmap.PAGESIZE
        low = -(-(self._offset + first * self._itemsize) // page) * page
        high = (self._offset + end * self._itemsize) // page * page
        if high > low:
            _advise(self._map, mmap.MADV_DONTNEED, low, high - low)

    def close(self) -> None:
        del self.view
        # BufferError: a traceback still refers to a view (an error is on its way up); the
        # mapping goes when that last view does.
        with contextlib.suppress(BufferError):
            self._map.close()
