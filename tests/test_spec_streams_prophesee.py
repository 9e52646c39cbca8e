"""Spec-complete Prophesee streams (EVT 3.0, EVT 2.0, EVT 2.1, DAT) decode to what they hold.

``tests/strategies/prophesee.py`` draws files the format notes allow, far beyond what aerflow's
writers emit (redundant and skipped words, any vector sequence, header variants, counter
wraps), each with the events and triggers it holds. Every such file must give exactly those
through ``aerflow.read`` (one thread and two), through ``aerflow.open`` in chunks of drawn
sizes, and through the plain-Python reference decoders. Hand-written byte vectors pin a few
cases down, and a last group of tests covers what the spec leaves unsure, checking only what
every reading agrees on.
"""

from __future__ import annotations

import contextlib
import struct
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.formats import _base
from aerflow.formats.evt3 import Evt3Reader

from . import peers
from .helpers import assert_same_events, assert_same_triggers
from .strategies import prophesee as spec

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Chunks below the public 4096-byte minimum put window edges inside the short drawn streams;
# the largest group of words any of these formats has is 8 bytes (an EVT 3.0 ERC count).
FINE_CHUNK = 16
FINE_CHUNKS = st.lists(st.integers(FINE_CHUNK, 600), min_size=1, max_size=2)


# --------------------------------------------------------------------------------------------- #
# Reading every way                                                                             #
# --------------------------------------------------------------------------------------------- #


@contextlib.contextmanager
def written(stream: spec.Stream) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"stream{stream.suffix}"
        path.write_bytes(stream.data)
        yield path


def concatenated(packets: Sequence[aerflow.Packet]) -> aerflow.Packet:
    return aerflow.Packet(
        np.concatenate([p.events for p in packets] or [np.empty(0, aerflow.EVENTS_DTYPE)]),
        np.concatenate([p.triggers for p in packets] or [np.empty(0, aerflow.TRIGGERS_DTYPE)]),
    )


def read_chunked(path: Path, chunk_size: int) -> aerflow.Packet:
    with mock.patch.object(_base, "_MIN_CHUNK_SIZE", min(FINE_CHUNK, chunk_size)):
        reader = aerflow.open(path, chunk_size=chunk_size)
    with reader:
        return concatenated(list(reader))


def read_two_threads(path: Path, warm_up_words: int | None = 16) -> aerflow.Packet:
    """``read()`` made to split the file between two threads whatever its size (EVT 3.0 also
    needs its warm-up stretch shortened unless the file is large)."""
    with aerflow.open(path) as reader:
        reader.parallel_min_bytes = 0
        if warm_up_words is not None and hasattr(reader, "warm_up_words"):
            reader.warm_up_words = warm_up_words
        return reader.read()


