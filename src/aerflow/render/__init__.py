"""Pictures of events: rendered frames, video files, PNG folders, plots and a live viewer.

Rendering needs only NumPy and numba; video files need PyAV (``aerflow[video]``), plots
matplotlib (``aerflow[plot]``) and the viewer pygame-ce (``aerflow[viewer]``), each imported
only when used.
"""

from __future__ import annotations

from ._deps import MissingDependencyError
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
