"""Pictures of events: rendered frames, video files, PNG folders, plots and a live viewer.

Rendering needs only NumPy and numba; video files need PyAV (``aerflow[video]``), plots
matplotlib (``aerflow[plot]``) and the viewer pygame-ce (``aerflow[viewer]``), each imported
only when used.

Every public name loads its module on first use, so the command line can read the sink
declarations of :mod:`aerflow.render.components` and the ``plot`` arguments of
:mod:`aerflow.render.commands` without numba.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._optional import load_lazy as _load_lazy
from .._optional import load_reference as _load_reference
from ..errors import MissingDependencyError

if TYPE_CHECKING:
    from .frames import STYLES, Look, RenderedFrame, Renderer, frames
    from .plots import (
        EventRate,
        HotPixel,
        HotPixels,
        IntervalHistogram,
        event_rate,
        hot_pixels,
        interval_histogram,
        plot_hot_pixels,
        plot_interval_histogram,
        plot_rate,
    )
    from .video import FramesSink, VideoSink, write_frames, write_video
    from .viewer import Viewer, ViewerClosed

__all__ = [
    "STYLES",
    "EventRate",
    "FramesSink",
    "HotPixel",
    "HotPixels",
    "IntervalHistogram",
    "Look",
    "MissingDependencyError",
    "RenderedFrame",
    "Renderer",
    "VideoSink",
    "Viewer",
    "ViewerClosed",
    "event_rate",
    "frames",
    "hot_pixels",
    "interval_histogram",
    "plot_hot_pixels",
    "plot_interval_histogram",
    "plot_rate",
    "write_frames",
    "write_video",
]

_LAZY = {
    **dict.fromkeys(("STYLES", "Look", "RenderedFrame", "Renderer"), "aerflow.render.frames"),
    **dict.fromkeys(
        (
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
        ),
        "aerflow.render.plots",
    ),
    **dict.fromkeys(
        ("FramesSink", "VideoSink", "write_frames", "write_video"), "aerflow.render.video"
    ),
    **dict.fromkeys(("Viewer", "ViewerClosed"), "aerflow.render.viewer"),
}
"""Public names imported on first use, and the module each comes from (``frames``, the
function, is the property of :class:`_Render` below)."""


def __getattr__(name: str) -> Any:
    return _load_lazy(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "frames"})


class _Render(ModuleType):
    """This package's module type. ``aerflow.render.frames`` is the function ``frames``, as
    it always was, although a submodule of the same name exists: Python sets a package's
    attribute to a submodule when that submodule is first imported, which a lazy package
    lets happen after the package has loaded. The property keeps the function."""

    @property
    def frames(self) -> Any:
        return _load_reference("aerflow.render.frames:frames")

    @frames.setter
    def frames(self, value: Any) -> None:
        if not isinstance(value, ModuleType):  # the import system's setattr is ignored
            raise AttributeError("aerflow.render.frames is the frames() function")


sys.modules[__name__].__class__ = _Render
