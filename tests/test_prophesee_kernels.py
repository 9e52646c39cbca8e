"""aerflow's numba kernels against the plain-Python reference decoders on generated streams.

Hypothesis builds word streams for EVT 3.0, EVT 2.0, EVT 2.1 (both word orders) and DAT
records, biased towards meaningful words: TIME_HIGH mostly increasing with occasional counter
loops and small steps back, addresses inside and outside the sensor, vector groups, TIME_LOW
stepping back, triggers, ERC-count OTHERS groups, continuation and unused word types, random
words. A body of words is repeated so that files span several chunks, behind a filler prefix
that shifts where chunk edges fall. The file (header written by hand) is decoded by aerflow
with several chunk sizes and by the reference decoder; events and triggers must be identical.

Streams may end with a partial word or inside a word group: aerflow then warns
TruncatedDataWarning and returns every complete event, as the reference does (it ignores the
torn tail). Events outside the sensor are dropped by both, and aerflow counts them.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.formats import _base, dat, evt2, evt3

from .helpers import assert_same_events, assert_same_triggers, deadline

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

CHUNK_SIZES = (4096, 4097, 5003)
SENSORS = ((1280, 720), (640, 480), (304, 240), (64, 48), (2048, 2048))
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Words = list[int]


# --------------------------------------------------------------------------- #
# Decoding helpers                                                            #
# --------------------------------------------------------------------------- #


@dataclass
class Decoded:
    events: np.ndarray
    triggers: np.ndarray
    warnings: set[type[Warning]]
    dropped: int


def decode_with_aerflow(path: Path, chunk_size: int | str | None, **options: Any) -> Decoded:
    """Decode with aerflow: whole-file ``read()`` (chunk_size None), the same sent down its
    two-thread path from 4 KiB on instead of several MiB (chunk_size "threads"), or packet
    iteration with the given chunk size."""
    sized = {"chunk_size": chunk_size} if isinstance(chunk_size, int) else {}
    with warnings.catch_warnings(record=True) as caught, ExitStack() as stack:
        warnings.simplefilter("always")
        reader = stack.enter_context(aerflow.open(path, **options, **sized))
        if chunk_size == "threads":
            stack.enter_context(two_threads_from(reader, 4096))
            stack.enter_context(deadline(10))
        if not isinstance(chunk_size, int):
            packet = reader.read()
            events, triggers = packet.events, packet.triggers
        else:
            packets = list(reader)
            for packet in packets:
                assert len(packet.events) or len(packet.triggers)
            events = (
                np.concatenate([p.events for p in packets])
                if packets
                else np.empty(0, aerflow.EVENTS_DTYPE)
            )
            triggers = (
                np.concatenate([p.triggers for p in packets])
                if packets
                else np.empty(0, aerflow.TRIGGERS_DTYPE)
            )
        dropped = reader.dropped_out_of_range
    return Decoded(events, triggers, {w.category for w in caught}, dropped)


@contextmanager
def two_threads_from(reader: Any, size: int) -> Iterator[None]:
    """Make ``reader.read()`` split its work between two threads from ``size`` bytes on."""
    if hasattr(reader, "parallel_min_bytes"):
        reader.parallel_min_bytes = size
        yield
    elif hasattr(_base, "_PARALLEL_MIN_BYTES"):
        with mock.patch.object(_base, "_PARALLEL_MIN_BYTES", size):
            yield
    else:
        yield


@contextmanager
def counting_reference_drops() -> Iterator[list[int]]:
    """Count the events the reference decoders drop as outside the sensor."""
    dropped = [0]
    inside = ref._inside

    def counting(x: int, y: int, width: int | None, height: int | None) -> bool:
        result = inside(x, y, width, height)
        if not result:
            dropped[0] += 1
        return result

    with mock.patch.object(ref, "_inside", counting):
        yield dropped


def check_against_reference(
    path: Path,
    expected_events: np.ndarray,
    expected_triggers: np.ndarray,
    expected_dropped: int | None,
    torn: bool,
    modes: tuple[int | str | None, ...] = (None, *CHUNK_SIZES),
    **options: Any,
) -> None:
    for chunk_size in modes:
        decoded = decode_with_aerflow(path, chunk_size, **options)
        assert_same_events(decoded.events, expected_events)
        assert_same_triggers(decoded.triggers, expected_triggers)
        if expected_dropped is not None:
            assert decoded.dropped == expected_dropped
        expected_warnings: set[type[Warning]] = set()
        if torn:
            expected_warnings.add(aerflow.TruncatedDataWarning)
        if decoded.dropped:
            expected_warnings.add(aerflow.OutOfRangeWarning)
        assert decoded.warnings == expected_warnings, (chunk_size, decoded.warnings)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernels")


_counter = [0]


def write_file(directory: Path, data: bytes, suffix: str) -> Path:
    _counter[0] += 1
    path = directory / f"stream{_counter[0]}{suffix}"
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- #
# Shared strategies                                                           #
# --------------------------------------------------------------------------- #


def coordinate(limit: int, bits: int) -> st.SearchStrategy[int]:
    """Mostly inside [0, limit), often near its edge, sometimes past it (up to 2**bits - 1)."""
    top = (1 << bits) - 1
    return st.one_of(
        st.integers(0, limit - 1),
        st.integers(0, limit - 1),
        st.integers(max(0, limit - 40), min(limit + 8, top)),
        st.integers(0, top),
    )


@st.composite
def repeated_body(
    draw: st.DrawFn, body: st.SearchStrategy[Words], word_bytes: int, min_bytes: int
) -> tuple[Words, Words, int]:
    """A filler prefix and a body of words repeated enough times to span a few chunks."""
    prefix = draw(st.lists(st.integers(0, (1 << (8 * word_bytes)) - 1), max_size=4))
    words = draw(body)
    size = max(len(words) * word_bytes, 1)
    needed = -(-min_bytes // size)
    repeats = draw(st.sampled_from([1, 2, max(1, needed), max(1, needed) + 1]))
    return prefix, words, repeats


def tail_bytes(word_bytes: int) -> st.SearchStrategy[bytes]:
    """Nothing, or a partial word."""
    return st.one_of(st.just(b""), st.binary(min_size=1, max_size=word_bytes - 1))


# --------------------------------------------------------------------------- #
# EVT 3.0                                                                     #
# --------------------------------------------------------------------------- #


def evt3_torn(payload: bytes) -> bool:
    """True when an EVT 3.0 payload ends in a partial word (no word waits for the next)."""
    return len(payload) % 2 == 1


@st.composite
def evt3_body(draw: st.DrawFn, width: int, height: int) -> Words:
    high = draw(st.integers(0, 0xFFF))
    words: Words = [0x8000 | high]
    u12 = st.integers(0, 0xFFF)
    pol = st.integers(0, 1)
    if draw(st.booleans()):
        words.append(draw(st.integers(0, height - 1)))  # ADDR_Y: rows are addressed
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(
            st.sampled_from(
                [
                    "time_high", "time_high", "addr_y", "addr_y", "addr_x", "addr_x", "addr_x",
                    "vector", "vector", "vect_base", "time_low", "trigger", "erc", "others",
                    "addr_y_other", "lone_vect_12", "lone_vect_8", "unused", "random",
                ]
            )
        )  # fmt: skip
        if kind == "time_high":
            step = draw(st.sampled_from(["same", "up", "up", "top", "wrap", "back", "any"]))
            if step == "up":
                high = (high + draw(st.integers(1, 3))) & 0xFFF
            elif step == "top":
                high = 0xFFF - draw(st.integers(0, 60))
            elif step == "wrap" and high >= 2048:  # a drop of 2048 or more is a counter loop
                high = draw(st.one_of(st.integers(0, 40), st.integers(high - 2060, high - 2040)))
            elif step == "back":
                high = max(0, high - draw(st.integers(1, 2100)))
            elif step == "any":
                high = draw(st.integers(0, 0xFFF))
            words.append(0x8000 | high)
        elif kind == "addr_y":
            y = draw(
                st.one_of(
                    coordinate(height, 11), st.integers(0, height - 1), st.integers(0x800, 0xFFF)
                )
            )
            words.append(0x0000 | y)
        elif kind == "addr_y_other":
            words.append(0x1000 | draw(u12))
        elif kind == "addr_x":
            words.append(0x2000 | draw(pol) << 11 | draw(coordinate(width, 11)))
        elif kind == "vect_base":
            x = draw(st.one_of(coordinate(max(1, width - 31), 11), coordinate(width, 11)))
            words.append(0x3000 | draw(pol) << 11 | x)
        elif kind == "vector":
            if draw(st.booleans()):
                x = draw(st.one_of(coordinate(max(1, width - 31), 11), coordinate(width, 11)))
                words.append(0x3000 | draw(pol) << 11 | x)
            # Cameras send VECT_12, VECT_12, VECT_8; the format allows any run of either.
            camera = [0x4000, 0x4000, 0x5000]
            kinds = draw(st.one_of(st.just(camera), st.lists(st.sampled_from(camera), max_size=6)))
            words += [kind | draw(u12) for kind in kinds]
        elif kind == "lone_vect_12":
            words.append(0x4000 | draw(u12))
        elif kind == "lone_vect_8":
            words.append(0x5000 | draw(u12))
        elif kind == "time_low":
            words.append(0x6000 | draw(u12))
        elif kind == "trigger":
            words.append(0xA000 | draw(u12))
        elif kind == "erc":
            words.append(0xE000 | draw(st.sampled_from([0x014, 0x016])))
            words += draw(st.lists(st.integers(0, 0xFFFF), min_size=3, max_size=3))
        elif kind == "others":
            words.append(0xE000 | draw(u12))
        elif kind == "unused":
            words.append(draw(st.sampled_from([0x7, 0x9, 0xB, 0xC, 0xD, 0xF])) << 12 | draw(u12))
        else:
            words.append(draw(st.integers(0, 0xFFFF)))
    return words


@st.composite
def evt3_case(draw: st.DrawFn) -> tuple[bytes, bytes, int, int, dict[str, int]]:
    width, height = draw(st.sampled_from(SENSORS))
    prefix, body, repeats = draw(repeated_body(evt3_body(width, height), 2, 9000))
    words = prefix + body * repeats
    # Words that began multi-word groups in older readings of the format.
    tail = draw(st.sampled_from([[], [], [0x4000], [0x4123, 0x4FFF], [0xE014], [0xE016, 0, 1]]))
    payload = struct.pack(f"<{len(words) + len(tail)}H", *words, *tail)
    payload += draw(tail_bytes(2))
    style = draw(st.sampled_from(["format", "geometry", "both", "options", "system_id"]))
    options: dict[str, int] = {}
    if style == "format":
        header = f"% evt 3.0\n% format EVT3;height={height};width={width}\n% end\n"
    elif style == "geometry":
        header = f"% date 2024-01-01 00:00:00\n% format EVT3\n% geometry {width}x{height}\n% end\n"
    elif style == "both":
        header = (
            f"% format EVT3;height={height};width={width}\n% geometry {width}x{height}\n% end\n"
        )
    elif style == "options":
        header = "% evt 3.0\n% geometry 1x1\n% end\n"
        options = {"width": width, "height": height}
    else:
        width, height = 1280, 720  # system_ID 48 is a Gen4.1 EVK3; legacy header, no '% end'
        header = "% evt 3.0\n% integrator_name Prophesee\n% system_ID 48\n"
    return header.encode(), payload, width, height, options


@SETTINGS
@given(case=evt3_case())
def test_evt3_matches_reference(
    case: tuple[bytes, bytes, int, int, dict[str, int]], workdir: Path
) -> None:
    path, events, triggers, dropped, torn, options = prepare_evt3(case, workdir)
    check_against_reference(path, events, triggers, dropped, torn, format="evt3", **options)
    # Detection by contents gives the same.
    check_against_reference(path, events, triggers, dropped, torn, **options)


Prepared = tuple[Path, np.ndarray, np.ndarray, int, bool, dict[str, Any]]


def prepare_evt3(case: tuple[bytes, bytes, int, int, dict[str, int]], workdir: Path) -> Prepared:
    """The file, and what the reference makes of it: events, triggers, drops, torn tail."""
    header, payload, width, height, options = case
    path = write_file(workdir, header + payload, ".raw")
    with counting_reference_drops() as dropped:
        events, triggers = ref.decode_evt3(payload, width, height)
    return path, events, triggers, dropped[0], evt3_torn(payload), dict(options)


# --------------------------------------------------------------------------- #
# EVT 2.0                                                                     #
# --------------------------------------------------------------------------- #

HIGH_MAX = (1 << 28) - 1


def time_high_step(draw: st.DrawFn, high: int) -> int:
    """Next 28-bit TIME_HIGH: mostly up, sometimes to the top, wrapping, back a little."""
    step = draw(st.sampled_from(["same", "up", "up", "up", "top", "wrap", "back", "any"]))
    if step == "up":
        return min(HIGH_MAX, high + draw(st.integers(1, 4)))
    if step == "top":
        return HIGH_MAX - draw(st.integers(0, 3))
    if step == "wrap":  # near the 34-bit loop threshold (a drop of >= 2**28 - 157 units)
        return draw(st.integers(0, 200)) if high > 1000 else high
    if step == "back":
        return max(0, high - draw(st.integers(1, 300)))
    if step == "any":
        return draw(st.integers(0, HIGH_MAX))
    return high


@st.composite
def evt2_body(draw: st.DrawFn, width: int, height: int) -> Words:
    high = draw(st.one_of(st.integers(0, 1000), st.integers(HIGH_MAX - 100, HIGH_MAX)))
    words: Words = [0x8 << 28 | high]
    for _ in range(draw(st.integers(1, 80))):
        kind = draw(
            st.sampled_from(
                ["time_high", "time_high", "cd", "cd", "cd", "cd", "trigger", "imu", "other",
                 "unused", "random"]
            )
        )  # fmt: skip
        if kind == "time_high":
            high = time_high_step(draw, high)
            words.append(0x8 << 28 | high)
        elif kind == "cd":
            ts = draw(st.integers(0, 63))
            x = draw(coordinate(width, 11))
            y = draw(coordinate(height, 11))
            words.append(draw(st.integers(0, 1)) << 28 | ts << 22 | x << 11 | y)
        elif kind == "trigger":
            words.append(0xA << 28 | draw(st.integers(0, (1 << 28) - 1)))
        elif kind == "imu":
            words.append(0xD << 28 | draw(st.integers(0, (1 << 28) - 1)))
            words += [0xF << 28 | draw(st.integers(0, (1 << 28) - 1)) for _ in range(5)]
        elif kind == "other":
            words.append(0xE << 28 | draw(st.integers(0, (1 << 28) - 1)))
            if draw(st.booleans()):
                words.append(0xF << 28 | draw(st.integers(0, (1 << 28) - 1)))
        elif kind == "unused":
            kind_bits = draw(st.sampled_from([2, 3, 4, 5, 6, 7, 9, 0xB, 0xC]))
            words.append(kind_bits << 28 | draw(st.integers(0, (1 << 28) - 1)))
        else:
            words.append(draw(st.integers(0, (1 << 32) - 1)))
    return words


@st.composite
def evt2_case(draw: st.DrawFn) -> tuple[bytes, bytes, int, int, dict[str, int]]:
    width, height = draw(st.sampled_from(SENSORS))
    prefix, body, repeats = draw(repeated_body(evt2_body(width, height), 4, 14000))
    words = prefix + body * repeats
    payload = struct.pack(f"<{len(words)}I", *words) + draw(tail_bytes(4))
    style = draw(st.sampled_from(["format", "geometry", "options", "system_id"]))
    options: dict[str, int] = {}
    if style == "format":
        header = f"% evt 2.0\n% format EVT2;height={height};width={width}\n% end\n"
    elif style == "geometry":
        header = f"% format EVT2\n% geometry {width}x{height}\n% end\n"
    elif style == "options":
        header = "% evt 2.0\n% format EVT2;height=10;width=10\n% end\n"
        options = {"width": width, "height": height}
    else:
        width, height = 640, 480  # system_ID 21 is a Gen3 EVK; legacy header, no '% end'
        header = "% Date 2020-09-14 09:03:25\n% system_ID 21\n% evt 2.0\n"
    return header.encode(), payload, width, height, options


@SETTINGS
@given(case=evt2_case())
def test_evt2_matches_reference(
    case: tuple[bytes, bytes, int, int, dict[str, int]], workdir: Path
) -> None:
    path, events, triggers, dropped, torn, options = prepare_evt2(case, workdir)
    check_against_reference(path, events, triggers, dropped, torn, format="evt2", **options)
    check_against_reference(path, events, triggers, dropped, torn, **options)


def prepare_evt2(case: tuple[bytes, bytes, int, int, dict[str, int]], workdir: Path) -> Prepared:
    header, payload, width, height, options = case
    path = write_file(workdir, header + payload, ".raw")
    with counting_reference_drops() as dropped:
        events, triggers = ref.decode_evt2(payload, width=width, height=height)
    return path, events, triggers, dropped[0], len(payload) % 4 != 0, dict(options)


# --------------------------------------------------------------------------- #
# EVT 2.1                                                                     #
# --------------------------------------------------------------------------- #


@st.composite
def evt21_body(draw: st.DrawFn, width: int, height: int) -> list[tuple[int, int]]:
    """(32-bit header, 32-bit payload) pairs."""
    u32 = st.integers(0, (1 << 32) - 1)
    high = draw(st.one_of(st.integers(0, 1000), st.integers(HIGH_MAX - 100, HIGH_MAX)))
    pairs = [(0x8 << 28 | high, draw(u32))]
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(
            st.sampled_from(
                ["time_high", "time_high", "events", "events", "events", "events", "trigger",
                 "erc", "other", "unused", "random"]
            )
        )  # fmt: skip
        if kind == "time_high":
            step = draw(st.sampled_from(["step", "step", "full_wrap"]))
            if step == "full_wrap":  # only a drop of the whole 28-bit range is a loop
                pairs.append((0x8 << 28 | HIGH_MAX, draw(u32)))
                high = draw(st.sampled_from([0, 0, 1, 2]))
            else:
                high = time_high_step(draw, high)
            pairs.append((0x8 << 28 | high, draw(u32)))
        elif kind == "events":
            ts = draw(st.integers(0, 63))
            x = draw(st.one_of(coordinate(max(1, width - 31), 11), coordinate(width, 11)))
            y = draw(coordinate(height, 11))
            mask = draw(st.one_of(u32, st.integers(0, 0xFF), st.sampled_from([0, 1, 1 << 31])))
            pairs.append((draw(st.integers(0, 1)) << 28 | ts << 22 | x << 11 | y, mask))
        elif kind == "trigger":
            pairs.append((0xA << 28 | draw(st.integers(0, (1 << 28) - 1)), draw(u32)))
        elif kind == "erc":
            ts = draw(st.integers(0, 63))
            subtype = draw(st.sampled_from([0x0014, 0x0016]))
            extra = draw(st.integers(0, 0x3F)) << 16
            pairs.append((0xE << 28 | ts << 22 | extra | subtype, draw(u32)))
        elif kind == "other":
            pairs.append((0xE << 28 | draw(st.integers(0, (1 << 28) - 1)), draw(u32)))
        elif kind == "unused":
            kind_bits = draw(st.sampled_from([2, 3, 4, 5, 6, 7, 9, 0xB, 0xC, 0xD, 0xF]))
            pairs.append((kind_bits << 28 | draw(st.integers(0, (1 << 28) - 1)), draw(u32)))
        else:
            pairs.append((draw(u32), draw(u32)))
    return pairs


@st.composite
def evt21_case(draw: st.DrawFn) -> tuple[bytes, bytes, int, int, str, dict[str, Any]]:
    width, height = draw(st.sampled_from(SENSORS))
    order = draw(st.sampled_from(["little", "legacy"]))
    u32 = st.integers(0, (1 << 32) - 1)
    prefix_pairs = draw(st.lists(st.tuples(u32, u32), max_size=3))
    body = draw(evt21_body(width, height))
    repeats = draw(st.sampled_from([1, 2, -(-20000 // (8 * len(body))) + 1]))
    pairs = prefix_pairs + body * repeats
    if order == "little":
        words = [header << 32 | mask for header, mask in pairs]
    else:
        words = [mask << 32 | header for header, mask in pairs]
    payload = struct.pack(f"<{len(words)}Q", *words) + draw(tail_bytes(8))
    style = draw(st.sampled_from(["format", "key", "system_id", "default", "option"]))
    options: dict[str, Any] = {}
    if style == "format":
        header = f"% format EVT21;endianness={order};height={height};width={width}\n% end\n"
    elif style == "key":
        header = f"% evt 2.1\n% endianness {order}\n% geometry {width}x{height}\n% end\n"
    elif style == "system_id":
        # No endianness: systems before 0x37 wrote legacy, later ones little.
        system_id = 0x30 if order == "legacy" else 0x38
        header = f"% format EVT21;height={height};width={width}\n% system_ID {system_id}\n% end\n"
    elif style == "default" and order == "little":
        header = f"% format EVT21\n% geometry {width}x{height}\n% end\n"
    else:
        other = "legacy" if order == "little" else "little"
        header = f"% format EVT21;endianness={other};height=8;width=8\n% end\n"
        options = {"order": order, "width": width, "height": height}
    return header.encode(), payload, width, height, order, options


@SETTINGS
@given(case=evt21_case())
def test_evt21_matches_reference(
    case: tuple[bytes, bytes, int, int, str, dict[str, Any]], workdir: Path
) -> None:
    path, events, triggers, dropped, torn, options = prepare_evt21(case, workdir)
    check_against_reference(path, events, triggers, dropped, torn, format="evt21", **options)
    check_against_reference(path, events, triggers, dropped, torn, **options)
    with aerflow.open(path, **options) as reader:
        assert reader.properties.format == "evt21"
        assert reader.order == case[4]  # type: ignore[attr-defined]


def prepare_evt21(
    case: tuple[bytes, bytes, int, int, str, dict[str, Any]], workdir: Path
) -> Prepared:
    header, payload, width, height, order, options = case
    path = write_file(workdir, header + payload, ".raw")
    if "order" not in options:
        assert ref.evt21_order(ref.parse_header(header)[0]) == order  # the case is well built
    with counting_reference_drops() as dropped:
        events, triggers = ref.decode_evt21(payload, order=order, width=width, height=height)
    return path, events, triggers, dropped[0], len(payload) % 8 != 0, dict(options)


# --------------------------------------------------------------------------- #
# DAT                                                                         #
# --------------------------------------------------------------------------- #


@st.composite
def dat_records(draw: st.DrawFn, event_type: int, version: int) -> list[tuple[int, int]]:
    """(32-bit time, 32-bit word) records with times mostly rising, wrapping, stepping back."""
    u32 = st.integers(0, (1 << 32) - 1)
    t = draw(st.one_of(st.integers(0, 1000), st.integers((1 << 32) - 5000, (1 << 32) - 1)))
    records = []
    for _ in range(draw(st.integers(1, 80))):
        step = draw(st.sampled_from(["same", "up", "up", "up", "jump", "wrap", "back", "any"]))
        if step == "up":
            t = min(t + draw(st.integers(1, 500)), (1 << 32) - 1)
        elif step == "jump":
            t = min(t + draw(st.integers(1 << 30, (1 << 31) + 10)), (1 << 32) - 1)
        elif step == "wrap":
            t = draw(st.integers(0, 2000)) if t > (1 << 31) + 2000 else t
        elif step == "back":
            t = max(0, t - draw(st.integers(1, 1 << 31)))
        elif step == "any":
            t = draw(u32)
        if event_type == 0x0E:
            word = draw(u32)
        elif version == 1:
            x, y = draw(st.integers(0, 511)), draw(st.integers(0, 255))
            word = draw(st.integers(0, (1 << 14) - 1)) << 18 | draw(st.integers(0, 1)) << 17
            word |= y << 9 | x
        else:
            x, y = draw(coordinate(700, 14)), draw(coordinate(500, 14))
            word = draw(st.integers(0, 7)) << 29 | draw(st.integers(0, 1)) << 28 | y << 14 | x
        records.append((t, word))
    return records


@st.composite
def dat_case(draw: st.DrawFn) -> tuple[bytes, bytes, tuple[int, int] | None]:
    event_type = draw(st.sampled_from([0x00, 0x0C, 0x0E]))
    version = draw(st.sampled_from([1, 2])) if event_type != 0x0E else 2
    size: tuple[int, int] | None = draw(
        st.sampled_from([None, (640, 480), (304, 240), (512, 256), (64, 48)])
    )
    body = draw(dat_records(event_type, version))
    repeats = draw(st.sampled_from([1, 2, -(-12000 // (8 * len(body))) + 1]))
    records = body * repeats
    lines = [
        "% Data file containing " + ("ExtTrigger" if event_type == 0x0E else "CD") + " events."
    ]
    lines.append(f"% Version {version}")
    lines.append("% Date 2024-01-01 00:00:00")
    if size is not None:
        lines += [f"% Width {size[0]}", f"% Height {size[1]}"]
    if draw(st.booleans()):
        lines.append("% end")
    header = ("\n".join(lines) + "\n").encode() + bytes([event_type, 8])
    payload = b"".join(struct.pack("<II", t, w) for t, w in records)
    payload += draw(tail_bytes(8))
    return header, payload, size


def inside(events: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return events
    return events[(events["x"] < size[0]) & (events["y"] < size[1])]


@SETTINGS
@given(case=dat_case())
def test_dat_matches_reference(
    case: tuple[bytes, bytes, tuple[int, int] | None], workdir: Path
) -> None:
    path, events, triggers, dropped, torn, options = prepare_dat(case, workdir)
    check_against_reference(path, events, triggers, dropped, torn, **options)
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == case[2]


def prepare_dat(case: tuple[bytes, bytes, tuple[int, int] | None], workdir: Path) -> Prepared:
    header, payload, size = case
    path = write_file(workdir, header + payload, ".dat")
    all_events, triggers, _ = ref.decode_dat(header + payload)
    events = inside(all_events, size)
    return path, events, triggers, len(all_events) - len(events), len(payload) % 8 != 0, {}


# --------------------------------------------------------------------------- #
# The two-thread whole-file read                                              #
# --------------------------------------------------------------------------- #

# A hang costs the deadline for each example tried, so failures are reported unshrunk.
THREADS_SETTINGS = settings(SETTINGS, max_examples=40, phases=[Phase.explicit, Phase.generate])


@pytest.mark.parametrize("fmt", ["evt3", "evt2", "evt21", "dat"])
@THREADS_SETTINGS
@given(data=st.data())
def test_two_thread_read_matches_reference(fmt: str, data: st.DataObject, workdir: Path) -> None:
    """read() splits large files between two threads; here from 4 KiB on, so that the split
    falls everywhere in generated streams."""
    strategy, prepare = {
        "evt3": (evt3_case(), prepare_evt3),
        "evt2": (evt2_case(), prepare_evt2),
        "evt21": (evt21_case(), prepare_evt21),
        "dat": (dat_case(), prepare_dat),
    }[fmt]
    path, events, triggers, dropped, torn, options = prepare(data.draw(strategy), workdir)  # type: ignore[operator]
    check_against_reference(path, events, triggers, dropped, torn, modes=("threads",), **options)


def test_dat_v1_without_size_keeps_nine_bit_x(workdir: Path) -> None:
    """The v1 layout stores x in 9 bits (0-511) and y in 8: with no Width/Height in the header,
    nothing tells the reader that x >= 256 is outside the sensor."""
    header = b"% Data file containing CD events.\n% Version 1\n" + bytes([0x00, 8])
    word = 300 | 7 << 9 | 1 << 17  # x 300, y 7, ON
    payload = struct.pack("<II", 5, word) + struct.pack("<II", 6, 3 | 200 << 9)
    path = write_file(workdir, header + payload, ".dat")
    expected, _, _ = ref.decode_dat(header + payload)
    assert expected.tolist() == [(5, 300, 7, True), (6, 3, 200, False)]  # by hand, too
    decoded = decode_with_aerflow(path, None)
    assert_same_events(decoded.events, expected)
    assert decoded.warnings == set()


# --------------------------------------------------------------------------- #
# Hand-checked edges of the generators' claims                                #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("payload", "torn"),
    [
        (struct.pack("<3H", 0x8001, 0x4000, 0x4000), False),  # vector words stand alone
        (struct.pack("<2H", 0x8001, 0xE014), False),  # and so do OTHERS words
        (struct.pack("<2H", 0x8001, 0x0001) + b"\x00", True),
    ],
)
def test_evt3_torn_helper(payload: bytes, torn: bool) -> None:
    assert evt3_torn(payload) is torn


def test_evt3_vector_straddling_every_chunk_edge(workdir: Path) -> None:
    """One vector group every 7 words so that groups straddle chunk edges at every phase."""
    width, height = 1280, 720
    words = [0x8003, 0x0005, 0x6010]
    for i in range(3000):
        words += [0x3000 | (i % 1200), 0x4000 | (i & 0xFFF), 0x4FFF, 0x5000 | (i & 0xFF)]
        words += [0x6000 | (i & 0xFFF), 0x2800 | (i % 1280), 0x8003 + (i // 500)]
    payload = struct.pack(f"<{len(words)}H", *words)
    header = f"% format EVT3;height={height};width={width}\n% end\n".encode()
    path = write_file(workdir, header + payload, ".raw")
    events, _ = ref.decode_evt3(payload, width, height)
    assert len(events) > 30000
    for chunk_size in (None, 4096, 4097, 4098, 4099, 4100, 4101, 5003, 8190):
        decoded = decode_with_aerflow(path, chunk_size)
        assert_same_events(decoded.events, events)
        assert decoded.warnings == set()


GUARD = np.array((0xDEAD, 0xBEEF, 0xCAFE, True), aerflow.EVENTS_DTYPE)


def decode_evt3_in_pieces(
    words: np.ndarray, width: int, height: int, cuts: list[int], room: int, trigger_room: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Run the EVT3 kernel as a reader does, resuming at the first word not consumed, with
    `room` events and `trigger_room` triggers of output per call: events, triggers, words
    consumed and the final state."""
    state = np.zeros(evt3._STATE_SIZE, np.int64)
    events_parts, trigger_parts = [], []
    position = 0
    for edge in [*cuts, len(words)]:
        while True:
            # The kernel writes without bounds checks: a guard band after its room shows any
            # write past the end.
            buffer = np.full(room + 64, GUARD, aerflow.EVENTS_DTYPE)
            triggers = np.empty(trigger_room, aerflow.TRIGGERS_DTYPE)
            consumed, n, m = evt3._decode(
                words[position:edge], state, width, height, buffer[:room], 0, triggers, 0
            )
            assert (buffer[room:] == GUARD).all()
            events_parts.append(buffer[:n].copy())
            trigger_parts.append(triggers[:m].copy())
            position += consumed
            if consumed == 0:
                break
    return np.concatenate(events_parts), np.concatenate(trigger_parts), position, state


