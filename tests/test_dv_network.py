"""DV network streams over TCP and UNIX sockets: dv-processing's NetworkWriter feeding aerflow
(the library and `aerflow input dv`), aerflow's server feeding dv-processing's NetworkReader,
several clients, slow and vanishing clients, and servers that break the protocol.

dv-processing runs in child processes: deleting its NetworkWriter while a client is
connected never returns in Python (its destructor waits for the connections to close while
holding the GIL that their error callback needs), so a peer server ends with ``os._exit``,
which closes its sockets the way a server that stops does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.errors import (
    ConfigurationError,
    FormatError,
    NetworkError,
    NetworkTimeoutError,
    TruncatedDataWarning,
)
from aerflow.formats.aedat4_description import StreamInfo, build_description, build_io_header
from aerflow.formats.aedat4_packets import PACKET_HEADER, compress, encode_events
from aerflow.formats.aedat4_writer import describe_stream
from aerflow.net import DvAddress, DvClient, DvServer, parse_dv_address

from .conftest import manifest_digest
from .helpers import assert_same_events, assert_same_triggers
from .processes import PATIENCE, child, wait_until
from .test_aedat4 import make_recording

SAMPLE = "aedat4/tonic_sample_dvxplorer.aedat4"
TRANSPORTS = ["tcp", "unix"]

# A dv-processing server in a child process: it serves one stream of a recording (events or
# triggers, read with dv-processing itself), once `clients` clients are connected. Its own
# NetworkReader is one of them: once that one has everything, every packet has been handed to
# every connection. The child ends (closing its connections) once, moreover, no socket of it
# has had unread bytes for a while: what dv-processing still held for a slow client would
# otherwise be lost with the process.
PEER_WRITER = r"""
import array, fcntl, os, sys, termios, time
import dv_processing as dv


def unread():
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            queued = array.array("i", [0])
            fcntl.ioctl(int(fd), termios.TIOCOUTQ, queued, True)  # SIOCOUTQ
            total += queued[0]
        except OSError:  # gone meanwhile, or a listening socket
            pass
    return total

address, recording, kind, compression, clients, *tls = sys.argv[1:]
clients = int(clients)
reader = dv.io.MonoCameraRecording(recording)
source = reader.getCameraName()
if kind == "events":
    stream = dv.io.Stream.EventStream(0, "events", source, reader.getEventResolution())
else:
    stream = dv.io.Stream.TriggerStream(0, "triggers", source)
stream.setCompression(getattr(dv.CompressionType, compression))
if address.startswith("/"):
    writer = dv.io.NetworkWriter(address, stream)
    checker = lambda: dv.io.NetworkReader(address)
elif tls:
    server_cert, server_key, ca, client_cert, client_key = tls
    writer = dv.io.NetworkWriter("127.0.0.1", int(address), stream, server_cert, server_key, ca)
    checker = lambda: dv.io.NetworkReader("127.0.0.1", int(address), client_cert, client_key)
else:
    writer = dv.io.NetworkWriter("127.0.0.1", int(address), stream)
    checker = lambda: dv.io.NetworkReader("127.0.0.1", int(address))
print("listening", flush=True)
check = checker()
while writer.getClientCount() < clients + 1:
    time.sleep(0.01)
sent = 0
if kind == "events":
    while (batch := reader.getNextEventBatch()) is not None:
        writer.writeEvents(batch)
        sent += len(batch)
else:
    while (batch := reader.getNextTriggerBatch()) is not None:
        writer.writeTriggers(batch)
        sent += len(batch)
got = 0
while got < sent:
    batch = check.getNextEventBatch() if kind == "events" else check.getNextTriggerBatch()
    if batch is None:
        time.sleep(0.005)
    else:
        got += len(batch)
quiet = 0
while quiet < 20:
    quiet = quiet + 1 if writer.getQueuedPacketCount() == 0 and unread() == 0 else 0
    time.sleep(0.02)
print("sent", sent, flush=True)
os._exit(0)
"""

# A dv-processing client in a child process: reads the one stream of a server until it has
# `expected` elements or the server closes, then prints what it got (events as the MANIFEST
# digest, triggers as a list) and ends. (A NetworkReader whose connection ends drops what it
# has received and not yet handed out: the server must stay until its clients are done.)
PEER_READER = r"""
import hashlib, json, os, sys, time
import numpy as np
import dv_processing as dv

address, expected, *tls = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
if address.startswith("/"):
    reader = dv.io.NetworkReader(address)
elif tls:
    reader = dv.io.NetworkReader("127.0.0.1", int(address), *tls)
else:
    reader = dv.io.NetworkReader("127.0.0.1", int(address))
print(json.dumps({"connected": True}), flush=True)
events, triggers, count = [], [], 0
while count < expected:
    if reader.isEventStreamAvailable():
        batch = reader.getNextEventBatch()
        if batch is not None:
            events.append(batch.numpy())
            count += len(batch)
            continue
    elif reader.isTriggerStreamAvailable():
        batch = reader.getNextTriggerBatch()
        if batch is not None:
            triggers.extend([t.timestamp, int(t.type)] for t in batch)
            count += len(batch)
            continue
    if not reader.isRunning():
        break
    time.sleep(0.002)
