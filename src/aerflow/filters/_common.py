"""What the filters of this package share: the lazily loaded kernels, the time option's
help, packet helpers and the base of the filters that need the sensor size."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import Packet
from ..properties import Properties
from ..stream import Filter


def _kernels() -> ModuleType:
    """The numba kernels of the stateful filters, imported on first use: declaring and
    listing the filters (``aerflow filter --help``) loads no numba."""
    from .. import _filter_kernels

    return _filter_kernels


_TIME_HELP = "a time such as 250us, 10ms, 2.5s or 1:02.5"


def _has_data(packet: Packet) -> bool:
    return bool(len(packet.events) or len(packet.triggers) or len(packet.imu) or packet.frames)


def _time_mask(
    packet: Packet, keep: npt.NDArray[np.bool_], start: int | None, end: int | None
) -> Packet:
    """``packet`` with events chosen by ``keep`` and side channels by ``start <= t < end``."""

    def in_range(t: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        mask = np.ones(len(t), bool)
        if start is not None:
            mask &= t >= start
        if end is not None:
            mask &= t < end
        return mask

    frames = tuple(
        f for f in packet.frames if (start is None or f.t >= start) and (end is None or f.t < end)
    )
    return Packet(
        packet.events[keep],
        packet.triggers[in_range(packet.triggers["t"])],
        packet.imu[in_range(packet.imu["t"])],
        frames,
    )


def _with_events(packet: Packet, events: npt.NDArray[Any]) -> Packet:
    return Packet(events, packet.triggers, packet.imu, packet.frames)


class _SensorFilter(Filter):
    """A filter that needs the sensor size; it drops (and counts) events outside it."""

    def __init__(self) -> None:
        self.width = self.height = 0
        self.dropped_out_of_range = 0

    def properties(self, upstream: Properties) -> Properties:
        if upstream.sensor_size is None:
            raise ValueError(
                f"{type(self).__name__} needs the sensor size, which this source does not give"
            )
        self.width, self.height = upstream.sensor_size
        return upstream.derived()

    def _inside(self, events: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        inside: npt.NDArray[np.bool_] = (events["x"] < self.width) & (events["y"] < self.height)
        self.dropped_out_of_range += int(len(events) - np.count_nonzero(inside))
        return inside
