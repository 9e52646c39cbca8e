"""read() on two threads: the second share's start state, the join, and every fallback.

The thresholds that keep small files on one thread are lowered so that every file here
takes the two-thread path; the plain-Python reference decoders are the truth.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.formats import _base
from aerflow.formats._base import ChunkedReader
from aerflow.formats._mapped_memory import _move_down
from aerflow.formats.evt3 import Evt3Reader

from .reference import prophesee as ref

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ChunkedReader, "parallel_min_bytes", 0)
    monkeypatch.setattr(Evt3Reader, "warm_up_words", 64)


def sequential(path: Path, **options: int) -> aerflow.Packet:
    with aerflow.open(path, chunk_size=4096, **options) as reader:
        packets = list(reader)
    return aerflow.Packet(
        np.concatenate([p.events for p in packets] or [np.empty(0, aerflow.EVENTS_DTYPE)]),
        np.concatenate([p.triggers for p in packets] or [np.empty(0, aerflow.TRIGGERS_DTYPE)]),
    )


def reference(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = path.read_bytes()
    if path.suffix == ".dat":
        events, triggers, header = ref.decode_dat(data)
        size = (int(header["Width"]), int(header["Height"])) if "Width" in header else None
        if size:
            keep = (events["x"] < size[0]) & (events["y"] < size[1])
            events = events[keep]
    else:
        events, triggers, _, _ = ref.decode_raw_file(path)
    return events, triggers


def assert_packet(packet: aerflow.Packet, events: np.ndarray, triggers: np.ndarray) -> None:
    assert packet.events.tolist() == events.tolist()
    assert packet.triggers.tolist() == triggers.tolist()


@st.composite
def recordings(draw: st.DrawFn, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted events with gaps that cross each format's counter loop now and then."""
    count = draw(st.integers(1, 3000))
    loop = {"evt3": 1 << 24, "evt2": 1 << 34, "evt21": 1 << 34, "dat": 1 << 30}[fmt]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    gaps = rng.integers(0, 200, count)
    gaps[rng.random(count) < 0.002] = loop - 7  # a wrap, sometimes twice in a file
    events = np.zeros(count, aerflow.EVENTS_DTYPE)
    events["t"] = np.cumsum(gaps) + draw(st.integers(0, loop))
    events["x"] = rng.integers(0, 640, count)
    events["y"] = rng.integers(0, 480, count)
    events["y"][rng.random(count) < 0.5] = 7  # runs on one row make vector groups
    events["x"][events["y"] == 7] = np.arange(int((events["y"] == 7).sum())) % 640
    events["on"] = rng.random(count) < 0.5
    triggers = np.zeros(int(rng.integers(0, 20)), aerflow.TRIGGERS_DTYPE)
    if fmt != "dat":
        triggers["t"] = np.sort(rng.choice(events["t"], len(triggers)))
        triggers["id"] = rng.integers(0, 16, len(triggers))
        triggers["rising"] = rng.random(len(triggers)) < 0.5
    return events, triggers[: 0 if fmt == "dat" else None]