@SETTINGS
@given(data=st.data())
def test_evt3_kernel_in_pieces_with_little_room(data: st.DataObject) -> None:
    """The kernel resumed over arbitrary cuts, with output room for one vector group (its
    minimum) up to a few events more and for 1-3 triggers, gives the reference's events,
    triggers and drops: every exit of the decoder's row loop leaves a state it resumes."""
    width, height = data.draw(st.sampled_from(SENSORS))
    prefix, body, repeats = data.draw(repeated_body(evt3_body(width, height), 2, 3000))
    payload = struct.pack(f"<{len(prefix) + len(body) * repeats}H", *prefix, *body * repeats)
    with counting_reference_drops() as dropped:
        expected_events, expected_triggers = ref.decode_evt3(payload, width, height)
    words = np.frombuffer(payload, "<u2")
    events, triggers, consumed, state = decode_evt3_in_pieces(
        words,
        width,
        height,
        sorted(data.draw(st.lists(st.integers(0, len(words)), max_size=6))),
        data.draw(st.integers(evt3.Evt3Reader.max_group_events, 40)),
        data.draw(st.integers(1, 3)),
    )
    assert_same_events(events, expected_events)
    assert_same_triggers(triggers, expected_triggers)
    assert int(state[evt3._DROPPED]) == dropped[0]
    assert (consumed < len(words)) == evt3_torn(payload)


