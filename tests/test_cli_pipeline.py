"""The pipeline grammar, run as a user runs it: a subprocess whose stdout and stderr are pipes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.synthetic import SyntheticSensor

from .helpers import assert_same_events
from .processes import PATIENCE, child, interrupt, wait_until


def aerflow_cli(
    *args: str | Path, input: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aerflow", *map(str, args)],
        capture_output=True,
        input=input,
        cwd=cwd,
        timeout=300,
    )


def synthetic(duration: str = "100ms", **options: object) -> np.ndarray:
    return SyntheticSensor(duration=duration, **options).read().events  # type: ignore[arg-type]


def test_synthetic_to_file_equals_the_library(tmp_path: Path) -> None:
    result = aerflow_cli(
        "input", "synthetic", "--duration", "100ms", "--seed", "3",
        "output", "file", tmp_path / "out.raw",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""  # no progress when stderr is not a terminal
    with aerflow.open(tmp_path / "out.raw") as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert_same_events(reader.read().events, synthetic(seed=3))


def test_file_through_filters_to_two_files(tmp_path: Path) -> None:
    source = synthetic("200ms")
    aerflow.write(tmp_path / "in.dat", source, width=640, height=480)
    result = aerflow_cli(
        "input", "file", tmp_path / "in.dat",
        "filter", "time-slice", "--start", "50ms", "--end", "150ms",
        "filter", "crop", "100", "50", "300", "200",
        "filter", "polarity", "on",
        "output", "file", tmp_path / "a.raw", "--format", "evt2",
        "output", "file", tmp_path / "b.dat",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    t0 = int(source["t"][0])
    t, x, y = source["t"].astype(np.int64), source["x"], source["y"]
    keep = (
        (t >= t0 + 50_000)
        & (t < t0 + 150_000)
        & (x >= 100)
        & (x < 400)
        & (y >= 50)
        & (y < 250)
        & source["on"]
    )
    expected = source[keep].copy()
    expected["x"] -= 100
    expected["y"] -= 50
    for name in ("a.raw", "b.dat"):
        with aerflow.open(tmp_path / name) as reader:
            assert reader.properties.sensor_size == (300, 200)
            assert_same_events(reader.read().events, expected)
    with aerflow.open(tmp_path / "a.raw") as reader:
        assert reader.properties.format == "evt2"


def test_null_output_and_sync_mode(tmp_path: Path) -> None:
    result = aerflow_cli("--sync", "input", "synthetic", "--duration", "20ms", "output", "null")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""


def test_double_dash_makes_a_keyword_a_file_name(tmp_path: Path) -> None:
    aerflow.write(tmp_path / "output", synthetic("20ms"), format="dat", width=640, height=480)
    result = aerflow_cli(
        "input", "file", "--", "output", "output", "file", "--", "input", "--format", "dat",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_same_events(aerflow.read(tmp_path / "input", format="dat"), synthetic("20ms"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["input", "camcorder"], b"unknown source 'camcorder'"),
        (["input", "synthetic", "filter", "blur", "output", "null"], b"unknown filter 'blur'"),
        (["input", "file", "missing.raw", "output", "null"], b"missing.raw"),
        (
            [
                "input",
                "synthetic",
                "--duration",
                "1ms",
                "output",
                "file",
                "x.dat",
                "--order",
                "little",
            ],
            b"does not take order",
        ),
        (["input", "synthetic", "input", "synthetic"], b"one input"),
        (["input", "synthetic", "filter", "chunk", "output", "null"], b"--events N or --duration"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], message: bytes) -> None:
    result = aerflow_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result
    assert message in result.stderr
    assert result.stderr.count(b"\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize(
    "args",
    [
        ["input", "synthetic", "--pattern", "spiral", "output", "null"],
        ["input", "synthetic", "--no-such-option", "output", "null"],
        ["input", "synthetic", "--rate", "fast", "output", "null"],
        ["info"],
        ["convert", "a.raw"],
        ["no-such-command"],
    ],
)
def test_usage_errors_are_one_line_and_exit_1(args: list[str]) -> None:
    result = aerflow_cli(*args)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("aerflow: error: aerflow"), lines
    assert "--help" in lines[0]


def test_help_for_blocks_lists_what_the_library_has() -> None:
    from aerflow.components import FILTERS, SINKS, SOURCES

    for keyword, table in (("input", SOURCES), ("filter", FILTERS), ("output", SINKS)):
        result = aerflow_cli(keyword, "--help")
        assert result.returncode == 0, result.stderr
        listed = {line.split()[0] for line in result.stdout.decode().splitlines()[1:-1]}
        assert listed == set(table)
    result = aerflow_cli("filter", "refractory", "--help")
    assert result.returncode == 0
    assert b"period" in result.stdout


def test_every_file_format_option_reaches_the_cli() -> None:
    result = aerflow_cli("input", "file", "--help")
    text = result.stdout.decode()
    for info in aerflow.list_formats():
        for option in info.read_options:
            assert "--" + option.name.replace("_", "-") in text


def test_ctrl_c_discards_the_partial_file_and_exits_130(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "aerflow", "input", "synthetic", "--duration", "inf",
        "filter", "pace", "output", "file", tmp_path / "live.raw",
    ]  # fmt: skip
    with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        # Interrupted once events are flowing into the temporary file, not while it opens.
        wait_until(lambda: written(tmp_path) > 64 * 1024, "events in the partial file", process)
        _, stderr = interrupt(process)
    assert process.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone, nothing was renamed


def written(folder: Path) -> int:
    """Bytes in the files of ``folder`` (0 while there are none)."""
    total = 0
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
            total += path.stat().st_size
    return total


def test_existing_file_survives_a_failed_run(tmp_path: Path) -> None:
    target = tmp_path / "keep.dat"
    target.write_bytes(b"precious")
    # The writer refuses the first packet: events lie outside the 100x100 sensor it was given.
    result = aerflow_cli(
        "input", "synthetic", "--duration", "50ms",
        "output", "file", target, "--width", "100", "--height", "100",
    )  # fmt: skip
    assert result.returncode == 1
    assert b"error" in result.stderr
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.dat"]


def test_broken_pipe_exits_quietly() -> None:
    reader, writer = os.pipe()
    command = [
        sys.executable, "-m", "aerflow", "input", "synthetic", "--duration", "2s",
        "output", "stdout",
    ]  # fmt: skip
    with (
        os.fdopen(reader, "rb") as pipe,
        child(command, stdout=writer, stderr=subprocess.PIPE) as process,
    ):
        os.close(writer)
        pipe.read(1000)
        pipe.close()
        _, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, stderr
    assert stderr == b""
