"""The UDP wire-format kernels against the plain-Python reference (tests/reference/udp_codecs.py):
byte-identical datagrams, identical decoded events and counters, sequence accounting, and the
fixed vectors (aestream's own test word, faery's 32-bit wrap, a native header byte by byte)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.net import wire as net_wire
from aerflow.net.wire import (
    DatagramDecoder,
    decode_datagrams,
    encode_datagrams,
    parse_aerflow_header,
)

from .helpers import assert_same_events

try:
    from tests.reference import udp_codecs as ref
except ImportError:  # pragma: no cover - run from inside tests/
    from reference import udp_codecs as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

WIRES = ("aerflow", "spif", "spif-t", "faery-t64", "faery-t32")
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def as_array(events: list[ref.Event]) -> np.ndarray:
    array = np.zeros(len(events), aerflow.EVENTS_DTYPE)
    if events:
        t, x, y, on = zip(*events, strict=True)
        array["t"] = t
        array["x"] = x
        array["y"] = y
        array["on"] = on
    return array


def as_list(array: np.ndarray) -> list[ref.Event]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["on"])) for e in array]


@st.composite
def event_lists(draw: Any, wire: str, monotonic: bool = False) -> list[ref.Event]:
    """Events that fit ``wire``; times near 32-bit wraps, with large gaps and, unless
    ``monotonic``, going back a little. Bulk values come from a seeded generator (fast);
    the shape of the data from hypothesis."""
    n = draw(st.integers(0, 150))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x_limit = 1 << 15 if wire.startswith("spif") else 1 << 16
    y_limit = 1 << 15 if wire in ("spif", "spif-t", "faery-t32") else 1 << 16
    start = draw(st.sampled_from([0, (1 << 32) - 500, (1 << 40) + 7, 1 << 63]))
    scale = draw(st.sampled_from([50, 1 << 20, 1 << 33]))
    gaps = rng.integers(0, scale, n, dtype=np.int64)
    backwards = (rng.random(n) < 0.3) & (gaps < 1 << 20) & (not monotonic)
    times = []
    t = start
    for gap, back in zip(gaps.tolist(), backwards.tolist(), strict=True):
        t = max(0, t - gap) if back else min(t + gap, (1 << 64) - 1)
        times.append(t)
    small = draw(st.booleans())
    xs = rng.integers(0, 16 if small else x_limit, n).tolist()
    ys = rng.integers(0, y_limit, n).tolist()
    ons = (rng.random(n) < 0.5).tolist()
    return list(zip(times, xs, ys, ons, strict=True))


# -- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES)
@SETTINGS
@given(data=st.data())
def test_encoder_matches_reference(wire: str, data: st.DataObject) -> None:
    events = data.draw(event_lists(wire))
    info = net_wire.get_wire_format(wire)
    smallest = info.header_bytes + info.record_bytes
    size = data.draw(st.sampled_from([smallest, smallest + 5, 512, 1472, 65507]))
    options: dict[str, Any] = {}
    if wire == "aerflow":
        events = [(t, x % 640, y % 480, on) for t, x, y, on in events]
        options = {
            "width": 640,
            "height": 480,
            "max_span": data.draw(st.sampled_from([None, 0, 1000])),
            "stream_id": data.draw(st.integers(0, (1 << 32) - 1)),
            "sequence": data.draw(st.sampled_from([0, 5, (1 << 32) - 2])),
        }
    got = encode_datagrams(as_array(events), wire, datagram_bytes=size, **options)
    assert got == ref.encode(wire, events, size, **options)
    assert all(len(d) <= size for d in got)
    assert all((len(d) - info.header_bytes) % info.record_bytes == 0 for d in got)


@pytest.mark.parametrize("wire", WIRES)
@SETTINGS
@given(data=st.data())
def test_decoder_matches_reference_on_any_bytes(wire: str, data: st.DataObject) -> None:
    """Valid datagrams with random damage, and random bytes: same events, same counters."""
    events = data.draw(event_lists(wire))
    if wire == "aerflow":
        events = [(t, x % 640, y % 480, on) for t, x, y, on in events]
    datagrams = ref.encode(wire, events, data.draw(st.sampled_from([64, 256, 1472])))
    datagrams = [bytearray(d) for d in datagrams]
    for datagram in datagrams:
        for _ in range(data.draw(st.integers(0, 2))):
            if datagram:
                position = data.draw(st.integers(0, len(datagram) - 1))
                datagram[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, 3))
        if cut and len(datagram) > cut:
            del datagram[-cut:]
    noise = data.draw(st.lists(st.binary(max_size=300), max_size=4))
    mixed = [bytes(d) for d in datagrams] + noise
    arrivals = list(range(0, 10 * len(mixed), 10))
    width = data.draw(st.sampled_from([None, 100]))
    decoder = DatagramDecoder(wire, width=width, height=width)
    decoded = decode_datagrams(mixed, decoder=decoder, arrivals=arrivals)
    expected, counters = ref.decode(wire, mixed, arrivals=arrivals, width=width, height=width)
    assert as_list(decoded) == expected
    assert (decoder.malformed, decoder.out_of_range, decoder.untimed) == (
        counters.malformed,
        counters.out_of_range,
        counters.untimed,
    )


@pytest.mark.parametrize("wire", WIRES)
@SETTINGS
@given(data=st.data())
def test_round_trip(wire: str, data: st.DataObject) -> None:
    events = data.draw(event_lists(wire, monotonic=True))
    # 32-bit times unwrap only when consecutive events are less than 2^31 µs apart.
    if net_wire.get_wire_format(wire).times == "low32":
        kept: list[ref.Event] = []
        for t, x, y, on in sorted(events):
            if not kept:  # the first time must be its own low 32 bits
                kept.append((t % (1 << 32), x, y, on))
            elif t - kept[-1][0] < 1 << 31 and t >= kept[-1][0]:
                kept.append((t, x, y, on))
        events = kept
    array = as_array(events)
    datagrams = encode_datagrams(array, wire, datagram_bytes=data.draw(st.sampled_from([64, 1472])))
    decoded = decode_datagrams(datagrams, wire)
    if wire == "spif":
        array["t"] = 0  # no times on the wire: the arrival time (0 here)
    assert_same_events(decoded, array)


@pytest.mark.parametrize(
    ("wire", "x", "y"),
    [("spif", 1 << 15, 0), ("spif", 0, 1 << 15), ("spif-t", 40000, 3), ("faery-t32", 5, 1 << 15)],
)
def test_coordinates_beyond_the_format_are_refused(wire: str, x: int, y: int) -> None:
    events = as_array([(0, 1, 1, True), (1, x, y, False)])
    with pytest.raises(ValueError, match=rf"event 1 \(x={x}, y={y}\) does not fit wire format"):
        encode_datagrams(events, wire)


def test_coordinates_beyond_the_sensor_are_refused() -> None:
    events = as_array([(0, 639, 479, True), (1, 640, 0, False)])
    with pytest.raises(ValueError, match=r"event 1 .* does not fit the 640x480 sensor"):
        encode_datagrams(events, "faery-t64", width=640, height=480)


@pytest.mark.parametrize("wire", WIRES)
def test_datagram_size_limits(wire: str) -> None:
    info = net_wire.get_wire_format(wire)
    with pytest.raises(ValueError, match="outside"):
        info.check_datagram_bytes(65508)
    with pytest.raises(ValueError, match="outside"):
        info.check_datagram_bytes(info.header_bytes + info.record_bytes - 1)
    assert info.check_datagram_bytes(None) in (512, 1472)


def test_wire_format_names_and_aliases() -> None:
    assert net_wire.wire_format_names() == list(WIRES)
    assert net_wire.get_wire_format("t32_x16_y15_on1").name == "faery-t32"
    assert net_wire.get_wire_format("T64_X16_Y16_ON8").name == "faery-t64"
    with pytest.raises(ValueError, match="unknown wire format 'evt3'"):
        net_wire.get_wire_format("evt3")


# -- fixed vectors ------------------------------------------------------------------------------


def test_aestream_test_vector() -> None:
    """aestream's own test sends 0F 00 DA 00 and expects x=218, y=15: the high half-word is x."""
    decoder = DatagramDecoder("spif")
    events = decode_datagrams([bytes([0x0F, 0x00, 0xDA, 0x00])], decoder=decoder, arrivals=[7])
    assert as_list(events) == [(7, 218, 15, False)]
    assert decoder.untimed == 1  # bit 31 = 0 announces a timestamp word that is not there
    assert encode_datagrams(as_array([(0, 218, 15, False)]), "spif") == [b"\x0f\x00\xda\x80"]
    assert encode_datagrams(as_array([(9, 218, 15, True)]), "spif-t") == [
        b"\x0f\x80\xda\x00\x09\x00\x00\x00"
    ]


