"""The synthetic sensor: deterministic, independent of packet boundaries, at the asked rate,
and its spinning bar where a plain computation of the bar's edges says it should fire."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from aerflow.events import EVENTS_DTYPE
from aerflow.synthetic import SyntheticSensor, rotating_bar

from .helpers import assert_same_events

W, H = 64, 48
RATE = 100_000.0


def read(**kwargs: object) -> np.ndarray:
    arguments: dict[str, object] = {"width": W, "height": H, "rate": RATE, **kwargs}
    return SyntheticSensor(**arguments).read().events  # type: ignore[arg-type]


def pixel_runs(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events ordered by pixel then time, and a mask of 'same pixel as the one before'."""
    order = np.lexsort((events["t"], events["y"], events["x"]))
    ordered = events[order]
    same = (ordered["x"][1:] == ordered["x"][:-1]) & (ordered["y"][1:] == ordered["y"][:-1])
    return ordered, same


@pytest.mark.parametrize("pattern", ["bar", "dots"])
def test_same_arguments_same_events(pattern: str) -> None:
    first = read(pattern=pattern, duration="50ms", seed=3)
    second = read(pattern=pattern, duration="50ms", seed=3)
    assert len(first) > 1000
    assert_same_events(first, second)
    other_seed = read(pattern=pattern, duration="50ms", seed=4)
    assert len(other_seed) != len(first) or not np.array_equal(other_seed, first)


@pytest.mark.parametrize("pattern", ["bar", "dots"])
@pytest.mark.parametrize("packet_duration", [1, 777, "1ms", "10ms", "45ms"])
def test_events_do_not_depend_on_packet_duration(pattern: str, packet_duration: int | str) -> None:
    duration = 45_000 if packet_duration != 1 else 1_500
    expected = read(pattern=pattern, duration=duration, packet_duration="45ms", t0=123)
    sensor = SyntheticSensor(
        W,
        H,
        pattern=pattern,
        rate=RATE,
        duration=duration,
        packet_duration=packet_duration,
        t0=123,
    )
    packets = list(sensor)
    step = sensor.packet_duration
    assert len(packets) == math.ceil(duration / step)
    for k, packet in enumerate(packets):
        t = packet.events["t"].astype(np.int64) - 123
        assert ((t >= k * step) & (t < min((k + 1) * step, duration))).all()
    got = np.concatenate([p.events for p in packets])
    assert_same_events(got, expected)
    assert sensor.progress() == (duration, duration)


@pytest.mark.parametrize("pattern", ["bar", "dots"])
def test_rate_order_and_coordinates(pattern: str) -> None:
    events = read(pattern=pattern, duration="1s", noise=0.05)
    assert events.dtype == EVENTS_DTYPE
    assert abs(len(events) - RATE) < 0.03 * RATE, len(events)
    assert (np.diff(events["t"].astype(np.int64)) >= 0).all()
    assert events["t"].min() >= 0
    assert events["t"].max() < 1_000_000
    assert events["x"].max() < W
    assert events["y"].max() < H
    assert 0.4 < events["on"].mean() < 0.6


def test_default_sensor_rate() -> None:
    sensor = SyntheticSensor(duration="250ms")
    assert sensor.properties.sensor_size == (640, 480)
    events = sensor.read().events
    assert abs(len(events) - 500_000) < 0.03 * 500_000
    assert events["x"].max() < 640
    assert events["y"].max() < 480


@pytest.mark.parametrize("pattern", ["bar", "dots"])
def test_noise_fraction(pattern: str) -> None:
    # Pixels of the pattern: every pixel that fires without noise (a few turns are enough).
    clean = read(pattern=pattern, duration="300ms", noise=0.0)
    pattern_pixels = np.zeros((H, W), bool)
    pattern_pixels[clean["y"], clean["x"]] = True
    noisy = read(pattern=pattern, duration="1s", noise=0.2)
    outside = ~pattern_pixels[noisy["y"], noisy["x"]]
    # Noise is uniform over the sensor: what falls off the pattern is its share of it.
    expected = 0.2 * RATE * (1 - pattern_pixels.mean())
    assert abs(outside.sum() - expected) < 0.05 * expected, (outside.sum(), expected)
    assert not (~pattern_pixels[clean["y"], clean["x"]]).any()


def test_pure_noise_is_uniform() -> None:
    events = read(duration="1s", noise=1.0, rate=50_000)
    assert abs(len(events) - 50_000) < 0.03 * 50_000
    for name, size in (("x", W), ("y", H)):
        counts = np.bincount(events[name], minlength=size)
        expected = len(events) / size
        assert np.abs(counts - expected).max() < 5 * math.sqrt(expected)


@pytest.mark.parametrize("pattern", ["bar", "dots"])
def test_each_pixel_alternates_on_and_off(pattern: str) -> None:
    ordered, same = pixel_runs(read(pattern=pattern, duration="300ms", noise=0.0))
    assert (ordered["on"][1:][same] != ordered["on"][:-1][same]).all()


