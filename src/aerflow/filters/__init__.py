"""Filters: packet-to-packet steps chained onto a stream (``stream.filter(...)``, the
stream's shortcut methods, ``stream.apply(NAME, ...)`` or ``aerflow ... filter NAME``).

Each filter declares itself once, on its class (``@declares("filter", NAME, help, options)``):
the command line's ``filter`` blocks, their ``--help``, the stream's shortcuts and the
listings are read from that declaration, so a new filter is one class in one module here,
imported below.

A filter sees the upstream :class:`~aerflow.stream.Properties` once, before the first
packet, and then every packet in order; it may hold state across packets (the refractory
and denoise maps, a partly filled chunk). Side channels (triggers, IMU samples, frames)
travel with the events: time filters cut them by time, geometry filters transform frames.

One module per job: :mod:`.timing` (chunk, time-slice, shift-time), :mod:`.side_channels`
(triggers, imu, frames), :mod:`.geometry` (crop, flip, transpose, the sensor size),
:mod:`.selection` (polarity, refractory, denoise, decimate); ``pace``, which waits on the
wall clock, is here. Every filter is importable from ``aerflow.filters``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .._stopping import pause
from ..events import Packet
from ..properties import Properties
from ..registry import Option, declares
from ..stream import Filter

# The filters register as their modules are imported: in this order, which is the order
# `aerflow filter --help` and the error naming the known filters list them.
from .timing import ChunkByCount, ChunkByDuration, ShiftTime, TimeSlice

# isort: split
from .side_channels import SIDE_CHANNELS, SideChannel

# isort: split
from .geometry import Crop, Flip, SensorSize, Transpose

# isort: split
from .selection import Decimate, Denoise, Polarity, Refractory

__all__ = [
    "SIDE_CHANNELS",
    "ChunkByCount",
    "ChunkByDuration",
    "Crop",
    "Decimate",
    "Denoise",
    "Filter",
    "Flip",
    "Pace",
    "Polarity",
    "Refractory",
    "SensorSize",
    "ShiftTime",
    "SideChannel",
    "TimeSlice",
    "Transpose",
]


# Pace reads the wall clock through this module's `time` (tests replace it here).
@declares(
    "filter",
    "pace",
    "release events in step with their time, as if live",
    (Option("speed", float, "times real time", default=1.0),),
    lambda speed=1.0: Pace(speed),
)
class Pace(Filter):
    """Release each packet no sooner than its last event's time, ``speed`` times real time,
    counted from the first event: a recording replayed as if live. Packets are split into
    pieces of at most ``piece`` µs of event time so that nothing waits long."""

    def __init__(self, speed: float = 1.0, piece: int | str = "10ms") -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._chunker = ChunkByDuration(piece)
        self._start: tuple[float, int] | None = None

    def properties(self, upstream: Properties) -> Properties:
        return upstream.derived(live=True)

    def apply(self, packet: Packet) -> Iterable[Packet]:
        for piece in self._chunker.apply(packet):
            self._wait(piece)
            yield piece

    def finish(self) -> Iterable[Packet]:
        for piece in self._chunker.finish():
            self._wait(piece)
            yield piece

    def _wait(self, packet: Packet) -> None:
        if not len(packet.events):
            return
        last = int(packet.events["t"][-1])
        if self._start is None:
            self._start = (time.monotonic(), int(packet.events["t"][0]))
        wall, first = self._start
        delay = wall + (last - first) / 1e6 / self.speed - time.monotonic()
        if delay > 0:
            pause(delay)  # ends at once when the thread running the stream is stopped