found = {"resolution": list(reader.getEventResolution() or ()), "triggers": triggers}
if events:
    e = np.concatenate(events)
    h = hashlib.sha256()
    for name in ("timestamp", "x", "y"):
        h.update(e[name].astype("<i8").tobytes())
    h.update(e["polarity"].astype("u1").tobytes())
    found.update(count=len(e), sha256=h.hexdigest())
print(json.dumps(found), flush=True)
os._exit(0)
"""


def peer_address(transport: str, tmp_path: Path) -> tuple[str, str]:
    """(what the peer is given, what aerflow is given) for a fresh address."""
    if transport == "unix":
        path = str(tmp_path / "dv.sock")
        return path, f"unix://{path}"
    port = free_tcp_port()
    return str(port), f"tcp://127.0.0.1:{port}"


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dv_processing() -> Any:
    return pytest.importorskip("dv_processing")


def sample(shared_data: Path) -> Path:
    return shared_data / SAMPLE


@contextmanager
def peer_writer(
    address: str,
    recording: Path,
    kind: str = "events",
    compression: str = "NONE",
    clients: int = 1,
    tls: Sequence[Path] = (),
) -> Iterator[subprocess.Popen[str]]:
    """``tls``: server certificate and key, CA, and a client's certificate and key."""
    dv_processing()
    args = [sys.executable, "-c", PEER_WRITER, address, str(recording), kind, compression]
    args += [str(clients), *map(str, tls)]
    with child(args, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "listening"
        yield process


@contextmanager
def peer_readers(
    address: str, count: int, expected: int, tls: Sequence[Path] = ()
) -> Iterator[list[subprocess.Popen[str]]]:
    """``tls``: the readers' certificate and key."""
    dv_processing()
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                child(
                    [sys.executable, "-c", PEER_READER, address, str(expected), *map(str, tls)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(count)
        ]
        yield processes


def reader_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, out
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def events_digest(events: np.ndarray) -> str:
    return manifest_digest(events["t"], events["x"], events["y"], events["on"])


class Reading:
    """Iterates a client on a thread, keeping its packets (or the error it raised)."""

    def __init__(self, client: DvClient) -> None:
        self.client = client
        self.packets: list[aerflow.Packet] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for packet in self.client:
                self.packets.append(packet)
        except BaseException as error:
            self.error = error

    def events(self) -> int:
        return sum(len(packet) for packet in list(self.packets))

    def join(self) -> aerflow.Packet:
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive(), "the client did not end"
        if self.error is not None:
            raise self.error
        return aerflow.events.concatenate_packets(self.packets)


def reached(reading: Reading, events: int) -> bool:
    return reading.events() >= events


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "aerflow", *args]


# -- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://127.0.0.1:7000", ("127.0.0.1", 7000)),
        ("tcp://[::1]:7000", ("::1", 7000)),
        ("TCP://7001", ("127.0.0.1", 7001)),
        ("tcp://localhost", ("127.0.0.1", 7777)),
        ("127.0.0.1:7002", ("127.0.0.1", 7002)),
        ("7003", ("127.0.0.1", 7003)),
        ("unix:///tmp/dv.sock", "/tmp/dv.sock"),
        ("unix:relative.sock", "relative.sock"),
        ("./here.sock", "./here.sock"),
    ],
)
def test_parse_dv_address(text: str, expected: Any) -> None:
    address = parse_dv_address(text)
    if isinstance(expected, str):
        assert address.path == expected
        assert address.tcp is None
        assert str(address) == f"unix://{expected}"
    else:
        assert address.tcp is not None
        assert (address.tcp.host, address.tcp.port) == expected
    assert parse_dv_address(Path("/tmp/x.sock")) == DvAddress(path="/tmp/x.sock")
    assert not parse_dv_address(text).tls


def test_parse_tls_address() -> None:
    address = parse_dv_address("TLS://127.0.0.1:7000")
    assert address.tls
    assert address.tcp is not None
    assert (address.tcp.host, address.tcp.port) == ("127.0.0.1", 7000)
    assert str(address) == "tls://127.0.0.1:7000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssl://127.0.0.1:7777", "unknown scheme"),
        ("http://127.0.0.1:7777", "unknown scheme"),
        ("unix://", "no socket path"),
        ("unix://" + "x" * 200, "at most 107 bytes"),
        ("tcp://127.0.0.1:99999", "outside 0..65535"),
    ],
)
def test_parse_dv_address_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_dv_address(text)


