"""Streams (Properties, IterableStream, FilteredStream, AheadStream) and pipeline.run()."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from aerflow import stream as stream_module
from aerflow.events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet, empty_events
from aerflow.filters import TimeSlice
from aerflow.pipeline import Progress, run
from aerflow.sinks import NullSink, Sink
from aerflow.stream import AheadStream, FilteredStream, IterableStream, Properties, Stream

from .helpers import assert_same_events, deadline
from .processes import wait_until

try:
    from tests.reference import filters as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import filters as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

PROPS = Properties("test", 8, 6, t0=0, event_count=100, time_range=(0, 99))


def make_packets(count: int = 10, per_packet: int = 7, seed: int = 0) -> list[Packet]:
    """Packets of random events on an 8 x 6 sensor (a few outside it), time ordered."""
    rng = np.random.default_rng(seed)
    packets = []
    t = 0
    for index in range(count):
        events = np.empty(per_packet, EVENTS_DTYPE)
        events["t"] = t + np.cumsum(rng.integers(0, 20, per_packet))
        t = int(events["t"][-1])
        events["x"] = rng.integers(0, 9, per_packet)
        events["y"] = rng.integers(0, 7, per_packet)
        events["on"] = rng.random(per_packet) < 0.5
        triggers = np.array([(t, index % 3, True)], TRIGGERS_DTYPE)
        packets.append(Packet(events, triggers))
    return packets


def ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aerflow-ahead" and t.is_alive()]


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    before = set(ahead_threads())
    yield
    time.sleep(0)  # let a finishing thread be marked dead
    left = [t for t in ahead_threads() if t not in before]
    assert not left, f"background threads still alive: {left}"


class Counting:
    """An upstream generator that counts the packets pulled from it and whether it was
    closed."""

    def __init__(self, packets: list[Packet]) -> None:
        self.packets = packets
        self.pulled = 0
        self.closed = 0

    def __iter__(self) -> Iterator[Packet]:
        for packet in self.packets:
            self.pulled += 1
            yield packet

    def close(self) -> None:
        self.closed += 1

    def stream(self, properties: Properties = PROPS) -> IterableStream:
        return IterableStream(self, properties, close=self.close)


# --------------------------------------------------------------------------------------------
# Properties, IterableStream, FilteredStream
# --------------------------------------------------------------------------------------------
def test_properties_derived_forgets_counts_and_time_range() -> None:
    props = Properties("evt3", 640, 480, t0=5, event_count=10, time_range=(5, 9), live=False)
    assert props.sensor_size == (640, 480)
    derived = props.derived()
    assert derived == Properties("evt3", 640, 480, t0=5)
    assert props.event_count == 10  # the original is untouched
    assert props.derived(width=10, live=True) == Properties("evt3", 10, 480, t0=5, live=True)
    assert props.derived(event_count=3).event_count == 3  # an explicit change wins
    assert Properties("csv", None, 480).sensor_size is None
    assert Properties("csv", 640, None).sensor_size is None


def test_iterable_stream_reads_closes_and_is_a_context_manager() -> None:
    packets = make_packets()
    source = Counting(packets)
    with source.stream() as stream:
        assert stream.properties is PROPS
        assert stream.progress() is None
        whole = stream.read()
    assert source.closed == 1
    expected = np.concatenate([p.events for p in packets])
    assert_same_events(whole.events, expected)
    assert whole.triggers["id"].tolist() == [k % 3 for k in range(len(packets))]
    empty = IterableStream([], PROPS).read()
    assert len(empty.events) == 0
    assert empty.events.dtype == EVENTS_DTYPE


def test_filtered_stream_chains_in_order_and_delegates() -> None:
    packets = make_packets(seed=1)
    source = Counting(packets)
    progress_calls = []

    class WithProgress(IterableStream):
        def progress(self) -> tuple[int, int] | None:
            progress_calls.append(1)
            return (3, 7)

    upstream = WithProgress(source, PROPS, close=source.close)
    chained = upstream.polarity("on").crop(1, 1, 6, 4).flip("y").transpose()
    assert isinstance(chained, FilteredStream)
    assert chained.properties.sensor_size == (4, 6)
    assert chained.progress() == (3, 7)
    assert progress_calls
    got = ref.from_packet(chained.read())
    chained.close()
    assert source.closed == 1

    stream = ref.concat([ref.from_packet(p) for p in packets])
    stream = ref.polarity(stream, "on")
    stream, _ = ref.crop(stream, (8, 6), 1, 1, 6, 4, True)
    stream, _ = ref.flip(stream, (6, 4), "y")
    assert got == ref.transpose(stream)


def test_shortcuts_match_the_reference() -> None:
    packets = make_packets(seed=2, per_packet=40)
    stream = ref.concat([ref.from_packet(p) for p in packets])

    def ours(build: Any) -> ref.RefPacket:
        return ref.from_packet(build(IterableStream(packets, PROPS)).read())

    assert ours(lambda s: s.refractory("25us")) == ref.refractory(stream, (8, 6), 25)[0]
    assert ours(lambda s: s.denoise(30)) == ref.denoise(stream, (8, 6), 30)[0]
    assert ours(lambda s: s.decimate(3)) == ref.decimate(stream, (8, 6), 3)[0]
    assert ours(lambda s: s.shift_time(-10)) == ref.shift_time(stream, -10)  # first t is 16
    assert ours(lambda s: s.time_slice(100, 300)) == ref.time_slice(stream, 100, 300, False)
    chunks = list(IterableStream(packets, PROPS).chunks(duration="50us"))
    assert [ref.from_packet(p) for p in chunks] == ref.chunk_by_duration(stream, 50)
    chunks = list(IterableStream(packets, PROPS).chunks(events=9))
    assert [ref.from_packet(p) for p in chunks] == ref.chunk_by_count(stream, 9)
    for bad in ({}, {"events": 3, "duration": 5}):
        with pytest.raises(ValueError, match="either"):
            IterableStream(packets, PROPS).chunks(**bad)


def test_time_slice_flags_exhaustion() -> None:
    item = TimeSlice(None, 25, absolute=True)
    item.properties(PROPS)
    flags = []
    for k in range(5):
        events = np.array([(10 * k + i, 0, 0, True) for i in range(10)], EVENTS_DTYPE)
        list(item.apply(Packet(events)))
        flags.append(item.exhausted)
    # [20, 29] still reaches into the slice; [30, 39] lies wholly after its end.
    assert flags == [False, False, False, True, True]


def test_time_slice_stops_reading_its_source() -> None:
    packets = [
        Packet(np.array([(10 * k + i, 0, 0, True) for i in range(10)], EVENTS_DTYPE))
        for k in range(100)
    ]
    source = Counting(packets)
    got = source.stream().time_slice(None, 25, absolute=True).read()
    assert got.events["t"].tolist() == list(range(25))
    # Packet 3 ([30, 39]) shows that nothing later can pass.
    assert source.pulled <= 4, f"pulled {source.pulled} of 100 packets"


def test_relative_time_slice_counts_from_the_first_event() -> None:
    packets = [Packet(empty_events())] + [
        Packet(np.array([(5000 + 10 * k + i, 0, 0, True) for i in range(10)], EVENTS_DTYPE))
        for k in range(10)
    ]
    got = IterableStream(packets, PROPS).time_slice("15us", 30).read()
    assert got.events["t"].tolist() == list(range(5015, 5030))
    absolute = IterableStream(packets, PROPS).time_slice(15, 30, absolute=True).read()
    assert len(absolute.events) == 0


# --------------------------------------------------------------------------------------------
# AheadStream
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 3, 50])
def test_ahead_gives_the_same_packets(depth: int) -> None:
    packets = make_packets(count=40)
    source = Counting(packets)
    ahead = source.stream().ahead(depth)
    assert isinstance(ahead, AheadStream)
    assert ahead.properties is PROPS
    with deadline(10):
        got = list(ahead)
    assert len(got) == len(packets)
    assert all(a is b for a, b in zip(got, packets, strict=True))
    ahead.close()
    assert source.closed == 1
    with pytest.raises(RuntimeError, match="once"):
        list(ahead)
    with pytest.raises(ValueError, match="at least 1"):
        IterableStream([], PROPS).ahead(0)


def test_ahead_reraises_upstream_errors_in_the_consumer() -> None:
    packets = make_packets(count=5)

    def failing() -> Iterator[Packet]:
        yield packets[0]
        yield packets[1]
        raise ValueError("corrupt chunk at byte 1234")

    got: list[Packet] = []

    def consume() -> None:
        for packet in IterableStream(failing(), PROPS).ahead(2):
            got.append(packet)

    with deadline(10), pytest.raises(ValueError, match="byte 1234"):
        consume()
    assert len(got) == 2
    assert got[0] is packets[0]
    assert got[1] is packets[1]


def test_ahead_thread_ends_when_the_consumer_stops_early() -> None:
    def endless() -> Iterator[Packet]:
        packet = make_packets(count=1)[0]
        while True:
            yield packet

    with deadline(10):
        for count, _ in enumerate(IterableStream(endless(), PROPS).ahead(2)):
            if count == 5:
                break
    # The for loop dropped its iterator: the stream's generator ended and joined the thread
    # (checked by the autouse fixture too).
    assert not ahead_threads()


def test_ahead_close_while_the_producer_waits_in_a_live_source() -> None:
    release = threading.Event()
    waiting = threading.Event()
    packet = make_packets(count=1)[0]

    def live() -> Iterator[Packet]:
        yield packet
        waiting.set()
        release.wait(timeout=30)  # a camera with nothing to say
        if release.is_set():
            yield packet

    stream = IterableStream(live(), PROPS, close=release.set).ahead(4)
    iterator = iter(stream)
    with deadline(10):
        assert next(iterator) is packet
        assert waiting.wait(timeout=5)
        started = time.perf_counter()
        stream.close()  # releases the source, then joins the producer
        assert time.perf_counter() - started < 5
    assert not ahead_threads()
    iterator.close()  # type: ignore[attr-defined]


def test_ahead_close_while_the_producer_waits_on_a_full_queue() -> None:
    produced = []

    def endless() -> Iterator[Packet]:
        packet = make_packets(count=1)[0]
        while True:
            produced.append(1)
            yield packet

    stream = IterableStream(endless(), PROPS).ahead(1)
    iterator = iter(stream)
    with deadline(10):
        next(iterator)
        # The queue (1) is full and the producer holds one more.
        wait_until(lambda: len(produced) >= 3, "three packets produced")
        stream.close()
    assert not ahead_threads()
    iterator.close()  # type: ignore[attr-defined]


def test_ahead_close_from_another_thread_ends_a_waiting_consumer() -> None:
    release = threading.Event()
    packet = make_packets(count=1)[0]

    def live() -> Iterator[Packet]:
        yield packet
        release.wait(timeout=30)

    stream = IterableStream(live(), PROPS, close=release.set).ahead(4)
    assert isinstance(stream, AheadStream)
    got: list[Packet] = []
    finished = threading.Event()

    def consume() -> None:
        try:
            for item in stream:
                got.append(item)
        finally:
            finished.set()

    consumer = threading.Thread(target=consume, name="test-consumer", daemon=True)
    consumer.start()
    try:
        # Closed once the consumer, done with the first packet, waits for the next one.
        wait_until(lambda: bool(got), "the first packet")
        waiters = stream._queue.not_empty._waiters  # type: ignore[attr-defined]
        wait_until(lambda: len(waiters) > 0, "the consumer to wait on the queue")
        stream.close()  # e.g. a GUI's stop button, or a signal handler
        assert finished.wait(timeout=3), "the consumer still waits after close()"
    finally:
        if not finished.is_set():  # unblock it so that no thread outlives the test
            stream._queue.put(stream_module._END)
            finished.wait(timeout=5)
        consumer.join(timeout=5)


def test_ahead_overlaps_producer_and_consumer() -> None:
    # The producer runs ahead while the consumer is busy: with a queue of 4, by the time
    # the consumer asks for packet 1 the producer has made several more.
    made = []

    def counted() -> Iterator[Packet]:
        for packet in make_packets(count=10):
            made.append(1)
            yield packet

    with deadline(10):
        iterator = iter(IterableStream(counted(), PROPS).ahead(4))
        next(iterator)
        wait_until(lambda: len(made) >= 6, "six packets made")
        assert len(made) == 6  # 1 taken + 4 queued + 1 waiting to be put
        rest = list(iterator)
    assert len(rest) == 9


# --------------------------------------------------------------------------------------------
# pipeline.run
# --------------------------------------------------------------------------------------------
class Collector:
    """A sink that keeps what it is given and records its calls."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.packets: list[Packet] = []
        self.calls: list[str] = []
        self.fail_at = fail_at

    def write(self, packet: Packet) -> None:
        if self.fail_at is not None and len(self.packets) == self.fail_at:
            raise OSError("disk full")
        self.calls.append("write")
        self.packets.append(packet)

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")