@pytest.mark.parametrize("fmt", ["evt3", "evt2", "evt21", "dat"])
@SETTINGS
@given(data=st.data())
def test_two_threads_equal_reference(fmt: str, data: st.DataObject, tmp_path: Path) -> None:
    events, triggers = data.draw(recordings(fmt))
    path = tmp_path / ("rec.dat" if fmt == "dat" else "rec.raw")
    aerflow.write(path, events, format=fmt, triggers=triggers, width=640, height=480)
    expected_events, expected_triggers = reference(path)
    with aerflow.open(path) as reader:
        origin = reader.properties.t0 or 0
        packet = reader.read()
    expected_events["t"] += np.uint64(origin)
    expected_triggers["t"] += np.uint64(origin)
    assert_packet(packet, expected_events, expected_triggers)
    assert packet.events.tolist() == events.tolist()
    assert_packet(sequential(path), expected_events, expected_triggers)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", ["evt3", "evt2", "dat"])
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_read_in_mapped_steps_equals_reference(
    fmt: str, threads: int, data: st.DataObject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read() maps its input a step at a time (dropping the pages behind): steps that end
    inside words and groups, on one thread and on two, give the reference's events."""
    monkeypatch.setattr(_base, "_READ_STEP", data.draw(st.sampled_from([4096, 4100, 8192 + 6])))
    events, triggers = data.draw(recordings(fmt))
    path = tmp_path / ("rec.dat" if fmt == "dat" else "rec.raw")
    aerflow.write(path, events, format=fmt, triggers=triggers, width=640, height=480)
    expected_events, expected_triggers = reference(path)
    torn = data.draw(st.booleans())
    if torn:  # a byte past the last whole word: warned about, the events stay the same
        with path.open("ab") as file:
            file.write(b"\x80")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with aerflow.open(path, threads=threads) as reader:
            assert isinstance(reader, ChunkedReader)
            assert reader.threads == threads
            origin = reader.properties.t0 or 0
            packet = reader.read()
    expected_events["t"] += np.uint64(origin)
    expected_triggers["t"] += np.uint64(origin)
    assert_packet(packet, expected_events, expected_triggers)
    torn_warnings = [w for w in caught if issubclass(w.category, aerflow.TruncatedDataWarning)]
    assert len(torn_warnings) == (1 if torn else 0)


@pytest.mark.parametrize("threads", [0, -1])
def test_threads_below_one_are_refused(threads: int, shared_data: Path) -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        aerflow.open(shared_data / "evt2/evt2_gen3_2020-09-14.raw", threads=threads)


def test_dat_drops_in_the_first_share_close_the_gap(tmp_path: Path) -> None:
    """Records past the sensor in the first half leave fewer events than records there."""
    header = b"% Data file containing CD events.\n% Version 2\n% Width 10\n% Height 10\n"
    records = [(t, (t % 20) | (3 << 14)) for t in range(1000)]  # x = t % 20: half outside
    records += [(1000 + t, 5 | (t % 10) << 14 | 1 << 28) for t in range(1000)]
    body = b"".join(struct.pack("<II", *r) for r in records)
    path = tmp_path / "drops.dat"
    path.write_bytes(header + bytes([0x0C, 8]) + body)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aerflow.OutOfRangeWarning)
        with aerflow.open(path) as reader:
            events = reader.read().events
            assert reader.dropped_out_of_range == 500
    expected, _ = reference(path)
    assert events.tolist() == expected.tolist()


def test_evt3_wrong_guess_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row addressed once at the start is outside the stretch the guess decodes: the
    join sees the mismatch and the second half is decoded again, on one thread."""
    words = [0x8000, 0x0000 | 5]  # TIME_HIGH 0, ADDR_Y 5; then the clock and ADDR_X only
    for t in range(4000):
        words += [0x8000 | (t >> 12), 0x6000 | (t & 0xFFF), 0x2000 | (t % 600) | (t & 1) << 11]
    path = tmp_path / "one_row.raw"
    path.write_bytes(
        b"% format EVT3;height=480;width=640\n% end\n" + struct.pack(f"<{len(words)}H", *words)
    )
    joins: list[bool] = []
    join = Evt3Reader._join_shares

    def spy(self: Evt3Reader, *args: object) -> object:
        result = join(self, *args)  # type: ignore[arg-type]
        joins.append(result is not None)
        return result

    monkeypatch.setattr(Evt3Reader, "_join_shares", spy)
    expected, _ = reference(path)
    assert len(expected) == 4000
    assert aerflow.read(path).tolist() == expected.tolist()
    assert joins == [False]


@pytest.mark.parametrize("fmt", ["evt2", "evt3"])
def test_real_recordings_on_two_threads(fmt: str, shared_data: Path) -> None:
    name = {
        "evt2": "evt2/evt2_gen3_2020-09-14.raw",
        "evt3": "evt3/expelliarmus_evt3_gen41_2020-09-14.raw",
    }
    path = shared_data / name[fmt]
    expected, _ = reference(path)
    assert aerflow.read(path).tolist() == expected.tolist()


@given(
    size=st.integers(0, 300),
    data=st.data(),
)
def test_move_down_copies_overlapping_bytes_in_place(size: int, data: st.DataObject) -> None:
    buffer = np.frombuffer(data.draw(st.binary(min_size=size, max_size=size)), np.uint8).copy()
    source = data.draw(st.integers(0, size))
    target = data.draw(st.integers(0, source))
    length = data.draw(st.integers(0, size - source))
    expected = bytearray(buffer.tobytes())
    expected[target : target + length] = bytes(expected[source : source + length])
    _move_down(buffer, target, source, length)
    assert buffer.tobytes() == bytes(expected)


@pytest.mark.parametrize(("target", "source", "length"), [(5, 4, 1), (0, 8, 3), (-1, 2, 1)])
def test_move_down_refuses_moves_up_or_out_of_the_array(
    target: int, source: int, length: int
) -> None:
    with pytest.raises(ValueError, match="cannot move"):
        _move_down(np.zeros(10, np.uint8), target, source, length)
