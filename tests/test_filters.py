"""Every filter of ``aerflow.filters`` against the plain-Python reference in
``tests/reference/filters.py``, on generated streams split into packets at random points.

Generated streams follow one convention for the order of side-channel items and events
("file order"): items come in time order per channel, and where the tests below say
"monotone", a side item is strictly later than every event before it in the file (so a
trigger is never placed after an event of the same time). Streams "stepping back" hold
events whose time is a little (1..3 µs) earlier than the event before them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerflow import _stopping as stopping_module
from aerflow import filters as filters_module
from aerflow.events import (
    EVENTS_DTYPE,
    IMU_DTYPE,
    TRIGGERS_DTYPE,
    Frame,
    Packet,
    concatenate_packets,
    empty_events,
    empty_imu,
    empty_triggers,
)
from aerflow.filters import (
    ChunkByCount,
    ChunkByDuration,
    Crop,
    Decimate,
    Denoise,
    Filter,
    Flip,
    Pace,
    Polarity,
    Refractory,
    ShiftTime,
    TimeSlice,
    Transpose,
)
from aerflow.stream import IterableStream, Properties

try:
    from tests.reference import filters as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import filters as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------------------------
# Generated streams
# --------------------------------------------------------------------------------------------
@dataclass
class Case:
    sensor: tuple[int, int]
    packets: list[Packet]

    @property
    def properties(self) -> Properties:
        return Properties("test", self.sensor[0], self.sensor[1])

    @property
    def whole(self) -> list[Packet]:
        return [concatenate_packets(self.packets)] if self.packets else []

    @property
    def reference(self) -> ref.RefPacket:
        return ref.concat([ref.from_packet(p) for p in self.packets])


def _frame(t: int, seed: int, index: int, sensor: tuple[int, int]) -> Frame:
    width, height = sensor
    fw = 1 + seed % width
    fh = 1 + (seed // 7) % height
    fx = (seed // 13) % (width - fw + 1)
    fy = (seed // 17) % (height - fh + 1)
    shape: tuple[int, ...] = (fh, fw, 3) if seed % 2 else (fh, fw)
    pixels = (np.arange(int(np.prod(shape))) + 50 * index).reshape(shape).astype(np.uint16)
    exposure = (max(t - seed % 9, 0), t) if seed % 3 else (None, None)
    return Frame(t, pixels, exposure[0], exposure[1], fx, fy)


def _packet(items: list[tuple[str, int, Any]]) -> Packet:
    events = [payload for kind, _, payload in items if kind == "e"]
    triggers = [payload for kind, _, payload in items if kind == "t"]
    imu = [payload for kind, _, payload in items if kind == "i"]
    frames = tuple(payload for kind, _, payload in items if kind == "f")
    return Packet(
        np.array(events, EVENTS_DTYPE) if events else empty_events(),
        np.array(triggers, TRIGGERS_DTYPE) if triggers else empty_triggers(),
        np.array(imu, IMU_DTYPE) if imu else empty_imu(),
        frames,
    )


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    sides: bool = True,
    step_back: bool = True,
    split_after_events: bool = False,
    max_items: int = 40,
    max_delta: int = 25,
) -> Case:
    """A stream on a small sensor (so pixels repeat), split into packets.

    Coordinates go up to 2 past the sensor (out of range) and now and then to 65535.
    ``split_after_events``: packets end only right after an event (or are empty), so side
    items always share a packet with the event that follows them.
    """
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))

    def coordinate(size: int) -> st.SearchStrategy[int]:
        # Mostly on the sensor (80 %), sometimes just past it, now and then far off.
        def pick(v: tuple[int, int, int]) -> int:
            inside, past, selector = v
            return 65535 if selector == 0 else past if selector == 1 else inside

        return st.tuples(
            st.integers(0, size - 1), st.integers(size, size + 1), st.integers(0, 9)
        ).map(pick)

    coordinate_x, coordinate_y = coordinate(width), coordinate(height)
    kinds = st.sampled_from("eeeeeetif") if sides else st.just("e")
    low = -3 if step_back else 0
    size = draw(st.integers(0, max_items))
    raw = draw(
        st.lists(
            st.tuples(
                kinds,
                st.integers(low, max_delta),
                coordinate_x,
                coordinate_y,
                st.booleans(),
                st.integers(0, 10_000),
            ),
            min_size=size,
            max_size=size,
        )
    )
    t = draw(st.integers(0, 100))
    items: list[tuple[str, int, Any]] = []
    for index, (kind, delta, x, y, on, seed) in enumerate(raw):
        if kind == "e":
            t = max(t + delta, 0)
            items.append((kind, t, (t, x, y, on)))
            continue
        t = t + max(delta, 1)  # a side item is later than what came before it
        if kind == "t":
            items.append((kind, t, (t, seed % 4, on)))
        elif kind == "i":
            value = float(index)
            items.append((kind, t, (t, value, (value, 0.5, -1.0), (1.0, 2.0, value), (0, 0, 0))))
        else:
            items.append((kind, t, _frame(t, seed, index, (width, height))))
    if split_after_events:
        allowed = sorted(
            {0, len(items)} | {i + 1 for i, item in enumerate(items) if item[0] == "e"}
        )
    else:
        allowed = list(range(len(items) + 1))
    cuts = sorted(draw(st.lists(st.sampled_from(allowed), max_size=6)))
    bounds = [0, *cuts, len(items)]
    packets = [_packet(items[a:b]) for a, b in itertools.pairwise(bounds)]
    return Case((width, height), packets)


def apply(
    make: Callable[[], Filter], packets: Iterable[Packet], properties: Properties
) -> tuple[list[ref.RefPacket], Filter]:
    """Run ``packets`` through a fresh filter as a stream; the output in plain values."""
    item = make()
    stream = IterableStream(list(packets), properties).filter(item)
    return [ref.from_packet(p) for p in stream], item


def check_regrouping(
    make: Callable[[], Filter], case: Case, expected: list[ref.RefPacket]
) -> list[ref.RefPacket]:
    split, _ = apply(make, case.packets, case.properties)
    whole, _ = apply(make, case.whole, case.properties)
    assert split == whole, "the chunks depend on where the input packets were split"
    assert split == expected
    return split


def check_selection(
    make: Callable[[], Filter],
    case: Case,
    expected: ref.RefPacket,
    dropped: int | None = None,
    *,
    drops_empty: bool = True,
) -> None:
    split, split_filter = apply(make, case.packets, case.properties)
    whole, whole_filter = apply(make, case.whole, case.properties)
    assert ref.concat(split) == ref.concat(whole), "the result depends on packet boundaries"
    assert ref.concat(split) == expected
    if drops_empty:
        assert all(p.has_data() for p in split), "a packet with nothing in it was passed on"
    if dropped is not None:
        assert split_filter.dropped_out_of_range == dropped  # type: ignore[attr-defined]
        assert whole_filter.dropped_out_of_range == dropped  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Regrouping
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(case=cases(step_back=False, max_delta=3), count=st.integers(1, 7))
def test_chunk_by_count_with_side_channels(case: Case, count: int) -> None:
    expected = ref.chunk_by_count(case.reference, count)
    out = check_regrouping(lambda: ChunkByCount(count), case, expected)
    assert all(len(p.events) == count for p in out[:-1])


@SETTINGS
@given(case=cases(sides=False), count=st.integers(1, 7))
def test_chunk_by_count_stepping_back(case: Case, count: int) -> None:
    check_regrouping(lambda: ChunkByCount(count), case, ref.chunk_by_count(case.reference, count))


def test_chunk_by_count_side_item_at_the_time_of_a_chunks_last_event() -> None:
    # Events 0..5, chunks of 3: [0 1 2] [3 4 5]. A trigger at 2 goes with the first chunk
    # (its last event, 2, is not earlier), one at 3 with the second; one at 9 (after every
    # event) with a final event-less packet.
    events = np.array([(t, 0, 0, True) for t in range(6)], EVENTS_DTYPE)
    triggers = np.array([(2, 0, True), (3, 1, True), (9, 2, False)], TRIGGERS_DTYPE)
    packets = [Packet(events[:2]), Packet(events[2:], triggers)]
    out = list(IterableStream(packets, Properties("t", 4, 4)).chunks(events=3))
    assert [p.events["t"].tolist() for p in out] == [[0, 1, 2], [3, 4, 5], []]
    assert [p.triggers["id"].tolist() for p in out] == [[0], [1], [2]]


@SETTINGS
@given(
    case=cases(step_back=False),
    duration=st.integers(1, 40),
    start=st.none() | st.integers(0, 150),
)
def test_chunk_by_duration_with_side_channels(case: Case, duration: int, start: int | None) -> None:
    expected = ref.chunk_by_duration(case.reference, duration, start)
    check_regrouping(lambda: ChunkByDuration(duration, start), case, expected)


@SETTINGS
@given(
    case=cases(sides=False),
    duration=st.integers(1, 40),
    start=st.none() | st.integers(0, 150),
)
def test_chunk_by_duration_stepping_back(case: Case, duration: int, start: int | None) -> None:
    expected = ref.chunk_by_duration(case.reference, duration, start)
    check_regrouping(lambda: ChunkByDuration(duration, start), case, expected)


def test_chunk_by_duration_boundaries_empty_windows_and_stepping_back() -> None:
    t = [100, 109, 110, 108, 135, 150]
    events = np.array([(v, 1, 1, False) for v in t], EVENTS_DTYPE)
    triggers = np.array([(110, 0, True), (125, 1, True), (140, 2, True)], TRIGGERS_DTYPE)
    stream = IterableStream(
        [Packet(events[:3], triggers[:1]), Packet(events[3:], triggers[1:])],
        Properties("t", 4, 4),
    )
    out = list(stream.chunks(duration="10us"))
    # Windows [100,110) [110,120) [120,130) [130,140) [140,150) [150,160): 110 opens the
    # second window, 108 (a step back) stays there, 120..130 is empty.
    assert [p.events["t"].tolist() for p in out] == [[100, 109], [110, 108], [], [135], [], [150]]
    assert [p.triggers["id"].tolist() for p in out] == [[], [0], [1], [], [2], []]


def test_chunk_by_duration_side_item_at_the_end_of_a_packet() -> None:
    # Window [0, 60) holds the event at 50. A trigger at 100 belongs to the window [60, 120),
    # with the event at 110; it arrives at the end of the first packet, before that event.
    events = np.array([(0, 0, 0, True), (50, 0, 0, True), (110, 0, 0, True)], EVENTS_DTYPE)
    trigger = np.array([(100, 0, True)], TRIGGERS_DTYPE)
    split = [Packet(events[:2], trigger), Packet(events[2:])]
    whole = [concatenate_packets(split)]
    results = []
    for packets in (split, whole):
        out = list(IterableStream(packets, Properties("t", 4, 4)).chunks(duration=60))
        results.append([p.triggers["t"].tolist() for p in out])
    assert results[1] == [[], [100]]  # one packet: right
    assert results[0] == results[1]  # split after the trigger: [[100], []]


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(case=cases(), absolute=st.booleans(), data=st.data())
def test_time_slice(case: Case, absolute: bool, data: st.DataObject) -> None:
    # Bounds are often exactly the time of an event or side item, to test both ends.
    stream = case.reference
    origin = 0 if absolute or not stream.events else stream.events[0][0]
    times = [e[0] for e in stream.events] + [item[0] for item in stream.triggers]
    times += [item[0] for item in stream.imu] + [f.t for f in stream.frames]
    offsets = sorted({t - origin for t in times if t >= origin})
    bound = st.integers(0, 300) | st.sampled_from(offsets) if offsets else st.integers(0, 300)
    start = data.draw(st.none() | bound)
    end = data.draw(st.none() | bound.filter(lambda v: start is None or v >= start))
    expected = ref.time_slice(case.reference, start, end, absolute)
    # Applied packet by packet: the reference knows nothing of the early stop (see
    # test_stream.py), which a stream stepping back into the slice would defeat.
    for packets in (case.packets, case.whole):
        item = TimeSlice(start, end, absolute=absolute)
        item.properties(case.properties)
        out = [ref.from_packet(p) for packet in packets for p in item.apply(packet)]
        assert ref.concat(out) == expected
        assert all(p.has_data() for p in out)


def test_time_slice_relative_and_absolute() -> None:
    events = np.array([(t, 0, 0, True) for t in range(1000, 1100, 10)], EVENTS_DTYPE)
    imu = np.zeros(3, IMU_DTYPE)
    imu["t"] = [1015, 1030, 1060]
    frames = (Frame(1020, np.zeros((1, 1))), Frame(1050, np.zeros((1, 1))))
    source = [
        Packet(events[:4], imu=imu[:2], frames=frames[:1]),
        Packet(events[4:], imu=imu[2:], frames=frames[1:]),
    ]
    relative = IterableStream(source, Properties("t", 1, 1)).time_slice(20, "50us").read()
    assert relative.events["t"].tolist() == [1020, 1030, 1040]
    assert relative.imu["t"].tolist() == [1030]
    assert [f.t for f in relative.frames] == [1020]
    absolute = IterableStream(source, Properties("t", 1, 1)).time_slice(1050, 1061, absolute=True)
    got = absolute.read()
    assert got.events["t"].tolist() == [1050, 1060]
    assert got.imu["t"].tolist() == [1060]
    assert [f.t for f in got.frames] == [1050]
    with pytest.raises(ValueError, match="ends before"):
        TimeSlice(10, 5)


def test_time_slice_side_items_before_the_first_event() -> None:
    # A trigger at 1000 then events from 1000: with no start the trigger is in the slice;
    # it is kept when it shares a packet with the first event, lost when it arrives alone.
    events = np.array([(1000, 0, 0, True), (1010, 0, 0, True)], EVENTS_DTYPE)
    trigger = np.array([(1000, 0, True)], TRIGGERS_DTYPE)
    split = [Packet(empty_events(), trigger), Packet(events)]
    whole = [concatenate_packets(split)]
    kept = [
        IterableStream(packets, Properties("t", 1, 1)).time_slice(None, 5).read().triggers
        for packets in (whole, split)
    ]
    assert kept[0]["t"].tolist() == [1000]
    assert kept[1]["t"].tolist() == [1000]


@SETTINGS
@given(
    case=cases(),
    offset=st.none() | st.integers(-200, 200),
)
def test_shift_time(case: Case, offset: int | None) -> None:
    first = next((p.events for p in case.packets if len(p.events)), None)
    first_events = None if first is None else [tuple(int(v) for v in e) for e in first.tolist()]
    try:
        expected = ref.shift_time(case.reference, offset, first_events)
    except ValueError:
        with pytest.raises(ValueError, match="below 0"):
            apply(lambda: ShiftTime(offset), case.packets, case.properties)
        return
    check_selection(lambda: ShiftTime(offset), case, expected, drops_empty=False)


def test_shift_time_strings_and_limits() -> None:
    events = np.array([(15_000, 0, 0, True), (30_000, 0, 0, True)], EVENTS_DTYPE)
    frame = Frame(14_000, np.zeros((1, 1)), 13_000, 14_000)
    stream = IterableStream([Packet(events, frames=(frame,))], Properties("t", 1, 1, t0=7))
    shifted = stream.shift_time("-10ms")
    assert shifted.properties.t0 is None
    got = shifted.read()
    assert got.events["t"].tolist() == [5_000, 20_000]
    assert (got.frames[0].t, got.frames[0].exposure_start, got.frames[0].exposure_end) == (
        4_000,
        3_000,
        4_000,
    )
    later = IterableStream([Packet(events)], Properties("t", 1, 1)).shift_time("1ms").read()
    assert later.events["t"].tolist() == [16_000, 31_000]
    too_far = IterableStream([Packet(events)], Properties("t", 1, 1)).shift_time("-16ms")
    with pytest.raises(ValueError, match="below 0"):
        too_far.read()
    first = IterableStream([Packet(events, frames=(frame,))], Properties("t", 1, 1)).shift_time()
    with pytest.raises(ValueError, match="below 0"):  # the frame comes 1 ms before the event
        first.read()
    huge = events.copy()
    huge["t"] = [2**63 + 5, 2**64 - 1]
    back = IterableStream([Packet(huge)], Properties("t", 1, 1)).shift_time(-(2**63)).read()
    assert back.events["t"].tolist() == [5, 2**63 - 1]
    with pytest.raises(ValueError, match="2\\*\\*64"):
        IterableStream([Packet(huge)], Properties("t", 1, 1)).shift_time(1).read()


def test_shift_time_side_items_before_the_first_event() -> None:
    events = np.array([(1000, 0, 0, True), (1010, 0, 0, True)], EVENTS_DTYPE)
    trigger = np.array([(1000, 0, True)], TRIGGERS_DTYPE)
    split = [Packet(empty_events(), trigger), Packet(events)]
    whole = [concatenate_packets(split)]
    shifted = [
        IterableStream(packets, Properties("t", 1, 1)).shift_time().read().triggers["t"].tolist()
        for packets in (whole, split)
    ]
    assert shifted[0] == [0]
    assert shifted[1] == [0]  # actual: [1000]


class FakeTime:
    """Stands in for the ``time`` module inside aerflow.filters: the clock moves only when
    someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1234.5
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