def test_spif_mixes_words_with_and_without_timestamps() -> None:
    words = [1 << 31 | 3 << 16 | 4, 5 << 16 | 1 << 15 | 6, 1234, 1 << 31 | 7 << 16 | 8]
    datagram = struct.pack("<4I", *words) + b"\x01\x02"  # and a torn tail
    decoder = DatagramDecoder("spif-t")
    events = decode_datagrams([datagram], decoder=decoder, arrivals=[99])
    assert as_list(events) == [(99, 3, 4, False), (1234, 5, 6, True), (99, 7, 8, False)]
    assert decoder.malformed == 1
    expected, counters = ref.decode_spif([datagram], [99])
    assert as_list(events) == expected
    assert counters.malformed == 1


def test_faery_t32_unwrap() -> None:
    """faery's rule: a time more than 2^31 below the previous one is a wrap (+2^32); here
    across datagrams and inside one, plus a late pre-wrap event."""
    times32 = [[0xFFFFFF00, 0xFFFFFFF0], [0x10, 0x20, 0xFFFFFFFA, 0x30], [0x80000010, 0x5]]
    datagrams = [
        b"".join(struct.pack("<IHH", t, 1, 2 << 1 | 1) for t in chunk) for chunk in times32
    ]
    events = decode_datagrams(datagrams, "faery-t32")
    wrap = 1 << 32
    assert events["t"].tolist() == [
        0xFFFFFF00,
        0xFFFFFFF0,
        wrap + 0x10,
        wrap + 0x20,
        0xFFFFFFFA,  # late, from before the wrap
        wrap + 0x30,
        wrap + 0x80000010,
        2 * wrap + 0x5,
    ]
    assert events["y"].tolist() == [2] * 8
    assert events["on"].all()
    expected, _ = ref.decode_faery_t32(datagrams)
    assert [e[0] for e in expected] == events["t"].tolist()


