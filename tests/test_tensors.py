"""aerflow.tensors.frames: every representation against the NumPy reference, windows at
their edges, packets straddling windows, dropped events, saturation; NumPy and CPU torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.events import Packet
from aerflow.tensors import frames
from aerflow.tensors._backend import TorchBackend

try:
    from tests.reference import tensors as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import tensors as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

torch = pytest.importorskip("torch")


@pytest.fixture
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The device to ask for; "torch-ops" is the CPU without the host kernels."""
    name: str = request.param
    if name == "torch-ops":
        monkeypatch.setattr(TorchBackend, "host_kernels", False)
        return "cpu"
    return name


BACKENDS = ["numpy", "cpu", "torch-ops"]
"""NumPy arrays; CPU tensors (windows finished by numba kernels); CPU tensors finished by the
torch operations a GPU runs."""
REPRESENTATIONS = ["counts", "signed", "binary", "time_surface", "voxel"]
W, H = 23, 17


def make_events(
    n: int = 4000,
    width: int = W,
    height: int = H,
    duration: int = 20_000,
    *,
    seed: int = 0,
    outside: float = 0.0,
    t0: int = 1_000_003,
) -> np.ndarray:
    """Sorted random events, some at shared times, a fraction ``outside`` off the sensor."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = t0 + np.sort(rng.integers(0, duration, n))
    x = rng.integers(0, width, n)
    y = rng.integers(0, height, n)
    off = rng.random(n) < outside
    in_x = rng.random(n) < 0.5
    x[off & in_x] += width
    y[off & ~in_x] += height
    events["x"], events["y"] = x, y
    events["on"] = rng.random(n) < 0.6
    return events


def as_numpy(frame: Any) -> np.ndarray:
    if isinstance(frame, np.ndarray):
        return frame.astype(np.float64)
    return frame.detach().to("cpu").to(torch.float64).numpy()


def split(events: np.ndarray, pieces: int, seed: int = 1) -> list[Packet]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, len(events) + 1, pieces - 1))
    return [Packet(part) for part in np.split(events, cuts)]


def tolerance(representation: str) -> dict[str, float]:
    if representation in ("time_surface", "voxel"):
        return {"rtol": 1e-5, "atol": 2e-5}
    return {"rtol": 0.0, "atol": 0.0}


def check(
    actual: list[Any], expected: list[np.ndarray], representation: str, shape: tuple[int, ...]
) -> None:
    assert len(actual) == len(expected)
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert tuple(got.shape) == shape == want.shape, index
        np.testing.assert_allclose(
            as_numpy(got), want, **tolerance(representation), err_msg=f"frame {index}"
        )


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
@pytest.mark.parametrize("representation", REPRESENTATIONS)
@pytest.mark.parametrize("merged", [False, True])
@pytest.mark.parametrize(("mode", "size"), [("window", 1000), ("events", 313)])
def test_representation_matches_reference(
    device: str, representation: str, merged: bool, mode: str, size: int
) -> None:
    events = make_events(outside=0.05)
    options = {"window": size} if mode == "window" else {"count": size}
    expected = ref.frames(
        events, W, H, representation, merged=merged, tau=3000.0, bins=4, **options
    )
    extra: dict[str, Any] = {}
    if representation == "time_surface":
        extra["tau"] = 3000
    if representation == "voxel":
        extra["bins"] = 4
    iterator = frames(
        split(events, 7),
        sensor_size=(W, H),
        representation=representation,
        device=device,
        merge_polarity=merged,
        **{mode: size},
        **extra,
    )
    actual = list(iterator)
    check(actual, expected, representation, iterator.shape)
    outside = (events["x"] >= W) | (events["y"] >= H)
    assert iterator.dropped == int(outside.sum())
    assert iterator.late == 0


@pytest.mark.parametrize("representation", REPRESENTATIONS)
@pytest.mark.parametrize(("mode", "size"), [("window", 700), ("events", 250)])
@pytest.mark.parametrize(("chunk", "ring"), [(1, 1), (37, 2), (1000, 3), (100_000, None)])
@pytest.mark.parametrize("device", ["cpu", "torch-ops"], indirect=True)
def test_chunking_does_not_change_frames(
    representation: str, mode: str, size: int, chunk: int, ring: int | None, device: str
) -> None:
    """Staging buffers that fill up, rings that run out of slots and packets of every size
    (empty ones too) give the same frames as one array in one go."""
    events = make_events(3000, outside=0.02, seed=3)
    whole = frames(
        events,
        sensor_size=(W, H),
        representation=representation,
        device="numpy",
        **{mode: size},
    )
    expected = [as_numpy(frame) for frame in whole]
    packets = [*split(events, 40, seed=4), Packet(events[:0])]
    pieces = frames(
        packets,
        sensor_size=(W, H),
        representation=representation,
        device=device,
        chunk_events=chunk,
        ring_size=ring,
        **{mode: size},
    )
    actual = [as_numpy(frame) for frame in pieces]
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert pieces.dropped == whole.dropped


def _events(t: list[int], x: list[int] | None = None, on: list[bool] | None = None) -> np.ndarray:
    events = np.zeros(len(t), aerflow.EVENTS_DTYPE)
    events["t"] = t
    events["x"] = x if x is not None else [0] * len(t)
    events["on"] = on if on is not None else [True] * len(t)
    return events


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
def test_events_on_window_edges(device: str) -> None:
    # Windows of 10 µs from t0 = 100: [100, 110), [110, 120), ...
    events = _events([100, 109, 110, 119, 120, 130], x=[0, 1, 2, 3, 4, 5])
    iterator = frames(events, window=10, sensor_size=(8, 1), device=device)
    counts = [as_numpy(frame)[1, 0] for frame in iterator]
    assert [list(np.flatnonzero(c)) for c in counts] == [[0, 1], [2, 3], [4], [5]]
    assert iterator.last_window == (130, 140)


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
def test_one_microsecond_windows(device: str) -> None:
    events = _events([5, 5, 6, 8])
    got = [
        as_numpy(f)[1, 0, 0] for f in frames(events, window=1, sensor_size=(1, 1), device=device)
    ]
    assert got == [2, 1, 0, 1]


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
def test_empty_windows_are_yielded_as_zeros(device: str) -> None:
    events = _events([0, 5, 1000, 1001, 5_000_000])
    iterator = frames(events, window="1ms", sensor_size=(2, 2), device=device)
    totals = [float(as_numpy(frame).sum()) for frame in iterator]
    assert len(totals) == 5001
    assert totals[0] == 2
    assert totals[1] == 2
    assert totals[-1] == 1
    assert sum(totals) == 5
    assert totals[2:-1] == [0.0] * 4998


def test_empty_windows_of_a_time_surface_decay() -> None:
    events = _events([0, 20_000])
    surfaces = list(
        frames(
            events,
            window="5ms",
            sensor_size=(1, 1),
            representation="time_surface",
            tau="5ms",
            device="numpy",
        )
    )
    values = [float(s[1, 0, 0]) for s in surfaces]
    np.testing.assert_allclose(values[:4], np.exp(-np.arange(1, 5)), rtol=1e-6)
    assert values[4] == pytest.approx(np.exp(-1.0))


def test_window_spanning_packets_accumulates_across_them() -> None:
    events = _events([0, 1, 2, 3, 4, 5], x=[0, 0, 1, 1, 2, 2])
    packets = [Packet(events[i : i + 1]) for i in range(len(events))]
    (frame,) = list(frames(packets, window=10, sensor_size=(3, 1), device="numpy"))
    assert frame[1, 0].tolist() == [2, 2, 2]


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
def test_count_windows_and_last_partial_window(device: str) -> None:
    events = _events(list(range(10)), x=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    keep = frames(events, events=4, sensor_size=(10, 1), device=device)
    sums = [float(as_numpy(f).sum()) for f in keep]
    assert sums == [4, 4, 2]
    assert keep.last_window == (8, 10)
    assert keep.last_event_count == 2
    drop = frames(events, events=4, sensor_size=(10, 1), device=device, drop_last=True)
    assert [float(as_numpy(f).sum()) for f in drop] == [4, 4]


def test_start_stop_and_drop_last() -> None:
    events = _events([5, 10, 15, 25, 31, 45])
    got = frames(events, window=10, start=10, stop=40, sensor_size=(1, 1), device="numpy")
    assert [int(f.sum()) for f in got] == [2, 1, 1]
    assert got.last_window == (30, 40)
    clipped = frames(events, window=10, start=10, stop=35, sensor_size=(1, 1), device="numpy")
    assert [int(f.sum()) for f in clipped] == [2, 1, 1]
    dropped = frames(
        events, window=10, start=10, stop=35, drop_last=True, sensor_size=(1, 1), device="numpy"
    )
    assert [int(f.sum()) for f in dropped] == [2, 1]
    # Without events, start and stop alone still give their windows.
    empty = frames(events[:0], window=10, start=0, stop=30, sensor_size=(1, 1), device="numpy")
    assert [int(f.sum()) for f in empty] == [0, 0, 0]
    assert list(frames(events[:0], window=10, sensor_size=(1, 1), device="numpy")) == []


def test_reference_agrees_on_start_stop_drop_last() -> None:
    events = make_events(2000, seed=5)
    t = events["t"].astype(np.int64)
    start, stop = int(t[100]) + 3, int(t[1700]) + 1
    for drop_last in (False, True):
        expected = ref.frames(
            events, W, H, "counts", window=777, start=start, stop=stop, drop_last=drop_last
        )
        actual = frames(
            events,
            window=777,
            start=start,
            stop=stop,
            drop_last=drop_last,
            sensor_size=(W, H),
            device="numpy",
        )
        check(list(actual), expected, "counts", (2, H, W))


def test_events_out_of_order_stay_in_the_open_window() -> None:
    events = _events([0, 15, 12, 3, 25], x=[0, 1, 2, 3, 4])
    iterator = frames(events, window=10, sensor_size=(5, 1), device="numpy")
    got = [list(np.flatnonzero(f[1, 0])) for f in iterator]
    assert got == [[0], [1, 2, 3], [4]]
    assert iterator.late == 1
    expected = ref.frames(events, 5, 1, "counts", window=10)
    assert [list(np.flatnonzero(f[1, 0])) for f in expected] == got


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
def test_out_of_range_events_are_dropped_and_counted(device: str) -> None:
    events = _events([0, 1, 2, 3], x=[0, 4, 65535, 3])
    events["y"] = [0, 0, 0, 2]
    iterator = frames(events, window=100, sensor_size=(4, 2), device=device)
    (frame,) = [as_numpy(f) for f in iterator]
    assert frame.sum() == 1
    assert frame[1, 0, 0] == 1
    assert iterator.dropped == 3
    by_count = frames(events, events=1, sensor_size=(4, 2), device=device)
    assert len(list(by_count)) == 1
    assert by_count.dropped == 3


@pytest.mark.parametrize("device", BACKENDS, indirect=True)
def test_counts_saturate_in_small_dtypes(device: str) -> None:
    events = _events([0] * 300 + [1] * 40_000, x=[0] * 300 + [1] * 40_000)
    events["on"][:] = True
    (u8,) = list(frames(events, window=10, sensor_size=(2, 1), device=device, dtype="uint8"))
    assert as_numpy(u8)[1, 0].tolist() == [255, 255]
    (i16,) = list(frames(events, window=10, sensor_size=(2, 1), device=device, dtype="int16"))
    assert as_numpy(i16)[1, 0].tolist() == [300, 32767]
    (f16,) = list(frames(events, window=10, sensor_size=(2, 1), device=device, dtype="float16"))
    assert as_numpy(f16)[1, 0].tolist() == [300, 40000]
    events["on"][:] = False
    (s8,) = list(
        frames(
            events,
            window=10,
            sensor_size=(2, 1),
            device=device,
            dtype="int8",
            representation="signed",
        )
    )
    assert as_numpy(s8)[0, 0].tolist() == [-128, -128]
    (b,) = list(
        frames(
            events,
            window=10,
            sensor_size=(2, 1),
            device=device,
            representation="binary",
            dtype=bool,
        )
    )
    assert as_numpy(b)[0, 0].tolist() == [1, 1]


def test_dtypes_are_those_asked_for() -> None:
    events = make_events(500)
    (a,) = list(frames(events, window="1s", sensor_size=(W, H), dtype=torch.int32))
    assert a.dtype == torch.int32
    assert a.device.type == "cpu"
    (b,) = list(frames(events, window="1s", sensor_size=(W, H), dtype=np.float64, device="numpy"))
    assert b.dtype == np.float64
    (c,) = list(frames(events, window="1s", sensor_size=(W, H), dtype="bfloat16"))
    assert c.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="bfloat16"):
        frames(events, window="1s", sensor_size=(W, H), dtype="bfloat16", device="numpy")
    with pytest.raises(ValueError, match="cannot be uint8"):
        frames(events, window="1s", sensor_size=(W, H), dtype="uint8", representation="signed")
    with pytest.raises(ValueError, match="cannot be int32"):
        frames(events, window="1s", sensor_size=(W, H), dtype="int32", representation="voxel")


@pytest.mark.parametrize("representation", ["counts", "signed", "voxel"])
def test_frames_are_their_own_unless_reused(representation: str) -> None:
    """By default list(frames(...)) keeps every frame; reuse=True writes them all into one
    array, valid only until the next frame is asked for."""
    events = make_events(1000)
    options: dict[str, Any] = {"representation": representation, "window": 5000}
    expected = [
        as_numpy(f).copy() for f in frames(events, sensor_size=(W, H), reuse=True, **options)
    ]
    # (A fixed ring: a ring that grows leaves the frames of its old slots alone.)
    reused = list(frames(events, sensor_size=(W, H), ring_size=2, reuse=True, **options))
    fresh = list(frames(events, sensor_size=(W, H), **options))
    for frame, want in zip(fresh, expected, strict=True):
        np.testing.assert_array_equal(as_numpy(frame), want)
    assert len(reused) == len(fresh) == len(expected) > 2
    assert len({id(frame) for frame in fresh}) == len(fresh)
    assert all(as_numpy(frame).any() for frame in fresh)
    # Every frame but the last was cleared or overwritten once the next was asked for.
    for frame, kept in zip(reused[:-1], fresh[:-1], strict=True):
        assert not np.array_equal(as_numpy(frame), as_numpy(kept))
    np.testing.assert_array_equal(as_numpy(reused[-1]), as_numpy(fresh[-1]))


def test_sensor_size_from_properties_and_errors() -> None:
    events = make_events(100)

    class Source:
        properties = aerflow.Properties("test", W, H)

        def __iter__(self) -> Any:
            yield Packet(events)

    iterator = frames(Source(), window="1ms")
    assert iterator.sensor_size == (W, H)
    assert iterator.shape == (2, H, W)
    with pytest.raises(ValueError, match="sensor_size"):
        frames(events, window="1ms")
    with pytest.raises(ValueError, match="exactly one"):
        frames(events, window="1ms", events=10, sensor_size=(W, H))
    with pytest.raises(ValueError, match="exactly one"):
        frames(events, sensor_size=(W, H))
    with pytest.raises(ValueError, match="unknown representation"):
        frames(events, window="1ms", sensor_size=(W, H), representation="nope")
    with pytest.raises(ValueError, match="tau"):
        frames(events, window="1ms", sensor_size=(W, H), tau=5)
    with pytest.raises(ValueError, match="stop must come after start"):
        frames(events, window="1ms", sensor_size=(W, H), start=10, stop=10)


def test_other_event_layouts_are_accepted() -> None:
    events = make_events(300)
    tonic_like = np.zeros(len(events), [("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    for name in ("x", "y", "t"):
        tonic_like[name] = events[name]
    tonic_like["p"] = events["on"]
    a = [f.copy() for f in frames(events, events=100, sensor_size=(W, H), device="numpy")]
    b = [f.copy() for f in frames(tonic_like, events=100, sensor_size=(W, H), device="numpy")]
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def test_representation_objects() -> None:
    from aerflow.tensors import TimeSurface, VoxelGrid

    events = make_events(1000)
    iterator = frames(
        events, window=5000, sensor_size=(W, H), representation=VoxelGrid(bins=3), device="numpy"
    )
    assert iterator.shape == (3, 2, H, W)
    surface = frames(
        events,
        window=5000,
        sensor_size=(W, H),
        representation=TimeSurface(tau="2ms"),
        merge_polarity=True,
    )
    assert surface.shape == (1, H, W)
    with pytest.raises(ValueError, match="bins"):
        VoxelGrid(bins=0)
    with pytest.raises(ValueError, match="tau"):
        TimeSurface(tau=0)


def test_real_recordings_match_reference(shared_data: Any) -> None:
    for name, window, size in (
        ("evt3/expelliarmus_evt3_gen41_2020-09-14.raw", "10ms", None),
        ("evt2/evt2_gen3_2020-09-14.raw", "10ms", (320, 240)),
    ):
        path = shared_data / name
        if not path.is_file():
            pytest.skip(f"{name} not in shared data")
        events = aerflow.read(path)
        with aerflow.open(path) as reader:
            width, height = size or reader.properties.sensor_size
        for representation in ("counts", "time_surface", "voxel"):
            expected = ref.frames(
                events, width, height, representation, window=aerflow.parse_time(window)
            )
            with aerflow.open(path, chunk_size=1 << 14) as reader:
                iterator = frames(
                    reader,
                    window=window,
                    representation=representation,
                    sensor_size=size,
                )
                check(list(iterator), expected, representation, iterator.shape)
            outside = (events["x"] >= width) | (events["y"] >= height)
            assert iterator.dropped == int(outside.sum())
            if size is not None:
                assert iterator.dropped > 0


def test_real_recording_by_count(shared_data: Any) -> None:
    path = shared_data / "evt3/expelliarmus_evt3_gen41_2020-09-14.raw"
    if not path.is_file():
        pytest.skip("EVT3 recording not in shared data")
    events = aerflow.read(path)
    with aerflow.open(path) as reader:
        width, height = reader.properties.sensor_size
        iterator = frames(reader, events=2000, representation="voxel", bins=3)
        expected = ref.frames(events, width, height, "voxel", bins=3, count=2000)
        check(list(iterator), expected, "voxel", iterator.shape)
