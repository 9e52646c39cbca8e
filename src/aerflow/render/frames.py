"""Events into pictures: decaying per-pixel accumulations rendered at a fixed frame rate.

A :class:`Renderer` keeps, for every pixel, the time and polarity of its latest event (and
for the ``"counts"`` style a signed count that decays exponentially). Rendering at a time
``now`` turns that state into palette indices; the palette turns them into colours.

Styles:

``"on-off"`` (default)
    the polarity of each pixel's latest event, its colour fading into the background with
    the event's age (``decay``: ``"exponential"`` with time constant ``tau``, ``"linear"``
    to nothing over ``tau``, or ``"window"``: full colour for ``tau``).
``"counts"``
    a leaky signed count: each event adds +1 (ON) or -1 (OFF), the sum decays as
    ``exp(-age / tau)``; ``contrast`` events give full colour.
``"time-surface"``
    the age of each pixel's latest event, whatever its polarity, through a colormap
    (``"hot"`` unless another is given).

``colormap`` (a name from :data:`~aerflow.render.palette.COLORMAPS` or matplotlib's)
replaces the ON/OFF/background colours. Frames are ``(H, W, 3)`` uint8 arrays indexed
``[y, x]``; with ``scale`` or ``size`` they are resized (smaller: events are pooled into the
coarser grid; larger: pixels are repeated).

:func:`frames` renders a stream at ``fps`` frames per second of video, ``speed`` times real
time: frame ``k`` shows every event before ``start + (k + 1) * speed / fps`` seconds, so
spans without events still give (fading) frames and ``n`` frames cover ``n * speed / fps``
seconds of event time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import Packet, as_events, parse_time
from ..properties import Properties
from ..stream import IterableStream, Stream
from . import _kernels as kernels
from .palette import SIGNED_BACKGROUND, SIGNED_LEVELS, Colour, signed_palette, unsigned_palette

__all__ = [
    "DECAYS",
    "STYLES",
    "Look",
    "RenderedFrame",
    "Renderer",
    "Sequencer",
    "frames",
    "open_source",
]

STYLES = ("on-off", "counts", "time-surface")
DECAYS = ("exponential", "linear", "window")

ON_COLOUR = "#ffc61a"
OFF_COLOUR = "#2e8bff"
BACKGROUND = "#141414"

TAU_FRAMES = 2.0
"""Without ``tau``, frame sequences fade over this many frame periods of event time."""

_BUCKETS = 4096
"""Age buckets of the on-off and time-surface lookup tables."""

Source = Stream | str | os.PathLike[str] | npt.NDArray[Any] | Packet
"""What the render and plot functions read: a stream, a recording's path or events."""


