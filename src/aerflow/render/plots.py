"""Plots of a recording: event rate over time, per-pixel counts (hot pixels) and
inter-event intervals.

Each plot has two functions: one that reads a source once in bounded memory and returns
the data (NumPy only), and ``plot_*`` that draws it on a new matplotlib
:class:`~matplotlib.figure.Figure` (``pip install 'aerflow[plot]'``) and returns both. The
figures are made without pyplot, so no window ever opens and no global state changes;
``figure.savefig("rate.png")`` writes them with the Agg renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..events import parse_time
from . import _kernels as kernels
from ._deps import require
from .frames import Source, open_source, sensor_size

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "EventRate",
    "HotPixel",
    "HotPixels",
    "IntervalHistogram",
    "event_rate",
    "hot_pixels",
    "interval_histogram",
    "plot_hot_pixels",
    "plot_interval_histogram",
    "plot_rate",
]

MAX_AUTO_BINS = 2000
"""Automatic rate bins are the finest of 10 µs, 20 µs, 100 µs, 200 µs, 1 ms... that give at
most this many bins."""
_FIGURE_SIZE = (8.0, 4.5)
ON_COLOUR = "#e6a800"
OFF_COLOUR = "#1f6fd1"


def _figure(figsize: tuple[float, float] = _FIGURE_SIZE) -> Figure:
    module = require("matplotlib.figure", "plotting")
    figure: Figure = module.Figure(figsize=figsize, dpi=100, layout="constrained")
    return figure


# -- event rate ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventRate:
    """ON and OFF event counts in consecutive bins of ``bin`` µs, the first starting at
    ``start`` (the first event's time); the last bin ends at ``end`` (one past the last
    event) and may be shorter."""

    start: int
    end: int
    bin: int
    on: npt.NDArray[np.int64] = field(repr=False)
    off: npt.NDArray[np.int64] = field(repr=False)

    @property
    def edges(self) -> npt.NDArray[np.float64]:
        """Bin edges in seconds from ``start``."""
        edges = np.arange(len(self.on) + 1, dtype=np.float64) * self.bin
        if len(edges):
            edges[-1] = self.end - self.start
        seconds: npt.NDArray[np.float64] = edges / 1e6
        return seconds

    @property
    def durations(self) -> npt.NDArray[np.float64]:
        """Each bin's length in seconds (the last may be shorter)."""
        return np.diff(self.edges)

    @property
    def on_rate(self) -> npt.NDArray[np.float64]:
        """ON events per second in each bin."""
        return self.on / self.durations

    @property
    def off_rate(self) -> npt.NDArray[np.float64]:
        """OFF events per second in each bin."""
        return self.off / self.durations


_LADDER = (2, 5)  # 10 µs, 20 µs, 100 µs, 200 µs, 1 ms, ...


