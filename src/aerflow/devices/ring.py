"""The ring of USB buffers between the transport and the camera's reader.

The transport's thread hands each completed bulk transfer to :meth:`Ring.push` (a
:data:`~aerflow.devices.usb.TransferCallback`), which copies its bytes into the next free slot
of one NumPy array allocated once (``ring_length`` × ``buffer_length`` bytes: nothing is
allocated while streaming). One reader takes the slots in order with :meth:`Ring.next`.

When every slot is taken (the reader fell behind), incoming data is discarded and counted:
the *clutch* is engaged until a slot frees, and the first buffer stored after the gap is
flagged so the reader can say where data resumes. Memory never grows. A stream's terminal
status (the device went away, the recording ended, the stream was cancelled) reaches the
reader after every buffer received before it, as :class:`RingEnded`.

Defaults: 128 KiB buffers (the USB transfer size), 32 transfers in flight, and 512 buffers
in the ring, i.e. 64 MiB per camera (about 160 ms of an EVK4 at its USB 3 peak, seconds at
ordinary event rates). The pages are touched, and so become resident, only as the ring
fills. neuromorphic-drivers reserves 512 MiB; pass ``ring_length`` to change it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .usb import TransferStatus

__all__ = [
    "DEFAULT_BUFFER_LENGTH",
    "DEFAULT_IN_FLIGHT",
    "DEFAULT_RING_LENGTH",
    "Ring",
    "RingBuffer",
    "RingEnded",
]

log = logging.getLogger(__name__)

DEFAULT_BUFFER_LENGTH = 128 * 1024
"""Bytes per USB transfer and per ring slot."""
DEFAULT_IN_FLIGHT = 32
"""Bulk transfers kept queued on the data endpoint."""
DEFAULT_RING_LENGTH = 512
"""Slots in the ring: 512 × 128 KiB = 64 MiB."""

_CONTINUING = (TransferStatus.COMPLETED, TransferStatus.TIMED_OUT)


class RingEnded(Exception):
    """The stream ended with ``status`` and every buffer before it has been read."""

    def __init__(self, status: TransferStatus) -> None:
        super().__init__(f"the stream ended: {status.value}")
        self.status = status


@dataclass(frozen=True, slots=True)
class RingBuffer:
    """Slots handed to the reader; ``data`` is a view into the ring, valid until the
    reader's next call to :meth:`Ring.next` or :meth:`Ring.release`."""

    data: npt.NDArray[np.uint8]
    system_time: float
    """``time.time()`` when the transport delivered the first slot's bytes."""
    first_after_gap: bool
    """Buffers were dropped just before this one."""
    buffers: int = 1
    """USB buffers (slots) in ``data``: consecutive, with no gap between them."""