@SETTINGS
@given(
    case=cases(step_back=False, max_delta=1000),
    speed=st.sampled_from([0.5, 1.0, 2.0, 25.0]),
    piece=st.integers(150, 4000),
    work=st.lists(st.sampled_from([0.0, 0.0, 0.0005, 0.002, 0.01]), min_size=1, max_size=5),
)
def test_pace_sleeps_follow_event_time(
    case: Case, speed: float, piece: int, work: list[float]
) -> None:
    fake = FakeTime()
    pieces: list[ref.RefPacket] = []
    released: list[float] = []
    stream = IterableStream(case.packets, case.properties).filter(Pace(speed, piece))
    with (
        mock.patch.object(filters_module, "time", fake),
        mock.patch.object(stopping_module, "time", fake),
    ):
        for index, packet in enumerate(stream):
            released.append(fake.now)
            pieces.append(ref.from_packet(packet))
            fake.now += work[index % len(work)]  # the consumer's own work
    # The pieces are the windows of ChunkByDuration(piece).
    assert pieces == ref.chunk_by_duration(case.reference, piece)
    expected_sleeps, expected_released = ref.pace_schedule(
        pieces, speed, [work[i % len(work)] for i in range(len(pieces))], clock=1234.5
    )
    assert fake.sleeps == pytest.approx(expected_sleeps, rel=1e-9, abs=1e-9)
    assert released == pytest.approx(expected_released, rel=1e-9, abs=1e-9)


