"""Filters: packet-to-packet steps chained onto a stream (``stream.filter(...)`` or the
stream's shortcut methods).

A filter sees the upstream :class:`~aerflow.stream.Properties` once, before the first
packet, and then every packet in order; it may hold state across packets (the refractory
and denoise maps, a partly filled chunk). Side channels (triggers, IMU samples, frames)
travel with the events: time filters cut them by time, geometry filters transform frames.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _filter_kernels as kernels
from ._checks import check_sensor_size
from ._stopping import pause
from .events import EVENTS_DTYPE, Frame, Packet, concatenate_packets, empty_events, parse_time
from .stream import Properties

__all__ = [
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


class Filter(ABC):
    """One step of a pipeline."""

    exhausted: bool = False
    """Set when no later packet can pass: the stream stops reading its source."""

    def properties(self, upstream: Properties) -> Properties:
        """The properties of the filtered stream."""
        return upstream.derived()

    @abstractmethod
    def apply(self, packet: Packet) -> Iterable[Packet]:
        """The packets that ``packet`` turns into (often one, possibly none)."""

    def finish(self) -> Iterable[Packet]:
        """Packets still held when the upstream ends."""
        return ()


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


# -- regrouping -------------------------------------------------------------------------------
def _sides_of(packet: Packet) -> Packet:
    return Packet(empty_events(), packet.triggers, packet.imu, packet.frames)


def _distribute(sides: Packet, boundaries: npt.NDArray[Any], after: bool) -> list[Packet]:
    """Side channels split into ``len(boundaries) + 1`` packets by time: an item goes to the
    first part whose boundary is at or above its time (``after``: strictly above), else to
    the last part."""
    side: Literal["left", "right"] = "right" if after else "left"

    def parts(t: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        found: npt.NDArray[np.intp] = np.searchsorted(boundaries, t, side=side)
        return found

    trigger_part, imu_part = parts(sides.triggers["t"]), parts(sides.imu["t"])
    frame_part = parts(np.array([f.t for f in sides.frames], np.uint64))
    return [
        Packet(
            empty_events(),
            sides.triggers[trigger_part == k],
            sides.imu[imu_part == k],
            tuple(f for f, part in zip(sides.frames, frame_part, strict=True) if part == k),
        )
        for k in range(len(boundaries) + 1)
    ]


def _merge(events: npt.NDArray[Any], sides: Packet) -> Packet:
    return Packet(events, sides.triggers, sides.imu, sides.frames)


class ChunkByCount(Filter):
    """Packets of exactly ``count`` events (the last may be shorter). Side channels go with
    the first chunk whose last event is not earlier than them."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.count = int(count)
        self._held: list[Packet] = []
        self._held_events = 0

    def apply(self, packet: Packet) -> Iterable[Packet]:
        self._held.append(packet)
        self._held_events += len(packet.events)
        if self._held_events < self.count:
            return []
        whole = concatenate_packets(self._held)
        full = (len(whole.events) // self.count) * self.count
        last_times = whole.events["t"][self.count - 1 : full : self.count]
        sides = _distribute(_sides_of(whole), last_times, after=False)
        out = [
            _merge(whole.events[k * self.count : (k + 1) * self.count], sides[k])
            for k in range(len(last_times))
        ]
        rest = _merge(whole.events[full:], sides[-1])
        self._held = [rest] if _has_data(rest) else []
        self._held_events = len(rest.events)
        return out

    def finish(self) -> Iterable[Packet]:
        rest = concatenate_packets(self._held) if self._held else None
        self._held = []
        return [rest] if rest is not None and _has_data(rest) else []


class ChunkByDuration(Filter):
    """Packets covering consecutive windows of ``duration`` µs of event time, the first
    starting at the first event (or at ``start``); empty windows give empty packets. An
    event whose time steps back stays in the window where it arrives; side channels go to
    the window their time falls in (the last one once the stream ends)."""

    def __init__(self, duration: int | str, start: int | str | None = None) -> None:
        self.duration = parse_time(duration)
        if self.duration < 1:
            raise ValueError("duration must be at least 1 µs")
        self._end: int | None = None if start is None else parse_time(start) + self.duration
        self._held_events: list[npt.NDArray[Any]] = []
        self._held_sides: list[Packet] = []

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if _has_data(sides := _sides_of(packet)):
            self._held_sides.append(sides)
        t = packet.events["t"]
        if not len(t):
            return []
        if self._end is None:
            self._end = int(t[0]) + self.duration
        first_end = self._end
        windows = max(0, (int(t.max()) - first_end) // self.duration + 1)
        splits = np.empty(windows, np.int64)
        found, self._end = kernels.window_splits(t, first_end, self.duration, splits)
        if not found:
            self._held_events.append(packet.events)
            return []
        pieces = np.split(packet.events, splits[:found])
        boundaries = first_end + self.duration * np.arange(found, dtype=np.uint64)
        parts = _distribute(concatenate_packets(self._held_sides), boundaries, after=True)
        first = np.concatenate([*self._held_events, pieces[0]])
        out = [_merge(first, parts[0])] + [_merge(pieces[k], parts[k]) for k in range(1, found)]
        self._held_events = [pieces[found]]
        self._held_sides = [parts[found]] if _has_data(parts[found]) else []
        return out

    def finish(self) -> Iterable[Packet]:
        events = np.concatenate(self._held_events) if self._held_events else empty_events()
        rest = _merge(events, concatenate_packets(self._held_sides))
        self._held_events, self._held_sides = [], []
        return [rest] if _has_data(rest) else []


# -- time -------------------------------------------------------------------------------------
class TimeSlice(Filter):
    """Events (and side channels) with ``start <= t < end``; times count from the stream's
    first event unless ``absolute``."""

    def __init__(
        self,
        start: int | str | None = None,
        end: int | str | None = None,
        *,
        absolute: bool = False,
    ) -> None:
        self.start = None if start is None else parse_time(start)
        self.end = None if end is None else parse_time(end)
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("the slice ends before it starts")
        self.absolute = absolute
        self._origin: int | None = 0 if absolute else None
        self._early: list[Packet] = []  # side channels before the first event

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self._origin is None:
            if not len(packet.events):
                self._early.append(packet)
                return []
            self._origin = int(packet.events["t"][0])
            packet = concatenate_packets([*self._early, packet])
            self._early = []
        t = packet.events["t"]
        start = None if self.start is None else self._origin + self.start
        end = None if self.end is None else self._origin + self.end
        keep = np.ones(len(t), bool)
        if start is not None:
            keep &= t >= start
        if end is not None:
            keep &= t < end
            if len(t) and int(t.min()) >= end:
                self.exhausted = True
        out = _time_mask(packet, keep, start, end)
        return [out] if _has_data(out) else []


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


class ShiftTime(Filter):
    """Add ``offset`` µs (negative to move back) to every time; by default, move the first
    packet's earliest event to t = 0. A time the shift would take below 0 or past 2**64 - 1
    is a ValueError, never a silent clamp."""

    def __init__(self, offset: int | str | None = None) -> None:
        if offset is None:
            self.offset: int | None = None
        elif isinstance(offset, str) and offset.strip().startswith("-"):
            self.offset = -parse_time(offset.strip()[1:])
        else:
            self.offset = offset if isinstance(offset, int) else parse_time(offset)
        self._early: list[Packet] = []  # side channels before the first event

    def properties(self, upstream: Properties) -> Properties:
        return upstream.derived(t0=None)

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self.offset is None:
            if not len(packet.events):
                self._early.append(packet)
                return []
            self.offset = -int(packet.events["t"].min())
            packet = concatenate_packets([*self._early, packet])
            self._early = []
        return [self._shifted(packet, self.offset)]

    def finish(self) -> Iterable[Packet]:
        # No event ever came, so nothing says where time starts: side channels pass unmoved.
        early, self._early = self._early, []
        return early

    @staticmethod
    def _shifted(packet: Packet, offset: int) -> Packet:
        def shifted(t: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
            times: npt.NDArray[np.uint64] = t.astype(np.uint64)
            if len(times):
                _check_shift(int(times.min()), int(times.max()), offset)
            # In uint64 throughout: times of 2**63 µs and more stay exact.
            if offset >= 0:
                times += np.uint64(offset)
            else:
                times -= np.uint64(-offset)
            return times

        events = packet.events.copy()
        events["t"] = shifted(events["t"])
        triggers = packet.triggers.copy()
        triggers["t"] = shifted(triggers["t"])
        imu = packet.imu.copy()
        imu["t"] = shifted(imu["t"])
        frames = tuple(_shift_frame(f, offset) for f in packet.frames)
        return Packet(events, triggers, imu, frames)


def _check_shift(first: int, last: int, offset: int) -> None:
    if first + offset < 0:
        raise ValueError(
            f"shifting time by {offset} µs would move t={first} µs below 0: "
            "shift by less, or cut the earlier part first"
        )
    if last + offset >= 1 << 64:
        raise ValueError(f"shifting time by {offset} µs would move t={last} µs past 2**64 - 1")


def _shift_frame(frame: Frame, offset: int) -> Frame:
    def move(t: int) -> int:
        _check_shift(t, t, offset)
        return t + offset

    def move_optional(t: int | None) -> int | None:
        return None if t is None else move(t)

    return Frame(
        move(frame.t),
        frame.pixels,
        move_optional(frame.exposure_start),
        move_optional(frame.exposure_end),
        frame.x,
        frame.y,
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


# -- side channels ----------------------------------------------------------------------------
SIDE_CHANNELS = ("triggers", "imu", "frames")


class SideChannel(Filter):
    """Drop one side channel (``triggers``, ``imu`` or ``frames``), or keep only the
    triggers whose id is in ``keep_ids``: for outputs that cannot hold them all, or simply
    to leave them out. Events pass untouched."""

    def __init__(self, channel: str, keep_ids: Iterable[int] | None = None) -> None:
        if channel not in SIDE_CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(SIDE_CHANNELS)}, got {channel!r}")
        ids = None if keep_ids is None else sorted(set(keep_ids))
        if ids is not None and channel != "triggers":
            raise ValueError("only triggers have ids to keep")
        if ids is not None and not all(0 <= i <= 255 for i in ids):
            raise ValueError(f"trigger ids lie in 0..255, got {ids}")
        self.channel = channel
        self._ids = None if ids is None else np.array(ids, np.uint8)

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self.channel == "triggers":
            triggers = packet.triggers
            kept = (
                triggers[:0] if self._ids is None else triggers[np.isin(triggers["id"], self._ids)]
            )
            packet = replace(packet, triggers=kept)
        elif self.channel == "imu":
            packet = replace(packet, imu=packet.imu[:0])
        else:
            packet = replace(packet, frames=())
        return [packet] if _has_data(packet) else []


# -- selection --------------------------------------------------------------------------------
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


class Refractory(_SensorFilter):
    """Drop an event when its pixel kept one less than ``period`` µs before."""

    def __init__(self, period: int | str) -> None:
        super().__init__()
        self.period = parse_time(period)
        self._last: npt.NDArray[np.int64] | None = None

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self._last is None:
            self._last = np.full((self.height, self.width), kernels.NEVER, np.int64)
        events = packet.events
        keep = np.empty(len(events), bool)
        kernels.refractory_mask(
            events["t"], events["x"], events["y"], self._last, self.period, keep
        )
        self._inside(events)
        out = _with_events(packet, events[keep])
        return [out] if _has_data(out) else []


class Denoise(_SensorFilter):
    """Background-activity filter: keep an event when one of its 8 neighbours fired at most
    ``window`` µs before it. Isolated noise (and lone hot pixels) goes; edges stay."""

    def __init__(self, window: int | str = "10ms") -> None:
        super().__init__()
        self.window = parse_time(window)
        self._last: npt.NDArray[np.int64] | None = None

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self._last is None:
            self._last = np.full((self.height, self.width), kernels.NEVER, np.int64)
        events = packet.events
        keep = np.empty(len(events), bool)
        kernels.denoise_mask(events["t"], events["x"], events["y"], self._last, self.window, keep)
        self._inside(events)
        out = _with_events(packet, events[keep])
        return [out] if _has_data(out) else []


class Decimate(_SensorFilter):
    """Keep every ``factor``-th event of each pixel."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError("factor must be at least 1")
        self.factor = int(factor)
        self._counts: npt.NDArray[np.int64] | None = None

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self._counts is None:
            self._counts = np.zeros((self.height, self.width), np.int64)
        events = packet.events
        keep = np.empty(len(events), bool)
        kernels.decimate_mask(events["x"], events["y"], self._counts, self.factor, keep)
        self._inside(events)
        out = _with_events(packet, events[keep])
        return [out] if _has_data(out) else []
