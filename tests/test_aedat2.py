"""iniVation AEDAT 1.0 / 2.0 (jAER): the real DVS128 sample, generated files in every layout
against the reference decoder, round trips through the writer, and bad input."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry
from aerflow.formats.aedat2 import Aedat2Reader, camera_from_header, merge_positions

from .helpers import assert_same_events, assert_same_triggers, deadline

try:
    from tests.reference import aedat as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import aedat as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

SAMPLE = "aedat2/dvs128_alex_walking_again.aedat"
CHUNK_SIZES = (4096, 4097, 5003, None)
DAVIS346 = " AEChip: eu.seebetter.ini.chips.davis.Davis346B"
DAVIS240 = " AEChip: eu.seebetter.ini.chips.davis.DAVIS240C"
DVS128 = " AEChip: ch.unizh.ini.jaer.chip.retina.DVS128"

_counter = [0]


def write(directory: Path, data: bytes, suffix: str = ".aedat") -> Path:
    _counter[0] += 1
    path = directory / f"file{_counter[0]}{suffix}"
    path.write_bytes(data)
    return path


def read_all(path: Path, **options: Any) -> tuple[aerflow.Packet, set[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught, deadline(20):
        warnings.simplefilter("always")
        packet = aerflow.read(path, triggers=True, **options)
    return packet, {w.category for w in caught}


def read_chunked(path: Path, chunk_size: int | None, **options: Any) -> aerflow.Packet:
    if chunk_size is not None:
        options["chunk_size"] = chunk_size
    with aerflow.open(path, **options) as reader:
        packets = list(reader)
    if not packets:
        return aerflow.Packet(np.empty(0, aerflow.EVENTS_DTYPE))
    return aerflow.Packet(
        np.concatenate([p.events for p in packets]), np.concatenate([p.triggers for p in packets])
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aedat2")


@pytest.fixture(scope="module", autouse=True)
def compiled(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compile (or load) the kernels before any test runs under a hang deadline."""
    folder = tmp_path_factory.mktemp("warm")
    for version in ("1.0", "2.0"):
        path = folder / f"warm{version}.aedat"
        path.write_bytes(ref.aedat2_file([(ref.dvs128_address(1, 2, True), 3)], version=version))
        assert len(aerflow.read(path)) == 1


# --------------------------------------------------------------------------- #
# The real DVS128 recording                                                   #
# --------------------------------------------------------------------------- #


def test_sample_gives_the_manifest_facts(
    shared_data: Path, manifest: dict[str, Any], digest: Callable[[np.ndarray], str]
) -> None:
    entry = manifest[SAMPLE]
    events = aerflow.read(shared_data / SAMPLE)
    assert events.dtype == aerflow.EVENTS_DTYPE
    assert len(events) == entry["events"]
    assert int(events["t"][0]) == entry["t_first"]
    assert int(events["t"][-1]) == entry["t_last"]
    assert [int(events["x"].min()), int(events["x"].max())] == entry["x_range"]
    assert [int(events["y"].min()), int(events["y"].max())] == entry["y_range"]
    assert float(events["on"].mean()) == pytest.approx(entry["on_fraction"], abs=1e-12)
    assert digest(events) == entry["sha256"]


def test_sample_properties_and_metadata(shared_data: Path, manifest: dict[str, Any]) -> None:
    path = shared_data / SAMPLE
    assert registry.detect(path).name == "aedat2"
    with aerflow.open(path) as reader:
        assert isinstance(reader, Aedat2Reader)
        assert reader.properties.format == "aedat2"
        assert reader.properties.sensor_size == tuple(manifest[SAMPLE]["sensor_size"])
        assert reader.metadata["AEChip"] == "ch.unizh.ini.jaer.chip.retina.DVS128"
        assert reader.metadata["HardwareInterface"].startswith("DVS128")
        assert reader.metadata["version"] == "2.0"
        assert reader.camera == "dvs128"
        assert reader.read().triggers.size == 0


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_sample_matches_the_reference(shared_data: Path, chunk_size: int | None) -> None:
    data = (shared_data / SAMPLE).read_bytes()
    events, triggers, _, _ = ref.decode_aedat2(data, "dvs128", "2.0", 128, 128)
    packet = read_chunked(shared_data / SAMPLE, chunk_size)
    assert_same_events(packet.events, events)
    assert_same_triggers(packet.triggers, triggers)


