"""Bad input: empty, header-only, garbage, truncated, mislabelled and mutated files.

Readers must refuse what they cannot read with aerflow.FormatError (or UnknownFormatError
when no format can be told), locating the problem with ``.path`` and ``.offset``; a file cut
short gives back every complete event before the cut and warns TruncatedDataWarning when the
cut falls inside a record; and no byte sequence makes a reader raise anything else or return
events outside the sensor.
"""

from __future__ import annotations

import random
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry

from .helpers import assert_same_events, deadline

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

FORMATS = ("evt3", "evt2", "evt21", "dat")
ACCEPTED_ERRORS = (aerflow.FormatError, aerflow.UnknownFormatError)
EVT3_HEADER = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"
EVT2_HEADER = b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n"
EVT21_HEADER = b"% format EVT21;endianness=little;height=720;width=1280\n% end\n"
DAT_HEADER = b"% Data file containing CD events.\n% Version 2\n% Width 304\n% Height 240\n"
Decoded = tuple[np.ndarray, np.ndarray, dict[str, str], int]

_counter = [0]


def write(directory: Path, data: bytes, suffix: str) -> Path:
    _counter[0] += 1
    path = directory / f"input{_counter[0]}{suffix}"
    path.write_bytes(data)
    return path


def read_recording(path: Path, **options: Any) -> tuple[aerflow.Packet, set[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught, deadline(20):
        warnings.simplefilter("always")
        packet = aerflow.read(path, triggers=True, **options)
    assert isinstance(packet, aerflow.Packet)
    return packet, {w.category for w in caught}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad_input")


# --------------------------------------------------------------------------- #
# Empty, header-only and garbage files                                        #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("suffix", [".raw", ".xyz", ""])
def test_empty_file_has_no_format(suffix: str, tmp_path: Path) -> None:
    path = write(tmp_path, b"", suffix)
    with pytest.raises(aerflow.UnknownFormatError):
        aerflow.read(path)


def test_empty_bin_file_is_an_empty_atis_recording(tmp_path: Path) -> None:
    # ATIS .bin has no header: its extension is all that names it.
    assert len(aerflow.read(write(tmp_path, b"", ".bin"))) == 0


def test_empty_dat_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"", ".dat")
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_file_with_explicit_format(fmt: str, tmp_path: Path) -> None:
    path = write(tmp_path, b"", ".raw")
    with pytest.raises(aerflow.NotThisFormatError) as info:
        aerflow.read(path, format=fmt)
    assert isinstance(info.value, ValueError)
    assert info.value.path == str(path)
    assert info.value.offset == 0


@pytest.mark.parametrize(
    ("header", "fmt", "size"),
    [
        (EVT3_HEADER, "evt3", (1280, 720)),
        (EVT2_HEADER, "evt2", (640, 480)),
        (EVT21_HEADER, "evt21", (1280, 720)),
        (b"% evt 3.0\n% system_ID 48\n", "evt3", (1280, 720)),  # legacy: no '% end'
        (DAT_HEADER + bytes([0x0C, 8]), "dat", (304, 240)),
    ],
)
def test_header_only(header: bytes, fmt: str, size: tuple[int, int], tmp_path: Path) -> None:
    path = write(tmp_path, header, ".dat" if fmt == "dat" else ".raw")
    packet, caught = read_recording(path)
    assert len(packet.events) == 0
    assert len(packet.triggers) == 0
    assert caught == set()
    with aerflow.open(path) as reader:
        assert reader.properties.format == fmt
        assert reader.properties.sensor_size == size
        assert list(reader) == []


def test_dat_header_without_type_bytes(tmp_path: Path) -> None:
    for tail in (b"", b"\x0c"):
        path = write(tmp_path, DAT_HEADER + tail, ".dat")
        with pytest.raises(aerflow.FormatError) as info:
            aerflow.read(path)
        assert info.value.path == str(path)
        assert info.value.offset == len(DAT_HEADER)


@pytest.mark.parametrize(
    "data",
    [
        b"%\x00garbage\x00\x01\x02",
        b"% \xff\xfe\xfd\n% \x80\x81 \x82\n% end\n" + bytes(range(256)),
        b"%% not a header\n" + b"\x00" * 64,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        b"% " + b"a" * 70_000,  # one header line longer than the sniffing window, no newline
    ],
)
def test_garbage_header(data: bytes, tmp_path: Path) -> None:
    path = write(tmp_path, data, ".raw")
    with pytest.raises(aerflow.UnknownFormatError):
        aerflow.read(path)
    for fmt in FORMATS:
        with pytest.raises(aerflow.FormatError) as info:
            aerflow.read(path, format=fmt)
        assert info.value.path == str(path)
        assert info.value.offset is not None
        assert 0 <= info.value.offset <= len(data)


def test_header_longer_than_the_sniffing_window(tmp_path: Path) -> None:
    """The header parser reads as far as the header goes (here past 64 KiB)."""
    comments = b"".join(b"%% comment%05d %s\n" % (i, b"x" * 40) for i in range(1600))
    assert len(comments) > 1 << 16
    payload = struct.pack("<4H", 0x8002, 0x0007, 0x6003, 0x2805)  # t = 2 << 12 | 3, x 5, y 7, ON
    path = write(tmp_path, comments + EVT3_HEADER + payload, ".raw")
    packet, caught = read_recording(path, format="evt3")
    assert packet.events.tolist() == [(2 << 12 | 3, 5, 7, True)]
    assert caught == set()


@pytest.mark.parametrize(
    "header",
    [
        b"% date 2024-01-01 00:00:00\n% geometry 640x480\n% end\n",
        b"% format HISTO3D;height=480;width=640\n% end\n",
        b"% evt 4.0\n% end\n",
        b"% system_ID 999\n% end\n",
    ],
)
def test_raw_header_naming_no_encoding(header: bytes, tmp_path: Path) -> None:
    path = write(tmp_path, header + b"\x00\x80" * 16, ".raw")
    with pytest.raises(aerflow.UnknownFormatError):
        aerflow.read(path)
    for fmt in ("evt3", "evt2", "evt21"):
        with pytest.raises(aerflow.FormatError) as info:
            aerflow.read(path, format=fmt)
        assert info.value.path == str(path)
        assert info.value.offset == 0


@pytest.mark.parametrize(("type_byte", "size_byte"), [(0x28, 8), (0x01, 8), (0x0C, 16), (0x0E, 0)])
def test_dat_of_unsupported_type(type_byte: int, size_byte: int, tmp_path: Path) -> None:
    path = write(tmp_path, DAT_HEADER + bytes([type_byte, size_byte]) + b"\x00" * 32, ".dat")
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    # The offending byte: the type byte right after the header, or the size byte after it.
    expected = len(DAT_HEADER) if type_byte not in (0x00, 0x0C, 0x0E) else len(DAT_HEADER) + 1
    assert info.value.offset == expected


# --------------------------------------------------------------------------- #
# Files of another format                                                     #
# --------------------------------------------------------------------------- #


def test_dat_read_as_evt3(tmp_path: Path) -> None:
    record = struct.pack("<II", 5, 3 | 4 << 14 | 1 << 28)
    path = write(tmp_path, DAT_HEADER + bytes([0x0C, 8]) + record, ".dat")
    assert aerflow.read(path).tolist() == [(5, 3, 4, True)]
    for fmt in ("evt3", "evt2", "evt21"):
        with pytest.raises(aerflow.NotThisFormatError) as info:
            aerflow.read(path, format=fmt)
        assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("header", "actual"),
    [(EVT2_HEADER, "evt2"), (EVT3_HEADER, "evt3"), (EVT21_HEADER, "evt21")],
)
def test_raw_read_as_another_format(header: bytes, actual: str, tmp_path: Path) -> None:
    path = write(tmp_path, header + b"\x00\x00\x00\x80" * 4, ".raw")
    for fmt in FORMATS:
        if fmt == actual:
            continue
        with pytest.raises(aerflow.NotThisFormatError) as info:
            aerflow.read(path, format=fmt)
        assert info.value.path == str(path)
        assert info.value.offset == 0


