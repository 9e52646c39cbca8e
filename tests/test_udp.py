"""UDP sender and receiver over loopback (IPv4 and IPv6), crafted datagrams from a raw socket,
endings (end of stream, idle timeout, close from another thread), timeouts, pacing, and
interoperation with aestream when it is installed."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.errors import NetworkError, NetworkTimeoutError
from aerflow.net import (
    Address,
    UdpReceiver,
    UdpSender,
    get_wire_format,
    parse_address,
    receive,
)
from aerflow.net import udp as udp_module
from aerflow.net.wire import FLAG_END_OF_STREAM, aerflow_header, encode_datagrams
from aerflow.stream import Stream

from .helpers import assert_same_events
from .processes import PATIENCE, free_udp_port, udp_port_bound, wait_until

WIRES = ("aerflow", "spif", "spif-t", "faery-t64", "faery-t32")
SLACK = 10.0
"""Seconds a busy machine may add to a timed wait: upper bounds on durations allow this much,
so that they catch a hang or a unit slip (ms for s), not a slow scheduler."""


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


HOSTS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param(
        "::1",
        id="ipv6",
        marks=pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback"),
    ),
]


def local(host: str) -> str:
    return f"[{host}]:0" if ":" in host else f"{host}:0"


@pytest.fixture(params=[True, False], ids=["mmsg", "plain"])
def mmsg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test with sendmmsg/recvmmsg and with the one-datagram-at-a-time path."""
    if request.param and udp_module._MMSG is None:
        pytest.skip("no sendmmsg/recvmmsg on this system")
    monkeypatch.setattr(udp_module, "_USE_MMSG", request.param)
    return bool(request.param)


def make_events(n: int, seed: int = 0, width: int = 640, height: int = 480) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = np.cumsum(rng.integers(0, 20, n)) + 1_000_000
    events["x"] = rng.integers(0, width, n)
    events["y"] = rng.integers(0, height, n)
    events["on"] = rng.random(n) < 0.5
    return events


class Receiving:
    """Iterates a receiver on a thread, keeping its packets (or the error it raised)."""

    def __init__(self, receiver: UdpReceiver) -> None:
        self.receiver = receiver
        self.packets: list[aerflow.Packet] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for packet in self.receiver:
                self.packets.append(packet)
        except BaseException as error:
            self.error = error

    def events(self) -> int:
        return sum(len(packet) for packet in list(self.packets))

    def until(self, events: int) -> np.ndarray:
        """Close the receiver once ``events`` events are in, then join: the ending for a wire
        without an end of stream (an idle timeout would also end the stream early whenever
        the sender is held up for longer than the timeout)."""
        wait_until(
            lambda: self.events() >= events or not self.thread.is_alive(), f"{events} events"
        )
        self.receiver.close()
        return self.join()

    def join(self, timeout: float = PATIENCE) -> np.ndarray:
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.receiver.close()
            self.thread.join(5)
            raise AssertionError("the receiver did not finish in time")
        if self.error is not None:
            raise self.error
        if not self.packets:
            return np.zeros(0, aerflow.EVENTS_DTYPE)
        return np.concatenate([p.events for p in self.packets])


@contextlib.contextmanager
def raw_sender(address: Address) -> Iterator[socket.socket]:
    with socket.socket(address.family, socket.SOCK_DGRAM) as raw:
        raw.connect(address.sockaddr)
        yield raw


# -- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:3333", ("127.0.0.1", 3333, socket.AF_INET)),
        ("3333", ("127.0.0.1", 3333, socket.AF_INET)),
        (3334, ("127.0.0.1", 3334, socket.AF_INET)),
        ("[::1]:7777", ("::1", 7777, socket.AF_INET6)),
        ("[0:0::1]:7777", ("::1", 7777, socket.AF_INET6)),
        ("[fe80::1%lo]:9", ("fe80::1%lo", 9, socket.AF_INET6)),
        ("0.0.0.0:1", ("0.0.0.0", 1, socket.AF_INET)),
        ("[::]:0", ("::", 0, socket.AF_INET6)),
        (("10.1.2.3", 5), ("10.1.2.3", 5, socket.AF_INET)),
        ("localhost:3333", ("127.0.0.1", 3333, socket.AF_INET)),
    ],
)
def test_parse_address(text: Any, expected: tuple[str, int, int]) -> None:
    address = parse_address(text)
    assert tuple(address) == expected
    assert parse_address(str(address)) == address


