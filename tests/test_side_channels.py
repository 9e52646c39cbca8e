"""Side channels never block a conversion: the `triggers`/`imu`/`frames` filters, and
writers that cannot hold a channel drop it with one warning and a count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow import registry
from aerflow.events import EVENTS_DTYPE, IMU_DTYPE, TRIGGERS_DTYPE, Frame, Packet
from aerflow.filters import SideChannel
from aerflow.stream import IterableStream, Properties

from .helpers import assert_same_events


def _packets() -> list[Packet]:
    rng = np.random.default_rng(3)
    packets = []
    for first in (0, 1000, 2000):
        events = np.zeros(5, EVENTS_DTYPE)
        events["t"] = first + np.arange(5)
        events["x"] = rng.integers(0, 32, 5)
        triggers = np.zeros(4, TRIGGERS_DTYPE)
        triggers["t"] = first + np.arange(4)
        triggers["id"] = [0, 1, 2, 3]
        triggers["rising"] = [True, False, True, True]
        imu = np.zeros(2, IMU_DTYPE)
        imu["t"] = first + np.arange(2)
        frames = (Frame(first + 3, np.zeros((2, 2), np.uint16)),)
        packets.append(Packet(events, triggers, imu, frames))
    alone = np.array([(2010, 0, True)], TRIGGERS_DTYPE)
    packets.append(Packet(np.zeros(0, EVENTS_DTYPE), alone))  # triggers only
    return packets


def _run(filter_: SideChannel) -> list[Packet]:
    stream = IterableStream(_packets(), Properties("t", 32, 32)).filter(filter_)
    return list(stream)


def test_dropping_triggers_keeps_everything_else() -> None:
    out = _run(SideChannel("triggers"))
    assert len(out) == 3  # the packet that held only a trigger is gone
    for got, sent in zip(out, _packets(), strict=False):
        assert_same_events(got.events, sent.events)
        assert len(got.triggers) == 0
        assert np.array_equal(got.imu, sent.imu)
        assert [f.t for f in got.frames] == [f.t for f in sent.frames]


@pytest.mark.parametrize("ids", [[0], [0, 2], [3, 1], [5]])
def test_keeping_trigger_ids(ids: list[int]) -> None:
    kept = [
        (int(t), int(i), bool(r)) for p in _packets() for t, i, r in p.triggers.tolist() if i in ids
    ]
    out = _run(SideChannel("triggers", ids))
    assert [tuple(x) for p in out for x in p.triggers.tolist()] == kept
    assert sum(len(p.events) for p in out) == 15


@pytest.mark.parametrize("channel", ["imu", "frames"])
def test_dropping_imu_or_frames(channel: str) -> None:
    out = _run(SideChannel(channel))
    assert sum(len(p.events) for p in out) == 15
    assert sum(len(p.triggers) for p in out) == 13
    imu, frames = [len(p.imu) for p in out], [len(p.frames) for p in out]
    if channel == "imu":
        assert (imu, frames) == ([0, 0, 0, 0], [1, 1, 1, 0])
    else:
        assert (imu, frames) == ([2, 2, 2, 0], [0, 0, 0, 0])


def test_bad_filter_arguments() -> None:
    with pytest.raises(ValueError, match="channel"):
        SideChannel("audio")
    with pytest.raises(ValueError, match="only triggers"):
        SideChannel("imu", [1])
    with pytest.raises(ValueError, match=r"0\.\.255"):
        SideChannel("triggers", [256])


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aerflow", "--quiet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """An AEDAT 4 file with events, triggers of ids 0, 1, 2 and 3 (both edges), IMU, frames."""
    path = tmp_path / "in.aedat4"
    with aerflow.open(path, "w", width=32, height=32) as writer:
        for packet in _packets():
            writer.write(packet)
    return path


def test_cli_writes_what_aedat2_holds_and_says_what_it_dropped(
    recording: Path, tmp_path: Path
) -> None:
    result = _cli("input", "file", recording, "output", "file", tmp_path / "out.aedat",
                  "--camera", "dvs128")  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Of the 13 triggers only id 0 rising fits AEDAT 2.0; IMU and frames have no place.
    assert "9 triggers not written" in result.stderr
    assert "6 IMU samples not written" in result.stderr
    assert "3 frames not written" in result.stderr
    back = aerflow.read(tmp_path / "out.aedat", triggers=True)
    assert len(back.events) == 15
    assert back.triggers["t"].tolist() == [0, 1000, 2000, 2010]


def test_cli_trigger_filter_chooses_what_goes_through(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.aedat4"
    result = _cli("input", "file", recording, "filter", "triggers", "keep-ids", "2,3",
                  "filter", "imu", "drop", "output", "file", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with aerflow.open(out) as reader:
        back = reader.read()
    assert sorted(set(back.triggers["id"].tolist())) == [2, 3]
    assert len(back.triggers) == 6
    assert len(back.imu) == 0
    assert len(back.frames) == 3
    dropped = _cli("input", "file", recording, "filter", "triggers", "drop",
                   "output", "file", tmp_path / "none.aedat", "--camera", "dvs128")  # fmt: skip
    assert dropped.returncode == 0
    assert "triggers not written" not in dropped.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["triggers", "keep-ids"], "needs the ids"),
        (["triggers", "keep-ids", "a,b"], "integers"),
        (["imu", "drop", "3"], "takes no ids"),
    ],
)
def test_cli_trigger_filter_errors_are_one_line(
    recording: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _cli("input", "file", recording, "filter", *args, "output", "null")
    assert result.returncode != 0
    assert message in result.stderr or "unrecognized" in result.stderr
    assert "Traceback" not in result.stderr


WRITERS = [f.name for f in aerflow.list_formats() if f.writer]


@pytest.mark.parametrize("fmt", WRITERS)
def test_no_writer_fails_the_events_for_a_side_channel(fmt: str, tmp_path: Path) -> None:
    """Every writer takes packets with triggers of every id and edge, IMU samples and
    frames: what it cannot hold is counted in ``unwritten``, the events are all written."""
    info = registry.get(fmt)
    taken = {o.name for o in info.write_options}
    size = {k: 32 for k in ("width", "height") if k in taken}
    packets = _packets()
    triggers = np.zeros(8, TRIGGERS_DTYPE)
    triggers["t"] = 2500 + np.arange(8)
    triggers["id"] = np.arange(8) * 36  # ids 0 to 252
    triggers["rising"] = np.arange(8) % 2 == 0
    packets.append(Packet(np.zeros(0, EVENTS_DTYPE), triggers))
    path = tmp_path / f"out{info.extensions[0] if info.extensions else ''}"
    with aerflow.open(path, "w", format=fmt, **size) as writer:
        for packet in packets:
            writer.write(packet)
    sent = {
        "triggers": sum(len(p.triggers) for p in packets),
        "imu": sum(len(p.imu) for p in packets),
        "frames": sum(len(p.frames) for p in packets),
    }
    for channel, count in sent.items():
        if channel not in writer.stores:
            assert writer.unwritten.get(channel) == count, channel
    with aerflow.open(path, format=fmt) as reader:
        back = reader.read()
    assert len(back.events) == 15
    kept = sent["triggers"] - writer.unwritten.get("triggers", 0)
    assert len(back.triggers) == kept