class PlainCollector(Collector):
    """No abort(): close() is what an error calls."""

    abort = None  # type: ignore[assignment]


class KnownSize(IterableStream):
    def __init__(self, source: Counting, properties: Properties = PROPS) -> None:
        super().__init__(source, properties, close=source.close)
        self.source = source

    def progress(self) -> tuple[int, int] | None:
        return self.source.pulled * 100, len(self.source.packets) * 100


@pytest.mark.parametrize("ahead", [None, 1, 4])
def test_run_tees_to_every_sink(ahead: int | None) -> None:
    packets = make_packets(count=12)
    source = Counting(packets)
    null, collector = NullSink(), Collector()
    assert isinstance(null, Sink)
    assert isinstance(collector, Sink)
    reports: list[Progress] = []
    with deadline(10):
        final = run(
            KnownSize(source), null, collector, ahead=ahead, progress=reports.append, interval=0.0
        )
    events = sum(len(p) for p in packets)
    assert all(a is b for a, b in zip(collector.packets, packets, strict=True))
    assert collector.calls == ["write"] * 12 + ["close"]
    assert (null.packets, null.events, null.triggers) == (12, events, 12)
    assert source.closed == 1
    assert (final.packets, final.events) == (12, events)
    assert (final.done, final.total) == (1200, 1200)
    assert final.live is False
    assert final.elapsed >= 0
    assert final.rate >= 0
    # Every packet reported (interval 0), then the final state once more.
    assert [r.packets for r in reports] == [*range(1, 13), 12]
    assert reports[-1] == final