def test_sample_flipped(shared_data: Path) -> None:
    data = (shared_data / SAMPLE).read_bytes()
    expected, _, _, _ = ref.decode_aedat2(data, "dvs128", "2.0", 128, 128, flip_y=True)
    events = aerflow.read(shared_data / SAMPLE, flip_y=True)
    assert_same_events(events, expected)
    plain = aerflow.read(shared_data / SAMPLE)
    assert np.array_equal(events["y"], 127 - plain["y"])


def test_sample_through_the_writer(shared_data: Path, tmp_path: Path) -> None:
    packet = aerflow.read(shared_data / SAMPLE, triggers=True)
    path = tmp_path / "copy.aedat"
    aerflow.write(path, packet)
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (128, 128)
        assert reader.metadata["AEChip"] == "ch.unizh.ini.jaer.chip.retina.DVS128"
        copy = reader.read()
    assert_same_events(copy.events, packet.events)
    # The records are the same bytes as the original's.
    original = (shared_data / SAMPLE).read_bytes()
    assert path.read_bytes().endswith(original[ref.parse_header(original)[2] :])


def test_truncated_sample(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / SAMPLE).read_bytes()
    _, _, offset = ref.parse_header(data)
    full, _, _, _ = ref.decode_aedat2(data, "dvs128", "2.0", 128, 128)
    cuts = [1, 13, 14, 100, offset - 1, offset, offset + 1, offset + 7, offset + 8]
    cuts += [len(data) - 1, len(data) - 5, len(data) - 8, offset + 8 * 1234 + 3]
    for cut in cuts:
        path = write(tmp_path, data[:cut])
        if cut <= offset:
            try:
                packet, caught = read_all(path)
            except (aerflow.FormatError, aerflow.UnknownFormatError):
                continue
            assert len(packet.events) == 0
            assert caught <= {aerflow.TruncatedDataWarning}
            continue
        count = (cut - offset) // 8
        torn = (cut - offset) % 8 != 0
        packet, caught = read_all(path)
        assert_same_events(packet.events, full[:count])
        assert caught == ({aerflow.TruncatedDataWarning} if torn else set()), cut
        with warnings.catch_warnings(record=True) as chunked:
            warnings.simplefilter("always")
            events = read_chunked(path, 4096).events
        assert_same_events(events, full[:count])
        assert {w.category for w in chunked} == caught


# --------------------------------------------------------------------------- #
# Generated files: every layout against the reference                        #
# --------------------------------------------------------------------------- #


def dvs128_records(rng: np.random.Generator, count: int, t0: int) -> list[tuple[int, int]]:
    steps = rng.choice([0, 1, 7, 1000, 1 << 30, (1 << 31) + 5, -3], count)
    kinds = rng.choice(["event"] * 6 + ["external", "high"], count)
    records = []
    t = t0
    for step, kind in zip(steps.tolist(), kinds.tolist(), strict=True):
        t = max(t + step, 0)
        x, y, on = int(rng.integers(128)), int(rng.integers(128)), bool(rng.integers(2))
        address = ref.dvs128_address(x, y, on, external=kind == "external")
        if kind == "high":  # bits above the 16 DVS128 ones (ignored)
            address |= int(rng.integers(1, 0x10000)) << 16
        records.append((address, t))
    return records


