"""Every source kind into every sink kind, through the command line, with small inputs.

A pair either works (exit 0, and for outputs that store events, exactly the events of the
source) or is refused with one line and exit 1; a traceback, or the catch-all line that
reports an unexpected exception, fails the pair. The command line runs in this process
(``aerflow.cli.run``), so the few hundred pairs take seconds, not minutes.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
import aerflow.net
from aerflow.cli.main import run as cli_run
from aerflow.synthetic import SyntheticSensor

from .helpers import assert_same_events
from .processes import free_udp_port, udp_port_bound, wait_until

WIDTH, HEIGHT = 240, 180  # fits every writable format and every emulated camera
WRITABLE = {f.name: f.extensions[0] for f in aerflow.list_formats() if f.writer}
UNEXPECTED = "AERFLOW_DEBUG=1 shows where it happened"  # the catch-all: a bug, not a refusal


def _events() -> np.ndarray:
    sensor = SyntheticSensor(duration="20ms", width=WIDTH, height=HEIGHT, rate=100_000.0, seed=3)
    return sensor.read().events


@dataclass(frozen=True)
class Source:
    name: str
    args: list[str]
    stdin: bytes | None = None
    exact: bool = True
    """Whether the source hands on exactly ``expected`` (cameras re-time their events)."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("sources")
    events = _events()
    files = {}
    for fmt, suffix in WRITABLE.items():
        path = folder / f"source-{fmt}{suffix}"
        aerflow.write(path, events, format=fmt, width=WIDTH, height=HEIGHT)
        files[fmt] = path
    bare_npy = folder / "bare.npy"
    np.save(bare_npy, events)
    bare_csv = folder / "bare.csv"
    lines = [f"{t},{x},{y},{int(on)}" for t, x, y, on in events.tolist()]
    bare_csv.write_text("t,x,y,on\n" + "\n".join(lines) + "\n")
    return {"events": events, "files": files, "bare_npy": bare_npy, "bare_csv": bare_csv}


def _sources(inputs: dict[str, Any]) -> dict[str, Source]:
    files: dict[str, Path] = inputs["files"]
    size = ["--width", str(WIDTH), "--height", str(HEIGHT)]
    sources = {
        f"file-{fmt}": Source(f"file-{fmt}", ["input", "file", str(path)])
        for fmt, path in files.items()
    }
    for label, path in (("npy", inputs["bare_npy"]), ("csv", inputs["bare_csv"])):
        sources[f"{label}-without-size"] = Source(label, ["input", "file", str(path)])
        sources[f"{label}-with-size"] = Source(label, ["input", "file", str(path), *size])
    sources["synthetic"] = Source(
        "synthetic",
        ["input", "synthetic", "--duration", "20ms", *size, "--rate", "100000", "--seed", "3"],
    )
    sources["stdin"] = Source(
        "stdin", ["input", "stdin", *size], stdin=inputs["bare_csv"].read_bytes()
    )
    for model in ("evk4", "evk3_hd", "dvxplorer", "davis346"):
        sources[f"camera-{model}"] = Source(
            f"camera-{model}",
            ["input", "camera", str(files["aedat4"]), "--emulate", model, "--speed", "0"],
            exact=False,
        )
    return sources


SOURCE_NAMES = [
    *(f"file-{fmt}" for fmt in WRITABLE),
    "npy-without-size",
    "npy-with-size",
    "csv-without-size",
    "csv-with-size",
    "synthetic",
    "stdin",
    "camera-evk4",
    "camera-evk3_hd",
    "camera-dvxplorer",
    "camera-davis346",
]
SINK_NAMES = [
    *(f"file-{fmt}" for fmt in WRITABLE),
    "stdout",
    "udp",
    "null",
    "video",
    "frames",
    "tee",
]


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        yield listener


