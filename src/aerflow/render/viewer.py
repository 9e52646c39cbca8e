"""A live window: the current picture of the events and their rate (``pip install
'aerflow[viewer]'``, which brings pygame-ce: SDL2 in the wheel, nothing else to install).

:class:`Viewer` is a sink: ``aerflow.pipeline.run(stream, Viewer(...))`` or ``aerflow input
... output viewer``. Live sources (cameras, UDP) are shown as they come, at most ``fps``
times a second, at the latest event's time. Recordings are played in step with their event
time, ``speed`` times real time (``speed=None``: as fast as they are read), one frame every
``speed / fps`` seconds of event time. Below the picture, a panel shows the ON and OFF event
rates (over the last ``rate_window`` of event time) as numbers and as a scrolling graph.

Closing the window (or pressing Escape or Q) raises :class:`ViewerClosed`, a
:class:`KeyboardInterrupt`: the pipeline stops as on Ctrl-C. With ``SDL_VIDEODRIVER=dummy``
in the environment no window opens and the viewer still draws (for tests and servers);
:meth:`Viewer.save_screenshot` and :meth:`Viewer.screenshot` give what it shows.
"""

from __future__ import annotations

import collections
import os
import time
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import Packet, as_events, parse_time
from ..sinks import ClosedOnExit
from ._deps import require
from .frames import Look, RenderedFrame, Renderer, Sequencer, sequence_look

__all__ = ["PANEL_HEIGHT", "Viewer", "ViewerClosed"]

PANEL_HEIGHT = 56
"""Pixels below the picture for the rates."""
_PANEL_COLOUR = (24, 24, 28)
_TEXT_COLOUR = (225, 225, 225)
_ON_LINE = (255, 198, 26)
_OFF_LINE = (46, 139, 255)
_CATCH_UP = 0.1
"""While paced playback runs late, a frame is still shown at least this often (s)."""


class ViewerClosed(KeyboardInterrupt):
    """The viewer's window was closed: the run stops as on Ctrl-C."""


