"""Assertions and guards the format tests share."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import aerflow


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Turn a hang into a failure: TimeoutError in this (main) thread after ``seconds``."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still decoding after {seconds} s: the reader hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_same_events(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == aerflow.EVENTS_DTYPE
    assert len(actual) == len(expected), (len(actual), len(expected))
    for name in ("t", "x", "y", "on"):
        same = actual[name] == expected[name]
        if not same.all():
            index = int(np.flatnonzero(~same)[0])
            raise AssertionError(
                f"field {name} differs first at event {index}: "
                f"got {actual[index]!r}, expected {expected[index]!r}"
            )


def assert_same_triggers(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == aerflow.TRIGGERS_DTYPE
    assert actual.tolist() == expected.tolist()


def uniform_events(count: int, duration_us: int, seed: int, width: int, height: int) -> np.ndarray:
    """``count`` events at uniformly drawn times (sorted) below ``duration_us``, pixels of a
    ``width`` x ``height`` sensor and polarities, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    events = np.zeros(count, aerflow.EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, duration_us, count))
    events["x"] = rng.integers(0, width, count)
    events["y"] = rng.integers(0, height, count)
    events["on"] = rng.integers(0, 2, count).astype(bool)
    return events
