"""aerflow.dask.read_events: event files as a Dask DataFrame, checked against aerflow.read."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import aerflow
import aerflow.dask
from aerflow.synthetic import rotating_bar

dask = pytest.importorskip("dask")
pytest.importorskip("dask.dataframe")

WIDTH, HEIGHT = 160, 120

# Word formats (decoded from a checkpoint mid-file) and the others (decoded from the start).
FORMATS = {
    "evt3": "a.raw",
    "evt2": "b.raw",
    "dat": "c.dat",
    "es": "d.es",
    "aedat2": "e.aedat",
    "aedat4": "f.aedat4",
    "hdf5": "g.h5",
    "npy": "h.npy",
    "csv": "i.csv",
    "aedat3": "j.aedat",
    "evt21": "k.raw",
}


def _events(seed: int, shift: int) -> np.ndarray:
    events = rotating_bar(WIDTH, HEIGHT, 60_000, seed=seed)
    events["t"] += np.uint64(shift)
    return events


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One recording per format, all starting near time 0 (they overlap in time)."""
    folder = tmp_path_factory.mktemp("dask_events")
    paths = []
    for seed, (format, name) in enumerate(FORMATS.items()):
        path = folder / name
        aerflow.write(path, _events(seed, 0), format=format, width=WIDTH, height=HEIGHT)
        paths.append(os.fspath(path))
    return paths


def _concatenated(paths: list[str]) -> np.ndarray:
    return np.concatenate([aerflow.read(path) for path in paths])


@pytest.mark.parametrize("chunk_events", [7_000, 1 << 30])
def test_equals_concatenated_reads(recordings: list[str], chunk_events: int) -> None:
    frame = aerflow.dask.read_events(recordings, chunk_events=chunk_events)
    expected = _concatenated(recordings)
    got = frame.compute()
    assert list(got.columns) == ["t", "x", "y", "on", "file"]
    assert len(got) == len(expected)
    for name, dtype in (("t", np.uint64), ("x", np.uint16), ("y", np.uint16), ("on", np.bool_)):
        column = got[name].to_numpy()
        assert column.dtype == dtype, name
        np.testing.assert_array_equal(column, expected[name], err_msg=name)
    lengths = [len(aerflow.read(path)) for path in recordings]
    np.testing.assert_array_equal(
        got["file"].astype(str).to_numpy(), np.repeat(recordings, lengths)
    )
    assert list(got["file"].cat.categories) == recordings
    np.testing.assert_array_equal(got.index.to_numpy(), expected["t"])  # index="time"
    if chunk_events < 1 << 30:
        # Several partitions per file, each a piece of one file.
        assert frame.npartitions > 2 * len(recordings)
        sizes = frame.map_partitions(len).compute().tolist()
        assert max(sizes) < 2 * chunk_events
    else:
        assert frame.npartitions == len(recordings)


def test_column_subset_and_glob(recordings: list[str]) -> None:
    folder = Path(recordings[0]).parent
    frame = aerflow.dask.read_events(os.fspath(folder / "*.raw"), columns=["x", "on"])
    raws = sorted(path for path in recordings if path.endswith(".raw"))
    expected = _concatenated(raws)
    got = frame.compute()
    assert list(got.columns) == ["x", "on"]
    np.testing.assert_array_equal(got["x"].to_numpy(), expected["x"])
    np.testing.assert_array_equal(got["on"].to_numpy(), expected["on"])


def test_many_files_leave_categories_unknown(
    monkeypatch: pytest.MonkeyPatch, recordings: list[str]
) -> None:
    monkeypatch.setattr(aerflow.dask, "KNOWN_CATEGORIES_MAX_FILES", 2)
    frame = aerflow.dask.read_events(recordings[:3], columns=["x", "file"], chunk_events=9_000)
    assert not frame.file.cat.known
    got = frame.compute()
    lengths = [len(aerflow.read(path)) for path in recordings[:3]]
    np.testing.assert_array_equal(
        got["file"].astype(str).to_numpy(), np.repeat(recordings[:3], lengths)
    )
    sizes = frame.groupby("file", observed=True).size().compute()
    assert {str(k): int(v) for k, v in sizes.items()} == dict(
        zip(recordings[:3], lengths, strict=True)
    )


