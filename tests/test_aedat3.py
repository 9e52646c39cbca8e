"""iniVation AEDAT 3.0 / 3.1 (cAER): generated files against the reference decoder (every
packet type, invalid events, overflow, resets, triggers, IMU, frames, padding, sources),
round trips through the writer, and bad input. No real AEDAT 3 recording is available."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry
from aerflow.events import IMU_DTYPE, Frame, Packet, concatenate_packets
from aerflow.formats.aedat3 import Aedat3Reader, sensor_size_of_source

from .helpers import assert_same_events, assert_same_triggers, deadline

try:
    from tests.reference import aedat as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import aedat as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

_counter = [0]


def write(directory: Path, data: bytes, suffix: str = ".aedat") -> Path:
    _counter[0] += 1
    path = directory / f"file{_counter[0]}{suffix}"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aedat3")


@pytest.fixture(scope="module", autouse=True)
def compiled(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compile (or load) the kernel before any test runs under a hang deadline."""
    data = ref.aedat3_file([ref.aedat3_packet(1, [ref.polarity_event(1, 2, 3, True)])])
    path = tmp_path_factory.mktemp("warm") / "warm.aedat"
    path.write_bytes(data)
    assert len(aerflow.read(path)) == 1


def read_packets(path: Path, chunk_size: int | None = None, **options: Any) -> Packet:
    """Everything, through ``read()`` (no chunk size) or packet by packet."""
    with warnings.catch_warnings(), deadline(20):
        warnings.simplefilter("ignore", aerflow.OutOfRangeWarning)
        with aerflow.open(path, format="aedat3", **options) as reader:
            if chunk_size is None:
                return reader.read()
        with aerflow.open(path, format="aedat3", chunk_size=chunk_size, **options) as reader:
            packets = list(reader)
    return concatenate_packets(packets) if packets else Packet(ref_empty())


def ref_empty() -> np.ndarray:
    return np.empty(0, aerflow.EVENTS_DTYPE)


