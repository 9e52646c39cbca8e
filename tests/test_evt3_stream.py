"""The public EVT 3.0 stream classes: :class:`Evt3StreamDecoder` cut anywhere (every byte
offset, every chunk size) against the plain-Python reference decoder, and
:class:`Evt3StreamEncoder` call after call against one call and the reference decoder."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from aerflow.events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet
from aerflow.formats.evt3 import Evt3StreamDecoder, Evt3StreamEncoder

from .helpers import assert_same_events, assert_same_triggers

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - run from inside tests/
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

WIDTH, HEIGHT = 40, 30


def _word(kind: int, content: int) -> int:
    return (kind << 12) | (content & 0xFFF)


# Hand-written from the format's word table (type in bits 15..12).
ADDR_Y, ADDR_Y_OTHER, ADDR_X, VECT_BASE_X, VECT_12, VECT_8 = 0x0, 0x1, 0x2, 0x3, 0x4, 0x5
TIME_LOW, CONTINUED_4, TIME_HIGH, EXT_TRIGGER, OTHERS = 0x6, 0x7, 0x8, 0xA, 0xE

STREAM_WORDS = [
    _word(ADDR_Y, 3),  # before the first TIME_HIGH: state only, no events
    _word(ADDR_X, 0x800 | 4),  # dropped (before the first TIME_HIGH)
    _word(TIME_HIGH, 0x010),
    _word(TIME_LOW, 0x005),
    _word(ADDR_Y, 7),
    _word(ADDR_X, 0x800 | 1),
    _word(ADDR_X, 39),
    _word(ADDR_X, 40),  # past the width: dropped
    _word(VECT_BASE_X, 0x800 | 2),
    _word(VECT_12, 0b1000_0000_0101),
    _word(VECT_12, 0b0000_0011_0000),
    _word(VECT_8, 0b1000_0001),  # its last bit lies at x = 2 + 24 + 7 = 33
    _word(EXT_TRIGGER, (3 << 8) | 1),
    _word(TIME_LOW, 0x0FF),
    _word(VECT_BASE_X, 30),
    _word(VECT_8, 0xFF),  # x 30..37, OFF
    _word(VECT_12, 0xFFF),  # x 38..49: two inside, ten dropped
    _word(OTHERS, 0x123),
    _word(CONTINUED_4, 0x00F),
    _word(ADDR_Y, 0x800 | 2),  # bit 11: a row past any sensor, the columns after it silent
    _word(ADDR_X, 5),
    _word(VECT_BASE_X, 0),
    _word(VECT_12, 0xFFF),
    _word(ADDR_Y, 29),
    _word(TIME_HIGH, 0x011),  # a new TIME_HIGH: TIME_LOW back to 0
    _word(ADDR_X, 0x800 | 0),
    _word(VECT_BASE_X, 0x800 | 10),
    _word(VECT_12, 0x001),
    _word(VECT_8, 0x80),
    _word(VECT_12, 0x800),
    _word(ADDR_Y_OTHER, 4),  # not a CD row: the vectors after it give no events
    _word(VECT_BASE_X, 0),
    _word(VECT_8, 0xFF),
    _word(ADDR_Y, 1),
    _word(TIME_HIGH, 0xFFE),
    _word(ADDR_X, 2),
    _word(TIME_HIGH, 0x002),  # a drop of 2048 or more: the counter looped
    _word(TIME_LOW, 0x010),
    _word(ADDR_X, 3),
    _word(EXT_TRIGGER, (15 << 8) | 0),
    _word(TIME_LOW, 0x008),  # backwards, applied as it is
    _word(VECT_BASE_X, 0x800 | 20),
    _word(VECT_12, 0b0110),
]
STREAM = struct.pack(f"<{len(STREAM_WORDS)}H", *STREAM_WORDS)


def _reference(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    events, triggers = ref.decode_evt3(data, WIDTH, HEIGHT)
    return events.astype(EVENTS_DTYPE), triggers.astype(TRIGGERS_DTYPE)


def _joined(packets: list[Packet]) -> tuple[np.ndarray, np.ndarray]:
    events = np.concatenate([p.events for p in packets]) if packets else np.empty(0, EVENTS_DTYPE)
    triggers = (
        np.concatenate([p.triggers for p in packets]) if packets else np.empty(0, TRIGGERS_DTYPE)
    )
    return events, triggers


def test_the_stream_exercises_every_case() -> None:
    """The reference's reading of the stream has what the splits below must keep."""
    events, triggers = _reference(STREAM)
    assert len(events) == 26
    assert len(triggers) == 2
    assert int(events["t"].max()) >= 1 << 24  # the counter loop
    assert {int(x) for x in events["x"]} >= {33, 38, 39}  # vector bits up to the width