def test_real_file_read_as_another_format(prophesee_file: str, shared_data: Path) -> None:
    path = shared_data / prophesee_file
    with aerflow.open(path) as reader:
        actual = reader.properties.format
    for fmt in FORMATS:
        if fmt != actual:
            with pytest.raises(aerflow.NotThisFormatError):
                aerflow.read(path, format=fmt)


# --------------------------------------------------------------------------- #
# Headers that contradict themselves or hold impossible values                #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "header",
    [
        b"% format EVT3;height=720;width=1280\n% geometry 640x480\n% end\n",
        b"% evt 2.0\n% format EVT2;height=480;width=640\n% geometry 640x720\n% end\n",
        b"% format EVT21;endianness=little;height=720;width=1280\n% geometry 1280x480\n% end\n",
        b"% format EVT3;height=720;width=abc\n% end\n",
        b"% format EVT3;height=0;width=1280\n% end\n",
        b"% format EVT3;height=-720;width=1280\n% end\n",
        b"% evt 3.0\n% geometry 640by480\n% end\n",
        b"% evt 3.0\n% geometry x\n% end\n",
        b"% format EVT21;endianness=big;height=720;width=1280\n% end\n",
        b"% evt 3.0\n% geometry 64x64\n% aerflow_time_origin soon\n% end\n",
        b"% evt 3.0\n% geometry 64x64\n% aerflow_time_origin -5\n% end\n",
    ],
)
def test_contradictory_raw_header(header: bytes, tmp_path: Path) -> None:
    path = write(tmp_path, header + b"\x00\x80", ".raw")
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset == 0
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "lines",
    [
        b"% Width abc\n% Height 240\n",
        b"% Width 0\n% Height 240\n",
        b"% Width 304\n% Height -1\n",
        b"% Width 304\n% Height 240\n% aerflow_time_origin x\n",
    ],
)
def test_contradictory_dat_header(lines: bytes, tmp_path: Path) -> None:
    data = b"% Data file containing CD events.\n% Version 2\n" + lines + bytes([0x0C, 8])
    path = write(tmp_path, data + struct.pack("<II", 1, 2), ".dat")
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset == 0


