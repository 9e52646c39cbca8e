"""iniVation AEDAT 4.0: the real sample, generated files of every compression, round trips,
seeking, the two-thread paths, peers reading our files, and bad input.

aerflow must give exactly MANIFEST.json's facts for the DVXplorer sample, exactly what the
plain-Python reference decoder (tests/reference/aedat4.py) gives for every file, the same
whatever the chunk size or thread count, and what it writes must read back identically
(with aerflow, the reference, and aedat / dv-processing / faery when they are installed).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry
from aerflow.events import concatenate_packets
from aerflow.formats import aedat4_packets as packets
from aerflow.formats.aedat4 import Aedat4Reader

from .helpers import assert_same_events, assert_same_triggers, deadline

try:
    from tests.reference import aedat4 as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import aedat4 as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

SAMPLE = "aedat4/tonic_sample_dvxplorer.aedat4"
COMPRESSIONS = ("none", "lz4", "lz4_high", "zstd", "zstd_high")
UNIX_US = 1_605_537_493_718_345
FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- #
# Helpers                                                                     #
# --------------------------------------------------------------------------- #


def make_recording(n: int = 3000, seed: int = 0, frames: int = 3) -> aerflow.Packet:
    """Events on a 346x260 sensor in Unix time, triggers of every channel, IMU samples and
    frames of every pixel kind."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = UNIX_US + np.cumsum(rng.integers(0, 40, n))
    events["x"] = rng.integers(0, 346, n)
    events["y"] = rng.integers(0, 260, n)
    events["on"] = rng.integers(0, 2, n).astype(bool)
    span = int(events["t"][-1]) - UNIX_US if n else 1000
    triggers = np.zeros(12, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = UNIX_US + np.sort(rng.integers(0, span + 1, 12))
    triggers["id"] = [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 0, 2]
    triggers["rising"] = [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        True,
        True,
        False,
    ]
    imu = np.zeros(40, aerflow.IMU_DTYPE)
    imu["t"] = UNIX_US + np.sort(rng.integers(0, span + 1, 40))
    imu["temperature"] = rng.normal(35, 1, 40)
    imu["accelerometer"] = rng.normal(0, 1, (40, 3))
    imu["gyroscope"] = rng.normal(0, 10, (40, 3))
    imu["magnetometer"] = rng.normal(0, 50, (40, 3))
    kinds = [
        rng.integers(0, 256, (260, 346), dtype=np.uint8),
        rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        rng.integers(0, 1024, (16, 8), dtype=np.uint16),
        rng.integers(0, 256, (4, 5, 4), dtype=np.uint8),
    ]
    frame_list = []
    for i in range(frames):
        t = UNIX_US + (i + 1) * span // (frames + 1)
        frame_list.append(
            aerflow.Frame(
                t, kinds[i % 4], exposure_start=t - 100, exposure_end=t + 100, x=i, y=2 * i
            )
        )
    return aerflow.Packet(events, triggers, imu, tuple(frame_list))


def write_file(path: Path, recording: aerflow.Packet, **options: Any) -> Path:
    options.setdefault("width", 346)
    options.setdefault("height", 260)
    with aerflow.open(path, "w", format="aedat4", **options) as writer:
        writer.write(recording)
    return path


def read_all(path: Path, **options: Any) -> aerflow.Packet:
    with aerflow.open(path, **options) as reader:
        packet = reader.read()
    return packet


def iterate(path: Path, **options: Any) -> aerflow.Packet:
    with aerflow.open(path, **options) as reader:
        return concatenate_packets(list(reader))


def assert_same_imu(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == aerflow.IMU_DTYPE
    assert len(actual) == len(expected)
    for name in aerflow.IMU_DTYPE.names or ():
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def assert_same_frames(actual: tuple[aerflow.Frame, ...], expected: list[Any]) -> None:
    """``expected``: aerflow frames, or the reference decoder's dicts."""
    assert len(actual) == len(expected)
    for ours, theirs in zip(actual, expected, strict=True):
        if isinstance(theirs, dict):
            theirs = aerflow.Frame(
                theirs["t"],
                theirs["pixels"],
                theirs["exposure_begin_t"] or None,
                theirs["exposure_end_t"] or None,
                theirs["x"],
                theirs["y"],
            )
        assert (ours.t, ours.exposure_start, ours.exposure_end, ours.x, ours.y) == (
            theirs.t,
            theirs.exposure_start,
            theirs.exposure_end,
            theirs.x,
            theirs.y,
        )
        assert ours.pixels.dtype == theirs.pixels.dtype
        np.testing.assert_array_equal(ours.pixels, theirs.pixels)


def assert_same_recording(actual: aerflow.Packet, expected: aerflow.Packet) -> None:
    assert_same_events(actual.events, expected.events)
    assert_same_triggers(actual.triggers, expected.triggers)
    assert_same_imu(actual.imu, expected.imu)
    assert_same_frames(actual.frames, list(expected.frames))


def assert_matches_reference(path: Path, packet: aerflow.Packet) -> None:
    decoded = ref.decode_file(path)
    assert_same_events(packet.events, decoded["events"].astype(aerflow.EVENTS_DTYPE))
    assert packet.triggers.tolist() == decoded["triggers"].tolist()
    assert_same_imu(packet.imu, decoded["imu"].astype(aerflow.IMU_DTYPE))
    assert_same_frames(packet.frames, decoded["frames"])


def sha(events: np.ndarray) -> str:
    digest = hashlib.sha256()
    for name in ("t", "x", "y"):
        digest.update(events[name].astype("<i8").tobytes())
    digest.update(events["on"].astype("u1").tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- #
# The real sample                                                             #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("threads", [1, 2])
def test_sample_gives_the_manifest_facts(
    threads: int,
    shared_data: Path,
    manifest: dict[str, Any],
    digest: Callable[[np.ndarray], str],
) -> None:
    entry = manifest[SAMPLE]
    with aerflow.open(shared_data / SAMPLE, threads=threads) as reader:
        properties = reader.properties
        packet = reader.read()
    events = packet.events
    assert digest(events) == entry["sha256"]
    assert len(events) == entry["events"]
    assert int(events["t"][0]) == entry["t_first"]
    assert int(events["t"][-1]) == entry["t_last"]
    assert [int(events["x"].min()), int(events["x"].max())] == entry["x_range"]
    assert [int(events["y"].min()), int(events["y"].max())] == entry["y_range"]
    assert properties.format == "aedat4"
    assert list(properties.sensor_size or ()) == entry["sensor_size"]
    # From the file data table, without decoding:
    assert properties.event_count == entry["events"]
    assert properties.time_range == (entry["t_first"], entry["t_last"])
    assert aerflow.read(shared_data / SAMPLE).tolist() == events.tolist()


@pytest.mark.parametrize("chunk_size", [1, 5000, 65536, None])
def test_sample_iterated_in_any_chunk_size(
    chunk_size: int | None, shared_data: Path, manifest: dict[str, Any]
) -> None:
    options = {} if chunk_size is None else {"chunk_size": chunk_size}
    with aerflow.open(shared_data / SAMPLE, **options) as reader:
        parts = list(reader)
    if chunk_size == 1:
        assert len(parts) == 118  # one packet per AEDAT packet (59 events, 59 IMU)
    joined = concatenate_packets(parts)
    assert sha(joined.events) == manifest[SAMPLE]["sha256"]
    assert len(joined.imu) == 475


def test_sample_matches_the_reference(shared_data: Path) -> None:
    path = shared_data / SAMPLE
    packet = read_all(path)
    assert_matches_reference(path, packet)
    decoded = ref.decode_file(path)
    assert len(packet.imu) == 475
    assert len(packet.triggers) == 0  # the trigger stream has no packet
    with Aedat4Reader(path) as reader:
        assert reader.compression == "LZ4"
        assert [(s.id, s.type_identifier) for s in reader.streams] == [
            (0, "EVTS"),
            (2, "IMUS"),
            (3, "TRIG"),
        ]
        assert reader.streams[0].info["source"] == "DVXplorer_DXB00010"
        assert reader.metadata["0/info/sizeX"] == "320"
        assert reader.table is not None
        assert reader.table.tolist() == [tuple(e.values()) for e in decoded["table"]]


def test_sample_seek_and_range(shared_data: Path) -> None:
    path = shared_data / SAMPLE
    everything = read_all(path)
    t = everything.events["t"]
    start, end = int(t[40_000]), int(t[70_000])
    with aerflow.open(path) as reader:
        assert isinstance(reader, Aedat4Reader)
        window = reader.read_range(start, end)
        assert_same_events(window.events, everything.events[(t >= start) & (t < end)])
        imu_t = everything.imu["t"]
        assert_same_imu(window.imu, everything.imu[(imu_t >= start) & (imu_t < end)])
        reader.seek_time(start)
        skipped = reader._next
        assert skipped > 0  # the table let it skip packets without decoding them
        rest = concatenate_packets(list(reader))
        assert_same_events(rest.events, everything.events[t >= start])
        reader.seek_time("0s")
        assert len(reader.read().events) == len(t)
        reader.rewind()
        assert len(reader.read().events) == len(t)


# --------------------------------------------------------------------------- #
# Generated files: every compression, kernel against reference                #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_every_compression(compression: str, tmp_path: Path) -> None:
    recording = make_recording(5000, seed=1, frames=4)
    path = write_file(
        tmp_path / "out.aedat4", recording, compression=compression, packet_events=700
    )
    header = ref.parse_header(path.read_bytes())
    assert header["compression"] == COMPRESSIONS.index(compression)
    for threads in (1, 2):
        assert_same_recording(read_all(path, threads=threads), recording)
    for chunk_size in (1, 3000):
        assert_same_recording(iterate(path, chunk_size=chunk_size), recording)
    assert_matches_reference(path, recording)
    with aerflow.open(path) as reader:
        assert reader.properties.event_count == 5000
        assert reader.properties.sensor_size == (346, 260)
        assert reader.properties.time_range == (
            int(recording.events["t"][0]),
            int(recording.events["t"][-1]),
        )
        assert reader.compression == compression.upper()


def test_written_table_and_header_are_consistent(tmp_path: Path) -> None:
    """Every table entry points at its packet's payload, with its stream, size, element
    count and time range, and the header gives the table's position."""
    recording = make_recording(4000, seed=2)
    path = write_file(tmp_path / "t.aedat4", recording, packet_events=1000)
    data = path.read_bytes()
    decoded = ref.decode_file(path)
    header = decoded["header"]
    assert header["table_position"] == decoded["packets"][-1][0] + 8 + decoded["packets"][-1][2]
    assert not decoded["torn"]
    table = decoded["table"]
    assert table is not None
    assert len(table) == len(decoded["packets"])
    for entry, (position, stream, size) in zip(table, decoded["packets"], strict=True):
        assert (entry["offset"], entry["stream"], entry["size"]) == (position + 8, stream, size)
        payload = ref.decompress(header["compression"], data[position + 8 : position + 8 + size])
        kind = decoded["streams"][stream]["typeIdentifier"]
        if kind == "EVTS":
            times = [row[0] for row in ref.decode_event_payload(payload)]
        elif kind == "TRIG":
            times = [row[0] for row in ref.decode_trigger_payload(payload)]
        elif kind == "IMUS":
            times = [row[0] for row in ref.decode_imu_payload(payload)]
        else:
            times = [ref.decode_frame_payload(payload)["t"]]
        assert entry["count"] == len(times)
        assert (entry["t_start"], entry["t_end"]) == (min(times), max(times))
    streams = decoded["streams"]
    assert {i: s["typeIdentifier"] for i, s in streams.items()} == {
        0: "EVTS",
        1: "FRME",
        2: "IMUS",
        3: "TRIG",
    }
    assert (streams[0]["sizeX"], streams[0]["sizeY"]) == ("346", "260")
    # packets are in time order, as DV writes them
    starts = [entry["t_start"] for entry in table]
    assert starts == sorted(starts) or all(
        a["t_end"] >= b["t_start"] or a["stream"] != b["stream"]
        for a, b in itertools.pairwise(table)
    )


EVENT_ROWS = st.lists(
    st.tuples(
        st.integers(0, (1 << 63) - 1),
        st.integers(-(1 << 15), (1 << 15) - 1),
        st.integers(-(1 << 15), (1 << 15) - 1),
        st.booleans(),
    ),
    max_size=60,
)


def event_packet(rows: list[tuple[int, int, int, bool]], layout: int) -> bytes:
    """An EventPacket FlatBuffer laid out by hand, independently of aerflow's builder:
    layout 0 as DV lays it out; 1 with the vtable after the table, an unused field and the
    events vector at an odd offset; 2 with the elements field absent (no events)."""
    events = b"".join(struct.pack("<qhh?3x", *row) for row in rows)
    # Positions count from the size prefix; ``body`` starts at 4.
    if layout == 0:
        body = struct.pack("<I4sH3HiII", 16, b"EVTS", 0, 6, 8, 4, 6, 4, len(rows)) + events
    elif layout == 1:
        # table at 12: [soffset -12][an unknown int32 field][uoffset of the vector, at 20];
        # vtable at 24: sizes 8 and 12, field 0 at +8, field 1 at +4; one padding byte at
        # 32; the vector's length at 33 and its events from 37 (unaligned).
        body = struct.pack("<I4s", 8, b"EVTS")
        body += struct.pack("<iiI", -12, 7, 33 - 20)
        body += struct.pack("<4H", 8, 12, 8, 4)
        body += b"\x00" + struct.pack("<I", len(rows)) + events
    else:
        # vtable at 12 with no field; table at 16 (soffset 4): no events vector at all.
        body = struct.pack("<I4s2Hi", 12, b"EVTS", 4, 4, 4)
    return struct.pack("<I", len(body)) + body


@FAST
@given(
    rows=EVENT_ROWS,
    layout=st.sampled_from([0, 1, 2]),
    size=st.sampled_from([(320, 240), (32768, 32768), (1, 1)]),
)
def test_event_kernel_against_reference(
    rows: list[tuple[int, int, int, bool]], layout: int, size: tuple[int, int]
) -> None:
    data = event_packet(rows, layout)
    expected_rows = ref.decode_event_payload(data)
    if layout == 2:
        assert expected_rows == []
    else:
        assert expected_rows == rows
    width, height = size
    kept = [r for r in expected_rows if 0 <= r[1] < width and 0 <= r[2] < height]
    out = np.zeros(len(rows) + 3, aerflow.EVENTS_DTYPE)
    buffer = np.frombuffer(data, np.uint8)
    n, n_kept = packets.decode_events(buffer, out, 2, len(out), width, height)
    assert n == len(expected_rows)
    assert n_kept == len(kept)
    assert out[2 : 2 + n_kept].tolist() == [(t, x, y, on) for t, x, y, on in kept]
    if n:  # too little room: nothing written, the element count returned
        assert packets.decode_events(buffer, out, 0, n - 1, width, height) == (n, -1)


@FAST
@given(rows=EVENT_ROWS)
def test_event_encoder_against_reference(rows: list[tuple[int, int, int, bool]]) -> None:
    events = np.array(
        [(t, x & 0x7FFF, y & 0x7FFF, on) for t, x, y, on in rows], aerflow.EVENTS_DTYPE
    )
    data = packets.encode_events(events)
    assert ref.decode_event_payload(data) == events.tolist()


def test_side_channel_encoders_against_reference() -> None:
    recording = make_recording(10, seed=3, frames=4)
    triggers = ref.decode_trigger_payload(packets.encode_triggers(recording.triggers))
    assert triggers == recording.triggers.tolist()
    imu = ref.decode_imu_payload(packets.encode_imu(recording.imu))
    assert_same_imu(np.array(imu, ref.IMU).astype(aerflow.IMU_DTYPE), recording.imu)
    for frame in recording.frames:
        decoded = ref.decode_frame_payload(packets.encode_frame(frame))
        assert_same_frames((frame,), [decoded])
        assert decoded["begin_t"] == frame.exposure_start
    table = np.zeros(3, packets.TABLE_DTYPE)
    table["offset"] = [100, 200, 300]
    table["stream"] = [0, 2, 3]
    table["size"] = [10, 20, 30]
    table["count"] = [5, 6, 7]
    table["t_start"] = [1, 2, 3]
    table["t_end"] = [4, 5, 6]
    entries = ref.decode_table_payload(packets.encode_table(table))
    assert [tuple(e.values()) for e in entries] == table.tolist()
    assert packets.decode_table(packets.encode_table(table)).tolist() == table.tolist()


def test_every_trigger_type_reads_as_documented() -> None:
    for code, (channel, rising) in ref.TRIGGER_MAP.items():
        assert packets.TRIGGER_TYPES[code] == (channel, rising)
    # An unknown type reads as channel 255: build a packet by hand with type 42.
    records = np.zeros(1, packets._TRIGGER_RECORD)
    records["t"] = 5
    records["type"] = 42
    data = packets._packet_of_tables(b"TRIG", 16, (8, 4), records)
    assert packets.decode_triggers(data).tolist() == [(5, 255, True)]
    assert ref.decode_trigger_payload(data) == [(5, 255, True)]


# --------------------------------------------------------------------------- #
# Writing                                                                     #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("packet_events", [1, 7, 16384])
def test_round_trip_in_pieces(packet_events: int, tmp_path: Path) -> None:
    """Writing in several pieces (and one packet per event) equals writing at once."""
    recording = make_recording(1500, seed=4, frames=2)
    path = tmp_path / "pieces.aedat4"
    cuts = [0, 1, 2, 500, 501, 1499, 1500]
    with aerflow.open(path, "w", width=346, height=260, packet_events=packet_events) as writer:
        for a, b in itertools.pairwise(cuts):
            writer.write(recording.events[a:b])
        writer.write(
            aerflow.Packet(
                recording.events[:0], recording.triggers, recording.imu, recording.frames
            )
        )
    assert_same_recording(read_all(path), recording)
    assert_same_recording(read_all(path, threads=1), recording)


def test_write_verb_and_sizes(tmp_path: Path) -> None:
    recording = make_recording(2000, seed=5, frames=0)
    path = tmp_path / "verb.aedat4"
    aerflow.write(path, recording.events, triggers=recording.triggers)
    with aerflow.open(path) as reader:
        assert reader.properties.format == "aedat4"
        expected = (int(recording.events["x"].max()) + 1, int(recording.events["y"].max()) + 1)
        assert reader.properties.sensor_size == expected
        packet = reader.read()
    assert_same_events(packet.events, recording.events)
    assert_same_triggers(packet.triggers, recording.triggers)
    # No size given to the writer itself: the events' extent.
    with aerflow.open(tmp_path / "extent.aedat4", "w") as writer:
        writer.write(recording.events)
    with aerflow.open(tmp_path / "extent.aedat4") as reader:
        assert reader.properties.sensor_size == expected


def test_empty_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "empty.aedat4"
    with aerflow.open(path, "w", width=10, height=20):
        pass
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (10, 20)
        assert reader.properties.event_count == 0  # no event packet: known without decoding
        assert list(reader) == []
        assert len(reader.read().events) == 0
    assert ref.decode_file(path)["events"].size == 0


def test_writer_refuses_what_it_cannot_store(tmp_path: Path) -> None:
    events = make_recording(10).events
    with pytest.raises(ValueError, match="compression"):
        aerflow.open(tmp_path / "a.aedat4", "w", compression="gzip")
    with pytest.raises(ValueError, match="sensor"):
        aerflow.write(tmp_path / "b.aedat4", events, width=10, height=10)
    with pytest.raises(ValueError, match="32768"):
        aerflow.open(tmp_path / "c.aedat4", "w", width=40000, height=10)
    late = events.copy()
    late["t"][0] = 1 << 63
    with pytest.raises(ValueError, match="int64"):
        aerflow.write(tmp_path / "e.aedat4", late, width=346, height=260)
    frame = aerflow.Frame(1, np.zeros((2, 2), np.float32))
    with (
        pytest.raises(ValueError, match="uint8 or uint16"),
        aerflow.open(tmp_path / "f.aedat4", "w") as writer,
    ):
        writer.write(aerflow.Packet(events[:0], frames=(frame,)))
    assert not (tmp_path / "f.aedat4").exists()  # a failed write leaves nothing behind


def test_zstd_frames_without_content_size_and_lz4_without_size(tmp_path: Path) -> None:
    """DV writes LZ4 frames without a content size; other writers may do the same with Zstd.
    Both read back (the payloads are recompressed by hand)."""
    recording = make_recording(3000, seed=6)
    source = write_file(tmp_path / "src.aedat4", recording, compression="none", packet_events=500)
    data = source.read_bytes()
    decoded = ref.decode_file(source)
    header = decoded["header"]
    for code, squeeze in (
        (1, lambda b: lz4.frame.compress(b, store_size=False)),
        (3, lambda b: zstandard.ZstdCompressor(write_content_size=False).compress(b)),
    ):
        out = bytearray(data[: header["data_offset"]])
        out[len(ref.MAGIC) :] = rewrite_header(out[len(ref.MAGIC) :], code, -1)
        for position, stream, size in decoded["packets"]:
            payload = squeeze(data[position + 8 : position + 8 + size])
            out += struct.pack("<ii", stream, len(payload)) + payload
        path = tmp_path / f"nosize{code}.aedat4"
        path.write_bytes(bytes(out))
        packet = read_all(path)
        assert_same_recording(packet, recording)
        with aerflow.open(path) as reader:
            assert reader.table is None
            assert reader.properties.event_count is None
            assert len(reader.read_range(0, 1 << 62).events) == 3000


def rewrite_header(header: bytes | bytearray, compression: int, table_position: int) -> bytes:
    """The IOHeader with its compression and table position replaced in place (they are
    stored in the root table; found through the vtable, independently of aerflow)."""
    buffer = bytearray(header)
    fb = ref.read_fb(bytes(buffer))
    for index, fmt, value in ((0, "<i", compression), (1, "<q", table_position)):
        position = fb.field_position(fb.root, index)
        assert position is not None
        struct.pack_into(fmt, buffer, position, value)
    return bytes(buffer)


# --------------------------------------------------------------------------- #
# Two threads, the table's counts, events outside the sensor                  #
# --------------------------------------------------------------------------- #


def test_large_file_on_two_threads(tmp_path: Path) -> None:
    """Several MiB: read() splits the packets between threads, each decoding into its place
    in the output; iteration decodes ahead; all give the same arrays."""
    recording = make_recording(600_000, seed=7, frames=3)
    path = write_file(tmp_path / "large.aedat4", recording, compression="zstd", packet_events=5000)
    assert_same_recording(read_all(path, threads=2), recording)
    assert_same_recording(read_all(path, threads=3), recording)
    assert_same_recording(iterate(path, threads=2, chunk_size=1 << 16), recording)
    with aerflow.open(path, chunk_size=1 << 16) as reader:
        first = next(iter(reader))  # stop early: the prefetching threads must wind down
        assert len(first.events) > 0
        again = reader.read()  # a new read starts from the first event
    assert len(again.events) == 600_000


def corrupt_table_counts(path: Path, factor: int) -> None:
    """Rewrite the file data table with every element count multiplied by ``factor``."""
    data = bytearray(path.read_bytes())
    header = ref.parse_header(bytes(data))
    position = header["table_position"]
    entries = ref.decode_table_payload(
        ref.decompress(header["compression"], bytes(data[position:]))
    )
    table = np.zeros(len(entries), packets.TABLE_DTYPE)
    for i, entry in enumerate(entries):
        table[i] = tuple(entry.values())
    table["count"] *= factor
    squeezed = lz4.frame.compress(packets.encode_table(table))
    path.write_bytes(bytes(data[:position]) + squeezed)


@pytest.mark.parametrize("factor", [2, 0])
def test_wrong_table_counts_are_not_trusted(
    factor: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recording = make_recording(20_000, seed=8, frames=0)
    path = write_file(tmp_path / "counts.aedat4", recording, packet_events=1000)
    corrupt_table_counts(path, factor)
    with caplog.at_level(logging.WARNING, logger="aerflow.formats.aedat4"):
        packet = read_all(path)
    assert_same_recording(packet, recording)
    if factor:
        assert "counts are wrong" in caplog.text
    with aerflow.open(path) as reader:
        assert reader.properties.event_count == (None if factor == 0 else 20_000 * factor)


@pytest.mark.parametrize("threads", [1, 2])
def test_events_outside_the_sensor_are_dropped(threads: int, tmp_path: Path) -> None:
    recording = make_recording(8000, seed=9, frames=0)
    path = write_file(tmp_path / "wide.aedat4", recording, packet_events=900)
    inside = (recording.events["x"] < 200) & (recording.events["y"] < 100)
    for reading in (read_all, iterate):
        with pytest.warns(aerflow.OutOfRangeWarning, match="outside the 200x100 sensor"):
            packet = reading(path, width=200, height=100, threads=threads)
        assert_same_events(packet.events, recording.events[inside])
    with aerflow.open(path, width=200, height=100) as reader:
        assert reader.properties.sensor_size == (200, 100)
        with pytest.warns(aerflow.OutOfRangeWarning):
            reader.read()
        assert reader.dropped_out_of_range == int((~inside).sum())


def test_reader_options_are_checked(shared_data: Path) -> None:
    path = shared_data / SAMPLE
    with pytest.raises(ValueError, match="threads"):
        aerflow.open(path, threads=0)
    with pytest.raises(ValueError, match="chunk_size"):
        aerflow.open(path, chunk_size=0)
    with pytest.raises(ValueError, match="event stream"):
        aerflow.open(path, stream=2)
    with pytest.raises(ValueError, match=r"width|height|sensor"):
        aerflow.open(path, width=0, height=5)
    with aerflow.open(path, stream=0) as reader:
        assert reader.event_stream is not None
        assert reader.event_stream.id == 0


# --------------------------------------------------------------------------- #
# The registry                                                                #
# --------------------------------------------------------------------------- #


def test_registry_entry(tmp_path: Path) -> None:
    info = registry.get("aedat4")
    assert info.extensions == (".aedat4",)
    assert info.sniff(b"#!AER-DAT4.0\r\n\x00\x00")
    assert not info.sniff(b"#!AER-DAT3.1\r\n")
    assert {o.name for o in info.read_options} >= {"chunk_size", "threads", "width", "height"}
    assert {o.name for o in info.write_options} >= {
        "compression",
        "width",
        "height",
        "packet_events",
    }
    path = write_file(tmp_path / "renamed.bin", make_recording(10, frames=0))
    assert registry.detect(path).name == "aedat4"  # by its magic, whatever the extension
    assert registry.for_writing(tmp_path / "x.aedat4").name == "aedat4"


# --------------------------------------------------------------------------- #
# Peers reading what we write (skipped when they are not installed)           #
# --------------------------------------------------------------------------- #


def trigger_codes(triggers: np.ndarray) -> list[int]:
    """DV trigger types of aerflow triggers, by the documented table (read backwards)."""
    backwards = {value: code for code, value in ref.TRIGGER_MAP.items()}
    return [
        backwards[(channel, True if channel >= 4 else rising)]
        for channel, rising in zip(
            triggers["id"].tolist(), triggers["rising"].tolist(), strict=True
        )
    ]


@pytest.fixture(scope="module")
def peer_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, aerflow.Packet]:
    recording = make_recording(20_000, seed=10, frames=3)
    directory = tmp_path_factory.mktemp("peers")
    return write_file(directory / "peers.aedat4", recording, packet_events=3000), recording


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_aedat_reads_our_files(compression: str, tmp_path: Path) -> None:
    aedat = pytest.importorskip("aedat")
    recording = make_recording(20_000, seed=11, frames=3)
    path = write_file(tmp_path / "x.aedat4", recording, compression=compression, packet_events=3000)
    events, triggers, imu, frames = [], [], [], []
    decoder = aedat.Decoder(str(path))
    assert decoder.id_to_stream()[0] == {"type": "events", "width": 346, "height": 260}
    for packet in decoder:
        if "events" in packet:
            events.append(packet["events"])
        if "triggers" in packet:
            triggers.append(packet["triggers"])
        if "imus" in packet:
            imu.append(packet["imus"])
        if "frame" in packet:
            frames.append(packet["frame"])
    assert_same_events(aerflow.as_events(np.concatenate(events)), recording.events)
    theirs = np.concatenate(triggers)
    assert theirs["t"].tolist() == recording.triggers["t"].tolist()
    assert theirs["source"].tolist() == trigger_codes(recording.triggers)
    samples = np.concatenate(imu)
    assert samples["t"].tolist() == recording.imu["t"].tolist()
    np.testing.assert_array_equal(samples["gyroscope_y"], recording.imu["gyroscope"][:, 1])
    assert len(frames) == 3
    assert frames[0]["t"] == recording.frames[0].t
    np.testing.assert_array_equal(frames[0]["pixels"], recording.frames[0].pixels)


def test_dv_processing_reads_our_files(peer_file: tuple[Path, aerflow.Packet]) -> None:
    dv = pytest.importorskip("dv_processing")
    path, recording = peer_file
    reader = dv.io.MonoCameraRecording(str(path))
    assert tuple(reader.getEventResolution()) == (346, 260)
    assert tuple(reader.getTimeRange()) == (
        int(recording.events["t"][0]),
        int(recording.events["t"][-1]),
    )
    batches = []
    while (batch := reader.getNextEventBatch()) is not None:
        batches.append(batch.numpy())
    events = np.concatenate(batches)
    assert sha(
        np.rec.fromarrays(
            [events["timestamp"], events["x"], events["y"], events["polarity"]], names="t,x,y,on"
        )
    ) == sha(recording.events)
    imu = []
    while (samples := reader.getNextImuBatch()) is not None:
        imu.extend(samples)
    assert [s.timestamp for s in imu] == recording.imu["t"].tolist()
    assert [s.temperature for s in imu] == pytest.approx(recording.imu["temperature"].tolist())
    triggers = []
    while (batch := reader.getNextTriggerBatch()) is not None:
        triggers.extend(batch)
    assert [t.timestamp for t in triggers] == recording.triggers["t"].tolist()
    assert [int(t.type) for t in triggers] == trigger_codes(recording.triggers)
    frames = []
    while (frame := reader.getNextFrame()) is not None:
        frames.append(frame)
    # dv-processing times a frame by the start of its exposure
    assert [f.timestamp for f in frames] == [f.exposure_start for f in recording.frames]
    assert [f.exposure.microseconds for f in frames] == [200] * len(frames)
    np.testing.assert_array_equal(frames[0].image, recording.frames[0].pixels)
    assert (frames[1].positionX, frames[1].positionY) == (1, 2)


def test_faery_reads_our_files(peer_file: tuple[Path, aerflow.Packet]) -> None:
    faery = pytest.importorskip("faery")
    path, recording = peer_file
    events = np.concatenate(list(faery.events_stream_from_file(path)))
    assert sha(events) == sha(recording.events)


# --------------------------------------------------------------------------- #
# Bad input                                                                   #
# --------------------------------------------------------------------------- #


def read_recording(path: Path, **options: Any) -> tuple[aerflow.Packet, set[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught, deadline(20):
        warnings.simplefilter("always")
        packet = aerflow.read(path, triggers=True, format="aedat4", **options)
    assert isinstance(packet, aerflow.Packet)
    return packet, {w.category for w in caught}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"#!AER-DAT3.1\r\n" + b"\x00" * 40,
        b"#!AER-DAT2.0\r\n",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    ],
)
def test_not_aedat4(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "x.aedat4"
    path.write_bytes(data)
    with pytest.raises(aerflow.NotThisFormatError) as info:
        aerflow.read(path, format="aedat4")
    assert info.value.path == str(path)
    assert info.value.offset == 0


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"#!AER-DAT4.0\n" + b"\x00" * 20, 12),  # no CR
        (ref.MAGIC + b"\x10\x00", 14),  # a cut size prefix
        (ref.MAGIC + b"\xff\xff\x00\x00" + b"\x00" * 16, 14),  # a size past the end
    ],
)
def test_broken_header(data: bytes, offset: int, tmp_path: Path) -> None:
    path = tmp_path / "x.aedat4"
    path.write_bytes(data)
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset == offset


def test_bad_description(tmp_path: Path) -> None:
    source = write_file(tmp_path / "src.aedat4", make_recording(100, frames=0))
    data = source.read_bytes()
    for old, new in ((b"<dv", b"<dv <"), (b'type="int">346', b'type="int">-46')):
        path = tmp_path / "bad.aedat4"
        path.write_bytes(data.replace(old, new, 1))
        with pytest.raises(aerflow.FormatError) as info:
            aerflow.read(path)
        assert info.value.offset is not None
        assert info.value.offset >= 14


def test_truncated_files(tmp_path: Path) -> None:
    """A file cut anywhere: refused with a FormatError inside the header; else every packet
    before the cut, and a TruncatedDataWarning when the cut falls inside a packet or the
    table."""
    recording = make_recording(6000, seed=12, frames=2)
    source = write_file(tmp_path / "src.aedat4", recording, packet_events=800)
    data = source.read_bytes()
    decoded = ref.decode_file(source)
    data_offset = decoded["header"]["data_offset"]
    table_position = decoded["header"]["table_position"]
    boundaries = [p + 8 + s for p, _, s in decoded["packets"]]
    cuts = {0, 5, 14, 16, data_offset - 1, data_offset, data_offset + 3, table_position + 5}
    cuts |= {b + k for b in boundaries for k in (-1, 0, 1)}
    for cut in sorted(c for c in cuts if 0 <= c < len(data)):
        path = tmp_path / f"cut{cut}.aedat4"
        path.write_bytes(data[:cut])
        if cut < data_offset:
            with pytest.raises(aerflow.FormatError) as info:
                read_recording(path)
            assert info.value.path == str(path)
            assert info.value.offset is not None
            assert 0 <= info.value.offset <= cut
            continue
        expected = ref.decode_file(path)
        packet, caught = read_recording(path)
        assert_same_events(packet.events, expected["events"].astype(aerflow.EVENTS_DTYPE))
        assert packet.triggers.tolist() == expected["triggers"].tolist()
        torn = expected["torn"] or cut > table_position
        assert caught == ({aerflow.TruncatedDataWarning} if torn else set()), cut
        with warnings.catch_warnings(record=True) as chunked:
            warnings.simplefilter("always")
            events = iterate(path, chunk_size=3000).events
        assert_same_events(events, expected["events"].astype(aerflow.EVENTS_DTYPE))
        assert {w.category for w in chunked} == caught


def corrupt(payload: bytearray, compression: str, how: str) -> None:
    """Break one packet's payload in place so that no decoder can read it."""
    if how == "magic" or compression == "none":
        payload[4:8] = b"\xff\xff\x00\x00"  # frame magic, or the FlatBuffer's root offset
    elif compression == "lz4":
        size_at = 7 + (8 if payload[4] & 0x08 else 0)  # after the frame header
        payload[size_at : size_at + 4] = struct.pack("<I", 0x7FFFFFF0)  # first block: too big
    else:
        block = zstandard.frame_header_size(bytes(payload))
        payload[block] |= 0b110  # first block of the reserved type 3


@pytest.mark.parametrize(
    ("compression", "how"),
    [("lz4", "magic"), ("lz4", "block"), ("zstd", "magic"), ("zstd", "block"), ("none", "root")],
)
def test_corrupted_packet_names_its_offset(compression: str, how: str, tmp_path: Path) -> None:
    recording = make_recording(4000, seed=13, frames=0)
    source = write_file(
        tmp_path / "src.aedat4", recording, compression=compression, packet_events=1000
    )
    data = bytearray(source.read_bytes())
    decoded = ref.decode_file(source)
    position, _, size = [p for p in decoded["packets"] if p[1] == 0][2]
    payload = bytearray(data[position + 8 : position + 8 + size])
    corrupt(payload, compression, how)
    data[position + 8 : position + 8 + size] = payload
    path = tmp_path / "bad.aedat4"
    path.write_bytes(bytes(data))
    for threads in (1, 2):
        with pytest.raises(aerflow.FormatError) as info:
            read_all(path, threads=threads)
        assert info.value.path == str(path)
        assert info.value.offset == position, str(info.value)
        assert "stream 0" in str(info.value)
        with pytest.raises(aerflow.FormatError) as info:
            iterate(path, threads=threads, chunk_size=1)
        assert info.value.offset == position


def test_negative_packet_size(tmp_path: Path) -> None:
    source = write_file(tmp_path / "src.aedat4", make_recording(2000, frames=0), packet_events=500)
    data = bytearray(source.read_bytes())
    position = ref.decode_file(source)["packets"][1][0]
    data[position + 4 : position + 8] = struct.pack("<i", -5)
    path = tmp_path / "neg.aedat4"
    path.write_bytes(bytes(data))
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.offset == position


Mutation = tuple[str, int, int]


def mutate(data: bytes, changes: list[Mutation]) -> bytes:
    buffer = bytearray(data)
    for op, position, value in changes:
        if not buffer:
            buffer.append(value)
            continue
        at = position % (len(buffer) + (op == "insert"))
        if op == "flip":
            buffer[at] ^= 1 << (value % 8)
        elif op == "set":
            buffer[at] = value
        elif op == "insert":
            buffer[at:at] = bytes([value]) * (1 + value % 3)
        elif op == "delete":
            del buffer[at : at + 1 + value % 4]
        else:
            del buffer[at:]
    return bytes(buffer)


def check_survives(path: Path) -> None:
    """The reader refuses the file with an aerflow error or returns sane arrays."""
    for options in ({}, {"chunk_size": 1, "threads": 1}, {"threads": 2}):
        try:
            with warnings.catch_warnings(), deadline(20):
                warnings.simplefilter("ignore")
                with aerflow.open(path, format="aedat4", **options) as reader:
                    width = reader.properties.width or 1 << 15
                    height = reader.properties.height or 1 << 15
                    got = list(reader) if options.get("chunk_size") else [reader.read()]
        except aerflow.FormatError:
            continue
        for packet in got:
            assert packet.events.dtype == aerflow.EVENTS_DTYPE
            assert packet.triggers.dtype == aerflow.TRIGGERS_DTYPE
            assert packet.imu.dtype == aerflow.IMU_DTYPE
            if len(packet.events):
                assert int(packet.events["x"].max()) < width
                assert int(packet.events["y"].max()) < height


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("seeds")
    seeds = {}
    for compression in ("lz4", "zstd", "none"):
        path = write_file(
            directory / f"{compression}.aedat4",
            make_recording(300, seed=14, frames=1),
            compression=compression,
            packet_events=100,
        )
        seeds[compression] = path.read_bytes()
    return seeds


@pytest.mark.parametrize("seed", ["lz4", "zstd", "none"])
def test_fuzz_mutated_files(seed: str, fuzz_seeds: dict[str, bytes], tmp_path: Path) -> None:
    data = fuzz_seeds[seed]
    header_end = ref.parse_header(data)["data_offset"]
    position = st.one_of(st.integers(0, 64), st.integers(header_end - 8, len(data)))
    op = st.sampled_from(["flip", "set", "insert", "delete", "truncate"])
    changes_strategy = st.lists(
        st.tuples(op, position, st.integers(0, 255)), min_size=1, max_size=6
    )
    counter = [0]

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(changes=changes_strategy)
    def fuzz(changes: list[Mutation]) -> None:
        counter[0] += 1
        path = tmp_path / f"m{counter[0]}.aedat4"
        path.write_bytes(mutate(data, changes))
        check_survives(path)

    fuzz()


def test_fuzz_real_sample(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / SAMPLE).read_bytes()[:30_000]
    counter = [0]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        changes=st.lists(
            st.tuples(
                st.sampled_from(["flip", "set", "delete"]),
                st.integers(0, 30_000),
                st.integers(0, 255),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def fuzz(changes: list[Mutation]) -> None:
        counter[0] += 1
        path = tmp_path / f"s{counter[0]}.aedat4"
        path.write_bytes(mutate(data, changes))
        check_survives(path)

    fuzz()


def test_negative_event_time_is_refused(tmp_path: Path) -> None:
    source = write_file(
        tmp_path / "src.aedat4",
        make_recording(500, frames=0),
        compression="none",
        packet_events=100,
    )
    data = bytearray(source.read_bytes())
    position, _, _ = [p for p in ref.decode_file(source)["packets"] if p[1] == 0][1]
    assert data[position + 8 + 8 : position + 8 + 12] == b"EVTS"
    data[position + 8 + 32 + 7] = 0x80  # the first event's int64 time: negative
    path = tmp_path / "negative.aedat4"
    path.write_bytes(bytes(data))
    with pytest.raises(aerflow.FormatError, match="negative timestamp") as info:
        aerflow.read(path)
    assert info.value.offset == position


def test_file_with_two_event_streams(tmp_path: Path) -> None:
    """The first event stream by default, another by ``stream``, each with its own size."""
    from aerflow.formats.aedat4_description import StreamInfo, build_description, build_io_header

    first = make_recording(300, seed=20, frames=0).events
    second = make_recording(200, seed=21, frames=0).events
    second["x"] %= 50
    second["y"] %= 40
    description = build_description(
        [
            StreamInfo(0, "EVTS", {}, {"sizeX": "346", "sizeY": "260"}),
            StreamInfo(5, "EVTS", {}, {"sizeX": "50", "sizeY": "40"}),
        ]
    )
    body = b""
    for a, b in ((first[:150], second[:100]), (first[150:], second[100:])):
        for stream, events in ((0, a), (5, b)):
            payload = lz4.frame.compress(packets.encode_events(events))
            body += struct.pack("<ii", stream, len(payload)) + payload
    path = tmp_path / "stereo.aedat4"
    path.write_bytes(ref.MAGIC + build_io_header(1, -1, description.encode()) + body)
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (346, 260)
        assert reader.properties.event_count is None  # no table: not known before decoding
        assert_same_events(reader.read().events, first)
    with aerflow.open(path, stream=5) as reader:
        assert reader.properties.sensor_size == (50, 40)
        assert_same_events(reader.read().events, second)
    assert_same_events(ref.decode_file(path)["events"].astype(aerflow.EVENTS_DTYPE), first)


def test_trigger_channels_past_5_are_dropped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = np.zeros(2, aerflow.EVENTS_DTYPE)
    events["t"] = [1, 2]
    triggers = np.array([(1, 9, True), (2, 2, False)], aerflow.TRIGGERS_DTYPE)
    path = tmp_path / "d.aedat4"
    with aerflow.open(path, "w", width=346, height=260) as writer:
        writer.write(aerflow.Packet(events, triggers))
    assert writer.unwritten == {"triggers": 1}
    assert "1 triggers not written: AEDAT 4 triggers have channels 0-5" in caplog.text
    with aerflow.open(path) as reader:
        assert reader.read().triggers.tolist() == [(2, 2, False)]
