"""The DAT writer's CD records, written by one kernel (``dat._encode_cd``), against a plain
Python encoder written from the format note: each record is the time since the file's
origin modulo 2**32, then ``x | y << 14 | on << 28``, and a reader unwraps a drop of more
than 2**31 µs between consecutive times as one counter wrap. Times the rule cannot carry
are refused before anything is written, with the same messages as before the kernel."""

from __future__ import annotations

import re
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.formats.dat import DatWriter

WRAP = 1 << 32
LARGEST_STEP = (1 << 31) - 1  # a larger drop of the 32-bit time reads as a wrap


def reference_records(events: np.ndarray, origin: int) -> bytes:
    """The records, one event at a time, as the format note states them."""
    out = bytearray()
    for event in events.tolist():
        t, x, y, on = event
        out += struct.pack("<II", (t - origin) % WRAP, x | (y << 14) | (int(on) << 28))
    return bytes(out)


def header_end(data: bytes) -> int:
    """Where the records start: after the '% ' lines and the event type and size bytes."""
    at = 0
    while data.startswith(b"%", at):
        at = data.index(b"\n", at) + 1
    assert data[at : at + 2] == bytes([0x0C, 8])
    return at + 2


def drawn_events(steps: list[int], seed: int, start: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(len(steps), aerflow.EVENTS_DTYPE)
    events["t"] = start + np.cumsum(np.asarray(steps, np.uint64), dtype=np.uint64)
    events["x"] = rng.integers(0, 1 << 14, len(steps))
    events["y"] = rng.integers(0, 1 << 14, len(steps))
    events["on"] = rng.integers(0, 2, len(steps)).astype(bool)
    return events


STEPS = st.lists(
    st.one_of(
        st.integers(0, 50),
        st.sampled_from([LARGEST_STEP, LARGEST_STEP - 1, 1 << 30, WRAP // 3]),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(
    steps=STEPS,
    seed=st.integers(0, 1000),
    start=st.sampled_from([0, 5, 999_999, (1 << 40) + 17, (1 << 61) + 3]),
    cuts=st.lists(st.integers(0, 300), max_size=4),
)
def test_cd_records_equal_the_plain_encoder(
    steps: list[int], seed: int, start: int, cuts: list[int]
) -> None:
    events = drawn_events(steps, seed, start)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "drawn.dat"
        with DatWriter(path, width=1 << 14, height=1 << 14) as writer:
            for part in np.split(events, sorted(c % (len(events) + 1) for c in cuts)):
                writer.write(part)
        data = path.read_bytes()
        first = int(events["t"][0])
        origin = 0 if first < (1 << 32) else first - first % 1_000_000
        assert data[header_end(data) :] == reference_records(events, origin)
        decoded = aerflow.read(path)
    assert decoded["t"].tolist() == events["t"].tolist()
    assert decoded[["x", "y", "on"]].tolist() == events[["x", "y", "on"]].tolist()


def refused(events: np.ndarray, message: str, **options: Any) -> bool:
    """Writing ``events`` raises a ValueError matching ``message``; whether a file is left."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "refused.dat"
        with pytest.raises(ValueError, match=message), DatWriter(path, **options) as writer:
            writer.write(events)
        return path.exists()


def test_a_jump_the_clock_cannot_carry_is_refused_naming_the_item() -> None:
    # A whole loop and 5 µs more: the stored time only grows by 5, no wrap is seen.
    events = drawn_events([10, 20, WRAP + 5, 5], seed=1, start=0)
    item = re.escape(f"DAT keeps 32-bit times: item 2 (t={int(events['t'][2])} µs)")
    assert not refused(events, "^" + item, width=1 << 14, height=1 << 14)


def test_events_outside_the_sensor_are_refused_with_the_largest_address() -> None:
    events = drawn_events([1, 1, 1], seed=2, start=0)
    events["x"] = [3, 120, 7]
    events["y"] = [4, 5, 6]
    message = re.escape("events lie outside the 100x100 sensor (max x 120, max y 6)")
    assert not refused(events, f"^{message}$", width=100, height=100)


def test_times_before_a_given_origin_are_refused() -> None:
    events = drawn_events([1, 1], seed=3, start=5_000_000)
    message = re.escape("timestamp 5000001 µs is before the time origin 6000000 µs")
    assert not refused(events, f"^{message}$", width=1 << 14, height=1 << 14, time_origin=6_000_000)


def test_a_refused_write_keeps_what_was_written_and_the_clock() -> None:
    good = drawn_events([1, LARGEST_STEP, LARGEST_STEP], seed=4, start=0)
    bad = drawn_events([WRAP + 10], seed=5, start=int(good["t"][-1]))
    after = drawn_events([3, 4], seed=6, start=int(good["t"][-1]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kept.dat"
        with DatWriter(path, width=1 << 14, height=1 << 14) as writer:
            writer.write(good)
            with pytest.raises(ValueError, match="keeps 32-bit times: item 0"):
                writer.write(bad)
            writer.write(after)
        decoded = aerflow.read(path)
    expected = np.concatenate([good, after])
    assert decoded["t"].tolist() == expected["t"].tolist()
