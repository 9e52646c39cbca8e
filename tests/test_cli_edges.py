"""The command line at its edges: every --help works, numbers and times are checked, and an
error is one line and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.components import FILTERS, SINKS, SOURCES
from aerflow.synthetic import SyntheticSensor

from .processes import PATIENCE, child, free_udp_port, udp_port_bound, wait_until


def aerflow_cli(
    *words: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aerflow", *words],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=PATIENCE,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("aerflow: error:")]
    assert len(lines) == 1, result.stderr
    assert words in lines[0]


@pytest.mark.parametrize(
    ("keyword", "kind"),
    [("input", k) for k in SOURCES]
    + [("filter", k) for k in FILTERS]
    + [("output", k) for k in SINKS],
)
def test_every_help_works(keyword: str, kind: str, tmp_path: Path) -> None:
    result = aerflow_cli(keyword, kind, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"aerflow {keyword} {kind}" in result.stdout


def test_file_output_help_shows_percent_signs(tmp_path: Path) -> None:
    """argparse formats help text with %: the CSV layout help names %geometry."""
    result = aerflow_cli("output", "file", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "%geometry" in result.stdout


def test_duration_zero_gives_no_events(tmp_path: Path) -> None:
    result = aerflow_cli(
        "input", "synthetic", "--duration", "0", "output", "file", "z.csv", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(aerflow.read(tmp_path / "z.csv")) == 0


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--fps", "0", "fps must be a finite number above 0"),
        ("--fps", "inf", "fps must be a finite number above 0"),
        ("--fps", "-5", "fps must be a finite number above 0"),
        ("--speed", "inf", "speed must be a finite number above 0"),
        ("--speed", "0", "speed must be a finite number above 0"),
    ],
)
@pytest.mark.parametrize("sink", ["video", "frames"])
def test_frame_rates_are_checked(
    option: str, value: str, words: str, sink: str, tmp_path: Path
) -> None:
    target = "v.mp4" if sink == "video" else "pngs"
    result = aerflow_cli(
        "input", "synthetic", "--duration", "20ms", "output", sink, target, option, value,
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, words)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) in (
        [],
        ["pngs"],
    )


def test_negative_time_offsets_parse_and_a_shift_below_zero_is_an_error(tmp_path: Path) -> None:
    events = np.zeros(3, aerflow.EVENTS_DTYPE)
    events["t"] = [2_000_000, 2_500_000, 3_000_000]
    aerflow.write(tmp_path / "in.csv", events, width=4, height=4)
    back = aerflow_cli(
        "input", "file", "in.csv", "filter", "shift-time", "--offset", "-1s",
        "output", "file", "out.csv", cwd=tmp_path,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert aerflow.read(tmp_path / "out.csv")["t"].tolist() == [1_000_000, 1_500_000, 2_000_000]
    too_far = aerflow_cli(
        "input", "file", "in.csv", "filter", "shift-time", "--offset=-3s",
        "output", "file", "far.csv", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(too_far, "below 0")
    assert not (tmp_path / "far.csv").exists()


def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path: Path) -> None:
    """A bug inside a component is still one line (its type named); AERFLOW_DEBUG=1 shows
    the traceback."""
    code = (
        "import sys, aerflow.cli.main as m\n"
        "def broken(argv): raise KeyError('inner')\n"
        "m.run_pipeline = broken\n"
        "sys.exit(m.run(['input', 'synthetic', 'output', 'null']))\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE
    )
    assert_one_line_error(quiet, "KeyError: 'inner'")
    loud = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        env={**os.environ, "AERFLOW_DEBUG": "1"},
    )
    assert loud.returncode != 0
    assert "Traceback" in loud.stderr


def test_an_option_a_writer_does_not_take_is_an_option_error(tmp_path: Path) -> None:
    with pytest.raises(aerflow.OptionError, match="evt3 writing takes no option compression"):
        aerflow.open(tmp_path / "x.raw", "w", width=10, height=10, compression="lz4")
    assert list(tmp_path.iterdir()) == []


def test_an_option_name_two_formats_share_takes_each_formats_values(tmp_path: Path) -> None:
    """--camera is a free name in AEDAT 4 and a choice of layouts in AEDAT 2.0."""
    named = aerflow_cli(
        "input", "synthetic", "--duration", "20ms", "output", "file", "c.aedat4",
        "--camera", "MyCam", cwd=tmp_path,
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    with aerflow.open(tmp_path / "c.aedat4") as reader:
        assert "MyCam" in reader.metadata.values()
    layout = aerflow_cli(
        "input", "synthetic", "--duration", "20ms", "--width", "128", "--height", "128",
        "output", "file", "c.aedat", "--camera", "nope", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(layout, "camera must be one of")
    assert not (tmp_path / "c.aedat").exists()


def test_any_input_file_takes_a_sensor_size(tmp_path: Path) -> None:
    """A .npy has no sensor size: a RAW output then gets the events' extent, or the size
    --width/--height give, which every input file takes (ATIS .bin and CSV readers use them;
    for others they state the size)."""
    events = np.zeros(3, aerflow.EVENTS_DTYPE)
    events["t"], events["x"], events["y"] = [1, 2, 3], [5, 600, 7], [9, 10, 470]
    np.save(tmp_path / "ev.npy", events)
    inferred = aerflow_cli("input", "file", "ev.npy", "output", "file", "x.raw", cwd=tmp_path)
    assert inferred.returncode == 0, inferred.stderr
    with aerflow.open(tmp_path / "x.raw") as reader:
        assert reader.properties.sensor_size == (601, 471)
    sized = aerflow_cli(
        "input", "file", "ev.npy", "--width", "640", "--height", "480",
        "output", "file", "x.raw", cwd=tmp_path,
    )  # fmt: skip
    assert sized.returncode == 0, sized.stderr
    with aerflow.open(tmp_path / "x.raw") as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert reader.read().events.tolist() == events.tolist()
    half = aerflow_cli("input", "file", "ev.npy", "--width", "640", "output", "null", cwd=tmp_path)
    assert_one_line_error(half, "both --width and --height")


def test_info_convert_and_plot_take_the_input_file_options(tmp_path: Path) -> None:
    events = np.zeros(3, aerflow.EVENTS_DTYPE)
    events["t"], events["x"], events["y"] = [1, 2, 3], [5, 600, 7], [9, 10, 470]
    np.save(tmp_path / "ev.npy", events)
    info = aerflow_cli("info", "ev.npy", "--width", "640", "--height", "480", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "640x480" in info.stdout
    converted = aerflow_cli(
        "convert", "ev.npy", "ev.raw", "--width", "640", "--height", "480", cwd=tmp_path
    )
    assert converted.returncode == 0, converted.stderr
    assert aerflow.read(tmp_path / "ev.raw").tolist() == events.tolist()
    inferred = aerflow_cli("info", "ev.npy", cwd=tmp_path)
    assert "601x471 (the events' extent" in inferred.stdout
    # A reader's own option through info: ATIS .bin drops events outside a given size.
    (tmp_path / "a.bin").write_bytes(bytes([1, 2, 0, 0, 5, 30, 2, 0, 0, 6]))
    small = aerflow_cli("info", "a.bin", "--width", "10", "--height", "10", cwd=tmp_path)
    assert small.returncode == 0, small.stderr
    assert "10x10" in small.stdout
    whole = aerflow_cli("info", "a.bin", cwd=tmp_path)
    assert "34x34" in whole.stdout


def test_errors_name_flags_not_python_keywords(tmp_path: Path) -> None:
    from aerflow.cli.main import in_cli_words

    assert in_cli_words("pass format= to choose another") == "pass --format to choose another"
    assert in_cli_words("fits camera='davis346'.") == "fits --camera davis346."
    assert in_cli_words("time_origin=, then") == "--time-origin, then"
    assert in_cli_words("t=5 µs, width=1280.5") == "t=5 µs, width=1280.5"  # values stay
    # An AEDAT 2.0 header without a chip: the library asks for camera=, the CLI for --camera.
    (tmp_path / "nochip.aedat").write_bytes(
        b"#!AER-DAT2.0\r\n" + (200 << 22 | 300 << 12).to_bytes(4, "big") + bytes(4)
    )
    result = aerflow_cli("info", "nochip.aedat", cwd=tmp_path)
    assert_one_line_error(result, "--camera davis346")
    assert "camera=" not in result.stderr


def test_a_tee_whose_stdout_closes_still_writes_its_file(tmp_path: Path) -> None:
    """`... output stdout output file tee.raw | head -1`: the file gets every event."""
    words = ["input", "synthetic", "--duration", "1s", "--seed", "3"]
    process = subprocess.Popen(
        [sys.executable, "-m", "aerflow", *words, "output", "stdout", "output", "file", "tee.raw"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"t,x,y,on\n"
        process.stdout.close()  # as `head -1` does
        _, stderr = process.communicate(timeout=PATIENCE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    alone = aerflow_cli(*words, "output", "file", "alone.raw", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    tee, whole = aerflow.read(tmp_path / "tee.raw"), aerflow.read(tmp_path / "alone.raw")
    assert len(tee) == len(whole) > 1000
    assert tee.tolist() == whole.tolist()


def udp_receive(
    tmp_path: Path, port: int, *words: str, sender: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run a receiver (`input udp ... words`) until the sender's stream has come through."""
    receiver = [sys.executable, "-m", "aerflow", "input", "udp", f"127.0.0.1:{port}", *words]
    with child(receiver, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(lambda: udp_port_bound(port), "the receiver's port", process)
        sent = aerflow_cli(*sender, "output", "udp", f"127.0.0.1:{port}", cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr
        out, err = process.communicate(timeout=PATIENCE)
        return subprocess.CompletedProcess(receiver, process.returncode, out.decode(), err.decode())


def test_udp_into_a_raw_file_takes_the_announced_sensor_size(tmp_path: Path) -> None:
    """The aerflow wire format announces 640x480: a RAW output waits for it."""
    sender = ["input", "file", "sent.raw"]
    events = SyntheticSensor(640, 480, rate=200_000, duration="50ms", seed=4).read().events
    aerflow.write(tmp_path / "sent.raw", events, width=640, height=480)
    port = free_udp_port()
    result = udp_receive(
        tmp_path, port, "--idle-timeout", "2", "output", "file", "got.raw", sender=sender
    )
    assert result.returncode == 0, result.stderr
    with aerflow.open(tmp_path / "got.raw") as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert reader.read().events.tolist() == events.tolist()
    assert f"{len(events):,} events; lost 0, malformed 0" in result.stderr


def test_udp_with_the_wrong_wire_format_says_so(tmp_path: Path) -> None:
    port = free_udp_port()
    result = udp_receive(
        tmp_path, port, "--idle-timeout", "2", "--wire", "spif", "--width", "640",
        "--height", "480", "output", "null",
        sender=["input", "synthetic", "--duration", "20ms"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "in the aerflow wire format, not spif" in result.stderr
    assert "--wire aerflow" in result.stderr


def test_file_help_shows_the_options_of_the_format_the_path_selects(tmp_path: Path) -> None:
    path = tmp_path / "e.npy"
    aerflow.write(path, np.zeros(3, aerflow.EVENTS_DTYPE))
    npy = _cli_text("input", "file", str(path), "--help")
    assert "--chunk-events" in npy
    assert "--order" not in npy  # EVT 2.1's option
    assert "--width" in npy  # any input takes a sensor size
    everything = _cli_text("input", "file", "--help")
    assert "--order" in everything
    aedat4 = _cli_text("output", "file", str(tmp_path / "x.aedat4"), "--help")
    assert "--compression" in aedat4
    assert "--layout" not in aedat4  # a CSV option
    csv = _cli_text("output", "file", str(tmp_path / "x.aedat4"), "--format", "csv", "--help")
    assert "--layout" in csv
    assert "--compression" not in csv


def _cli_text(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "aerflow", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
