"""The command line, run as a user runs it (a subprocess, stdout not a TTY)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.synthetic import rotating_bar

from .conftest import DATA_DIR, MANIFEST_FILES


def aerflow_cli(
    *args: str | Path, cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aerflow", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=input,
        timeout=300,
    )


def info_fields(stdout: str) -> dict[str, str]:
    fields = {}
    for line in stdout.splitlines():
        label, value = line[:16].strip(), line[16:].strip()
        fields[label] = value
    return fields


def test_sample_convert_info(tmp_path: Path) -> None:
    expected = rotating_bar()
    assert aerflow_cli("sample", tmp_path / "bar.raw").returncode == 0
    assert aerflow_cli("convert", tmp_path / "bar.raw", tmp_path / "bar.dat").returncode == 0
    assert (aerflow.read(tmp_path / "bar.dat") == expected).all()
    result = aerflow_cli("info", tmp_path / "bar.dat")
    assert result.returncode == 0, result.stderr
    fields = info_fields(result.stdout)
    assert fields["format"] == "dat"
    assert fields["sensor size"] == "640x480"
    assert fields["events"] == f"{len(expected):,}"
    assert fields["first t"] == f"{int(expected['t'][0])} µs"
    assert fields["last t"] == f"{int(expected['t'][-1])} µs"
    duration = int(expected["t"][-1]) - int(expected["t"][0])
    assert fields["duration"] == f"{duration / 1e6:.6f} s"
    assert fields["mean rate"] == f"{len(expected) / duration:.6f} Mev/s"


def test_convert_to_named_format(tmp_path: Path) -> None:
    aerflow.write(tmp_path / "in.dat", rotating_bar(duration_us=50_000), width=640, height=480)
    result = aerflow_cli("convert", tmp_path / "in.dat", tmp_path / "out.raw", "--to", "evt2")
    assert result.returncode == 0, result.stderr
    with aerflow.open(tmp_path / "out.raw") as reader:
        assert reader.properties.format == "evt2"
        assert (reader.read().events == aerflow.read(tmp_path / "in.dat")).all()


def test_convert_without_a_sensor_size_takes_the_events_extent(tmp_path: Path) -> None:
    events = rotating_bar(duration_us=20_000)
    aerflow.write(tmp_path / "in.dat", events, width=None, height=None)
    result = aerflow_cli("convert", tmp_path / "in.dat", tmp_path / "out.raw")
    assert result.returncode == 0, result.stderr
    extent = (int(events["x"].max()) + 1, int(events["y"].max()) + 1)
    with aerflow.open(tmp_path / "out.raw") as reader:
        assert reader.properties.sensor_size == extent
        assert np.array_equal(reader.read().events, events)
    sized = aerflow_cli(
        "convert", tmp_path / "in.dat", tmp_path / "out.raw", "--width", "640", "--height", "480"
    )
    assert sized.returncode == 0, sized.stderr
    with aerflow.open(tmp_path / "out.raw") as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert np.array_equal(reader.read().events, events)


def test_a_stream_without_a_sensor_size_is_refused_by_a_format_that_stores_one(
    tmp_path: Path,
) -> None:
    """Standard input cannot be read twice for its extent: the output asks for a size."""
    result = aerflow_cli(
        "input", "stdin", "output", "file", tmp_path / "out.raw", input="t,x,y,on\n1,2,3,1\n"
    )
    assert result.returncode == 1
    assert "--width" in result.stderr
    assert not (tmp_path / "out.raw").exists()


def test_formats_lists_every_registered_format() -> None:
    result = aerflow_cli("formats")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert names == [info.name for info in aerflow.list_formats()]


@pytest.mark.parametrize(
    "args",
    [("info", "/nonexistent/file.raw"), ("info", __file__), ("convert", __file__, "x.raw")],
)
def test_user_errors_are_one_line_and_exit_1(args: tuple[str, ...], tmp_path: Path) -> None:
    result = aerflow_cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("aerflow: error: ")


@pytest.mark.skipif(DATA_DIR is None, reason="../shared/data is absent")
def test_info_on_a_real_recording() -> None:
    assert DATA_DIR is not None
    name = "evt3/expelliarmus_evt3_gen41_2020-09-14.raw"
    entry = MANIFEST_FILES[name]
    fields = info_fields(aerflow_cli("info", DATA_DIR / name).stdout)
    assert fields["format"] == "evt3"
    assert fields["sensor size"] == "1280x720"
    assert fields["events"] == f"{entry['events']:,}"
    assert fields["first t"] == f"{entry['t_first']} µs"
    assert fields["last t"] == f"{entry['t_last']} µs"
