"""Filters that choose events one by one: by polarity, and by each pixel's history (the
refractory period, the background-activity filter, decimation; numba kernels over a map
of the sensor, loaded on first use)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import Packet, parse_time
from ..registry import Option, declares
from ..stream import Filter
from ._common import _TIME_HELP, _has_data, _kernels, _SensorFilter, _with_events

__all__ = ["Decimate", "Denoise", "Polarity", "Refractory"]


class _PixelHistoryFilter(_SensorFilter):
    """Keeps or drops each event by its pixel's history: a map of the sensor made on the
    first packet (by default the time each pixel last kept an event, at first never), and a
    kernel that marks ``keep`` and updates the map."""

    def __init__(self) -> None:
        super().__init__()
        self._map: npt.NDArray[np.int64] | None = None

    def _new_map(self) -> npt.NDArray[np.int64]:
        return np.full((self.height, self.width), _kernels().NEVER, np.int64)

    def _mark(self, events: npt.NDArray[Any], history: npt.NDArray[np.int64], keep: Any) -> None:
        raise NotImplementedError

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self._map is None:
            self._map = self._new_map()
        events = packet.events
        keep = np.empty(len(events), bool)
        self._mark(events, self._map, keep)
        self._inside(events)
        out = _with_events(packet, events[keep])
        return [out] if _has_data(out) else []


@declares(
    "filter",
    "polarity",
    "keep only ON or only OFF events",
    (Option("keep", str, "on or off", positional=True, required=True, choices=("on", "off")),),
)
class Polarity(Filter):
    """Only ON (``"on"``) or only OFF (``"off"``) events."""

    def __init__(self, keep: str) -> None:
        if keep not in ("on", "off"):
            raise ValueError("keep must be 'on' or 'off'")
        self.keep = keep == "on"

    def apply(self, packet: Packet) -> Iterable[Packet]:
        events = packet.events
        out = _with_events(packet, events[events["on"] == self.keep])
        return [out] if _has_data(out) else []


@declares(
    "filter",
    "refractory",
    "drop events less than PERIOD after the last kept one of the same pixel",
    (Option("period", str, _TIME_HELP, positional=True, required=True),),
)
class Refractory(_PixelHistoryFilter):
    """Drop an event when its pixel kept one less than ``period`` µs before."""

    def __init__(self, period: int | str) -> None:
        super().__init__()
        self.period = parse_time(period)

    def _mark(self, events: npt.NDArray[Any], history: npt.NDArray[np.int64], keep: Any) -> None:
        _kernels().refractory_mask(
            events["t"], events["x"], events["y"], history, self.period, keep
        )


@declares(
    "filter",
    "denoise",
    "drop events no neighbouring pixel saw coming within WINDOW",
    (Option("window", str, _TIME_HELP, default="10ms"),),
)
class Denoise(_PixelHistoryFilter):
    """Background-activity filter: keep an event when one of its 8 neighbours fired at most
    ``window`` µs before it. Isolated noise (and lone hot pixels) goes; edges stay."""

    def __init__(self, window: int | str = "10ms") -> None:
        super().__init__()
        self.window = parse_time(window)

    def _mark(self, events: npt.NDArray[Any], history: npt.NDArray[np.int64], keep: Any) -> None:
        _kernels().denoise_mask(events["t"], events["x"], events["y"], history, self.window, keep)


@declares(
    "filter",
    "decimate",
    "keep every N-th event of each pixel",
    (Option("factor", int, "N", positional=True, required=True),),
)
class Decimate(_PixelHistoryFilter):
    """Keep every ``factor``-th event of each pixel."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError("factor must be at least 1")
        self.factor = int(factor)

    def _new_map(self) -> npt.NDArray[np.int64]:
        return np.zeros((self.height, self.width), np.int64)  # events seen per pixel

    def _mark(self, events: npt.NDArray[Any], history: npt.NDArray[np.int64], keep: Any) -> None:
        _kernels().decimate_mask(events["x"], events["y"], history, self.factor, keep)