@dataclass(frozen=True)
class Look:
    """How events become colours (see the module documentation for the styles)."""

    style: str = "on-off"
    tau: int | str | None = None
    """Decay time constant (µs or e.g. ``"20ms"``); None: two frame periods of event time
    in frame sequences, 30 ms for a bare :class:`Renderer`."""
    decay: str = "exponential"
    colormap: str | None = None
    on_colour: Colour = ON_COLOUR
    off_colour: Colour = OFF_COLOUR
    background: Colour = BACKGROUND
    contrast: float = 1.0
    """``"counts"``: the decayed count that gives full colour."""
    scale: float = 1.0
    """Output size relative to the sensor (ignored when ``size`` is given)."""
    size: tuple[int, int] | str | None = None
    """Output ``(width, height)`` or ``"WxH"``."""

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {self.decay!r}")
        if self.style == "counts" and self.decay != "exponential":
            raise ValueError("the counts style decays exponentially only")
        if not self.contrast > 0:
            raise ValueError("contrast must be positive")
        if not self.scale > 0:
            raise ValueError("scale must be positive")

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) of frames rendered from a ``width`` x ``height`` sensor."""
        if self.size is not None:
            size = self.size
            if isinstance(size, str):
                try:
                    w, _, h = size.lower().partition("x")
                    size = (int(w), int(h))
                except ValueError:
                    raise ValueError(f"size must read WIDTHxHEIGHT, got {self.size!r}") from None
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"size must be two positive integers, got {self.size!r}")
            return int(size[0]), int(size[1])
        return max(1, round(width * self.scale)), max(1, round(height * self.scale))

    def palette(self) -> npt.NDArray[np.uint8]:
        """The (256, 3) colours that rendered indices stand for."""
        if self.style == "time-surface":
            return unsigned_palette(self.on_colour, self.background, self.colormap or "hot")
        return signed_palette(self.on_colour, self.off_colour, self.background, self.colormap)

    @property
    def background_index(self) -> int:
        return 0 if self.style == "time-surface" else SIGNED_BACKGROUND


def _weights(decay: str, ages: npt.NDArray[np.float64], tau: float) -> npt.NDArray[np.float64]:
    if decay == "exponential":
        weights: npt.NDArray[np.float64] = np.exp(-ages / tau)
    elif decay == "linear":
        weights = np.clip(1.0 - ages / tau, 0.0, 1.0)
    else:
        weights = (ages < tau).astype(np.float64)
    return weights


class Renderer:
    """Per-pixel state of a ``width`` x ``height`` sensor, rendered on demand.

    ``even`` pads frames to even dimensions with the background (video encoders need it);
    the pictures keep their :attr:`output_size` in the top-left corner."""

    def __init__(self, width: int, height: int, look: Look | None = None, *, even: bool = False):
        if width < 1 or height < 1:
            raise ValueError("width and height must be positive")
        self.look = look = Look() if look is None else look
        self.width, self.height = width, height
        out_w, out_h = self.output_size = look.output_size(width, height)
        self.frame_size = (out_w + out_w % 2, out_h + out_h % 2) if even else (out_w, out_h)
        grid_w, grid_h = min(width, out_w), min(height, out_h)
        self._xmap = (np.arange(width, dtype=np.int64) * grid_w // width).astype(np.int32)
        self._ymap = (np.arange(height, dtype=np.int64) * grid_h // height).astype(np.int32)
        self._cols = (np.arange(out_w, dtype=np.int64) * grid_w // out_w).astype(np.int32)
        self._rows = (np.arange(out_h, dtype=np.int64) * grid_h // out_h).astype(np.int32)
        self._last_t = np.full((grid_h, grid_w), kernels.NEVER, np.int64)
        self._last_on = np.zeros((grid_h, grid_w), np.bool_)
        counts = look.style == "counts"
        self._level = np.zeros((grid_h, grid_w) if counts else (1, 1), np.float64)
        self.palette = look.palette()
        self.dropped = 0
        """Events outside the sensor, skipped."""
        self.time: int | None = None
        """The latest event time added."""
        self.tau = 0
        self.set_tau(parse_time(look.tau) if look.tau is not None else 30_000)

    def set_tau(self, tau: int) -> None:
        """Change the decay time constant (µs) and rebuild the lookup tables."""
        if tau < 1:
            raise ValueError("tau must be at least 1 µs")
        self.tau = int(tau)
        look = self.look
        levels = 255 if look.style == "time-surface" else SIGNED_LEVELS
        if look.decay == "exponential":
            # Older than this, the colour is less than half a step from the background.
            self._horizon = max(1, math.ceil(self.tau * math.log(2 * levels)))
        else:
            self._horizon = self.tau
        middles = (np.arange(_BUCKETS, dtype=np.float64) + 0.5) * (self._horizon / _BUCKETS)
        steps = np.round(_weights(look.decay, middles, float(self.tau)) * levels).astype(np.int64)
        if look.style == "time-surface":
            self._lut_on = steps.astype(np.uint8)
            self._lut_off = self._lut_on
        else:
            self._lut_on = (SIGNED_BACKGROUND + steps).astype(np.uint8)
            self._lut_off = (SIGNED_BACKGROUND - steps).astype(np.uint8)

    def add(self, events: npt.NDArray[Any], begin: int = 0, stop: int | None = None) -> int:
        """Add ``events`` from index ``begin`` up to the first one at or after time ``stop``;
        returns the index of the first event not added (``len(events)`` when all were)."""
        if begin >= len(events):
            return len(events)
        tau = float(self.tau) if self.look.style == "counts" else 0.0
        end, dropped = kernels.accumulate(
            events["t"],
            events["x"],
            events["y"],
            events["on"],
            begin,
            np.iinfo(np.int64).max if stop is None else stop,
            self._xmap,
            self._ymap,
            self._last_t,
            self._last_on,
            self._level,
            tau,
        )
        self.dropped += dropped
        if end > begin:
            self.time = int(events["t"][end - 1])
        return int(end)

    def new_frame(self) -> npt.NDArray[np.uint8]:
        """An index image of :attr:`frame_size`, all background (for :meth:`render`'s out)."""
        width, height = self.frame_size
        return np.full((height, width), self.look.background_index, np.uint8)

    def render(
        self, now: int | None = None, out: npt.NDArray[np.uint8] | None = None
    ) -> npt.NDArray[np.uint8]:
        """Palette indices ``[y, x]`` of the picture at time ``now`` (default: the latest
        event's). ``out`` (from :meth:`new_frame`) is filled in place and returned."""
        if out is None:
            out = self.new_frame()
        if now is None:
            now = self.time if self.time is not None else 0
        out_w, out_h = self.output_size
        view = out[:out_h, :out_w]
        style = self.look.style
        if style == "on-off":
            kernels.render_polarity(
                self._last_t,
                self._last_on,
                now,
                self._horizon,
                self._lut_on,
                self._lut_off,
                SIGNED_BACKGROUND,
                self._rows,
                self._cols,
                view,
            )
        elif style == "time-surface":
            kernels.render_surface(
                self._last_t, now, self._horizon, self._lut_on, self._rows, self._cols, view
            )
        else:
            kernels.render_counts(
                self._last_t,
                self._level,
                now,
                float(self.tau),
                1.0 / self.look.contrast,
                SIGNED_LEVELS,
                self._rows,
                self._cols,
                view,
            )
        return out

    def rgb(self, indices: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The ``(H, W, 3)`` colours of an index image."""
        colours: npt.NDArray[np.uint8] = self.palette[indices]
        return colours


@dataclass(frozen=True)
class RenderedFrame:
    """Frame ``index`` of a sequence: the picture at event time ``t`` (µs)."""

    index: int
    t: int
    indices: npt.NDArray[np.uint8] = field(repr=False)
    """Palette indices ``[y, x]``."""
    palette: npt.NDArray[np.uint8] = field(repr=False)

    @property
    def rgb(self) -> npt.NDArray[np.uint8]:
        """The picture: ``(H, W, 3)`` uint8, indexed ``[y, x]``."""
        colours: npt.NDArray[np.uint8] = self.palette[self.indices]
        return colours


class Sequencer:
    """Renders the events it is given at a fixed rate of event time.

    Frame ``k`` is rendered at ``start + round((k + 1) * period)`` µs, with ``period =
    1e6 * speed / fps``, once an event at or after that time arrives (or at :meth:`finish`),
    and handed to ``emit``. ``start`` defaults to the first event's time."""

    def __init__(
        self,
        renderer: Renderer,
        fps: float,
        speed: float,
        emit: Callable[[RenderedFrame], None],
        start: int | str | None = None,
        added: Callable[[npt.NDArray[Any]], None] | None = None,
    ) -> None:
        """``added``, when given, sees each run of events added to the renderer, before the
        frame that they end (if any) is emitted."""
        check_timing(fps, speed)
        self.renderer = renderer
        self.period = 1e6 * speed / fps
        self.start = None if start is None else parse_time(start)
        self.frames = 0
        self._emit = emit
        self._added = added
        self._pending = False
        self._buffer: npt.NDArray[np.uint8] | None = None
        self._boundary = 0 if self.start is None else self._boundary_of(0)

    def _boundary_of(self, k: int) -> int:
        assert self.start is not None
        return self.start + round((k + 1) * self.period)

    def write(self, events: npt.NDArray[Any]) -> None:
        n = len(events)
        if not n:
            return
        if self.start is None:
            self.start = int(events["t"][0])
            self._boundary = self._boundary_of(0)
        i = 0
        while i < n:
            end = self.renderer.add(events, i, self._boundary)
            if end > i:
                self._pending = True
                if self._added is not None:
                    self._added(events[i:end])
            i = end
            if i < n:
                self._flush()

    def _flush(self) -> None:
        indices = self.renderer.render(self._boundary, self._buffer)
        self._emit(RenderedFrame(self.frames, self._boundary, indices, self.renderer.palette))
        self.frames += 1
        self._pending = False
        self._boundary = self._boundary_of(self.frames)

    def finish(self) -> None:
        """Render the last frame, which holds the events after the last boundary."""
        if self._pending:
            self._flush()

    def reuse_buffer(self) -> None:
        """Render every frame into one buffer (for consumers that copy or encode at once)."""
        self._buffer = self.renderer.new_frame()


def open_source(source: Source, width: int | None = None, height: int | None = None) -> Stream:
    """A stream over ``source``: a stream as it is, a path opened with :func:`aerflow.open`,
    or events (an array in any layout :func:`aerflow.as_events` takes, or a packet), whose
    sensor size is ``width`` x ``height`` or just large enough for them."""
    if isinstance(source, Stream):
        return source
    if isinstance(source, (str, os.PathLike)):
        from ..api import open as open_file

        return open_file(source)
    packet = source if isinstance(source, Packet) else Packet(as_events(source))
    events = packet.events
    if width is None:
        width = int(events["x"].max()) + 1 if len(events) else 1
    if height is None:
        height = int(events["y"].max()) + 1 if len(events) else 1
    return IterableStream([packet], Properties(format="array", width=width, height=height))


def sensor_size(stream: Stream) -> tuple[int, int]:
    size = stream.properties.sensor_size
    if size is None:
        raise ValueError("rendering needs the sensor size, which this source does not give")
    return size


def check_timing(fps: float, speed: float) -> None:
    """Frames per second and speed must be finite and above 0 (else no frame, or one for
    ever)."""
    for name, value in (("fps", fps), ("speed", speed)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number above 0, got {value!r}")


def sequence_look(look: Look, fps: float, speed: float) -> Look:
    """``look`` with its ``tau`` made explicit for frames at ``fps``, ``speed`` times real
    time."""
    check_timing(fps, speed)
    if look.tau is not None:
        return look
    from dataclasses import replace

    return replace(look, tau=max(1, round(TAU_FRAMES * 1e6 * speed / fps)))


def frames(
    source: Source,
    *,
    fps: float = 60.0,
    speed: float = 1.0,
    start: int | str | None = None,
    width: int | None = None,
    height: int | None = None,
    **look: Any,
) -> Iterator[RenderedFrame]:
    """The frames of ``source`` at ``fps`` frames per second of video, ``speed`` times real
    time (see the module documentation). ``look`` holds :class:`Look`'s fields (``style``,
    ``tau``, ``decay``, ``colormap``, colours, ``contrast``, ``scale``, ``size``).
    ``width``/``height`` give the sensor size of bare events."""
    stream = open_source(source, width, height)
    with stream:
        renderer = Renderer(*sensor_size(stream), sequence_look(Look(**look), fps, speed))
        ready: list[RenderedFrame] = []
        sequencer = Sequencer(renderer, fps, speed, ready.append, start)
        for packet in stream:
            sequencer.write(packet.events)
            yield from ready
            ready.clear()
        sequencer.finish()
        yield from ready