def test_dat_width_too_large_for_any_sensor(tmp_path: Path) -> None:
    """A Width no sensor has: refused with a FormatError, or ignored; never a crash."""
    data = (
        b"% Data file containing CD events.\n% Version 2\n% Width 100000000000000000000\n"
        b"% Height 240\n" + bytes([0x0C, 8]) + struct.pack("<II", 1, 2 | 3 << 14)
    )
    path = write(tmp_path, data, ".dat")
    try:
        events = aerflow.read(path)
    except aerflow.FormatError as error:
        events = None
        where = (error.path, error.offset)
    if events is None:
        assert where == (str(path), 0)
    else:
        assert events.tolist() == [(1, 2, 3, False)]


@pytest.mark.parametrize(
    ("data", "suffix"),
    [
        (
            DAT_HEADER
            + b"% aerflow_time_origin 100000000000000000000\n"
            + bytes([0x0C, 8])
            + struct.pack("<II", 1, 2),
            ".dat",
        ),
        (
            EVT3_HEADER[:-6]
            + b"% aerflow_time_origin 100000000000000000000\n% end\n"
            + struct.pack("<3H", 0x8001, 0x0002, 0x2003),
            ".raw",
        ),
    ],
    ids=["dat", "evt3"],
)
def test_time_origin_beyond_64_bits(data: bytes, suffix: str, tmp_path: Path) -> None:
    """A time origin past 2**64 µs cannot be added to any time: a FormatError, not a crash."""
    path = write(tmp_path, data, suffix)
    with pytest.raises(aerflow.FormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)
    assert info.value.offset == 0