def test_aerflow_datagram_byte_by_byte() -> None:
    events = as_array([(1_000_005, 10, 20, True), (1_000_000, 0x0102, 0x0134, False)])
    (datagram,) = encode_datagrams(
        events, "aerflow", width=640, height=480, stream_id=0xA1B2C3D4, sequence=7
    )
    assert datagram == bytes.fromhex(
        "41455246"  # magic AERF
        "01"  # version
        "00"  # flags
        "2000"  # header size 32
        "d4c3b2a1"  # stream id
        "07000000"  # sequence
        "40420f0000000000"  # time base 1_000_000
        "8002"  # width 640
        "e001"  # height 480
        "0200"  # count
        "0800"  # record size
        "05000080"  # +5 µs, ON
        "0a001400"  # x=10, y=20
        "00000000"  # +0 µs, OFF
        "02013401"  # x=0x0102, y=0x0134
    )
    header = parse_aerflow_header(datagram)
    assert header == net_wire.AerflowHeader(1, 0, 32, 0xA1B2C3D4, 7, 1_000_000, 640, 480, 2, 8)
    assert not header.end_of_stream
    end = net_wire.DatagramEncoder("aerflow", stream_id=3, width=640, height=480)
    end.sequence = 9
    eos = parse_aerflow_header(end.end_of_stream(aborted=True))
    assert eos.end_of_stream
    assert eos.aborted
    assert eos.sequence == 9
    assert eos.event_count == 0
    with pytest.raises(ValueError, match="magic"):
        parse_aerflow_header(b"XERF" + datagram[4:])
    with pytest.raises(ValueError, match="at least 32"):
        parse_aerflow_header(datagram[:31])


def test_aerflow_cuts_datagrams_by_time_span() -> None:
    events = as_array([(0, 1, 1, True), ((1 << 31) - 1, 1, 1, True), (1 << 31, 1, 1, True)])
    datagrams = encode_datagrams(events, "aerflow")
    assert [parse_aerflow_header(d).event_count for d in datagrams] == [2, 1]
    assert_same_events(decode_datagrams(datagrams, "aerflow"), events)