def test_files_without_events(tmp_path: Path, recordings: list[str]) -> None:
    empty = tmp_path / "empty.raw"
    aerflow.write(empty, np.zeros(0, aerflow.EVENTS_DTYPE), format="evt3", width=8, height=8)
    frame = aerflow.dask.read_events([os.fspath(empty), recordings[0]])
    assert frame.npartitions == 1
    np.testing.assert_array_equal(frame.compute()["t"].to_numpy(), aerflow.read(recordings[0])["t"])
    alone = aerflow.dask.read_events(empty).compute()
    assert len(alone) == 0
    assert list(alone.columns) == ["t", "x", "y", "on", "file"]


def test_per_pixel_counts_equal_numpy(recordings: list[str]) -> None:
    frame = aerflow.dask.read_events(recordings, columns=["x", "y", "on"], chunk_events=20_000)
    counts = frame.groupby(["x", "y"]).size().compute()
    expected = np.zeros((HEIGHT, WIDTH), np.int64)
    for path in recordings:
        events = aerflow.read(path)
        np.add.at(expected, (events["y"].astype(np.intp), events["x"].astype(np.intp)), 1)
    got = np.zeros((HEIGHT, WIDTH), np.int64)
    xs = counts.index.get_level_values("x").to_numpy().astype(np.intp)
    ys = counts.index.get_level_values("y").to_numpy().astype(np.intp)
    got[ys, xs] = counts.to_numpy()
    np.testing.assert_array_equal(got, expected)
    # ON events per pixel, through a filter and a reduction on the workers.
    on = frame[frame.on].groupby(["x", "y"]).size().compute()
    total_on = sum(int(aerflow.read(path)["on"].sum()) for path in recordings)
    assert int(on.sum()) == total_on


def _check_divisions(frame: object, expected_t: np.ndarray) -> None:
    assert frame.known_divisions  # type: ignore[attr-defined]
    divisions = [int(d) for d in frame.divisions]  # type: ignore[attr-defined]
    assert divisions[0] == int(expected_t.min())
    assert divisions[-1] == int(expected_t.max())
    spans = dask.compute(
        *[
            dask.delayed(lambda part: (int(part.index.min()), int(part.index.max())))(piece)
            for piece in frame.to_delayed()  # type: ignore[attr-defined]
        ]
    )
    for i, (low, high) in enumerate(spans):
        assert low == divisions[i]
        # Dask's rule: partition i holds divisions[i] <= index < divisions[i + 1] (the last
        # one up to and including the last division).
        if i + 1 < len(spans):
            assert high < divisions[i + 1]
        else:
            assert high == divisions[-1]


