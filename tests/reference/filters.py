"""Slow, plain-Python reference for the stream filters of ``aerflow.filters``.

Written from the filters' docstrings, one event at a time, to cross-check the numpy/numba
implementation. It imports nothing from ``aerflow`` and works on plain values:

* an event is a tuple ``(t, x, y, on)``;
* a side-channel item (trigger, IMU sample) is a tuple whose first element is its time ``t``
  (the rest is carried along untouched);
* a frame is a :class:`RefFrame` whose ``pixels`` are nested lists indexed ``[row][column]``
  (a colour pixel is itself a list of channel values);
* a packet is a :class:`RefPacket`; a whole stream (every packet in file order, run together)
  is one :class:`RefPacket` too.

Where a docstring leaves a choice open, the choice made here is stated next to the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

Event = tuple[int, int, int, bool]

__all__ = [
    "Event",
    "RefFrame",
    "RefPacket",
    "chunk_by_count",
    "chunk_by_duration",
    "concat",
    "crop",
    "decimate",
    "denoise",
    "flip",
    "from_packet",
    "pace_schedule",
    "polarity",
    "refractory",
    "shift_time",
    "time_slice",
    "transpose",
]


@dataclass(frozen=True)
class RefFrame:
    t: int
    pixels: list[Any]
    exposure_start: int | None = None
    exposure_end: int | None = None
    x: int = 0
    y: int = 0

    @property
    def height(self) -> int:
        return len(self.pixels)

    @property
    def width(self) -> int:
        return len(self.pixels[0]) if self.pixels else 0


@dataclass
class RefPacket:
    events: list[Event] = field(default_factory=list)
    triggers: list[tuple[Any, ...]] = field(default_factory=list)
    imu: list[tuple[Any, ...]] = field(default_factory=list)
    frames: list[RefFrame] = field(default_factory=list)

    def has_data(self) -> bool:
        return bool(self.events or self.triggers or self.imu or self.frames)

    def sides(self) -> RefPacket:
        return RefPacket([], list(self.triggers), list(self.imu), list(self.frames))


def from_packet(packet: Any) -> RefPacket:
    """Plain values from anything shaped like ``aerflow.Packet`` (numpy structured arrays)."""

    def imu_item(row: Any) -> tuple[Any, ...]:
        return (
            int(row["t"]),
            float(row["temperature"]),
            tuple(float(v) for v in row["accelerometer"]),
            tuple(float(v) for v in row["gyroscope"]),
            tuple(float(v) for v in row["magnetometer"]),
        )

    return RefPacket(
        [(int(t), int(x), int(y), bool(on)) for t, x, y, on in packet.events.tolist()],
        [(int(t), int(i), bool(r)) for t, i, r in packet.triggers.tolist()],
        [imu_item(row) for row in packet.imu],
        [
            RefFrame(f.t, f.pixels.tolist(), f.exposure_start, f.exposure_end, f.x, f.y)
            for f in packet.frames
        ],
    )


def concat(packets: list[RefPacket]) -> RefPacket:
    out = RefPacket()
    for packet in packets:
        out.events.extend(packet.events)
        out.triggers.extend(packet.triggers)
        out.imu.extend(packet.imu)
        out.frames.extend(packet.frames)
    return out


def _side_items(stream: RefPacket) -> list[tuple[str, int, Any]]:
    """Every side item as (channel, time, item), channel by channel, each in file order."""
    items: list[tuple[str, int, Any]] = []
    items += [("triggers", item[0], item) for item in stream.triggers]
    items += [("imu", item[0], item) for item in stream.imu]
    items += [("frames", frame.t, frame) for frame in stream.frames]
    return items


def _add_side(packet: RefPacket, channel: str, item: Any) -> None:
    getattr(packet, channel).append(item)


# -- regrouping -------------------------------------------------------------------------------
def chunk_by_count(stream: RefPacket, count: int) -> list[RefPacket]:
    """ChunkByCount: packets of exactly ``count`` events, the last possibly shorter.

    "Side channels go with the first chunk whose last event is not earlier than them."
    Choice for items later than every chunk's last event: they go with the last, shorter
    chunk when there is one, else with a final packet that holds no events.
    """
    events = stream.events
    chunks = [RefPacket(events[i : i + count]) for i in range(0, len(events), count)]
    partial = bool(chunks) and len(chunks[-1].events) < count
    trailing: RefPacket | None = None
    for channel, t, item in _side_items(stream):
        target = None
        for chunk in chunks:
            if chunk.events[-1][0] >= t:
                target = chunk
                break
        if target is None:
            if partial:
                target = chunks[-1]
            else:
                if trailing is None:
                    trailing = RefPacket()
                target = trailing
        _add_side(target, channel, item)
    if trailing is not None:
        chunks.append(trailing)
    return chunks


def chunk_by_duration(
    stream: RefPacket, duration: int, start: int | None = None
) -> list[RefPacket]:
    """ChunkByDuration: consecutive windows ``[s + k d, s + (k + 1) d)`` of event time, ``s``
    the first event's time (or ``start``); empty windows give empty packets; an event whose
    time steps back stays in the window where it arrives (events are walked in arrival
    order and a window closes only when an event at or after its end arrives).

    Side items go to the window covering their time; choice for items outside every window:
    before the first window, the first window; after the last one (the window of the last
    event), the last window. Without events, everything is one packet.
    """
    if not stream.events:
        return [stream.sides()] if stream.has_data() else []
    origin = stream.events[0][0] if start is None else start
    windows = [RefPacket()]
    end = origin + duration
    for event in stream.events:
        while event[0] >= end:
            windows.append(RefPacket())
            end += duration
        windows[-1].events.append(event)
    for channel, t, item in _side_items(stream):
        index = 0
        if t >= origin:
            index = min((t - origin) // duration, len(windows) - 1)
        _add_side(windows[index], channel, item)
    return windows


# -- time -------------------------------------------------------------------------------------
def time_slice(stream: RefPacket, start: int | None, end: int | None, absolute: bool) -> RefPacket:
    """TimeSlice: events and side items with ``start <= t < end``, times counted from the
    stream's first event unless ``absolute``. Choice: a relative slice of a stream without
    events is empty (there is no first event to count from)."""
    if absolute:
        origin = 0
    elif stream.events:
        origin = stream.events[0][0]
    else:
        return RefPacket()
    low = None if start is None else origin + start
    high = None if end is None else origin + end

    def inside(t: int) -> bool:
        return (low is None or t >= low) and (high is None or t < high)

    return RefPacket(
        [e for e in stream.events if inside(e[0])],
        [item for item in stream.triggers if inside(item[0])],
        [item for item in stream.imu if inside(item[0])],
        [frame for frame in stream.frames if inside(frame.t)],
    )


def shift_time(
    stream: RefPacket, offset: int | None, first_events: list[Any] | None = None
) -> RefPacket:
    """ShiftTime: add ``offset`` to every time (events, side items, frame times and
    exposures); a time that would fall below 0 is a ValueError. By default the offset moves
    the earliest event of the first packet that has events to 0 (``first_events``, the
    events of that packet). Choice: without events and without an offset, nothing moves."""
    if offset is None:
        if not stream.events:
            return concat([stream])
        offset = -min(t for t, *_ in (first_events or stream.events))

    def move(t: int) -> int:
        if t + offset < 0:
            raise ValueError(f"t={t} shifted by {offset} falls below 0")
        return t + offset

    def move_optional(t: int | None) -> int | None:
        return None if t is None else move(t)

    return RefPacket(
        [(move(t), x, y, on) for t, x, y, on in stream.events],
        [(move(item[0]), *item[1:]) for item in stream.triggers],
        [(move(item[0]), *item[1:]) for item in stream.imu],
        [
            replace(
                frame,
                t=move(frame.t),
                exposure_start=move_optional(frame.exposure_start),
                exposure_end=move_optional(frame.exposure_end),
            )
            for frame in stream.frames
        ],
    )


def pace_schedule(
    pieces: list[RefPacket], speed: float, work: list[float], clock: float = 0.0
) -> tuple[list[float], list[float]]:
    """Pace, against a clock that moves only when the filter sleeps or the consumer works.

    Each piece holding events is released no sooner than ``wall0 + (last - first) / 1e6 /
    speed`` s, ``first`` the stream's first event time and ``wall0`` the clock when that
    event's piece was reached; the consumer then works ``work[i]`` s on piece ``i``.
    Returns (the sleeps needed, the clock at each release)."""
    sleeps: list[float] = []
    released: list[float] = []
    start: tuple[float, int] | None = None
    for index, piece in enumerate(pieces):
        if piece.events:
            if start is None:
                start = (clock, piece.events[0][0])
            due = start[0] + (piece.events[-1][0] - start[1]) / 1e6 / speed
            if due > clock:
                sleeps.append(due - clock)
                clock = due
        released.append(clock)
        clock += work[index]
    return sleeps, released


# -- selection and geometry ---------------------------------------------------------------------
def _with_events(stream: RefPacket, events: list[Event]) -> RefPacket:
    return RefPacket(events, list(stream.triggers), list(stream.imu), list(stream.frames))


def polarity(stream: RefPacket, keep: str) -> RefPacket:
    want = keep == "on"
    return _with_events(stream, [e for e in stream.events if e[3] == want])


def _inside_sensor(events: list[Event], sensor: tuple[int, int]) -> tuple[list[Event], int]:
    width, height = sensor
    kept = [e for e in events if e[1] < width and e[2] < height]
    return kept, len(events) - len(kept)


def crop(
    stream: RefPacket,
    sensor: tuple[int, int],
    left: int,
    top: int,
    width: int,
    height: int,
    shift: bool,
) -> tuple[RefPacket, int]:
    """Crop: events inside the rectangle; with ``shift`` its corner becomes (0, 0). Frames are
    cut to the part inside the rectangle (dropped when none is). Returns (result, events that
    were outside the sensor)."""
    _, outside_sensor = _inside_sensor(stream.events, sensor)
    dx, dy = (left, top) if shift else (0, 0)
    events = [
        (t, x - dx, y - dy, on)
        for t, x, y, on in stream.events
        if left <= x < left + width and top <= y < top + height
    ]
    frames = []
    for frame in stream.frames:
        rows = []
        for row_index, row in enumerate(frame.pixels):
            sensor_y = frame.y + row_index
            if not top <= sensor_y < top + height:
                continue
            cells = [
                cell
                for column_index, cell in enumerate(row)
                if left <= frame.x + column_index < left + width
            ]
            if cells:
                rows.append(cells)
        if not rows:
            continue
        x0, y0 = max(frame.x, left), max(frame.y, top)
        frames.append(replace(frame, pixels=rows, x=x0 - dx, y=y0 - dy))
    return RefPacket(events, list(stream.triggers), list(stream.imu), frames), outside_sensor


def flip(stream: RefPacket, sensor: tuple[int, int], axis: str) -> tuple[RefPacket, int]:
    """Flip: mirror left-right (x) or up-down (y); events outside the sensor are dropped and
    counted. A frame's pixels are mirrored and its region moves to the mirrored place."""
    width, height = sensor
    kept, dropped = _inside_sensor(stream.events, sensor)
    if axis == "x":
        events = [(t, width - 1 - x, y, on) for t, x, y, on in kept]
        frames = [
            replace(f, pixels=[list(reversed(row)) for row in f.pixels], x=width - f.x - f.width)
            for f in stream.frames
        ]
    else:
        events = [(t, x, height - 1 - y, on) for t, x, y, on in kept]
        frames = [
            replace(f, pixels=list(reversed(f.pixels)), y=height - f.y - f.height)
            for f in stream.frames
        ]
    return RefPacket(events, list(stream.triggers), list(stream.imu), frames), dropped


