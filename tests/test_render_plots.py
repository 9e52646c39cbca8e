"""Plots: the data against NumPy references, and the same data read back from the figures;
the ``aerflow plot`` commands."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.events import EVENTS_DTYPE, Packet
from aerflow.render import (
    event_rate,
    hot_pixels,
    plot_hot_pixels,
    plot_interval_histogram,
    plot_rate,
)
from aerflow.render.commands import add_plot_commands, run_plot
from aerflow.render.plots import MAX_AUTO_BINS, log_edges
from aerflow.stream import IterableStream, Properties

pytest.importorskip("matplotlib")


def random_events(n: int, width: int, height: int, span: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(1_000, 1_000 + span, n))
    events["x"] = rng.integers(0, width, n)
    events["y"] = rng.integers(0, height, n)
    events["on"] = rng.random(n) < 0.7
    return events


# -- rate ---------------------------------------------------------------------------------------
def test_rate_counts_match_numpy_and_the_figure() -> None:
    events = random_events(20_000, 32, 24, 1_000_000)
    figure, rate = plot_rate(events, "10ms")
    first = int(events["t"][0])
    assert rate.start == first
    assert rate.bin == 10_000
    assert rate.end == int(events["t"][-1]) + 1
    bins = (events["t"].astype(np.int64) - first) // 10_000
    expected_on = np.bincount(bins[events["on"]], minlength=len(rate.on))
    expected_off = np.bincount(bins[~events["on"]], minlength=len(rate.on))
    assert np.array_equal(rate.on, expected_on)
    assert np.array_equal(rate.off, expected_off)
    assert rate.on.sum() + rate.off.sum() == len(events)

    axes = figure.axes[0]
    on_line, off_line = axes.get_lines()
    assert on_line.get_label() == "ON"
    assert off_line.get_label() == "OFF"
    shown = len(on_line.get_ydata())
    assert shown in (len(rate.on), len(rate.on) - 1)
    seconds = np.full(len(rate.on), 0.01)
    seconds[-1] = (rate.end - (first + 10_000 * (len(rate.on) - 1))) / 1e6  # the last is short
    assert np.allclose(rate.durations, seconds)
    assert np.allclose(on_line.get_ydata(), (expected_on / seconds)[:shown])
    assert np.allclose(off_line.get_ydata(), (expected_off / seconds)[:shown])
    assert np.allclose(on_line.get_xdata()[:-1], (np.arange(shown - 1) + 0.5) * 0.01)
    assert "time" in axes.get_xlabel()


def test_automatic_bins_are_nice_and_bounded() -> None:
    events = random_events(5_000, 8, 8, 1_000_000)
    rate = event_rate(events)
    assert rate.bin == 1_000  # 1 s: 200 µs bins would be 5000 > 2000
    assert len(rate.on) <= MAX_AUTO_BINS
    # Packets arriving one by one (coarsening on the way) give the same as all at once.
    whole = random_events(20_000, 32, 32, 3_000_000, seed=2)
    ends = np.searchsorted(whole["t"], np.arange(1_000, 3_001_000, 7_000))
    packets = [Packet(part) for part in np.split(whole, ends)]
    sensor = IterableStream(packets, Properties("test", 32, 32))
    streamed = event_rate(sensor)
    assert streamed.bin == 2_000
    t = whole["t"].astype(np.int64) - int(whole["t"][0])
    assert np.array_equal(
        streamed.on, np.bincount(t[whole["on"]] // 2_000, minlength=len(streamed.on))
    )


def test_rate_of_real_recording(shared_data: Path) -> None:
    path = shared_data / "evt2" / "evt2_gen3_2020-09-14.raw"
    events = aerflow.read(path)
    rate = event_rate(path, "1ms")
    t = events["t"].astype(np.int64) - int(events["t"][0])
    assert np.array_equal(rate.on, np.bincount(t[events["on"]] // 1000, minlength=len(rate.on)))
    assert int(rate.off.sum()) == int(np.count_nonzero(~events["on"]))


# -- hot pixels ---------------------------------------------------------------------------------
def reference_hottest(events: np.ndarray, width: int, height: int, count: int) -> list[tuple]:
    counts = np.zeros((height, width), np.int64)
    np.add.at(counts, (events["y"].astype(np.int64), events["x"].astype(np.int64)), 1)
    ys, xs = np.nonzero(counts)
    values = counts[ys, xs]
    order = np.lexsort((xs, ys, -values))[:count]  # most first, then y, then x
    return [(int(xs[i]), int(ys[i]), int(values[i])) for i in order]


def test_hot_pixels_match_numpy_and_the_figure() -> None:
    events = random_events(30_000, 40, 30, 500_000, seed=3)
    hot = np.zeros(600, EVENTS_DTYPE)
    hot["t"] = np.arange(600) * 10
    hot["x"] = np.repeat([7, 31, 12], 200)
    hot["y"] = np.repeat([3, 20, 29], 200)
    hot["x"][400:] = 12
    events = np.sort(np.concatenate([events, hot]), order="t", kind="stable")
    figure, data = plot_hot_pixels(events, 8, width=40, height=30)
    expected = reference_hottest(events, 40, 30, 8)
    assert [(p.x, p.y, p.events) for p in data.hottest] == expected
    assert {(p.x, p.y) for p in data.hottest[:3]} == {(7, 3), (31, 20), (12, 29)}
    assert data.hottest[0].share == pytest.approx(data.hottest[0].events / len(events))
    assert data.counts.sum() == len(events)
    assert np.array_equal(
        data.on,
        np.histogram2d(
            events["y"][events["on"]],
            events["x"][events["on"]],
            bins=(30, 40),
            range=((0, 30), (0, 40)),
        )[0],
    )

    axes = figure.axes[0]
    image = axes.get_images()[0]
    assert np.array_equal(np.ma.getdata(image.get_array()), data.counts)
    markers = list(axes.get_lines())
    assert [(int(m.get_xdata()[0]), int(m.get_ydata()[0])) for m in markers] == [
        (x, y) for x, y, _ in expected
    ]


def test_hot_pixels_ties_and_real_recording(shared_data: Path) -> None:
    path = shared_data / "evt3" / "expelliarmus_evt3_gen41_2020-09-14.raw"
    events = aerflow.read(path)
    data = hot_pixels(path, 25)
    assert [(p.x, p.y, p.events) for p in data.hottest] == reference_hottest(events, 1280, 720, 25)


# -- intervals ----------------------------------------------------------------------------------
def reference_intervals(events: np.ndarray, width: int, per_pixel: bool) -> np.ndarray:
    t = events["t"].astype(np.int64)
    if per_pixel:
        pixel = events["y"].astype(np.int64) * width + events["x"]
        order = np.lexsort((np.arange(len(t)), pixel))  # by pixel, arrival order kept
        same = pixel[order][1:] == pixel[order][:-1]
        return np.diff(t[order])[same]
    return np.diff(t)


@pytest.mark.parametrize("per_pixel", [True, False])
def test_interval_histogram_matches_numpy_and_the_figure(per_pixel: bool) -> None:
    events = random_events(20_000, 10, 10, 2_000_000, seed=5)
    figure, data = plot_interval_histogram(events, per_pixel=per_pixel)
    dt = reference_intervals(events, 10, per_pixel)
    edges = log_edges()
    assert np.array_equal(data.edges, edges)
    positive = dt[dt > 0]
    expected = np.bincount(
        np.searchsorted(edges, positive, side="right") - 1, minlength=len(edges) - 1
    )
    assert np.array_equal(data.counts, expected)
    assert data.zero == np.count_nonzero(dt == 0)
    assert data.total == len(dt)

    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    assert axes.get_yscale() == "log"
    values, drawn_edges = axes.patches[0].get_data()[:2]
    used = np.flatnonzero(expected)
    assert np.array_equal(values, expected[used[0] : used[-1] + 1])
    assert np.array_equal(drawn_edges, edges[used[0] : used[-1] + 2])


def test_log_edges() -> None:
    edges = log_edges(10, 3)
    assert edges[0] == 1
    assert edges[-1] == 1000
    assert np.all(np.diff(edges) > 0)
    assert {10, 100, 1000} <= set(edges.tolist())


# -- the commands -------------------------------------------------------------------------------
def parse(*words: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aerflow")
    add_plot_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(words))


def test_plot_commands_write_images_and_list_hot_pixels(tmp_path: Path) -> None:
    recording = tmp_path / "rec.raw"
    events = random_events(10_000, 64, 48, 300_000, seed=7)
    aerflow.write(recording, events, width=64, height=48)
    out = io.StringIO()
    run_plot(
        parse(
            "plot", "hot-pixels", str(recording), "-o", str(tmp_path / "hot.png"), "--count", "3"
        ),
        out,
    )
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["rank", "x", "y", "events", "share"]
    expected = reference_hottest(events, 64, 48, 3)
    listed = [(int(w[1]), int(w[2]), int(w[3].replace(",", ""))) for w in map(str.split, lines[1:])]
    assert listed == expected
    assert (tmp_path / "hot.png").read_bytes().startswith(b"\x89PNG")

    run_plot(
        parse("plot", "rate", str(recording), "-o", str(tmp_path / "r.svg"), "--bin", "5ms"), out
    )
    assert b"<svg" in (tmp_path / "r.svg").read_bytes()[:400]
    run_plot(
        parse(
            "plot", "histogram", str(recording), "-o", str(tmp_path / "h.png"), "--scope", "stream"
        ),
        out,
    )
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_plot_command_default_output_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recording = tmp_path / "rec.raw"
    aerflow.write(recording, random_events(100, 8, 8, 1000), width=8, height=8)
    monkeypatch.chdir(tmp_path)
    run_plot(parse("plot", "rate", str(recording)), io.StringIO())
    assert (tmp_path / "rec-rate.png").is_file()
