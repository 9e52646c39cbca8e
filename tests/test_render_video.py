"""Video files: written with PyAV, decoded back with it to check frame counts, rates,
durations and colours; the sink in pipelines, its failures and its temporary files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.events import EVENTS_DTYPE, Packet
from aerflow.pipeline import run
from aerflow.render import Look, VideoSink, frames, write_video
from aerflow.render.video import yuv_tables
from aerflow.synthetic import SyntheticSensor

from .test_render_frames import BACKGROUND, OFF, ON, expected_frames, make_events

av = pytest.importorskip("av")


def decode(path: Path) -> tuple[Any, list[Any]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "rate": stream.average_rate,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "time_base": stream.time_base,
            "codec": stream.codec_context.name,
        }
        decoded = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return info, decoded


def blocks(times: list[int], size: int = 16) -> np.ndarray:
    """Square blocks of events: ON at the left, OFF at the right of a 96 x 64 sensor, all
    at each of ``times``."""
    rows = []
    for t in times:
        for y in range(16, 16 + size):
            for x in range(8, 8 + size):
                rows.append((t, x, y, True))
                rows.append((t, x + 56, y, False))
    return make_events(rows)


def test_mp4_frame_count_rate_duration_and_colours(tmp_path: Path) -> None:
    events = blocks([1_000, 480_000])
    path = tmp_path / "blocks.mp4"
    count = write_video(
        events, path, fps=50, width=96, height=64, tau="30ms", decay="window", crf=10
    )
    span = int(events["t"][-1]) - int(events["t"][0])
    assert count == expected_frames(1_000, 480_000, 20_000) == span // 20_000 + 1
    info, decoded = decode(path)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (96, 64)
    assert info["rate"] == 50
    assert len(decoded) == count
    pts = [p for p, _ in decoded]
    assert pts == sorted(pts)
    duration = (pts[-1] - pts[0]) * info["time_base"] + Fraction(1, 50)
    assert duration == Fraction(count, 50)  # = the span of the events at speed 1, to a frame
    first, last = decoded[0][1], decoded[-1][1]
    for picture in (first, last):
        assert np.abs(picture[24, 16].astype(int) - ON).max() <= 12
        assert np.abs(picture[24, 72].astype(int) - OFF).max() <= 12
        assert np.abs(picture[56, 48].astype(int) - BACKGROUND).max() <= 8
    # Between the two bursts: background only (the window decay has passed).
    assert np.abs(decoded[10][1].astype(int) - BACKGROUND).max() <= 8


def test_speed_sets_the_video_duration(tmp_path: Path) -> None:
    events = make_events([(0, 1, 1, True), (200_000, 2, 2, True)])
    path = tmp_path / "slow.mp4"
    count = write_video(events, path, fps=30, speed=0.25, width=8, height=8)
    # 0.2 s of events at a quarter of real time: 0.8 s of video.
    assert count == expected_frames(0, 200_000, 1e6 * 0.25 / 30) == 25
    info, decoded = decode(path)
    assert len(decoded) == 25
    assert info["rate"] == 30


def test_gif_frames_are_the_rendered_pictures_exactly(tmp_path: Path) -> None:
    sensor = SyntheticSensor(48, 32, duration="200ms", rate=30_000, seed=5)
    expected = list(frames(sensor, fps=25, tau="30ms"))
    path = tmp_path / "anim.gif"
    sensor = SyntheticSensor(48, 32, duration="200ms", rate=30_000, seed=5)
    count = write_video(sensor, path, fps=25, tau="30ms")
    assert count == len(expected) == 5
    info, decoded = decode(path)
    assert (info["width"], info["height"]) == (48, 32)
    assert len(decoded) == count
    assert [p for p, _ in decoded] == [4 * k for k in range(count)]  # 1/100 s ticks
    assert info["time_base"] == Fraction(1, 100)
    for frame, (_, picture) in zip(expected, decoded, strict=True):
        assert np.array_equal(picture, frame.rgb)


def test_gif_refuses_rates_its_delays_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fps <= 50"):
        VideoSink(tmp_path / "a.gif", 10, 10, fps=60)
    assert list(tmp_path.iterdir()) == []


def test_odd_sensor_is_padded_with_background(tmp_path: Path) -> None:
    # Events in the top-left 2 x 2 block only, so 4:2:0 chroma cannot carry them into the
    # padding (row 3, column 5).
    events = make_events([(t, t // 1000 % 2, 0, True) for t in range(0, 50_000, 1000)])
    path = tmp_path / "odd.mp4"
    write_video(events, path, fps=60, width=5, height=3, crf=0)
    info, decoded = decode(path)
    assert (info["width"], info["height"]) == (6, 4)
    picture = decoded[0][1].astype(int)
    assert np.abs(picture[0, 0] - BACKGROUND).max() > 100  # lit (chroma shared with row 1)
    assert np.abs(picture[3] - BACKGROUND).max() <= 3
    assert np.abs(picture[:, 5] - BACKGROUND).max() <= 3


def test_scale_changes_the_video_size(tmp_path: Path) -> None:
    events = blocks([0, 30_000])
    path = tmp_path / "big.mp4"
    write_video(events, path, width=96, height=64, scale=2.0)
    info, _ = decode(path)
    assert (info["width"], info["height"]) == (192, 128)


def test_real_recording_to_video(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "evt2" / "evt2_gen3_2020-09-14.raw"
    events = aerflow.read(source)
    path = tmp_path / "real.mp4"
    count = write_video(source, path, fps=100, speed=0.1, tau="1ms", decay="window", crf=12)
    first = int(events["t"][0])
    assert count == expected_frames(first, int(events["t"][-1]), 1e6 * 0.1 / 100)
    info, decoded = decode(path)
    assert (info["width"], info["height"]) == (640, 480)
    assert len(decoded) == count
    # Where a frame has a solid 4 x 4 block of fresh ON events, the video is ON-coloured.
    frame_t = first + round(10 * 1000.0)
    picture = decoded[9][1].astype(int)
    recent = events[(events["t"] >= frame_t - 1000) & (events["t"] < frame_t)]
    on_map = np.zeros((480, 640), bool)
    on_map[recent["y"][recent["on"]], recent["x"][recent["on"]]] = True
    any_map = np.zeros((480, 640), bool)
    any_map[recent["y"], recent["x"]] = True
    solid = on_map.reshape(120, 4, 160, 4).all(axis=(1, 3))
    solid &= ~(any_map & ~on_map).reshape(120, 4, 160, 4).any(axis=(1, 3))
    empty = ~any_map.reshape(120, 4, 160, 4).any(axis=(1, 3))
    if solid.any():
        by, bx = np.argwhere(solid)[0]
        assert np.abs(picture[by * 4 + 1 : by * 4 + 3, bx * 4 + 1 : bx * 4 + 3] - ON).max() <= 24
    by, bx = np.argwhere(empty)[0]
    assert (
        np.abs(picture[by * 4 + 1 : by * 4 + 3, bx * 4 + 1 : bx * 4 + 3] - BACKGROUND).max() <= 12
    )


def test_sink_in_a_pipeline_and_empty_streams(tmp_path: Path) -> None:
    sensor = SyntheticSensor(64, 48, duration="100ms", rate=100_000)
    sink = VideoSink(tmp_path / "run.mp4", 64, 48, fps=60)
    run(sensor, sink)
    assert sink.frames == expected_frames(0, 99_999, 1e6 / 60)
    assert (tmp_path / "run.mp4").is_file()

    empty = VideoSink(tmp_path / "empty.mp4", 16, 16)
    empty.write(Packet(np.empty(0, EVENTS_DTYPE)))
    empty.close()
    _, decoded = decode(tmp_path / "empty.mp4")
    assert len(decoded) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_abort_leaves_the_destination_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "kept.mp4"
    path.write_bytes(b"precious")

    def fail() -> None:
        with VideoSink(path, 32, 32) as sink:
            sink.write(blocks([0, 10_000, 20_000])[:10])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.mp4"]


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.mp4"):
        VideoSink(tmp_path / "a.avi", 10, 10)


def test_yuv_tables_agree_with_ffmpeg() -> None:
    palette = Look(tau=1000).palette()
    y, u, v = yuv_tables(palette)
    frame = av.VideoFrame(16, 16, "yuv420p")
    for plane, value in zip(frame.planes, (y[254], u[254], v[254]), strict=True):
        np.frombuffer(plane, np.uint8)[:] = value
    rgb = frame.reformat(format="rgb24", src_colorspace="ITU709").to_ndarray()
    assert np.abs(rgb[8, 8].astype(int) - palette[254]).max() <= 3
