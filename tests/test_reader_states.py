"""One rule for every reader: each iteration or read() starts from the first event, one at a
time (a second one under way raises RuntimeError, never duplicates or loses events), and
every use after close() raises ValueError. Plus the type checks of public arguments."""

from __future__ import annotations

import inspect
import io
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow import registry
from aerflow.formats.aedat4 import Aedat4Reader
from aerflow.formats.event_stream import EventStreamReader
from aerflow.formats.text import TextReader
from aerflow.synthetic import SyntheticSensor
from aerflow.tensors import frames

from .helpers import assert_same_events, deadline

CLOSED = r"I/O operation on a closed reader \("
BUSY = "already being read"
WIDTH, HEIGHT = 64, 48

WRITTEN_FORMATS = ("evt3", "evt2", "evt21", "dat", "es", "aedat2", "aedat3", "aedat4", "csv")
ROW_FORMATS = ("npy", "npz")  # packets counted in events (chunk_events)
WRITER_OPTIONS: dict[str, dict[str, Any]] = {"aedat4": {"packet_events": 500}}


@dataclass
class Case:
    path: Path
    format: str
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Any:
        return aerflow.open(self.path, format=self.format, **self.options)


def events_of(packets: Iterable[aerflow.Packet]) -> np.ndarray:
    parts = [p.events for p in packets]
    return np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)


def synthetic() -> np.ndarray:
    return SyntheticSensor(WIDTH, HEIGHT, rate=200_000, duration="40ms", seed=5).read().events


