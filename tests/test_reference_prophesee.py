"""Tests of the plain-Python Prophesee reference decoders themselves.

Two kinds of checks:

* real recordings listed in ``shared/data/MANIFEST.json`` (EVT 2.0, EVT 3.0,
  DAT): count, first/last t, coordinate ranges, sensor size and the sha256
  digest produced by independent third-party decoders;
* small hand-built word sequences whose expected output is written out by
  hand below (never obtained by running a decoder).

The real-data tests skip when the shared data folder is absent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

# --------------------------------------------------------------------------- #
# Locating the shared data                                                    #
# --------------------------------------------------------------------------- #


def _find_data_dir() -> Path | None:
    """``AERFLOW_SHARED_DATA`` if set, else ``<ancestor>/shared/data``.

    The usual location is the ``shared`` folder beside the repository root
    (``Path(__file__).resolve().parents[2] / "shared"``); every ancestor is
    tried so that a checkout placed elsewhere still finds it.
    """
    env = os.environ.get("AERFLOW_SHARED_DATA")
    if env:
        path = Path(env)
        return path if (path / "MANIFEST.json").is_file() else None
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data"
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    return None


DATA_DIR = _find_data_dir()


def _manifest() -> dict[str, Any]:
    if DATA_DIR is None:
        return {}
    with (DATA_DIR / "MANIFEST.json").open(encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


_MANIFEST_FILES: dict[str, Any] = _manifest().get("files", {})
REAL_FILES = sorted(
    name for name, entry in _MANIFEST_FILES.items() if entry["format"] in ("evt2", "evt3", "dat")
)

# --------------------------------------------------------------------------- #
# Helpers                                                                     #
# --------------------------------------------------------------------------- #


def digest(events: np.ndarray) -> str:
    """MANIFEST digest: sha256 over t, x, y as <i8 then on as u1."""
    h = hashlib.sha256()
    h.update(events["t"].astype("<i8").tobytes())
    h.update(events["x"].astype("<i8").tobytes())
    h.update(events["y"].astype("<i8").tobytes())
    h.update(events["on"].astype("u1").tobytes())
    return h.hexdigest()


def ev(rows: list[tuple[int, int, int, bool]]) -> np.ndarray:
    return np.array(rows, dtype=ref.EVENTS)


def trig(rows: list[tuple[int, int, bool]]) -> np.ndarray:
    return np.array(rows, dtype=ref.TRIGGERS)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape, (actual.tolist(), expected.tolist())
    assert actual.tolist() == expected.tolist()


def u16(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}H", *words)


def u32(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


@functools.cache
def decode_real(name: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    assert DATA_DIR is not None
    path = DATA_DIR / name
    if _MANIFEST_FILES[name]["format"] == "dat":
        events, triggers, _ = ref.decode_dat(path.read_bytes())
        return events, triggers, None
    events, triggers, _, geometry = ref.decode_raw_file(path)
    return events, triggers, geometry


# --------------------------------------------------------------------------- #
# Real recordings                                                             #
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(DATA_DIR is None, reason="shared data folder not available")
@pytest.mark.parametrize("name", REAL_FILES or ["<none>"])
def test_real_file_matches_manifest(name: str) -> None:
    if name not in _MANIFEST_FILES:
        pytest.skip("no evt2/evt3/dat file in MANIFEST")
    assert DATA_DIR is not None
    if not (DATA_DIR / name).is_file():
        pytest.skip(f"{name} missing")
    entry = _MANIFEST_FILES[name]
    events, _, geometry = decode_real(name)
    assert events.dtype == ref.EVENTS
    assert len(events) == entry["events"]
    assert int(events["t"][0]) == entry["t_first"]
    assert int(events["t"][-1]) == entry["t_last"]
    assert [int(events["x"].min()), int(events["x"].max())] == entry["x_range"]
    assert [int(events["y"].min()), int(events["y"].max())] == entry["y_range"]
    assert float(events["on"].mean()) == pytest.approx(entry["on_fraction"], abs=1e-9)
    if "sensor_size" in entry:
        assert geometry is not None
        assert list(geometry) == entry["sensor_size"]
    assert digest(events) == entry["sha256"]


@pytest.mark.skipif(DATA_DIR is None, reason="shared data folder not available")
def test_real_headers() -> None:
    assert DATA_DIR is not None
    evt3 = DATA_DIR / "evt3" / "expelliarmus_evt3_gen41_2020-09-14.raw"
    evt2 = DATA_DIR / "evt2" / "evt2_gen3_2020-09-14.raw"
    if not evt3.is_file() or not evt2.is_file():
        pytest.skip("RAW samples missing")
    header3, offset3 = ref.parse_header(evt3.read_bytes())
    assert header3["evt"] == "3.0"
    assert header3["system_ID"] == "48"
    assert header3["Date"] == "2020-09-14 14:18:29"
    # Offsets read off a hex dump: the last header line ends at 0xA5 / 0xA3.
    evt3_data_start, evt2_data_start = 0xA6, 0xA4
    assert offset3 == evt3_data_start
    header2, offset2 = ref.parse_header(evt2.read_bytes())
    assert header2["evt"] == "2.0"
    assert header2["system_ID"] == "21"
    assert offset2 == evt2_data_start
    assert ref.raw_geometry(header3) == (1280, 720)
    assert ref.raw_geometry(header2) == (640, 480)


# --------------------------------------------------------------------------- #
# Header                                                                      #
# --------------------------------------------------------------------------- #


def test_parse_header_rules() -> None:
    data = b"% key  a   b\n% evt 2.0\r\n% \n% flag\n% end\n% after 1\n\x01\x02"
    header, offset = ref.parse_header(data)
    assert header == {"key": "a b", "evt": "2.0", "flag": ""}
    assert offset == data.index(b"% after")


def test_parse_header_stops_at_non_comment() -> None:
    data = b"% a 1\n%x not header\n"
    assert ref.parse_header(data) == ({"a": "1"}, 6)
    assert ref.parse_header(b"\x25\x00rest") == ({}, 0)
    assert ref.parse_header(b"") == ({}, 0)
    assert ref.parse_header(b"%") == ({}, 0)


def test_parse_header_without_final_newline() -> None:
    data = b"% a 1\n% b two words"
    assert ref.parse_header(data) == ({"a": "1", "b": "two words"}, len(data))


def test_parse_header_last_value_wins() -> None:
    assert ref.parse_header(b"% a 1\n% a 2\n") == ({"a": "2"}, 12)


def test_raw_geometry_precedence() -> None:
    fmt = {"format": "EVT3;height=720;width=1280", "geometry": "640x480"}
    assert ref.raw_geometry(fmt) == (1280, 720)
    assert ref.raw_geometry({"format": "EVT3", "geometry": "640x480"}) == (640, 480)
    assert ref.raw_geometry({"geometry": "320x320", "system_ID": "48"}) == (320, 320)
    assert ref.raw_geometry({"evt": "3.0", "system_ID": "48"}) == (1280, 720)
    assert ref.raw_geometry({"evt": "2.0", "system_ID": "21"}) == (640, 480)
    assert ref.raw_geometry({"evt": "3.0", "system_ID": "40"}) == (640, 480)
    assert ref.raw_geometry({"system_ID": "999"}) is None
    assert ref.raw_geometry({}) is None


def test_raw_format_and_order_selection() -> None:
    assert ref.raw_format_name({"format": "EVT21;endianness=little"}) == "evt21"
    assert ref.raw_format_name({"format": "EVT3", "evt": "2.0"}) == "evt3"
    assert ref.raw_format_name({"evt": "2.0"}) == "evt2"
    assert ref.raw_format_name({"evt": "2.1"}) == "evt21"
    with pytest.raises(ValueError, match="unsupported RAW format"):
        ref.raw_format_name({"format": "HISTO3D"})
    with pytest.raises(ValueError, match="cannot tell"):
        ref.raw_format_name({})
    little = "EVT21;endianness=little"
    assert ref.evt21_order({"format": little, "endianness": "legacy"}) == "little"
    assert ref.evt21_order({"format": "EVT21", "endianness": "legacy"}) == "legacy"
    assert ref.evt21_order({"format": "EVT21", "system_ID": "48"}) == "legacy"
    assert ref.evt21_order({"format": "EVT21", "system_ID": "55"}) == "little"
    assert ref.evt21_order({"format": "EVT21", "system_ID": "0"}) == "little"
    assert ref.evt21_order({"format": "EVT21"}) == "little"


# --------------------------------------------------------------------------- #
# EVT 3.0 hand-built vectors                                                  #
# --------------------------------------------------------------------------- #


def test_evt3_single_event() -> None:
    words = [
        0x6123,  # TIME_LOW before any TIME_HIGH: dropped
        0x0001,  # ADDR_Y before any TIME_HIGH: dropped
        0x2001,  # ADDR_X before any TIME_HIGH: dropped
        0x8005,  # TIME_HIGH 5
        0x0007,  # ADDR_Y 7
        0x6003,  # TIME_LOW 3
        0x2809,  # ADDR_X 9, pol 1
    ]
    events, triggers = ref.decode_evt3(u16(*words), 1280, 720)
    assert_same(events, ev([(5 * 4096 + 3, 9, 7, True)]))
    assert_same(triggers, trig([]))


def test_evt3_time_high_wrap_increments_loop() -> None:
    words = [
        0x8FFF,  # TIME_HIGH 4095
        0x0001,  # ADDR_Y 1
        0x600A,  # TIME_LOW 10
        0x2002,  # ADDR_X 2, OFF
        0x8000,  # TIME_HIGH 0: 4095 >= 0 + 2048 -> loop 1, low reset to 0
        0x2003,  # ADDR_X 3, OFF
        0x6005,  # TIME_LOW 5
        0x2804,  # ADDR_X 4, ON
    ]
    events, _ = ref.decode_evt3(u16(*words), 1280, 720)
    expected = ev(
        [
            (4095 * 4096 + 10, 2, 1, False),
            (1 << 24, 3, 1, False),
            ((1 << 24) + 5, 4, 1, True),
        ]
    )
    assert_same(events, expected)


def test_evt3_first_time_high_zero() -> None:
    # high = max(0 - 1, 0) = 0: equal to the word, low not reset (still 0).
    events, _ = ref.decode_evt3(u16(0x8000, 0x0002, 0x2001), 1280, 720)
    assert_same(events, ev([(0, 1, 2, False)]))


def test_evt3_time_low_backwards_and_small_time_high_drop() -> None:
    words = [
        0x8002,  # TIME_HIGH 2 -> base 8192
        0x0003,  # ADDR_Y 3
        0x6064,  # TIME_LOW 100
        0x2001,  # ADDR_X 1 -> t 8292
        0x6032,  # TIME_LOW 50 (backwards, applied as is)
        0x2002,  # ADDR_X 2 -> t 8242
        0x8002,  # same TIME_HIGH: low kept
        0x2003,  # ADDR_X 3 -> t 8242
        0x8001,  # TIME_HIGH 1 (drop < 2048: no loop), low reset
        0x2004,  # ADDR_X 4 -> t 4096
    ]
    events, _ = ref.decode_evt3(u16(*words), 1280, 720)
    expected = ev(
        [
            (8292, 1, 3, False),
            (8242, 2, 3, False),
            (8242, 3, 3, False),
            (4096, 4, 3, False),
        ]
    )
    assert_same(events, expected)


def test_evt3_vector_words_stand_alone() -> None:
    """Each VECT_12 / VECT_8 word gives its own events and moves the base by 12 / 8,
    in any number and order (not only the cameras' VECT_12, VECT_12, VECT_8)."""
    words = [
        0x8001,  # TIME_HIGH 1
        0x0064,  # ADDR_Y 100
        0x6007,  # TIME_LOW 7 -> t = 4103
        0x3828,  # VECT_BASE_X x=40, pol 1
        0x4805,  # VECT_12 bits 0, 2, 11 -> 40, 42, 51; base 52
        0x4001,  # VECT_12 bit 0 -> 52; base 64
        0x5080,  # VECT_8 bit 7 -> 71; base 72
        0x5001,  # VECT_8 bit 0 -> 72; base 80
        0x4001,  # VECT_12 bit 0 -> 80; base 92
        0x4000,  # base 104
        0x5000,  # base 112
        0x2005,  # ADDR_X 5, OFF
    ]
    events, _ = ref.decode_evt3(u16(*words), 1280, 720)
    t = 4096 + 7
    on = [(t, x, 100, True) for x in (40, 42, 51, 52, 71, 72, 80)]
    assert_same(events, ev([*on, (t, 5, 100, False)]))


def test_evt3_vectors_from_the_start_and_past_the_width() -> None:
    words = [
        0x8001,  # TIME_HIGH 1 -> t 4096
        0x0002,  # ADDR_Y 2
        0x4001,  # no VECT_BASE_X yet: the base is 0 -> x 0; base 12
        0x5000,  # base 20
        0x34EC,  # VECT_BASE_X 1260 (OFF)
        0x4FFF,  # 1260..1271; base 1272
        0x4FFF,  # 1272..1279 kept, 1280..1283 dropped; base 1284
        0x50FF,  # all past the width: dropped; base 1292
        0x3000,  # VECT_BASE_X 0
        0x4003,  # bits 0, 1 -> 0, 1
        0x34C0,  # VECT_BASE_X 1216
        0x4000,  # base 1228
        0x4000,  # base 1240
        0x5080,  # bit 7 -> x 1247
    ]
    events, _ = ref.decode_evt3(u16(*words), 1280, 720)
    xs = [0, *range(1260, 1280), 0, 1, 1247]
    assert_same(events, ev([(4096, x, 2, False) for x in xs]))


def test_evt3_invalid_rows_and_out_of_sensor() -> None:
    words = [
        0x8000,  # TIME_HIGH 0
        0x0805,  # ADDR_Y 5 with orig bit 11: invalid
        0x2001,  # no event
        0x4001,  # invalid row: no vector event either
        0x2002,  # no event
        0x1005,  # type-1 Y: not CD
        0x2004,  # no event
        0x02D0,  # ADDR_Y 720 == height: invalid
        0x2005,  # no event
        0x02CF,  # ADDR_Y 719: valid
        0x2500,  # ADDR_X 1280 == width: dropped (out of sensor)
        0x24FF,  # ADDR_X 1279: kept
        0x6001,  # TIME_LOW 1 (re-evaluates is_valid: still valid)
        0x2006,  # ADDR_X 6 at t 1
    ]
    events, _ = ref.decode_evt3(u16(*words), 1280, 720)
    assert_same(events, ev([(0, 1279, 719, False), (1, 6, 719, False)]))


def test_evt3_triggers_others_and_torn_tail() -> None:
    words = [
        0x8003,  # TIME_HIGH 3 -> 12288
        0x6010,  # TIME_LOW 16 -> 12304
        0xA301,  # EXT_TRIGGER id 3, rising
        0xAF00,  # EXT_TRIGGER id 15, falling
        0x0009,  # ADDR_Y 9
        0xE014,  # OTHERS ERC count and its CONTINUED_12, CONTINUED_12, CONTINUED_4 payload
        0xF123,
        0xF456,
        0x7001,
        0xE001,  # OTHERS, another subtype
        0x2807,  # ADDR_X 7 ON -> event
        0xE016,
        0xF000,
        0xF000,
        0x7000,
        0x2008,  # ADDR_X 8 OFF -> event
    ]
    payload = u16(*words) + b"\x99"  # plus a trailing partial word
    events, triggers = ref.decode_evt3(payload, 1280, 720)
    assert_same(events, ev([(12304, 7, 9, True), (12304, 8, 9, False)]))
    assert_same(triggers, trig([(12304, 3, True), (12304, 15, False)]))


def test_evt3_others_words_stand_alone_and_no_time_high() -> None:
    words = [0x8000, 0x0001, 0x2001, 0xE014, 0x2002, 0x2003]
    events, _ = ref.decode_evt3(u16(*words), 1280, 720)
    assert_same(events, ev([(0, x, 1, False) for x in (1, 2, 3)]))
    events, triggers = ref.decode_evt3(u16(0x0001, 0x2001, 0xA001), 1280, 720)
    assert_same(events, ev([]))
    assert_same(triggers, trig([]))


# --------------------------------------------------------------------------- #
# EVT 2.0 hand-built vectors                                                  #
# --------------------------------------------------------------------------- #


ON = 0x1  # CD_ON / EVT_POS type
OFF = 0x0  # CD_OFF / EVT_NEG type


def evt2_cd(kind: int, ts: int, x: int, y: int) -> int:
    return (kind << 28) | (ts << 22) | (x << 11) | y


def evt2_th(value: int) -> int:
    return (0x8 << 28) | value


def test_evt2_basic_words() -> None:
    words = [
        evt2_cd(ON, 1, 1, 1),  # before the first TIME_HIGH: dropped
        0xA0000101,  # trigger before the first TIME_HIGH: dropped
        evt2_th(100),  # base 6400
        evt2_cd(ON, 5, 10, 20),
        evt2_cd(OFF, 63, 2047, 2047),
        (0xA << 28) | (1 << 22) | (17 << 8) | 1,  # trigger id 17 rising, ts 1
        (0xA << 28) | (2 << 22) | (31 << 8) | 0,  # trigger id 31 falling, ts 2
        0xD0000000,  # IMU: skipped
        0xE0000014,  # OTHER: skipped
        0xF0000000,  # CONTINUED: skipped
        0x30000000,  # unknown type 3: skipped
    ]
    payload = u32(*words) + b"\x01\x02\x03"
    events, triggers = ref.decode_evt2(payload)
    assert_same(events, ev([(6405, 10, 20, True), (6463, 2047, 2047, False)]))
    assert_same(triggers, trig([(6401, 17, True), (6402, 31, False)]))
    events, _ = ref.decode_evt2(payload, width=640, height=480)
    assert_same(events, ev([(6405, 10, 20, True)]))


def test_evt2_34bit_loop() -> None:
    max_th = (1 << 28) - 1
    words = [
        evt2_th(max_th),  # base (2^28 - 1) << 6 = 17179869120
        evt2_cd(ON, 3, 0, 0),
        evt2_th(0),  # drop of the full range -> loop: base 2^34
        evt2_cd(ON, 2, 0, 0),
        evt2_th(1),  # base 2^34 + 64
        evt2_cd(OFF, 0, 0, 0),
        evt2_th(0),  # small drop: applied as is, no loop -> 2^34
        evt2_cd(OFF, 1, 0, 0),
    ]
    events, _ = ref.decode_evt2(u32(*words))
    expected = ev(
        [
            (17179869123, 0, 0, True),
            (17179869186, 0, 0, True),
            (17179869248, 0, 0, False),
            (17179869185, 0, 0, False),
        ]
    )
    assert_same(events, expected)


def test_evt2_loop_threshold() -> None:
    max_th = (1 << 28) - 1
    # base - new = ((2^28-1) << 6) - 156*64 >= MaxTimestamp - 10000 -> loop.
    looped = u32(evt2_th(max_th), evt2_th(156), evt2_cd(ON, 0, 0, 0))
    events, _ = ref.decode_evt2(looped)
    assert_same(events, ev([((1 << 34) + 156 * 64, 0, 0, True)]))
    # 157*64 = 10048 > 10000: not a loop, time steps back as is.
    not_looped = u32(evt2_th(max_th), evt2_th(157), evt2_cd(ON, 0, 0, 0))
    events, _ = ref.decode_evt2(not_looped)
    assert_same(events, ev([(157 * 64, 0, 0, True)]))


# --------------------------------------------------------------------------- #
# EVT 2.1 hand-built vectors                                                  #
# --------------------------------------------------------------------------- #


def evt21_hdr(kind: int, ts: int = 0, x: int = 0, y: int = 0) -> int:
    return (kind << 28) | (ts << 22) | (x << 11) | y


def evt21_pack(words: list[tuple[int, int]], order: str) -> bytes:
    packed = []
    for hdr, mask in words:
        packed.append((hdr << 32) | mask if order == "little" else (mask << 32) | hdr)
    return struct.pack(f"<{len(packed)}Q", *packed)


EVT21_WORDS: list[tuple[int, int]] = [
    (evt21_hdr(0x1, 1, 5, 5), 0xFFFFFFFF),  # before the first TIME_HIGH: dropped
    (evt21_hdr(0x8) | 10, 0),  # TIME_HIGH 10 -> 640
    (evt21_hdr(0x1, 5, 100, 7), 0b1011 | (1 << 31)),  # ON, t 645
    (evt21_hdr(0x0, 6, 0, 1), 0x1),  # OFF x 0, t 646
    (evt21_hdr(0xE, 9) | 0x0014, 0x123),  # ERC count: time only
    (evt21_hdr(0xE, 9) | 0x0015, 0),  # other OTHERS subtype: nothing
    (evt21_hdr(0xF), 0xFFFFFFFF),  # CONTINUED: skipped
    ((0xA << 28) | (12 << 22) | (5 << 8) | 0, 0),  # trigger id 5 falling, t 652
    ((0xA << 28) | (13 << 22) | (31 << 8) | 1, 0),  # trigger id 31 rising, t 653
    (evt21_hdr(0x8) | ((1 << 28) - 1), 0),  # TIME_HIGH max -> 17179869120
    (evt21_hdr(0x0, 1, 3, 4), 0x2),  # t max+1, x 4
    (evt21_hdr(0x8), 0),  # TIME_HIGH 0: full-range drop -> loop 1
    (evt21_hdr(0x1, 2, 8, 9), 0x1),  # t 2^34 + 2
    (evt21_hdr(0x8) | 5, 0),  # TIME_HIGH 5 -> 2^34 + 320
    (evt21_hdr(0x8) | 3, 0),  # TIME_HIGH 3: small drop, applied as is
    (evt21_hdr(0x1, 0, 0, 0), 0x1),  # t 2^34 + 192
]

EVT21_EVENTS = [
    (645, 100, 7, True),
    (645, 101, 7, True),
    (645, 103, 7, True),
    (645, 131, 7, True),
    (646, 0, 1, False),
    (17179869121, 4, 4, False),
    ((1 << 34) + 2, 8, 9, True),
    ((1 << 34) + 192, 0, 0, True),
]
EVT21_TRIGGERS = [(652, 5, False), (653, 31, True)]


@pytest.mark.parametrize("order", ["little", "legacy"])
def test_evt21_both_orders(order: str) -> None:
    payload = evt21_pack(EVT21_WORDS, order) + b"\x00" * 5  # partial word
    events, triggers = ref.decode_evt21(payload, order=order)
    assert_same(events, ev(EVT21_EVENTS))
    assert_same(triggers, trig(EVT21_TRIGGERS))
    # Sensor 104 x 8: x 131 (x >= width) and y 9 (y >= height) are dropped.
    events, _ = ref.decode_evt21(payload, order=order, width=104, height=8)
    kept = [
        (645, 100, 7, True),
        (645, 101, 7, True),
        (645, 103, 7, True),
        (646, 0, 1, False),
        (17179869121, 4, 4, False),
        ((1 << 34) + 192, 0, 0, True),
    ]
    assert_same(events, ev(kept))


def test_evt21_wrong_order_differs() -> None:
    payload = evt21_pack(EVT21_WORDS, "little")
    events, _ = ref.decode_evt21(payload, order="legacy")
    assert events.tolist() != ev(EVT21_EVENTS).tolist()
    with pytest.raises(ValueError, match="order must be"):
        ref.decode_evt21(payload, order="big")


# --------------------------------------------------------------------------- #
# DAT hand-built vectors                                                      #
# --------------------------------------------------------------------------- #


def dat_file(header: bytes, ev_type: int, records: list[tuple[int, int]]) -> bytes:
    body = b"".join(struct.pack("<II", t, w) for t, w in records)
    return header + bytes([ev_type, 8]) + body


def test_dat_v2_layout_and_wrap() -> None:
    header = b"% Version 2\n% Width 640\n% Height 480\n"
    records = [
        (10, 0x10048006),  # x 6, y 18, ON (spec example word)
        (20, 6 | (18 << 14) | (2 << 28)),  # p field 2: bit 28 clear -> OFF
        (0xFFFFFFF0, 16383 | (16383 << 14) | (1 << 28)),  # max x/y, no drop
        (0x10, 1),  # drop > 2^31 -> wrap: 2^32 + 16
        (0x08, 2),  # small decrease: kept as is, 2^32 + 8
    ]
    data = dat_file(header, 0x0C, records) + b"\x01\x02\x03"
    events, triggers, hdr = ref.decode_dat(data)
    expected = ev(
        [
            (10, 6, 18, True),
            (20, 6, 18, False),
            (0xFFFFFFF0, 16383, 16383, True),
            ((1 << 32) + 16, 1, 0, False),
            ((1 << 32) + 8, 2, 0, False),
        ]
    )
    assert_same(events, expected)
    assert_same(triggers, trig([]))
    assert hdr == {"Version": "2", "Width": "640", "Height": "480"}


def test_dat_v1_versus_v2() -> None:
    word = 5 | (3 << 9) | (1 << 17)  # v1: x 5, y 3, ON
    v1 = dat_file(b"% Version 1\n", 0x00, [(7, word)])
    events, _, _ = ref.decode_dat(v1)
    assert_same(events, ev([(7, 5, 3, True)]))
    # Same record read with the v2 layout: x = 0x605, y = 8, bit 28 clear.
    v2 = dat_file(b"% Data file containing Event2d events.\n", 0x00, [(7, word)])
    events, _, hdr = ref.decode_dat(v2)
    assert_same(events, ev([(7, 1541, 8, False)]))
    assert hdr == {"Data": "file containing Event2d events."}


def test_dat_triggers_and_end_line() -> None:
    header = b"% Date 2020-01-01 00:00:00\n% end\n"
    records = [
        (100, 1 | (3 << 26)),  # rising, id 3
        (200, 63 << 26),  # falling, id 63
        (300, 0x2),  # p = 2 -> rising, id 0
    ]
    events, triggers, hdr = ref.decode_dat(dat_file(header, 0x0E, records))
    assert_same(events, ev([]))
    assert_same(triggers, trig([(100, 3, True), (200, 63, False), (300, 0, True)]))
    assert hdr == {"Date": "2020-01-01 00:00:00"}


def test_dat_bad_size_and_empty() -> None:
    with pytest.raises(ValueError, match="event size"):
        ref.decode_dat(b"% Version 2\n\x0c\x10" + b"\x00" * 16)
    events, triggers, hdr = ref.decode_dat(b"% Version 2\n")
    assert len(events) == 0
    assert len(triggers) == 0
    assert hdr == {"Version": "2"}


# --------------------------------------------------------------------------- #
# RAW front-end on hand-built files                                           #
# --------------------------------------------------------------------------- #


def test_decode_raw_file_dispatch(tmp_path: Path) -> None:
    evt3 = tmp_path / "a.raw"
    evt3.write_bytes(
        b"% format EVT3;height=16;width=32\n% end\n"
        + u16(0x8005, 0x0007, 0x6003, 0x2809, 0x2020)  # last x 32 >= width
    )
    events, triggers, header, geometry = ref.decode_raw_file(evt3)
    assert geometry == (32, 16)
    assert header == {"format": "EVT3;height=16;width=32"}
    assert_same(events, ev([(5 * 4096 + 3, 9, 7, True)]))
    assert_same(triggers, trig([]))

    evt2 = tmp_path / "b.raw"
    evt2.write_bytes(
        b"% evt 2.0\n% system_ID 21\n"
        + u32(evt2_th(1), evt2_cd(ON, 1, 639, 479), evt2_cd(ON, 2, 640, 0))
    )
    events, _, _, geometry = ref.decode_raw_file(evt2)
    assert geometry == (640, 480)
    assert_same(events, ev([(65, 639, 479, True)]))

    legacy = tmp_path / "c.raw"
    legacy.write_bytes(b"% evt 2.1\n% system_ID 48\n" + evt21_pack(EVT21_WORDS, "legacy"))
    events, triggers, _, geometry = ref.decode_raw_file(legacy)
    assert geometry == (1280, 720)
    assert_same(events, ev(EVT21_EVENTS))
    assert_same(triggers, trig(EVT21_TRIGGERS))

    little = tmp_path / "d.raw"
    little.write_bytes(
        b"% format EVT21;endianness=little;width=1280;height=720\n% end\n"
        + evt21_pack(EVT21_WORDS, "little")
    )
    events, _, _, _ = ref.decode_raw_file(little)
    assert_same(events, ev(EVT21_EVENTS))

    no_geometry = tmp_path / "e.raw"
    no_geometry.write_bytes(b"% evt 3.0\n" + u16(0x8000))
    with pytest.raises(ValueError, match="geometry"):
        ref.decode_raw_file(no_geometry)