@pytest.mark.parametrize("room", range(32, 41))
def test_evt3_kernel_keeps_to_its_room_after_full_vector_groups(room: int) -> None:
    """Columns right after full vector groups, with room for a group and a few events more."""
    width, height = 1280, 720
    words = [0x8003, 0x0005]
    for group in range(20):
        words += [0x3000 | (32 * group), 0x4FFF, 0x4FFF, 0x50FF]
        words += [0x2000 | x for x in range(640 + group, 700 + group)]
    payload = struct.pack(f"<{len(words)}H", *words)
    expected, _ = ref.decode_evt3(payload, width, height)
    assert len(expected) == 20 * (32 + 60)
    events, _, consumed, _ = decode_evt3_in_pieces(
        np.frombuffer(payload, "<u2"), width, height, [], room, 1
    )
    assert consumed == len(words)
    assert_same_events(events, expected)


# --------------------------------------------------------------------------- #
# Large files (whole-file reads of several MiB take a two-thread path)        #
# --------------------------------------------------------------------------- #

LARGE_BYTES = 9 << 20


def expected_arrays(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, on: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    events = np.empty(int(np.count_nonzero(keep)), aerflow.EVENTS_DTYPE)
    events["t"], events["x"], events["y"], events["on"] = t[keep], x[keep], y[keep], on[keep]
    return events


def expected_triggers(t: np.ndarray, ids: np.ndarray, rising: np.ndarray) -> np.ndarray:
    triggers = np.empty(len(t), aerflow.TRIGGERS_DTYPE)
    triggers["t"], triggers["id"], triggers["rising"] = t, ids, rising
    return triggers


def large_items(
    rng: np.random.Generator,
    n: int,
    start: int,
    width: int,
    height: int,
    trigger_share: float,
    max_gap: int = 200,
) -> dict[str, np.ndarray]:
    t = np.uint64(start) + np.cumsum(rng.integers(0, max_gap, n), dtype=np.uint64)
    return {
        "t": t,
        "x": rng.integers(0, width + 24, n),  # a few past the sensor
        "y": rng.integers(0, height + 8, n),
        "on": rng.integers(0, 2, n).astype(bool),
        "trigger": rng.random(n) < trigger_share,
        "id": rng.integers(0, 16, n),
        "rising": rng.integers(0, 2, n).astype(bool),
    }


def build_large(
    fmt: str, trigger_share: float, seed: int
) -> tuple[bytes, np.ndarray, np.ndarray, int]:
    """(file bytes, expected events, expected triggers, expected drops), computed with numpy."""
    rng = np.random.default_rng(seed)
    if fmt == "evt2":
        width, height = 640, 480
        n = LARGE_BYTES // 8
        items = large_items(rng, n, (1 << 34) - 40_000_000, width, height, trigger_share)
        t, x, y, on, trig = (items[k] for k in ("t", "x", "y", "on", "trigger"))
        ti = t.astype(np.int64)
        words = np.empty(2 * n, "<u4")
        words[0::2] = 0x8 << 28 | (ti >> 6) & ((1 << 28) - 1)  # crosses the 2**34 loop
        event_words = on.astype(np.int64) << 28 | (ti & 63) << 22 | x << 11 | y
        trigger_words = 0xA << 28 | (ti & 63) << 22 | items["id"] << 8 | items["rising"]
        words[1::2] = np.where(trig, trigger_words, event_words)
        inside = (x < width) & (y < height)
        header = f"% evt 2.0\n% format EVT2;height={height};width={width}\n% end\n".encode()
        payload = words.tobytes() + b"\x00\x00\x00"  # and a torn tail
        events = expected_arrays(t, x, y, on, ~trig & inside)
        dropped = int(np.count_nonzero(~trig & ~inside))
    elif fmt == "evt3":
        width, height = 1280, 720
        n = LARGE_BYTES // 8
        items = large_items(rng, n, 1000, width, height, trigger_share)
        t, x, y, on, trig = (items[k] for k in ("t", "x", "y", "on", "trigger"))
        ti = t.astype(np.int64)
        words = np.empty((n, 4), "<u2")
        words[:, 0] = 0x8000 | (ti >> 12) & 0xFFF  # loops every 2**24 µs
        words[:, 1] = 0x6000 | ti & 0xFFF
        words[:, 2] = y
        words[:, 3] = np.where(
            trig, 0xA000 | items["id"] << 8 | items["rising"], 0x2000 | on << 11 | x
        )
        header = f"% evt 3.0\n% format EVT3;height={height};width={width}\n% end\n".encode()
        payload = words.tobytes() + b"\x01"  # a torn word
        # A row past the sensor silences its column (no drop); a column past it is dropped.
        events = expected_arrays(t, x, y, on, ~trig & (x < width) & (y < height))
        dropped = int(np.count_nonzero(~trig & (x >= width) & (y < height)))
    elif fmt in ("evt3-dense", "evt3-vectors"):
        # Vector groups of 16 events per 16 bytes (denser than packets are sized for) or 4.
        width, height = 1280, 720
        n = LARGE_BYTES // 16
        items = large_items(rng, n, 0, width, height, 0.0)
        t, x, y, on = (items[k] for k in ("t", "x", "y", "on"))
        x = np.minimum(x, width - 32)  # whole groups inside the sensor (else rejected)
        y = np.minimum(y, height - 1)
        ti = t.astype(np.int64)
        words = np.empty((n, 8), "<u2")
        words[:, 0] = 0x8000 | (ti >> 12) & 0xFFF
        words[:, 1] = 0x6000 | ti & 0xFFF
        words[:, 2] = y
        words[:, 3] = 0x3000 | on << 11 | x
        # Dense: columns 0-3, 8-11, 16-19 and 28-31; else columns 0, 16, 24 and 26.
        masks = (0xF0F, 0x0F0, 0x0F0) if fmt == "evt3-dense" else (0x001, 0x010, 0x005)
        words[:, 4] = 0x4000 | masks[0]
        words[:, 5] = 0x4000 | masks[1]
        words[:, 6] = 0x5000 | masks[2]
        words[:, 7] = 0x7123  # CONTINUED_4: ignored
        mask = masks[0] | masks[1] << 12 | masks[2] << 24
        offsets = np.array([k for k in range(32) if mask >> k & 1])
        header = f"% evt 3.0\n% format EVT3;height={height};width={width}\n% end\n".encode()
        payload = words.tobytes()
        events = np.empty(len(offsets) * n, aerflow.EVENTS_DTYPE)
        events["t"] = np.repeat(t, len(offsets))
        events["x"] = (x[:, None] + offsets[None, :]).ravel()
        events["y"] = np.repeat(y, len(offsets))
        events["on"] = np.repeat(on, len(offsets))
        trig = np.zeros(n, bool)
        dropped = 0
    elif fmt == "evt21":
        width, height = 1280, 720
        n = LARGE_BYTES // 16
        # Steps under 64 µs: TIME_HIGH takes every value, so the loop shows as the top value
        # followed by 0, the only drop EVT 2.1 counts as a loop.
        items = large_items(rng, n, (1 << 34) - 5_000_000, width, height, trigger_share, max_gap=64)
        t, x, y, on, trig = (items[k] for k in ("t", "x", "y", "on", "trigger"))
        ti = t.astype(np.int64)
        assert t[0] < 1 << 34 < t[-1]
        masks = rng.integers(0, 1 << 32, n, dtype=np.uint64) & rng.integers(
            0, 1 << 32, n, dtype=np.uint64
        )
        headers = np.empty(2 * n, np.uint64)
        payloads = np.zeros(2 * n, np.uint64)
        headers[0::2] = (0x8 << 28 | (ti >> 6) & ((1 << 28) - 1)).astype(np.uint64)
        event_headers = on.astype(np.int64) << 28 | (ti & 63) << 22 | x << 11 | y
        trigger_headers = 0xA << 28 | (ti & 63) << 22 | items["id"] << 8 | items["rising"]
        headers[1::2] = np.where(trig, trigger_headers, event_headers).astype(np.uint64)
        payloads[1::2] = masks
        words = (headers << np.uint64(32) | payloads).astype("<u8")  # little order
        header = f"% format EVT21;endianness=little;height={height};width={width}\n% end\n".encode()
        payload = words.tobytes() + b"\x00" * 5  # and a torn tail
        bits = (masks[:, None] >> np.arange(32, dtype=np.uint64)[None, :]) & np.uint64(1) == 1
        columns = x[:, None] + np.arange(32)[None, :]
        rows = np.broadcast_to(y[:, None], columns.shape)
        valid = bits & ~trig[:, None]
        inside = (columns < width) & (rows < height)
        events = expected_arrays(
            np.broadcast_to(t[:, None], columns.shape).ravel(),
            columns.ravel(),
            rows.ravel(),
            np.broadcast_to(on[:, None], columns.shape).ravel(),
            (valid & inside).ravel(),
        )
        dropped = int(np.count_nonzero(valid & ~inside))
    else:  # DAT, CD records or trigger records
        width, height = 640, 480
        n = LARGE_BYTES // 8
        items = large_items(rng, n, (1 << 32) - 50_000_000, width, height, 0.0)
        t, x, y, on = (items[k] for k in ("t", "x", "y", "on"))
        records = np.empty(n, [("t", "<u4"), ("w", "<u4")])
        records["t"] = (t & np.uint64(0xFFFFFFFF)).astype(np.uint32)  # wraps past 2**32
        is_trigger = fmt == "dat-trigger"
        if is_trigger:
            records["w"] = items["id"] << 26 | items["rising"]
            trig = np.ones(n, bool)
            type_byte = 0x0E
        else:
            records["w"] = x | y << 14 | on.astype(np.int64) << 28
            trig = np.zeros(n, bool)
            type_byte = 0x0C
        header = (
            f"% Data file containing events.\n% Version 2\n% Width {width}\n% Height {height}\n"
        ).encode() + bytes([type_byte, 8])
        payload = records.tobytes() + b"\x01"
        inside = (x < width) & (y < height)
        events = expected_arrays(t, x, y, on, ~trig & inside)
        dropped = 0 if is_trigger else int(np.count_nonzero(~inside))
    triggers = expected_triggers(t[trig], items["id"][trig], items["rising"][trig])
    return header + payload, events, triggers, dropped


@pytest.mark.parametrize(
    ("fmt", "trigger_share"),
    [
        ("evt2", 0.0),  # no triggers at all
        ("evt2", 0.001),
        ("evt2", 0.2),  # more triggers than the first share's trigger buffer holds
        ("evt3", 0.001),
        ("evt3", 0.2),
        ("evt3-dense", 0.0),  # more events than the first share's packet holds
        ("evt3-vectors", 0.0),
        ("evt21", 0.0),
        ("evt21", 0.001),
        ("evt21", 0.2),
        ("dat", 0.0),
        ("dat-trigger", 0.0),
    ],
)
def test_large_file_whole_read(fmt: str, trigger_share: float, workdir: Path) -> None:
    data, events, triggers, dropped = build_large(fmt, trigger_share, seed=7)
    assert len(data) > 9 << 20
    path = write_file(workdir, data, ".dat" if fmt.startswith("dat") else ".raw")
    try:
        torn = not fmt.startswith(("evt3-dense", "evt3-vectors"))
        for chunk_size in (None, 1 << 22):
            with deadline(20):
                decoded = decode_with_aerflow(path, chunk_size)
            assert_same_events(decoded.events, events)
            assert_same_triggers(decoded.triggers, triggers)
            assert decoded.dropped == dropped
            expected_warnings: set[type[Warning]] = (
                {aerflow.TruncatedDataWarning} if torn else set()
            )
            if dropped:
                expected_warnings.add(aerflow.OutOfRangeWarning)
            assert decoded.warnings == expected_warnings
    finally:
        path.unlink()


@SETTINGS
@given(data=st.data())
def test_evt2_kernel_in_pieces_with_little_room(data: st.DataObject) -> None:
    """The EVT 2.0 kernel resumed over arbitrary cuts, each call with room for 1-40 events
    and 1-3 triggers (so that its inner loop without a room test per event, run while every
    word's event fits, stops and resumes often), gives the reference's events,
    triggers and drops, and writes nothing past its room."""
    width, height = data.draw(st.sampled_from(SENSORS))
    prefix, body, repeats = data.draw(repeated_body(evt2_body(width, height), 4, 3000))
    payload = struct.pack(f"<{len(prefix) + len(body) * repeats}I", *prefix, *body * repeats)
    with counting_reference_drops() as dropped:
        expected_events, expected_triggers = ref.decode_evt2(payload, width, height)
    words = np.frombuffer(payload, "<u4")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(words)), max_size=6)))
    room = data.draw(st.one_of(st.integers(1, 40), st.just(len(words))))
    trigger_room = data.draw(st.integers(1, 3))
    filled = data.draw(st.integers(0, 3))  # events already in the output before the call
    state = np.zeros(evt2._STATE_SIZE, np.int64)
    events_parts, trigger_parts = [], []
    position = 0
    for edge in [*cuts, len(words)]:
        while True:
            buffer = np.full(filled + room + 64, GUARD, aerflow.EVENTS_DTYPE)
            triggers = np.full(trigger_room + 8, 7, aerflow.TRIGGERS_DTYPE)
            consumed, n, m = evt2._decode(
                words[position:edge], state, width, height, buffer[: filled + room], filled,
                triggers[:trigger_room], 0,
            )  # fmt: skip
            assert (buffer[filled + room :] == GUARD).all()
            assert (triggers[trigger_room:] == triggers[-1]).all()
            events_parts.append(buffer[filled:n].copy())
            trigger_parts.append(triggers[:m].copy())
            position += consumed
            if consumed == 0:
                break
    assert_same_events(np.concatenate(events_parts), expected_events)
    assert_same_triggers(np.concatenate(trigger_parts), expected_triggers)
    assert int(state[evt2._DROPPED]) == dropped[0]
    assert position == len(words)