def test_parse_address_default_port() -> None:
    assert parse_address("::1", default_port=3333) == ("::1", 3333, socket.AF_INET6)
    assert parse_address("[::1]", default_port=5) == ("::1", 5, socket.AF_INET6)
    assert parse_address("127.0.0.2", default_port=5).port == 5
    assert str(parse_address("[::1]:3")) == "[::1]:3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty address"),
        (":3333", "names no host"),
        ("127.0.0.1:", "bad port"),
        ("127.0.0.1:x", "bad port"),
        ("127.0.0.1:70000", "outside 0..65535"),
        ("::1:3333", "brackets"),
        ("[::1", "expected"),
        ("[::1]3333", "expected ':port'"),
        ("[127.0.0.1]:3", "only IPv6"),
        ("127.0.0.1", "no port"),
        ("127.0.0.1%eth0:3", "no scope"),
        ("my host:3", "bad host name"),
    ],
)
def test_parse_address_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_parse_address_unknown_host() -> None:
    with pytest.raises(NetworkError, match="cannot resolve host") as caught:
        parse_address("no-such-host.invalid:3333")
    assert isinstance(caught.value, OSError)


# -- loopback -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("wire", WIRES)
def test_loopback_exact(wire: str, host: str, mmsg: bool) -> None:
    events = make_events(30_000, seed=len(wire))
    with UdpReceiver(local(host), wire=wire, timeout=10) as receiver:
        receiving = Receiving(receiver)
        with UdpSender(receiver.address, wire=wire, width=640, height=480) as sender:
            for part in np.array_split(events, 7):
                sender.write(aerflow.Packet(part))
        # Only the aerflow wire has an end of stream.
        received = receiving.join() if wire == "aerflow" else receiving.until(len(events))
        stats = receiver.stats
    if wire == "spif":  # no times on the wire: arrival times, from 0, never decreasing
        assert received["t"][0] == 0
        assert np.all(np.diff(received["t"].astype(np.int64)) >= 0)
        received["t"] = events["t"][: len(received)]
    assert_same_events(received, events)
    sent = sender.stats
    assert sent.events == len(events)
    assert stats.events == len(events)
    assert (stats.malformed, stats.lost, stats.duplicated, stats.reordered) == (0, 0, 0, 0)
    if wire == "aerflow":
        assert receiver.properties.sensor_size == (640, 480)
        (stream,) = stats.streams
        assert stream.stream_id == sender.stream_id
        assert stream.ended
        assert stream.datagrams == sent.datagrams  # end of stream included, repeats not
    else:
        assert stats.datagrams == sent.datagrams
        assert stats.bytes == sent.bytes
    parts = np.array_split(events, 7)
    datagrams = sum(len(encode_datagrams(p, wire, width=640, height=480)) for p in parts)
    assert sent.datagrams == datagrams + (wire == "aerflow")