def davis_records(rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
    steps = rng.choice([0, 1, 13, 5000, (1 << 31) + 1, -10], count)
    kinds = rng.choice(["dvs"] * 6 + ["external", "aps_reset", "aps_signal", "imu", "raw"], count)
    records = []
    t = 0
    for step, kind in zip(steps.tolist(), kinds.tolist(), strict=True):
        t = max(t + step, 0)
        if kind == "raw":
            address = int(rng.integers(0, 1 << 32))
        else:
            x, y, on = int(rng.integers(1024)), int(rng.integers(512)), bool(rng.integers(2))
            address = ref.davis_address(x, y, on, kind, imu_type=int(rng.integers(7)))
        records.append((address, t))
    return records


def reads_as_header(records: list[tuple[int, int]], version: str) -> bool:
    """Without an end-of-header line, a first record whose first byte is '#' reads as one
    more header line, in jAER as in aerflow: such a file is ambiguous, not one to test."""
    if not records:
        return False
    first_byte = records[0][0] >> (8 if version == "1.0" else 24) & 0xFF
    return first_byte == ord("#")


GENERATED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@GENERATED
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 700),
    t0=st.sampled_from([0, 5, 0xFFFFFF00]),
    version=st.sampled_from(["1.0", "2.0"]),
    flip=st.booleans(),
)
def test_generated_dvs128(
    seed: int, count: int, t0: int, version: str, flip: bool, workdir: Path
) -> None:
    records = dvs128_records(np.random.default_rng(seed), count, t0)
    assume(not reads_as_header(records, version))
    lines = [f"!AER-DAT{version}", DVS128] if version == "2.0" else ["!AER-DAT1.0", " jAER 1.0"]
    file = ref.aedat2_file(records, lines, version=version)
    path = write(workdir, file)
    events, triggers, _, _ = ref.decode_aedat2(file, "dvs128", version, 128, 128, flip)
    for chunk_size in (4096, None):
        packet = read_chunked(path, chunk_size, flip_y=flip)
        assert_same_events(packet.events, events)
        assert_same_triggers(packet.triggers, triggers)