def test_endless_mode_keeps_going() -> None:
    sensor = SyntheticSensor(W, H, rate=RATE, duration=None, packet_duration="10ms")
    assert sensor.properties.live
    assert sensor.progress() is None
    packets = list(itertools.islice(iter(sensor), 130))  # past the 1 s of the default
    assert len(packets) == 130
    last = packets[-1].events["t"]
    assert len(last)
    assert last.min() >= 1_290_000
    assert last.max() < 1_300_000
    finite = read(duration="1.3s")
    assert_same_events(np.concatenate([p.events for p in packets]), finite)
    assert not SyntheticSensor(W, H, duration="1s").properties.live


def test_t0_offsets_every_time() -> None:
    base = read(duration="20ms")
    moved_sensor = SyntheticSensor(W, H, rate=RATE, duration="20ms", t0=1_000_000)
    assert moved_sensor.properties.t0 == 1_000_000
    moved = moved_sensor.read().events
    assert (moved["t"] == base["t"] + 1_000_000).all()
    for name in ("x", "y", "on"):
        assert (moved[name] == base[name]).all()


def test_rotating_bar_is_the_default_scene() -> None:
    assert_same_events(
        rotating_bar(W, H, 50_000, seed=2), read(duration=50_000, seed=2, rate=2_000_000.0)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 7}, "8..65536"),
        ({"height": 70_000}, "8..65536"),
        ({"pattern": "checkerboard"}, "pattern"),
        ({"rate": 0}, "rate"),
        ({"noise": 1.5}, "noise"),
        ({"packet_duration": 0}, "packet_duration"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticSensor(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The bar, against a plain computation of its edges
# --------------------------------------------------------------------------------------------
class Bar:
    """A bar through the centre of the sensor, turning at a steady rate; its leading edge is
    ``delta`` ahead of its middle, its trailing edge ``delta`` behind. The bar looks the same
    after half a turn, so angles are taken modulo pi. A pixel fires ON when the leading edge
    passes its angle (seen from the centre), OFF when the trailing edge does.

    The bar's speed, width, direction and starting angle are not given by the docstring: they
    are measured on two pixels, and every other pixel must then agree."""

    def __init__(self, events: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> None:
        on_a, off_a = self.firings(events, a, True), self.firings(events, a, False)
        assert len(on_a) >= 4
        self.period = (on_a[-1] - on_a[0]) / (len(on_a) - 1)  # half a turn
        self.omega = math.pi / self.period  # rad per µs
        first_off = off_a[off_a > on_a[0]][0]
        self.delta = self.omega * (first_off - on_a[0]) / 2
        on_b = self.firings(events, b, True)
        ahead = (on_b[0] - on_a[0]) % self.period
        self.sign = 1 if ahead < self.period / 2 else -1  # b lies a little further round
        middle = self.omega * (on_a[0] + first_off) / 2
        self.phi0 = angle(a) - self.sign * middle

    @staticmethod
    def firings(events: np.ndarray, pixel: tuple[int, int], on: bool) -> np.ndarray:
        mask = (events["x"] == pixel[0]) & (events["y"] == pixel[1]) & (events["on"] == on)
        times: np.ndarray = events["t"][mask].astype(np.float64)
        return times

    def predicted(self, pixel: tuple[int, int], on: bool, duration: int) -> list[float]:
        """Times in [0, duration) when an edge passes the pixel's angle."""
        edge = -self.delta if on else self.delta
        first = ((self.sign * (angle(pixel) - self.phi0) + edge) / self.omega) % self.period
        out = []
        t = first
        while t < duration:
            out.append(t)
            t += self.period
        return out


def angle(pixel: tuple[int, int]) -> float:
    x, y = pixel
    return math.atan2(y - (H - 1) / 2, x - (W - 1) / 2) % math.pi


def test_bar_fires_where_its_edges_pass() -> None:
    duration = 300_000
    events = read(pattern="bar", duration=duration, noise=0.0)
    centre_x, centre_y = (W - 1) / 2, (H - 1) / 2
    bar = Bar(events, a=(40, 30), b=(39, 31))
    checked = 0
    for radius, theta in itertools.product((4, 9, 15), np.linspace(0.2, 2 * math.pi, 11)):
        pixel = (
            round(centre_x + radius * math.cos(theta)),
            round(centre_y + radius * math.sin(theta)),
        )
        for on in (True, False):
            got = bar.firings(events, pixel, on)
            expected = bar.predicted(pixel, on, duration)
            # Leave out firings within a few µs of either end of the recording.
            expected = [t for t in expected if 3 <= t <= duration - 3]
            got = got[(got >= 3) & (got <= duration - 3)]
            assert len(got) == len(expected), (pixel, on, got, expected)
            assert np.abs(got - np.array(expected)).max() <= 3, (pixel, on, got, expected)
            checked += 1
    assert checked == 66


def test_bar_fires_in_a_centred_disc() -> None:
    events = read(pattern="bar", duration="100ms", noise=0.0)
    fired = np.zeros((H, W), bool)
    fired[events["y"], events["x"]] = True
    ys, xs = np.mgrid[0:H, 0:W]
    radius = np.hypot(xs - (W - 1) / 2, ys - (H - 1) / 2)
    assert fired.sum() > 100
    assert radius[fired].max() < radius[~fired].min()
