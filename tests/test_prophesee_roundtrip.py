"""write -> read round trips for EVT 3.0, EVT 2.0, EVT 2.1 and DAT.

Generated events have non-decreasing times with gaps that cross the formats' counter loops
(EVT 3.0: 2**24 µs, EVT 2.0/2.1: 2**34 µs, DAT: 2**32 µs), runs of same-time same-row
increasing-x events (vector words), random polarity, and triggers. What aerflow writes must
read back identically (whatever the chunk size, however the writes were split) and must also
decode identically with the independent plain-Python reference decoder.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.synthetic import SyntheticSensor

from .helpers import assert_same_events, assert_same_triggers

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

RAW_FORMATS = ("evt3", "evt2", "evt21")
TRIGGER_IDS = {"evt3": 15, "evt2": 31, "evt21": 31, "dat": 63}
CHUNK_SIZES = (None, 4096, 4097, 5003)
UNIX_US = 1_605_537_493_718_345
ORIGIN_KEY = "aerflow_time_origin"
SENSORS = ((1280, 720), (640, 480), (40, 8), (2048, 2048), (1, 1))
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- #
# Helpers                                                                     #
# --------------------------------------------------------------------------- #


def make_events(rows: list[tuple[int, int, int, bool]]) -> np.ndarray:
    events = np.zeros(len(rows), aerflow.EVENTS_DTYPE)
    if rows:
        t, x, y, on = zip(*rows, strict=True)
        events["t"], events["x"], events["y"], events["on"] = t, x, y, on
    return events


def make_triggers(rows: list[tuple[int, int, bool]]) -> np.ndarray:
    triggers = np.zeros(len(rows), aerflow.TRIGGERS_DTYPE)
    if rows:
        t, ids, rising = zip(*rows, strict=True)
        triggers["t"], triggers["id"], triggers["rising"] = t, ids, rising
    return triggers


def read_chunked(path: Path, chunk_size: int | None) -> aerflow.Packet:
    if chunk_size is None:
        packet = aerflow.read(path, triggers=True)
        assert isinstance(packet, aerflow.Packet)
        return packet
    with aerflow.open(path, chunk_size=chunk_size) as reader:
        packets = list(reader)
    if not packets:
        return aerflow.Packet(np.empty(0, aerflow.EVENTS_DTYPE))
    return aerflow.Packet(
        np.concatenate([p.events for p in packets]), np.concatenate([p.triggers for p in packets])
    )


def reference_decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The reference decoder's arrays, with aerflow's header time origin added back."""
    data = path.read_bytes()
    header, _ = ref.parse_header(data)
    if path.suffix == ".dat":
        events, triggers, _ = ref.decode_dat(data)
    else:
        events, triggers, _, _ = ref.decode_raw_file(path)
    origin = int(header.get(ORIGIN_KEY, "0"))
    events["t"] += np.uint64(origin)
    triggers["t"] += np.uint64(origin)
    return events, triggers


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".part"))


def suffix(fmt: str) -> str:
    return ".dat" if fmt == "dat" else ".raw"


# --------------------------------------------------------------------------- #
# Generated streams                                                           #
# --------------------------------------------------------------------------- #


def gap_strategy(fmt: str) -> st.SearchStrategy[int]:
    small = st.one_of(st.just(0), st.integers(1, 70), st.integers(1, 5000))
    if fmt == "dat":  # DAT unwraps 32-bit times: consecutive records at most 2**31 - 1 apart
        big = st.one_of(st.integers(1 << 20, 1 << 28), st.integers((1 << 31) - 100, (1 << 31) - 1))
    else:
        big = st.one_of(
            st.integers(1 << 20, 1 << 23),
            st.integers((1 << 24) - 5000, (1 << 24) + 5000),  # EVT 3.0 loop
            st.integers(1 << 24, 5 << 24),
            st.integers((1 << 32) - 100, (1 << 32) + 100),
            st.integers((1 << 34) - 10_100, (1 << 34) + 100),  # EVT 2.x loop
        )
    return st.one_of(small, small, small, big)


def start_strategy(fmt: str) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 5000),
        st.integers((1 << 24) - 3000, (1 << 24) + 10),
        st.integers((1 << 32) - 3000, (1 << 32) + 10),
        st.integers((1 << 34) - 3000, (1 << 34) + 10),
        st.integers(UNIX_US, UNIX_US + 10**7),
    )