def test_pace_real_time_and_properties() -> None:
    fake = FakeTime()
    events = np.array([(t, 0, 0, True) for t in (5_000, 5_500, 30_000, 1_005_000)], EVENTS_DTYPE)
    stream = IterableStream([Packet(events)], Properties("t", 1, 1, event_count=4)).pace(2.0)
    assert stream.properties.live
    assert stream.properties.event_count is None
    with (
        mock.patch.object(filters_module, "time", fake),
        mock.patch.object(stopping_module, "time", fake),
    ):
        out = list(stream)
    # 10 ms pieces: [5000, 5500], [30000], [1005000]; twice real time.
    nonempty = [p.events["t"].tolist() for p in out if len(p.events)]
    assert nonempty == [[5_000, 5_500], [30_000], [1_005_000]]
    assert fake.sleeps == pytest.approx([0.00025, 0.0125 - 0.00025, 0.5 - 0.0125])
    with pytest.raises(ValueError, match="positive"):
        Pace(0)


# --------------------------------------------------------------------------------------------
# Selection and geometry
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(case=cases(), keep=st.sampled_from(["on", "off"]))
def test_polarity(case: Case, keep: str) -> None:
    check_selection(lambda: Polarity(keep), case, ref.polarity(case.reference, keep))


@st.composite
def crop_cases(draw: st.DrawFn) -> tuple[Case, tuple[int, int, int, int], bool]:
    case = draw(cases())
    width, height = case.sensor
    left, top = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    w, h = draw(st.integers(1, width - left)), draw(st.integers(1, height - top))
    return case, (left, top, w, h), draw(st.booleans())


