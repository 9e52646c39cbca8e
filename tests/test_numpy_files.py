""".npy and .npz: every accepted layout, memory-mapped chunking, round trips, bad arrays."""

from __future__ import annotations

import io
import itertools
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry
from aerflow.formats import numpy_files

from .helpers import assert_same_events, deadline

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EVENTS = np.array(
    [(0, 30, 134, False), (780, 158, 59, True), (1706, 84, 25, True), (5748, 181, 74, False)]
    + [(6000 + k, k % 640, k % 480, bool(k % 3)) for k in range(40)],
    dtype=aerflow.EVENTS_DTYPE,
)

# The layouts of docs/formats/text.md ("Array layouts of other tools"), and a few more.
LAYOUTS: dict[str, list[tuple[Any, ...]]] = {
    "aerflow/faery (on titled p)": [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), (("p", "on"), "?")],
    "aedat/event_stream (on)": [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")],
    "event_stream (p)": [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")],
    "expelliarmus packed": [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")],
    "tonic": [("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")],
    "metavision": [("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")],
    "big endian": [("t", ">u8"), ("x", ">u2"), ("y", ">u2"), ("polarity", ">i2")],
}


def layout(name: str) -> np.dtype[Any]:
    return np.dtype(LAYOUTS[name])


def convert(events: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    out = np.zeros(len(events), dtype)
    names = dtype.names
    assert names is not None
    for name in names:
        source = {"timestamp": "t", "p": "on", "polarity": "on", "on": "on"}.get(name, name)
        out[name] = events[source]
    return out


def aligned(fields: list[tuple[Any, ...]]) -> np.dtype[Any]:
    return np.dtype(fields, align=True)


def collect(path: Path, **options: Any) -> tuple[np.ndarray, list[int]]:
    with aerflow.open(path, **options) as reader:
        parts = [p.events for p in reader]
    sizes = [len(p) for p in parts]
    events = np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)
    return events, sizes


# --------------------------------------------------------------------------- #
# .npy layouts                                                                #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_structured_layouts(name: str, tmp_path: Path) -> None:
    path = tmp_path / "events.npy"
    np.save(path, convert(EVENTS, layout(name)))
    assert registry.detect(path).name == "npy"
    assert_same_events(aerflow.read(path), EVENTS)
    events, sizes = collect(path, chunk_events=10)
    assert sizes == [10, 10, 10, 10, 4]
    assert_same_events(events, EVENTS)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("expelliarmus aligned", [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")]),
        ("dv-processing", [("timestamp", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "i1")]),
    ],
)
def test_aligned_layouts(name: str, fields: list[tuple[Any, ...]], tmp_path: Path) -> None:
    dtype = aligned(fields)
    assert dtype.itemsize == 16, name
    path = tmp_path / "aligned.npy"
    np.save(path, convert(EVENTS, dtype))
    assert_same_events(aerflow.read(path), EVENTS)
    assert_same_events(collect(path, chunk_events=7)[0], EVENTS)


@pytest.mark.parametrize("dtype", ["<u8", "<i4", "<f8", ">i8", "<f4"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_two_dimensional_arrays(dtype: str, order: str, tmp_path: Path) -> None:
    small = EVENTS[EVENTS["t"] < 1 << 24]  # exact in float32
    table = np.stack([small["x"], small["y"], small["on"], small["t"]], axis=1).astype(dtype)
    path = tmp_path / "table.npy"
    np.save(path, np.asarray(table, order=order))
    assert_same_events(aerflow.read(path, columns="x,y,p,t"), small)
    assert_same_events(collect(path, chunk_events=3, columns=("x", "y", "p", "t"))[0], small)
    np.save(path, np.asarray(table.astype(np.float64) + 0.5, order=order))
    with pytest.raises(aerflow.FormatError, match=r"item 0: t = 0\.5 is not an integer"):
        aerflow.read(path, columns="x,y,p,t")


def test_memory_mapped_and_copied_out(tmp_path: Path) -> None:
    events = np.zeros(100_000, aerflow.EVENTS_DTYPE)
    events["t"] = np.arange(len(events))
    events["x"] = np.arange(len(events)) % 640
    path = tmp_path / "large.npy"
    np.save(path, events)
    with aerflow.open(path, chunk_events=1 << 14) as reader:
        assert isinstance(reader, numpy_files.NpyReader)
        assert isinstance(reader._array, np.memmap)  # bounded memory: nothing read up front
        assert reader.properties.event_count == len(events)
        packets = list(reader)
    assert [len(p) for p in packets] == [1 << 14] * 6 + [len(events) - 6 * (1 << 14)]
    for packet in packets:
        assert packet.events.flags.writeable  # each packet owns its events
        assert not isinstance(packet.events.base, np.memmap)
    assert_same_events(np.concatenate([p.events for p in packets]), events)


def test_empty_arrays(tmp_path: Path) -> None:
    path = tmp_path / "empty.npy"
    np.save(path, EVENTS[:0])
    assert len(aerflow.read(path)) == 0
    assert collect(path)[1] == []
    np.save(path, np.zeros((0, 4), np.int64))
    assert len(aerflow.read(path)) == 0


# --------------------------------------------------------------------------- #
# .npy writing                                                                #
# --------------------------------------------------------------------------- #


def test_npy_round_trip_in_pieces(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "written.npy"
    triggers = np.array([(5, 1, True)], aerflow.TRIGGERS_DTYPE)
    with caplog.at_level(logging.WARNING), aerflow.open(path, "w") as writer:
        writer.write(EVENTS[:10])
        writer.write(convert(EVENTS[10:30], layout("tonic")))
        writer.write(aerflow.Packet(EVENTS[30:], triggers))
        assert not path.exists()
    assert "1 triggers not written" in caplog.text
    loaded = np.load(path)
    assert loaded.dtype == aerflow.EVENTS_DTYPE
    assert_same_events(loaded, EVENTS)
    assert_same_events(aerflow.read(path), EVENTS)
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        assert version == (1, 0)
        np.lib.format.read_array_header_1_0(handle)
        assert handle.tell() % 64 == 0  # data aligned like numpy's own files


def test_npy_empty_and_aborted(tmp_path: Path) -> None:
    path = tmp_path / "nothing.npy"
    with aerflow.open(path, "w"):
        pass
    assert np.load(path).shape == (0,)

    def fail() -> None:
        with aerflow.open(tmp_path / "aborted.npy", "w") as writer:
            writer.write(EVENTS)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nothing.npy"]


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 2**64 - 1),
            st.integers(0, 65535),
            st.integers(0, 65535),
            st.booleans(),
        ),
        max_size=50,
    ),
    cuts=st.lists(st.integers(0, 50), max_size=4),
    chunk=st.integers(1, 20),
    archive=st.booleans(),
)
def test_round_trip(
    rows: list[tuple[int, int, int, bool]],
    cuts: list[int],
    chunk: int,
    archive: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    events = np.array(rows, aerflow.EVENTS_DTYPE)
    path = tmp_path_factory.mktemp("round") / ("events.npz" if archive else "events.npy")
    bounds = [0, *sorted(c for c in cuts if c <= len(events)), len(events)]
    with aerflow.open(path, "w") as writer:
        for start, stop in itertools.pairwise(bounds):
            writer.write(events[start:stop])
    assert_same_events(aerflow.read(path), events)
    read, sizes = collect(path, chunk_events=chunk)
    assert_same_events(read, events)
    assert all(size == chunk for size in sizes[:-1])


# --------------------------------------------------------------------------- #
# .npz                                                                        #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_events_and_triggers(compressed: bool, tmp_path: Path) -> None:
    path = tmp_path / "archive.npz"
    triggers = np.array([(700, 1, True), (2000, 1, False), (9999, 2, True)], aerflow.TRIGGERS_DTYPE)
    save = np.savez_compressed if compressed else np.savez
    save(path, events=convert(EVENTS, layout("tonic")), triggers=triggers)
    assert registry.detect(path).name == "npz"
    packet = aerflow.read(path, triggers=True)
    assert_same_events(packet.events, EVENTS)
    assert packet.triggers.tolist() == triggers.tolist()
    with aerflow.open(path, chunk_events=2) as reader:
        packets = list(reader)
    # Triggers travel with the events they precede.
    assert [len(p.triggers) for p in packets[:3]] == [1, 1, 0]
    assert sum(len(p.triggers) for p in packets) == 3
    assert packets[-1].triggers.tolist() == [(9999, 2, True)]


@pytest.mark.parametrize(
    ("names", "dtypes"),
    [
        (("t", "x", "y", "p"), ("<i8", "<i2", "<i2", "i1")),
        (("timestamp", "x", "y", "polarity"), ("<u8", "<u2", "<u2", "?")),
        (("t", "x", "y", "on"), ("<f8", "<i4", "<i4", "<i4")),
    ],
)
def test_npz_separate_arrays(
    names: tuple[str, ...], dtypes: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "columns.npz"
    arrays = {
        name: EVENTS[field].astype(dtype)
        for name, field, dtype in zip(names, ("t", "x", "y", "on"), dtypes, strict=True)
    }
    if names[3] == "p":
        arrays["p"] = np.where(EVENTS["on"], 1, -1).astype("i1")  # -1/+1 polarity
    np.savez(path, **arrays)
    assert_same_events(aerflow.read(path), EVENTS)
    events, sizes = collect(path, chunk_events=16)
    assert sizes == [16, 16, 12]
    assert_same_events(events, EVENTS)


def test_npz_single_unnamed_array_and_2d(tmp_path: Path) -> None:
    path = tmp_path / "unnamed.npz"
    np.savez(path, EVENTS)
    assert_same_events(aerflow.read(path), EVENTS)
    table = np.stack([EVENTS["t"], EVENTS["x"], EVENTS["y"], EVENTS["on"]], axis=1)
    np.savez(path, events=table)
    assert_same_events(aerflow.read(path), EVENTS)


def test_npz_writer(tmp_path: Path) -> None:
    path = tmp_path / "written.npz"
    triggers = np.array([(5, 1, True), (6000, 3, False)], aerflow.TRIGGERS_DTYPE)
    aerflow.write(path, aerflow.Packet(EVENTS, triggers), width=640, height=480)
    with np.load(path) as archive:
        assert sorted(archive.files) == ["events", "sensor_size", "triggers"]
        assert archive["events"].dtype == aerflow.EVENTS_DTYPE
        assert archive["sensor_size"].tolist() == [640, 480]
        assert archive["triggers"].tolist() == triggers.tolist()
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert reader.properties.event_count == len(EVENTS)
        packet = reader.read()
    assert_same_events(packet.events, EVENTS)
    assert packet.triggers.tolist() == triggers.tolist()
    compressed = tmp_path / "compressed.npz"
    with aerflow.open(compressed, "w", compress=True) as writer:
        writer.write(EVENTS)
    with zipfile.ZipFile(compressed) as archive:
        assert archive.getinfo("events.npy").compress_type == zipfile.ZIP_DEFLATED
    assert_same_events(aerflow.read(compressed), EVENTS)


# --------------------------------------------------------------------------- #
# Bad arrays                                                                  #
# --------------------------------------------------------------------------- #


def save_raw(path: Path, array: np.ndarray) -> Path:
    np.save(path, array, allow_pickle=True)
    return path


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([[1, 2, 3, 1], [4, 5, 6]], dtype=object), "Python objects"),
        (np.arange(10), "2-D with 4 columns"),
        (np.zeros((5, 3)), "2-D with 4 columns"),
        (np.zeros((2, 5, 4)), "2-D with 4 columns"),
        (np.zeros(3, [("t", "<u8"), ("x", "<u2")]), "expected t"),
        (np.zeros((2, 2), aerflow.EVENTS_DTYPE), "one dimension"),
        (np.array([["a", "b", "c", "d"]]), "expected numbers"),
    ],
)
def test_bad_arrays(array: np.ndarray, message: str, tmp_path: Path) -> None:
    path = save_raw(tmp_path / "bad.npy", array)
    with pytest.raises(aerflow.FormatError, match=message) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("x", -3, "x = -3"), ("y", 70000, "y = 70000"), ("t", -1, "t = -1")],
)
def test_bad_values_are_located(field: str, value: int, message: str, tmp_path: Path) -> None:
    array = convert(EVENTS, np.dtype([("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", "i1")]))
    array[field][17] = value
    path = save_raw(tmp_path / "values.npy", array)
    with pytest.raises(aerflow.FormatError, match=message) as info:
        aerflow.read(path)
    assert "item 17" in str(info.value)
    with path.open("rb") as handle:
        np.lib.format.read_magic(handle)
        np.lib.format.read_array_header_1_0(handle)
        data_offset = handle.tell()
    assert info.value.offset == data_offset + 17 * array.dtype.itemsize
    with (
        pytest.raises(aerflow.FormatError, match="item 17"),
        aerflow.open(path, chunk_events=5) as r,
    ):
        list(r)


