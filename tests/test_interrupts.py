"""Ctrl-C on every live or paced pipeline, with both cores busy: exit 130, no partial file,
nothing left running, and no wait for the source to cooperate.

Each pipeline here is built so that a stop that waits for its source would take far longer
than the limit (a pace of minutes per packet, a socket or pipe that never delivers, an endless
camera), so the limits only separate "stops at once" from "hangs" and hold on a loaded
machine. How quickly it stops under load is measured in benchmarks/interrupts.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aerflow.events import EVENTS_DTYPE, Packet
from aerflow.stream import IterableStream, Properties, Stream

from .processes import child, free_udp_port, udp_port_bound, wait_until

STOPPED_WITHIN_S = 20.0
"""Far below what waiting for the source would take (minutes, or never)."""


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """Both cores of the test machine spinning in other processes for the test's length."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def _aerflow(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "aerflow", "--quiet", *map(str, args)]


def _interrupt_and_time(process: subprocess.Popen[bytes]) -> float:
    """Send SIGINT; seconds until the process ended."""
    sent = time.monotonic()
    process.send_signal(2)
    try:
        process.wait(timeout=STOPPED_WITHIN_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {STOPPED_WITHIN_S} s after Ctrl-C") from None
    return time.monotonic() - sent


def _any_file(folder: Path) -> bool:
    return any(folder.iterdir())


def _written(folder: Path) -> int:
    """Bytes in the files of ``folder`` (0 while there are none)."""
    total = 0
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            total += path.stat().st_size
    return total


@pytest.mark.parametrize(
    "outputs",
    [
        pytest.param(("output", "file", "{dir}/out.raw"), id="paced-to-file"),
        pytest.param(
            ("output", "file", "{dir}/a.raw", "output", "file", "{dir}/b.aedat4", "output", "null"),
            id="paced-tee",
        ),
        pytest.param(
            ("output", "file", "{dir}/a.es", "output", "video", "{dir}/out.mp4", "--fps", "25"),
            id="paced-to-video",
        ),
    ],
)
@pytest.mark.usefixtures("busy_cores")
def test_ctrl_c_stops_a_paced_pipeline_at_once(tmp_path: Path, outputs: tuple[str, ...]) -> None:
    words = [w.format(dir=tmp_path / "out") for w in outputs]
    (tmp_path / "out").mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.05)
        # A UDP copy of the stream tells when the first event has passed: from then on the
        # source is pacing the second one (files buffer what they get and show nothing).
        port = listener.getsockname()[1]
        command = _aerflow(
            "input", "file", _two_paced_events(tmp_path), "--width", "64", "--height", "64",
            "filter", "pace", *SLOW, "output", "udp", f"127.0.0.1:{port}", *words,
        )  # fmt: skip
        with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            wait_until(lambda: _received(listener), "the first packet", process)
            _interrupt_and_time(process)
            _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert list((tmp_path / "out").iterdir()) == []  # every partial output removed


def _two_paced_events(folder: Path) -> Path:
    """A recording whose second event, paced at ``SLOW``, comes more than an hour after
    the first, which is released at once. (Events close in event time: pacing reaches the
    long wait at once, with no empty windows to hand over first.)"""
    path = folder / "two.csv"
    path.write_text("t,x,y,on\n0,1,1,1\n40000,2,2,0\n")
    return path


SLOW = ("--speed", "0.00001")  # 40 ms of event time take 4000 s


def _received(listener: socket.socket) -> bool:
    try:
        return bool(listener.recv(65536))
    except TimeoutError:
        return False


@pytest.mark.usefixtures("busy_cores")
def test_ctrl_c_stops_a_udp_receiver_waiting_for_its_first_datagram(tmp_path: Path) -> None:
    port = free_udp_port()
    command = _aerflow("input", "udp", f"127.0.0.1:{port}", "output", "file", tmp_path / "x.raw")
    with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(lambda: udp_port_bound(port), "the receiver's socket", process)
        _interrupt_and_time(process)
        _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("busy_cores")
def test_ctrl_c_stops_a_udp_receiver_between_datagrams(tmp_path: Path) -> None:
    port = free_udp_port()
    command = _aerflow(
        "input", "udp", f"127.0.0.1:{port}", "--width", "640", "--height", "480",
        "output", "file", tmp_path / "x.raw", "output", "null",
    )  # fmt: skip
    with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(lambda: udp_port_bound(port) and _any_file(tmp_path), "the receiver", process)
        _interrupt_and_time(process)
        _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("busy_cores")
def test_ctrl_c_stops_a_pipeline_reading_a_silent_stdin(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    try:
        command = _aerflow("input", "stdin", "output", "file", tmp_path / "x.raw",
                           "--width", "64", "--height", "64")  # fmt: skip
        with child(
            command, stdin=reader, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            os.write(writer, b"t,x,y,on\n1,2,3,1\n")  # one event, then the pipe stays open
            wait_until(lambda: _any_file(tmp_path), "the output to open", process)
            _interrupt_and_time(process)
            _, stderr = process.communicate()
    finally:
        os.close(reader)
        os.close(writer)
    assert process.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", ["evk4", "dvxplorer"])
@pytest.mark.usefixtures("busy_cores")
def test_ctrl_c_stops_an_emulated_camera(tmp_path: Path, model: str) -> None:
    command = _aerflow(
        "input", "camera", "--emulate", model, "--loop", "output", "file", tmp_path / "x.aedat4"
    )
    with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(lambda: _any_file(tmp_path), "the output to open", process)
        _interrupt_and_time(process)
        _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []


class _StuckStream(Stream):
    """A source whose second packet never comes and that ignores every stop request."""

    def __init__(self) -> None:
        self.properties = Properties("stuck", 8, 8, live=True)
        self.forever = threading.Event()

    def __iter__(self) -> Iterator[Packet]:
        yield Packet(np.zeros(1, EVENTS_DTYPE))
        self.forever.wait()


def test_closing_a_read_ahead_stream_does_not_wait_for_a_stuck_source() -> None:
    source = _StuckStream()
    ahead = source.ahead(2)
    packets = iter(ahead)
    assert len(next(packets).events) == 1
    closer = threading.Thread(target=ahead.close, daemon=True)
    closer.start()
    closer.join(timeout=STOPPED_WITHIN_S)
    stuck = closer.is_alive()
    source.forever.set()  # release the producer thread whatever happened
    assert not stuck, "close() waited for a source that never stops"


def test_pacing_on_a_read_ahead_thread_ends_when_the_stream_closes() -> None:
    events = np.zeros(2, EVENTS_DTYPE)
    events["t"] = [0, 40_000]  # at this speed, the second event comes 4000 s after the first
    stream = IterableStream([Packet(events)], Properties("t", 1, 1)).pace(speed=0.00001)
    ahead = stream.ahead(1)
    packets = iter(ahead)
    next(packets)
    ahead.close()
    thread = ahead._thread
    assert thread is not None
    thread.join(timeout=STOPPED_WITHIN_S)
    assert not thread.is_alive(), "the pacing thread kept waiting after close()"