@GENERATED
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 700),
    chip=st.sampled_from([(DAVIS346, 346, 260), (DAVIS240, 240, 180)]),
    flip=st.booleans(),
)
def test_generated_davis(
    seed: int, count: int, chip: tuple[str, int, int], flip: bool, workdir: Path
) -> None:
    line, width, height = chip
    records = davis_records(np.random.default_rng(seed), count)
    assume(not reads_as_header(records, "2.0"))
    file = ref.aedat2_file(records, ["!AER-DAT2.0", line])
    path = write(workdir, file)
    events, triggers, aps, imu = ref.decode_aedat2(file, "davis", "2.0", width, height, flip)
    for chunk_size in (4096, None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", aerflow.OutOfRangeWarning)
            with aerflow.open(path, flip_y=flip, chunk_size=chunk_size or 1 << 22) as reader:
                packet = reader.read()
                assert (reader.skipped_aps, reader.skipped_imu) == (aps, imu)
                assert reader.dropped_out_of_range == sum(
                    1
                    for a, _ in records
                    if a >> 31 == 0
                    and (a >> 10) & 1 == 0
                    and ((a >> 12) & 0x3FF >= width or (a >> 22) & 0x1FF >= height)
                )
        assert_same_events(packet.events, events)
        assert_same_triggers(packet.triggers, triggers)


def test_davis_words_by_hand(tmp_path: Path) -> None:
    records = [
        (ref.davis_address(5, 7, True), 10),
        (ref.davis_address(6, 8, False), 11),
        (ref.davis_address(kind="external"), 12),
        (ref.davis_address(3, 4, kind="aps_reset"), 13),
        (ref.davis_address(3, 4, kind="aps_signal"), 14),
        *((ref.davis_address(kind="imu", imu_type=k), 15) for k in range(7)),
        (ref.davis_address(345, 259, True), 16),
    ]
    path = write(tmp_path, ref.aedat2_file(records, ["!AER-DAT2.0", DAVIS346]))
    with aerflow.open(path) as reader:
        packet = reader.read()
        assert reader.properties.sensor_size == (346, 260)
        assert (reader.skipped_aps, reader.skipped_imu) == (2, 7)
    assert packet.events.tolist() == [(10, 5, 7, True), (11, 6, 8, False), (16, 345, 259, True)]
    assert packet.triggers.tolist() == [(12, 0, True)]


def test_timestamps_unwrap_past_32_bits(tmp_path: Path) -> None:
    stamps = [0xFFFFFFF0, 0xFFFFFFFF, 3, 100, 90, 0x80000000, 0xFFFFFFFE, 1]
    records = [(ref.dvs128_address(1, 2, True), t) for t in stamps]
    path = write(tmp_path, ref.aedat2_file(records))
    events = aerflow.read(path)
    expected = [0xFFFFFFF0, 0xFFFFFFFF, 1 << 32 | 3, 1 << 32 | 100, 1 << 32 | 90]
    expected += [1 << 32 | 0x80000000, 1 << 32 | 0xFFFFFFFE, 2 << 32 | 1]
    assert events["t"].tolist() == expected


def test_camera_option_overrides_the_header(tmp_path: Path) -> None:
    records = [(ref.davis_address(100, 50, True), 1), (ref.dvs128_address(3, 4, False), 2)]
    path = write(tmp_path, ref.aedat2_file(records, ["!AER-DAT2.0", DVS128]))
    file = path.read_bytes()
    as_dvs128, _, _, _ = ref.decode_aedat2(file, "dvs128", "2.0", 128, 128)
    assert_same_events(aerflow.read(path), as_dvs128)
    expected, _, _, _ = ref.decode_aedat2(file, "davis", "2.0", 346, 260)
    with aerflow.open(path, camera="davis346") as reader:
        assert reader.camera == "davis346"
        assert reader.properties.sensor_size == (346, 260)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", aerflow.OutOfRangeWarning)
            assert_same_events(reader.read().events, expected)
    with pytest.raises(ValueError, match="camera"):
        aerflow.read(path, camera="davis999")


def test_sensor_size_options_drop_events_outside(tmp_path: Path) -> None:
    records = [(ref.dvs128_address(x, x, True), x) for x in (1, 50, 100)]
    path = write(tmp_path, ref.aedat2_file(records))
    with pytest.warns(aerflow.OutOfRangeWarning):
        events = aerflow.read(path, width=64, height=64)
    assert events.tolist() == [(1, 1, 1, True), (50, 50, 50, True)]
    for width, height in ((0, 64), (64, -1), (10**20, 64)):
        with pytest.raises(ValueError, match=r"(?i)sensor|width|height"):
            aerflow.read(path, width=width, height=height)


@pytest.mark.parametrize(
    ("line", "camera", "size"),
    [
        ("AEChip: ch.unizh.ini.jaer.chip.retina.DVS128", "dvs128", (128, 128)),
        ("AEChip: ch.unizh.ini.jaer.chip.retina.Tmpdiff128", "dvs128", (128, 128)),
        ("AEChip: eu.seebetter.ini.chips.davis.DAVIS240C", "davis240", (240, 180)),
        ("AEChip: eu.seebetter.ini.chips.davis.SBret10", "davis240", (240, 180)),
        ("AEChip: eu.seebetter.ini.chips.davis.Davis346blue", "davis346", (346, 260)),
        ("AEChip: eu.seebetter.ini.chips.davis.Davis346BMono", "davis346", (346, 260)),
        ("AEChip: eu.seebetter.ini.chips.davis.Davis640", "davis640", (640, 480)),
        ("HardwareInterface: DVS128-V1 0298", "dvs128", (128, 128)),
        ("HardwareInterface: DAVIS FX3 0002-INI", "davis", None),
    ],
)
def test_camera_from_the_header(
    line: str, camera: str, size: tuple[int, int] | None, tmp_path: Path
) -> None:
    assert camera_from_header({line.split(":")[0]: line.split(": ")[1]}) == camera
    path = write(tmp_path, ref.aedat2_file([], ["!AER-DAT2.0", " " + line]))
    with aerflow.open(path) as reader:
        assert reader.camera == camera
        assert reader.properties.sensor_size == size


def test_header_without_a_chip(tmp_path: Path) -> None:
    record = struct.pack(">II", ref.davis_address(3, 4, True), 9)
    path = write(tmp_path, b"#!AER-DAT2.0\r\n# created today\r\n" + record)
    with pytest.raises(aerflow.FormatError, match="camera") as info:
        aerflow.read(path)
    assert (info.value.path, info.value.offset) == (str(path), 0)
    assert aerflow.read(path, camera="davis").tolist() == [(9, 3, 4, True)]
    with pytest.raises(ValueError, match="flip_y"):
        aerflow.read(path, camera="davis", flip_y=True)
    assert aerflow.read(path, camera="davis", width=8, height=6, flip_y=True).tolist() == [
        (9, 3, 1, True)
    ]


def test_aedat1_with_and_without_a_version_line(tmp_path: Path) -> None:
    records = [(ref.dvs128_address(5, 6, True), 70000), (ref.dvs128_address(0, 0, False), 1 << 31)]
    body = b"".join(struct.pack(">HI", a, t) for a, t in records)
    versioned = write(tmp_path, b"#!AER-DAT1.0\r\n" + body)
    assert aerflow.read(versioned).tolist() == [(70000, 5, 6, True), (1 << 31, 0, 0, False)]
    bare = write(tmp_path, b"# an old jAER file\r\n" + body)
    with pytest.raises(aerflow.NotThisFormatError) as info:
        aerflow.read(bare, format="aedat2")
    assert info.value.offset == 0
    assert aerflow.read(bare, format="aedat2", version="1.0").tolist() == [
        (70000, 5, 6, True),
        (1 << 31, 0, 0, False),
    ]
    with pytest.raises(aerflow.FormatError, match="16-bit"):
        aerflow.read(versioned, camera="davis346")


def test_large_file_on_two_threads(tmp_path: Path) -> None:
    """Over 8 MiB: decoded in two shares whose times and counters are joined."""
    n = (9 << 20) // 8
    index = np.arange(n, dtype=np.int64)
    stamps = (index * 9000) & 0xFFFFFFFF  # wraps about 2.4 times
    x, y = index % 346, index % 260
    addresses = (y << 22) | (x << 12) | ((index & 1) << 11)
    addresses[::1000] = ref.davis_address(kind="aps_signal")
    addresses[5::1000] = ref.davis_address(kind="external")
    records = np.empty(n, [("a", ">u4"), ("t", ">u4")])
    records["a"], records["t"] = addresses, stamps
    path = write(tmp_path, b"#!AER-DAT2.0\r\n#" + DAVIS346.encode() + b"\r\n" + records.tobytes())
    plain = (index % 1000 != 0) & (index % 1000 != 5)
    with aerflow.open(path) as reader:
        packet = reader.read()
        assert reader.skipped_aps == n // 1000 + 1
    times = index * 9000
    assert np.array_equal(packet.events["t"], times[plain])
    assert np.array_equal(packet.events["x"], x[plain])
    assert np.array_equal(packet.events["y"], y[plain])
    assert np.array_equal(packet.events["on"], (index & 1)[plain] == 1)
    assert np.array_equal(packet.triggers["t"], times[5::1000])


def test_large_aedat1_file_on_two_threads(tmp_path: Path) -> None:
    n = (9 << 20) // 6
    index = np.arange(n, dtype=np.int64)
    stamps = (index * 9000) & 0xFFFFFFFF
    x, y = index % 128, index % 100
    addresses = (y << 8) | (x << 1) | (index & 1)
    addresses[7::500] = 0x8000
    records = np.empty(n, [("a", ">u2"), ("t", ">u4")])
    records["a"], records["t"] = addresses, stamps
    path = write(tmp_path, b"#!AER-DAT1.0\r\n" + records.tobytes())
    packet = aerflow.read(path, triggers=True)
    plain = index % 500 != 7
    times = index * 9000
    assert np.array_equal(packet.events["t"], times[plain])
    assert np.array_equal(packet.events["x"], x[plain])
    assert np.array_equal(packet.events["y"], y[plain])
    assert np.array_equal(packet.triggers["t"], times[7::500])


# --------------------------------------------------------------------------- #
# Writing                                                                     #
# --------------------------------------------------------------------------- #


def make_events(n: int, width: int, height: int, seed: int, step: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.empty(n, aerflow.EVENTS_DTYPE)
    events["t"] = np.cumsum(rng.integers(0, step, n))
    events["x"] = rng.integers(0, width, n)
    events["y"] = rng.integers(0, height, n)
    events["on"] = rng.integers(0, 2, n) == 1
    return events


@pytest.mark.parametrize(
    ("camera", "size", "chip"),
    [
        ("dvs128", (128, 128), "ch.unizh.ini.jaer.chip.retina.DVS128"),
        ("davis240", (240, 180), "eu.seebetter.ini.chips.davis.DAVIS240C"),
        ("davis346", (346, 260), "eu.seebetter.ini.chips.davis.Davis346B"),
        ("davis640", (640, 480), "eu.seebetter.ini.chips.davis.Davis640"),
    ],
)
def test_round_trip(camera: str, size: tuple[int, int], chip: str, tmp_path: Path) -> None:
    events = make_events(5000, *size, seed=len(camera), step=3_000_000)  # several 2**32 wraps
    triggers = np.zeros(4, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = [0, int(events["t"][10]), int(events["t"][2500]), int(events["t"][-1]) + 1]
    triggers["rising"] = True
    path = tmp_path / f"{camera}.aedat"
    with aerflow.open(path, "w", camera=camera) as writer:
        writer.write(events[:2000], triggers[:2])
        writer.write(events[2000:], triggers[2:])
    data = path.read_bytes()
    assert data.startswith(b"#!AER-DAT2.0\r\n")
    assert f"# AEChip: {chip}\r\n".encode() in data
    packet, caught = read_all(path)
    assert caught == set()
    assert_same_events(packet.events, events)
    assert_same_triggers(packet.triggers, triggers)
    layout = "dvs128" if camera == "dvs128" else "davis"
    expected, expected_triggers, _, _ = ref.decode_aedat2(data, layout, "2.0", *size)
    assert_same_events(packet.events, expected)
    assert_same_triggers(packet.triggers, expected_triggers)
    # Triggers sit among the events by time, as jAER expects monotonic timestamps.
    _, _, offset = ref.parse_header(data)
    stamps = np.frombuffer(data[offset:], ">u4")[1::2].astype(np.int64)
    assert np.count_nonzero(np.diff(stamps) < -(1 << 31)) == int(events["t"][-1]) >> 32


def test_round_trip_flipped_and_chosen_by_size(tmp_path: Path) -> None:
    events = make_events(300, 200, 150, seed=3)
    path = tmp_path / "flipped.aedat"
    aerflow.write(path, events, flip_y=True)  # 200x150 fits a DAVIS240
    with aerflow.open(path) as reader:
        assert reader.camera == "davis240"
        stored = reader.read().events
    assert np.array_equal(stored["y"], 179 - events["y"])
    assert_same_events(aerflow.read(path, flip_y=True), events)


def test_time_origin_for_large_times(tmp_path: Path) -> None:
    events = make_events(100, 128, 128, seed=4)
    events["t"] += np.uint64(1_600_000_000_123_456)
    path = tmp_path / "unix.aedat"
    aerflow.write(path, events)
    assert b"# aerflow_time_origin: 1600000000000000\r\n" in path.read_bytes()
    with aerflow.open(path) as reader:
        assert reader.properties.t0 == 1_600_000_000_000_000
        assert_same_events(reader.read().events, events)


def test_writer_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    events = make_events(10, 128, 128, seed=5)
    wide = events.copy()
    wide["x"][3] = 128
    with pytest.raises(ValueError, match="outside"):
        aerflow.write(tmp_path / "a.aedat", wide, camera="dvs128", width=128, height=128)
    with pytest.raises(ValueError, match="does not fit"):
        aerflow.write(tmp_path / "b.aedat", events, camera="dvs128", width=346, height=260)
    with pytest.raises(ValueError, match="does not fit"):
        aerflow.write(tmp_path / "c.aedat", events, width=2000, height=10)
    jump = events.copy()
    jump["t"][5:] += np.uint64(1 << 33)
    with pytest.raises(ValueError, match="32-bit"):
        aerflow.write(tmp_path / "e.aedat", jump)
    with pytest.raises(ValueError, match="camera"):
        aerflow.open(tmp_path / "f.aedat", "w", camera="dvs999")
    assert not list(tmp_path.glob("*.aedat"))  # nothing half-written is left behind


def test_merge_positions_keep_the_events_order() -> None:
    events = np.array([5, 3, 9, 9, 12], np.uint64)
    triggers = np.array([0, 4, 6, 9, 20], np.uint64)
    assert merge_positions(events, triggers).tolist() == [0, 0, 2, 2, 5]


# --------------------------------------------------------------------------- #
# Bad input                                                                   #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"#!AER-DAT3.1\r\n#!END-HEADER\r\n",
        b"#!AER-DAT4.0\r\n" + b"\0" * 32,
        b"% evt 3.0\n% end\n" + b"\0" * 16,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    ],
)
def test_not_this_format(data: bytes, tmp_path: Path) -> None:
    path = write(tmp_path, data)
    with pytest.raises(aerflow.NotThisFormatError) as info:
        aerflow.read(path, format="aedat2")
    assert (info.value.path, info.value.offset) == (str(path), 0)


def test_header_only_and_cut_inside_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, b"#!AER-DAT2.0\r\n#" + DVS128.encode() + b"\r\n")
    packet, caught = read_all(path)
    assert len(packet.events) == 0
    assert caught == set()
    path = write(tmp_path, b"#!AER-DAT2.0\r\n#" + DVS128.encode())
    packet, caught = read_all(path)
    assert len(packet.events) == 0
    assert caught == {aerflow.TruncatedDataWarning}