@SETTINGS
@given(crop_case=crop_cases())
def test_crop(crop_case: tuple[Case, tuple[int, int, int, int], bool]) -> None:
    case, rectangle, shift = crop_case
    expected, _ = ref.crop(case.reference, case.sensor, *rectangle, shift)
    check_selection(lambda: Crop(*rectangle, shift=shift), case, expected)


def test_crop_counts_events_outside_the_sensor() -> None:
    events = np.array([(0, 1, 1, True), (1, 9, 1, True), (2, 1, 9, True)], EVENTS_DTYPE)
    crop = Crop(0, 0, 4, 4)
    out = IterableStream([Packet(events)], Properties("t", 4, 4)).filter(crop).read()
    assert out.events["x"].tolist() == [1]
    assert crop.dropped_out_of_range == 2


@SETTINGS
@given(case=cases(), axis=st.sampled_from(["x", "y"]))
def test_flip(case: Case, axis: str) -> None:
    expected, dropped = ref.flip(case.reference, case.sensor, axis)
    check_selection(lambda: Flip(axis), case, expected, dropped)


@SETTINGS
@given(case=cases())
def test_transpose(case: Case) -> None:
    expected = ref.transpose(case.reference)
    split, _ = apply(Transpose, case.packets, case.properties)
    whole, _ = apply(Transpose, case.whole, case.properties)
    assert ref.concat(split) == ref.concat(whole) == expected