@SETTINGS
@given(data=st.data())
def test_dat_kernel_in_pieces_with_little_room(data: st.DataObject) -> None:
    """The DAT kernel resumed over arbitrary cuts with room for 1-40 events (its inner loop
    without a room test per record stops and resumes often), 32-bit wraps and
    records outside the sensor: the reference's events and drops, nothing past the room."""
    width, height = data.draw(st.sampled_from([(78, 42), (640, 480), (16384, 16384)]))
    count = data.draw(st.integers(1, 400))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    t = np.cumsum(rng.integers(0, 1 << 29, count)) % (1 << 32)  # wraps now and then
    x = rng.integers(0, width + 8, count) & 0x3FFF
    y = rng.integers(0, height + 8, count) & 0x3FFF
    words = x | y << 14 | rng.integers(0, 16, count) << 28
    records = np.stack([t, words], axis=1).astype("<u4")
    header = f"% Version 2\n% Width {width}\n% Height {height}\n".encode() + bytes([0x0C, 8])
    expected, _, _ = ref.decode_dat(header + records.tobytes())
    inside = (expected["x"] < width) & (expected["y"] < height)
    words32 = records.reshape(-1)
    cuts = sorted(2 * c for c in data.draw(st.lists(st.integers(0, count), max_size=6)))
    room = data.draw(st.one_of(st.integers(1, 40), st.just(count)))
    filled = data.draw(st.integers(0, 3))
    state = np.zeros(3, np.int64)
    parts = []
    position = 0
    no_triggers = np.empty(1, aerflow.TRIGGERS_DTYPE)
    for edge in [*cuts, len(words32)]:
        while True:
            buffer = np.full(filled + room + 64, GUARD, aerflow.EVENTS_DTYPE)
            consumed, n, _ = dat._decode(
                words32[position:edge], state, dat._CD_V2, width, height,
                buffer[: filled + room], filled, no_triggers, 0,
            )  # fmt: skip
            assert (buffer[filled + room :] == GUARD).all()
            parts.append(buffer[filled:n].copy())
            position += consumed
            if consumed == 0:
                break
    assert_same_events(np.concatenate(parts), expected[inside])
    assert int(state[dat._DROPPED]) == int((~inside).sum())
    assert position == len(words32)


