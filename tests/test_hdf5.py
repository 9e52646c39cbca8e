"""Prophesee HDF5 files with the ECF codec (shared/specs/hdf5-ecf.md).

The oracles: the MANIFEST digests of the two reference files (written with the official
codec), their stored chunk bytes and OpenEB-made seek tables, the worked examples of the
spec, and the plain-Python reference codec in tests/reference/ecf.py, written from the spec
alone and checked there against the official codec.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.formats import _ecf
from aerflow.formats.hdf5 import Hdf5NotInstalledError, Hdf5Reader

from .helpers import assert_same_events, assert_same_triggers, deadline
from .reference import ecf as ref

h5py = pytest.importorskip("h5py", reason="h5py not installed (pip install -e '.[hdf5]')")

REFERENCE_FILES = ("hdf5/evt2_gen3_2020-09-14_ecf.hdf5", "hdf5/evt3_gen41_5000_ecf.hdf5")
SOURCES = {
    "hdf5/evt2_gen3_2020-09-14_ecf.hdf5": "evt2/evt2_gen3_2020-09-14.raw",
    "hdf5/evt3_gen41_5000_ecf.hdf5": "evt3/expelliarmus_evt3_gen41_2020-09-14.raw",
}
CD = np.dtype(
    {
        "names": ["x", "y", "p", "t"],
        "formats": ["<u2", "<u2", "<i2", "<i8"],
        "offsets": [0, 2, 4, 8],
        "itemsize": 16,
    }
)


def tuples(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(t), int(x), int(y), int(p)) for t, x, y, p in events[["t", "x", "y", "on"]]]


def as_events(decoded: list[tuple[int, int, int, int]]) -> np.ndarray:
    events = np.zeros(len(decoded), aerflow.EVENTS_DTYPE)
    if decoded:
        t, x, y, p = zip(*decoded, strict=True)
        events["t"], events["x"], events["y"], events["on"] = t, x, y, np.asarray(p) > 0
    return events


def kernel_encode(events: np.ndarray) -> bytes:
    out = np.zeros(_ecf.block_bound(len(events)), np.uint8)
    return out[: _ecf.encode_block(events, 0, len(events), out)].tobytes()


def kernel_decode(
    block: bytes, keep: int | None = None, capacity: int = 65535, size: int = 1 << 16
) -> tuple[int, np.ndarray]:
    count = struct.unpack_from("<I", block)[0] >> 2 if len(block) >= 4 else 0
    keep = min(count, capacity) if keep is None else keep
    events = np.zeros(keep, aerflow.EVENTS_DTYPE)
    status, _, _, n, _ = _ecf.decode_chunks(
        np.frombuffer(block, np.uint8),
        np.array([0]),
        np.array([len(block)]),
        np.array([capacity]),
        np.array([keep]),
        np.array([False]),
        events,
        0,
        size,
        size,
    )
    return status, events[:n]


def camera_rows(n: int, seed: int, width: int = 1280, height: int = 720) -> np.ndarray:
    """Events as sensors read them out: rows of neighbouring x at one time (layout C), with
    scattered rows (A) and scattered x on a row (B) mixed in."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = np.cumsum(rng.choice([0, 0, 0, 1, 2, 14, 15, 16, 700], n)) + 1_000_000
    style = rng.integers(0, 3)
    if style == 0:
        events["y"] = np.repeat(rng.integers(0, height, n // 8 + 1), 8)[:n]
        base = np.repeat(rng.integers(0, width - 8, n // 8 + 1), 8)[:n]
        events["x"] = base + np.arange(n) % 8
    elif style == 1:
        events["y"] = np.repeat(rng.integers(0, height, n // 16 + 1), 16)[:n]
        events["x"] = rng.integers(0, width, n)
    else:
        events["y"] = rng.integers(0, height, n)
        events["x"] = rng.integers(0, width, n)
    events["on"] = rng.integers(0, 2, n).astype(bool)
    return events


# -- the reference files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", REFERENCE_FILES)
@pytest.mark.parametrize("threads", [1, 2])
def test_reference_files_decode_to_their_digests(
    name: str,
    threads: int,
    shared_data: Path,
    manifest: dict[str, Any],
    digest: Callable[[np.ndarray], str],
) -> None:
    entry = manifest[name]
    with aerflow.open(shared_data / name, threads=threads) as reader:
        assert reader.properties.format == "hdf5"
        assert reader.properties.sensor_size == tuple(entry["sensor_size"])
        assert reader.properties.event_count == entry["events"]
        assert reader.properties.time_range == (entry["t_first"], entry["t_last"])
        packet = reader.read()
    assert digest(packet.events) == entry["sha256"]
    assert len(packet.triggers) == entry["triggers"]
    # The same whatever the packet size: one chunk per packet, or several.
    for chunk_size in (1, 100_000):
        with aerflow.open(shared_data / name, chunk_size=chunk_size) as reader:
            parts = [p.events for p in reader]
        assert digest(np.concatenate(parts)) == entry["sha256"]


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reference_chunks_agree_with_the_reference_codec(name: str, shared_data: Path) -> None:
    """Every stored chunk: the kernel decodes what the reference decoder decodes, and both
    encoders give back the stored bytes (the files were written by fresh official encoders)."""
    with h5py.File(shared_data / name, "r") as file:
        dataset = file["CD/events"]
        for offset in range(0, dataset.shape[0], 16384):
            _, stored = dataset.id.read_direct_chunk((offset,))
            stored = bytes(stored)
            expected = ref.decode_block(stored)
            status, decoded = kernel_decode(stored)
            assert status == _ecf.OK
            assert_same_events(decoded, as_events(expected))
            assert ref.encode_block(expected) == stored
            assert kernel_encode(decoded) == stored


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_writing_the_source_recording_gives_the_reference_file(
    name: str, shared_data: Path, tmp_path: Path
) -> None:
    """aerflow writing the RAW recording a reference file was made from gives the same
    chunks, byte for byte, and OpenEB's seek table."""
    events = aerflow.read(shared_data / SOURCES[name])
    out = tmp_path / "out.hdf5"
    aerflow.write(out, events, width=1280, height=720)
    with h5py.File(shared_data / name, "r") as theirs, h5py.File(out, "r") as mine:
        a, b = theirs["CD/events"], mine["CD/events"]
        assert a.shape == b.shape
        assert a.id.get_num_chunks() == b.id.get_num_chunks()
        for offset in range(0, a.shape[0], 16384):
            assert a.id.read_direct_chunk((offset,)) == b.id.read_direct_chunk((offset,))
        assert theirs["CD/indexes"][:].tolist() == mine["CD/indexes"][:].tolist()
        assert theirs["CD/indexes"].attrs["offset"] == mine["CD/indexes"].attrs["offset"]
        assert mine["EXT_TRIGGER/events"].shape == (0,)
        assert "offset" not in mine["EXT_TRIGGER/indexes"].attrs
        plist = b.id.get_create_plist()
        assert [plist.get_filter(i)[:2] for i in range(plist.get_nfilters())] == [(0x8ECF, 1)]
        assert b.chunks == (16384,)
        assert b.maxshape == (None,)
        assert mine.attrs["version"] == "1.0"


def test_metadata_and_properties(shared_data: Path) -> None:
    with aerflow.open(shared_data / REFERENCE_FILES[0]) as reader:
        assert isinstance(reader, Hdf5Reader)
        assert reader.metadata["geometry"] == "640x480"
        assert reader.metadata["format"] == "EVT2;height=480;width=640"
        assert reader.metadata["version"] == "1.0"
        assert reader.metadata["serial_number"] == "30384338"


def test_detection_by_contents(shared_data: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "recording.bin"
    shutil.copy(shared_data / REFERENCE_FILES[1], renamed)
    assert aerflow.registry.detect(renamed).name == "hdf5"
    assert aerflow.registry.for_writing(tmp_path / "x.h5").name == "hdf5"


# -- the spec's worked examples and hand-made blocks ----------------------------------------------


def test_worked_examples() -> None:
    layout_a = [(1000, 5, 10, 1), (1000, 6, 11, 0), (1003, 300, 12, 1), (1020, 7, 13, 1)]
    block_a = bytes.fromhex(
        "12000000 e803000000000000 02 31 f1f1 01 0c0ba000 59c2b000 0fd00000".replace(" ", "")
    )
    layout_c = [(5000, 100 + i, 7, int(i < 5)) for i in range(8)] + [(5040, 10, 8, 0)]
    block_c = bytes.fromhex(
        "24000000 8813000000000000 08f8f201 e8000101 9f0c500d4001 8504".replace(" ", "")
    )
    for events, block in ((layout_a, block_a), (layout_c, block_c)):
        assert ref.encode_block(events) == block
        assert kernel_encode(as_events(events)) == block
        assert ref.decode_block(block) == events
        assert tuples(kernel_decode(block)[1]) == events
    # Layout B: 16 scattered x on row 7; the first group decodes to (3,0) (900,1) (40,0) (77,1).
    xs = [3, 900, 40, 77, 500, 1, 1000, 250, 33, 700, 12, 1500, 90, 2000, 640, 8]
    layout_b = [(0, x, 7, i % 2) for i, x in enumerate(xs)]
    block_b = ref.encode_block(layout_b)
    assert ref.layout_of(block_b) == "B"
    assert block_b[12:15] == bytes.fromhex("0f1000")  # 16 events at t0
    assert block_b[15:17] == bytes.fromhex("f000")  # one y word: row 7, 16 events
    assert block_b[17:23] == bytes.fromhex("69005070 9b00".replace(" ", ""))
    assert kernel_encode(as_events(layout_b)) == block_b
    assert tuples(kernel_decode(block_b)[1]) == layout_b
    # Twenty events sharing one time: a run byte with an escaped count.
    same = [(7, i, 0, 0) for i in range(20)]
    assert kernel_encode(as_events(same))[12:15] == bytes.fromhex("0f1400")
    # An empty block is a 12-byte layout A block.
    assert kernel_encode(as_events([])) == bytes.fromhex("02000000" + "00" * 8)
    assert ref.encode_block([]) == kernel_encode(as_events([]))


def test_backward_time_decodes_as_the_running_maximum() -> None:
    events = [(100, 1, 1, 0), (90, 2, 2, 0), (90, 3, 3, 0), (120, 4, 4, 0)]
    decoded = ref.decode_block(ref.encode_block(events))
    assert [e[0] for e in decoded] == [100, 100, 100, 120]
    assert [e[0] for e in tuples(kernel_decode(ref.encode_block(events))[1])] == [
        100,
        100,
        100,
        120,
    ]


@pytest.mark.parametrize("seed", range(12))
def test_every_layout_kernel_against_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for count in (1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000, 16384):
        events = camera_rows(count, int(rng.integers(1 << 30)), 2048, 2048)
        block = kernel_encode(events)
        assert block == ref.encode_block(tuples(events)), count
        status, decoded = kernel_decode(block)
        assert status == _ecf.OK
        assert_same_events(decoded, events)


@pytest.mark.parametrize("seed", range(6))
def test_many_chunks_in_one_call_decode_in_place_like_the_reference(seed: int) -> None:
    """Blocks of every layout, a filter-skipped raw chunk and a padded last block, decoded by
    one call (each block but the last straight into the output, the last through scratch),
    then again in two calls filling the two halves of one array, the second half first (as
    the reader's threads do): nothing written outside a call's own part, events outside the
    sensor dropped, everything equal to the reference decoder's events."""
    rng = np.random.default_rng(seed)
    stored: list[bytes] = []
    keeps: list[int] = []
    raw: list[bool] = []
    expected: list[tuple[int, int, int, int]] = []
    for c in range(14):
        count = int(rng.choice([1, 2, 3, 4, 5, 7, 17, 64, 1000, 16384]))
        events = camera_rows(count, int(rng.integers(1 << 30)), 2048, 2048)
        keep = count - int(rng.integers(count)) if c == 13 else count  # padding past the end
        if c == 6:
            records = np.zeros(count, CD)
            for name in ("x", "y", "t"):
                records[name] = events[name]
            records["p"] = events["on"]
            stored.append(records.tobytes())
            expected += tuples(events)
        else:
            stored.append(kernel_encode(events))
            expected += ref.decode_block(stored[-1])[:keep]
        keeps.append(keep)
        raw.append(c == 6)
    sizes = np.array([len(s) for s in stored])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    data = np.frombuffer(b"".join(stored), np.uint8)
    keep_array = np.array(keeps)
    arrays = (data, offsets, sizes, np.full(len(keeps), 65535), keep_array, np.array(raw))
    # Sensor edges at coordinates that occur: events on the edge are outside.
    edge_x, edge_y = expected[len(expected) // 3][1], expected[len(expected) // 2][2]
    for width, height in ((2048, 2048), (edge_x, 2048), (2048, edge_y), (edge_x, edge_y)):
        inside = [e for e in expected if e[1] < width and e[2] < height]
        out = np.zeros(sum(keeps), aerflow.EVENTS_DTYPE)
        status, done, _, n, dropped = _ecf.decode_chunks(*arrays, out, 0, width, height)
        assert (status, done, n, dropped) == (_ecf.OK, len(keeps), len(inside), len(out) - n)
        assert_same_events(out[:n], as_events(inside))
    half = len(keeps) // 2
    split = int(keep_array[:half].sum())
    out = np.zeros(sum(keeps), aerflow.EVENTS_DTYPE)
    second = _ecf.decode_chunks(data, *(a[half:] for a in arrays[1:]), out, split, 4096, 4096)
    first = _ecf.decode_chunks(data, *(a[:half] for a in arrays[1:]), out, 0, 4096, 4096)
    assert first[::3] == (_ecf.OK, split)
    assert second[::3] == (_ecf.OK, len(out))
    assert_same_events(out, as_events(expected))


def test_all_three_layouts_are_exercised() -> None:
    seen = {ref.layout_of(kernel_encode(camera_rows(4096, seed, 2048, 2048))) for seed in range(30)}
    assert seen == {"A", "B", "C"}


@pytest.mark.parametrize("seed", range(6))
def test_lossy_blocks_decode_like_the_reference(seed: int) -> None:
    """Blocks the reference encoder makes from what the writer refuses (x up to 4199, y up
    to 4095, p outside 0/1, time stepping back or across zero) decode in the kernel exactly
    as in the reference decoder."""
    rng = np.random.default_rng(seed)
    for count in (1, 5, 31, 300, 5000):
        t = np.cumsum(rng.choice([0, 1, 15, 16, -3, 1 << 40], count)) - 50
        x = np.where(
            rng.random(count) < 0.5, 2040 + np.arange(count) % 12, rng.integers(0, 4200, count)
        )
        y = np.repeat(rng.integers(0, 4096, count // 4 + 1), 4)[:count]
        p = rng.integers(-2, 4, count)
        events = [(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(t, x, y, p, strict=True)]
        block = ref.encode_block(events)
        expected = ref.decode_block(block)
        status, decoded = kernel_decode(block)
        negative = any(e[0] < 0 for e in expected)
        if negative:
            assert status == _ecf.NEGATIVE_TIME
            continue
        assert status == _ecf.OK
        assert_same_events(decoded, as_events(expected))


def test_short_and_oversized_blocks_are_refused() -> None:
    block = kernel_encode(camera_rows(100, 1))
    assert kernel_decode(block, keep=101)[0] == _ecf.TOO_FEW
    assert kernel_decode(block, capacity=99)[0] == _ecf.TOO_MANY
    assert kernel_decode(struct.pack("<I", 65536 << 2) + block[4:])[0] == _ecf.TOO_MANY
    status, decoded = kernel_decode(block, keep=60)  # the rest is padding past the end
    assert status == _ecf.OK
    assert_same_events(decoded, camera_rows(100, 1)[:60])


@pytest.mark.parametrize("seed", range(4))
def test_mutated_blocks_never_crash_or_leave_the_block(seed: int) -> None:
    """Random byte changes, truncations and header changes: a status code, or events whose
    coordinates are what 11 bits (+5 in layout C) can hold; never a crash or a hang."""
    rng = np.random.default_rng(seed)
    blocks = [kernel_encode(camera_rows(n, seed * 10 + n)) for n in (3, 64, 2000)]
    with deadline(120):
        for _ in range(400):
            block = bytearray(blocks[int(rng.integers(len(blocks)))])
            kind = int(rng.integers(4))
            if kind == 0:
                for _ in range(int(rng.integers(1, 6))):
                    block[int(rng.integers(len(block)))] = int(rng.integers(256))
            elif kind == 1:
                del block[int(rng.integers(len(block))) :]
            elif kind == 2:
                block[0:4] = struct.pack("<I", int(rng.integers(0, 1 << 32)))
            else:
                start = int(rng.integers(len(block)))
                block[start:start] = (
                    rng.integers(0, 256, int(rng.integers(1, 40))).astype(np.uint8).tobytes()
                )
            status, decoded = kernel_decode(bytes(block))
            expected: list[tuple[int, int, int, int]] | None
            try:
                expected = ref.decode_block(bytes(block))
            except ref.BlockError:
                expected = None
            if status == _ecf.OK:
                assert int(decoded["x"].max(initial=0)) <= 2052
                assert int(decoded["y"].max(initial=0)) <= 2047
                assert expected is not None
                assert_same_events(decoded, as_events(expected))
            else:
                assert status in _ecf.STATUS_MESSAGES
                if status in (_ecf.ENDS_EARLY, _ecf.RUN_PAST_COUNT, _ecf.LONG_JUMP):
                    assert expected is None


# -- writing and reading files --------------------------------------------------------------------


def write(path: Path, events: np.ndarray, **options: Any) -> None:
    aerflow.write(path, events, format="hdf5", **options)


@pytest.mark.parametrize("count", [0, 1, 16383, 16384, 16385, 40000])
def test_round_trip(count: int, tmp_path: Path) -> None:
    events = camera_rows(count, count)
    path = tmp_path / "out.hdf5"
    write(path, events, width=1280, height=720)
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (1280, 720)
        assert reader.properties.event_count == count
        got = reader.read().events
    assert_same_events(got, events)
    with h5py.File(path, "r") as file:
        dataset = file["CD/events"]
        assert dataset.shape == (count,)
        counts = [
            struct.unpack_from("<I", dataset.id.read_direct_chunk((o,))[1])[0] >> 2
            for o in range(0, count, 16384)
        ]
        assert counts == [min(16384, count - o) for o in range(0, count, 16384)]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.hdf5"
    with aerflow.open(path, "w", width=640, height=480):
        pass
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert reader.properties.event_count == 0
        assert reader.properties.time_range is None
        packet = reader.read()
        assert list(reader) == []
    assert len(packet.events) == 0
    assert len(packet.triggers) == 0
    with h5py.File(path, "r") as file:
        for name in ("CD/events", "CD/indexes", "EXT_TRIGGER/events", "EXT_TRIGGER/indexes"):
            assert file[name].shape == (0,)


def test_written_in_many_small_writes(tmp_path: Path) -> None:
    events = camera_rows(50_000, 3)
    path = tmp_path / "pieces.hdf5"
    with aerflow.open(path, "w", width=1280, height=720) as writer:
        for start in range(0, len(events), 7_777):
            writer.write(events[start : start + 7_777])
    assert_same_events(aerflow.read(path), events)


def test_triggers(tmp_path: Path) -> None:
    events = camera_rows(40_000, 4)
    triggers = np.zeros(9, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = np.linspace(int(events["t"][0]), int(events["t"][-1]) + 500, 9).astype(int)
    triggers["id"] = [0, 1, 2, 0, 1, 2, 0, 255, 3]
    triggers["rising"] = [True, False] * 4 + [True]
    path = tmp_path / "triggers.hdf5"
    aerflow.write(path, events, triggers=triggers, width=1280, height=720)
    packet = aerflow.read(path, triggers=True)
    assert_same_events(packet.events, events)
    assert_same_triggers(packet.triggers, triggers)
    with aerflow.open(path, chunk_size=1) as reader:
        parts = list(reader)
    assert len(parts) > 1
    assert_same_triggers(np.concatenate([p.triggers for p in parts]), triggers)
    assert_same_events(np.concatenate([p.events for p in parts]), events)
    for part in parts[:-1]:  # a trigger comes with the events of its time
        if len(part.triggers) and len(part.events):
            assert int(part.triggers["t"].max()) <= int(part.events["t"][-1])
    with h5py.File(path, "r") as file:
        stored = file["EXT_TRIGGER/events"][:]
        assert stored["p"].tolist() == [int(r) for r in triggers["rising"]]
        assert stored["id"].tolist() == triggers["id"].tolist()
        table = file["EXT_TRIGGER/indexes"]
        assert table.attrs["offset"] == str(-int(triggers["t"][0]))
        assert table[0].tolist() == (0, -1)


def index_entries(times: list[int], period: int = 2000) -> list[tuple[int, int]]:
    """OpenEB's table, straight from the spec's definition (entry k >= 1: the first event of
    relative period k - 1, or the latest such entry when that period is empty)."""
    rel = [t - times[0] for t in times]
    entries = [(0, -1)]
    last = (0, 0)
    for k in range(rel[-1] // period + 1):
        firsts = [i for i, r in enumerate(rel) if r // period == k]
        if firsts:
            last = (firsts[0], rel[firsts[0]])
        entries.append(last)
    return entries


@pytest.mark.parametrize("seed", range(5))
def test_index_table_follows_openeb(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.choice([0, 3, 400, 1999, 2000, 2001, 9000], 300)) + 123_456
    events = np.zeros(len(times), aerflow.EVENTS_DTYPE)
    events["t"] = times
    path = tmp_path / "indexed.hdf5"
    with aerflow.open(path, "w", width=4, height=4) as writer:
        for part in np.array_split(events, 7):  # periods continue across writes
            writer.write(part)
    with h5py.File(path, "r") as file:
        got = [tuple(int(v) for v in e) for e in file["CD/indexes"][:].tolist()]
        assert file["CD/indexes"].attrs["offset"] == str(-int(times[0]))
    assert got == index_entries(times.tolist())


def test_seek_time_and_read_range(tmp_path: Path) -> None:
    events = camera_rows(100_000, 5)
    path = tmp_path / "seek.hdf5"
    write(path, events, width=1280, height=720)
    bare = tmp_path / "bare.hdf5"  # without the seek table: the chunks' first times only
    shutil.copy(path, bare)
    with h5py.File(bare, "a") as file:
        del file["CD/indexes"]
    times = events["t"].astype(np.int64)
    cuts = [
        0,
        int(times[0]),
        int(times[16384]),
        int(times[16384]) + 1,
        int(times[70_000]),
        int(times[-1]),
        int(times[-1]) + 1,
    ]
    for source in (path, bare):
        with aerflow.open(source) as reader:
            for cut in cuts:
                reader.seek_time(cut)
                assert_same_events(reader.read().events, events[times >= cut])
                reader.seek_time(cut)
                assert_same_events(
                    np.concatenate([p.events for p in reader] or [events[:0]]), events[times >= cut]
                )
            for start, end in zip(cuts, cuts[2:], strict=False):
                got = reader.read_range(start, end).events
                assert_same_events(got, events[(times >= start) & (times < end)])
            # read_range leaves the position alone; rewinding undoes a seek
            reader.rewind()
            assert_same_events(reader.read().events, events)


def test_writer_refuses_what_ecf_would_corrupt(tmp_path: Path) -> None:
    events = camera_rows(10, 6)
    path = tmp_path / "refused.hdf5"
    wide = events.copy()
    wide["x"][3] = 2048
    with pytest.raises(ValueError, match="11-bit"):
        write(path, wide)
    backwards = events.copy()
    backwards["t"][5] = backwards["t"][4] - 1
    with pytest.raises(ValueError, match="back in time"):
        write(path, backwards, width=1280, height=720)
    with pytest.raises(ValueError, match="2048"):
        write(path, events, width=4096, height=720)
    writer = aerflow.open(path, "w", width=1280, height=720)
    writer.write(events[5:])
    with pytest.raises(ValueError, match="back in time"):
        writer.write(events[:5])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_padded_edge_chunk_of_the_filter_pipeline(tmp_path: Path) -> None:
    """A chunk that went through HDF5's filter pipeline holds 16,384 events, the slots past
    the dataset's length filled with zero records: only the in-extent events are read."""
    events = camera_rows(20_000, 7)
    padded = np.zeros(2 * 16384, aerflow.EVENTS_DTYPE)
    padded[: len(events)] = events
    path = tmp_path / "pipeline.hdf5"
    with h5py.File(path, "w") as file:
        file.attrs["geometry"] = "1280x720"
        dataset = file.create_dataset(
            "CD/events", (len(events),), CD, chunks=(16384,), maxshape=(None,),
            compression=0x8ECF, allow_unknown_filter=True,
        )  # fmt: skip
        for offset in (0, 16384):
            block = ref.encode_block(tuples(padded[offset : offset + 16384]))
            dataset.id.write_direct_chunk((offset,), block, 0)
        assert ref.decode_block(block)[-1][0] == int(events["t"][-1])  # padding: t clamped
    assert_same_events(aerflow.read(path), events)


def test_uncompressed_and_filter_skipped_chunks(tmp_path: Path) -> None:
    events = camera_rows(20_000, 8)
    records = np.zeros(len(events), CD)
    for name in ("x", "y", "t"):
        records[name] = events[name]
    records["p"] = events["on"]
    plain = tmp_path / "plain.hdf5"
    with h5py.File(plain, "w") as file:
        file.create_dataset("CD/events", data=records, chunks=(4096,), compression="gzip")
    assert_same_events(aerflow.read(plain), events)
    skipped = tmp_path / "skipped.hdf5"
    with h5py.File(skipped, "w") as file:
        dataset = file.create_dataset(
            "CD/events", (len(events),), CD, chunks=(16384,), maxshape=(None,),
            compression=0x8ECF, allow_unknown_filter=True,
        )  # fmt: skip
        dataset.id.write_direct_chunk((0,), kernel_encode(events[:16384]), 0)
        # Filter mask bit 0: the optional ECF filter was skipped; plain records follow.
        dataset.id.write_direct_chunk((16384,), records[16384:].tobytes(), 1)
    assert_same_events(aerflow.read(skipped), events)


def test_geometry_from_format_then_from_the_data(tmp_path: Path) -> None:
    events = camera_rows(100, 9, 300, 200)
    path = tmp_path / "bare.hdf5"
    write(path, events, width=1280, height=720)
    with h5py.File(path, "a") as file:
        del file.attrs["geometry"]
        file.attrs["format"] = "EVT3;height=720;width=1280"
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (1280, 720)
    with h5py.File(path, "a") as file:
        del file.attrs["format"]
    with aerflow.open(path) as reader:
        extent = (int(events["x"].max()) + 1, int(events["y"].max()) + 1)
        assert reader.properties.sensor_size == extent
        assert_same_events(reader.read().events, events)


def test_events_outside_the_sensor_are_dropped_and_counted(tmp_path: Path) -> None:
    events = camera_rows(300_000, 10)
    path = tmp_path / "wide.hdf5"
    write(path, events, width=1280, height=720)
    inside = events[(events["x"] < 640) & (events["y"] < 480)]
    for threads in (1, 2):
        with aerflow.open(path, width=640, height=480, threads=threads) as reader:
            with pytest.warns(aerflow.OutOfRangeWarning, match="dropped"):
                got = reader.read().events
            assert reader.dropped_out_of_range == len(events) - len(inside)
        assert_same_events(got, inside)


def corrupt(path: Path, chunk: int, change: Callable[[bytearray], None]) -> None:
    with h5py.File(path, "a") as file:
        dataset = file["CD/events"]
        block = bytearray(dataset.id.read_direct_chunk((chunk * 16384,))[1])
        change(block)
        dataset.id.write_direct_chunk((chunk * 16384,), bytes(block), 0)


@pytest.mark.parametrize("seed", range(3))
def test_mutated_files_give_a_format_error_naming_the_chunk(seed: int, tmp_path: Path) -> None:
    events = camera_rows(40_000, 11 + seed)
    clean = tmp_path / "clean.hdf5"
    write(clean, events, width=1280, height=720)
    rng = np.random.default_rng(seed)
    with deadline(120):
        for trial in range(25):
            path = tmp_path / f"mutated{trial}.hdf5"
            shutil.copy(clean, path)
            chunk = int(rng.integers(3))

            def change(block: bytearray, trial: int = trial) -> None:
                if trial % 3 == 0:
                    del block[int(rng.integers(4, len(block))) :]
                elif trial % 3 == 1:
                    block[0:4] = struct.pack("<I", int(rng.integers(0, 1 << 32)))
                else:
                    for _ in range(8):
                        block[int(rng.integers(len(block)))] = int(rng.integers(256))

            corrupt(path, chunk, change)
            failure: aerflow.FormatError | None = None
            try:
                with aerflow.open(path) as reader, warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    got = reader.read().events
            except aerflow.FormatError as error:
                failure = error
            if failure is not None:
                assert f"chunk {chunk} " in str(failure)
                continue
            # Decoded: whatever is inside the sensor, the other chunks exact.
            assert all(issubclass(w.category, aerflow.OutOfRangeWarning) for w in caught)
            assert int(got["x"].max()) < 1280
            assert int(got["y"].max()) < 720


def test_a_missing_chunk_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gap.hdf5"
    with h5py.File(path, "w") as file:
        dataset = file.create_dataset(
            "CD/events", (40_000,), CD, chunks=(16384,), maxshape=(None,),
            compression=0x8ECF, allow_unknown_filter=True,
        )  # fmt: skip
        dataset.id.write_direct_chunk((0,), kernel_encode(camera_rows(16384, 1)), 0)
        dataset.id.write_direct_chunk((32768,), kernel_encode(camera_rows(40_000 - 32768, 2)), 0)
    with pytest.raises(aerflow.FormatError, match=r"chunk 1 .*never written"):
        aerflow.read(path)


def test_hdf5_files_of_other_kinds_are_refused(tmp_path: Path) -> None:
    tensors = tmp_path / "tensors.h5"
    with h5py.File(tensors, "w") as file:
        file.create_dataset("data", data=np.zeros((4, 2, 8, 8), np.float32))
    with pytest.raises(aerflow.NotThisFormatError, match="not a Prophesee event file"):
        aerflow.read(tensors)
    fake = tmp_path / "fake.hdf5"
    fake.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(aerflow.AerflowError):
        aerflow.read(fake, format="hdf5")
    with pytest.raises(aerflow.NotThisFormatError, match="not an HDF5 file"):
        Hdf5Reader(fake)


@pytest.mark.parametrize("backend", ["zlib", "zstandard"])
def test_older_openeb_event_buffers(backend: str, tmp_path: Path) -> None:
    events = camera_rows(5000, 12)
    records = np.zeros(len(events), CD)
    for name in ("x", "y", "t"):
        records[name] = events[name]
    records["p"] = events["on"]
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as file:
        buffers = file.create_dataset("event_buffers", (3,), h5py.vlen_dtype(np.uint8))
        starts = file.create_dataset("event_buffers_start_times", (3,), np.int64)
        buffers.attrs["compression_backend"] = backend
        buffers.attrs["height"], buffers.attrs["width"] = 720, 1280
        for i, part in enumerate(np.array_split(records, 3)):
            data = part.tobytes()
            if backend == "zlib":
                packed = zlib.compress(data)
            else:
                import zstandard

                packed = zstandard.ZstdCompressor().compress(data)
            buffers[i] = np.frombuffer(packed, np.uint8)
            starts[i] = part["t"][0]
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (1280, 720)
        assert_same_events(reader.read().events, events)
        cut = int(events["t"][3000])
        reader.seek_time(cut)
        assert_same_events(reader.read().events, events[events["t"] >= cut])


def test_import_aerflow_does_not_import_h5py() -> None:
    code = "import sys, aerflow; aerflow.list_formats(); print('h5py' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_missing_h5py_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "x.hdf5"
    write(path, camera_rows(10, 1), width=1280, height=720)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(Hdf5NotInstalledError, match=r"pip install 'aerflow\[hdf5\]'"):
        aerflow.read(path)
    with pytest.raises(ImportError):
        write(tmp_path / "y.hdf5", camera_rows(10, 1))