def assert_same_imu(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == IMU_DTYPE
    assert len(actual) == len(expected)
    assert actual.tobytes() == expected.astype(IMU_DTYPE).tobytes()  # NaN-exact


def assert_same_frames(actual: tuple[Frame, ...], expected: list[dict[str, Any]]) -> None:
    assert len(actual) == len(expected)
    for frame, wanted in zip(actual, expected, strict=True):
        assert frame.t == wanted["t"]
        assert (frame.exposure_start, frame.exposure_end) == (
            wanted["exposure_start"],
            wanted["exposure_end"],
        )
        assert (frame.x, frame.y) == (wanted["x"], wanted["y"])
        assert frame.pixels.dtype == np.uint16
        assert np.array_equal(frame.pixels, wanted["pixels"])


def assert_matches(packet: Packet, decoded: ref.Aedat3Decoded) -> None:
    assert_same_events(packet.events, decoded.events)
    assert_same_triggers(packet.triggers, decoded.triggers)
    assert_same_imu(packet.imu, decoded.imu)
    assert_same_frames(packet.frames, decoded.frames)


# --------------------------------------------------------------------------- #
# Generated files                                                             #
# --------------------------------------------------------------------------- #


def random_packets(rng: np.random.Generator, count: int) -> list[bytes]:
    packets = []
    t = int(rng.integers(0, 1 << 31))
    for _ in range(count):
        kind = str(rng.choice(["polarity"] * 4 + ["special", "imu", "frame", "other", "empty"]))
        overflow = int(rng.choice([0, 0, 1, 3]))
        n = int(rng.integers(1, 40))
        source = int(rng.choice([1, 1, 1, 2]))
        capacity = n + int(rng.choice([0, 0, 0, 3]))  # padding after the events
        times = [(t := (t + int(rng.integers(0, 1000))) & 0x7FFFFFFF) for _ in range(n)]
        valid = rng.random(n) > 0.1
        if kind == "polarity":
            events = [
                ref.polarity_event(
                    times[i],
                    int(rng.integers(0, 400)),
                    int(rng.integers(0, 300)),
                    bool(rng.integers(2)),
                    bool(valid[i]),
                )
                for i in range(n)
            ]
            packets.append(
                ref.aedat3_packet(1, events, overflow=overflow, source=source, capacity=capacity)
            )
        elif kind == "special":
            types = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 17, 50], n)
            events = [
                ref.special_event(
                    times[i], int(types[i]), int(rng.integers(1 << 24)), bool(valid[i])
                )
                for i in range(n)
            ]
            packets.append(ref.aedat3_packet(0, events, overflow=overflow, capacity=capacity))
        elif kind == "imu":
            nine = bool(rng.integers(2))
            events = [
                ref.imu_event(
                    times[i],
                    tuple(rng.normal(size=3).astype(np.float32).tolist()),
                    tuple(rng.normal(size=3).astype(np.float32).tolist()),
                    float(np.float32(rng.normal(30))),
                    tuple(rng.normal(size=3).astype(np.float32).tolist()) if nine else None,
                    bool(valid[i]),
                )
                for i in range(n)
            ]
            packets.append(
                ref.aedat3_packet(4 if nine else 3, events, overflow=overflow, capacity=capacity)
            )
        elif kind == "frame":
            channels = int(rng.choice([1, 3, 4]))
            shape = (int(rng.integers(0, 6)), int(rng.integers(0, 7)))
            frames = []
            for i in range(min(n, 3)):
                pixels = rng.integers(0, 1 << 16, shape + ((channels,) if channels > 1 else ()))
                stamps = tuple(sorted(times[i] + int(d) for d in rng.integers(0, 100, 4)))
                frames.append(
                    ref.frame_event(
                        (stamps[0], stamps[3], stamps[1], stamps[2]),
                        pixels.astype(np.uint16),
                        int(rng.integers(0, 300)),
                        int(rng.integers(0, 200)),
                        bool(valid[i]),
                    )
                )
            size = 36 + 2 * shape[0] * shape[1] * channels + int(rng.choice([0, 0, 6]))
            packets.append(ref.aedat3_packet(2, frames, size=size, overflow=overflow))
        elif kind == "other":
            other_type = int(rng.choice([7, 12, 100, -3]))
            size = int(rng.integers(4, 24))
            body = [bytes(rng.integers(0, 256, size, dtype=np.uint8)) for _ in range(n)]
            packets.append(ref.aedat3_packet(other_type, body, size=size, ts_offset=0))
        else:
            packets.append(ref.aedat3_packet(int(rng.choice([0, 1, 3])), [], size=8, capacity=0))
            if packets[-1][:2] == b"\x03\x00":
                packets[-1] = ref.aedat3_packet(3, [], size=36, capacity=0)
    return packets


TWO_SOURCES = [
    "!AER-DAT3.1",
    "Format: RAW",
    "Source 1: DAVIS346B",
    "Source 2: DAVIS346B",
    "Start-Time: 2024-01-01 00:00:00 (TZ+0000)",
    "!END-HEADER",
]
GENERATED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@GENERATED
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 30),
    source=st.sampled_from([None, 2]),
    flip=st.booleans(),
)
def test_generated_files(
    seed: int, count: int, source: int | None, flip: bool, workdir: Path
) -> None:
    data = ref.aedat3_file(random_packets(np.random.default_rng(seed), count), TWO_SOURCES)
    path = write(workdir, data)
    expected = ref.decode_aedat3(data, 346, 260, flip, source)
    assert not expected.truncated
    for chunk_size in (None, 4096, 4099):
        packet = read_packets(path, chunk_size, source=source, flip_y=flip)
        assert_matches(packet, expected)