@SETTINGS
@given(data=st.data(), layout=st.sampled_from(["v1", "trigger"]))
def test_dat_kernel_other_layouts_in_pieces_with_little_room(
    data: st.DataObject, layout: str
) -> None:
    """The DAT kernel on v1 CD records (9-bit x, 8-bit y, polarity bit 17) and on trigger
    records, resumed over arbitrary cuts with room for 1-40 items: the reference's events,
    triggers and drops, 32-bit wraps included, and nothing written past the room."""
    v1 = layout == "v1"
    width, height = data.draw(st.sampled_from([(78, 42), (304, 240), (512, 256)]))
    count = data.draw(st.integers(1, 400))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    t = np.cumsum(rng.integers(0, 1 << 29, count)) % (1 << 32)  # wraps now and then
    if v1:
        x = rng.integers(0, width + 8, count) & 0x1FF
        y = rng.integers(0, height + 8, count) & 0xFF
        words = x | y << 9 | rng.integers(0, 1 << 14, count) << 17
        preamble = f"% Version 1\n% Width {width}\n% Height {height}\n".encode() + b"\x0c\x08"
    else:
        words = rng.integers(0, 1 << 32, count)
        preamble = b"% Version 2\n" + b"\x0e\x08"
    records = np.stack([t, words], axis=1).astype("<u4")
    expected, expected_triggers, _ = ref.decode_dat(preamble + records.tobytes())
    inside = (expected["x"] < width) & (expected["y"] < height)
    words32 = records.reshape(-1)
    cuts = sorted(2 * c for c in data.draw(st.lists(st.integers(0, count), max_size=6)))
    room = data.draw(st.one_of(st.integers(1, 40), st.just(count)))
    filled = data.draw(st.integers(0, 3))
    state = np.zeros(3, np.int64)
    parts, trigger_parts = [], []
    position = 0
    for edge in [*cuts, len(words32)]:
        while True:
            buffer = np.full(filled + room + 64, GUARD, aerflow.EVENTS_DTYPE)
            triggers = np.full(room + 8, 7, aerflow.TRIGGERS_DTYPE)
            if v1:
                consumed, n, m = dat._decode(
                    words32[position:edge], state, dat._CD_V1, width, height,
                    buffer[: filled + room], filled, triggers[:0], 0,
                )  # fmt: skip
            else:
                consumed, n, m = dat._decode(
                    words32[position:edge], state, dat._TRIGGER, 1, 1,
                    buffer[:0], 0, triggers[:room], 0,
                )  # fmt: skip
            assert (buffer[filled + room :] == GUARD).all()
            assert (triggers[room:] == triggers[-1]).all()
            parts.append(buffer[filled:n].copy() if v1 else buffer[:0].copy())
            trigger_parts.append(triggers[:m].copy())
            position += consumed
            if consumed == 0:
                break
    assert_same_events(np.concatenate(parts), expected[inside])
    assert_same_triggers(np.concatenate(trigger_parts), expected_triggers)
    assert int(state[dat._DROPPED]) == int((~inside).sum())
    assert position == len(words32)