# -- dv-processing serving, aerflow receiving -----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cli_records_what_dv_processing_serves(
    transport: str, tmp_path: Path, shared_data: Path, manifest: dict[str, Any]
) -> None:
    """`aerflow input dv` to a file: the recording's events, exactly, and its sensor size;
    the command ends by itself when the server closes."""
    peer, ours = peer_address(transport, tmp_path)
    out = tmp_path / "received.aedat4"
    compression = "NONE" if transport == "tcp" else "LZ4"
    with peer_writer(peer, sample(shared_data), compression=compression) as server:
        done = subprocess.run(
            cli("input", "dv", ours, "--timeout", str(PATIENCE), "output", "file", str(out)),
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert done.returncode == 0, done.stderr
        assert server.stdout is not None
        assert server.stdout.read().split() == ["sent", str(manifest[SAMPLE]["events"])]
    count = manifest[SAMPLE]["events"]
    assert f" DV packets, {count:,} events; skipped 0, malformed 0," in done.stderr
    with aerflow.open(out) as reader:
        assert reader.properties.sensor_size == tuple(manifest[SAMPLE]["sensor_size"])
        events = reader.read().events
    assert len(events) == manifest[SAMPLE]["events"]
    assert events_digest(events) == manifest[SAMPLE]["sha256"]


def test_client_takes_dv_processing_triggers(tmp_path: Path) -> None:
    """A trigger stream: dv-processing reads a recording's triggers and serves them."""
    recording = make_recording()
    path = tmp_path / "triggers.aedat4"
    aerflow.write(path, recording, format="aedat4", width=346, height=260)
    peer, ours = peer_address("tcp", tmp_path)
    with (
        peer_writer(peer, path, kind="triggers", compression="ZSTD"),
        DvClient(ours, timeout=PATIENCE) as client,
    ):
        properties = client.wait_for_data()
        assert properties.sensor_size is None  # a trigger stream has no sensor
        assert [s.type_identifier for s in client.streams] == ["TRIG"]
        received = Reading(client).join()
    assert_same_triggers(received.triggers, recording.triggers)
    assert len(received.events) == 0
    assert client.stats.triggers == len(recording.triggers)


# -- aerflow serving, dv-processing receiving -----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dv_processing_readers_get_every_event(
    transport: str, tmp_path: Path, shared_data: Path, manifest: dict[str, Any]
) -> None:
    """Two NetworkReaders at once, then the server closes: each has every event, exactly."""
    peer, ours = peer_address(transport, tmp_path)
    with (
        DvServer(ours, width=320, height=240, compression="lz4", linger=PATIENCE) as server,
        peer_readers(peer, 2, manifest[SAMPLE]["events"]) as readers,
        aerflow.open(sample(shared_data)) as recording,
    ):
        assert server.wait_for_clients(2, PATIENCE)
        for packet in recording:
            server.write(packet)
        server.close()  # returns once both readers have had everything and left
        results = [reader_result(process) for process in readers]
    for found in results:
        assert found["resolution"] == [320, 240]
        assert found["count"] == manifest[SAMPLE]["events"]
        assert found["sha256"] == manifest[SAMPLE]["sha256"]
    if transport == "unix":
        assert not Path(peer).exists()  # the server removes its socket


def test_dv_processing_reader_gets_triggers(tmp_path: Path) -> None:
    recording = make_recording()
    peer, ours = peer_address("tcp", tmp_path)
    with (
        DvServer(ours, streams="triggers", linger=PATIENCE) as server,
        peer_readers(peer, 1, len(recording.triggers)) as (reader,),
    ):
        assert server.wait_for_clients(1, PATIENCE)
        server.write(recording)
        server.close()
        found = reader_result(reader)
    # DV's trigger types: channel 0 rising/falling 1/2, generator 4/5, frame 6/7,
    # exposure 8/9, pulse 3, timestamp reset 0
    codes = {(0, True): 1, (0, False): 2, (1, True): 4, (1, False): 5, (2, True): 6}
    codes.update({(2, False): 7, (3, True): 8, (3, False): 9, (4, True): 3, (5, True): 0})
    expected = [
        [int(t), codes[(int(i), bool(r))]]
        for t, i, r in zip(
            recording.triggers["t"],
            recording.triggers["id"],
            recording.triggers["rising"],
            strict=True,
        )
    ]
    assert found["triggers"] == expected


