"""Rendering events into pictures: the kernels against slow references, frame timing,
scaling, palettes, PNG files. Shared references for the other render tests live here."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.events import EVENTS_DTYPE
from aerflow.render import Look, Renderer, frames, write_frames
from aerflow.render.palette import parse_colour, signed_palette, unsigned_palette
from aerflow.render.png import encode_png
from aerflow.synthetic import SyntheticSensor

ON = parse_colour("#ffc61a")
OFF = parse_colour("#2e8bff")
BACKGROUND = parse_colour("#141414")


def make_events(rows: list[tuple[int, int, int, bool]]) -> np.ndarray:
    events = np.zeros(len(rows), EVENTS_DTYPE)
    for i, (t, x, y, on) in enumerate(rows):
        events[i] = (t, x, y, on)
    return events


# -- slow, obviously correct references ---------------------------------------------------------
def reference_indices(
    events: np.ndarray, width: int, height: int, now: int, look: Look
) -> np.ndarray:
    """Palette indices at time ``now`` from every event before it, pixel by pixel, with the
    exact decay (no lookup tables, no recursion)."""
    tau = float(aerflow.parse_time(look.tau))  # type: ignore[arg-type]
    signed = look.style != "time-surface"
    out = np.full((height, width), 127 if signed else 0, np.int64)
    last: dict[tuple[int, int], tuple[int, bool]] = {}
    sums: dict[tuple[int, int], float] = {}
    for t, x, y, on in events[["t", "x", "y", "on"]].tolist():
        if t >= now or x >= width or y >= height:
            continue
        last[(x, y)] = (t, on)
        sums[(x, y)] = sums.get((x, y), 0.0) + (1.0 if on else -1.0) * math.exp(-(now - t) / tau)
    for (x, y), (t, on) in last.items():
        age = now - t
        if look.style == "counts":
            value = max(-1.0, min(1.0, sums[(x, y)] / look.contrast))
            out[y, x] = 127 + round(value * 127)
            continue
        if look.decay == "exponential":
            weight = math.exp(-age / tau)
        elif look.decay == "linear":
            weight = max(0.0, 1.0 - age / tau)
        else:
            weight = 1.0 if age < tau else 0.0
        if signed:
            out[y, x] = 127 + (1 if on else -1) * round(weight * 127)
        else:
            out[y, x] = round(weight * 255)
    return out


def reference_rgb(events: np.ndarray, width: int, height: int, now: int, look: Look) -> np.ndarray:
    palette = look.palette()
    return palette[reference_indices(events, width, height, now, look)]


def latest_per_pixel(events: np.ndarray, width: int, height: int, now: int) -> np.ndarray:
    """Index (into ``events``) of each pixel's latest event before ``now``, -1 where none:
    NumPy only, for recordings too long for the per-event loop."""
    before = np.flatnonzero(events["t"] < now)
    pixel = events["y"][before].astype(np.int64) * width + events["x"][before]
    reversed_pixels = pixel[::-1]
    unique, first_in_reversed = np.unique(reversed_pixels, return_index=True)
    latest = np.full(width * height, -1, np.int64)
    latest[unique] = before[::-1][first_in_reversed]
    return latest.reshape(height, width)


def expected_frames(first: int, last: int, period: float) -> int:
    """Frame k ends at first + round((k + 1) * period); frames are made until one ends after
    the last event."""
    k = 0
    while first + round((k + 1) * period) <= last:
        k += 1
    return k + 1


# -- the renderer -------------------------------------------------------------------------------
RANDOM_LOOKS = [
    Look(tau=3000),
    Look(tau=3000, decay="linear"),
    Look(tau=3000, decay="window"),
    Look(tau=2000, style="time-surface"),
    Look(tau=2000, style="time-surface", decay="linear"),
    Look(tau=4000, style="counts", contrast=3.0),
    Look(tau=4000, style="counts", contrast=0.5),
]


@pytest.mark.parametrize("look", RANDOM_LOOKS, ids=lambda look: f"{look.style}-{look.decay}")
def test_renderer_matches_the_reference(look: Look) -> None:
    rng = np.random.default_rng(1)
    n, width, height = 4000, 23, 17
    events = np.zeros(n, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 20_000, n))
    events["x"] = rng.integers(0, width + 2, n)  # a few outside the sensor
    events["y"] = rng.integers(0, height, n)
    events["on"] = rng.random(n) < 0.6
    renderer = Renderer(width, height, look)
    done = 0
    for now in (1, 5_000, 5_001, 12_345, 20_000, 40_000):
        done = renderer.add(events, done, now)
        assert done == np.searchsorted(events["t"], now)
        got = renderer.render(now).astype(np.int64)
        expected = reference_indices(events, width, height, now, look)
        # Lookup tables quantise the age a little: at most one step apart.
        assert np.abs(got - expected).max() <= 1
        assert np.mean(got == expected) > 0.9
    assert renderer.dropped == np.count_nonzero(events["x"] >= width)


def test_colours_where_events_are_and_background_elsewhere() -> None:
    events = make_events([(100, 2, 1, True), (200, 5, 3, False), (300, 5, 3, True)])
    renderer = Renderer(8, 6, Look(tau="1ms", decay="window"))
    renderer.add(events)
    rgb = renderer.rgb(renderer.render(500))
    assert rgb.shape == (6, 8, 3)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[1, 2]) == ON
    assert tuple(rgb[3, 5]) == ON  # the latest event wins
    mask = np.ones((6, 8), bool)
    mask[1, 2] = mask[3, 5] = False
    assert np.all(rgb[mask] == BACKGROUND)
    # OFF colour, then faded to nothing past tau.
    renderer.add(make_events([(600, 0, 0, False)]))
    assert tuple(renderer.rgb(renderer.render(700))[0, 0]) == OFF
    assert np.all(renderer.rgb(renderer.render(10_000)) == BACKGROUND)


def test_exponential_fade_is_monotonic_and_ends_at_the_background() -> None:
    renderer = Renderer(2, 1, Look(tau=1000))
    renderer.add(make_events([(0, 0, 0, True)]))
    levels = [int(renderer.render(age)[0, 0]) for age in range(0, 10_000, 50)]
    assert levels[0] == 127 + 127
    assert all(a >= b for a, b in itertools.pairwise(levels))
    assert levels[-1] == 127


def test_colormap_replaces_the_colours() -> None:
    look = Look(tau=1000, colormap="gray", style="time-surface")
    palette = look.palette()
    assert tuple(palette[0]) == (0, 0, 0)
    assert tuple(palette[255]) == (255, 255, 255)
    renderer = Renderer(3, 3, look)
    renderer.add(make_events([(10, 1, 1, False)]))
    rgb = renderer.rgb(renderer.render(11))
    assert tuple(rgb[1, 1]) == (255, 255, 255)
    assert np.all(rgb[0] == 0)


def test_palettes() -> None:
    signed = signed_palette("#ff0000", "#0000ff", "#000000")
    assert tuple(signed[127]) == (0, 0, 0)
    assert tuple(signed[254]) == (255, 0, 0)
    assert tuple(signed[0]) == (0, 0, 255)
    assert tuple(unsigned_palette("#ffffff", "#000000")[255]) == (255, 255, 255)
    assert tuple(signed_palette("#fff", "#000", "#000", "bwr")[127]) == (255, 255, 255)
    assert parse_colour("10,20,30") == (10, 20, 30)
    assert parse_colour((1, 2, 3)) == (1, 2, 3)
    with pytest.raises(ValueError, match="colour"):
        parse_colour("#12345")
    with pytest.raises(ValueError, match="colormap"):
        Look(colormap="no-such-map").palette()
    with pytest.raises(ValueError, match="style"):
        Look(style="sepia")
    with pytest.raises(ValueError, match="exponential"):
        Look(style="counts", decay="window")


def test_scale_up_repeats_pixels_and_scale_down_pools_them() -> None:
    rng = np.random.default_rng(2)
    n, width, height = 500, 12, 10
    events = np.zeros(n, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 1000, n))
    events["x"] = rng.integers(0, width, n)
    events["y"] = rng.integers(0, height, n)
    events["on"] = rng.random(n) < 0.5
    look = Look(tau=300)
    base = Renderer(width, height, look)
    base.add(events)
    plain = base.render(1000)

    double = Renderer(width, height, Look(tau=300, scale=2))
    double.add(events)
    assert double.output_size == (24, 20)
    assert np.array_equal(double.render(1000), plain.repeat(2, axis=0).repeat(2, axis=1))

    half = Renderer(width, height, Look(tau=300, size="6x5"))
    half.add(events)
    pooled = events.copy()
    pooled["x"] //= 2
    pooled["y"] //= 2
    expected = reference_indices(pooled, 6, 5, 1000, look)
    assert np.abs(half.render(1000).astype(np.int64) - expected).max() <= 1

    odd = Renderer(5, 3, look, even=True)
    assert odd.frame_size == (6, 4)
    odd.add(make_events([(0, 4, 2, True)]))
    frame = odd.render(1)
    assert frame[2, 4] == 254
    assert np.all(frame[3, :] == 127)
    assert np.all(frame[:, 5] == 127)


# -- frame sequences ----------------------------------------------------------------------------
def test_frames_cover_the_stream_at_fps_times_speed_including_empty_spans() -> None:
    # Events at 0 and 1 s only: every 1/60 s of event time still gives a frame.
    events = make_events([(5_000, 1, 1, True), (1_005_000, 2, 2, False)])
    sequence = list(frames(events, fps=60, width=4, height=4))
    assert len(sequence) == expected_frames(5_000, 1_005_000, 1e6 / 60) == 61
    assert [f.index for f in sequence] == list(range(61))
    assert [f.t for f in sequence] == [5_000 + round((k + 1) * 1e6 / 60) for k in range(61)]
    first = sequence[0].rgb
    assert first.shape == (4, 4, 3)
    assert tuple(first[1, 1]) != BACKGROUND
    assert np.all(sequence[30].rgb == BACKGROUND)  # faded: tau is two frames
    assert tuple(sequence[-1].rgb[2, 2]) != BACKGROUND

    slow = list(frames(events, fps=30, speed=0.5, width=4, height=4))
    assert len(slow) == expected_frames(5_000, 1_005_000, 1e6 * 0.5 / 30) == 61
    fast = list(frames(events, fps=25, speed=4.0, width=4, height=4))
    assert len(fast) == expected_frames(5_000, 1_005_000, 160_000) == 7


def test_frames_of_synthetic_stream_match_the_reference() -> None:
    sensor = SyntheticSensor(64, 48, duration="50ms", rate=200_000, seed=4)
    events = SyntheticSensor(64, 48, duration="50ms", rate=200_000, seed=4).read().events
    look = Look(tau="5ms")
    got = list(frames(sensor, fps=100, tau="5ms"))
    period = 10_000
    assert len(got) == (int(events["t"][-1]) - int(events["t"][0])) // period + 1
    for frame in got[::2]:
        expected = reference_indices(events, 64, 48, frame.t, look)
        assert np.abs(frame.indices.astype(np.int64) - expected).max() <= 1


def test_frames_of_real_recording(shared_data: Path) -> None:
    path = shared_data / "evt3" / "expelliarmus_evt3_gen41_2020-09-14.raw"
    events = aerflow.read(path)
    got = list(frames(path, fps=100, tau="2ms", decay="window"))
    span = int(events["t"][-1]) - int(events["t"][0])
    assert len(got) == span // 10_000 + 1
    width, height = 1280, 720
    for frame in got:
        assert frame.indices.shape == (height, width)
        latest = latest_per_pixel(events, width, height, frame.t)
        has = latest >= 0
        fresh = has & (frame.t - events["t"][np.maximum(latest, 0)].astype(np.int64) < 2000)
        on = events["on"][np.maximum(latest, 0)]
        expected = np.full((height, width), 127)
        expected[fresh & on] = 254
        expected[fresh & ~on] = 0
        assert np.array_equal(frame.indices, expected)


def test_frames_to_png_files(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    sensor = SyntheticSensor(40, 30, duration="100ms", rate=50_000, seed=1)
    expected = list(frames(sensor, fps=50, speed=0.5))
    sensor = SyntheticSensor(40, 30, duration="100ms", rate=50_000, seed=1)
    count = write_frames(sensor, tmp_path / "png", fps=50, speed=0.5)
    assert count == len(expected) == 10
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == [f"{k:06d}.png" for k in range(count)]
    for frame in expected:
        with pil.open(tmp_path / "png" / f"{frame.index:06d}.png") as image:
            assert image.size == (40, 30)
            assert np.array_equal(np.asarray(image.convert("RGB")), frame.rgb)


def test_png_encoder_layout() -> None:
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    data = encode_png(indices, palette)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    assert raw == bytes([0, 0, 1, 2, 0, 2, 1, 0])
    assert bytes(palette.tobytes()) in data


def test_importing_render_loads_no_optional_dependency() -> None:
    code = (
        "import sys, aerflow, aerflow.render, aerflow.render.components, "
        "aerflow.render.commands\n"
        "loaded = [m for m in ('av', 'matplotlib', 'pygame') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from aerflow.render import MissingDependencyError
    from aerflow.render._deps import require

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'aerflow\[video\]'") as info:
        require("av", "writing videos")
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, aerflow.AerflowError)