@pytest.mark.parametrize("fmt", ["evt3", "dat"])
def test_time_origin_never_wraps_timestamps(fmt: str, tmp_path: Path) -> None:
    """An origin so large that origin + t passes 2**64 - 1 must not wrap around silently."""
    origin = 2**64 - 3
    if fmt == "evt3":
        data = (
            EVT3_HEADER[:-6]
            + f"% aerflow_time_origin {origin}\n% end\n".encode()
            + struct.pack("<4H", 0x8000, 0x0002, 0x6009, 0x2003)  # t = 9 µs after the origin
        )
    else:
        data = (
            DAT_HEADER
            + f"% aerflow_time_origin {origin}\n".encode()
            + bytes([0x0C, 8])
            + struct.pack("<II", 9, 3 | 2 << 14)
        )
    path = write(tmp_path, data, ".dat" if fmt == "dat" else ".raw")
    try:
        events = aerflow.read(path)
    except aerflow.FormatError:
        return
    assert [int(t) for t in events["t"]] == [origin + 9]  # cannot hold: so a FormatError


# Small files of one event each: (bytes, suffix, the event worked out by hand).
SMALL_FILES: dict[str, tuple[bytes, str, tuple[int, int, int, bool]]] = {
    "evt3": (
        EVT3_HEADER + struct.pack("<4H", 0x8001, 0x0002, 0x6003, 0x2004),
        ".raw",
        (1 << 12 | 3, 4, 2, False),
    ),
    "evt2": (
        EVT2_HEADER + struct.pack("<2I", 0x8 << 28 | 1, 1 << 28 | 4 << 11 | 2),
        ".raw",
        (1 << 6, 4, 2, True),
    ),
    "evt21": (
        EVT21_HEADER + struct.pack("<2Q", 0x8 << 60 | 1 << 32, (1 << 28 | 4 << 11 | 2) << 32 | 1),
        ".raw",
        (1 << 6, 4, 2, True),
    ),
    "dat": (
        DAT_HEADER + bytes([0x0C, 8]) + struct.pack("<II", 1, 4 | 2 << 14),
        ".dat",
        (1, 4, 2, False),
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("width", "height"), [(10**20, 720), (1280, 2**64), (0, 720), (1280, 0), (-5, 720)]
)
def test_impossible_sensor_size_options(fmt: str, width: int, height: int, tmp_path: Path) -> None:
    """A sensor size given as a reader option is checked like one read from a header."""
    data, suffix, event = SMALL_FILES[fmt]
    path = write(tmp_path, data, suffix)
    assert aerflow.read(path).tolist() == [event]
    with pytest.raises(ValueError, match=r"(?i)width|height|sensor|size|dimension"):
        aerflow.read(path, width=width, height=height)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("whole", [True, False])
def test_error_inside_a_kernel_reaches_the_caller(fmt: str, whole: bool, tmp_path: Path) -> None:
    """Whatever a decoding step raises comes out as it is (the mapped window it was reading
    must not turn it into another error while being closed)."""
    data, suffix, _ = SMALL_FILES[fmt]
    path = write(tmp_path, data, suffix)
    reader_class = registry.get(fmt).reader_class()
    failing = mock.patch.object(reader_class, "_kernel", side_effect=RuntimeError("kernel failed"))
    decode: Callable[[Any], Any] = (lambda r: r.read()) if whole else list
    with aerflow.open(path) as reader, failing, pytest.raises(RuntimeError, match="kernel failed"):
        decode(reader)


# --------------------------------------------------------------------------- #
# Truncated real files                                                        #
# --------------------------------------------------------------------------- #


def evt3_torn(payload: bytes) -> bool:
    """True when an EVT 3.0 payload ends in a partial word or inside a VECT_12 (3 words) or
    ERC OTHERS (4 words) group that starts after the first TIME_HIGH."""
    if len(payload) % 2:
        return True
    words = struct.unpack(f"<{len(payload) // 2}H", payload)
    i = 0
    while i < len(words) and words[i] >> 12 != 0x8:
        i += 1
    while i < len(words):
        step = 1
        if words[i] >> 12 == 0x4:
            step = 3
        elif words[i] >> 12 == 0xE and words[i] & 0xFFF in (0x014, 0x016):
            step = 4
        if i + step > len(words):
            return True
        i += step
    return False


def evt2_complete_events(payload: bytes, width: int, height: int) -> int:
    """How many events the complete EVT 2.0 words of ``payload`` hold (counted with numpy)."""
    words = np.frombuffer(payload[: len(payload) - len(payload) % 4], "<u4")
    kinds = words >> 28
    starts = np.flatnonzero(kinds == 0x8)
    if len(starts) == 0:
        return 0
    words, kinds = words[starts[0] :], kinds[starts[0] :]
    x, y = (words >> 11) & 0x7FF, words & 0x7FF
    return int(np.count_nonzero((kinds <= 1) & (x < width) & (y < height)))


def cut_offsets(name: str, size: int, data_offset: int) -> list[int]:
    rng = random.Random(name)
    near = [0, 1, 2, data_offset - 1, data_offset, data_offset + 1, data_offset + 2]
    near += [data_offset + k for k in range(3, 12)]
    near += [size - k for k in range(1, 10)]
    near += [rng.randrange(data_offset, size) for _ in range(16)]
    near += [rng.randrange(0, data_offset) for _ in range(3)]
    return sorted({o for o in near if 0 <= o < size})


def test_truncated_real_files(
    prophesee_file: str,
    shared_data: Path,
    reference_decode: Callable[[Path], Decoded],
    tmp_path: Path,
) -> None:
    source = shared_data / prophesee_file
    data = source.read_bytes()
    full, _, header, data_offset = reference_decode(source)
    is_dat = source.suffix == ".dat"
    records_start = data_offset + 2 if is_dat else data_offset
    geometry = None if is_dat else ref.raw_geometry(header)
    for cut in cut_offsets(prophesee_file, len(data), data_offset):
        path = tmp_path / f"cut{cut}{source.suffix}"
        path.write_bytes(data[:cut])
        if cut < records_start:
            # Inside the header (or before a DAT's type bytes): refused, or nothing to read.
            try:
                packet, caught = read_recording(path)
            except ACCEPTED_ERRORS:
                continue
            assert len(packet.events) == 0, cut
            assert aerflow.OutOfRangeWarning not in caught
            continue
        payload = data[records_start:cut]
        if is_dat:
            count = len(payload) // 8
            torn = len(payload) % 8 != 0
        elif prophesee_file.startswith("evt2") or ref.raw_format_name(header) == "evt2":
            assert geometry is not None
            count = evt2_complete_events(payload, *geometry)
            torn = len(payload) % 4 != 0
        else:
            assert geometry is not None
            cut_events, _ = ref.decode_evt3(payload, *geometry)
            count = len(cut_events)
            torn = evt3_torn(payload)
        expected = full[:count]
        if not is_dat and ref.raw_format_name(header) == "evt3":
            assert cut_events.tolist() == expected.tolist()  # a cut only drops later events
        packet, caught = read_recording(path)
        assert_same_events(packet.events, expected)
        assert caught == ({aerflow.TruncatedDataWarning} if torn else set()), cut
        # The same through packets of the smallest chunk size.
        with warnings.catch_warnings(record=True) as chunked_warnings:
            warnings.simplefilter("always")
            with aerflow.open(path, chunk_size=4096) as reader:
                parts = [p.events for p in reader]
        events = np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)
        assert_same_events(events, expected)
        assert {w.category for w in chunked_warnings} == caught