def test_jumbo_datagrams_and_sensor_from_header() -> None:
    events = make_events(50_000, seed=3, width=1280, height=720)
    with UdpReceiver("127.0.0.1:0", timeout=10) as receiver:
        assert receiver.properties.format == "udp"
        assert receiver.properties.sensor_size is None
        with UdpSender(receiver.address, width=1280, height=720, datagram_bytes=65507) as sender:
            sender.write(events)
        properties = receiver.wait_for_data()
        assert properties.sensor_size == (1280, 720)
        received = np.concatenate([p.events for p in receiver])
    assert_same_events(received, events)
    assert sender.stats.datagrams == -(-len(events) // 8184) + 1
    assert receiver.stats.datagrams >= sender.stats.datagrams


def test_receiver_is_a_stream_and_receive_reads_all() -> None:
    events = make_events(5000)
    port = free_udp_port()
    result: list[aerflow.Packet] = []
    thread = threading.Thread(
        target=lambda: result.append(receive(f"127.0.0.1:{port}", timeout=PATIENCE)), daemon=True
    )
    thread.start()
    wait_until(lambda: udp_port_bound(port), f"a receiver at port {port}")
    with UdpSender(port) as sender:
        sender.write(events)
    thread.join(PATIENCE)
    assert not thread.is_alive()
    assert_same_events(result[0].events, events)
    with UdpReceiver("127.0.0.1:0") as receiver:
        assert isinstance(receiver, Stream)
        assert receiver.properties.live


def test_several_streams_end_when_all_have_ended() -> None:
    one, two = make_events(3000, seed=1), make_events(3000, seed=2)
    with UdpReceiver("127.0.0.1:0", timeout=10) as receiver:
        receiving = Receiving(receiver)
        first = UdpSender(receiver.address, stream_id=1)
        second = UdpSender(receiver.address, stream_id=2)
        first.write(one)
        second.write(two)
        first.close()
        wait_until(
            lambda: any(s.stream_id == 1 and s.ended for s in receiver.stats.streams),
            "the end of stream 1",
        )
        assert receiving.thread.is_alive()  # stream 2 is still open
        second.close()
        received = receiving.join()
    assert len(received) == 6000
    assert sorted(s.stream_id for s in receiver.stats.streams) == [1, 2]


def test_sender_abort_is_flagged() -> None:
    with UdpReceiver("127.0.0.1:0", timeout=10) as receiver:
        receiving = Receiving(receiver)

        def broken_transfer() -> None:
            with UdpSender(receiver.address) as sender:
                sender.write(make_events(10))
                raise RuntimeError("the source broke")

        with pytest.raises(RuntimeError, match="broke"):
            broken_transfer()
        assert len(receiving.join()) == 10
    (stream,) = receiver.stats.streams
    assert stream.aborted


# -- crafted datagrams --------------------------------------------------------------------------


def test_loss_duplicates_and_reordering_over_the_wire() -> None:
    events = make_events(40)
    datagrams = encode_datagrams(events, "aerflow", datagram_bytes=32 + 8 * 5, stream_id=9)
    assert len(datagrams) == 8
    order = [0, 1, 3, 2, 2, 5, 7, 6]  # 4 lost, 2 repeated, 2 and 6 late
    end = aerflow_header(9, 8, 0, 0, 0, 0, flags=FLAG_END_OF_STREAM)
    with UdpReceiver("127.0.0.1:0", timeout=10) as receiver:
        receiving = Receiving(receiver)
        with raw_sender(receiver.address) as raw:
            for i in order:
                raw.send(datagrams[i])
            raw.send(end)
        received = receiving.join()
    stats = receiver.stats
    assert (stats.lost, stats.duplicated, stats.reordered) == (1, 1, 2)
    expected = np.concatenate([events[5 * i : 5 * i + 5] for i in (0, 1, 3, 2, 5, 7, 6)])
    assert_same_events(received, expected)


def test_malformed_datagrams_are_counted_not_fatal() -> None:
    good = encode_datagrams(make_events(5), "aerflow")[0]
    with UdpReceiver("127.0.0.1:0", timeout=10, max_datagram=200) as receiver:
        receiving = Receiving(receiver)
        with raw_sender(receiver.address) as raw:
            raw.send(b"")
            raw.send(b"garbage!" * 3)
            raw.send(good[:-3])
            raw.send(b"AERF" + b"\x00" * 300)  # larger than max_datagram
            raw.send(good)
        received = receiving.until(5)  # the good datagram comes last, in order, on loopback
    assert len(received) == 5
    stats = receiver.stats
    assert stats.malformed == 4
    assert stats.datagrams == 5


def test_spif_timestamp_words_and_arrival_times() -> None:
    with UdpReceiver("127.0.0.1:0", wire="spif", timeout=10) as receiver:
        receiving = Receiving(receiver)
        with raw_sender(receiver.address) as raw:
            raw.send(bytes([0x0F, 0x00, 0xDA, 0x00]))  # aestream's test: x=218, y=15
            # Taken in (its arrival time stamped) before the gap starts, however late.
            wait_until(lambda: receiving.events() >= 1, "the first datagram's event")
            time.sleep(0.05)
            raw.send((1 << 31 | 3 << 16 | 1 << 15 | 4).to_bytes(4, "little") + b"\x01")
        received = receiving.until(2)
    assert received[["x", "y", "on"]].tolist() == [(218, 15, False), (3, 4, True)]
    assert received["t"][0] == 0
    assert received["t"][1] >= 40_000  # arrival times in µs since the first datagram
    assert (receiver.stats.untimed, receiver.stats.malformed) == (1, 1)


# -- endings and timeouts -----------------------------------------------------------------------


def test_close_from_another_thread_ends_iteration_promptly(mmsg: bool) -> None:
    receiver = UdpReceiver("127.0.0.1:0")
    receiving = Receiving(receiver)
    wait_until(lambda: receiver._busy, "the receiver to wait for datagrams")
    start = time.monotonic()
    receiver.close()
    receiving.thread.join(PATIENCE)  # without a timeout, only close() can end the wait
    assert not receiving.thread.is_alive()
    assert time.monotonic() - start < SLACK
    assert receiving.error is None
    assert receiver.closed
    receiver.close()  # again: nothing happens
    assert list(receiver) == []


def test_close_between_packets() -> None:
    with UdpReceiver("127.0.0.1:0", timeout=5) as receiver:
        with UdpSender(receiver.address) as sender:
            sender.write(make_events(100))
        iterator = iter(receiver)
        assert len(next(iterator)) == 100
        receiver.close()
        assert list(iterator) == []


def test_timeout_for_the_first_datagram() -> None:
    with UdpReceiver("127.0.0.1:0", timeout=0.2) as receiver:
        start = time.monotonic()
        with pytest.raises(NetworkTimeoutError, match="no datagram arrived") as caught:
            list(receiver)
        assert 0.15 < time.monotonic() - start < 0.2 + SLACK
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, aerflow.AerflowError)