def test_aestream_doubled_last_datagram_is_repaired() -> None:
    """aestream sends its last timestamped datagram with twice its length; the second half
    repeats the previous datagram's words. The receiver reads the first half only."""
    events = [(1000 + i, i % 300, i % 200, bool(i & 1)) for i in range(40)]
    full, last = ref.encode("spif-t", events, 256)
    doubled = last + full[len(last) : 2 * len(last)]
    decoder = DatagramDecoder("spif-t")
    decoded = decode_datagrams([full, doubled], decoder=decoder)
    assert as_list(decoded) == events
    assert decoder.malformed == 1
    # Across two batches the previous datagram is remembered.
    decoder = DatagramDecoder("spif-t")
    first = decode_datagrams([full], decoder=decoder)
    second = decode_datagrams([doubled], decoder=decoder)
    assert as_list(first) + as_list(second) == events
    # A datagram whose second half differs is taken as it is.
    changed = last + bytes(len(last))
    assert len(decode_datagrams([full, changed], "spif-t")) == 32 + 16


# -- malformed datagrams --------------------------------------------------------------------------


def good_aerflow(sequence: int = 0, stream_id: int = 1) -> bytes:
    events = as_array([(100, 1, 2, True), (101, 3, 4, False)])
    return encode_datagrams(events, "aerflow", stream_id=stream_id, sequence=sequence)[0]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"AERF",
        good_aerflow()[:31],
        good_aerflow()[:-1],  # truncated
        good_aerflow() + b"\x00",  # trailing byte
        b"XERF" + good_aerflow()[4:],  # bad magic
        good_aerflow()[:4] + b"\x02" + good_aerflow()[5:],  # version 2
        good_aerflow()[:6] + b"\x28\x00" + good_aerflow()[8:],  # header size 40
        good_aerflow()[:30] + b"\x09\x00" + good_aerflow()[32:],  # record size 9
        good_aerflow()[:28] + b"\x03\x00" + good_aerflow()[30:],  # count 3
    ],
)
def test_malformed_aerflow_datagrams_are_counted_and_skipped(bad: bytes) -> None:
    decoder = DatagramDecoder("aerflow")
    events = decode_datagrams([bad, good_aerflow(1)], decoder=decoder)
    assert len(events) == 2
    assert decoder.malformed == 1
    expected, counters, _, _ = ref.decode_aerflow([bad, good_aerflow(1)])
    assert as_list(events) == expected
    assert counters.malformed == 1


@pytest.mark.parametrize(("wire", "record"), [("spif", 4), ("faery-t64", 13), ("faery-t32", 8)])
@pytest.mark.parametrize("extra", [1, 3])
def test_torn_tails_are_counted(wire: str, record: int, extra: int) -> None:
    events = as_array([(5, 1, 2, True), (6, 3, 4, False)])
    (datagram,) = encode_datagrams(events, wire)
    decoder = DatagramDecoder(wire)
    decoded = decode_datagrams([datagram + b"\xff" * extra, b"\x01"], decoder=decoder)
    assert len(decoded) == 2
    assert decoder.malformed == 2


@pytest.mark.parametrize("wire", WIRES)
def test_events_outside_the_given_sensor_are_dropped(wire: str) -> None:
    events = as_array([(5, 1, 2, True), (6, 100, 4, False), (7, 3, 60, True), (8, 9, 9, True)])
    datagrams = encode_datagrams(events, wire)
    decoder = DatagramDecoder(wire, width=50, height=50)
    decoded = decode_datagrams(datagrams, decoder=decoder)
    assert decoded["x"].tolist() == [1, 9]
    assert decoder.out_of_range == 2
    expected, counters = ref.decode(wire, datagrams, width=50, height=50)
    assert as_list(decoded) == expected
    assert counters.out_of_range == 2


def test_aerflow_sensor_in_header_bounds_events() -> None:
    events = as_array([(5, 1, 2, True), (6, 100, 4, False)])
    header = net_wire.aerflow_header(1, 0, 5, 64, 64, 2)
    body = encode_datagrams(events, "aerflow")[0][32:]
    decoder = DatagramDecoder("aerflow")
    decoded = decode_datagrams([header + body], decoder=decoder)
    assert decoded["x"].tolist() == [1]
    assert decoder.out_of_range == 1
    assert decoder.sensor_size == (64, 64)


# -- sequence accounting --------------------------------------------------------------------------


def sequence_datagrams(sequences: list[tuple[int, int]], flags: dict[int, int]) -> list[bytes]:
    out = []
    for stream_id, sequence in sequences:
        events = encode_datagrams(
            as_array([(sequence, sequence % 7, 1, True)]),
            "aerflow",
            stream_id=stream_id,
            sequence=sequence,
        )[0]
        flag = flags.get(len(out), 0)
        if flag:
            events = net_wire.aerflow_header(stream_id, sequence, 0, 0, 0, 0, flags=flag)
        out.append(events)
    return out