@pytest.mark.parametrize("fmt", ["dat", "evt2", "evt21", "evt3"])
def test_large_file_cut_inside_a_record(fmt: str, tmp_path: Path) -> None:
    """A file of several MiB (read on two threads) cut one byte into a record, without any
    trigger: every complete event comes back, with a TruncatedDataWarning."""
    n = (9 << 20) // 8
    t = np.arange(n, dtype=np.int64) * 3
    if fmt == "dat":
        records = np.empty(n, [("t", "<u4"), ("w", "<u4")])
        records["t"], records["w"] = t, t % 300 | (t % 200) << 14
        data = DAT_HEADER + bytes([0x0C, 8]) + records.tobytes()
        expected = list(
            zip(t.tolist(), (t % 300).tolist(), (t % 200).tolist(), [False] * n, strict=True)
        )
    elif fmt == "evt2":
        words = np.empty(2 * n, "<u4")  # TIME_HIGH, then an event at x = y = 1
        words[0::2] = 0x8 << 28 | t >> 6
        words[1::2] = (t & 63) << 22 | 1 << 11 | 1
        data = EVT2_HEADER + words.tobytes()
        expected = [(v, 1, 1, False) for v in t.tolist()]
    elif fmt == "evt21":
        words = np.empty(n, "<u8")  # TIME_HIGH, then an event at x = y = 1 (little order)
        words[0::2] = (0x8 << 28 | t[1::2] >> 6).astype(np.uint64) << np.uint64(32)
        words[1::2] = ((t[1::2] & 63) << 22 | 1 << 11 | 1).astype(np.uint64) << np.uint64(
            32
        ) | np.uint64(1)
        data = EVT21_HEADER + words.tobytes()
        expected = [(v, 1, 1, False) for v in t[1::2].tolist()]
    else:
        words = np.empty((n, 4), "<u2")  # TIME_HIGH, TIME_LOW, ADDR_Y 1, ADDR_X 1
        tt = t % (1 << 24)
        words[:, 0], words[:, 1], words[:, 2], words[:, 3] = (
            0x8000 | tt >> 12,
            0x6000 | tt & 0xFFF,
            1,
            0x2001,
        )
        data = EVT3_HEADER + words.tobytes()
        expected = [(v, 1, 1, False) for v in tt.tolist()]
    path = write(tmp_path, data + b"\x00", ".dat" if fmt == "dat" else ".raw")
    packet, caught = read_recording(path)
    assert len(packet.events) == len(expected)
    assert packet.events.tolist() == expected
    assert caught == {aerflow.TruncatedDataWarning}