def test_hand_built_file(tmp_path: Path) -> None:
    packets = [
        ref.aedat3_packet(
            1,
            [
                ref.polarity_event(10, 5, 7, True),
                ref.polarity_event(11, 6, 8, False, valid=False),
                ref.polarity_event(12, 345, 259, False),
            ],
        ),
        ref.aedat3_packet(
            0,
            [
                ref.special_event(13, 2),  # input 0 rising
                ref.special_event(14, 10),  # input 2 falling
                ref.special_event(15, 4),  # input 0 pulse: a rising edge
                ref.special_event(16, 0),  # timestamp wrap: nothing
                ref.special_event(17, 6, valid=False),
            ],
        ),
        ref.aedat3_packet(3, [ref.imu_event(18, (0.5, -1.0, 0.25), (10.0, 20.0, 30.0), 35.5)]),
        ref.aedat3_packet(
            4, [ref.imu_event(19, (1.0, 2.0, 3.0), (4.0, 5.0, 6.0), 7.0, (8.0, 9.0, 10.0))]
        ),
        ref.aedat3_packet(1, [ref.polarity_event(5, 1, 2, True)], overflow=2),
    ]
    path = write(tmp_path, ref.aedat3_file(packets))
    assert registry.detect(path).name == "aedat3"
    with aerflow.open(path) as reader:
        assert isinstance(reader, Aedat3Reader)
        assert reader.properties.sensor_size == (346, 260)
        assert reader.sources == {1: "DAVIS346B"}
        assert reader.metadata["Format"] == "RAW"
        packet = reader.read()
    assert packet.events.tolist() == [
        (10, 5, 7, True),
        (12, 345, 259, False),
        (2 << 31 | 5, 1, 2, True),
    ]
    assert packet.triggers.tolist() == [(13, 0, True), (14, 2, False), (15, 0, True)]
    assert packet.imu["t"].tolist() == [18, 19]
    assert packet.imu["temperature"].tolist() == [35.5, 7.0]
    assert packet.imu["accelerometer"].tolist() == [[0.5, -1.0, 0.25], [1.0, 2.0, 3.0]]
    assert packet.imu["gyroscope"].tolist() == [[10.0, 20.0, 30.0], [4.0, 5.0, 6.0]]
    assert np.isnan(packet.imu["magnetometer"][0]).all()
    assert packet.imu["magnetometer"][1].tolist() == [8.0, 9.0, 10.0]


def test_timestamp_reset_continues_time(tmp_path: Path) -> None:
    packets = [
        ref.aedat3_packet(1, [ref.polarity_event(100, 1, 1, True)], overflow=1),
        ref.aedat3_packet(1, [ref.polarity_event(200, 1, 1, True)], overflow=1),
        ref.aedat3_packet(0, [ref.special_event(0x7FFFFFFF, 1)], overflow=1),  # reset
        ref.aedat3_packet(1, [ref.polarity_event(5, 2, 2, False)]),
        ref.aedat3_packet(0, [ref.special_event(7, 3)]),
    ]
    path = write(tmp_path, ref.aedat3_file(packets))
    with aerflow.open(path) as reader:
        packet = reader.read()
        assert reader.timestamp_resets == 1
    base = 1 << 31 | 200
    assert packet.events["t"].tolist() == [1 << 31 | 100, base, base + 5]
    assert packet.triggers.tolist() == [(base + 7, 0, False)]


def test_frames_larger_than_the_chunk(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 1 << 16, (260, 346), dtype=np.uint16)
    colour = rng.integers(0, 1 << 16, (4, 5, 3), dtype=np.uint16)
    packets = [
        ref.aedat3_packet(2, [ref.frame_event((100, 900, 200, 800), pixels)]),
        ref.aedat3_packet(1, [ref.polarity_event(950, 3, 4, True)]),
        ref.aedat3_packet(2, [ref.frame_event((1000, 1100, 1010, 1090), colour, 20, 30)]),
    ]
    data = ref.aedat3_file(packets)
    path = write(tmp_path, data)
    for chunk_size in (None, 4096):
        packet = read_packets(path, chunk_size)
        assert_matches(packet, ref.decode_aedat3(data, 346, 260))
        assert packet.frames[0].t == 100
        assert (packet.frames[0].exposure_start, packet.frames[0].exposure_end) == (200, 800)
        assert packet.frames[1].pixels.shape == (4, 5, 3)
    flipped = read_packets(path, None, flip_y=True)
    assert np.array_equal(flipped.frames[0].pixels, pixels[::-1])
    assert (flipped.frames[1].x, flipped.frames[1].y) == (20, 260 - 30 - 4)
    assert flipped.events.tolist() == [(950, 3, 255, True)]