def test_cli_serves_dv_processing(
    tmp_path: Path, shared_data: Path, manifest: dict[str, Any]
) -> None:
    """`aerflow input file ... output dv ... --clients 1`: the reader gets the recording."""
    peer, ours = peer_address("unix", tmp_path)
    args = cli(
        "input", "file", str(sample(shared_data)), "output", "dv", ours, "--clients", "1",
        "--linger", str(PATIENCE),
    )  # fmt: skip
    with child(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        wait_until(lambda: Path(peer).exists(), "the server's socket", server)
        with peer_readers(peer, 1, manifest[SAMPLE]["events"]) as (reader,):
            found = reader_result(reader)
        _, errors = server.communicate(timeout=PATIENCE)
        assert server.returncode == 0, errors
    assert found["sha256"] == manifest[SAMPLE]["sha256"]
    assert not Path(peer).exists()


# -- aerflow to aerflow ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_every_channel_round_trips(transport: str, compression: str, tmp_path: Path) -> None:
    recording = make_recording(5000, frames=4)
    _, ours = peer_address(transport, tmp_path)
    streams = "events,triggers,imu,frames"
    with DvServer(
        ours, width=346, height=260, streams=streams, compression=compression, packet_events=700
    ) as server:
        client = DvClient(server.address, timeout=PATIENCE)
        assert client.wait_for_data().sensor_size == (346, 260)
        assert [s.type_identifier for s in client.streams] == ["EVTS", "FRME", "IMUS", "TRIG"]
        assert server.wait_for_clients(1, PATIENCE)
        reading = Reading(client)
        for start in range(0, 5000, 1300):
            server.write(aerflow.Packet(recording.events[start : start + 1300]))
        server.write(
            aerflow.Packet(
                recording.events[:0], recording.triggers, recording.imu, recording.frames
            )
        )
    received = reading.join()
    client.close()
    assert_same_events(received.events, recording.events)
    assert_same_triggers(received.triggers, recording.triggers)
    assert received.imu.tobytes() == recording.imu.tobytes()
    assert len(received.frames) == 4
    for got, sent in zip(received.frames, recording.frames, strict=True):
        assert (got.t, got.x, got.y) == (sent.t, sent.x, sent.y)
        assert (got.exposure_start, got.exposure_end) == (sent.exposure_start, sent.exposure_end)
        np.testing.assert_array_equal(got.pixels, sent.pixels)
    assert client.stats.packets == server.stats.packets
    assert client.stats.malformed == client.stats.skipped == 0


def test_server_binds_loopback_by_default() -> None:
    with DvServer(0, width=8, height=8) as server:
        assert server.address.tcp is not None
        assert server.address.tcp.host == "127.0.0.1"
    with DvServer("tcp://0", width=8, height=8) as server:
        assert server.address.tcp is not None
        assert server.address.tcp.host == "127.0.0.1"


def test_client_retries_until_the_server_is_up(tmp_path: Path) -> None:
    path = tmp_path / "later.sock"
    client = DvClient(f"unix://{path}", retry=PATIENCE, timeout=PATIENCE)
    reading = Reading(client)  # connecting: refused (no file yet) until the server exists
    with DvServer(path, width=4, height=4) as server:
        assert server.wait_for_clients(1, PATIENCE)
        events = np.zeros(3, aerflow.EVENTS_DTYPE)
        events["t"] = [1, 2, 3]
        server.write(events)
    assert_same_events(reading.join().events, events)


# -- slow, vanishing and many clients -------------------------------------------------------------


def test_a_slow_client_is_dropped_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aerflow.net.dv")
    chunk = 1 << 16  # events per write: 1 MiB of DV packets
    total = 24 * chunk
    rng = np.random.default_rng(1)
    events = np.zeros(total, aerflow.EVENTS_DTYPE)
    events["t"] = np.arange(total)
    events["x"] = rng.integers(0, 64, total)
    events["y"] = rng.integers(0, 64, total)
    with DvServer(0, width=64, height=64, queue_bytes=1 << 21) as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(server.address.sockaddr)  # connects, never reads
        vanishing = socket.create_connection(server.address.sockaddr)
        good = DvClient(server.address, timeout=PATIENCE)
        good.wait_for_data()
        assert server.wait_for_clients(3, PATIENCE)
        reading = Reading(good)
        for start in range(0, total, chunk):
            if start == 2 * chunk:
                # Unread data on closing: the kernel resets the connection.
                vanishing.close()
                wait_until(
                    lambda: server.stats.served - server.clients - server.stats.dropped >= 1,
                    "the server to notice the vanished client",
                )
            server.write(events[start : start + chunk])
            # The good client keeps up: it never lags by more than the write in progress.
            wait_until(partial(reached, reading, start + chunk), "the reading client")
        assert server.stats.dropped == 1
        assert server.clients == 1
    received = reading.join().events
    stalled.close()
    good.close()
    assert_same_events(received, events)
    assert "fell more than 2097152 bytes behind: dropped" in caplog.text


def test_client_close_from_another_thread_ends_iteration(tmp_path: Path) -> None:
    with DvServer(tmp_path / "quiet.sock", width=4, height=4) as server:
        client = DvClient(server.address)
        client.wait_for_data()
        reading = Reading(client)
        assert server.wait_for_clients(1, PATIENCE)
        client.close()
        assert len(reading.join().events) == 0
        assert client.closed


def test_server_close_ends_a_write_waiting_for_clients() -> None:
    server = DvServer(0, width=4, height=4, clients=2)
    events = np.zeros(1, aerflow.EVENTS_DTYPE)
    writing = threading.Thread(target=server.write, args=(events,), daemon=True)
    writing.start()
    server.abort()
    writing.join(PATIENCE)
    assert not writing.is_alive()
    with pytest.raises(ValueError, match="closed"):
        server.write(events)


# -- endings, timeouts and bad servers ------------------------------------------------------------


@contextmanager
def raw_server(send: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server that accepts one client and does ``send`` with it, keeping the connection
    open until the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(PATIENCE)
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            send(connection)
            done.wait(PATIENCE)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        listener.close()
        thread.join(PATIENCE)


@contextmanager
def client_of(send: Callable[[socket.socket], None], **options: Any) -> Iterator[DvClient]:
    """A client connected to a :func:`raw_server` doing ``send``."""
    options.setdefault("timeout", PATIENCE)
    with raw_server(send) as port:
        client = DvClient(f"tcp://127.0.0.1:{port}", **options)
        try:
            yield client
        finally:
            client.close()


def send_and_close(data: bytes) -> Callable[[socket.socket], None]:
    def send(connection: socket.socket) -> None:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)

    return send


def send_only(data: bytes) -> Callable[[socket.socket], None]:
    return lambda connection: connection.sendall(data)


def header(*streams: Any, compression: int = 0) -> bytes:
    return build_io_header(compression, -1, build_description(list(streams)).encode())


EVENTS_STREAM = describe_stream(0, "NONE", "test", ("16", "16"))


def event_packet(times: list[int], stream: int = 0) -> bytes:
    events = np.zeros(len(times), aerflow.EVENTS_DTYPE)
    events["t"] = times
    payload = bytes(encode_events(events))
    return PACKET_HEADER.pack(stream, len(payload)) + payload


def test_timeout_when_the_server_sends_nothing() -> None:
    with (
        client_of(send_only(b""), timeout=0.3) as client,
        pytest.raises(NetworkTimeoutError, match=r"did not come within 0\.3 s"),
    ):
        client.wait_for_data()


def test_timeout_on_the_command_line() -> None:
    with raw_server(send_only(header(EVENTS_STREAM))) as port:
        done = subprocess.run(
            cli("input", "dv", f"tcp://127.0.0.1:{port}", "--timeout", "0.3", "output", "null"),
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
    assert done.returncode == 1
    assert "did not come within 0.3 s" in done.stderr


def test_connection_refused_is_one_clear_error() -> None:
    port = free_tcp_port()
    with pytest.raises(NetworkError, match=r"cannot connect to tcp://127\.0\.0\.1:.*no server"):
        DvClient(f"tcp://127.0.0.1:{port}", retry=0.2).wait_for_data()
    done = subprocess.run(
        cli("input", "dv", f"tcp://127.0.0.1:{port}", "output", "null"),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("aerflow: error: ")
    assert "cannot connect to" in done.stderr
    assert "give --retry the seconds" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_server_that_sends_garbage() -> None:
    with (
        client_of(send_only(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as client,
        pytest.raises(FormatError, match="byte 0: not a DV network stream"),
    ):
        client.wait_for_data()


def test_a_header_that_is_not_an_io_header() -> None:
    fake = struct.pack("<I", 16) + b"\x08\x00\x00\x00NOPE" + bytes(8)
    with (
        client_of(send_only(fake)) as client,
        pytest.raises(FormatError, match="not a DV stream header"),
    ):
        client.wait_for_data()


def test_the_end_of_the_connection_ends_the_stream() -> None:
    data = header(EVENTS_STREAM) + event_packet([1, 2]) + event_packet([3])
    with client_of(send_and_close(data)) as client:
        received = client.read()
    assert received.events["t"].tolist() == [1, 2, 3]
    assert client.stats.packets == 2


def test_a_packet_cut_by_the_end_is_dropped_with_a_warning() -> None:
    cut = event_packet([5, 6])[:-7]
    data = header(EVENTS_STREAM) + event_packet([1, 2]) + cut
    with (
        client_of(send_and_close(data)) as client,
        pytest.warns(TruncatedDataWarning, match="inside a packet at byte"),
    ):
        received = client.read()
    assert received.events["t"].tolist() == [1, 2]


def test_a_negative_packet_size_is_an_error() -> None:
    data = header(EVENTS_STREAM) + event_packet([1]) + PACKET_HEADER.pack(0, -5)
    offset = len(header(EVENTS_STREAM)) + len(event_packet([1]))
    with (
        client_of(send_only(data)) as client,
        pytest.raises(FormatError, match=f"byte {offset}: .*negative size"),
    ):
        client.read()


def test_unknown_streams_and_malformed_packets_are_counted_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pose = StreamInfo(7, "POSE", {"compression": "NONE"}, {})
    garbage = b"\x01" * 40
    data = (
        header(EVENTS_STREAM, pose)
        + event_packet([1])
        + PACKET_HEADER.pack(7, 12)
        + bytes(12)  # a pose packet: skipped
        + PACKET_HEADER.pack(9, 4)
        + bytes(4)  # a stream the description does not name: skipped, logged
        + PACKET_HEADER.pack(0, len(garbage))
        + garbage  # not an event packet: counted, logged
        + event_packet([2, 3])
    )
    caplog.set_level(logging.INFO, logger="aerflow.net.dv")
    with client_of(send_and_close(data)) as client:
        received = client.read()
    assert received.events["t"].tolist() == [1, 2, 3]
    assert (client.stats.skipped, client.stats.malformed) == (2, 1)
    assert "stream 9, which the description does not name" in caplog.text
    assert "skipping streams 7 (POSE)" in caplog.text


def test_a_server_with_nothing_aerflow_takes() -> None:
    with (
        client_of(send_only(header(StreamInfo(0, "POSE", {}, {})))) as client,
        pytest.raises(FormatError, match=r"offers no events.*\(streams: 0: POSE\)"),
    ):
        client.wait_for_data()


def test_compressed_stream_with_a_bad_frame_is_counted() -> None:
    bad = b"\x04\x22\x4d\x18" + b"\xff" * 20
    good = bytes(compress(1, encode_events(np.zeros(1, aerflow.EVENTS_DTYPE))))
    data = (
        header(describe_stream(0, "LZ4", "t", ("4", "4")), compression=1)
        + PACKET_HEADER.pack(0, len(bad))
        + bad
        + PACKET_HEADER.pack(0, len(good))
        + good
    )
    with client_of(send_and_close(data)) as client:
        assert len(client.read().events) == 1
    assert client.stats.malformed == 1


# -- server arguments -----------------------------------------------------------------------------


def test_server_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the sensor size"):
        DvServer(0)
    with pytest.raises(ValueError, match="streams must name"):
        DvServer(0, width=4, height=4, streams="events,poses")
    with pytest.raises(ValueError, match="compression must be one of"):
        DvServer(0, width=4, height=4, compression="gzip")
    taken = tmp_path / "taken.sock"
    taken.write_text("")
    with pytest.raises(NetworkError, match="exists"):
        DvServer(taken, width=4, height=4)
    with DvServer(0, width=4, height=4) as server:
        events = np.zeros(1, aerflow.EVENTS_DTYPE)
        events["x"] = 4
        with pytest.raises(ValueError, match="outside the 4x4 sensor"):
            server.write(events)


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_stops_the_server(tmp_path: Path) -> None:
    path = tmp_path / "ctrl-c.sock"
    serving = cli("input", "synthetic", "--duration", "inf", "output", "dv", f"unix://{path}")
    with child(serving, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        wait_until(path.exists, "the server's socket", server)
        with DvClient(path, timeout=PATIENCE) as probe:
            assert len(next(iter(probe)).events) > 0  # the server is streaming
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=PATIENCE)
        assert server.returncode == 128 + signal.SIGINT, errors
    assert not path.exists()


def test_ctrl_c_stops_the_client(tmp_path: Path) -> None:
    path = tmp_path / "ctrl-c.sock"
    stop = threading.Event()
    events = np.zeros(100, aerflow.EVENTS_DTYPE)
    with DvServer(path, width=4, height=4) as server:

        def stream() -> None:
            while not stop.wait(0.01):
                server.write(events)

        writing = threading.Thread(target=stream, daemon=True)
        writing.start()
        try:
            receiving = cli("input", "dv", f"unix://{path}", "output", "null")
            with child(
                receiving, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ) as client:
                wait_until(lambda: server.clients == 1, "the client to connect", client)
                client.send_signal(signal.SIGINT)
                _, errors = client.communicate(timeout=PATIENCE)
                assert client.returncode == 128 + signal.SIGINT, errors
        finally:
            stop.set()
            writing.join(PATIENCE)


def test_environment_has_no_stray_socket_files(tmp_path: Path) -> None:
    """A server that ends removes its socket file, however it ends."""
    for end in ("close", "abort"):
        path = tmp_path / f"{end}.sock"
        server = DvServer(path, width=4, height=4)
        assert path.exists()
        getattr(server, end)()
        assert not path.exists()
        assert not os.path.lexists(path)


# -- TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A CA with a server and a client certificate it signed, and a client certificate of
    another CA: PEM files, keys apart."""

    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    stranger: Path
    stranger_key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command (it makes the test certificates) is not installed")
    folder = tmp_path_factory.mktemp("tls")

    def run(*args: str | Path) -> None:
        subprocess.run(
            [openssl, *map(str, args)], check=True, capture_output=True, timeout=PATIENCE
        )

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        run(
            "req", "-x509", *new_key, "-keyout", folder / f"{ca}.key", "-out", folder / f"{ca}.pem",
            "-days", "2", "-subj", f"/CN=aerflow test {ca}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
    signed = (("server", "serverAuth", "ca"), ("client", "clientAuth", "ca"))
    for serial, (name, usage, ca) in enumerate((*signed, ("stranger", "clientAuth", "other-ca"))):
        extensions = folder / f"{name}.ext"
        extensions.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        )
        request = folder / f"{name}.csr"
        key = folder / f"{name}.key"
        run("req", *new_key, "-keyout", key, "-out", request, "-subj", f"/CN={name}")
        run(
            "x509", "-req", "-in", request, "-CA", folder / f"{ca}.pem",
            "-CAkey", folder / f"{ca}.key", "-set_serial", str(serial + 1), "-days", "2",
            "-extfile", extensions, "-out", folder / f"{name}.pem",
        )  # fmt: skip
    return Certificates(
        *(folder / name for name in ("ca.pem", "server.pem", "server.key", "client.pem")),
        *(folder / name for name in ("client.key", "stranger.pem", "stranger.key")),
    )


def tls_server(certificates: Certificates, mutual: bool = True, **options: Any) -> DvServer:
    ca = certificates.ca if mutual else None
    options.setdefault("width", 64)
    options.setdefault("height", 64)
    return DvServer(
        0, tls_cert=certificates.server, tls_key=certificates.server_key, tls_ca=ca, **options
    )


def some_events(count: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(count)
    events = np.zeros(count, aerflow.EVENTS_DTYPE)
    events["t"] = np.cumsum(rng.integers(0, 50, count))
    events["x"] = rng.integers(0, size, count)
    events["y"] = rng.integers(0, size, count)
    events["on"] = rng.integers(0, 2, count)
    return events


@pytest.mark.parametrize("mutual", [True, False])
def test_tls_round_trip(certificates: Certificates, mutual: bool) -> None:
    """aerflow's TLS server to aerflow's TLS client: every event and trigger, exactly; with
    ``mutual`` the server asks for the client's certificate."""
    recording = make_recording(6000)
    identity = (
        {"tls_cert": certificates.client, "tls_key": certificates.client_key} if mutual else {}
    )
    with tls_server(
        certificates, mutual, width=346, height=260, streams="events,triggers", compression="lz4"
    ) as server:
        assert str(server.address).startswith("tls://127.0.0.1:")
        client = DvClient(server.address, tls_ca=certificates.ca, timeout=PATIENCE, **identity)
        assert client.wait_for_data().sensor_size == (346, 260)
        assert server.wait_for_clients(1, PATIENCE)
        reading = Reading(client)
        for start in range(0, 6000, 1000):  # many small TLS writes, joined
            server.write(aerflow.Packet(recording.events[start : start + 1000]))
        server.write(aerflow.Packet(recording.events[:0], recording.triggers))
    received = reading.join()
    client.close()
    assert_same_events(received.events, recording.events)
    assert_same_triggers(received.triggers, recording.triggers)
    assert client.stats.packets == server.stats.packets


def test_tls_client_with_a_key_inside_its_certificate_file(
    certificates: Certificates, tmp_path: Path
) -> None:
    both = tmp_path / "client-and-key.pem"
    both.write_bytes(certificates.client.read_bytes() + certificates.client_key.read_bytes())
    events = some_events(500)
    with tls_server(certificates) as server:
        client = DvClient(server.address, tls_ca=certificates.ca, tls_cert=both, timeout=PATIENCE)
        client.wait_for_data()
        assert server.wait_for_clients(1, PATIENCE)
        reading = Reading(client)
        server.write(events)
    assert_same_events(reading.join().events, events)
    client.close()


def test_tls_client_without_the_ca_refuses_the_server(certificates: Certificates) -> None:
    """A server certificate that the client's CAs (here: the system's) did not sign: one
    clear error, from the library and from the command line."""
    with tls_server(certificates, mutual=False) as server:
        with pytest.raises(NetworkError, match=r"certificate verify failed.*give tls_ca="):
            DvClient(f"tls://{server.address.tcp}", timeout=PATIENCE).wait_for_data()
        done = subprocess.run(
            cli("input", "dv", str(server.address), "--timeout", str(PATIENCE), "output", "null"),
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert server.clients == 0
    assert done.returncode == 1
    assert done.stderr.startswith("aerflow: error: [Errno 71] the TLS handshake with tls://")
    assert "certificate verify failed" in done.stderr
    assert "give --tls-ca the CA file" in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("identity", ["none", "stranger"])
def test_tls_server_refuses_clients_the_ca_did_not_sign(
    certificates: Certificates, identity: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aerflow.net.dv")
    options: dict[str, Any] = {"tls_ca": certificates.ca, "timeout": PATIENCE}
    if identity == "stranger":
        options.update(tls_cert=certificates.stranger, tls_key=certificates.stranger_key)
        message = "unknown ca.*did not accept the client certificate"
    else:
        message = "certificate required.*give tls_cert= and tls_key="
    with tls_server(certificates) as server:
        client = DvClient(server.address, **options)
        with pytest.raises(NetworkError, match=f"the TLS connection to tls://.*{message}"):
            client.wait_for_data()
        client.close()
        assert server.clients == 0
        assert server.stats.served == 1
    assert "refused: TLS handshake" in caplog.text


def test_tls_client_of_a_plain_server(certificates: Certificates) -> None:
    with DvServer(0, width=4, height=4) as server:
        address = f"tls://{server.address.tcp}"
        client = DvClient(address, tls_ca=certificates.ca, timeout=PATIENCE)
        with pytest.raises(
            NetworkError, match=r"handshake .* failed: .*\(is the server serving TLS"
        ):
            client.wait_for_data()
        client.close()


def test_tls_arguments(certificates: Certificates, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TLS is for TCP streams only"):
        DvClient(tmp_path / "x.sock", tls_ca=certificates.ca)
    with pytest.raises(ValueError, match="TLS is for TCP streams only"):
        DvServer(tmp_path / "x.sock", width=4, height=4, tls_cert=certificates.server)
    with pytest.raises(ValueError, match="tls_key goes with tls_cert"):
        DvClient(7777, tls_key=certificates.client_key)
    with pytest.raises(ValueError, match="needs its certificate"):
        DvServer("tls://127.0.0.1:0", width=4, height=4)
    with pytest.raises(ValueError, match="needs its certificate"):
        DvServer(0, width=4, height=4, tls_ca=certificates.ca)
    with pytest.raises(ConfigurationError, match=r"cannot load the TLS CA file .*missing\.pem"):
        DvClient(7777, tls_ca=tmp_path / "missing.pem")
    with pytest.raises(ConfigurationError, match="cannot load the TLS certificate or key"):
        DvServer(0, width=4, height=4, tls_cert=certificates.server)  # the key is elsewhere
    assert not list(tmp_path.iterdir())  # no UNIX socket made


def test_cli_records_what_dv_processing_serves_over_tls(
    certificates: Certificates, tmp_path: Path, shared_data: Path, manifest: dict[str, Any]
) -> None:
    """dv-processing's encrypted NetworkWriter (TLS 1.2, client certificates required) to
    `aerflow input dv --tls-...`: the recording, exactly."""
    port = str(free_tcp_port())
    out = tmp_path / "received.aedat4"
    c = certificates
    tls = (c.server, c.server_key, c.ca, c.client, c.client_key)
    args = cli(
        "input", "dv", f"tcp://127.0.0.1:{port}", "--timeout", str(PATIENCE),
        "--tls-ca", str(c.ca), "--tls-cert", str(c.client), "--tls-key", str(c.client_key),
        "output", "file", str(out),
    )  # fmt: skip
    with peer_writer(port, sample(shared_data), compression="LZ4", tls=tls) as server:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert done.returncode == 0, done.stderr
        assert server.stdout is not None
        assert server.stdout.read().split() == ["sent", str(manifest[SAMPLE]["events"])]
    with aerflow.open(out) as reader:
        events = reader.read().events
    assert len(events) == manifest[SAMPLE]["events"]
    assert events_digest(events) == manifest[SAMPLE]["sha256"]


def test_dv_processing_tls_client_without_a_certificate_is_refused(
    certificates: Certificates, tmp_path: Path, shared_data: Path
) -> None:
    port = str(free_tcp_port())
    c = certificates
    tls = (c.server, c.server_key, c.ca, c.client, c.client_key)
    with peer_writer(port, sample(shared_data), tls=tls) as server:
        client = DvClient(f"tcp://127.0.0.1:{port}", tls_ca=c.ca, timeout=PATIENCE)
        with pytest.raises(NetworkError, match=r"handshake failure.*give tls_cert= and tls_key="):
            client.wait_for_data()
        client.close()
        server.kill()


def test_dv_processing_tls_reader_gets_every_event(
    certificates: Certificates, shared_data: Path, manifest: dict[str, Any]
) -> None:
    """aerflow's TLS server, asking for client certificates, to dv-processing's encrypted
    NetworkReader (TLS 1.2): every event, exactly."""
    c = certificates
    with (
        tls_server(c, width=320, height=240, compression="zstd", linger=PATIENCE) as server,
        peer_readers(
            str(server.address.tcp.port), 1, manifest[SAMPLE]["events"], (c.client, c.client_key)
        ) as (reader,),
        aerflow.open(sample(shared_data)) as recording,
    ):
        assert server.wait_for_clients(1, PATIENCE)
        for packet in recording:
            server.write(packet)
        server.close()
        found = reader_result(reader)
    assert found["count"] == manifest[SAMPLE]["events"]
    assert found["sha256"] == manifest[SAMPLE]["sha256"]


# -- reconnecting -------------------------------------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["tcp", "tls"])
def test_client_reconnects_when_the_connection_breaks(
    secure: bool, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends abruptly (a reset) and comes back at the same port: with retry= the
    client connects again and goes on; the new server's clean close then ends the stream."""
    caplog.set_level(logging.INFO, logger="aerflow.net.dv")
    options: dict[str, Any] = {"width": 64, "height": 64}
    client_options: dict[str, Any] = {"retry": PATIENCE, "timeout": PATIENCE}
    if secure:
        c: Certificates = request.getfixturevalue("certificates")
        options.update(tls_cert=c.server, tls_key=c.server_key)
        client_options.update(tls_ca=c.ca)
    events = some_events(3000)
    first = DvServer(0, **options)
    address = first.address
    client = DvClient(address, **client_options)
    client.wait_for_data()
    assert first.wait_for_clients(1, PATIENCE)
    reading = Reading(client)
    first.write(events[:1000])
    wait_until(partial(reached, reading, 1000), "the first events")
    first.abort()
    with DvServer(address, **options) as second:
        assert second.wait_for_clients(1, PATIENCE)
        second.write(events[1000:])
    assert_same_events(reading.join().events, events)
    client.close()
    assert client.stats.reconnects == 1
    why = "it ended without a TLS close_notify" if secure else "connection reset by peer"
    assert f"the connection broke ({why}): connecting again" in caplog.text


def test_without_retry_a_broken_connection_ends_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = some_events(100)
    with DvServer(0, width=64, height=64) as server:
        client = DvClient(server.address, timeout=PATIENCE)
        client.wait_for_data()
        assert server.wait_for_clients(1, PATIENCE)
        reading = Reading(client)
        server.write(events)
        wait_until(partial(reached, reading, 100), "the events")
        server.abort()
    assert_same_events(reading.join().events, events)
    client.close()
    assert client.stats.reconnects == 0
    assert "the connection broke (connection reset by peer)" in caplog.text


def test_a_broken_connection_that_does_not_come_back() -> None:
    server = DvServer(0, width=64, height=64)
    client = DvClient(server.address, retry=0.2, timeout=PATIENCE)
    client.wait_for_data()
    assert server.wait_for_clients(1, PATIENCE)
    reading = Reading(client)
    server.abort()
    with pytest.raises(
        NetworkError, match=r"broke \(connection reset by peer\) and could not be made again"
    ):
        reading.join()
    client.close()


def test_a_packet_cut_by_a_broken_connection_is_lost_and_the_rest_comes() -> None:
    """A server that ends inside a packet has not ended cleanly: with retry= the client
    connects again, and loses the packet cut; the second connection ends cleanly."""
    first = header(EVENTS_STREAM) + event_packet([1, 2]) + event_packet([3, 4])[:-5]
    second = header(EVENTS_STREAM) + event_packet([9])
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        listener.settimeout(PATIENCE)
        for data in (first, second):
            connection, _ = listener.accept()
            with connection:
                connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with listener:
        client = DvClient(f"tcp://127.0.0.1:{listener.getsockname()[1]}", retry=PATIENCE)
        received = client.read()
        thread.join(PATIENCE)
    client.close()
    assert received.events["t"].tolist() == [1, 2, 9]
    assert client.stats.reconnects == 1