def test_truncated_npy_gives_complete_items(tmp_path: Path) -> None:
    path = tmp_path / "cut.npy"
    np.save(path, EVENTS)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # one whole item and 7 bytes of another
    with pytest.warns(aerflow.TruncatedDataWarning, match="holds 42 whole"):
        events = aerflow.read(path)
    assert_same_events(events, EVENTS[:42])
    table = np.stack([EVENTS["t"], EVENTS["x"], EVENTS["y"], EVENTS["on"]], axis=1)
    np.save(path, np.asfortranarray(table))
    data = path.read_bytes()
    path.write_bytes(data[:-8])
    with pytest.raises(aerflow.FormatError, match="ends before"):
        aerflow.read(path)


@pytest.mark.parametrize(
    "data",
    [
        b"\x93NUMPY",
        b"\x93NUMPY\x01\x00",
        b"\x93NUMPY\x01\x00\x20\x00{'descr': '<u8'",
        b"\x93NUMPY\x09\x00\x10\x00" + b" " * 16,
        b"\x93NUMPY\x01\x00\x10\x00{'descr': 5}    ",
        b"\x93NUMPY\x01\x00\x30\x00{'descr': '<i8', 'fortran_order': 1, 'shape': (-1,)}",
        b"\x93NUMPY\x01\x00\x18\x00__import__('os')       ",
    ],
)
def test_corrupt_npy_headers(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.npy"
    path.write_bytes(data)
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset is not None


def test_npz_bad_archives(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, image=np.zeros((4, 4)), labels=np.arange(3))
    with pytest.raises(aerflow.NotThisFormatError, match="'image', 'labels'"):
        aerflow.read(path)
    np.savez(path, t=np.arange(5), x=np.arange(5), y=np.arange(4), p=np.ones(5))
    with pytest.raises(aerflow.FormatError, match=r"t \(5\), x \(5\), y \(4\), p \(5\) differ"):
        aerflow.read(path)
    np.savez(path, t=np.arange(4), x=np.arange(4), y=np.zeros((4, 1)), p=np.ones(4))
    with pytest.raises(aerflow.FormatError, match="1-D array of numbers"):
        aerflow.read(path)
    np.savez(path, events=np.array([np.arange(3), np.arange(2)], dtype=object))
    with pytest.raises(aerflow.FormatError, match="Python objects"):
        aerflow.read(path)
    np.savez(path, events=EVENTS, sensor_size=np.array([0, 5]))
    with pytest.raises(aerflow.FormatError, match="sensor size"):
        aerflow.read(path)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(aerflow.NotThisFormatError):
        aerflow.read(path)
    path.write_bytes(b"t,x,y,on\n1,2,3,1\n")  # contents win over the extension
    assert aerflow.read(path).tolist() == [(1, 2, 3, True)]


def test_npz_damaged_member(tmp_path: Path) -> None:
    path = tmp_path / "damaged.npz"
    np.savez(path, events=EVENTS)
    data = bytearray(path.read_bytes())
    position = data.index(np.ascontiguousarray(EVENTS[5:6]).tobytes())
    data[position] ^= 0xFF  # a flipped byte inside the stored member: its CRC fails
    path.write_bytes(bytes(data))
    with pytest.raises(aerflow.FormatError, match="damaged"):
        aerflow.read(path)


@SETTINGS
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", b"\x93NUMPY\x01\x00"]))
def test_random_bytes_never_crash(
    data: bytes, prefix: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.getbasetemp()
    for suffix, fmt in ((".npy", "npy"), (".npz", "npz")):
        path = directory / f"random{suffix}"
        path.write_bytes(prefix + data)
        with deadline(20), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with aerflow.open(path, format=fmt) as reader:
                    for packet in reader:
                        assert packet.events.dtype == aerflow.EVENTS_DTYPE
            except aerflow.FormatError:
                pass


def test_npy_written_to_a_stream_of_bytes_matches_numpy(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    aerflow.write(path, EVENTS)
    ours = path.read_bytes()
    theirs = io.BytesIO()
    np.save(theirs, EVENTS)
    data_offset = len(ours) - EVENTS.nbytes
    assert ours[data_offset:] == theirs.getvalue()[-EVENTS.nbytes :]


def test_chunk_size_counts_bytes_and_chunk_events_counts_events(tmp_path: Path) -> None:
    """One meaning per name in every format: chunk_size is bytes, chunk_events events."""
    path = tmp_path / "e.npy"
    aerflow.write(path, EVENTS)
    by_bytes = collect(path, chunk_size=13 * 4)[1]
    by_events = collect(path, chunk_events=4)[1]
    assert by_bytes == by_events
    assert set(by_events[:-1]) == {4}
    with pytest.raises(ValueError, match="not both"):
        aerflow.open(path, chunk_size=52, chunk_events=4)