def test_aedat30_header_and_source_sizes(tmp_path: Path) -> None:
    packet = ref.aedat3_packet(1, [ref.polarity_event(3, 127, 0, True)], source=0)
    path = write(tmp_path, b"#!AER-DAT3.0\r\n#Source 0: DVS128\r\n" + packet)
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (128, 128)
        assert reader.metadata["version"] == "3.0"
        assert reader.read().events.tolist() == [(3, 127, 0, True)]
    assert aerflow.read(path, flip_y=True).tolist() == [(3, 127, 127, True)]
    assert sensor_size_of_source("DAVIS240C") == (240, 180)
    assert sensor_size_of_source("DAVIS346Cbsi") == (346, 260)
    assert sensor_size_of_source("DAVISHet640") is None
    assert sensor_size_of_source("File") is None
    bare = write(tmp_path, b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + packet)
    with aerflow.open(bare) as reader:
        assert reader.properties.sensor_size is None
    with pytest.raises(ValueError, match="flip_y"):
        aerflow.read(bare, flip_y=True)
    assert aerflow.read(bare, width=200, height=100, flip_y=True).tolist() == [(3, 127, 99, True)]


def test_first_record_starting_with_a_hash(tmp_path: Path) -> None:
    """A 3.0 header has no end line: a first packet of type 0x23 is still read as data."""
    odd = ref.aedat3_packet(0x23, [b"\x00" * 8], size=8, ts_offset=4)
    packet = ref.aedat3_packet(1, [ref.polarity_event(3, 1, 2, True)])
    path = write(tmp_path, b"#!AER-DAT3.0\r\n" + odd + packet)
    assert aerflow.read(path).tolist() == [(3, 1, 2, True)]


# --------------------------------------------------------------------------- #
# Writing                                                                     #
# --------------------------------------------------------------------------- #