def check_accounting(datagrams: list[bytes], batch: int) -> DatagramDecoder:
    decoder = DatagramDecoder("aerflow")
    decoded = []
    for i in range(0, len(datagrams), batch):
        decoded.extend(as_list(decode_datagrams(datagrams[i : i + batch], decoder=decoder)))
    expected, _, streams, _ = ref.decode_aerflow(datagrams)
    assert decoded == expected
    got = {s.stream_id: s for s in decoder.stream_stats()}
    assert list(got) == list(streams)
    for stream_id, stream in streams.items():
        s = got[stream_id]
        assert (s.lost, s.duplicated, s.reordered, s.datagrams, s.events) == (
            stream.lost,
            stream.duplicated,
            stream.reordered,
            stream.datagrams,
            stream.events,
        ), stream_id
        assert (s.ended, s.aborted) == (stream.ended != 0, stream.ended == 2)
    return decoder


@SETTINGS
@given(data=st.data())
def test_sequence_accounting_matches_reference(data: st.DataObject) -> None:
    """Random loss, duplication, reordering, several streams, sequence wrap, ends."""
    n_streams = data.draw(st.integers(1, 20))  # more than the table's first 16 rows
    sequences = []
    for stream_id in range(n_streams):
        start = data.draw(st.sampled_from([0, 100, (1 << 32) - 3]))
        count = data.draw(st.integers(1, 40))
        for k in range(count):
            sequence = (start + k) % (1 << 32)
            action = data.draw(st.sampled_from(["send", "send", "send", "drop", "dup"]))
            if action != "drop":
                sequences.append((stream_id * 7919 + 1, sequence))
            if action == "dup":
                sequences.append((stream_id * 7919 + 1, sequence))
    if data.draw(st.booleans()):  # local reordering: each datagram moves a few places at most
        shifts = data.draw(st.lists(st.integers(0, 4), min_size=len(sequences)))
        order = sorted(range(len(sequences)), key=lambda i: i + shifts[i])
        sequences = [sequences[i] for i in order]
    ends = data.draw(st.sets(st.integers(0, max(0, len(sequences) - 1)), max_size=4))
    flags = {i: data.draw(st.sampled_from([1, 3])) for i in ends}
    batch = data.draw(st.sampled_from([1, 3, 1000]))
    check_accounting(sequence_datagrams(sequences, flags), batch)


def test_loss_duplicate_reorder_counts() -> None:
    order = [0, 1, 3, 2, 2, 5, 9, 6]  # 4, 7 and 8 lost; 2 late then repeated
    decoder = check_accounting(sequence_datagrams([(1, s) for s in order], {}), 1000)
    (stats,) = decoder.stream_stats()
    assert (stats.lost, stats.duplicated, stats.reordered) == (3, 1, 2)
    assert (stats.first_sequence, stats.last_sequence) == (0, 9)
    assert stats.events == 7
    assert not stats.ended


def test_sequence_wraps() -> None:
    order = [(1 << 32) - 2, (1 << 32) - 1, 0, 2, 1]
    decoder = check_accounting(sequence_datagrams([(1, s) for s in order], {}), 2)
    (stats,) = decoder.stream_stats()
    assert (stats.lost, stats.duplicated, stats.reordered) == (0, 0, 1)
    assert stats.last_sequence == 2


def test_end_of_stream_for_every_stream() -> None:
    decoder = DatagramDecoder("aerflow")
    data = [good_aerflow(0, 1), good_aerflow(0, 2)]
    decode_datagrams(data, decoder=decoder)
    assert not decoder.all_ended()
    end_1 = net_wire.aerflow_header(1, 1, 0, 0, 0, 0, flags=net_wire.FLAG_END_OF_STREAM)
    decode_datagrams([end_1, end_1], decoder=decoder)  # a repeat is ignored
    assert not decoder.all_ended()
    end_2 = net_wire.aerflow_header(2, 1, 0, 0, 0, 0, flags=3)
    decode_datagrams([end_2], decoder=decoder)
    assert decoder.all_ended()
    one, two = decoder.stream_stats()
    assert one.ended
    assert not one.aborted
    assert two.aborted
    assert one.duplicated == 0
    assert one.datagrams == 2


def test_warm_up_changes_nothing() -> None:
    decoder = DatagramDecoder("aerflow")
    decode_datagrams([good_aerflow(0)], decoder=decoder)
    before = decoder.stream_stats()
    decoder.warm_up()
    assert decoder.stream_stats() == before
