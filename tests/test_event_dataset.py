"""aerflow.tensors.EventDataset: windows checked against hand-sliced events, DataLoader workers
against the single-process loop, DistributedSampler shares."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.synthetic import rotating_bar

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from aerflow.tensors import EventDataset, frames  # noqa: E402

WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("event_dataset")
    paths = []
    for seed, (format, name, duration) in enumerate(
        [("evt3", "a.raw", 95_000), ("dat", "b.dat", 40_000), ("npy", "c.npy", 61_000)]
    ):
        events = rotating_bar(WIDTH, HEIGHT, duration, seed=seed)
        events["t"] += np.uint64(1_000 * seed + 17)  # first times not on a window edge
        path = folder / name
        aerflow.write(path, events, format=format, width=WIDTH, height=HEIGHT)
        paths.append(os.fspath(path))
    return paths


def _counts(events: np.ndarray) -> np.ndarray:
    """The counts representation by hand: (P, H, W), index 0 = OFF, 1 = ON."""
    out = np.zeros((2, HEIGHT, WIDTH), np.float32)
    np.add.at(
        out,
        (events["on"].astype(np.intp), events["y"].astype(np.intp), events["x"].astype(np.intp)),
        1,
    )
    return out


def test_time_windows_against_hand_slicing(recordings: list[str]) -> None:
    window = 10_000
    dataset = EventDataset(recordings, "10ms", sensor_size=(WIDTH, HEIGHT))
    expected = []
    for path in recordings:
        events = aerflow.read(path)
        t0, t_last = int(events["t"][0]), int(events["t"].max())
        for k in range((t_last - t0) // window + 1):
            low = t0 + k * window
            chosen = events[(events["t"] >= low) & (events["t"] < low + window)]
            expected.append((path, low, _counts(chosen)))
    assert len(dataset) == len(expected)
    for i, (path, low, counts) in enumerate(expected):
        assert dataset.locate(i) == (path, low, low + window)
        item = dataset[i]
        assert item.shape == (2, HEIGHT, WIDTH)
        assert item.dtype == torch.float32
        np.testing.assert_array_equal(item.numpy(), counts, err_msg=f"item {i}")
    # The same windows as frames() over the whole file.
    first = list(frames(aerflow.read(recordings[0]), window="10ms", sensor_size=(WIDTH, HEIGHT)))
    assert len(first) == 10
    for i, frame in enumerate(first):
        assert torch.equal(dataset[i], frame)


def test_time_windows_of_a_file_out_of_order(tmp_path: Path) -> None:
    events = rotating_bar(WIDTH, HEIGHT, 30_000, seed=5)
    order = np.random.default_rng(1).permutation(len(events))
    shuffled = events[order]
    path = tmp_path / "shuffled.npy"
    aerflow.write(path, shuffled, format="npy", width=WIDTH, height=HEIGHT)
    dataset = EventDataset(path, window=7_000, sensor_size=(WIDTH, HEIGHT))
    t0, t_last = int(shuffled["t"].min()), int(shuffled["t"].max())
    assert int(shuffled["t"][0]) > t0  # the first event is not the earliest
    assert len(dataset) == (t_last - t0) // 7_000 + 1
    total = 0
    for k in range(len(dataset)):
        low = t0 + k * 7_000
        chosen = shuffled[(shuffled["t"] >= low) & (shuffled["t"] < low + 7_000)]
        np.testing.assert_array_equal(dataset[k].numpy(), _counts(chosen), err_msg=f"item {k}")
        total += len(chosen)
    assert total == len(shuffled)  # no event lost


def test_count_windows_and_drop_last(recordings: list[str]) -> None:
    n = 7_000
    dataset = EventDataset(recordings, events=n, sensor_size=(WIDTH, HEIGHT))
    dropping = EventDataset(recordings, events=n, sensor_size=(WIDTH, HEIGHT), drop_last=True)
    expected, full = [], []
    for path in recordings:
        events = aerflow.read(path)
        for start in range(0, len(events), n):
            piece = events[start : start + n]
            expected.append(_counts(piece))
            if len(piece) == n:
                full.append(_counts(piece))
    assert len(dataset) == len(expected)
    assert len(dropping) == len(full) < len(expected)
    for i in range(len(expected)):
        np.testing.assert_array_equal(dataset[i].numpy(), expected[i], err_msg=f"item {i}")
    for i in range(len(full)):
        np.testing.assert_array_equal(dropping[i].numpy(), full[i], err_msg=f"item {i}")


def test_whole_recordings_labels_and_representations(recordings: list[str]) -> None:
    labels = {path: i * 10 for i, path in enumerate(recordings)}
    dataset = EventDataset(recordings, labels=labels)  # the sensor size from each header
    assert len(dataset) == len(recordings)
    for i, path in enumerate(recordings[:2]):
        tensor, label = dataset[i]
        assert label == i * 10
        np.testing.assert_array_equal(tensor.numpy(), _counts(aerflow.read(path)))
    voxels = EventDataset(
        recordings[0],
        "20ms",
        representation="voxel",
        bins=3,
        sensor_size=(WIDTH, HEIGHT),
        labels=lambda path: Path(path).suffix,
    )
    tensor, label = voxels[0]
    assert tensor.shape == (3, 2, HEIGHT, WIDTH)
    assert label == ".raw"
    merged = EventDataset(
        recordings[0], "20ms", merge_polarity=True, dtype="int32", sensor_size=(WIDTH, HEIGHT)
    )
    events = aerflow.read(recordings[0])
    t0 = int(events["t"][0])
    chosen = events[(events["t"] >= t0 + 20_000) & (events["t"] < t0 + 40_000)]
    assert merged[1].dtype == torch.int32
    np.testing.assert_array_equal(merged[1].numpy(), _counts(chosen).sum(0, keepdims=True))
    with pytest.raises(IndexError):
        merged[len(merged)]
    assert torch.equal(merged[-1], merged[len(merged) - 1])


def _batches(loader: DataLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_match_single_process(recordings: list[str], context: str) -> None:
    dataset = EventDataset(recordings, "15ms", sensor_size=(WIDTH, HEIGHT), labels=[0, 1, 2])
    single = _batches(DataLoader(dataset, batch_size=4, num_workers=0))
    workers = _batches(
        DataLoader(
            dataset, batch_size=4, num_workers=2, multiprocessing_context=context, timeout=300
        )
    )
    assert len(workers) == len(single) == -(-len(dataset) // 4)
    for (x1, y1), (x2, y2) in zip(single, workers, strict=True):
        assert x1.shape[1:] == (2, HEIGHT, WIDTH)
        assert torch.equal(x1, x2)
        assert torch.equal(y1, y2)


def test_distributed_sampler_partitions_indices(recordings: list[str]) -> None:
    dataset = EventDataset(recordings, events=5_000, sensor_size=(WIDTH, HEIGHT))
    shares = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        indices = list(sampler)
        assert len(indices) == -(-len(dataset) // 2)
        shares.append(indices)
        loader = DataLoader(dataset, batch_size=1, sampler=sampler)
        for index, batch in zip(indices[:3], loader, strict=False):
            assert torch.equal(batch[0], dataset[index])
    union = set(shares[0]) | set(shares[1])
    assert union == set(range(len(dataset)))
    overlap = len(shares[0]) + len(shares[1]) - len(union)
    assert overlap == len(dataset) % 2  # the sampler pads an odd count with one repeat


def test_pickles_without_open_files(recordings: list[str]) -> None:
    dataset = EventDataset(recordings, "30ms", sensor_size=(WIDTH, HEIGHT))
    first = dataset[0]
    data = pickle.dumps(dataset)
    assert len(data) < 100_000  # paths and index, not decoded events
    again = pickle.loads(data)
    assert len(again) == len(dataset)
    assert torch.equal(again[0], first)


def test_corrupted_file_is_named(tmp_path: Path, recordings: list[str]) -> None:
    events = rotating_bar(WIDTH, HEIGHT, 50_000, seed=9)
    good = tmp_path / "good.aedat4"
    aerflow.write(good, events, width=WIDTH, height=HEIGHT)
    data = bytearray(good.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 2048] = b"\xff" * 2048
    bad = tmp_path / "broken.aedat4"
    bad.write_bytes(bytes(data))
    dataset = EventDataset([recordings[0], os.fspath(bad)], "10ms")
    with pytest.raises(aerflow.FormatError, match=r"broken\.aedat4"):
        len(dataset)
    whole = EventDataset([recordings[0], os.fspath(bad)])
    assert len(whole) == 2  # no index to build
    with pytest.raises(aerflow.FormatError, match=r"broken\.aedat4"):
        whole[1]


def test_arguments_are_checked(recordings: list[str]) -> None:
    with pytest.raises(ValueError, match="at most one"):
        EventDataset(recordings, "10ms", events=10)
    with pytest.raises(ValueError, match="2 labels for 3 files"):
        EventDataset(recordings, labels=[0, 1])
    with pytest.raises(ValueError, match="unknown representation"):
        EventDataset(recordings, representation="nope")
    with pytest.raises(FileNotFoundError):
        EventDataset(os.fspath(Path(recordings[0]).parent / "*.none"))
