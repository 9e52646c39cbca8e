"""What each iteration of a camera reports beside its packet: timing, backlog, drops and gaps."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RingStatus", "Status"]


@dataclass(frozen=True, slots=True)
class RingStatus:
    """The ring of USB buffers as seen by one iteration that received data.

    ``overflow_indices`` locates, in the iteration's packet, the data that follows a gap (USB
    buffers dropped because the consumer fell behind): event indices in ``packet.events`` for
    decoded packets, byte offsets in the returned bytes in raw mode. The decoder keeps its
    state across a gap, so times stay monotonic, but events in the gap are lost.
    """

    system_time: float
    """Wall clock (``time.time()``) when the first USB buffer merged into the packet arrived."""
    backlog: int
    """USB buffers received and not yet handed to the consumer, after this iteration."""
    buffers: int
    """USB buffers merged into this iteration's packet."""
    clutch_engaged: bool
    """True while the ring is full and incoming buffers are being discarded."""
    dropped_buffers: int
    """USB buffers discarded since the camera was opened (a running total)."""
    overflow_indices: tuple[int, ...] = ()
    """Where, in this packet, data resumes after dropped buffers."""
    dropped_bytes: int = 0
    """Bytes discarded since the camera was opened (a running total)."""


@dataclass(frozen=True, slots=True)
class Status:
    """Returned with every packet: ``ring`` is None when the iteration timed out empty."""

    system_time: float
    """Wall clock (``time.time()``) when the iteration returned."""
    ring: RingStatus | None
    current_t: int | None
    """The decoder's time (µs, the camera's clock) after the packet; None in raw mode."""

    def delay(self) -> float | None:
        """Seconds between the arrival of the packet's first USB buffer and its delivery
        (None when nothing arrived)."""
        if self.ring is None:
            return None
        return self.system_time - self.ring.system_time