def test_run_reports_live_and_unknown_progress() -> None:
    packets = make_packets(count=3)
    final = run(IterableStream(packets, PROPS.derived(live=True)), NullSink(), ahead=None)
    assert final.live is True
    assert (final.done, final.total) == (None, None)
    assert Progress(0, 0, 0.0, None, None, False).rate == 0.0
    assert Progress(1, 50, 2.0, None, None, False).rate == 25.0


@pytest.mark.parametrize("ahead", [None, 2])
def test_run_aborts_every_sink_when_the_stream_fails(ahead: int | None) -> None:
    packets = make_packets(count=4)
    closed = []

    def failing() -> Iterator[Packet]:
        yield from packets[:3]
        raise ValueError("bad word")

    stream = IterableStream(failing(), PROPS, close=lambda: closed.append(1))
    first, plain, null = Collector(), PlainCollector(), NullSink()
    with deadline(10), pytest.raises(ValueError, match="bad word"):
        run(stream, first, plain, null, ahead=ahead)
    assert first.calls == ["write"] * 3 + ["abort"]
    assert plain.calls == ["write"] * 3 + ["close"]
    assert closed == [1]


@pytest.mark.parametrize("ahead", [None, 2])
def test_run_aborts_every_sink_when_a_sink_fails(ahead: int | None) -> None:
    source = Counting(make_packets(count=50))
    healthy, failing = Collector(), Collector(fail_at=2)
    with deadline(10), pytest.raises(OSError, match="disk full"):
        run(source.stream(), healthy, failing, ahead=ahead)
    # The first sink had packet 3 when the second failed on it; nobody was closed.
    assert healthy.calls == ["write"] * 3 + ["abort"]
    assert failing.calls == ["write"] * 2 + ["abort"]
    assert source.closed == 1
    assert source.pulled < 50


def test_run_aborts_on_keyboard_interrupt() -> None:
    class Interrupting(Collector):
        def write(self, packet: Packet) -> None:
            raise KeyboardInterrupt

    source = Counting(make_packets(count=5))
    other = Collector()
    with deadline(10), pytest.raises(KeyboardInterrupt):
        run(source.stream(), other, Interrupting(), ahead=2)
    assert other.calls == ["write", "abort"]
    assert source.closed == 1


def test_stream_is_abstract() -> None:
    with pytest.raises(TypeError):
        Stream()  # type: ignore[abstract]