def check_survives(path: Path) -> None:
    for fmt in ("aedat2", None):
        for options in ({}, {"chunk_size": 4096}, {"camera": "davis"}):
            try:
                with warnings.catch_warnings(), deadline(20):
                    warnings.simplefilter("ignore")
                    with aerflow.open(path, format=fmt, **options) as reader:
                        properties = reader.properties
                        packets = list(reader)
            except (aerflow.FormatError, aerflow.UnknownFormatError):
                continue
            except aerflow.OptionError:
                # Found from mutated bytes, another format may not take the options.
                assert fmt is None
                continue
            width = properties.width or 1024
            height = properties.height or 512
            for packet in packets:
                assert packet.events.dtype == aerflow.EVENTS_DTYPE
                if len(packet.events):
                    assert int(packet.events["x"].max()) < width
                    assert int(packet.events["y"].max()) < height


def mutate(data: bytes, changes: list[tuple[str, int, int]]) -> bytes:
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


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
        st.one_of(st.integers(0, 80), st.integers(0, 1 << 16)),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(changes=MUTATIONS, davis=st.booleans())
def test_fuzz_generated(changes: list[tuple[str, int, int]], davis: bool, workdir: Path) -> None:
    records = [
        (ref.dvs128_address(i % 128, i % 100, i % 3 == 0, i % 17 == 0), i) for i in range(64)
    ]
    lines = None
    if davis:
        records = [(ref.davis_address(i % 346, i % 260, i % 2 == 0), i * 99) for i in range(64)]
        lines = ["!AER-DAT2.0", DAVIS346]
    check_survives(write(workdir, mutate(ref.aedat2_file(records, lines), changes)))