def test_truncated_warning_is_a_pytest_warning(tmp_path: Path) -> None:
    """The torn tail warns with the file's name, and every complete event comes back."""
    payload = struct.pack("<3H", 0x8001, 0x0002, 0x2003) + b"\x10"  # a word cut short
    path = write(tmp_path, EVT3_HEADER + payload, ".raw")
    with pytest.warns(aerflow.TruncatedDataWarning, match=path.name):
        events = aerflow.read(path)
    assert events.tolist() == [(1 << 12, 3, 2, False)]


# --------------------------------------------------------------------------- #
# Random bytes and mutated files                                              #
# --------------------------------------------------------------------------- #


def check_survives(path: Path) -> None:
    """Every reader either refuses the file with an aerflow error or returns sane arrays."""
    for fmt in (None, *FORMATS):
        for chunk_size in (None, 4096):
            options: dict[str, Any] = {} if chunk_size is None else {"chunk_size": chunk_size}
            try:
                with warnings.catch_warnings(), deadline(20):
                    warnings.simplefilter("ignore")
                    with aerflow.open(path, format=fmt, **options) as reader:
                        properties = reader.properties
                        packets = list(reader)
            except ACCEPTED_ERRORS:
                continue
            limit = 1 << 14 if properties.format == "dat" else 1 << 11
            width = properties.width or limit
            height = properties.height or limit
            for packet in packets:
                assert packet.events.dtype == aerflow.EVENTS_DTYPE
                assert packet.triggers.dtype == aerflow.TRIGGERS_DTYPE
                if len(packet.events):
                    assert int(packet.events["x"].max()) < width
                    assert int(packet.events["y"].max()) < height


FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADERS = [
    b"",
    EVT3_HEADER,
    EVT2_HEADER,
    EVT21_HEADER,
    b"% format EVT21;endianness=legacy\n% end\n",
    b"% evt 3.0\n% system_ID 48\n",
    b"% evt 2.0\n",  # no geometry at all
    DAT_HEADER + bytes([0x0C, 8]),
    b"% Data file containing CD events.\n% Version 1\n" + bytes([0x00, 8]),
    b"% Data file containing ExtTrigger events.\n% Version 2\n" + bytes([0x0E, 8]),
]


@FUZZ
@given(
    header=st.sampled_from(HEADERS),
    body=st.binary(max_size=3000),
    suffix=st.sampled_from([".raw", ".dat", ".bin"]),
)
def test_random_bytes(header: bytes, body: bytes, suffix: str, workdir: Path) -> None:
    check_survives(write(workdir, header + body, suffix))


Mutation = tuple[str, int, int]


def mutations(header_size: int) -> st.SearchStrategy[list[Mutation]]:
    position = st.one_of(st.integers(0, header_size + 8), st.integers(0, 1 << 20))
    op = st.sampled_from(["flip", "set", "insert", "delete", "truncate"])
    return st.lists(st.tuples(op, position, st.integers(0, 255)), min_size=1, max_size=8)


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


def synthetic_seeds() -> dict[str, tuple[bytes, str]]:
    """Small valid files of every format, built by hand (used whether or not shared data exist)."""
    evt3 = [0x8001, 0x0002, 0x6003, 0x2805, 0x3010, 0x4FFF, 0x4001, 0x5080, 0xA101]
    evt3 += [0xE014, 0x0001, 0x0002, 0x0003, 0x8002, 0x0103, 0x2004, 0x6FFF, 0x2004]
    evt2 = [0x8 << 28 | 5, 1 << 28 | 3 << 22 | 100 << 11 | 50, 0xA << 28 | 3 << 8 | 1]
    evt2 += [0x8 << 28 | 6, 0 << 28 | 63 << 22 | 639 << 11 | 479]
    evt21 = [
        (0x8 << 28 | 5, 0),
        (1 << 28 | 3 << 22 | 100 << 11 | 50, 0xF0F0),
        (0xE << 28 | 0x14, 0),
    ]
    dat = b"".join(
        struct.pack("<II", t, t % 300 | (t % 200) << 14 | (t & 1) << 28) for t in range(64)
    )
    return {
        "evt3": (EVT3_HEADER + struct.pack(f"<{len(evt3)}H", *evt3) * 8, ".raw"),
        "evt2": (EVT2_HEADER + struct.pack(f"<{len(evt2)}I", *evt2) * 8, ".raw"),
        "evt21": (
            EVT21_HEADER + b"".join(struct.pack("<Q", h << 32 | m) for h, m in evt21) * 8,
            ".raw",
        ),
        "dat": (DAT_HEADER + bytes([0x0C, 8]) + dat, ".dat"),
    }


@pytest.mark.parametrize("seed", ["evt3", "evt2", "evt21", "dat"])
def test_fuzz_synthetic_files(seed: str, workdir: Path) -> None:
    data, suffix = synthetic_seeds()[seed]
    header_size = ref.parse_header(data)[1]
    check_survives(write(workdir, data, suffix))

    @FUZZ
    @given(changes=mutations(header_size), rename=st.booleans())
    def fuzz(changes: list[Mutation], rename: bool) -> None:
        check_survives(write(workdir, mutate(data, changes), ".bin" if rename else suffix))

    fuzz()


def test_fuzz_real_files(prophesee_file: str, shared_data: Path, workdir: Path) -> None:
    source = shared_data / prophesee_file
    data = source.read_bytes()[:40_000]  # a prefix keeps every example fast
    header_size = ref.parse_header(data)[1]

    @FUZZ
    @given(changes=mutations(header_size), rename=st.booleans())
    def fuzz(changes: list[Mutation], rename: bool) -> None:
        check_survives(write(workdir, mutate(data, changes), ".bin" if rename else source.suffix))

    fuzz()