def transpose(stream: RefPacket) -> RefPacket:
    """Transpose: swap x and y of events; a frame's rows become its columns."""
    events = [(t, y, x, on) for t, x, y, on in stream.events]
    frames = []
    for f in stream.frames:
        pixels = [[f.pixels[row][column] for row in range(f.height)] for column in range(f.width)]
        frames.append(replace(f, pixels=pixels, x=f.y, y=f.x))
    return RefPacket(events, list(stream.triggers), list(stream.imu), frames)


def refractory(stream: RefPacket, sensor: tuple[int, int], period: int) -> tuple[RefPacket, int]:
    """Refractory: drop an event when its pixel kept one less than ``period`` µs before.

    Times are compared signed: an event earlier than the last kept one of its pixel (time
    stepping back) is within the period. Events outside the sensor are dropped and counted
    and leave no trace."""
    kept_events, dropped = _inside_sensor(stream.events, sensor)
    last_kept: dict[tuple[int, int], int] = {}
    out = []
    for event in kept_events:
        t, x, y, _ = event
        previous = last_kept.get((x, y))
        if previous is not None and t - previous < period:
            continue
        last_kept[(x, y)] = t
        out.append(event)
    return _with_events(stream, out), dropped


def denoise(stream: RefPacket, sensor: tuple[int, int], window: int) -> tuple[RefPacket, int]:
    """Denoise: keep an event when one of its 8 neighbours fired at most ``window`` µs before
    it. "Fired" counts every event of the neighbour, kept or not; times are compared signed
    (a neighbour event later than this one, time stepping back, counts as support). Events
    outside the sensor are dropped and counted and leave no trace."""
    width, height = sensor
    inside, dropped = _inside_sensor(stream.events, sensor)
    last: dict[tuple[int, int], int] = {}
    out = []
    for event in inside:
        t, x, y, _ = event
        supported = False
        for ny in (y - 1, y, y + 1):
            for nx in (x - 1, x, x + 1):
                if (nx, ny) == (x, y) or not (0 <= nx < width and 0 <= ny < height):
                    continue
                previous = last.get((nx, ny))
                if previous is not None and t - previous <= window:
                    supported = True
        if supported:
            out.append(event)
        last[(x, y)] = t
    return _with_events(stream, out), dropped


def decimate(stream: RefPacket, sensor: tuple[int, int], factor: int) -> tuple[RefPacket, int]:
    """Decimate: keep the factor-th, 2 factor-th, ... event of each pixel. Events outside the
    sensor are dropped and counted and do not count towards any pixel."""
    inside, dropped = _inside_sensor(stream.events, sensor)
    seen: dict[tuple[int, int], int] = {}
    out = []
    for event in inside:
        key = (event[1], event[2])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] % factor == 0:
            out.append(event)
    return _with_events(stream, out), dropped