def _sink(name: str, out: Path, listener: socket.socket) -> tuple[list[str], Path | None]:
    """The output words for sink ``name``, and the file whose events must equal the source's."""
    if name.startswith("file-"):
        fmt = name[len("file-") :]
        path = out / f"out{WRITABLE[fmt]}"
        return ["output", "file", str(path), "--format", fmt], path
    if name == "stdout":
        return ["output", "stdout"], None
    if name == "udp":
        return ["output", "udp", f"127.0.0.1:{listener.getsockname()[1]}"], None
    if name == "null":
        return ["output", "null"], None
    if name == "video":
        return ["output", "video", str(out / "out.mp4"), "--fps", "200"], None
    if name == "frames":
        return ["output", "frames", str(out / "frames"), "--fps", "200"], None
    path = out / "tee.aedat4"
    return ["output", "file", str(path), "output", "null", "output", "stdout"], path


def _run(
    args: list[str], stdin: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, bytes, str]:
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    code = cli_run(["--quiet", *args])
    stdout.flush()
    return code, stdout.buffer.getvalue(), stderr.getvalue()  # type: ignore[attr-defined]


# Pairs whose refusal is right, with the words the one line must hold: AEDAT 2.0 addresses
# hold at most a 1024x512 (DAVIS) sensor, and these cameras state their 1280x720 one.
REFUSED: dict[tuple[str, str], str] = {
    ("camera-evk4", "file-aedat2"): "does not fit camera",
    ("camera-evk3_hd", "file-aedat2"): "does not fit camera",
}


def _expected(source: Source, inputs: dict[str, Any]) -> np.ndarray:
    if source.name.startswith("file-"):
        return aerflow.read(inputs["files"][source.name[len("file-") :]])
    return inputs["events"]


@pytest.mark.parametrize("sink_name", SINK_NAMES)
@pytest.mark.parametrize("source_name", SOURCE_NAMES)
def test_source_into_sink(
    source_name: str,
    sink_name: str,
    inputs: dict[str, Any],
    tmp_path: Path,
    udp_listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = _sources(inputs)[source_name]
    words, written = _sink(sink_name, tmp_path, udp_listener)
    code, stdout, stderr = _run([*source.args, *words], source.stdin, monkeypatch)
    assert UNEXPECTED not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    refusal = REFUSED.get((source_name, sink_name))
    if refusal is not None:
        assert code == 1, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("aerflow: error:")]
        assert len(errors) == 1, stderr
        assert refusal in errors[0], stderr
        assert not written or not written.exists()
        return
    assert code == 0, stderr
    if written is not None:
        got = aerflow.read(written)
        if source.exact:
            assert_same_events(got, _expected(source, inputs))
        else:
            assert len(got) > 0
    if sink_name in ("stdout", "tee") and source.exact:
        text = stdout.decode().splitlines()
        assert len(text) == len(_expected(source, inputs)) + 1  # a header line, then events
    if sink_name == "video":
        assert (tmp_path / "out.mp4").stat().st_size > 0
    if sink_name == "frames":
        assert any((tmp_path / "frames").iterdir())


WIRES = aerflow.net.wire_format_names()


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("sink_name", ["file-evt3", "file-aedat4", "stdout", "null", "tee"])
def test_udp_source_into_sinks(
    wire: str,
    sink_name: str,
    inputs: dict[str, Any],
    tmp_path: Path,
    udp_listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_udp_port()
    events = inputs["events"]
    words, written = _sink(sink_name, tmp_path, udp_listener)

    def send() -> None:
        wait_until(lambda: udp_port_bound(port), "the receiver")
        address = f"127.0.0.1:{port}"
        with aerflow.net.UdpSender(address, wire=wire, width=WIDTH, height=HEIGHT) as sender:
            sender.write(events)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    size = [] if wire == "aerflow" else ["--width", str(WIDTH), "--height", str(HEIGHT)]
    code, _, stderr = _run(
        ["input", "udp", f"127.0.0.1:{port}", "--wire", wire, *size, "--idle-timeout", "2",
         *words],
        None,
        monkeypatch,
    )  # fmt: skip
    sender.join(timeout=60)
    assert UNEXPECTED not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert code == 0, stderr
    if written is not None:
        got = aerflow.read(written)
        if wire == "aerflow":  # the wire format that carries whole timestamps
            assert_same_events(got, events)
        else:
            assert len(got) == len(events)