@st.composite
def stream(draw: st.DrawFn, fmt: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(events, triggers, width, height): sorted times, runs of vector-able events."""
    width, height = draw(st.sampled_from(SENSORS))
    start = draw(start_strategy(fmt))
    clocks = {"event": start, "trigger": start}
    gaps = gap_strategy(fmt)
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["event", "event", "run", "run", "trigger"]))
        # DAT writes events and triggers to separate files: each has its own clock there.
        clock = "trigger" if kind == "trigger" and fmt == "dat" else "event"
        clocks[clock] += draw(gaps)
        t = clocks[clock]
        if fmt != "dat":
            clocks["trigger"] = t
        if kind == "trigger":
            triggers.append((t, draw(st.integers(0, TRIGGER_IDS[fmt])), draw(st.booleans())))
        elif kind == "event":
            x = draw(st.integers(0, width - 1))
            events.append((t, x, draw(st.integers(0, height - 1)), draw(st.booleans())))
        else:
            y = draw(st.integers(0, height - 1))
            x0 = draw(
                st.one_of(st.integers(0, width - 1), st.integers(max(0, width - 40), width - 1))
            )
            columns = draw(
                st.sets(st.integers(x0, min(width - 1, x0 + 45)), min_size=1, max_size=40)
            )
            on = draw(st.booleans())
            mixed = draw(st.integers(0, 4)) == 0  # sometimes flip polarity inside the run
            for x in sorted(columns):
                events.append((t, x, y, (not on) if mixed and x % 3 == 0 else on))
    return make_events(events), make_triggers(triggers), width, height


def check_round_trip(
    directory: Path,
    fmt: str,
    events: np.ndarray,
    triggers: np.ndarray,
    width: int,
    height: int,
    splits: list[int],
    **options: Any,
) -> None:
    is_dat = fmt == "dat"
    path = directory / f"whole{suffix(fmt)}"
    aerflow.write(
        path,
        events,
        format=fmt,
        triggers=None if is_dat else triggers,
        width=width,
        height=height,
        **options,
    )
    for chunk_size in CHUNK_SIZES:
        packet = read_chunked(path, chunk_size)
        assert_same_events(packet.events, events)
        assert_same_triggers(
            packet.triggers, np.empty(0, aerflow.TRIGGERS_DTYPE) if is_dat else triggers
        )

    expected_events, expected_triggers = reference_decode(path)
    assert_same_events(expected_events.view(aerflow.EVENTS_DTYPE), events)
    if not is_dat:
        assert_same_triggers(expected_triggers, triggers)

    # Several write() calls. Triggers go with the piece whose last event time they do not
    # pass, so that the times handed to the writer keep their order.
    pieces = directory / f"pieces{suffix(fmt)}"
    bounds = sorted({0, *splits, len(events)})
    trigger_times = [int(t) for t in triggers["t"]]
    with aerflow.open(pieces, "w", format=fmt, width=width, height=height, **options) as writer:
        lower = -1
        for start, stop in itertools.pairwise(bounds):
            last = stop == len(events)
            upper = 2**64 if last else int(events["t"][stop - 1])
            chosen = [i for i, t in enumerate(trigger_times) if lower < t <= upper]
            writer.write(events[start:stop], None if is_dat else triggers[chosen])
            lower = upper
        if len(events) == 0:
            writer.write(events, None if is_dat else triggers)
    packet = read_chunked(pieces, None)
    assert_same_events(packet.events, events)
    if not is_dat:
        assert_same_triggers(packet.triggers, triggers)

    if is_dat:  # triggers go to a file of their own
        trigger_path = directory / "triggers.dat"
        aerflow.write(
            trigger_path, events[:0], format="dat", triggers=triggers, kind="trigger", **options
        )
        for chunk_size in CHUNK_SIZES:
            packet = read_chunked(trigger_path, chunk_size)
            assert len(packet.events) == 0
            assert_same_triggers(packet.triggers, triggers)
        _, reference_triggers = reference_decode(trigger_path)
        assert_same_triggers(reference_triggers, triggers)
    assert leftovers(directory) == []


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
@SETTINGS
@given(data=st.data())
def test_generated_round_trip(
    fmt: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    events, triggers, width, height = data.draw(stream(fmt))
    splits = data.draw(st.lists(st.integers(0, len(events)), max_size=4))
    options: dict[str, Any] = {}
    if fmt == "evt21":
        options["order"] = data.draw(st.sampled_from(["little", "legacy"]))
    directory = tmp_path_factory.mktemp(fmt)
    check_round_trip(directory, fmt, events, triggers, width, height, splits, **options)


# --------------------------------------------------------------------------- #
# Larger files: packets and chunk edges                                       #
# --------------------------------------------------------------------------- #


def big_stream(fmt: str, seed: int, count: int = 60_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    width, height = 1280, 720
    gaps = rng.choice([0, 0, 0, 1, 3, 50, 4000], size=count)
    gaps[rng.integers(0, count, 5)] = (1 << 24) + 17  # loops for EVT 3.0
    if fmt != "dat":
        gaps[rng.integers(0, count, 2)] = (1 << 34) + 3  # and for EVT 2.x
    else:
        gaps[rng.integers(0, count, 3)] = (1 << 31) - 1  # 32-bit wraps for DAT
    t = np.cumsum(gaps, dtype=np.uint64) + np.uint64(123)
    events = np.zeros(count, aerflow.EVENTS_DTYPE)
    events["t"] = t
    events["y"] = rng.integers(0, height, count)
    events["x"] = rng.integers(0, width, count)
    events["on"] = rng.integers(0, 2, count).astype(bool)
    # Make runs: consecutive same-time events share the row and polarity (mostly) and get
    # rising columns.
    for index in np.flatnonzero(gaps[1:] == 0) + 1:
        events["y"][index] = events["y"][index - 1]
        if rng.integers(0, 10):
            events["on"][index] = events["on"][index - 1]
        previous = int(events["x"][index - 1])
        events["x"][index] = min(previous + 1 + int(rng.integers(0, 2)), width - 1)
    ids = TRIGGER_IDS[fmt]
    picks = np.sort(rng.choice(count, 500, replace=False))
    triggers = np.zeros(500, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = t[picks]
    triggers["id"] = rng.integers(0, ids + 1, 500)
    triggers["rising"] = rng.integers(0, 2, 500).astype(bool)
    return events, triggers


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
def test_large_round_trip_across_chunks(fmt: str, tmp_path: Path) -> None:
    events, triggers = big_stream(fmt, seed=len(fmt))
    path = tmp_path / f"big{suffix(fmt)}"
    if fmt == "dat":
        aerflow.write(path, events, format="dat", width=1280, height=720)
    else:
        aerflow.write(path, events, format=fmt, triggers=triggers, width=1280, height=720)
    assert path.stat().st_size > 5 * 5003
    data = path.read_bytes()
    _, offset = ref.parse_header(data)
    if fmt == "evt3":  # the runs were written as vector groups
        words = np.frombuffer(data[offset:], "<u2")
        assert np.count_nonzero(words >> 12 == 0x4) > 1000
        assert np.count_nonzero(words >> 12 == 0x5) > 500
    if fmt == "evt21":  # and as words of several events
        masks = np.frombuffer(data[offset:], "<u8") & np.uint64(0xFFFFFFFF)
        assert np.count_nonzero(masks & (masks - np.uint64(1))) > 1000
    expected_triggers = np.empty(0, aerflow.TRIGGERS_DTYPE) if fmt == "dat" else triggers
    for chunk_size in CHUNK_SIZES:
        packet = read_chunked(path, chunk_size)
        assert_same_events(packet.events, events)
        assert_same_triggers(packet.triggers, expected_triggers)
    reference_events, reference_triggers = reference_decode(path)
    assert_same_events(reference_events.view(aerflow.EVENTS_DTYPE), events)
    assert_same_triggers(reference_triggers, expected_triggers)


# --------------------------------------------------------------------------- #
# Headers                                                                     #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("fmt", "evt"), [("evt3", "3.0"), ("evt2", "2.0")])
def test_raw_header_lines(fmt: str, evt: str, tmp_path: Path) -> None:
    path = tmp_path / "out.raw"
    aerflow.write(path, make_events([(10, 3, 4, True)]), format=fmt, width=640, height=480)
    data = path.read_bytes()
    header, offset = ref.parse_header(data)
    lines = data[:offset].decode("ascii").splitlines()
    assert f"% evt {evt}" in lines
    assert f"% format {fmt.upper()};height=480;width=640" in lines
    assert "% geometry 640x480" in lines
    assert lines[-1] == "% end"
    assert header["evt"] == evt
    assert ref.raw_format_name(header) == fmt
    assert ref.raw_geometry(header) == (640, 480)
    assert ORIGIN_KEY not in header


@pytest.mark.parametrize("order", ["little", "legacy"])
def test_evt21_header_names_the_word_order(order: str, tmp_path: Path) -> None:
    path = tmp_path / "out.raw"
    events = make_events([(10, 3, 4, True), (10, 4, 4, True), (70, 1, 2, False)])
    aerflow.write(path, events, format="evt21", width=320, height=240, order=order)
    data = path.read_bytes()
    header, offset = ref.parse_header(data)
    lines = data[:offset].decode("ascii").splitlines()
    assert f"% format EVT21;endianness={order};height=240;width=320" in lines
    assert "% geometry 320x240" in lines
    assert lines[-1] == "% end"
    assert ref.evt21_order(header) == order
    with aerflow.open(path) as reader:
        assert reader.order == order  # type: ignore[attr-defined]
        assert_same_events(reader.read().events, events)


def test_default_evt21_order_is_little(tmp_path: Path) -> None:
    path = tmp_path / "out.raw"
    aerflow.write(path, make_events([(1, 2, 3, True)]), format="evt21", width=8, height=8)
    header, _ = ref.parse_header(path.read_bytes())
    assert ref.evt21_order(header) == "little"


def test_dat_header(tmp_path: Path) -> None:
    path = tmp_path / "out.dat"
    aerflow.write(path, make_events([(1, 2, 3, True)]), format="dat", width=304, height=240)
    data = path.read_bytes()
    header, offset = ref.parse_header(data)
    assert header["Version"] == "2"
    assert header["Width"] == "304"
    assert header["Height"] == "240"
    assert data[offset : offset + 2] == bytes([0x0C, 8])
    assert len(data) == offset + 2 + 8
    # One CD record: t = 1, x = 2 | y = 3 << 14 | ON << 28, little-endian.
    assert data[offset + 2 :] == (1).to_bytes(4, "little") + (2 | 3 << 14 | 1 << 28).to_bytes(
        4, "little"
    )


def test_empty_recordings_round_trip(tmp_path: Path) -> None:
    for fmt in (*RAW_FORMATS, "dat"):
        path = tmp_path / f"empty-{fmt}{suffix(fmt)}"
        aerflow.write(path, make_events([]), format=fmt, width=64, height=32)
        with aerflow.open(path) as reader:
            assert reader.properties.format == fmt
            assert reader.properties.sensor_size == (64, 32)
            packet = reader.read()
        assert len(packet.events) == 0
        assert len(packet.triggers) == 0


# --------------------------------------------------------------------------- #
# Large (Unix) times and the time origin                                      #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
def test_unix_time_survives(fmt: str, tmp_path: Path) -> None:
    rows = [(UNIX_US + dt, 5 + i, 7, i % 2 == 0) for i, dt in enumerate([0, 0, 1, 63, 64, 4097])]
    rows.append((UNIX_US + (1 << 24) + 5, 1, 1, True))
    rows.append((UNIX_US + (1 << 31) - 1, 2, 2, False))
    events = make_events(rows)
    path = tmp_path / f"unix{suffix(fmt)}"
    aerflow.write(path, events, format=fmt, width=64, height=64)
    header, _ = ref.parse_header(path.read_bytes())
    origin = int(header[ORIGIN_KEY])
    assert 0 < origin <= UNIX_US
    for chunk_size in CHUNK_SIZES:
        assert_same_events(read_chunked(path, chunk_size).events, events)
    with aerflow.open(path) as reader:
        assert reader.properties.t0 == origin
    reference_events, _ = reference_decode(path)
    assert_same_events(reference_events.view(aerflow.EVENTS_DTYPE), events)


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
def test_explicit_time_origin(fmt: str, tmp_path: Path) -> None:
    events = make_events([(1000, 1, 1, True), (1500, 2, 2, False), (70_000, 3, 3, True)])
    path = tmp_path / f"origin{suffix(fmt)}"
    aerflow.write(path, events, format=fmt, width=8, height=8, time_origin=1000)
    header, _ = ref.parse_header(path.read_bytes())
    assert header[ORIGIN_KEY] == "1000"
    assert_same_events(aerflow.read(path), events)
    reference_events, _ = reference_decode(path)
    assert_same_events(reference_events.view(aerflow.EVENTS_DTYPE), events)

    with pytest.raises(ValueError, match="origin"):
        aerflow.write(
            path.with_name("before" + suffix(fmt)),
            events,
            format=fmt,
            width=8,
            height=8,
            time_origin=1001,
        )
    assert not path.with_name("before" + suffix(fmt)).exists()
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- #
# Time going backwards                                                        #
# --------------------------------------------------------------------------- #


def round_trips(path: Path, fmt: str, rows: list[tuple[int, int, int, bool]]) -> None:
    events = make_events(rows)
    aerflow.write(path, events, format=fmt, width=16, height=16)
    assert_same_events(aerflow.read(path), events)
    reference_events, _ = reference_decode(path)
    assert_same_events(reference_events.view(aerflow.EVENTS_DTYPE), events)


def test_evt3_time_low_steps_back(tmp_path: Path) -> None:
    base = 5 << 12
    rows = [
        (base + 100, 1, 1, True),
        (base + 50, 2, 1, True),
        (base + 4095, 3, 2, False),
        (base, 4, 3, True),
    ]
    round_trips(tmp_path / "low.raw", "evt3", rows)


@pytest.mark.parametrize("fmt", RAW_FORMATS)
def test_backwards_within_the_clock(fmt: str, tmp_path: Path) -> None:
    high = 3000 << 12
    rows = [
        (high + 7, 1, 1, True),
        ((3000 - 2047) << 12, 2, 2, False),  # 2047 TIME_HIGH units back (EVT 3.0's limit)
        ((3000 - 2047) << 12 | 4095, 3, 3, True),
        (high + 9, 4, 4, True),
        (high + 2, 5, 5, False),
    ]
    round_trips(tmp_path / f"back-{fmt}.raw", fmt, rows)


def test_evt3_step_back_that_would_read_as_a_loop_is_refused(tmp_path: Path) -> None:
    rows = [(3000 << 12, 1, 1, True), ((3000 - 2048) << 12, 2, 2, False)]
    path = tmp_path / "refused.raw"
    with pytest.raises(ValueError, match="back in time"):
        aerflow.write(path, make_events(rows), format="evt3", width=16, height=16)
    assert not path.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("fmt", "times"),
    [
        ("evt3", [0, (1 << 24) + 10, (1 << 24) - 10]),
        ("evt2", [0, (1 << 34) + 10, (1 << 34) - 10]),
        ("evt21", [0, (1 << 34) + 10, (1 << 34) - 10]),
        ("dat", [0, 3 << 30, (1 << 32) + 5, (1 << 32) - 5]),
    ],
)
def test_backwards_across_a_counter_loop_is_refused(
    fmt: str, times: list[int], tmp_path: Path
) -> None:
    path = tmp_path / f"loop{suffix(fmt)}"
    path.write_bytes(b"precious")
    events = make_events([(t, 1, 1, True) for t in times])
    with pytest.raises(ValueError):  # noqa: PT011 - each format words it its own way
        aerflow.write(path, events, format=fmt, width=16, height=16)
    assert path.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_dat_gap_beyond_half_the_counter_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gap.dat"
    step = (1 << 31) - 1  # the largest step the 32-bit unwrap can tell from a step back
    fine = make_events([(i * step, 1, 1, True) for i in range(5)])
    aerflow.write(path, fine, format="dat", width=4, height=4)
    assert_same_events(aerflow.read(path), fine)
    # 2**31 + 2 µs on, across 2**32: a reader would take the 32-bit drop for a step back.
    gap = make_events([(0, 1, 1, True), ((1 << 31) - 1, 1, 1, True), ((1 << 32) + 1, 1, 1, True)])
    with pytest.raises(ValueError, match="2\\*\\*31"):
        aerflow.write(tmp_path / "gap2.dat", gap, format="dat", width=4, height=4)
    assert not (tmp_path / "gap2.dat").exists()


# --------------------------------------------------------------------------- #
# Refused input and atomic replacement                                        #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
@pytest.mark.parametrize(("x", "y"), [(640, 0), (0, 480), (2047, 2047)])
def test_events_outside_the_sensor_are_refused(fmt: str, x: int, y: int, tmp_path: Path) -> None:
    path = tmp_path / f"outside{suffix(fmt)}"
    events = make_events([(1, 1, 1, True), (2, x, y, False)])
    with pytest.raises(ValueError, match="outside"):
        aerflow.write(path, events, format=fmt, width=640, height=480)
    assert not path.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
def test_trigger_ids_beyond_the_format_are_dropped_and_counted(
    fmt: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The id field is TRIGGER_IDS[fmt] wide: wider ids are left out (never wrapped into a
    wrong id), counted and logged once; the others are written."""
    path = tmp_path / f"ids{suffix(fmt)}"
    most = TRIGGER_IDS[fmt]
    triggers = make_triggers([(5, most + 1, True), (6, most, False), (7, 255, True)])
    options = {"kind": "trigger"} if fmt == "dat" else {}
    with aerflow.open(path, "w", format=fmt, width=4, height=4, **options) as writer:
        writer.write(aerflow.Packet(make_events([]), triggers))
    assert writer.unwritten == {"triggers": 2}
    assert caplog.text.count("2 triggers not written") == 1
    with aerflow.open(path) as reader:
        back = reader.read().triggers
    assert back.tolist() == [(6, most, False)]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
def test_exception_inside_writer_leaves_the_old_file(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"keep{suffix(fmt)}"
    path.write_bytes(b"the user's data")
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="boom"),
        aerflow.open(path, "w", format=fmt, width=16, height=16) as writer,
    ):
        writer.write(make_events([(1, 2, 3, True), (2, 3, 4, False)]))
        assert leftovers(tmp_path) != []  # the data goes to a temporary file meanwhile
        raise RuntimeError("boom")
    assert path.read_bytes() == b"the user's data"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", [*RAW_FORMATS, "dat"])