def test_idle_timeout_ends_the_stream() -> None:
    with UdpReceiver("127.0.0.1:0", wire="spif", idle_timeout=0.3, timeout=5) as receiver:
        receiving = Receiving(receiver)
        with UdpSender(receiver.address, wire="spif") as sender:
            sent = time.monotonic()  # before the datagram: it cannot arrive earlier
            sender.write(make_events(100))
        received = receiving.join()
        waited = time.monotonic() - sent
    assert len(received) == 100
    assert 0.25 < waited < 0.3 + SLACK


# -- sender -------------------------------------------------------------------------------------


def test_pacing_follows_event_time() -> None:
    events = make_events(2000)
    events["t"] = np.linspace(5_000_000, 5_300_000, len(events)).astype(np.uint64)
    with UdpReceiver("127.0.0.1:0", timeout=5) as receiver:
        receiving = Receiving(receiver)
        start = time.monotonic()
        with UdpSender(receiver.address, pace=True) as sender:
            sender.write(events[:1000])
            sender.write(events[1000:])
            elapsed = time.monotonic() - start
        received = receiving.join()
    # 0.3 s of event time: a paced sender cannot be done sooner; a busy one may take longer.
    assert 0.28 < elapsed < 0.3 + SLACK
    assert_same_events(received, events)
    start = time.monotonic()
    with UdpSender(free_udp_port(), pace=3.0) as sender:
        sender.write(events)
    assert 0.08 < time.monotonic() - start < 0.1 + SLACK


def test_rate_limit() -> None:
    events = make_events(20_000)
    start = time.monotonic()
    with UdpSender(free_udp_port(), wire="spif", rate_limit=100_000) as sender:
        sender.write(events)
    # 20,000 events at 100,000 a second: 0.2 s, less the burst the limit allows at the start.
    assert 0.17 < time.monotonic() - start < 0.2 + SLACK
    assert sender.stats.events == 20_000


