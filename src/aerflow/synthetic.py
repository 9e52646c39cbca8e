"""Deterministic synthetic recordings, for demos and tests that need no camera or file."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .events import EVENTS_DTYPE

__all__ = ["rotating_bar"]


def rotating_bar(
    width: int = 640,
    height: int = 480,
    duration_us: int = 1_000_000,
    turns_per_second: float = 0.5,
    noise_rate: float = 50_000.0,
    seed: int = 0,
) -> npt.NDArray[Any]:
    """A bar spinning about the sensor's centre: ON events along its leading edge, OFF along
    its trailing edge, plus uniformly random noise events at ``noise_rate`` per second.

    The same arguments always give the same events, sorted by time.
    """
    if width <= 0 or height <= 0 or duration_us <= 0:
        raise ValueError("width, height and duration must be positive")
    ys, xs = np.mgrid[0:height, 0:width]
    dx = xs - (width - 1) / 2
    dy = ys - (height - 1) / 2
    inside = np.hypot(dx, dy) < 0.4 * min(width, height)
    phase = np.arctan2(dy[inside], dx[inside]) % np.pi  # a bar through the centre repeats every pi
    x, y = xs[inside], ys[inside]
    omega = 2 * np.pi * turns_per_second / 1e6  # radians per µs
    half_width = np.pi / 60
    crossings = int(np.ceil(omega * duration_us / np.pi)) + 1
    parts = []
    for edge, on in ((half_width, True), (-half_width, False)):
        first = ((phase - edge) % np.pi) / omega
        for k in range(crossings):
            t = first + k * np.pi / omega
            keep = t < duration_us
            parts.append(_events(t[keep], x[keep], y[keep], on))
    rng = np.random.default_rng(seed)
    noise = int(rng.poisson(noise_rate * duration_us / 1e6))
    parts.append(
        _events(
            rng.uniform(0, duration_us, noise),
            rng.integers(0, width, noise),
            rng.integers(0, height, noise),
            rng.random(noise) < 0.5,
        )
    )
    events = np.concatenate(parts)
    return events[np.argsort(events["t"], kind="stable")]


def _events(t: Any, x: Any, y: Any, on: Any) -> npt.NDArray[Any]:
    out = np.empty(len(t), EVENTS_DTYPE)
    out["t"] = np.floor(t).astype(np.uint64)
    out["x"] = x
    out["y"] = y
    out["on"] = on
    return out