def test_geometry_on_frames_by_hand() -> None:
    # A 2x3 frame (rows 0..1, columns 0..2) at (1, 2) on a 5x4 sensor.
    pixels = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    frame = Frame(10, pixels, x=1, y=2)
    props = Properties("t", 5, 4)

    def one(make: Filter) -> Frame:
        (out,) = (
            IterableStream([Packet(empty_events(), frames=(frame,))], props)
            .filter(make)
            .read()
            .frames
        )
        return out

    flipped = one(Flip("x"))
    assert flipped.pixels.tolist() == [[3, 2, 1], [6, 5, 4]]
    assert (flipped.x, flipped.y) == (1, 2)
    flipped = one(Flip("y"))
    assert flipped.pixels.tolist() == [[4, 5, 6], [1, 2, 3]]
    assert (flipped.x, flipped.y) == (1, 0)
    turned = one(Transpose())
    assert turned.pixels.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert (turned.x, turned.y) == (2, 1)
    cropped = one(Crop(2, 0, 3, 3))
    assert cropped.pixels.tolist() == [[2, 3]]
    assert (cropped.x, cropped.y) == (0, 2)
    cropped = one(Crop(2, 0, 3, 3, shift=False))
    assert cropped.pixels.tolist() == [[2, 3]]
    assert (cropped.x, cropped.y) == (2, 2)
    outside = Crop(0, 0, 1, 1)
    assert (
        not IterableStream([Packet(empty_events(), frames=(frame,))], props)
        .filter(outside)
        .read()
        .frames
    )