def reference(stream: spec.Stream, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if stream.format == "dat":
        events, triggers, _ = ref.decode_dat(stream.data)
    else:
        events, triggers, _, _ = ref.decode_raw_file(path)
    # Same fields, but aerflow's dtypes also carry aliases (``p`` for ``on``).
    return events.astype(aerflow.EVENTS_DTYPE), triggers.astype(aerflow.TRIGGERS_DTYPE)


def assert_holds(packet: aerflow.Packet, stream: spec.Stream, how: str) -> None:
    try:
        assert_same_events(packet.events, stream.events)
        assert_same_triggers(packet.triggers, stream.triggers)
    except AssertionError as error:
        raise AssertionError(f"{how}: {error}") from None


def record(stream: spec.Stream) -> None:
    """What the drawn stream uses, for ``--hypothesis-show-statistics``."""
    for feature in sorted(stream.features):
        event(feature)


def check_stream(stream: spec.Stream, chunk_sizes: Sequence[int] = ()) -> None:
    """aerflow (whole, two threads, chunked) and the reference decoder give the stream's
    events and triggers, and aerflow the header's sensor size."""
    with written(stream) as path:
        with aerflow.open(path) as reader:
            assert reader.properties.format == stream.format
            assert (reader.properties.width, reader.properties.height) == (
                stream.width,
                stream.height,
            )
        assert_holds(aerflow.read(path, triggers=True), stream, "aerflow.read")
        assert_holds(read_two_threads(path), stream, "read() on two threads")
        for chunk_size in chunk_sizes:
            assert_holds(read_chunked(path, chunk_size), stream, f"chunk_size={chunk_size}")
        events, triggers = reference(stream, path)
        try:
            assert_same_events(events, stream.events)
            assert_same_triggers(triggers, stream.triggers)
        except AssertionError as error:
            raise AssertionError(f"reference decoder: {error}") from None


# --------------------------------------------------------------------------------------------- #
# Drawn streams                                                                                 #
# --------------------------------------------------------------------------------------------- #


@settings(SETTINGS, max_examples=150)
@given(stream=spec.evt3_streams(), chunk_sizes=FINE_CHUNKS)
def test_evt3_streams(stream: spec.Stream, chunk_sizes: list[int]) -> None:
    record(stream)
    check_stream(stream, chunk_sizes)


@SETTINGS
@given(stream=spec.evt2_streams(), chunk_sizes=FINE_CHUNKS)
def test_evt2_streams(stream: spec.Stream, chunk_sizes: list[int]) -> None:
    record(stream)
    check_stream(stream, chunk_sizes)


@SETTINGS
@given(stream=spec.evt21_streams(), chunk_sizes=FINE_CHUNKS)
def test_evt21_streams(stream: spec.Stream, chunk_sizes: list[int]) -> None:
    record(stream)
    check_stream(stream, chunk_sizes)


@SETTINGS
@given(stream=spec.dat_streams(), chunk_sizes=FINE_CHUNKS)
def test_dat_streams(stream: spec.Stream, chunk_sizes: list[int]) -> None:
    record(stream)
    check_stream(stream, chunk_sizes)


@settings(max_examples=2, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chunk_size=st.integers(4096, 4096 + 64))
def test_evt3_large_stream_on_two_threads(seed: int, chunk_size: int) -> None:
    """A stream whose middle lies past twice the 65536-word warm-up stretch: ``read()`` guesses
    the decoder state in the middle from the stretch before it and decodes the two halves on
    two threads."""
    min_words = 4 * Evt3Reader.warm_up_words + 1000
    stream = spec.build_evt3(spec.SeededChoices(seed), steps=0, min_words=min_words)
    with written(stream) as path, aerflow.open(path) as reader:
        reader.parallel_min_bytes = 0
        shares: list[Any] = []
        joins: list[Any] = []
        second_share, join_shares = reader._second_share, reader._join_shares

        def spy_share(words: Any) -> Any:
            shares.append(second_share(words))
            return shares[-1]

        def spy_join(*args: Any) -> Any:
            joins.append(join_shares(*args))
            return joins[-1]

        with (
            mock.patch.object(reader, "_second_share", spy_share),
            mock.patch.object(reader, "_join_shares", spy_join),
        ):
            packet = reader.read()
        assert shares, "read() did not try to split the file"
        assert shares[0] is not None, "read() did not split the file"
        event(f"state guess in the middle {'held' if joins and joins[0] else 'failed'}")
        assert_holds(packet, stream, "read() on two threads")
        assert_holds(read_chunked(path, chunk_size), stream, f"chunk_size={chunk_size}")
        events, triggers = reference(stream, path)
        assert_same_events(events, stream.events)
        assert_same_triggers(triggers, stream.triggers)


# --------------------------------------------------------------------------------------------- #
# Peers                                                                                         #
# --------------------------------------------------------------------------------------------- #

# What each peer does not follow in the drawn streams, measured on the versions tests/peers.py
# pins, beyond the deviations listed there: its test draws streams without these liberties
# (names from the strategies' *_LIBERTIES). Shortest byte sequences showing each, EVT 3.0 on
# a 1280x720 sensor:
# - "silenced rows": every EVT 3.0 peer returns the X words of EM rows (ADDR_Y type 1) and of
#   rows at or past the height (TIME_HIGH 0, ADDR_Y 720, ADDR_X 1 gives (0, 1, 720)); faery
#   raises "y overflow"; expelliarmus stops at the type-1 word.
# - "TIME_HIGH alone": after TIME_HIGH 1, TIME_LOW 7, a changed TIME_HIGH 2 then ADDR_X reads
#   t 8199 with evlib and expelliarmus (OpenEB: 8192; they never reset TIME_LOW) and 4103 with
#   evutils, which also puts events between the first TIME_HIGH and the first TIME_LOW at t 0;
#   evt3 resets TIME_LOW on a repeated, unchanged TIME_HIGH too (4096 where OpenEB keeps 4103).
# - "interleaved vectors": in VECT_BASE_X 0, VECT_12 1, ADDR_X 100 (ON), VECT_12 1, faery takes
#   the second vector's base from the ADDR_X (x 100, not 12), expelliarmus its polarity (ON).
# - "any vector order": a VECT_12 that starts no VECT_12, VECT_12, VECT_8 group still moves
#   evutils' base by 32, so a later group lands 32 columns off, which the subsequence check of
#   tests/peers.py does not allow: VECT_BASE_X 0, VECT_12 0xFFF, VECT_8 0x20, VECT_12 0xFFF,
#   VECT_12 1, VECT_8 0x40, ADDR_X 256 gives x 0..11, 32..44, 62, 256 (word by word: 0..11,
#   17, 20..32, 50, 256).
# - "prefix": faery and expelliarmus decode the words before the first TIME_HIGH (ADDR_Y 5,
#   ADDR_X 1, TIME_HIGH 0 gives (0, 1, 5)); in EVT 2.0 too, where faery then raises on them.
# - "strays", "triggers", EVT 2.0 "others": expelliarmus stops at the first 0xA, 0xB, 0xD or
#   0xE word ("event type not recognised") and returns nothing.
# - EVT 2.0 and DAT "time back": faery keeps time from going back (it repeats the latest);
#   expelliarmus and evutils read any DAT time below the previous one as a 32-bit wrap.
# - EVT 2.1: evlib returns no event from a legacy-order file and refuses a header without
#   "% end" ("stream did not contain valid UTF-8"); evutils reads only the legacy order.
# - DAT: faery refuses a header without Version; no peer tells trigger files from CD files.
PEER_LIMITS: dict[tuple[str, str], frozenset[str]] = {
    ("faery", "evt3"): frozenset({"silenced rows", "prefix", "interleaved vectors"}),
    ("evlib", "evt3"): frozenset({"silenced rows", "TIME_HIGH alone"}),
    ("expelliarmus", "evt3"): frozenset(
        {"silenced rows", "TIME_HIGH alone", "prefix", "interleaved vectors"}
        | {"strays", "triggers"}  # triggers: tests/peers.py EXCLUDED
    ),
    ("evutils", "evt3"): frozenset({"silenced rows", "TIME_HIGH alone", "any vector order"}),
    ("evt3", "evt3"): frozenset({"silenced rows", "TIME_HIGH alone"}),
    ("faery", "evt2"): frozenset({"prefix", "time back"}),
    ("expelliarmus", "evt2"): frozenset({"prefix", "others"}),
    ("evlib", "evt21"): frozenset({"no % end"}),
    ("faery", "dat"): frozenset({"no Version", "time back", "trigger files"}),
    ("expelliarmus", "dat"): frozenset({"time back", "trigger files"}),
    ("evutils", "dat"): frozenset({"time back", "trigger files"}),
}
PEER_EVT21_ORDER = {"evlib": "little", "evutils": "legacy"}
PEER_SETTINGS = settings(SETTINGS, max_examples=12)


def peer_streams(peer: str, fmt: str) -> st.SearchStrategy[spec.Stream]:
    without = PEER_LIMITS.get((peer, fmt), frozenset())
    if fmt == "evt3":
        return spec.evt3_streams(without=without)
    if fmt == "evt2":
        return spec.evt2_streams(without=without)
    if fmt == "evt21":
        return spec.evt21_streams(without=without, order=PEER_EVT21_ORDER[peer])
    return spec.dat_streams(without=without)


def check_peer(peer: str, stream: spec.Stream) -> None:
    """``peer`` decodes the stream's events and, where it decodes them, its triggers, up to
    its deviations listed in tests/peers.py."""
    peers.require(peer)
    # expelliarmus hands back nothing at all for a file without events.
    assume(peer != "expelliarmus" or len(stream.events) > 0)
    fmt = stream.format
    # DAT files without Width/Height hold 14-bit addresses.
    width, height = stream.width or 1 << 14, stream.height or 1 << 14
    truth = stream.events.astype(aerflow.EVENTS_DTYPE)
    with written(stream) as path:
        got = peers.peer_read(peer, path, fmt, width=width, height=height)
        peers.assert_peer_read(peer, fmt, got, truth, path=path, width=width, height=height)
        triggers = peers.peer_read_triggers(peer, path, fmt, width=width, height=height)
        if triggers is not None:
            expected = stream.triggers.astype(aerflow.TRIGGERS_DTYPE)
            peers.assert_peer_triggers(peer, fmt, triggers, expected, path=path)


@PEER_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("peer", peers.readers("evt3"))
def test_evt3_streams_peers(peer: str, data: st.DataObject) -> None:
    check_peer(peer, data.draw(peer_streams(peer, "evt3")))


@PEER_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("peer", peers.readers("evt2"))
def test_evt2_streams_peers(peer: str, data: st.DataObject) -> None:
    check_peer(peer, data.draw(peer_streams(peer, "evt2")))


@PEER_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("peer", peers.readers("evt21"))
def test_evt21_streams_peers(peer: str, data: st.DataObject) -> None:
    check_peer(peer, data.draw(peer_streams(peer, "evt21")))


@PEER_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("peer", peers.readers("dat"))
def test_dat_streams_peers(peer: str, data: st.DataObject) -> None:
    check_peer(peer, data.draw(peer_streams(peer, "dat")))


# --------------------------------------------------------------------------------------------- #
# Hand-written byte vectors                                                                     #
# --------------------------------------------------------------------------------------------- #


def raw_file(header: str, words: Sequence[int], word_format: str) -> bytes:
    return header.encode("ascii") + struct.pack(f"<{len(words)}{word_format}", *words)


def hand_stream(
    fmt: str,
    data: bytes,
    events: Sequence[tuple[int, int, int, bool]],
    triggers: Sequence[tuple[int, int, bool]] = (),
    size: tuple[int, int] | None = (1280, 720),
) -> spec.Stream:
    header_end = data.index(b"% end\n") + len(b"% end\n")
    return spec.Stream(
        format=fmt,
        data=data,
        payload_offset=header_end,
        events=np.array(list(events), spec.EVENTS),
        triggers=np.array(list(triggers), spec.TRIGGERS),
        width=size[0] if size else None,
        height=size[1] if size else None,
    )


EVT3_HEADER = "% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"
ON, OFF = True, False


def evt3(*words: int) -> bytes:
    return raw_file(EVT3_HEADER, words, "H")


# EVT 3.0 words by name (spec section 4 table).
def th(value: int) -> int:
    return 0x8000 | value


def tl(value: int) -> int:
    return 0x6000 | value


def y(row: int, em: bool = False) -> int:
    return (0x1000 if em else 0x0000) | row


def x(column: int, on: bool = OFF) -> int:
    return 0x2000 | on << 11 | column


def base(column: int, on: bool = OFF) -> int:
    return 0x3000 | on << 11 | column


def v12(mask: int) -> int:
    return 0x4000 | mask


def v8(mask: int, unused: int = 0) -> int:
    return 0x5000 | unused << 8 | mask


def trig(channel: int, rising: bool) -> int:
    return 0xA000 | channel << 8 | rising


def others(subtype: int) -> int:
    return 0xE000 | subtype


def c12(value: int) -> int:
    return 0xF000 | value


def c4(value: int) -> int:
    return 0x7000 | value


# EVT 2.0 words by name (spec section 2 table).
def cd2(ts: int, column: int, row: int, on: bool) -> int:
    return on << 28 | ts << 22 | column << 11 | row


HAND_STREAMS = {
    # The two streams of the issue: vector words after VECT_BASE_X in an order cameras do not
    # send, each advancing the base by its own width.
    "evt3-issue-vect8": hand_stream(
        "evt3",
        evt3(th(0), tl(5), y(210), base(1118), v8(0b11), x(758, ON)),
        [(5, 1118, 210, OFF), (5, 1119, 210, OFF), (5, 758, 210, ON)],
    ),
    "evt3-issue-vect12-vect8": hand_stream(
        "evt3",
        evt3(th(0), tl(5), y(210), base(1118), v12(0b101), v8(0b11), x(758, ON)),
        [(5, col, 210, OFF) for col in (1118, 1120, 1130, 1131)] + [(5, 758, 210, ON)],
    ),
    # A VECT_12 of mask 0 still moves the base; VECT_8's unused bits 11..8 are ignored; a new
    # base below the last one goes over columns again.
    "evt3-vector-runs": hand_stream(
        "evt3",
        evt3(th(1), y(7), base(100, ON), v12(0), v8(0x81, 0xF), v12(0x801), base(90), v12(0xC00)),
        [(4096, col, 7, ON) for col in (112, 119, 120, 131)]
        + [(4096, col, 7, OFF) for col in (100, 101)],
    ),
    # A repeated TIME_HIGH keeps TIME_LOW; a changed one resets it to 0; TIME_LOW may go back.
    "evt3-time-high-low": hand_stream(
        "evt3",
        evt3(th(1), tl(7), y(3), x(4), th(1), x(5), th(2), x(6), tl(9), x(7), tl(3), x(8)),
        [
            (4103, 4, 3, OFF),
            (4103, 5, 3, OFF),
            (8192, 6, 3, OFF),
            (8201, 7, 3, OFF),
            (8195, 8, 3, OFF),
        ],
    ),
    # 24-bit loops: 0xFFF -> 0, and a drop of exactly 2048 (0x8FF -> 0x0FF).
    "evt3-loops": hand_stream(
        "evt3",
        evt3(th(0xFFF), tl(0xFFE), y(0), x(1), th(0), tl(1), x(2), th(0x8FF), th(0x0FF), x(3)),
        [(0xFFFFFE, 1, 0, OFF), ((1 << 24) + 1, 2, 0, OFF), ((2 << 24) + (0xFF << 12), 3, 0, OFF)],
    ),
    # Rows past the sensor, rows with the slave bit (11) and EM rows (type 1) silence X and
    # vector words; an EM row leaves the CD row as it was.
    "evt3-silenced-rows": hand_stream(
        "evt3",
        evt3(
            *(th(0), y(720), x(5), y(0x800 | 10), x(5), base(0), v12(0xFFF), y(10), x(5)),
            *(y(10, em=True), x(6), base(0), v12(0xFFF), v8(0xFF), tl(1), x(7), y(11), x(7)),
        ),
        [(0, 5, 10, OFF), (1, 7, 11, OFF)],
    ),
    # Words before the first TIME_HIGH are dropped; OTHERS with and without payload, ERC
    # counts, unused and continuation words change nothing; triggers take the current time.
    "evt3-others-triggers": hand_stream(
        "evt3",
        evt3(
            *(y(5), x(6), tl(0x10), trig(2, True)),
            *(th(3), trig(2, True), others(0x014), c12(0x123), c12(0x456), c4(0xFF9)),
            *(y(1), x(2), others(0x123), x(3), 0xB000, 0xD123, c4(5), c12(0x00F), x(4)),
            *(others(0x016), c12(0xFFF), c12(0xFFF), c4(0xF), trig(15, False)),
        ),
        [(12288, 2, 1, OFF), (12288, 3, 1, OFF), (12288, 4, 1, OFF)],
        [(12288, 2, True), (12288, 15, False)],
    ),
    # EVT 2.0 with a legacy header: words before the first TIME_HIGH, skipped OTHER / CONTINUED
    # / IMU words, a 34-bit loop.
    "evt2-legacy-loop": hand_stream(
        "evt2",
        raw_file(
            "% evt 2.0\n% system_ID 21\n% end\n",
            [
                *(cd2(0, 3, 4, ON), 0x80000010, cd2(5, 3, 4, ON), 0xA1C00301),
                *(0xE0000016, 0xF0000123, 0xD0000000, *[0xF0000000] * 5),
                *(0x8FFFFFFF, cd2(63, 639, 479, OFF), 0x80000000, cd2(0, 0, 0, ON)),
            ],
            "I",
        ),
        [(1029, 3, 4, ON), ((1 << 34) - 1, 639, 479, OFF), (1 << 34, 0, 0, ON)],
        [(1031, 3, True)],
        size=(640, 480),
    ),
}


def _evt21(order: str) -> spec.Stream:
    heads = [
        (0x80000001, 0),
        (0x10000000 | (2 << 22) | (100 << 11) | 7, 0b1011),
        ((3 << 22) | (631 << 11), 1 << 8),
        (0x8FFFFFFF, 0),
        (0x80000000, 0xFFFFFFFF),
        (0xA0000000 | (1 << 22) | (31 << 8), 0),
    ]
    words = [h << 32 | r if order == "little" else r << 32 | h for h, r in heads]
    header = f"% format EVT21;endianness={order};height=480;width=640\n% end\n"
    return hand_stream(
        "evt21",
        raw_file(header, words, "Q"),
        [(66, 100, 7, ON), (66, 101, 7, ON), (66, 103, 7, ON), (67, 639, 0, OFF)],
        [((1 << 34) + 1, 31, False)],
        size=(640, 480),
    )


def _dat_records(records: Sequence[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack("<II", t, w) for t, w in records)


HAND_STREAMS |= {
    "evt21-little": _evt21("little"),
    "evt21-legacy": _evt21("legacy"),
    # 32-bit wrap (a drop of more than 2**31), then a small step back kept as it is.
    "dat-cd-wrap": hand_stream(
        "dat",
        b"% Data file containing CD events.\n% Version 2\n% end\n\x0c\x08"
        + _dat_records([(0xFFFFFFF0, 1 | 2 << 14 | 1 << 28), (0x10, 3 | 4 << 14), (0xF, 5)]),
        [(0xFFFFFFF0, 1, 2, ON), ((1 << 32) + 0x10, 3, 4, OFF), ((1 << 32) + 0xF, 5, 0, OFF)],
        size=None,
    ),
    "dat-triggers": hand_stream(
        "dat",
        b"% Data file containing EventExtTrigger events.\n% end\n\x0e\x08"
        + _dat_records([(7, 63 << 26 | 1), (8, 5 << 26 | 0x3FFFFF << 4)]),
        [],
        [(7, 63, True), (8, 5, False)],
        size=None,
    ),
}


@pytest.mark.parametrize("name", sorted(HAND_STREAMS))
def test_hand_written_streams(name: str) -> None:
    check_stream(HAND_STREAMS[name], chunk_sizes=(FINE_CHUNK, 4096))


# --------------------------------------------------------------------------------------------- #
# Where the spec is unsure                                                                      #
# --------------------------------------------------------------------------------------------- #


def read_leniently(data: bytes, suffix: str = ".raw") -> aerflow.Packet:
    """aerflow's reading of a file whatever it warns about."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"unsure{suffix}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            packet = aerflow.read(path, triggers=True)
    assert isinstance(packet, aerflow.Packet)
    return packet


def rows(packet: aerflow.Packet) -> list[tuple[int, int, int, bool]]:
    return [(int(t), int(x), int(y), bool(on)) for t, x, y, on in packet.events.tolist()]


def test_unsure_evt3_vector_word_past_right_edge() -> None:
    """Unsure per the spec, left out of the generator: a vector word whose columns reach past
    the sensor, its set bits inside. OpenEB's HAL rejects the whole VECT_12, VECT_12, VECT_8
    group when its base + 32 passes the width; its standalone decoder keeps every set bit; a
    word-by-word decoder may also drop just the word that crosses the edge. Either way no event
    lies outside the sensor and the words after the group decode as usual."""
    packet = read_leniently(evt3(th(0), y(3), base(1250), v12(1), v12(0), v8(0b11), x(5)))
    assert rows(packet) in (
        [(0, 1250, 3, OFF), (0, 1274, 3, OFF), (0, 1275, 3, OFF), (0, 5, 3, OFF)],
        [(0, 1250, 3, OFF), (0, 5, 3, OFF)],
        [(0, 5, 3, OFF)],
    )


def test_unsure_evt3_columns_before_any_row() -> None:
    """Unsure per the spec, left out of the generator: X and vector words after the first
    TIME_HIGH but before any ADDR_Y. OpenEB's HAL drops them (no row is valid yet); its
    standalone decoder puts them on row 0."""
    packet = read_leniently(evt3(th(0), x(5), y(2), x(6)))
    assert rows(packet) in ([(0, 5, 0, OFF), (0, 6, 2, OFF)], [(0, 6, 2, OFF)])


def test_unsure_evt3_vector_without_base() -> None:
    """Unsure per the spec, left out of the generator: vector words in a stream that had no
    VECT_BASE_X. OpenEB's HAL rejects them (no base yet); its standalone decoder counts from
    column 0."""
    packet = read_leniently(evt3(th(0), y(2), v12(0b11), v12(0), v8(0), x(9)))
    assert rows(packet) in ([(0, 0, 2, OFF), (0, 1, 2, OFF), (0, 9, 2, OFF)], [(0, 9, 2, OFF)])


def test_unsure_evt3_others_with_partial_payload() -> None:
    """Unsure per the spec, left out of the generator: an OTHERS word followed by one
    CONTINUED_12 and then an X word. OpenEB's HAL (basic validator) takes the next three words
    as the payload whatever they are, so the X word is lost; word by word it is an event."""
    packet = read_leniently(evt3(th(0), y(2), others(0x100), c12(1), x(7), th(0), th(0)))
    assert rows(packet) in ([(0, 7, 2, OFF)], [])


def test_unsure_dat_polarity_field() -> None:
    """Unsure per the spec, left out of the generator: a DAT polarity of 2. OpenEB's C++ event
    has a 4-bit polarity field, Metavision's Python tool reads bit 28 only. Time and address
    are certain."""
    data = b"% Data file containing CD events.\n% end\n\x0c\x08" + _dat_records([(9, 3 | 2 << 28)])
    packet = read_leniently(data, ".dat")
    assert [row[:3] for row in rows(packet)] == [(9, 3, 0)]


def test_unsure_evt3_word_type_9() -> None:
    """Unsure per the spec, left out of the generator: word type 0x9, which its type table
    does not list. Both OpenEB decoders pass over it (the HAL stores it like any state word),
    so the words around it decode as usual."""
    packet = read_leniently(evt3(th(0), y(2), x(4), 0x9123, x(5)))
    assert rows(packet) == [(0, 4, 2, OFF), (0, 5, 2, OFF)]


def test_unsure_evt3_time_high_back() -> None:
    """Unsure per the spec, left out of the generator: a TIME_HIGH that steps back by less
    than 2048, a protocol violation OpenEB's robust validator reports. Both OpenEB decoders
    apply it as it is (no loop), and so time goes back."""
    packet = read_leniently(evt3(th(5), y(1), x(1), th(3), x(2)))
    assert rows(packet) == [(5 << 12, 1, 1, OFF), (3 << 12, 2, 1, OFF)]


def test_unsure_evt2_gray_level_and_time_high_back() -> None:
    """Unsure per the spec, left out of the generator: EVT 2.0 GRAY_LEVEL / OPT_FLOW words
    (0xB, 0xC), which 'exist but are not generated', and a TIME_HIGH stepping back by less than
    a loop. OpenEB skips the former and applies the latter as it is."""
    words = [0x80000010, cd2(1, 2, 3, ON), 0xB0000123, 0xC0000456, 0x8000000F, cd2(1, 4, 3, ON)]
    packet = read_leniently(raw_file("% evt 2.0\n% geometry 640x480\n% end\n", words, "I"))
    assert rows(packet) == [(0x10 << 6 | 1, 2, 3, ON), (0xF << 6 | 1, 4, 3, ON)]


def test_unsure_dat_version_1() -> None:
    """Unsure per the spec, left out of the generator: a DAT header with Version 1. aerflow
    then reads the old v1 layout (x:9, y:8, p:1); OpenEB never picks that layout from the
    header and reads v2. The time is certain."""
    word = 5 | 6 << 9 | 1 << 17
    data = b"% Data file containing CD events.\n% Version 1\n\x0c\x08" + _dat_records([(7, word)])
    packet = read_leniently(data, ".dat")
    assert rows(packet) in ([(7, 5, 6, ON)], [(7, word & 0x3FFF, word >> 14 & 0x3FFF, OFF)])


def test_unsure_dat_time_back_across_a_loop() -> None:
    """Unsure per the spec, left out of the generator: DAT times that go back across a 2**32
    boundary just after crossing it. The spec only infers that 32-bit times wrap; aerflow's
    rule (a drop of more than 2**31 is a wrap) keeps the record in the later loop, OpenEB
    unwraps nothing. The low 32 bits are certain."""
    data = b"% Data file containing CD events.\n% end\n\x0c\x08" + _dat_records(
        [(0xFFFFFFFF, 1), (5, 2), (0xFFFFFFFE, 3)]
    )
    times = [row[0] for row in rows(read_leniently(data, ".dat"))]
    assert [t & 0xFFFFFFFF for t in times] == [0xFFFFFFFF, 5, 0xFFFFFFFE]


def test_unsure_header_crlf() -> None:
    """Unsure per the spec, left out of the generator: header lines ending in CRLF. The
    section 1 parser splits on whitespace, so the keys read the same; OpenEB's standalone
    decoders compare '% end' byte for byte. The payload after the header decodes as usual."""
    data = b"% evt 3.0\r\n% format EVT3;height=720;width=1280\r\n% end\r\n"
    packet = read_leniently(data + struct.pack("<4H", th(0), y(3), x(4), x(5)))
    assert rows(packet) == [(0, 4, 3, OFF), (0, 5, 3, OFF)]
