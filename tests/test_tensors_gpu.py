"""The CUDA path (pinned staging, copy stream, double buffering) against the CPU path."""

from __future__ import annotations

import numpy as np
import pytest

import aerflow
from aerflow.events import Packet
from aerflow.tensors import Accumulator, frames

try:
    from tests.reference import tensors as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import tensors as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

W, H = 64, 48


def make_events(n: int = 200_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 100_000, n))
    events["x"] = rng.integers(0, W + 2, n)
    events["y"] = rng.integers(0, H, n)
    events["on"] = rng.random(n) < 0.5
    return events


@pytest.mark.parametrize("representation", ["counts", "signed", "binary", "time_surface", "voxel"])
@pytest.mark.parametrize("mode", ["window", "events"])
def test_cuda_frames_match_reference(representation: str, mode: str) -> None:
    events = make_events()
    size = 3000 if mode == "window" else 7000
    packets = [Packet(part) for part in np.array_split(events, 13)]
    iterator = frames(
        packets,
        sensor_size=(W, H),
        representation=representation,
        device="cuda",
        chunk_events=4096,  # many uploads: both staging buffers take turns
        **{mode: size},
    )
    actual = [frame.cpu().to(torch.float64).numpy() for frame in iterator]
    options = {"window": size} if mode == "window" else {"count": size}
    expected = ref.frames(events, W, H, representation, **options)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert iterator.dropped == int((events["x"] >= W).sum())


def test_cuda_frames_reused_buffer_is_consistent_when_consumed_in_order() -> None:
    events = make_events()
    expected = list(frames(events, window=1000, sensor_size=(W, H)))
    reused = frames(events, window=1000, sensor_size=(W, H), device="cuda", reuse=True)
    sums = [float(f.sum()) for f in reused]
    assert sums == [float(f.sum()) for f in expected]


def test_cuda_accumulator() -> None:
    events = make_events(50_000)
    accumulator = Accumulator((W, H), device="cuda", capacity=1000)
    accumulator.add(events)
    frame = accumulator.read()
    assert frame.device.type == "cuda"
    inside = events[events["x"] < W]
    np.testing.assert_array_equal(frame.cpu().numpy(), ref.counts(inside, W, H, merged=False))
    assert accumulator.dropped == len(events) - len(inside)
