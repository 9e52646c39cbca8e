"""A live accumulator: packets in from any thread, a frame of everything since the last read.

For cameras and network streams, where the window the user wants is the wall-clock time
between two reads (AEStream's ``read()``), not a span of event time. A reader thread calls
:meth:`Accumulator.add` for every packet; the consumer calls :meth:`Accumulator.read` when it
wants a frame. Packets are packed by a numba kernel that releases the GIL, and uploaded and
scattered on the device in chunks, so adding stays cheap and memory stays bounded however
long the consumer waits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import Packet, as_events
from . import _kernels as kernels
from ._backend import dtype_name, make_backend
from .accumulate import NEVER, Engine
from .representations import Representation, resolve
from .sources import sensor_size_of

__all__ = ["Accumulator"]

_NEVER_FULL = np.iinfo(np.int64).max
"""A window event count never reached: everything goes to one window until read."""


class Accumulator:
    """Accumulates events between reads into one ``(P, H, W)`` frame on a device.

    ``representation`` is ``"counts"``, ``"signed"``, ``"binary"`` or ``"time_surface"``
    (voxel grids need windows in event time: use :func:`~aerflow.tensors.frames`). A time
    surface keeps its state across reads and is evaluated at the latest event added. Other
    arguments are those of :func:`~aerflow.tensors.frames`; ``capacity`` is how many events
    are packed before they are uploaded to the device.

    :meth:`add` and :meth:`read` may be called from different threads.
    """

    def __init__(
        self,
        sensor_size: tuple[int, int],
        *,
        representation: str | Representation = "counts",
        device: Any = "cpu",
        dtype: Any = None,
        merge_polarity: bool = False,
        tau: int | float | str | None = None,
        capacity: int = 1 << 16,
    ) -> None:
        self.sensor_size = sensor_size_of(None, sensor_size)
        self.representation = resolve(representation, tau=tau)
        if self.representation.name == "voxel":
            raise ValueError(
                "voxel grids need windows in event time: use aerflow.tensors.frames(), not "
                "an Accumulator"
            )
        self.dtype = dtype_name("float32" if dtype is None else dtype)
        self.representation.check_dtype(self.dtype)
        backend = make_backend(device)
        backend.dtype(self.dtype)
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        width, height = self.sensor_size
        self._engine = Engine(
            self.representation,
            backend,
            width=width,
            height=height,
            merged=bool(merge_polarity),
            dtype=self.dtype,
            slots=1,
            capacity=capacity,
        )
        self.shape: tuple[int, ...] = self._engine.frame_shape
        self._state = np.zeros(kernels.STATE_SIZE, np.int64)
        self._lock = threading.Lock()
        self._latest = 0

    @property
    def dropped(self) -> int:
        """Events dropped so far because their coordinates lie outside the sensor."""
        return int(self._state[kernels.DROPPED])

    @property
    def pending(self) -> int:
        """Events added since the last :meth:`read`."""
        return int(self._engine.slot_count[0])

    def add(self, events: Packet | npt.ArrayLike) -> None:
        """Accumulate a packet (or an events array, in any layout :func:`~aerflow.as_events`
        takes). Thread-safe."""
        array = as_events(events.events if isinstance(events, Packet) else events)
        if not len(array):
            return
        engine = self._engine
        with self._lock:
            position = 0
            while position < len(array):
                position, engine.n, reason = kernels.pack_by_count(
                    array,
                    position,
                    engine.width,
                    engine.height,
                    engine.two_channels,
                    engine.slot_stride,
                    1,
                    0,
                    _NEVER_FULL,
                    -1,
                    self._state,
                    engine.indices,
                    engine.times,
                    engine.store_times,
                    engine.n,
                    engine.slot_count,
                    engine.slot_first,
                    engine.slot_last,
                )
                if reason == kernels.STAGING_FULL:
                    engine.flush()

    def extend(self, source: Iterable[Packet] | Iterable[npt.ArrayLike]) -> None:
        """Add every packet of ``source`` (a reader loop for a thread: ``threading.Thread(
        target=accumulator.extend, args=(stream,))``)."""
        for packet in source:
            self.add(packet)

    def read(self) -> Any:
        """A new frame of every event added since the last read; the accumulator restarts
        from zero (a time surface keeps its memory of past events)."""
        engine = self._engine
        with self._lock:
            engine.flush()
            if engine.slot_count[0]:
                self._latest = max(self._latest, int(engine.slot_last[0]))
            return engine.finalize(0, self._latest, fresh=True)

    def reset(self) -> None:
        """Forget everything added (and a time surface's memory)."""
        engine = self._engine
        with self._lock:
            engine.n = 0
            engine.finalize(0, 0, fresh=True)
            if engine.kind == "time_surface":
                engine.backend.fill_(engine.latest, NEVER)
            self._latest = 0