@FUZZ
@given(changes=MUTATIONS)
def test_fuzz_sample(changes: list[tuple[str, int, int]], shared_data: Path, workdir: Path) -> None:
    data = (shared_data / SAMPLE).read_bytes()[:12_000]
    check_survives(write(workdir, mutate(data, changes)))


def test_first_record_starting_with_a_hash(tmp_path: Path) -> None:
    """A DAVIS address whose top byte is 0x23 ('#') right after the header is data, not a
    header line (it holds binary bytes); jAER's end line settles it too."""
    first = ref.davis_address(5, 140, True)
    assert first >> 24 == 0x23
    records = [(first, 1), (ref.davis_address(6, 7, False), 2)]
    for lines in (["!AER-DAT2.0", DAVIS346], ["!AER-DAT2.0", DAVIS346, "End Of ASCII Header"]):
        path = write(tmp_path, ref.aedat2_file(records, lines))
        assert aerflow.read(path).tolist() == [(1, 5, 140, True), (2, 6, 7, False)]


def test_a_header_without_a_chip_names_the_camera_the_addresses_fit(tmp_path: Path) -> None:
    davis = [(ref.davis_address(300, 200, True), 1), (ref.davis_address(10, 20, False), 2)]
    path = write(tmp_path, ref.aedat2_file(davis, ["!AER-DAT2.0"]))
    with pytest.raises(aerflow.FormatError, match="fit camera='davis346'"):
        aerflow.read(path)
    assert len(aerflow.read(path, camera="davis346")) == 2
    small = [(ref.dvs128_address(5, 6, True), 1)]
    path = write(tmp_path, ref.aedat2_file(small, ["!AER-DAT2.0"]))
    with pytest.raises(aerflow.FormatError, match="addresses are 16-bit, as camera='dvs128'"):
        aerflow.read(path)


def test_triggers_the_format_cannot_hold_are_dropped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """AEDAT 2.0 external events carry no channel or edge: the events are still written,
    with the triggers of id 0 rising; the others are dropped with one log line and a count."""
    events = make_events(10, 128, 128, seed=5)
    triggers = np.array(
        [(3, 0, True), (4, 0, False), (5, 3, True), (6, 0, True)], aerflow.TRIGGERS_DTYPE
    )
    path = tmp_path / "d.aedat"
    with aerflow.open(path, "w", camera="dvs128") as writer:
        writer.write(aerflow.Packet(events, triggers))
    assert writer.unwritten == {"triggers": 2}
    assert caplog.text.count("2 triggers not written") == 1
    back = aerflow.read(path, triggers=True)
    assert_same_events(back.events, events)
    assert back.triggers["t"].tolist() == [3, 6]