# --------------------------------------------------------------------------------------------
# Stateful per-pixel filters
# --------------------------------------------------------------------------------------------
def gap(case: Case, data: st.DataObject, reach: int) -> int:
    """A duration that is often exactly the time between two events on the sensor at most
    ``reach`` pixels apart (0: the same pixel), so that 'within' and 'at least' are tested on
    their boundary."""
    width, height = case.sensor
    events = [e for e in case.reference.events if e[1] < width and e[2] < height]
    gaps = sorted(
        {
            abs(a[0] - b[0])
            for a in events
            for b in events
            if abs(a[1] - b[1]) <= reach and abs(a[2] - b[2]) <= reach
        }
    )
    any_gap = st.integers(0, 12)
    chosen: int = data.draw(st.sampled_from(gaps) | any_gap if gaps else any_gap)
    return chosen


@SETTINGS
@given(case=cases(max_delta=8), data=st.data())
def test_refractory(case: Case, data: st.DataObject) -> None:
    period = gap(case, data, 0)
    expected, dropped = ref.refractory(case.reference, case.sensor, period)
    check_selection(lambda: Refractory(period), case, expected, dropped)


@SETTINGS
@given(case=cases(max_delta=8), data=st.data())
def test_denoise(case: Case, data: st.DataObject) -> None:
    window = gap(case, data, 1)
    expected, dropped = ref.denoise(case.reference, case.sensor, window)
    check_selection(lambda: Denoise(window), case, expected, dropped)