@pytest.mark.parametrize(("wire", "x", "y"), [("spif", 32768, 1), ("faery-t32", 1, 40000)])
def test_sender_refuses_coordinates_beyond_the_format(wire: str, x: int, y: int) -> None:
    events = make_events(10)
    events["x"][7], events["y"][7] = x, y
    with UdpSender(free_udp_port(), wire=wire) as sender:
        with pytest.raises(ValueError, match=f"event 7 \\(x={x}, y={y}\\) does not fit"):
            sender.write(events)
        assert sender.stats.datagrams == 0


def test_sender_refuses_coordinates_beyond_the_sensor() -> None:
    events = make_events(10)
    sender = UdpSender(free_udp_port(), width=64, height=64)
    with pytest.raises(ValueError, match="does not fit the 64x64 sensor"):
        sender.write(events)
    sender.close()
    assert sender.stats.datagrams == 1  # the end of stream only


def test_sender_arguments() -> None:
    with pytest.raises(ValueError, match="port 0"):
        UdpSender("127.0.0.1:0")
    with pytest.raises(ValueError, match="datagram_bytes"):
        UdpSender(free_udp_port(), datagram_bytes=70_000)
    with pytest.raises(ValueError, match="rate_limit"):
        UdpSender(free_udp_port(), rate_limit=0)
    with pytest.raises(ValueError, match="pace"):
        UdpSender(free_udp_port(), pace=-1.0)
    with pytest.raises(ValueError, match="both width and height"):
        UdpSender(free_udp_port(), width=5)
    with pytest.raises(ValueError, match="unknown wire format"):
        UdpSender(free_udp_port(), wire="evt3")
    sender = UdpSender(free_udp_port(), wire="spif")
    assert sender.datagram_bytes == 512
    sender.write(np.zeros(0, aerflow.EVENTS_DTYPE))
    sender.close()
    with pytest.raises(ValueError, match="closed"):
        sender.write(make_events(1))


def test_sending_to_nobody_does_not_fail(mmsg: bool) -> None:
    with UdpSender(free_udp_port(), wire="spif", datagram_bytes=64) as sender:
        for _ in range(5):
            sender.write(make_events(500))
            time.sleep(0.01)
    assert sender.stats.events == 2500


def test_receiver_arguments_and_bind_errors() -> None:
    with UdpReceiver("127.0.0.1:0") as receiver:
        assert receiver.receive_buffer_bytes > 0
        assert receiver.address.port != 0
        with pytest.raises(NetworkError, match="cannot listen at") as caught:
            UdpReceiver(receiver.address)
        assert isinstance(caught.value, OSError)
    with pytest.raises(ValueError, match="max_datagram"):
        UdpReceiver("127.0.0.1:0", max_datagram=70_000)
    with pytest.raises(ValueError, match="timeout"):
        UdpReceiver("127.0.0.1:0", timeout=-1)


def test_given_sensor_size_wins_and_mismatch_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    events = make_events(100, width=64, height=64)
    with UdpReceiver("127.0.0.1:0", width=32, height=32, timeout=5) as receiver:
        with UdpSender(receiver.address, width=64, height=64) as sender:
            sender.write(events)
        with caplog.at_level(logging.WARNING, logger="aerflow.net.udp"):
            received = np.concatenate([p.events for p in receiver])
    assert receiver.properties.sensor_size == (32, 32)
    assert "announces a 64x64 sensor" in caplog.text
    inside = (events["x"] < 32) & (events["y"] < 32)
    assert_same_events(received, events[inside])
    assert receiver.stats.out_of_range == int((~inside).sum())


def test_wire_formats_are_listed() -> None:
    assert [get_wire_format(w).name for w in WIRES] == list(WIRES)