def make_packet(n: int, seed: int, start: int = 0) -> Packet:
    rng = np.random.default_rng(seed)
    events = np.empty(n, aerflow.EVENTS_DTYPE)
    events["t"] = start + np.cumsum(rng.integers(0, 1_000_000, n))
    events["x"] = rng.integers(0, 346, n)
    events["y"] = rng.integers(0, 260, n)
    events["on"] = rng.integers(0, 2, n) == 1
    triggers = np.zeros(6, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = np.sort(rng.choice(events["t"], 6))
    triggers["id"] = [0, 1, 2, 0, 1, 2]
    triggers["rising"] = [True, False, True, False, True, False]
    imu = np.zeros(5, IMU_DTYPE)
    imu["t"] = np.sort(rng.choice(events["t"], 5))
    imu["temperature"] = rng.normal(30, 1, 5)
    imu["accelerometer"] = rng.normal(size=(5, 3))
    imu["gyroscope"] = rng.normal(size=(5, 3))
    imu["magnetometer"] = np.nan
    t = int(events["t"][n // 2])
    frames = (
        Frame(t, rng.integers(0, 1 << 16, (260, 346), dtype=np.uint16), t + 10, t + 500),
        Frame(t + 600, rng.integers(0, 256, (10, 20, 3), dtype=np.uint8), None, None, 5, 6),
    )
    return Packet(events, triggers, imu, frames)


def test_round_trip(tmp_path: Path) -> None:
    first = make_packet(20_000, seed=1)  # crosses 2**31 µs: several overflow values
    second = make_packet(3000, seed=2, start=int(first.events["t"][-1]) + 1)
    path = tmp_path / "out.aedat"
    with aerflow.open(path, "w", format="aedat3", width=346, height=260) as writer:
        writer.write(first)
        writer.write(second.events, second.triggers)
        writer.write(Packet(second.events[:0], imu=second.imu, frames=second.frames))
    data = path.read_bytes()
    assert data.startswith(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS346B\r\n")
    assert b"\r\n#!END-HEADER\r\n" in data
    assert int(first.events["t"][-1]) >> 31 >= 2
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (346, 260)
        packet = reader.read()
    expected = concatenate_packets([first, second])
    assert_same_events(packet.events, expected.events)
    assert_same_triggers(packet.triggers, expected.triggers)
    assert_same_imu(packet.imu, expected.imu)
    assert len(packet.frames) == 4
    for frame, original in zip(packet.frames, expected.frames, strict=True):
        assert frame.t == original.t
        assert frame.exposure_start == (original.exposure_start or original.t)
        assert frame.exposure_end == (original.exposure_end or original.t)
        assert (frame.x, frame.y) == (original.x, original.y)
        pixels = np.asarray(original.pixels)
        if pixels.dtype == np.uint8:
            pixels = pixels.astype(np.uint16) * 257
        assert np.array_equal(frame.pixels, pixels)
    decoded = ref.decode_aedat3(data, 346, 260)
    assert_matches(packet, decoded)
    # Packets are in order of their first (main) timestamp, each type keeping its own order.
    firsts = []
    position = ref.parse_header(data)[2]
    while position < len(data):
        kind, _, size, ts_offset, overflow, capacity = struct.unpack_from("<hhiiii", data, position)
        stamp = struct.unpack_from("<I", data, position + 28 + ts_offset)[0]
        firsts.append((overflow << 31 | stamp, kind))
        position += 28 + capacity * size
    first_call = [f for f in firsts if f[0] <= int(first.events["t"][-1])]
    assert first_call == sorted(first_call)
    assert len(first_call) > 5
    assert sum(1 for f in first_call if f[1] == 1) >= 3  # events split into several packets


def test_writer_from_aerflow_write(tmp_path: Path) -> None:
    packet = make_packet(500, seed=3)
    path = tmp_path / "plain.aedat"
    aerflow.write(path, packet.events, format="aedat3", triggers=packet.triggers)
    assert b"#aerflow_sensor_size: " in path.read_bytes()
    back = aerflow.read(path, triggers=True)
    assert_same_events(back.events, packet.events)
    assert_same_triggers(back.triggers, packet.triggers)
    # ".aedat" alone means AEDAT 2.0 for writing; reading goes by the version line.
    assert registry.for_writing(path).name == "aedat2"
    assert registry.detect(path).name == "aedat3"


def test_writer_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    packet = make_packet(100, seed=4)
    with (
        pytest.raises(ValueError, match="outside"),
        aerflow.open(tmp_path / "b.aedat", "w", format="aedat3", width=100, height=100) as w,
    ):
        w.write(packet.events)
    late = packet.events.copy()
    late["t"][-1] = np.uint64(1 << 62)
    with pytest.raises(ValueError, match="2\\*\\*62"):
        aerflow.write(tmp_path / "c.aedat", late, format="aedat3")
    for frame in (
        Frame(1, np.zeros((2, 2), np.float32)),
        Frame(1, np.zeros((2, 2, 2), np.uint16)),
        Frame((1 << 31) - 5, np.zeros((2, 2), np.uint16), None, (1 << 31) + 5),
    ):
        with (
            pytest.raises(ValueError, match="frame"),
            aerflow.open(tmp_path / "d.aedat", "w", format="aedat3") as writer,
        ):
            writer.write(Packet(packet.events[:0], frames=(frame,)))
    with pytest.raises(ValueError, match="15-bit"):
        aerflow.open(tmp_path / "e.aedat", "w", format="aedat3", width=40000, height=10)
    assert not list(tmp_path.glob("*.aedat"))


# --------------------------------------------------------------------------- #
# Bad input                                                                   #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n",
        b"#!AER-DAT4.0\r\n" + b"\0" * 32,
        b"% evt 3.0\n% end\n" + b"\0" * 16,
        b"# just a comment\r\n" + b"\0" * 28,
    ],
)
def test_not_this_format(data: bytes, tmp_path: Path) -> None:
    path = write(tmp_path, data)
    with pytest.raises(aerflow.NotThisFormatError) as info:
        aerflow.read(path, format="aedat3")
    assert (info.value.path, info.value.offset) == (str(path), 0)


def test_unsupported_packet_format(tmp_path: Path) -> None:
    path = write(tmp_path, b"#!AER-DAT3.1\r\n#Format: SerializedTS\r\n#!END-HEADER\r\n")
    with pytest.raises(aerflow.FormatError, match="SerializedTS") as info:
        aerflow.read(path)
    assert info.value.offset == 0


GOOD = ref.aedat3_packet(1, [ref.polarity_event(1, 2, 3, True)])


@pytest.mark.parametrize(
    "header",
    [
        struct.pack("<hhiiiiii", 1, 1, 0, 4, 0, 1, 1, 1),  # size 0
        struct.pack("<hhiiiiii", 1, 1, -8, 4, 0, 1, 1, 1),  # negative size
        struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, -1, 0, 0),  # negative capacity
        struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 2, 2),  # more events than capacity
        struct.pack("<hhiiiiii", 1, 1, 8, 4, -1, 1, 1, 1),  # negative overflow
        struct.pack("<hhiiiiii", 1, 1, 8, 6, 0, 1, 1, 1),  # timestamp past the event
        struct.pack("<hhiiiiii", 1, 1, 8, 0, 0, 1, 1, 1),  # timestamp not where polarity has it
        struct.pack("<hhiiiiii", 3, 1, 8, 4, 0, 1, 1, 1),  # IMU6 events of 8 bytes
        struct.pack("<hhiiiiii", 2, 1, 36, 8, 0, 1, 1, 1)  # a frame bigger than its event
        + ref.frame_event((1, 2, 3, 4), np.zeros((2, 2), np.uint16)),
    ],
)
def test_bad_packet_headers(header: bytes, tmp_path: Path) -> None:
    data = ref.aedat3_file([GOOD, header + b"\0" * 64])
    offset = len(data) - len(header) - 64
    path = write(tmp_path, data)
    with pytest.raises(ref.Aedat3Error) as reference:
        ref.decode_aedat3(data)
    for chunk_size in (None, 4096):
        with pytest.raises(aerflow.FormatError) as info, deadline(20):
            read_packets(path, chunk_size)
        assert info.value.path == str(path)
        expected = offset if header[:2] != b"\x02\x00" else offset + 28
        assert info.value.offset == expected == reference.value.offset