@SETTINGS
@given(case=cases(), factor=st.integers(1, 4))
def test_decimate(case: Case, factor: int) -> None:
    expected, dropped = ref.decimate(case.reference, case.sensor, factor)
    check_selection(lambda: Decimate(factor), case, expected, dropped)


def test_stateful_filters_by_hand() -> None:
    props = Properties("t", 3, 3)
    e = np.array(
        [
            (0, 1, 1, True),
            (5, 1, 1, True),
            (10, 1, 1, True),
            (11, 0, 0, True),
            (30, 2, 2, True),
            (45, 0, 0, False),
            (46, 5, 0, True),
        ],
        EVENTS_DTYPE,
    )

    def run(item: Filter) -> list[int]:
        times: list[int] = (
            IterableStream([Packet(e[:3]), Packet(e[3:])], props)
            .filter(item)
            .read()
            .events["t"]
            .tolist()
        )
        return times

    refractory = Refractory("10us")
    assert run(refractory) == [0, 10, 11, 30, 45]  # 5 is 5 µs after the kept 0
    assert refractory.dropped_out_of_range == 1
    # (0,0)@11 follows (1,1)@10: support within 1 µs; (2,2)@30 follows (1,1)@10 by 20 µs;
    # (0,0)@45 has no neighbour within 10 µs.
    assert run(Denoise(10)) == [11]
    assert run(Denoise(20)) == [11, 30]
    assert run(Decimate(2)) == [5, 45]


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------
BASE = Properties("test", 6, 5, t0=3, event_count=10, time_range=(3, 99), live=False)


@pytest.mark.parametrize(
    ("make", "changes"),
    [
        (lambda: ChunkByCount(2), {}),
        (lambda: ChunkByDuration(5), {}),
        (lambda: TimeSlice(1, 2), {}),
        (lambda: ShiftTime(), {"t0": None}),
        (lambda: Pace(), {"live": True}),
        (lambda: Polarity("on"), {}),
        (lambda: Crop(1, 1, 2, 3), {"width": 2, "height": 3}),
        (lambda: Crop(1, 1, 2, 3, shift=False), {}),
        (lambda: Flip("x"), {}),
        (lambda: Transpose(), {"width": 5, "height": 6}),
        (lambda: Refractory(3), {}),
        (lambda: Denoise(3), {}),
        (lambda: Decimate(3), {}),
    ],
)
def test_properties_after_filters(make: Callable[[], Filter], changes: dict[str, Any]) -> None:
    stream = IterableStream([], BASE).filter(make())
    expected = {
        "format": "test",
        "width": 6,
        "height": 5,
        "t0": 3,
        "event_count": None,
        "time_range": None,
        "live": False,
        **changes,
    }
    got = stream.properties
    assert {name: getattr(got, name) for name in expected} == expected
    assert got.sensor_size == (expected["width"], expected["height"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Crop(0, 0, 1, 1),
        lambda: Flip("y"),
        lambda: Refractory(1),
        lambda: Denoise(1),
        lambda: Decimate(2),
    ],
)
def test_sensor_filters_need_the_sensor_size(make: Callable[[], Filter]) -> None:
    with pytest.raises(ValueError, match="sensor size"):
        IterableStream([], Properties("test", None, None)).filter(make())


def test_crop_must_fit_and_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        IterableStream([], BASE).crop(4, 0, 3, 1)
    for bad, message in (
        (lambda: ChunkByCount(0), "count"),
        (lambda: ChunkByDuration(0), "duration"),
        (lambda: Polarity("both"), "keep"),
        (lambda: Flip("z"), "axis"),
        (lambda: Decimate(0), "factor"),
        (lambda: Crop(-1, 0, 1, 1), "rectangle"),
        (lambda: Crop(0, 0, 0, 1), "rectangle"),
    ):
        with pytest.raises(ValueError, match=message):
            bad()