@pytest.mark.parametrize("offset", range(len(STREAM) + 1))
def test_two_chunks_cut_at_every_byte_offset(offset: int) -> None:
    expected_events, expected_triggers = _reference(STREAM)
    decoder = Evt3StreamDecoder(WIDTH, HEIGHT)
    first = decoder.decode(STREAM[:offset])
    assert decoder.pending_bytes == offset % 2
    second = decoder.decode(STREAM[offset:])
    assert decoder.pending_bytes == 0
    events, triggers = _joined([first, second])
    assert_same_events(events, expected_events)
    assert_same_triggers(triggers, expected_triggers)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 31, 64])
def test_chunks_of_every_size(size: int) -> None:
    """Many cuts in one stream, each chunk given as bytes, a NumPy array or a memoryview
    (an odd-sized one leaves the next chunk's words on an odd address)."""
    expected_events, expected_triggers = _reference(STREAM)
    decoder = Evt3StreamDecoder(WIDTH, HEIGHT)
    packets = []
    for k, start in enumerate(range(0, len(STREAM), size)):
        piece = STREAM[start : start + size]
        given: bytes | np.ndarray | memoryview = (
            piece,
            np.frombuffer(piece, np.uint8),
            memoryview(piece),
        )[k % 3]
        packets.append(decoder.decode(given))
    events, triggers = _joined(packets)
    assert_same_events(events, expected_events)
    assert_same_triggers(triggers, expected_triggers)
    # Out-of-width events: x 40, ten bits of the VECT_12 at 38, bit 11 of the one at 30.
    assert decoder.dropped_out_of_range == 1 + 10 + 1
    assert decoder.current_t == (1 << 24) | (0x002 << 12) | 0x008


def test_a_chunk_that_fills_the_output_goes_on_into_a_larger_one() -> None:
    """The first chunk sizes the output for few events; a dense second one outgrows it."""
    sparse = struct.pack("<2H", _word(TIME_HIGH, 1), _word(ADDR_Y, 2))
    dense_words = [_word(VECT_BASE_X, 0x800)] + [_word(VECT_12, 0xFFF)] * 3
    dense = struct.pack(f"<{len(dense_words)}H", *dense_words) * 500
    decoder = Evt3StreamDecoder(WIDTH, HEIGHT)
    first = decoder.decode(sparse)
    second = decoder.decode(dense[:-1])
    third = decoder.decode(dense[-1:])
    expected_events, _ = _reference(sparse + dense)
    events, _ = _joined([first, second, third])
    assert len(expected_events) == 500 * 36
    assert_same_events(events, expected_events)


def _events(times: list[int], width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(3)
    events = np.zeros(len(times), EVENTS_DTYPE)
    events["t"] = times
    events["x"] = rng.integers(0, width, len(times))
    events["y"] = rng.integers(0, 32, len(times))
    events["on"] = rng.random(len(times)) < 0.5
    return events


def test_the_encoder_carries_its_clock_from_call_to_call() -> None:
    times = sorted(np.random.default_rng(4).integers(0, 3 << 24, 4000).tolist())
    events = _events(times)
    # Runs of same-time events on one row make vector groups.
    events[100:140]["t"] = events[100]["t"]
    events[100:140]["y"] = 5
    events[100:140]["on"] = True
    events[100:140]["x"] = np.arange(2, 42)
    triggers = np.zeros(3, TRIGGERS_DTYPE)
    triggers["t"] = [times[10], times[2000], times[-1]]
    triggers["id"] = [1, 2, 15]
    triggers["rising"] = [True, False, True]
    whole = Evt3StreamEncoder(64).encode(events, triggers)
    chunked = Evt3StreamEncoder(64)
    parts = [
        chunked.encode(events[:1000], triggers[:1]),
        chunked.encode(events[1000:1000]),
        chunked.encode(events[1000:2500], triggers[1:2]),
        chunked.encode(events[2500:], triggers[2:]),
    ]
    words = np.concatenate(parts)
    decoded, decoded_triggers = ref.decode_evt3(words.tobytes(), 64, 32)
    assert_same_events(decoded.astype(EVENTS_DTYPE), events)
    assert_same_triggers(decoded_triggers.astype(TRIGGERS_DTYPE), triggers)
    whole_events, whole_triggers = ref.decode_evt3(whole.tobytes(), 64, 32)
    assert_same_events(whole_events.astype(EVENTS_DTYPE), events)
    assert_same_triggers(whole_triggers.astype(TRIGGERS_DTYPE), triggers)


def test_the_encoder_refuses_time_going_back_and_picks_an_origin() -> None:
    encoder = Evt3StreamEncoder(64)
    encoder.encode(_events([1000, 3000 << 12]))
    with pytest.raises(ValueError, match=r"EVT 3\.0"):
        encoder.encode(_events([10]))  # 3000 TIME_HIGH steps back would read as a loop
    late = (1 << 34) + 2_500_123
    automatic = Evt3StreamEncoder(64, origin=None)
    words = automatic.encode(_events([late, late + 7]))
    assert automatic.origin == late - late % 1_000_000
    decoded, _ = ref.decode_evt3(words.tobytes(), 64, 32)
    assert decoded["t"].tolist() == [late - automatic.origin, late + 7 - automatic.origin]
