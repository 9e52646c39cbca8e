"""Filters of the sensor's geometry: state its size, crop a rectangle, mirror, transpose.
Frames are transformed with the events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from .._checks import check_sensor_size
from ..events import EVENTS_DTYPE, Frame, Packet
from ..properties import Properties
from ..registry import Option, declares
from ..stream import Filter
from ._common import _has_data, _SensorFilter

__all__ = ["Crop", "Flip", "SensorSize", "Transpose"]


class SensorSize(Filter):
    """State the sensor size, whatever the source reports (or when it reports none, as a
    ``.npy`` file or a CSV without ``%geometry``). Events pass unchanged: a later step that
    needs them inside the sensor drops or refuses those outside."""

    def __init__(self, width: int, height: int, *, inferred: bool = False) -> None:
        size = check_sensor_size(width, height)
        assert size is not None
        self.width, self.height = size
        self.inferred = inferred

    def properties(self, upstream: Properties) -> Properties:
        return replace(upstream, width=self.width, height=self.height, size_inferred=self.inferred)

    def apply(self, packet: Packet) -> Iterable[Packet]:
        return (packet,)


@declares(
    "filter",
    "crop",
    "keep a rectangle of the sensor, which becomes the new sensor",
    (
        Option("left", int, "left column", positional=True, required=True),
        Option("top", int, "top row", positional=True, required=True),
        Option("width", int, "rectangle width", positional=True, required=True),
        Option("height", int, "rectangle height", positional=True, required=True),
        Option(
            "keep_coordinates",
            bool,
            "keep the sensor and coordinates (a region of interest)",
            default=False,
        ),
    ),
    lambda left, top, width, height, keep_coordinates=False: Crop(
        left, top, width, height, shift=not keep_coordinates
    ),
)
class Crop(_SensorFilter):
    """Events inside the rectangle at (``left``, ``top``) of ``width`` x ``height``; with
    ``shift`` the rectangle becomes the sensor (its corner is the new origin)."""

    def __init__(self, left: int, top: int, width: int, height: int, *, shift: bool = True):
        super().__init__()
        if min(left, top) < 0 or min(width, height) < 1:
            raise ValueError("the rectangle needs left, top >= 0 and width, height >= 1")
        self.left, self.top, self.crop_width, self.crop_height = left, top, width, height
        self.shift = shift

    def properties(self, upstream: Properties) -> Properties:
        out = super().properties(upstream)
        if self.left + self.crop_width > self.width or self.top + self.crop_height > self.height:
            raise ValueError(
                f"the rectangle {self.crop_width}x{self.crop_height}+{self.left}+{self.top} "
                f"does not fit the {self.width}x{self.height} sensor"
            )
        if self.shift:
            return out.derived(width=self.crop_width, height=self.crop_height)
        return out

    def apply(self, packet: Packet) -> Iterable[Packet]:
        events = packet.events
        self._inside(events)
        x, y = events["x"], events["y"]
        keep = (
            (x >= self.left)
            & (x < self.left + self.crop_width)
            & (y >= self.top)
            & (y < self.top + self.crop_height)
        )
        kept = events[keep]
        frames = tuple(f for f in (self._crop_frame(f) for f in packet.frames) if f is not None)
        if self.shift:
            kept["x"] -= self.left
            kept["y"] -= self.top
        out = Packet(kept, packet.triggers, packet.imu, frames)
        return [out] if _has_data(out) else []

    def _crop_frame(self, frame: Frame) -> Frame | None:
        height, width = frame.pixels.shape[:2]
        x0, y0 = max(frame.x, self.left), max(frame.y, self.top)
        x1 = min(frame.x + width, self.left + self.crop_width)
        y1 = min(frame.y + height, self.top + self.crop_height)
        if x1 <= x0 or y1 <= y0:
            return None
        pixels = frame.pixels[y0 - frame.y : y1 - frame.y, x0 - frame.x : x1 - frame.x]
        if self.shift:
            x0, y0 = x0 - self.left, y0 - self.top
        return Frame(frame.t, pixels, frame.exposure_start, frame.exposure_end, x0, y0)


@declares(
    "filter",
    "flip",
    "mirror left-right (x) or up-down (y)",
    (Option("axis", str, "x or y", positional=True, required=True, choices=("x", "y")),),
)
class Flip(_SensorFilter):
    """Mirror left-right (``axis="x"``) or up-down (``axis="y"``), e.g. to move a bottom-left
    origin (AEDAT 2, Event Stream) to the top left."""

    def __init__(self, axis: str) -> None:
        super().__init__()
        if axis not in ("x", "y"):
            raise ValueError("axis must be 'x' or 'y'")
        self.axis = axis

    def apply(self, packet: Packet) -> Iterable[Packet]:
        events = packet.events[self._inside(packet.events)]
        size = self.width if self.axis == "x" else self.height
        events[self.axis] = size - 1 - events[self.axis]
        frames = tuple(self._flip_frame(f) for f in packet.frames)
        out = Packet(events, packet.triggers, packet.imu, frames)
        return [out] if _has_data(out) else []

    def _flip_frame(self, frame: Frame) -> Frame:
        height, width = frame.pixels.shape[:2]
        if self.axis == "x":
            pixels, x, y = frame.pixels[:, ::-1], self.width - frame.x - width, frame.y
        else:
            pixels, x, y = frame.pixels[::-1], frame.x, self.height - frame.y - height
        return Frame(frame.t, pixels, frame.exposure_start, frame.exposure_end, x, y)


@declares("filter", "transpose", "swap x and y")
class Transpose(Filter):
    """Swap x and y, and width and height."""

    def properties(self, upstream: Properties) -> Properties:
        return upstream.derived(width=upstream.height, height=upstream.width)

    def apply(self, packet: Packet) -> Iterable[Packet]:
        source = packet.events
        events = np.empty(len(source), EVENTS_DTYPE)
        events["t"], events["on"] = source["t"], source["on"]
        events["x"], events["y"] = source["y"], source["x"]
        frames = tuple(
            Frame(f.t, np.swapaxes(f.pixels, 0, 1), f.exposure_start, f.exposure_end, f.y, f.x)
            for f in packet.frames
        )
        return [Packet(events, packet.triggers, packet.imu, frames)]