class Ring:
    """A fixed ring of ``ring_length`` buffers of ``buffer_length`` bytes; one writer (the
    transport's thread, through :meth:`push`) and one reader (:meth:`next`).

    With ``lossless``, a full ring makes :meth:`push` wait for the reader instead of
    discarding data. Only emulated devices playing "as fast as the consumer takes it" use
    that: a real transport must never block.
    """

    def __init__(
        self,
        buffer_length: int = DEFAULT_BUFFER_LENGTH,
        ring_length: int = DEFAULT_RING_LENGTH,
        *,
        lossless: bool = False,
    ) -> None:
        if buffer_length < 1:
            raise ValueError(f"buffer_length must be positive, not {buffer_length}")
        if ring_length < 2:
            raise ValueError(f"ring_length must be at least 2, not {ring_length}")
        self.buffer_length = buffer_length
        self.ring_length = ring_length
        self.lossless = lossless
        self._data = np.empty((ring_length, buffer_length), dtype=np.uint8)
        self._slots = [row.data for row in self._data]
        self._lengths = [0] * ring_length
        self._times = [0.0] * ring_length
        self._after_gap = [False] * ring_length
        self._condition = threading.Condition(threading.Lock())
        self._write = 0
        self._read = 0
        self._count = 0
        self._held = 0  # slots handed to the reader and not yet given back
        self._clutch = False
        self._gap = False
        self._end: TransferStatus | None = None
        self._closed = False
        self.dropped_buffers = 0
        """Buffers discarded because the ring was full (a running total)."""
        self.dropped_bytes = 0
        """Bytes discarded because the ring was full (a running total)."""

    # -- properties ---------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """The ring's memory, fixed at construction."""
        return int(self._data.nbytes)

    @property
    def backlog(self) -> int:
        """Buffers stored and not yet handed to the reader."""
        return self._count

    @property
    def clutch_engaged(self) -> bool:
        """True while incoming data is being discarded."""
        return self._clutch

    @property
    def ended(self) -> TransferStatus | None:
        """The stream's terminal status once the transport sent one (buffers may remain)."""
        return self._end

    # -- writer -------------------------------------------------------------------------------
    def push(self, data: memoryview, status: TransferStatus) -> None:
        """Store one completed transfer (the :data:`~aerflow.devices.usb.TransferCallback`).

        The bytes are copied into the next free slot (several slots if there are more than
        ``buffer_length``); any status but COMPLETED or TIMED_OUT ends the stream after them.
        """
        length = data.nbytes
        if length:
            if data.ndim != 1 or data.format not in ("B", "b", "c"):
                data = data.cast("B")
            for start in range(0, length, self.buffer_length):
                self._store(data[start : start + self.buffer_length])
        if status not in _CONTINUING:
            with self._condition:
                if self._end is None:
                    self._end = status
                self._condition.notify_all()

    def _store(self, piece: memoryview) -> None:
        length = len(piece)
        with self._condition:
            if self.lossless:
                while self._count + self._held >= self.ring_length and not self._closed:
                    self._condition.wait()
            if self._closed or self._end is not None:
                return
            if self._count + self._held >= self.ring_length:
                if not self._clutch:
                    self._clutch = True
                    log.warning(
                        "the reader fell behind: discarding USB data until the ring "
                        "(%d buffers) has room",
                        self.ring_length,
                    )
                self._gap = True
                self.dropped_buffers += 1
                self.dropped_bytes += length
                return
            slot = self._write
        # The slot is free and only this thread writes: copy without holding the lock.
        self._slots[slot][:length] = piece
        now = time.time()
        with self._condition:
            self._lengths[slot] = length
            self._times[slot] = now
            self._after_gap[slot] = self._gap
            self._gap = False
            self._clutch = False
            self._write = (slot + 1) % self.ring_length
            self._count += 1
            self._condition.notify_all()

    # -- reader -------------------------------------------------------------------------------
    def next(self, timeout: float | None = None, most: int = 1) -> RingBuffer | None:
        """The next buffer, waiting at most ``timeout`` seconds (None: until one comes).

        With ``most`` > 1, buffers already waiting that continue it are handed over with it
        as one view, up to ``most`` in all: as many as follow without a gap and lie next to
        it in memory (full slots, up to the ring's end), so that nothing is copied.

        Returns None on timeout; raises :class:`RingEnded` once the buffers received before
        the stream's end have all been read (or at once after :meth:`close`). Releases the
        buffers returned by the previous call.
        """
        with self._condition:
            self._give_back()
            if self._count == 0:
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._count == 0:
                    if self._closed:
                        raise RingEnded(self._end or TransferStatus.CANCELLED)
                    if self._end is not None:
                        raise RingEnded(self._end)
                    if deadline is None:
                        self._condition.wait()
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._condition.wait(remaining)
            if self._closed:
                raise RingEnded(self._end or TransferStatus.CANCELLED)
            first = self._read
            last = first
            size = self._lengths[first]
            limit = min(most, self._count, self.ring_length - first)
            while (
                last - first + 1 < limit
                and self._lengths[last] == self.buffer_length
                and not self._after_gap[last + 1]
            ):
                last += 1
                size += self._lengths[last]
            taken = last - first + 1
            self._read = (last + 1) % self.ring_length
            self._count -= taken
            self._held = taken
            data = self._data[first : last + 1].reshape(-1)[:size]
            return RingBuffer(data, self._times[first], self._after_gap[first], taken)

    def release(self) -> None:
        """Give back the buffers the reader holds (their view must no longer be used)."""
        with self._condition:
            self._give_back()

    def _give_back(self) -> None:
        if self._held:
            self._held = 0
            if self.lossless:
                self._condition.notify_all()

    def close(self) -> None:
        """Stop: the reader gets :class:`RingEnded` at once, and later data is ignored (a
        writer waiting for room in a lossless ring is released)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def __repr__(self) -> str:
        return (
            f"Ring({self.ring_length} × {self.buffer_length} B, backlog {self._count}, "
            f"dropped {self.dropped_buffers})"
        )
