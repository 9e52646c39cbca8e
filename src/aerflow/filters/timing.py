"""Filters over event time: regrouping into packets (``chunk``), cutting a slice of time
(``time-slice``) and moving every time (``shift-time``). Side channels follow their times."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import AerflowError
from ..events import Frame, Packet, concatenate_packets, empty_events, parse_time
from ..properties import Properties
from ..registry import Component, Option, declares, register_component
from ..stream import Filter
from ._common import _TIME_HELP, _has_data, _kernels, _time_mask

__all__ = ["ChunkByCount", "ChunkByDuration", "ShiftTime", "TimeSlice"]


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
        found, self._end = _kernels().window_splits(t, first_end, self.duration, splits)
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


def _chunk(events: int | None = None, duration: int | str | None = None) -> Filter:
    if (events is None) == (duration is None):
        raise AerflowError("chunk needs either --events N or --duration TIME")
    return ChunkByCount(events) if events is not None else ChunkByDuration(duration or "")


register_component(
    "filter",
    Component(
        "chunk",
        "regroup into packets of N events or of a duration of event time",
        (
            Option("events", int, "events per packet"),
            Option("duration", str, f"event time per packet ({_TIME_HELP})"),
        ),
        _chunk,
    ),
)


# -- time -------------------------------------------------------------------------------------
@declares(
    "filter",
    "time-slice",
    "keep events with START <= t < END (from the first event unless --absolute)",
    (
        Option("start", str, f"first time kept ({_TIME_HELP})"),
        Option("end", str, "first time no longer kept"),
        Option("absolute", bool, "times are timestamps, not offsets", default=False),
    ),
    lambda start=None, end=None, absolute=False: TimeSlice(start, end, absolute=absolute),
)
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


@declares(
    "filter",
    "shift-time",
    "add an offset to every time (default: start at 0); a time it would take below 0 is an error",
    (Option("offset", str, f"µs to add, may be negative: -1s ({_TIME_HELP})"),),
    lambda offset=None: ShiftTime(offset),
)
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