def test_abort_and_success(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"abort{suffix(fmt)}"
    writer = aerflow.open(path, "w", format=fmt, width=16, height=16)
    writer.write(make_events([(1, 2, 3, True)]))
    writer.abort()
    assert not path.exists()
    assert leftovers(tmp_path) == []

    path.write_bytes(b"old")
    events = make_events([(1, 2, 3, True), (9, 4, 5, False)])
    with aerflow.open(path, "w", format=fmt, width=16, height=16) as writer:
        writer.write(events[:1])
        writer.write(aerflow.Packet(events[1:]))
    assert_same_events(aerflow.read(path), events)
    assert leftovers(tmp_path) == []


def evt3_words(path: Path) -> np.ndarray:
    _, offset = ref.parse_header(path.read_bytes())
    return np.frombuffer(path.read_bytes()[offset:], "<u2")


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rate=st.sampled_from([2_000, 200_000, 2_000_000]))
def test_evt3_writer_speaks_like_a_camera(seed: int, rate: int, tmp_path_factory: Any) -> None:
    """Every TIME_HIGH is followed by a TIME_LOW before any event word (the clock restated
    every 2048 words included), every event follows an ADDR_Y, and vector words come as a
    camera's VECT_BASE_X, VECT_12, VECT_12, VECT_8: what every decoder reads the same."""
    path = tmp_path_factory.mktemp("evt3") / "camera.raw"
    events = SyntheticSensor(640, 480, rate=rate, duration="40ms", seed=seed).read().events
    aerflow.write(path, events, format="evt3", width=640, height=480)
    kinds = (evt3_words(path) >> 12).tolist()
    assert 0x8 in kinds
    assert 0x2 in kinds
    time_low_due = row_seen = False
    for i, kind in enumerate(kinds):
        if kind == 0x8:
            time_low_due = True
        elif kind == 0x6:
            time_low_due = False
        elif kind in (0x2, 0x3, 0x4, 0x5, 0xA):
            assert not time_low_due, f"word {i}: an event between TIME_HIGH and TIME_LOW"
            assert row_seen or kind == 0xA, f"word {i}: an event before any ADDR_Y"
        if kind == 0x0:
            row_seen = True
        if kind == 0x3:
            assert kinds[i + 1 : i + 4] == [0x4, 0x4, 0x5], f"word {i}: not a camera vector run"
        if kind in (0x4, 0x5):
            assert kinds[i - 1] in (0x3, 0x4), f"word {i}: a vector word out of a camera run"
    assert_same_events(aerflow.read(path), events)