def test_divisions_of_one_file(recordings: list[str]) -> None:
    path = recordings[0]
    frame = aerflow.dask.read_events(path, chunk_events=5_000)
    expected = aerflow.read(path)
    assert frame.npartitions > 3
    _check_divisions(frame, expected["t"])
    # Time selection with the divisions: only the partitions concerned are read.
    low, high = int(expected["t"][len(expected) // 3]), int(expected["t"][len(expected) // 2])
    selected = frame.loc[low:high]
    assert selected.npartitions < frame.npartitions
    got = selected.compute()
    keep = (expected["t"] >= low) & (expected["t"] <= high)
    np.testing.assert_array_equal(got["t"].to_numpy(), expected["t"][keep])
    np.testing.assert_array_equal(got["x"].to_numpy(), expected["x"][keep])


def test_cuts_never_split_a_time(tmp_path: Path) -> None:
    # 40 events share every time: a cut at a multiple of 1000 events must move.
    n = 50_000
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = 1_000 + (np.arange(n) // 40) * 3
    events["x"] = np.arange(n) % WIDTH
    events["y"] = (np.arange(n) // WIDTH) % HEIGHT
    events["on"] = np.arange(n) % 3 == 0
    path = tmp_path / "ties.raw"
    aerflow.write(path, events, format="evt3", width=WIDTH, height=HEIGHT)
    frame = aerflow.dask.read_events(path, chunk_events=1_010)
    got = frame.compute()
    np.testing.assert_array_equal(got["t"].to_numpy(), events["t"])
    np.testing.assert_array_equal(got["y"].to_numpy(), events["y"])
    sizes = frame.map_partitions(len).compute().tolist()
    assert all(size % 40 == 0 for size in sizes[:-1])  # each ends with a whole time
    assert all(1_010 <= size < 1_010 + 40 for size in sizes[:-1])
    _check_divisions(frame, events["t"])


def test_divisions_across_files(tmp_path: Path) -> None:
    # Files that follow each other in time: known divisions over all of them.
    paths = []
    for i in range(3):
        path = tmp_path / f"part{i}.raw"
        aerflow.write(path, _events(i, i * 100_000), format="evt3", width=WIDTH, height=HEIGHT)
        paths.append(os.fspath(path))
    frame = aerflow.dask.read_events(paths, chunk_events=8_000)
    expected = _concatenated(paths)
    _check_divisions(frame, expected["t"])
    # Files side by side in time (the same span): no sorted time index exists.
    other = tmp_path / "overlapping.raw"
    aerflow.write(other, _events(7, 0), format="evt3", width=WIDTH, height=HEIGHT)
    overlapping = aerflow.dask.read_events([*paths, os.fspath(other)], chunk_events=8_000)
    assert not overlapping.known_divisions
    # The event-number index is sorted over any files.
    by_event = aerflow.dask.read_events(
        [*paths, os.fspath(other)], chunk_events=8_000, index="event"
    )
    assert by_event.known_divisions
    all_events = _concatenated([*paths, os.fspath(other)])
    assert by_event.divisions[0] == 0
    assert by_event.divisions[-1] == len(all_events) - 1
    got = by_event.loc[30_000:45_000].compute()
    np.testing.assert_array_equal(got.index.to_numpy(), np.arange(30_000, 45_001))
    np.testing.assert_array_equal(got["x"].to_numpy(), all_events["x"][30_000:45_001])


def test_corrupted_file_is_named(tmp_path: Path, recordings: list[str]) -> None:
    good = recordings[5]  # the AEDAT 4 file: its packets are LZ4-compressed
    assert good.endswith(".aedat4")
    data = bytearray(Path(good).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = b"\xff" * 4096
    bad = tmp_path / "broken.aedat4"
    bad.write_bytes(bytes(data))
    with pytest.raises(aerflow.FormatError, match=r"broken\.aedat4") as caught:
        aerflow.dask.read_events([recordings[0], os.fspath(bad)])
    assert caught.value.path == os.fspath(bad)


def test_one_partition_per_file_without_index(tmp_path: Path, recordings: list[str]) -> None:
    frame = aerflow.dask.read_events(recordings, chunk_events=None, index=None)
    assert frame.npartitions == len(recordings)
    assert not frame.known_divisions
    got = frame.compute()
    expected = _concatenated(recordings)
    for name in ("t", "x", "y", "on"):
        np.testing.assert_array_equal(got[name].to_numpy(), expected[name], err_msg=name)
    # Nothing is decoded up front: a broken file fails at compute time, named.
    bad = tmp_path / "broken.aedat4"
    data = bytearray(Path(recordings[5]).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    bad.write_bytes(bytes(data))
    lazy = aerflow.dask.read_events([recordings[0], os.fspath(bad)], chunk_events=None, index=None)
    with pytest.raises(aerflow.FormatError, match=r"broken\.aedat4"):
        lazy.compute()


def test_partitions_are_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "later.dat"
    events = _events(3, 0)
    aerflow.write(path, events, format="dat", width=WIDTH, height=HEIGHT)
    frame = aerflow.dask.read_events(path, chunk_events=10_000)
    # The graph holds plain values (paths, positions), no open file: it pickles.
    graph = frame.__dask_graph__()
    assert len(pickle.dumps(dict(graph))) < 1_000_000
    # The data is read when computed: a file changed since indexing is refused, named.
    aerflow.write(path, events[: len(events) // 2], format="dat", width=WIDTH, height=HEIGHT)
    with pytest.raises(aerflow.FormatError, match=r"later\.dat"):
        frame.compute()


def test_missing_file_or_pattern(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file matches"):
        aerflow.dask.read_events(os.fspath(tmp_path / "*.raw"))
    with pytest.raises(FileNotFoundError, match=r"absent\.raw"):
        aerflow.dask.read_events(tmp_path / "absent.raw")


def test_without_dask_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, recordings: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    with pytest.raises(ImportError, match=r"aerflow\[batch\]") as caught:
        aerflow.dask.read_events(recordings[0])
    assert isinstance(caught.value, aerflow.AerflowError)


def test_on_a_distributed_cluster(recordings: list[str]) -> None:
    """Worker processes read the partitions (everything they get is pickled)."""
    distributed = pytest.importorskip("distributed")
    # Generous start-up limits: the worker process may start slowly on a loaded machine.
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "120s"}),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            timeout="120s",
            death_timeout="120s",
        ) as cluster,
        distributed.Client(cluster, timeout="120s") as client,
    ):
        frame = aerflow.dask.read_events(recordings[:4], chunk_events=10_000)
        counts = client.compute(frame.groupby("file", observed=True).size()).result(timeout=300)
    expected = {path: len(aerflow.read(path)) for path in recordings[:4]}
    assert {str(k): int(v) for k, v in counts.items()} == expected