def test_the_command_line_offers_exactly_the_registered_wire_formats() -> None:
    """The udp source's and sink's ``--wire`` choices are written out in the component table
    (it must not import the network code to start fast): they must stay the registry's."""
    from aerflow import components
    from aerflow.net import wire_format_names

    for table in (components.SOURCES, components.SINKS):
        wire = next(option for option in table["udp"].options if option.name == "wire")
        assert wire.choices == tuple(wire_format_names())
        assert wire.default == wire_format_names()[0]


# -- aestream interoperation ----------------------------------------------------------------------


def aestream_cli() -> str:
    pytest.importorskip("aestream")
    found = shutil.which("aestream") or str(Path(sys.executable).with_name("aestream"))
    if not os.access(found, os.X_OK):
        pytest.skip("aestream's command-line tool is not installed")
    return found


@pytest.mark.parametrize("n", [20, 1000, 1020, 5000])
@pytest.mark.parametrize("timestamps", [False, True])
def test_receives_what_aestream_sends(tmp_path: Path, n: int, timestamps: bool) -> None:
    """aestream's CLI streams a DAT file as SPIF words, with or without timestamp words."""
    cli = aestream_cli()
    events = make_events(n, seed=n, width=304, height=240)
    path = tmp_path / "events.dat"
    aerflow.write(path, events, format="dat", width=304, height=240)
    wire = "spif-t" if timestamps else "spif"
    with UdpReceiver("127.0.0.1:0", wire=wire, timeout=10) as receiver:
        receiving = Receiving(receiver)
        done = subprocess.run(
            [
                cli,
                "input",
                "file",
                str(path),
                "output",
                "udp",
                "127.0.0.1",
                str(receiver.address.port),
                "--include-timestamp",
                "1" if timestamps else "0",
            ],
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            check=True,
        )
        received = receiving.until(n)  # aestream sends no end of stream
    assert f"Sent a total of {n} events" in done.stdout
    if timestamps and n < 32:
        # aestream's only datagram has twice its length and nothing to compare the
        # second half with: what follows the real events is its stack's leftovers.
        received = received[:n]
    if not timestamps:
        received["t"] = events["t"]
    assert_same_events(received, events)


def test_aestream_receives_what_we_send() -> None:
    aestream = pytest.importorskip("aestream")
    width, height = 64, 32
    events = make_events(3000, width=width, height=height)
    port = free_udp_port()
    with aestream.UDPInput((width, height), "cpu", port) as stream:
        wait_until(lambda: udp_port_bound(port), f"aestream listening at port {port}")
        with UdpSender(port, wire="spif") as sender:
            sender.write(events)
        frame = np.zeros((width, height))

        def counted() -> bool:
            frame[...] += np.asarray(stream.read())  # what arrived since the last read
            return bool(frame.sum() >= len(events))

        wait_until(counted, f"aestream counting {len(events)} events")
    expected = np.zeros((width, height))
    np.add.at(expected, (events["x"], events["y"]), 1)
    assert np.array_equal(frame, expected)


def test_a_receiver_gone_after_the_end_of_stream_raises_no_alarm(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end-of-stream datagram goes out three times; a receiver that ends on the first
    copy refuses the others, which is no sign of lost data."""
    monkeypatch.setattr(udp_module, "_EOS_GAP_S", 0.2)  # the receiver is surely gone by then
    events = np.zeros(10, aerflow.EVENTS_DTYPE)
    events["t"] = np.arange(10)
    caplog.set_level(logging.WARNING, logger="aerflow.net.udp")
    receiver = UdpReceiver("127.0.0.1:0", timeout=PATIENCE)
    received: list[int] = []

    def receive_all() -> None:
        with receiver:
            received.extend(len(p.events) for p in receiver)  # ends at the first copy

    thread = threading.Thread(target=receive_all)
    thread.start()
    try:
        with UdpSender(f"127.0.0.1:{receiver.address.port}") as sender:
            sender.write(events)
    finally:
        receiver.close()
        thread.join(PATIENCE)
    assert sum(received) == 10
    assert "nothing is listening" not in caplog.text
