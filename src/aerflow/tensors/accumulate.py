"""The accumulator engine: packed events in, one array per window out.

Windows accumulate in a preallocated *ring* of slots on the device (window ``k`` in slot
``k % slots``), so one upload and one scatter serve every window an upload touches. Packed
events go to one of two host staging buffers; a flush uploads the filled one (pinned memory
and a ``non_blocking`` copy on a side stream on CUDA) and scatters it into the ring while the
kernels fill the other. A finished window's slot is turned into the output array in place
(saturated or thresholded for integer dtypes, exponentiated for time surfaces) and cleared
for reuse. Nothing is allocated per window unless fresh output arrays are asked for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _kernels as kernels
from ._backend import SATURATION, Backend, Staging
from .representations import Representation, TimeSurface, VoxelGrid

__all__ = ["DEFAULT_CAPACITY", "Engine"]

DEFAULT_CAPACITY = 1 << 20
"""Events packed per staging buffer (two of them): 4 MB of indices each, more for time
surfaces and voxel grids."""

RING_BYTES = 64 << 20
"""Memory the ring of window slots may take on a GPU, at most: many windows per upload and
kernel launch."""

HOST_RING_BYTES = 16 << 20
"""The same in host memory, where a smaller ring stays in cache and costs nothing per
upload anyway."""

MAX_SLOTS = 64

NEVER = -(1 << 62)
"""Latest-event time of a pixel that never saw an event (far enough from any real time
that the difference neither overflows nor decays to anything but 0)."""

_INT32_MAX = (1 << 31) - 1


class Engine:
    """Accumulates packed events into a ring of window slots and finalises slots into frames.

    The driver packs events with the kernels of :mod:`._kernels` into ``staging.arrays``
    (``indices`` and, when needed, ``times``), advancing :attr:`n`, then calls :meth:`flush`
    and :meth:`finalize` for every finished window.
    """

    def __init__(
        self,
        representation: Representation,
        backend: Backend,
        *,
        width: int,
        height: int,
        merged: bool,
        dtype: str,
        slots: int | None = None,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.representation = representation
        self.kind = representation.name
        self.backend = backend
        self.width, self.height, self.merged = width, height, merged
        self.plane = width * height
        self.dtype = dtype
        self.frame_shape = representation.frame_shape(width, height, merged)
        slot_shape = (2, height, width) if self.kind == "signed" else self.frame_shape
        self.two_channels = self.kind in ("signed", "voxel") or not merged
        self.slot_stride = math.prod(slot_shape)
        ring_dtype = {"time_surface": "int64", "voxel": "float32"}.get(self.kind, "int32")
        if self.kind == "counts" and dtype == "float32":
            ring_dtype = "float32"  # exact to 2**24 events a pixel; the slot is the frame
        # Float32 counts and voxel grids need no finishing: the slot itself is handed out
        # (unless a fresh array is asked for) and cleared when the next frame is asked for.
        self.direct = self.kind in ("counts", "voxel") and dtype == "float32"
        self._handed_out: int | None = None
        slot_bytes = self.slot_stride * np.dtype(ring_dtype).itemsize
        if self.slot_stride > _INT32_MAX:
            raise ValueError(
                f"a {width}x{height} {self.kind} frame has too many cells for int32 indices"
            )
        self._ring_dtype = ring_dtype
        self._slot_shape = slot_shape
        self.max_slots = max(
            1, min(MAX_SLOTS, RING_BYTES // slot_bytes, _INT32_MAX // self.slot_stride)
        )
        if slots is not None:
            self.max_slots = max(1, min(int(slots), _INT32_MAX // self.slot_stride))
        self.resize(self.max_slots if slots is not None else min(2, self.max_slots))
        self.store_times = self.kind in ("time_surface", "voxel")
        self.capacity = max(int(capacity), 1)
        fields: dict[str, tuple[str, bool]] = {"indices": ("int32", True)}
        if self.kind == "time_surface":
            fields["times"] = ("int64", True)
        elif self.kind == "voxel":
            fields["times"] = ("int64", False)
            fields["low"] = ("float32", True)
            fields["high"] = ("float32", True)
        self.buffers = [backend.staging(self.capacity, fields) for _ in range(2)]
        self.active = 0
        self.n = 0
        """Events packed into the active staging buffer."""
        self._no_times = np.zeros(1, np.int64)
        self.saturation = SATURATION.get(dtype)
        self.out: Any = None
        self.tau = 1.0
        if isinstance(representation, TimeSurface):
            self.tau = representation.tau_us
            self.latest = backend.full(self.frame_shape, NEVER, "int64")
            self.difference = backend.empty(self.frame_shape, "int64")
            normal = 700 if dtype == "float64" else 87  # exp(-x) is a normal float below
            self.oldest = -math.floor(normal * self.tau)
            self.expired = backend.empty(self.frame_shape, "bool")
            self.surface = (
                None
                if dtype in ("float32", "float64")
                else backend.empty(self.frame_shape, "float32")
            )
        self.bins = representation.bins if isinstance(representation, VoxelGrid) else 1

    def resize(self, slots: int) -> None:
        """A ring of ``slots`` slots. Only while no window holds events: on creation, and
        after a ring-full stop, once every finished window is out."""
        self._handed_out = None
        self.slots = slots
        self.ring = self.backend.full(
            (slots, *self._slot_shape),
            NEVER if self.kind == "time_surface" else 0,
            self._ring_dtype,
        )
        self.flat = self.ring.reshape(-1)
        self.slot_count = np.zeros(slots, np.int64)
        self.slot_first = np.zeros(slots, np.int64)
        self.slot_last = np.zeros(slots, np.int64)

    # -- packing ------------------------------------------------------------------------------
    @property
    def staging(self) -> Staging:
        return self.buffers[self.active]

    @property
    def indices(self) -> npt.NDArray[np.int32]:
        return self.staging.arrays["indices"]

    @property
    def times(self) -> npt.NDArray[np.int64]:
        times: npt.NDArray[np.int64] = self.staging.arrays.get("times", self._no_times)
        return times

    # -- accumulating -------------------------------------------------------------------------
    def flush(
        self,
        count: int | None = None,
        *,
        by_time: bool = False,
        t0: int = 0,
        window: int = 1,
        first_open: int = 0,
    ) -> None:
        """Accumulate the first ``count`` packed events (all by default) into the ring and
        switch staging buffers; events past ``count`` move to the front of the other buffer.

        ``by_time``, ``t0``, ``window`` and ``first_open`` place voxel-grid events in their
        windows (see :func:`._kernels.voxel_weights`).
        """
        self.release()
        n = self.n
        count = n if count is None else count
        staging = self.staging
        arrays = staging.arrays
        if count:
            if self.kind == "voxel":
                kernels.voxel_weights(
                    arrays["indices"],
                    arrays["times"],
                    count,
                    self.plane,
                    self.slot_stride,
                    self.slots,
                    self.bins,
                    self.merged,
                    by_time,
                    t0,
                    window,
                    first_open,
                    self.slot_first,
                    self.slot_last,
                    arrays["low"],
                    arrays["high"],
                )
            device = self.backend.upload(staging, count)
            self._accumulate(device)
            self.backend.consumed(staging)
        self.active ^= 1
        target = self.staging
        self.backend.writable(target)
        tail = n - count
        if tail:
            for name in ("indices", "times"):
                if name in arrays:
                    target.arrays[name][:tail] = arrays[name][count:n]
        self.n = tail

    def _accumulate(self, device: dict[str, Any]) -> None:
        backend = self.backend
        if self.kind == "time_surface":
            backend.maximum_at(self.flat, device["indices"], device["times"])
        elif self.kind == "voxel":
            backend.add_values(self.flat, device["indices"], device["low"], 0)
            if self.bins > 1:
                step = self.plane * (1 if self.merged else 2)
                backend.add_values(self.flat, device["indices"], device["high"], step)
        else:
            backend.add_ones(self.flat, device["indices"])

    # -- finishing windows --------------------------------------------------------------------
    def finalize(self, slot: int, t_ref: int = 0, *, fresh: bool = False) -> Any:
        """The frame of the window in ``slot`` (its reference time ``t_ref`` for time
        surfaces), then clear the slot. Written into one reused array unless ``fresh``."""
        self.release()
        backend = self.backend
        if self.direct and not fresh:
            self._handed_out = slot
            self.slot_count[slot] = 0
            return self.ring[slot]
        if fresh:
            out = backend.empty(self.frame_shape, self.dtype)
        else:
            if self.out is None:
                self.out = backend.empty(self.frame_shape, self.dtype)
            out = self.out
        if self._finish_on_host(slot, t_ref, out):
            self.slot_count[slot] = 0
            return out
        cell = self.ring[slot]
        kind = self.kind
        if kind == "time_surface":
            self._surface(cell, t_ref, out)
        else:
            if kind == "signed":
                backend.sub_(cell[1], cell[0])
                cell = cell[1:]
            if kind == "binary":
                backend.clamp_(cell, None, 1)
            elif self.saturation is not None:
                low, high = self.saturation
                backend.clamp_(cell, low if kind in ("signed", "voxel") else None, high)
            backend.copy_(out, cell)
            backend.fill_(self.ring[slot], 0)
        self.slot_count[slot] = 0
        return out

    def release(self) -> None:
        """Clear the slot last handed out as a frame (the caller is done with it)."""
        if self._handed_out is not None:
            self.backend.fill_(self.ring[self._handed_out], 0)
            self._handed_out = None

    def _finish_on_host(self, slot: int, t_ref: int, out: Any) -> bool:
        """Finish the window with one numba pass when everything is in host memory."""
        backend = self.backend
        target = backend.host(out)
        cell = backend.host(self.ring[slot])
        if target is None or cell is None:
            return False
        flat_out = target.reshape(-1)
        kind = self.kind
        low, high = self.saturation if self.saturation is not None else (-_INT32_MAX, _INT32_MAX)
        if kind == "time_surface":
            latest = backend.host(self.latest)
            assert latest is not None
            kernels.finish_surface(
                cell.reshape(-1),
                latest.reshape(-1),
                flat_out,
                int(t_ref),
                self.tau,
                self.oldest,
                NEVER,
            )
        elif kind == "signed":
            kernels.finish_signed(cell[0].reshape(-1), cell[1].reshape(-1), flat_out, low, high)
        elif kind == "voxel":
            kernels.finish_copy(cell.reshape(-1), flat_out)
        else:
            kernels.finish_counts(cell.reshape(-1), flat_out, int(high), kind == "binary")
        return True

    def _surface(self, cell: Any, t_ref: int, out: Any) -> None:
        backend = self.backend
        backend.maximum_(self.latest, cell)
        backend.fill_(cell, NEVER)
        backend.subtract(self.latest, int(t_ref), self.difference)
        # Ages where exp() leaves the normal floats are cut there and zeroed afterwards:
        # exp() with subnormal or zero results is ten times slower on CPUs (pixels that
        # never fired are all of them). The error is below 1e-37.
        backend.clamp_(self.difference, self.oldest, 0)
        backend.less_equal(self.difference, self.oldest, self.expired)
        target = out if self.surface is None else self.surface
        backend.copy_(target, self.difference)
        backend.div_(target, self.tau)
        backend.exp_(target)
        backend.zero_where(target, self.expired)
        if target is not out:
            backend.copy_(out, target)