class _RateCounter:
    def __init__(self, bin: int | None) -> None:
        self.fixed = bin is not None
        self.bin = 10 if bin is None else bin
        self._step = 0
        self.start: int | None = None
        self.end = 0
        self.on = np.zeros(0, np.int64)
        self.off = np.zeros(0, np.int64)

    def _coarsen(self) -> None:
        factor = _LADDER[self._step % 2]
        self._step += 1
        self.bin *= factor
        groups = -(-len(self.on) // factor)
        for name in ("on", "off"):
            counts = getattr(self, name)
            padded = np.zeros(groups * factor, np.int64)
            padded[: len(counts)] = counts
            setattr(self, name, padded.reshape(groups, factor).sum(axis=1))

    def add(self, events: npt.NDArray[Any]) -> None:
        if not len(events):
            return
        t = events["t"].astype(np.int64)
        if self.start is None:
            self.start = int(t[0])
        self.end = max(self.end, int(t.max()) + 1)
        needed = (self.end - 1 - self.start) // self.bin + 1
        while not self.fixed and needed > MAX_AUTO_BINS:
            self._coarsen()
            needed = (self.end - 1 - self.start) // self.bin + 1
        if needed > len(self.on):
            for name in ("on", "off"):
                counts = getattr(self, name)
                grown = np.zeros(needed, np.int64)
                grown[: len(counts)] = counts
                setattr(self, name, grown)
        index = np.maximum(t - self.start, 0) // self.bin
        on = events["on"]
        self.on += np.bincount(index[on], minlength=len(self.on))
        self.off += np.bincount(index[~on], minlength=len(self.off))

    def result(self) -> EventRate:
        start = 0 if self.start is None else self.start
        return EventRate(start, max(self.end, start), self.bin, self.on, self.off)


def event_rate(
    source: Source,
    bin: int | str | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> EventRate:
    """ON and OFF event counts of ``source`` in bins of ``bin`` (µs or e.g. ``"10ms"``;
    None picks the finest of 10 µs, 20 µs, 100 µs, 200 µs, 1 ms... that gives at most
    :data:`MAX_AUTO_BINS` bins)."""
    width_us = None if bin is None else parse_time(bin)
    if width_us is not None and width_us < 1:
        raise ValueError("bin must be at least 1 µs")
    counter = _RateCounter(width_us)
    with open_source(source, width, height) as stream:
        for packet in stream:
            counter.add(packet.events)
    return counter.result()


def plot_rate(
    source: Source | EventRate,
    bin: int | str | None = None,
    *,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[Figure, EventRate]:
    """A figure of the ON and OFF event rates (events/s) over time (s from the first event),
    one point at the middle of each bin, and the data (:func:`event_rate`). A last bin
    shorter than half the others is left out of the figure (not out of the data)."""
    rate = (
        source
        if isinstance(source, EventRate)
        else event_rate(source, bin, width=width, height=height)
    )
    ticker = require("matplotlib.ticker", "plotting")
    figure = _figure()
    axes = figure.add_subplot()
    edges = rate.edges
    shown = len(rate.on)
    if shown > 1 and rate.durations[-1] < rate.bin / 2 / 1e6:
        shown -= 1  # a sliver of a last bin would show a wild rate
    centres = (edges[:shown] + edges[1 : shown + 1]) / 2
    axes.plot(centres, rate.on_rate[:shown], color=ON_COLOUR, label="ON", linewidth=1.2)
    axes.plot(centres, rate.off_rate[:shown], color=OFF_COLOUR, label="OFF", linewidth=1.2)
    axes.set_xlabel("time since the first event (s)")
    axes.set_ylabel("event rate")
    axes.yaxis.set_major_formatter(ticker.EngFormatter(unit="ev/s"))
    axes.set_ylim(bottom=0)
    if shown:
        axes.set_xlim(0, edges[shown])
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right")
    total_on, total_off = int(rate.on.sum()), int(rate.off.sum())
    axes.set_title(
        title
        or f"{total_on + total_off:,} events ({total_on:,} ON, {total_off:,} OFF), "
        f"bins of {_format_us(rate.bin)}"
    )
    return figure, rate


def _format_us(us: int) -> str:
    for unit, scale in (("s", 1_000_000), ("ms", 1_000)):
        if us >= scale and us % scale == 0:
            return f"{us // scale} {unit}"
    return f"{us} µs"


# -- hot pixels ---------------------------------------------------------------------------------
class HotPixel(NamedTuple):
    x: int
    y: int
    events: int
    """Events of the pixel (both polarities)."""
    share: float
    """Fraction of all the events."""


@dataclass(frozen=True)
class HotPixels:
    """Event counts per pixel ``[y, x]`` and the pixels with the most events, most first
    (ties: lower y, then lower x, first)."""

    on: npt.NDArray[np.int64] = field(repr=False)
    off: npt.NDArray[np.int64] = field(repr=False)
    hottest: list[HotPixel]
    outside: int = 0
    """Events outside the sensor, not counted."""

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """Events per pixel, both polarities."""
        return self.on + self.off


def hottest_pixels(counts: npt.NDArray[np.int64], count: int) -> list[HotPixel]:
    """The ``count`` pixels of ``counts`` ``[y, x]`` with the most events (ties: lower y,
    then lower x); pixels without events are never listed."""
    flat = counts.ravel()
    total = int(flat.sum())
    count = min(count, int(np.count_nonzero(flat)))
    if count <= 0:
        return []
    # A stable sort of the negated counts keeps raster order (y, then x) among ties.
    order = np.argsort(-flat, kind="stable")[:count]
    width = counts.shape[1]
    return [
        HotPixel(int(i % width), int(i // width), int(flat[i]), int(flat[i]) / total) for i in order
    ]


def hot_pixels(
    source: Source,
    count: int = 10,
    *,
    width: int | None = None,
    height: int | None = None,
) -> HotPixels:
    """Per-pixel ON and OFF event counts of ``source`` and its ``count`` hottest pixels."""
    if count < 0:
        raise ValueError("count must not be negative")
    with open_source(source, width, height) as stream:
        sensor_w, sensor_h = sensor_size(stream)
        pixels = sensor_w * sensor_h
        on = np.zeros(pixels, np.int64)
        off = np.zeros(pixels, np.int64)
        outside = 0
        for packet in stream:
            events = packet.events
            x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
            inside = (x < sensor_w) & (y < sensor_h)
            outside += int(len(events) - np.count_nonzero(inside))
            index = (y * sensor_w + x)[inside]
            polarity = events["on"][inside]
            on += np.bincount(index[polarity], minlength=pixels)
            off += np.bincount(index[~polarity], minlength=pixels)
    shape = (sensor_h, sensor_w)
    on_map, off_map = on.reshape(shape), off.reshape(shape)
    return HotPixels(on_map, off_map, hottest_pixels(on_map + off_map, count), outside)


def plot_hot_pixels(
    source: Source | HotPixels,
    count: int = 10,
    *,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[Figure, HotPixels]:
    """A figure of the events per pixel (logarithmic colours) with the ``count`` hottest
    pixels circled and numbered, and the data drawn (:func:`hot_pixels`)."""
    data = (
        source
        if isinstance(source, HotPixels)
        else hot_pixels(source, count, width=width, height=height)
    )
    colors = require("matplotlib.colors", "plotting")
    counts = data.counts
    sensor_h, sensor_w = counts.shape
    figure = _figure((8.0, max(3.0, 8.0 * sensor_h / sensor_w * 0.85)))
    axes = figure.add_subplot()
    peak = max(int(counts.max()) if counts.size else 1, 1)
    matplotlib = require("matplotlib", "plotting")
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="black")  # no events: log of 0
    image = axes.imshow(
        counts,
        cmap=cmap,
        norm=colors.LogNorm(vmin=1, vmax=max(peak, 2)),
        interpolation="nearest",
        origin="upper",
    )
    figure.colorbar(image, ax=axes, label="events")
    for rank, pixel in enumerate(data.hottest, 1):
        axes.plot(pixel.x, pixel.y, "o", markersize=10, markerfacecolor="none", color="#00e5ff")
        axes.annotate(
            str(rank),
            (pixel.x, pixel.y),
            xytext=(6, 6),
            textcoords="offset points",
            color="#00e5ff",
            fontsize=8,
        )
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title or f"events per pixel ({int(counts.sum()):,} events)")
    return figure, data


# -- inter-event intervals ----------------------------------------------------------------------
@dataclass(frozen=True)
class IntervalHistogram:
    """Counts of the times between successive events, of the same pixel (``per_pixel``) or
    of the whole stream, in logarithmic bins: ``counts[k]`` holds ``edges[k] <= dt <
    edges[k + 1]`` µs. ``zero`` intervals (same time stamp, or time going back) and those
    ``beyond`` the last edge are counted apart."""

    edges: npt.NDArray[np.int64] = field(repr=False)
    counts: npt.NDArray[np.int64] = field(repr=False)
    zero: int
    beyond: int
    per_pixel: bool
    outside: int = 0

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zero + self.beyond


def log_edges(bins_per_decade: int = 10, decades: int = 10) -> npt.NDArray[np.int64]:
    """Whole-µs bin edges from 1 µs to ``10 ** decades`` µs, about ``bins_per_decade`` a
    decade (fewer in the first decade, where whole microseconds are coarser)."""
    if bins_per_decade < 1 or decades < 1:
        raise ValueError("bins_per_decade and decades must be positive")
    exponents = np.arange(bins_per_decade * decades + 1) / bins_per_decade
    edges: npt.NDArray[np.int64] = np.unique(np.round(10.0**exponents).astype(np.int64))
    return edges


def interval_histogram(
    source: Source,
    *,
    per_pixel: bool = True,
    bins_per_decade: int = 10,
    width: int | None = None,
    height: int | None = None,
) -> IntervalHistogram:
    """Histogram of the inter-event intervals of ``source`` (see :class:`IntervalHistogram`),
    from 1 µs to 10,000 s."""
    edges = log_edges(bins_per_decade)
    counts = np.zeros(len(edges) - 1, np.int64)
    zero = beyond = outside = 0
    with open_source(source, width, height) as stream:
        if per_pixel:
            sensor_w, sensor_h = sensor_size(stream)
        else:
            sensor_w = sensor_h = 1
        last_t = np.full((sensor_h, sensor_w), kernels.NEVER, np.int64)
        for packet in stream:
            events = packet.events
            z, b, o = kernels.intervals(
                events["t"], events["x"], events["y"], last_t, per_pixel, edges, counts
            )
            zero, beyond, outside = zero + z, beyond + b, outside + o
    return IntervalHistogram(edges, counts, zero, beyond, per_pixel, outside)


def plot_interval_histogram(
    source: Source | IntervalHistogram,
    *,
    per_pixel: bool = True,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[Figure, IntervalHistogram]:
    """A log-log figure of the inter-event interval histogram (:func:`interval_histogram`),
    and the data drawn."""
    data = (
        source
        if isinstance(source, IntervalHistogram)
        else interval_histogram(source, per_pixel=per_pixel, width=width, height=height)
    )
    figure = _figure()
    axes = figure.add_subplot()
    used = np.flatnonzero(data.counts)
    first, last = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
    edges = data.edges[first : last + 1].astype(np.float64)
    axes.stairs(data.counts[first:last], edges, fill=True, color="#4062bb", alpha=0.85)
    axes.set_xscale("log")
    axes.set_yscale("log")
    scope = "same pixel" if data.per_pixel else "any pixel"
    axes.set_xlabel(f"time since the previous event of the {scope} (µs)")
    axes.set_ylabel("intervals")
    axes.grid(True, which="both", alpha=0.3)
    note = f"{data.total:,} intervals"
    if data.zero:
        note += f", {data.zero:,} of 0 µs (not shown)"
    axes.set_title(title or note)
    return figure, data
