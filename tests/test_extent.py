"""The one-pass extent kernel against NumPy's reductions."""

from __future__ import annotations

import numpy as np
import pytest

from aerflow import EVENTS_DTYPE
from aerflow._extent import event_extent


@pytest.mark.parametrize("size", [1, 2, 7, 1000])
def test_extent_matches_numpy(size: int) -> None:
    rng = np.random.default_rng(size)
    events = np.zeros(size, EVENTS_DTYPE)
    events["t"] = rng.integers(0, 2**63, size, dtype=np.uint64)
    events["x"] = rng.integers(0, 2**16, size, dtype=np.uint16)
    events["y"] = rng.integers(0, 2**16, size, dtype=np.uint16)
    expected = (
        int(events["t"].min()),
        int(events["t"].max()),
        int(events["x"].max()),
        int(events["y"].max()),
    )
    assert event_extent(events) == expected
    assert event_extent(events[::-1]) == expected  # strided views too


def test_extent_of_largest_time() -> None:
    events = np.zeros(3, EVENTS_DTYPE)
    events["t"] = [5, 2**64 - 1, 3]
    assert event_extent(events) == (3, 2**64 - 1, 0, 0)


def test_extent_refuses_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        event_extent(np.zeros(0, EVENTS_DTYPE))
