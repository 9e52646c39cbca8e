"""aerflow.tensors.sequence and batches: shapes, order, padding, equal windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.events import Packet
from aerflow.tensors import batches, frames, sequence

try:
    from tests.reference import tensors as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import tensors as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

torch = pytest.importorskip("torch")

W, H = 11, 7


def make_events(n: int = 2000, duration: int = 10_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = 500 + np.sort(rng.integers(0, duration, n))
    events["x"] = rng.integers(0, W, n)
    events["y"] = rng.integers(0, H, n)
    events["on"] = rng.random(n) < 0.5
    return events


def as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array.astype(np.float64)
    return array.to(torch.float64).numpy()


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_sequence_stacks_every_frame(device: str) -> None:
    events = make_events()
    stacked = sequence(events, window=1000, sensor_size=(W, H), device=device)
    expected = ref.frames(events, W, H, "counts", window=1000)
    assert tuple(stacked.shape) == (len(expected), 2, H, W)
    np.testing.assert_array_equal(as_numpy(stacked), np.stack(expected))
    voxels = sequence(events, events=500, sensor_size=(W, H), device=device, representation="voxel")
    assert tuple(voxels.shape) == (4, 5, 2, H, W)


def test_sequence_in_equal_windows() -> None:
    events = make_events()
    t = events["t"].astype(np.int64)
    stacked = sequence(events, windows=7, sensor_size=(W, H))
    assert tuple(stacked.shape) == (7, 2, H, W)
    assert float(stacked.sum()) == len(events)
    duration = -(-(int(t[-1]) + 1 - int(t[0])) // 7)
    expected = ref.frames(events, W, H, "counts", window=duration)
    np.testing.assert_array_equal(as_numpy(stacked), np.stack(expected))
    # From packets with properties, the sensor size comes along.

    class Source:
        properties = aerflow.Properties("test", W, H)

        def __iter__(self) -> Any:
            return iter([Packet(events[:900]), Packet(events[900:])])

    again = sequence(Source(), windows=7)
    assert torch.equal(again, stacked)
    empty = sequence(events[:0], windows=3, sensor_size=(W, H), device="numpy")
    assert empty.shape == (0, 2, H, W)
    with pytest.raises(ValueError, match="one of"):
        sequence(events, windows=3, window=10, sensor_size=(W, H))


@pytest.mark.parametrize("time_first", [False, True])
def test_batches_group_consecutive_windows(time_first: bool) -> None:
    events = make_events()
    singles = [f.clone() for f in frames(events, window=500, sensor_size=(W, H))]
    assert len(singles) == 20
    got = list(
        batches(
            events,
            window=500,
            sensor_size=(W, H),
            batch_size=3,
            steps=3,
            time_first=time_first,
        )
    )
    # 20 windows: two full batches of 3 clips of 3, then 1 clip of 2 windows and 1 padding.
    assert [tuple(b.shape) for b in got] == [
        (3, 3, 2, H, W),
        (3, 3, 2, H, W),
        (3, 1, 2, H, W) if time_first else (1, 3, 2, H, W),
    ]
    flat = []
    for batch in got:
        clips = batch.transpose(0, 1) if time_first else batch
        flat.extend(frame for clip in clips for frame in clip)
    assert len(flat) == 21
    for index, frame in enumerate(flat):
        expected = singles[index] if index < 20 else torch.zeros_like(singles[0])
        assert torch.equal(frame, expected), index
    dropped = list(
        batches(events, window=500, sensor_size=(W, H), batch_size=3, steps=3, drop_last=True)
    )
    assert len(dropped) == 2


def test_batches_are_their_own_unless_reused() -> None:
    events = make_events()
    options: dict[str, Any] = {"window": 500, "sensor_size": (W, H), "batch_size": 2}
    reused = list(batches(events, steps=2, reuse=True, **options))
    assert len(reused) == 5
    assert all(b is reused[0] for b in reused)
    kept = list(batches(events, steps=2, **options))
    assert len({id(b) for b in kept}) == len(kept) == 5
    first = next(iter(batches(events, steps=2, reuse=True, **options))).clone()
    torch.testing.assert_close(kept[0], first)
    with pytest.raises(ValueError, match="batch_size"):
        batches(events, window=500, sensor_size=(W, H), batch_size=0, steps=2)