def atis_bin_bytes(count: int) -> bytes:
    """N-MNIST records (x, y, polarity and 23-bit time in 5 bytes), made here by hand: there
    is no writer for the format."""
    out = bytearray()
    for i in range(count):
        t, x, y, on = 10 * i, i % 34, (i // 34) % 34, i % 2
        out += bytes([x, y, on << 7 | t >> 16, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def aedat1_bytes(count: int) -> bytes:
    """AEDAT 1.0 DVS128 records (16-bit address, 32-bit time, big-endian), by hand."""
    body = b"".join(
        struct.pack(">HI", ((i % 100) << 8) | ((i % 128) << 1) | (i & 1), 7 * i)
        for i in range(count)
    )
    return b"#!AER-DAT1.0\r\n" + body


CASE_NAMES = (*WRITTEN_FORMATS, *ROW_FORMATS, "atis_bin", "aedat1")


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    folder = tmp_path_factory.mktemp("states")
    events = synthetic()
    made: dict[str, Case] = {}
    for name in (*WRITTEN_FORMATS, *ROW_FORMATS):
        path = folder / f"events.{name}"
        aerflow.write(path, events, format=name, **WRITER_OPTIONS.get(name, {}))
        chunk = {"chunk_events": 1000} if name in ROW_FORMATS else {"chunk_size": 4096}
        made[name] = Case(path, name, chunk)
    atis = folder / "events.bin"
    atis.write_bytes(atis_bin_bytes(3000))
    made["atis_bin"] = Case(atis, "atis_bin", {"chunk_size": 4096})
    aedat1 = folder / "events1.aedat"
    aedat1.write_bytes(aedat1_bytes(3000))
    made["aedat1"] = Case(aedat1, "aedat2", {"chunk_size": 4096})
    return made


@pytest.fixture(params=CASE_NAMES)
def case(request: pytest.FixtureRequest, cases: dict[str, Case]) -> Case:
    return cases[request.param]


@pytest.fixture
def expected(case: Case) -> np.ndarray:
    with case.open() as reader:
        packets = list(reader)
    assert len(packets) >= 2, "the file must span several packets to test partial reads"
    events = events_of(packets)
    assert len(events) >= 1000
    return events


# --------------------------------------------------------------------------- #
# Iterating again                                                             #
# --------------------------------------------------------------------------- #


def test_every_iteration_starts_from_the_first_event(case: Case, expected: np.ndarray) -> None:
    with case.open() as reader:
        assert_same_events(events_of(reader), expected)
        assert_same_events(events_of(reader), expected)
        assert_same_events(reader.read().events, expected)
        assert_same_events(reader.read().events, expected)
        assert_same_events(events_of(reader), expected)


def test_written_files_hold_every_event(cases: dict[str, Case]) -> None:
    events = synthetic()
    for name in (*WRITTEN_FORMATS, *ROW_FORMATS):
        assert len(aerflow.read(cases[name].path, format=name)) == len(events), name


def test_read_after_a_partial_iteration_gives_everything(case: Case, expected: np.ndarray) -> None:
    with case.open() as reader:
        for _ in reader:
            break
        assert_same_events(reader.read().events, expected)
        first = next(iter(reader))
        assert 0 < len(first.events) < len(expected)
        assert_same_events(events_of(reader), expected)
        reader.rewind()
        assert_same_events(reader.read().events, expected)


def test_a_partial_iteration_does_not_shorten_the_next(case: Case, expected: np.ndarray) -> None:
    with case.open() as reader:
        taken = 0
        for packet in reader:
            taken += len(packet.events)
            if taken:
                break
        assert_same_events(events_of(reader), expected)


# --------------------------------------------------------------------------- #
# After close                                                                 #
# --------------------------------------------------------------------------- #


def uses(reader: Any) -> list[Callable[[], Any]]:
    """Every public way of reading ``reader`` (the format's own methods too)."""
    calls: list[Callable[[], Any]] = [
        lambda: iter(reader),
        lambda: list(reader),
        lambda: next(iter(reader)),
        reader.read,
        reader.rewind,
        reader.__enter__,
    ]
    if isinstance(reader, Aedat4Reader):
        calls += [lambda: reader.seek_time(0), lambda: reader.read_range(0, 1 << 40)]
    if isinstance(reader, EventStreamReader):
        calls += [reader.read_generic, reader.read_color]
    return calls


def test_every_use_after_close_raises(case: Case, expected: np.ndarray) -> None:
    reader = case.open()
    list(reader)
    reader.close()
    reader.close()  # harmless
    assert reader.closed
    for use in uses(reader):
        with pytest.raises(ValueError, match=CLOSED) as info:
            use()
        assert str(case.path) in str(info.value)
    reader.close()


def test_use_after_a_with_block_raises(case: Case, expected: np.ndarray) -> None:
    with case.open() as reader:
        pass
    for use in uses(reader):
        with pytest.raises(ValueError, match=CLOSED):
            use()
    with case.open() as reader:
        assert_same_events(reader.read().events, expected)
    with pytest.raises(ValueError, match=CLOSED):
        reader.read()


def test_closing_inside_a_loop_stops_it(case: Case, expected: np.ndarray) -> None:
    reader = case.open()
    packets = iter(reader)
    seen = len(next(packets).events)
    reader.close()
    with pytest.raises(ValueError, match=CLOSED):
        next(packets)
    assert 0 < seen < len(expected)


# --------------------------------------------------------------------------- #
# One iteration at a time                                                     #
# --------------------------------------------------------------------------- #


def test_a_nested_iteration_raises(case: Case, expected: np.ndarray) -> None:
    with case.open() as reader:
        packets = []
        for packet in reader:
            packets.append(packet)
            if len(packets) == 1:
                for use in (lambda: list(reader), reader.read, reader.rewind):
                    with pytest.raises(RuntimeError, match=BUSY) as info:
                        use()
                    assert str(case.path) in str(info.value)
        assert_same_events(events_of(packets), expected)
        assert_same_events(reader.read().events, expected)  # free again


def test_a_second_thread_is_refused_while_one_iterates(case: Case, expected: np.ndarray) -> None:
    """The first thread holds its iteration open after one packet: the second one surely
    overlaps it."""
    first_packet = threading.Event()
    go_on = threading.Event()
    result: list[np.ndarray] = []
    failures: list[BaseException] = []

    with case.open() as reader:

        def iterate() -> None:
            try:
                packets = []
                for packet in reader:
                    packets.append(packet)
                    if len(packets) == 1:
                        first_packet.set()
                        go_on.wait(10)
                result.append(events_of(packets))
            except BaseException as error:
                failures.append(error)
                first_packet.set()

        worker = threading.Thread(target=iterate)
        worker.start()
        try:
            assert first_packet.wait(10)
            for use in (lambda: list(reader), reader.read, reader.rewind):
                with pytest.raises(RuntimeError, match=BUSY):
                    use()
        finally:
            go_on.set()
            worker.join(10)
        assert not failures
        assert_same_events(result[0], expected)
        assert_same_events(reader.read().events, expected)


Outcome = np.ndarray | BaseException


def slowly(reader: Any) -> np.ndarray:
    packets = []
    for packet in reader:
        packets.append(packet)
        time.sleep(0.001)
    return events_of(packets)


def on_two_threads(reader: Any, work: Callable[[Any], np.ndarray]) -> list[Outcome]:
    """``work(reader)`` on two threads released together by a barrier: what each returned
    or raised."""
    barrier = threading.Barrier(2)
    outcomes: list[Outcome] = []

    def run() -> None:
        barrier.wait(10)
        try:
            outcomes.append(work(reader))
        except BaseException as error:
            outcomes.append(error)

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    return outcomes


def check_outcomes(outcomes: list[Outcome], expected: np.ndarray) -> None:
    """At least one thread got every event, once; any other got every event too, or was
    refused."""
    assert len(outcomes) == 2
    complete = [o for o in outcomes if isinstance(o, np.ndarray)]
    assert complete, outcomes
    for events in complete:
        assert_same_events(events, expected)
    for error in outcomes:
        if not isinstance(error, np.ndarray):
            assert isinstance(error, RuntimeError), error
            assert BUSY in str(error)


def test_two_threads_never_duplicate_or_lose_events(case: Case, expected: np.ndarray) -> None:
    """Both start together (a barrier) and consume slowly, so their iterations overlap:
    each either gets every event once or a RuntimeError."""
    for _ in range(3):
        with case.open() as reader:
            outcomes = on_two_threads(reader, slowly)
        check_outcomes(outcomes, expected)


def test_read_on_two_threads(case: Case, expected: np.ndarray) -> None:
    with case.open() as reader:
        outcomes = on_two_threads(reader, lambda r: r.read().events)
    check_outcomes(outcomes, expected)


# --------------------------------------------------------------------------- #
# Sources that cannot go back                                                 #
# --------------------------------------------------------------------------- #


def csv_bytes(events: np.ndarray) -> bytes:
    lines = [f"{t},{x},{y},{int(on)}" for t, x, y, on in events.tolist()]
    return ("t,x,y,p\n" + "\n".join(lines) + "\n").encode()


def test_a_stream_is_read_once() -> None:
    events = synthetic()[:2000]
    reader = TextReader.from_stream(io.BytesIO(csv_bytes(events)), chunk_size=4096)
    with reader:
        assert_same_events(events_of(reader), events)
        for use in (lambda: list(reader), reader.read, reader.rewind):
            with pytest.raises(ValueError, match="cannot be read again"):
                use()
    with pytest.raises(ValueError, match=CLOSED):
        list(reader)

    with TextReader.from_stream(io.BytesIO(csv_bytes(events))) as once:
        assert_same_events(once.read().events, events)
        with pytest.raises(ValueError, match="cannot be read again"):
            once.read()


def test_a_stream_read_by_two_threads() -> None:
    events = synthetic()
    reader = TextReader.from_stream(io.BytesIO(csv_bytes(events)), chunk_size=4096)
    outcomes = on_two_threads(reader, slowly)
    complete = [o for o in outcomes if isinstance(o, np.ndarray)]
    assert len(complete) == 1
    assert_same_events(complete[0], events)
    (other,) = (o for o in outcomes if not isinstance(o, np.ndarray))
    # Refused while the first runs, or, if it started after, because a pipe cannot restart.
    assert isinstance(other, (RuntimeError, ValueError))


# --------------------------------------------------------------------------- #
# Real recordings                                                             #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "name",
    [
        "atis_bin/tonic_sample_nmnist.bin",
        "aedat2/dvs128_alex_walking_again.aedat",
        "es/loris_test.es",
        "txt/evlib_event.txt",
    ],
)
def test_real_recordings_follow_the_rule(shared_data: Path, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with aerflow.open(shared_data / name) as reader:
            first = events_of(reader)
            assert len(first) > 0
            assert_same_events(events_of(reader), first)
            assert_same_events(reader.read().events, first)
    with pytest.raises(ValueError, match=CLOSED):
        reader.read()


# --------------------------------------------------------------------------- #
# Writers                                                                     #
# --------------------------------------------------------------------------- #

WRITER_NAMES = [info.name for info in registry.list_formats() if info.writer is not None]


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_closing_a_writer_twice_is_harmless(tmp_path: Path, name: str) -> None:
    events = synthetic()[:500]
    path = tmp_path / f"out.{name}"
    writer = aerflow.open(path, "w", format=name, width=WIDTH, height=HEIGHT)
    writer.write(events)
    writer.close()
    writer.close()
    writer.abort()
    with pytest.raises(ValueError, match="closed writer"):
        writer.write(events)
    assert len(aerflow.read(path, format=name)) == len(events)
    with aerflow.open(tmp_path / f"again.{name}", "w", format=name, width=64, height=48) as w:
        w.write(events)
    w.close()


# --------------------------------------------------------------------------- #
# Argument types                                                              #
# --------------------------------------------------------------------------- #

NOT_INTEGERS = [True, False, 1280.5, 64.0, "640", np.float64(64), np.bool_(True), None]
OUT_OF_RANGE = [0, -1, 1 << 17]


def test_format_must_be_a_string(cases: dict[str, Case], tmp_path: Path) -> None:
    path = cases["evt3"].path
    for bad in (123, b"evt3", ["evt3"]):
        with pytest.raises(TypeError, match="format"):
            aerflow.read(path, format=bad)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="format"):
            aerflow.open(path, format=bad)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="format"):
            aerflow.write(tmp_path / "x.raw", synthetic(), format=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="format"):
            registry.get(bad)  # type: ignore[arg-type]
    assert not (tmp_path / "x.raw").exists()


@pytest.mark.parametrize("bad", NOT_INTEGERS[:-1], ids=repr)
def test_sizes_must_be_integers_when_reading(case: Case, bad: Any) -> None:
    reader_class = registry.get(case.format).reader_class()
    takes_size = "width" in inspect.signature(reader_class).parameters
    for options in ({"width": bad, "height": HEIGHT}, {"width": WIDTH, "height": bad}):
        with pytest.raises(TypeError, match=r"width|height"):
            aerflow.read(case.path, format=case.format, **options)
        if takes_size:  # the class itself, without the API's check
            with pytest.raises(TypeError, match=r"width|height"):
                reader_class(case.path, **options)


def test_sizes_must_be_positive_when_reading(cases: dict[str, Case]) -> None:
    for case in cases.values():
        reader_class = registry.get(case.format).reader_class()
        if "width" not in inspect.signature(reader_class).parameters:
            continue  # .npy and .npz readers take no sensor size
        for bad in OUT_OF_RANGE:
            with pytest.raises(ValueError, match=r"width|height|sensor size"):
                aerflow.read(case.path, format=case.format, width=bad, height=HEIGHT)


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_sizes_must_be_integers_when_writing(tmp_path: Path, name: str) -> None:
    events = synthetic()[:10]
    path = tmp_path / f"out.{name}"
    for bad in NOT_INTEGERS[:-1]:
        with pytest.raises(TypeError, match="width"):
            aerflow.write(path, events, format=name, width=bad, height=HEIGHT)
        with pytest.raises(TypeError, match="height"):
            aerflow.open(path, "w", format=name, width=WIDTH, height=bad)
    for bad in OUT_OF_RANGE:
        with pytest.raises(ValueError, match=r"width|sensor|\d+x\d+"):
            aerflow.write(path, events, format=name, width=bad, height=HEIGHT)
    assert not path.exists()


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_writer_classes_check_sizes_themselves(tmp_path: Path, name: str) -> None:
    """Built directly, not through aerflow.open, a writer refuses the same sizes."""
    writer_class = aerflow.registry.get(name).writer_class()
    if "width" not in inspect.signature(writer_class).parameters:
        return  # the format stores no sensor size
    for bad in NOT_INTEGERS[:-1]:
        with pytest.raises(TypeError, match="width"):
            writer_class(tmp_path / f"out.{name}", width=bad, height=HEIGHT)
    assert list(tmp_path.iterdir()) == []


def test_clock_times_refuse_fields_over_59() -> None:
    for bad in ("1:99", "1:60", "0:60.5", "1:60:00", "1:00:60", "2:75:10"):
        with pytest.raises(ValueError, match="below 60"):
            aerflow.parse_time(bad)
    assert aerflow.parse_time("1:59.5") == 119_500_000
    assert aerflow.parse_time("90:00") == 5_400_000_000  # the leading field may run over
    assert aerflow.parse_time("1:02:03") == 3_723_000_000
    assert aerflow.parse_time("0:00:59.999999") == 59_999_999


def test_synthetic_sensor_sizes_and_times() -> None:
    for bad in NOT_INTEGERS[:-1]:
        with pytest.raises(TypeError, match="width"):
            SyntheticSensor(bad, HEIGHT)
        with pytest.raises(TypeError, match="height"):
            SyntheticSensor(WIDTH, bad)
    with pytest.raises(ValueError, match="width"):
        SyntheticSensor(4, HEIGHT)
    with pytest.raises(TypeError, match="seed"):
        SyntheticSensor(seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        SyntheticSensor(t0=True)
    with pytest.raises(ValueError, match="below 60"):
        SyntheticSensor(duration="1:99")
    assert SyntheticSensor(WIDTH, HEIGHT, t0="1ms").t0 == 1000


def test_tensor_sensor_sizes() -> None:
    events = synthetic()
    for bad in NOT_INTEGERS[:-1]:
        with pytest.raises(TypeError, match="width"):
            frames(events, window="10ms", device="numpy", sensor_size=(bad, HEIGHT))
    for bad in OUT_OF_RANGE:
        with pytest.raises(ValueError, match="sensor size"):
            frames(events, window="10ms", device="numpy", sensor_size=(bad, HEIGHT))
    with pytest.raises(ValueError, match="below 60"):
        frames(events, window="0:99", device="numpy", sensor_size=(WIDTH, HEIGHT))
    with deadline(30):
        assert len(list(frames(events, window="10ms", device="numpy", sensor_size=(64, 48))))
