"""A synthetic event sensor: deterministic, seeded scenes plus noise, finite or endless.

The bundled default input: it needs no camera, no file and no network. Scenes are periodic
and exact: every pixel an edge sweeps over fires at the moment the edge crosses its centre
(ON on a leading edge, OFF on a trailing one), so the same arguments always give the same
events, whatever the packet duration.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ._checks import check_dimension, check_int
from .events import EVENTS_DTYPE, Packet, concatenate_packets, parse_time
from .properties import Properties
from .stream import Stream

__all__ = ["PATTERNS", "SyntheticSensor", "rotating_bar"]

PATTERNS = ("bar", "dots")


class _Scene:
    """Pixels that fire periodically: pixel i fires at ``phase[i] + k * period`` (µs).

    Pixels are kept sorted by phase, so the firings in any time slice are a few contiguous
    runs of them, already in time order.
    """

    def __init__(
        self,
        x: npt.NDArray[Any],
        y: npt.NDArray[Any],
        on: npt.NDArray[np.bool_],
        phase: npt.NDArray[np.float64],
        period: float,
    ) -> None:
        order = np.argsort(phase, kind="stable")
        self.x, self.y, self.on = x[order], y[order], on[order]
        self.phase, self.period = phase[order], period

    def firings(self, start: int, stop: int) -> _Columns:
        """Every firing with ``start <= t < stop`` in time order, times rounded down to µs."""
        parts = []
        for k in range(math.floor(start / self.period) - 1, math.ceil(stop / self.period) + 1):
            offset = k * self.period
            # One index of slack each side; the exact choice is made on the times themselves,
            # computed the same way whatever the slice, so no firing is lost or repeated.
            low = max(int(np.searchsorted(self.phase, start - offset)) - 1, 0)
            high = int(np.searchsorted(self.phase, stop - offset)) + 1
            if low >= high:
                continue
            t = np.floor(self.phase[low:high] + offset).astype(np.uint64)
            keep = (t >= start) & (t < stop)
            parts.append(
                (t[keep], self.x[low:high][keep], self.y[low:high][keep], self.on[low:high][keep])
            )
        return _concatenate(parts)


_Columns = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]


def _concatenate(parts: list[_Columns]) -> _Columns:
    if not parts:
        return (
            np.empty(0, np.uint64),
            np.empty(0, np.uint16),
            np.empty(0, np.uint16),
            np.empty(0, bool),
        )
    t, x, y, on = (np.concatenate(column) for column in zip(*parts, strict=True))
    return t, x, y, on


def _grid(width: int, height: int) -> tuple[npt.NDArray[Any], ...]:
    ys, xs = np.mgrid[0:height, 0:width]
    dx = xs - (width - 1) / 2
    dy = ys - (height - 1) / 2
    return xs.ravel(), ys.ravel(), np.hypot(dx, dy).ravel(), np.arctan2(dy, dx).ravel()


def _bar_scene(width: int, height: int, turns_per_second: float) -> _Scene:
    """A bar through the centre, spinning: each pixel in the disc is crossed twice a turn by
    the leading (ON) and the trailing (OFF) edge."""
    xs, ys, radius, angle = _grid(width, height)
    inside = radius < 0.4 * min(width, height)
    x, y, angle = xs[inside], ys[inside], angle[inside] % np.pi
    period = 1e6 / turns_per_second / 2  # the bar looks the same after half a turn
    half_width = np.pi / 60
    phases, ons = [], []
    for edge, on in ((half_width, True), (-half_width, False)):
        phases.append(((angle - edge) % np.pi) / np.pi * period)
        ons.append(np.full(len(x), on))
    return _Scene(
        np.tile(x, 2).astype(np.uint16),
        np.tile(y, 2).astype(np.uint16),
        np.concatenate(ons),
        np.concatenate(phases),
        period,
    )


def _dots_scene(width: int, height: int, turns_per_second: float, dots: int = 3) -> _Scene:
    """``dots`` bright discs circling the centre: a pixel turns ON as a disc's edge arrives
    and OFF as it leaves."""
    xs, ys, radius, angle = _grid(width, height)
    orbit = 0.3 * min(width, height)
    dot_radius = max(0.06 * min(width, height), 1.5)
    near = np.abs(radius - orbit) < dot_radius
    x, y, rho, angle = xs[near], ys[near], radius[near], angle[near]
    # The angle, seen from the centre, over which a disc covers the pixel (law of cosines).
    cosine = (orbit**2 + rho**2 - dot_radius**2) / (2 * orbit * np.maximum(rho, 1e-9))
    half = np.arccos(np.clip(cosine, -1.0, 1.0))
    keep = half > 0
    x, y, angle, half = x[keep], y[keep], angle[keep], half[keep]
    spacing = 2 * np.pi / dots
    period = 1e6 / turns_per_second / dots
    phases, ons = [], []
    for edge, on in ((-half, True), (half, False)):
        phases.append(((angle + edge) % spacing) / spacing * period)
        ons.append(np.full(len(x), on))
    return _Scene(
        np.tile(x, 2).astype(np.uint16),
        np.tile(y, 2).astype(np.uint16),
        np.concatenate(ons),
        np.concatenate(phases),
        period,
    )


class SyntheticSensor(Stream):
    """A synthetic camera: a ``pattern`` ("bar": a spinning bar; "dots": discs circling the
    centre) firing about ``rate`` events per second, ``noise`` of them uniform random.

    ``duration`` (µs or a string such as ``"2s"``) makes it finite; None runs for ever.
    Packets cover ``packet_duration`` of event time each; times start at ``t0``. The same
    arguments always give the same events.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        *,
        pattern: str = "bar",
        rate: float = 2_000_000.0,
        noise: float = 0.05,
        duration: int | str | None = "1s",
        packet_duration: int | str = "10ms",
        t0: int | str = 0,
        seed: int = 0,
    ) -> None:
        width = check_dimension(width, "width", low=8)
        height = check_dimension(height, "height", low=8)
        if pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}")
        if not rate > 0 or not 0 <= noise <= 1:
            raise ValueError("rate must be positive and noise a fraction in [0, 1]")
        self.duration = None if duration is None else parse_time(duration)
        self.packet_duration = parse_time(packet_duration)
        if self.packet_duration < 1:
            raise ValueError("packet_duration must be at least 1 µs")
        self.t0, self.seed, self.noise_rate = parse_time(t0), check_int(seed, "seed"), rate * noise
        self._size = (width, height)
        build = _bar_scene if pattern == "bar" else _dots_scene
        unit = build(width, height, 1.0)  # events per second at one turn per second
        firings_per_turn = len(unit.x) * (1e6 / unit.period)
        self._scene = build(width, height, max(rate - self.noise_rate, 1.0) / firings_per_turn)
        self.properties = Properties(
            format="synthetic",
            width=width,
            height=height,
            t0=self.t0,
            live=self.duration is None,
        )
        self._position = 0

    def __iter__(self) -> Iterator[Packet]:
        while self.duration is None or self._position < self.duration:
            start = self._position
            stop = start + self.packet_duration
            if self.duration is not None:
                stop = min(stop, self.duration)
            self._position = stop
            yield Packet(self._slice(start, stop))

    def _slice(self, start: int, stop: int) -> npt.NDArray[Any]:
        signal = self._scene.firings(start, stop)
        # Noise is drawn per millisecond block, so it does not depend on packet boundaries.
        noise = _concatenate(
            [self._noise(block) for block in range(start // 1000, math.ceil(stop / 1000))]
        )
        inside = (noise[0] >= start) & (noise[0] < stop)
        t, x, y, on = _concatenate([signal, tuple(column[inside] for column in noise)])  # type: ignore[list-item]
        order = np.argsort(t, kind="stable")
        events = np.empty(len(t), EVENTS_DTYPE)
        events["t"] = t[order] + np.uint64(self.t0)
        events["x"] = x[order]
        events["y"] = y[order]
        events["on"] = on[order]
        return events

    def _noise(self, block: int) -> _Columns:
        rng = np.random.default_rng((self.seed, block))
        count = int(rng.poisson(self.noise_rate / 1000))
        width, height = self._size
        return (
            (block * 1000 + rng.integers(0, 1000, count)).astype(np.uint64),
            rng.integers(0, width, count).astype(np.uint16),
            rng.integers(0, height, count).astype(np.uint16),
            rng.random(count) < 0.5,
        )

    def progress(self) -> tuple[int, int] | None:
        if self.duration is None:
            return None
        return self._position, self.duration


def rotating_bar(
    width: int = 640, height: int = 480, duration_us: int = 1_000_000, seed: int = 0
) -> npt.NDArray[Any]:
    """One second (by default) of the synthetic sensor's spinning bar, as one array."""
    sensor = SyntheticSensor(width, height, duration=duration_us, seed=seed)
    return concatenate_packets(list(sensor)).events