def test_truncated_files(tmp_path: Path) -> None:
    data = ref.aedat3_file(random_packets(np.random.default_rng(11), 12))
    _, _, offset = ref.parse_header(data)
    first_line = data.index(b"\n") + 1
    cuts = sorted({*range(0, len(data), 37), *range(offset - 3, offset + 40), len(data) - 1})
    for cut in cuts:
        path = write(tmp_path, data[:cut])
        expected = ref.decode_aedat3(data[:cut], 346, 260)
        for chunk_size in (None, 4096):
            with warnings.catch_warnings(record=True) as caught, deadline(20):
                warnings.simplefilter("always")
                try:
                    with aerflow.open(path, format="aedat3", chunk_size=chunk_size or 1 << 22) as r:
                        packet = (
                            r.read()
                            if chunk_size is None
                            else concatenate_packets(list(r) or [Packet(ref_empty())])
                        )
                except aerflow.FormatError:
                    assert cut < first_line
                    continue
            assert_matches(packet, expected)
            torn = expected.truncated or (cut < offset and not data[:cut].endswith(b"\n"))
            categories = {w.category for w in caught} - {aerflow.OutOfRangeWarning}
            assert categories == ({aerflow.TruncatedDataWarning} if torn else set()), cut


def check_survives(path: Path) -> None:
    for fmt in ("aedat3", None):
        for options in ({}, {"chunk_size": 4096}, {"source": 2}):
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
            width = properties.width or 1 << 15
            height = properties.height or 1 << 15
            for packet in packets:
                assert packet.events.dtype == aerflow.EVENTS_DTYPE
                assert packet.imu.dtype == IMU_DTYPE
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
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEED_FILE = ref.aedat3_file(random_packets(np.random.default_rng(5), 10))


@FUZZ
@given(
    changes=st.lists(
        st.tuples(
            st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
            st.one_of(st.integers(0, 200), st.integers(0, len(SEED_FILE))),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz(changes: list[tuple[str, int, int]], workdir: Path) -> None:
    check_survives(write(workdir, mutate(SEED_FILE, changes)))


@FUZZ
@given(
    body=st.binary(max_size=2000),
    header=st.sampled_from([b"#!AER-DAT3.1\r\n", b"#!AER-DAT3.0\r\n"]),
)
def test_random_bytes(body: bytes, header: bytes, workdir: Path) -> None:
    check_survives(write(workdir, header + body))


def test_trigger_ids_past_the_three_inputs_are_dropped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    packet = make_packet(100, seed=4)
    triggers = np.array([(5, 2, False), (6, 3, True), (7, 9, True)], aerflow.TRIGGERS_DTYPE)
    path = tmp_path / "a.aedat"
    with aerflow.open(path, "w", format="aedat3") as writer:
        writer.write(Packet(packet.events, triggers))
    assert writer.unwritten == {"triggers": 2}
    assert caplog.text.count("2 triggers not written: AEDAT 3 has external inputs 0, 1 and 2") == 1
    back = aerflow.read(path, triggers=True)
    assert back.triggers.tolist() == [(5, 2, False)]
    assert len(back.events) == len(packet.events)