def _format_rate(rate: float) -> str:
    for unit, scale in (("Gev/s", 1e9), ("Mev/s", 1e6), ("kev/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f} {unit}"
    return f"{rate:.0f} ev/s"


class Viewer(ClosedOnExit):
    """A window showing the events it is given (see the module documentation).

    ``width`` x ``height`` is the sensor size; ``live`` says whether the source is live
    (``stream.properties.live``); ``look`` holds :class:`~aerflow.render.frames.Look`'s
    fields (``scale`` enlarges small sensors)."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        live: bool = False,
        fps: float = 60.0,
        speed: float | None = 1.0,
        title: str = "aerflow",
        rate_window: int | str = "250ms",
        **look: Any,
    ) -> None:
        if not fps > 0 or (speed is not None and not speed > 0):
            raise ValueError("fps and speed must be positive")
        self._pygame: ModuleType = require("pygame", "the viewer")
        self.fps = float(fps)
        self.speed = speed
        self.renderer = Renderer(width, height, sequence_look(Look(**look), fps, speed or 1.0))
        self._rate_window = parse_time(rate_window)
        self._paced = not live and speed is not None
        self._sequencer: Sequencer | None = None
        if self._paced:
            assert speed is not None
            self._sequencer = Sequencer(
                self.renderer, fps, speed, self._show_paced, added=self._count
            )
        self.frames_shown = 0
        """Frames drawn so far."""
        self._spans: collections.deque[tuple[int, int, int]] = collections.deque()
        self._history: collections.deque[tuple[float, float]] = collections.deque(maxlen=2048)
        self._wall_start: float | None = None
        self._last_show = 0.0
        self._closed = False
        out_w, out_h = self.renderer.output_size
        pygame = self._pygame
        pygame.display.init()
        pygame.font.init()
        try:
            self._screen = pygame.display.set_mode((max(out_w, 240), out_h + PANEL_HEIGHT))
            pygame.display.set_caption(title)
            self._font = pygame.font.Font(None, 20)
            self._screen.fill(_PANEL_COLOUR)
            self._draw_picture(self.renderer.new_frame())
            self._draw_panel(None)
            pygame.display.flip()
        except BaseException:
            pygame.display.quit()
            raise

    # -- the sink -------------------------------------------------------------------------------
    def write(self, packet: Packet | npt.ArrayLike) -> None:
        """Take a packet's events (or an events array); the window updates as they are due."""
        if self._closed:
            raise RuntimeError("the viewer is closed")
        events = packet.events if isinstance(packet, Packet) else as_events(packet)
        if self._sequencer is not None:
            self._sequencer.write(events)
        else:
            self.renderer.add(events)
            self._count(events)
            now = time.monotonic()
            if len(events) and now - self._last_show >= 1.0 / self.fps:
                self._show(self.renderer.render(), self.renderer.time)
        self.poll()

    def close(self) -> None:
        """Show the last frame and close the window."""
        if self._closed:
            return
        try:
            if self._sequencer is not None:
                self._sequencer.finish()
            elif self.renderer.time is not None:
                self._show(self.renderer.render(), self.renderer.time)
        finally:
            self._closed = True
            self._pygame.display.quit()

    def abort(self) -> None:
        """Close the window at once."""
        if not self._closed:
            self._closed = True
            self._pygame.display.quit()

    # -- what it shows --------------------------------------------------------------------------
    def poll(self) -> None:
        """Handle the window's events; raises :class:`ViewerClosed` when it was closed."""
        pygame = self._pygame
        for event in pygame.event.get():
            closing = event.type == pygame.QUIT or (
                event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)
            )
            if closing:
                self.abort()
                raise ViewerClosed("the viewer window was closed")

    def screenshot(self) -> npt.NDArray[np.uint8]:
        """What the window shows: ``(H, W, 3)`` uint8, indexed ``[y, x]`` (the picture at the
        top, the rate panel below it)."""
        pixels = self._pygame.surfarray.array3d(self._screen)
        return np.ascontiguousarray(pixels.swapaxes(0, 1), dtype=np.uint8)

    def save_screenshot(self, path: str | os.PathLike[str]) -> None:
        """Save what the window shows (PNG, or BMP/TGA/JPEG by the extension)."""
        self._pygame.image.save(self._screen, os.fspath(path))

    # -- internals ------------------------------------------------------------------------------
    def _count(self, events: npt.NDArray[Any]) -> None:
        if not len(events):
            return
        on = int(np.count_nonzero(events["on"]))
        self._spans.append((int(events["t"][-1]), on, len(events) - on))

    def _rates(self, now: int) -> tuple[float, float]:
        spans = self._spans
        while len(spans) > 1 and spans[1][0] <= now - self._rate_window:
            spans.popleft()
        if len(spans) < 2:
            return 0.0, 0.0
        # The first span only marks where the window starts; the others fill it.
        elapsed = (spans[-1][0] - spans[0][0]) / 1e6
        if elapsed <= 0:
            return 0.0, 0.0
        on = sum(span[1] for span in list(spans)[1:])
        off = sum(span[2] for span in list(spans)[1:])
        return on / elapsed, off / elapsed

    def _show_paced(self, frame: RenderedFrame) -> None:
        now = time.monotonic()
        if self._wall_start is None:
            self._wall_start = now
        due = self._wall_start + (frame.index + 1) / self.fps
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0 / self.fps and now - self._last_show < _CATCH_UP:
            return  # running late: skip this picture, not the events
        self._show(frame.indices, frame.t)

    def _show(self, indices: npt.NDArray[np.uint8], t: int | None) -> None:
        rates = self._rates(t) if t is not None else (0.0, 0.0)
        self._history.append(rates)
        self._draw_picture(indices)
        self._draw_panel(t, rates)
        self._pygame.display.flip()
        self._last_show = time.monotonic()
        self.frames_shown += 1

    def _draw_picture(self, indices: npt.NDArray[np.uint8]) -> None:
        out_w, out_h = self.renderer.output_size
        rgb = np.ascontiguousarray(self.renderer.palette[indices[:out_h, :out_w]])
        surface = self._pygame.image.frombuffer(rgb.tobytes(), (out_w, out_h), "RGB")
        self._screen.blit(surface, (0, 0))

    def _draw_panel(self, t: int | None, rates: tuple[float, float] = (0.0, 0.0)) -> None:
        pygame = self._pygame
        screen_w, screen_h = self._screen.get_size()
        top = screen_h - PANEL_HEIGHT
        pygame.draw.rect(self._screen, _PANEL_COLOUR, (0, top, screen_w, PANEL_HEIGHT))
        clock = "" if t is None else f"   t {t / 1e6:.3f} s"
        text = f"ON {_format_rate(rates[0])}   OFF {_format_rate(rates[1])}{clock}"
        self._screen.blit(self._font.render(text, True, _TEXT_COLOUR), (6, top + 4))
        history = list(self._history)[-(screen_w - 12) :]
        if len(history) < 2:
            return
        graph_top, graph_h = top + 22, PANEL_HEIGHT - 26
        peak = max(max(on, off) for on, off in history) or 1.0
        left = screen_w - 6 - len(history)
        for channel, colour in ((0, _ON_LINE), (1, _OFF_LINE)):
            points = [
                (left + k, graph_top + graph_h - round(sample[channel] / peak * graph_h))
                for k, sample in enumerate(history)
            ]
            pygame.draw.lines(self._screen, colour, False, points)
