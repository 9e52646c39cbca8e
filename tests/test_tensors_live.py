"""aerflow.tensors.Accumulator: add from a reader thread, read what came since last time."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.events import Packet
from aerflow.tensors import Accumulator

try:
    from tests.reference import tensors as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import tensors as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

torch = pytest.importorskip("torch")

W, H = 13, 9


def make_events(n: int, seed: int = 0, outside: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 100_000, n))
    events["x"] = rng.integers(0, W, n)
    events["y"] = rng.integers(0, H, n)
    events["on"] = rng.random(n) < 0.5
    events["x"][:outside] = W + 3
    return events


def as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array.astype(np.float64)
    return array.to(torch.float64).numpy()


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("representation", ["counts", "signed", "binary"])
def test_read_returns_what_was_added_since_the_last_read(device: str, representation: str) -> None:
    events = make_events(5000, outside=25)
    accumulator = Accumulator((W, H), representation=representation, device=device, capacity=64)
    accumulator.add(Packet(events[:1000]))
    accumulator.add(events[1000:3000])
    assert accumulator.pending == 3000 - 25
    first = accumulator.read()
    accumulator.add(events[3000:])
    second = accumulator.read()
    third = accumulator.read()
    inside = events[25:]
    for got, part in ((first, inside[:2975]), (second, inside[2975:]), (third, inside[:0])):
        if representation == "counts":
            expected = ref.counts(part, W, H, merged=False)
        elif representation == "signed":
            expected = ref.signed(part, W, H)
        else:
            expected = ref.binary(part, W, H, merged=False)
        np.testing.assert_array_equal(as_numpy(got), expected)
    assert accumulator.dropped == 25
    assert first is not second


def test_time_surface_remembers_across_reads() -> None:
    events = make_events(400)
    accumulator = Accumulator((W, H), representation="time_surface", tau="20ms", device="numpy")
    reference = ref.TimeSurface(W, H, merged=False, tau=20_000.0)
    for part in np.array_split(events, 4):
        accumulator.add(part)
        got = accumulator.read()
        expected = reference(part, int(part["t"].max()))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    accumulator.reset()
    assert not accumulator.read().any()


def test_adding_from_threads_while_reading() -> None:
    events = make_events(200_000, seed=1)
    accumulator = Accumulator((W, H), merge_polarity=True, dtype="int64", capacity=1000)
    parts = np.array_split(events, 400)
    total = torch.zeros(1, H, W, dtype=torch.int64)

    def produce(chunks: list[np.ndarray]) -> None:
        for chunk in chunks:
            accumulator.add(chunk)

    threads = [threading.Thread(target=produce, args=(parts[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        total += accumulator.read()
    for thread in threads:
        thread.join()
    total += accumulator.read()
    np.testing.assert_array_equal(total.numpy(), ref.counts(events, W, H, merged=True))


def test_extend_and_refusals() -> None:
    events = make_events(100)
    accumulator = Accumulator((W, H), device="numpy")
    accumulator.extend([Packet(events[:50]), Packet(events[50:])])
    assert accumulator.read().sum() == 100
    with pytest.raises(ValueError, match="voxel"):
        Accumulator((W, H), representation="voxel")
    with pytest.raises(ValueError, match="sensor size"):
        Accumulator((0, 5))
