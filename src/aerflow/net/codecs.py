"""Wire formats of events over UDP: a registry, numba encoders and decoders.

Every format is little-endian, and every datagram holds whole events only: a sender never
splits an event across datagrams, and a receiver counts a torn tail (bytes that do not make
a whole event) as malformed and keeps the whole events before it.

``spif`` — SPIF / aestream, no timestamps (one 32-bit word per event)::

    bit 31     1 (no timestamp follows)
    bits 30-16 x (15 bits)
    bit 15     polarity (1 = ON)
    bits 14-0  y (15 bits)

``spif-t`` — the same word with bit 31 = 0, followed by a second word holding the low 32
bits of the time in µs (8 bytes per event). Receivers of ``spif`` and ``spif-t`` read both
variants word by word: a word with bit 31 = 1 takes the time it was received (µs since
the receiver's first datagram), a word with bit 31 = 0 takes the next word as its time,
unwrapped to 64 bits. A lone last word whose timestamp is missing (aestream's own test
sends one) also takes the arrival time and is counted in ``untimed``. aestream sends the
last datagram of a timestamped stream with twice its length, the second half repeating
the previous datagram's words; a receiver that sees exactly that (a datagram of 4k words
after a full 64-word one, its second half equal to the same words of the previous one)
reads the first half only and counts the datagram as malformed.

``faery-t64`` — faery's ``t64_x16_y16_on8``: 13-byte records ``t u64, x u16, y u16, on u8``
(the bytes of :data:`~aerflow.EVENTS_DTYPE`).

``faery-t32`` — faery's ``t32_x16_y15_on1``: 8-byte records ``t u32 (low 32 bits of µs),
x u16, (y << 1 | on) u16``; y < 2^15.

Unwrapping of 32-bit times (``spif-t``, ``faery-t32``) follows faery's rule event by event:
a time more than 2^31 µs below the previous one means the 32-bit counter wrapped, and 2^32
is added from then on; a time more than 2^31 µs above the previous one after a wrap is a
late event from before the wrap and gets 2^32 less. Wraps stop counting once 2^62 µs have
been added (a sender would need 2^30 of them): unwrapped times stay below 2^62 + 2^32 µs
rather than wrapping past 2^64 to small ones.

``aerflow`` — the native format: a 32-byte header, then ``count`` 8-byte records. Byte by
byte (all multi-byte fields little-endian)::

    offset size field
     0     4    magic: the bytes "AERF" (41 45 52 46)
     4     1    version: 1
     5     1    flags: bit 0 END_OF_STREAM (the sender closed the stream; such a datagram
                normally holds no events), bit 1 ABORTED (with END_OF_STREAM: the sender
                stopped on an error, the stream is incomplete); other bits are 0
     6     2    header size in bytes: 32
     8     4    stream id, chosen by the sender (random by default), the same for every
                datagram of one stream
    12     4    sequence number: 0 for the stream's first datagram, +1 for each next one
                (the end-of-stream datagram included), wrapping from 2^32 - 1 to 0
    16     8    time base in µs: the smallest time of the datagram's events
    24     2    sensor width in pixels (0 = unknown)
    26     2    sensor height in pixels (0 = unknown)
    28     2    event count
    30     2    record size in bytes: 8
    32     8·n  records: u32 (bit 31 = polarity, 1 = ON; bits 30-0 = time − time base, µs),
                u16 x, u16 y

A datagram is exactly ``32 + 8 * count`` bytes; any other length, another magic, version,
header size or record size makes it malformed (skipped whole), and so does a time base
that, plus a record's delta, passes 2^64 − 1 µs: times never wrap around to small ones
(senders cannot produce such a datagram: their time base is the datagram's smallest
time). Every field sits at a multiple of its size, so a datagram placed at an 8-byte
boundary is read with aligned loads. Senders cut datagrams so that the events of one span
less than 2^31 µs, and keep them at most 1472 bytes (180 events; Ethernet's UDP payload)
unless asked for more, up to 65507 (8184 events). Receivers count, per stream id, lost
datagrams (gaps in the sequence), duplicated ones (dropped) and reordered ones (delivered
late), and stop once every stream they heard has ended.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np
import numpy.typing as npt

from ..events import EVENTS_DTYPE

__all__ = [
    "AERFLOW_HEADER_BYTES",
    "AERFLOW_MAGIC",
    "AERFLOW_VERSION",
    "FLAG_ABORTED",
    "FLAG_END_OF_STREAM",
    "MAX_DATAGRAM_BYTES",
    "MTU_DATAGRAM_BYTES",
    "WIRE_FORMATS",
    "AerflowHeader",
    "DatagramDecoder",
    "DatagramEncoder",
    "StreamStats",
    "WireFormat",
    "decode_datagrams",
    "encode_datagrams",
    "get_wire_format",
    "parse_aerflow_header",
    "wire_format_names",
]

MAX_DATAGRAM_BYTES = 65507
"""The largest UDP payload over IPv4 (65535 − 8 bytes UDP − 20 bytes IP header)."""

MTU_DATAGRAM_BYTES = 1472
"""The largest UDP payload that fits one Ethernet frame (1500 − 20 − 8)."""

AERFLOW_MAGIC = b"AERF"
AERFLOW_VERSION = 1
AERFLOW_HEADER_BYTES = 32
FLAG_END_OF_STREAM = 0x01
FLAG_ABORTED = 0x02

_MAGIC_U32 = int.from_bytes(AERFLOW_MAGIC, "little")
_RECORD = 8  # aerflow record bytes
_MAX_SPAN = (1 << 31) - 1  # µs between the first and last event of an aerflow datagram
_UNLIMITED_SPAN = (1 << 63) - 1
_HALF = np.int64(1) << 31
_WRAP = np.int64(1) << 32
_MAX_UNWRAP = np.int64(1) << 62  # the most that 32-bit unwrapping adds (see the docstring)
_SAFE_TIME_BASE = np.uint64((1 << 64) - (1 << 31))  # plus any 31-bit delta: at most 2**64 - 1

# Kernel selectors.
_SPIF, _SPIF_T, _FAERY_T64, _FAERY_T32, _AERFLOW = range(5)


@dataclass(frozen=True)
class WireFormat:
    """One way of putting events in datagrams.

    ``x_limit``/``y_limit`` are exclusive coordinate limits; ``times`` is ``"none"``
    (receivers use the arrival time), ``"low32"`` (the low 32 bits of µs, unwrapped on
    receive) or ``"full"`` (64-bit µs, or a 64-bit base plus deltas).
    """

    name: str
    description: str
    record_bytes: int
    header_bytes: int
    x_limit: int
    y_limit: int
    times: str
    default_datagram_bytes: int
    aliases: tuple[str, ...] = ()
    _kind: int = -1

    def events_per_datagram(self, datagram_bytes: int) -> int:
        return (datagram_bytes - self.header_bytes) // self.record_bytes

    def check_datagram_bytes(self, datagram_bytes: int | None) -> int:
        """``datagram_bytes`` (or this format's default) checked against the format."""
        if datagram_bytes is None:
            return self.default_datagram_bytes
        size = int(datagram_bytes)
        smallest = self.header_bytes + self.record_bytes
        if not smallest <= size <= MAX_DATAGRAM_BYTES:
            raise ValueError(
                f"datagram_bytes={size} is outside {smallest}..{MAX_DATAGRAM_BYTES} "
                f"for wire format {self.name!r}"
            )
        return size


WIRE_FORMATS: dict[str, WireFormat] = {
    info.name: info
    for info in (
        WireFormat(
            "aerflow",
            "aerflow's own: header with stream id, sequence number, sensor size, end of "
            "stream; 8-byte events (64-bit time base + 31-bit deltas)",
            _RECORD,
            AERFLOW_HEADER_BYTES,
            1 << 16,
            1 << 16,
            "full",
            MTU_DATAGRAM_BYTES,
            _kind=_AERFLOW,
        ),
        WireFormat(
            "spif",
            "SPIF / aestream 32-bit words without timestamps (x, y < 32768; receivers "
            "assign arrival times)",
            4,
            0,
            1 << 15,
            1 << 15,
            "none",
            512,  # aestream's UDPInput reads at most 512 bytes of a datagram
            _kind=_SPIF,
        ),
        WireFormat(
            "spif-t",
            "SPIF / aestream words each followed by a timestamp word (low 32 bits of µs)",
            8,
            0,
            1 << 15,
            1 << 15,
            "low32",
            512,
            _kind=_SPIF_T,
        ),
        WireFormat(
            "faery-t64",
            "faery t64_x16_y16_on8: 13-byte records t u64, x u16, y u16, on u8",
            13,
            0,
            1 << 16,
            1 << 16,
            "full",
            MTU_DATAGRAM_BYTES,
            aliases=("t64_x16_y16_on8",),
            _kind=_FAERY_T64,
        ),
        WireFormat(
            "faery-t32",
            "faery t32_x16_y15_on1: 8-byte records t u32, x u16, y<<1|on u16 (y < 32768)",
            8,
            0,
            1 << 16,
            1 << 15,
            "low32",
            MTU_DATAGRAM_BYTES,
            aliases=("t32_x16_y15_on1",),
            _kind=_FAERY_T32,
        ),
    )
}
"""Every wire format by name, the default (``aerflow``) first."""


def wire_format_names() -> list[str]:
    """The names :func:`get_wire_format` takes (aliases excluded)."""
    return list(WIRE_FORMATS)


def get_wire_format(name: str | WireFormat) -> WireFormat:
    """The wire format called ``name`` (faery's own names are aliases)."""
    if isinstance(name, WireFormat):
        return name
    key = name.strip().lower()
    if key in WIRE_FORMATS:
        return WIRE_FORMATS[key]
    for info in WIRE_FORMATS.values():
        if key in info.aliases:
            return info
    known = ", ".join(WIRE_FORMATS)
    raise ValueError(f"unknown wire format {name!r} (known: {known})")


# -- encoding ---------------------------------------------------------------------------------


@nb.njit(nogil=True, cache=True)
def _first_out_of_range(events: Any, x_limit: int, y_limit: int) -> int:
    """Index of the first event with x >= x_limit or y >= y_limit, else -1."""
    for i in range(events.size):
        event = events[i]
        if event.x >= x_limit or event.y >= y_limit:
            return i
    return -1


# The kernels index views that start at the datagram or event at hand with loop counters
# from 0: numba then drops its negative-index handling and LLVM vectorises the loops (eight
# times faster than indexing the whole buffer with computed offsets).


@nb.njit(nogil=True, cache=True)
def _group(events: Any, per_datagram: int, max_span: int) -> tuple[int, Any, Any]:
    """How many of ``events`` go in one datagram: up to ``per_datagram`` whose times span
    at most ``max_span`` µs. Returns (count, smallest time, largest time)."""
    lo = events[0].t
    hi = lo
    k = min(per_datagram, events.size)
    for j in range(1, k):  # the common case first: all of them fit
        t = events[j].t
        lo = min(lo, t)
        hi = max(hi, t)
    span = np.uint64(max_span)
    if hi - lo <= span:
        return k, lo, hi
    lo = events[0].t
    hi = lo
    k = 1
    while k < per_datagram and k < events.size:
        t = events[k].t
        new_lo = min(lo, t)
        new_hi = max(hi, t)
        if new_hi - new_lo > span:
            break
        lo = new_lo
        hi = new_hi
        k += 1
    return k, lo, hi


# Each encoder fills datagram slots of ``stride`` bytes (a multiple of 8) from event ``start``
# until the events or the slots run out, and notes per slot its length, the largest time of
# its events (for pacing) and its event count. Returns (first event not encoded, slots filled).


@nb.njit(nogil=True, cache=True)
def _encode_aerflow(
    events: Any,
    start: int,
    out8: Any,
    out16: Any,
    out32: Any,
    out64: Any,
    stride: int,
    per_datagram: int,
    max_span: int,
    stream_id: int,
    sequence: int,
    width: int,
    height: int,
    lengths: Any,
    last_times: Any,
    counts: Any,
) -> tuple[int, int]:
    n = events.size
    i = start
    s = 0
    while i < n and s < lengths.size:
        chunk = events[i:]
        k, lo, hi = _group(chunk, per_datagram, max_span)
        base = s * stride
        o32 = out32[(base >> 2) : (base >> 2) + 8 + 2 * k]
        o32[0] = np.uint32(_MAGIC_U32)
        o8 = out8[base : base + 8]
        o8[4] = np.uint8(AERFLOW_VERSION)
        o8[5] = np.uint8(0)
        o16 = out16[(base >> 1) : (base >> 1) + 16]
        o16[3] = np.uint16(AERFLOW_HEADER_BYTES)
        o32[2] = np.uint32(stream_id)
        o32[3] = np.uint32((sequence + s) & 0xFFFFFFFF)
        out64[(base >> 3) + 2] = lo
        o16[12] = np.uint16(width)
        o16[13] = np.uint16(height)
        o16[14] = np.uint16(k)
        o16[15] = np.uint16(_RECORD)
        words = o32[8:]
        halves = out16[(base >> 1) + 16 : (base >> 1) + 16 + 4 * k]
        for j in range(k):
            event = chunk[j]
            word = np.uint32(event.t - lo)
            if event.on:
                word |= np.uint32(0x80000000)
            words[2 * j] = word
            halves[4 * j + 2] = event.x
            halves[4 * j + 3] = event.y
        lengths[s] = AERFLOW_HEADER_BYTES + _RECORD * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


@nb.njit(nogil=True, cache=True)
def _encode_spif(
    events: Any,
    start: int,
    timestamps: bool,
    out32: Any,
    stride: int,
    per_datagram: int,
    max_span: int,
    lengths: Any,
    last_times: Any,
    counts: Any,
) -> tuple[int, int]:
    n = events.size
    i = start
    s = 0
    while i < n and s < lengths.size:
        chunk = events[i:]
        k, _, hi = _group(chunk, per_datagram, max_span)
        w0 = (s * stride) >> 2
        if timestamps:
            words = out32[w0 : w0 + 2 * k]
            for j in range(k):
                event = chunk[j]
                word = (np.uint32(event.x) << 16) | np.uint32(event.y)
                if event.on:
                    word |= np.uint32(0x8000)
                words[2 * j] = word
                words[2 * j + 1] = np.uint32(event.t & np.uint64(0xFFFFFFFF))
            lengths[s] = 8 * k
        else:
            words = out32[w0 : w0 + k]
            for j in range(k):
                event = chunk[j]
                word = (np.uint32(event.x) << 16) | np.uint32(event.y) | np.uint32(0x80000000)
                if event.on:
                    word |= np.uint32(0x8000)
                words[j] = word
            lengths[s] = 4 * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


@nb.njit(nogil=True, cache=True)
def _encode_faery_t32(
    events: Any,
    start: int,
    out16: Any,
    out32: Any,
    stride: int,
    per_datagram: int,
    max_span: int,
    lengths: Any,
    last_times: Any,
    counts: Any,
) -> tuple[int, int]:
    n = events.size
    i = start
    s = 0
    while i < n and s < lengths.size:
        chunk = events[i:]
        k, _, hi = _group(chunk, per_datagram, max_span)
        w0 = (s * stride) >> 2
        words = out32[w0 : w0 + 2 * k]
        halves = out16[2 * w0 : 2 * w0 + 4 * k]
        for j in range(k):
            event = chunk[j]
            words[2 * j] = np.uint32(event.t & np.uint64(0xFFFFFFFF))
            halves[4 * j + 2] = event.x
            halves[4 * j + 3] = np.uint16((np.int64(event.y) << 1) | (1 if event.on else 0))
        lengths[s] = 8 * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


@nb.njit(nogil=True, cache=True)
def _encode_faery_t64(
    events: Any,
    start: int,
    out8: Any,
    stride: int,
    per_datagram: int,
    max_span: int,
    lengths: Any,
    last_times: Any,
    counts: Any,
) -> tuple[int, int]:
    """The records are the bytes of EVENTS_DTYPE, polarity made 0 or 1."""
    n = events.size
    source = events.view(np.uint8)
    i = start
    s = 0
    while i < n and s < lengths.size:
        k, _, hi = _group(events[i:], per_datagram, max_span)
        dst = out8[s * stride : s * stride + 13 * k]
        src = source[13 * i : 13 * (i + k)]
        for byte in range(13 * k):
            dst[byte] = src[byte]
        for j in range(k):
            if dst[13 * j + 12] > 1:
                dst[13 * j + 12] = 1
        lengths[s] = 13 * k
        last_times[s] = hi
        counts[s] = k
        i += k
        s += 1
    return i, s


def _round8(n: int) -> int:
    return (n + 7) & ~7


def _views(buffer: npt.NDArray[np.uint8]) -> tuple[Any, Any, Any, Any]:
    return buffer, buffer.view(np.uint16), buffer.view(np.uint32), buffer.view(np.uint64)


def _contiguous_events(events: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if events.dtype != EVENTS_DTYPE:
        raise TypeError(f"events must have dtype EVENTS_DTYPE, got {events.dtype}")
    return np.ascontiguousarray(events)


class DatagramEncoder:
    """Encodes events into a reusable buffer of datagram slots, one numba call per batch.

    After :meth:`encode`, slot ``i`` is ``buffer[i * stride : i * stride + lengths[i]]``;
    ``last_times[i]`` is the largest time of its events and ``counts[i]`` their number.
    For ``aerflow`` the sequence number advances by one per datagram.
    """

    def __init__(
        self,
        wire: str | WireFormat = "aerflow",
        datagram_bytes: int | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        stream_id: int = 0,
        max_span: int | None = None,
        buffer_bytes: int = 1 << 23,
    ) -> None:
        self.wire = get_wire_format(wire)
        self.datagram_bytes = self.wire.check_datagram_bytes(datagram_bytes)
        self.per_datagram = self.wire.events_per_datagram(self.datagram_bytes)
        self.stride = _round8(self.datagram_bytes)
        if not 0 <= stream_id <= 0xFFFFFFFF:
            raise ValueError(f"stream_id {stream_id} is outside 0..2^32-1")
        self.stream_id = int(stream_id)
        self.sequence = 0
        self.width = 0 if width is None else int(width)
        self.height = 0 if height is None else int(height)
        # Coordinates beyond the declared sensor are refused too, not only beyond the format.
        self.x_limit = min(self.wire.x_limit, self.width or self.wire.x_limit)
        self.y_limit = min(self.wire.y_limit, self.height or self.wire.y_limit)
        if self.width > 0xFFFF or self.height > 0xFFFF:  # the header's u16 fields
            self.width = self.height = 0
        # Only aerflow's 31-bit deltas need datagrams cut by time; pacing asks for short ones.
        limit = _MAX_SPAN if self.wire._kind == _AERFLOW else _UNLIMITED_SPAN
        span = limit if max_span is None else int(max_span)
        if not 0 <= span <= limit:
            raise ValueError(f"max_span must lie in 0..{limit} µs")
        self.max_span = span
        slots = max(1, min(4096, buffer_bytes // self.stride))
        self.buffer = np.zeros(slots * self.stride, np.uint8)
        self.buffer.fill(0xFF)  # map every page now, not while sending
        self._views = _views(self.buffer)
        self.lengths = np.zeros(slots, np.int64)
        self.last_times = np.zeros(slots, np.uint64)
        self.counts = np.zeros(slots, np.int64)

    @property
    def slots(self) -> int:
        return len(self.lengths)

    def check(self, events: npt.NDArray[Any]) -> None:
        """Raise ValueError when an event's coordinates do not fit the format or sensor."""
        if self.x_limit >= 1 << 16 and self.y_limit >= 1 << 16:
            return
        bad = _first_out_of_range(events, self.x_limit, self.y_limit)
        if bad >= 0:
            event = events[bad]
            if self.width and self.height:
                where = f"the {self.width}x{self.height} sensor"
            else:
                where = f"wire format {self.wire.name!r} (x < {self.x_limit}, y < {self.y_limit})"
            raise ValueError(
                f"event {bad} (x={int(event['x'])}, y={int(event['y'])}) does not fit {where}"
            )

    def encode(self, events: npt.NDArray[Any], start: int = 0) -> tuple[int, int]:
        """Encode from event ``start`` into the slots; (next event index, slots filled)."""
        out8, out16, out32, out64 = self._views
        kind = self.wire._kind
        slots = (self.stride, self.per_datagram, self.max_span)
        noted = (self.lengths, self.last_times, self.counts)
        if kind == _AERFLOW:
            header = (self.stream_id, self.sequence, self.width, self.height)
            next_event, filled = _encode_aerflow(
                events, start, out8, out16, out32, out64, *slots, *header, *noted
            )
            self.sequence = (self.sequence + filled) & 0xFFFFFFFF
        elif kind in (_SPIF, _SPIF_T):
            next_event, filled = _encode_spif(events, start, kind == _SPIF_T, out32, *slots, *noted)
        elif kind == _FAERY_T32:
            next_event, filled = _encode_faery_t32(events, start, out16, out32, *slots, *noted)
        else:
            next_event, filled = _encode_faery_t64(events, start, out8, *slots, *noted)
        return int(next_event), int(filled)

    def datagram(self, slot: int) -> bytes:
        start = slot * self.stride
        return self.buffer[start : start + int(self.lengths[slot])].tobytes()

    def end_of_stream(self, *, aborted: bool = False) -> bytes:
        """The ``aerflow`` datagram that closes the stream (takes the next sequence number)."""
        flags = FLAG_END_OF_STREAM | (FLAG_ABORTED if aborted else 0)
        datagram = aerflow_header(
            self.stream_id, self.sequence, 0, self.width, self.height, 0, flags=flags
        )
        self.sequence = (self.sequence + 1) & 0xFFFFFFFF
        return datagram


def aerflow_header(
    stream_id: int,
    sequence: int,
    time_base: int,
    width: int,
    height: int,
    count: int,
    *,
    flags: int = 0,
    version: int = AERFLOW_VERSION,
    header_bytes: int = AERFLOW_HEADER_BYTES,
    record_bytes: int = _RECORD,
    magic: bytes = AERFLOW_MAGIC,
) -> bytes:
    """The 32 header bytes of an ``aerflow`` datagram (the keywords let tests forge bad ones)."""
    return magic + struct.pack(
        "<BBHIIQHHHH",
        version,
        flags,
        header_bytes,
        stream_id,
        sequence & 0xFFFFFFFF,
        time_base,
        width,
        height,
        count,
        record_bytes,
    )


class AerflowHeader(NamedTuple):
    version: int
    flags: int
    header_bytes: int
    stream_id: int
    sequence: int
    time_base: int
    width: int
    height: int
    event_count: int
    record_bytes: int

    @property
    def end_of_stream(self) -> bool:
        return bool(self.flags & FLAG_END_OF_STREAM)

    @property
    def aborted(self) -> bool:
        return bool(self.flags & FLAG_ABORTED)


def parse_aerflow_header(datagram: bytes | bytearray | memoryview) -> AerflowHeader:
    """The header of an ``aerflow`` datagram; ValueError when it is not one."""
    data = bytes(datagram[:AERFLOW_HEADER_BYTES])
    if len(data) < AERFLOW_HEADER_BYTES:
        raise ValueError(f"an aerflow datagram has at least 32 bytes, got {len(data)}")
    if data[:4] != AERFLOW_MAGIC:
        raise ValueError(f"not an aerflow datagram: magic {data[:4]!r}, expected b'AERF'")
    header = AerflowHeader(*struct.unpack("<BBHIIQHHHH", data[4:]))
    if header.version != AERFLOW_VERSION:
        raise ValueError(f"aerflow datagram version {header.version}, expected 1")
    return header


def encode_datagrams(
    events: npt.NDArray[Any],
    wire: str | WireFormat = "aerflow",
    *,
    datagram_bytes: int | None = None,
    width: int | None = None,
    height: int | None = None,
    stream_id: int = 0,
    sequence: int = 0,
    max_span: int | None = None,
) -> list[bytes]:
    """Every datagram for ``events`` (EVENTS_DTYPE), as bytes: for tests, tools and forging.

    ValueError when coordinates do not fit the format or the sensor.
    """
    events = _contiguous_events(events)
    info = get_wire_format(wire)
    size = info.check_datagram_bytes(datagram_bytes)
    enough = _round8(size) * (len(events) // info.events_per_datagram(size) + 1)
    encoder = DatagramEncoder(
        info,
        size,
        width=width,
        height=height,
        stream_id=stream_id,
        max_span=max_span,
        buffer_bytes=min(enough, 1 << 23),
    )
    encoder.sequence = sequence & 0xFFFFFFFF
    encoder.check(events)
    datagrams: list[bytes] = []
    position = 0
    while position < len(events):
        position, filled = encoder.encode(events, position)
        datagrams.extend(encoder.datagram(slot) for slot in range(filled))
    return datagrams


# -- decoding ---------------------------------------------------------------------------------

# Counters shared by every decoder (``DatagramDecoder.counters``).
C_MALFORMED, C_OUT_OF_RANGE, C_UNTIMED, C_EVENTS = range(4)
_N_COUNTERS = 4
# Decoder state: 32-bit time unwrapping, and the sensor size the first aerflow datagram gave.
S_LAST, S_OFFSET, S_WIDTH, S_HEIGHT, S_STREAMS, S_PREVIOUS = range(6)
_N_STATE = 6
_AESTREAM_WORDS = 64  # words in a full timestamped aestream datagram (32 events, 256 bytes)
# Stream table columns (aerflow).
(
    ST_ID,
    ST_HIGHEST,
    ST_LOWEST,
    ST_UNIQUE,
    ST_DUPLICATED,
    ST_REORDERED,
    ST_ENDED,
    ST_EVENTS,
    ST_DATAGRAMS,
) = range(9)
_N_STREAM_COLUMNS = 9
WINDOW = 1024
"""Sequence numbers remembered per stream to tell duplicates from late datagrams."""
_WINDOW_WORDS = WINDOW // 64


@nb.njit(nogil=True, cache=True)
def _unwrap(t32: int, last: int, offset: int) -> tuple[int, int, int]:
    """(64-bit time, new last, new offset) for a 32-bit time after ``last``."""
    t = offset + t32
    if t + _HALF < last and offset < _MAX_UNWRAP:
        offset += _WRAP
        t += _WRAP
    elif t > last + _HALF and offset >= _WRAP:
        return t - _WRAP, last, offset  # late, from before the wrap: the state stays
    return t, t, offset


@nb.njit(nogil=True, cache=True)
def _decode_spif(
    buf32: Any,
    stride: int,
    lengths: Any,
    arrivals: Any,
    n: int,
    out: Any,
    x_limit: int,
    y_limit: int,
    state: Any,
    counters: Any,
    previous: Any,
) -> int:
    last = state[S_LAST]
    offset = state[S_OFFSET]
    m = 0
    for d in range(n):
        length = lengths[d]
        if length < 0:
            continue
        if length & 3:
            counters[C_MALFORMED] += 1
        words = length >> 2
        w0 = (d * stride) >> 2
        timed = words >= 2 and (buf32[w0] & 0x80000000) == 0
        if timed and state[S_PREVIOUS] and words % 4 == 0 and words // 2 < _AESTREAM_WORDS:
            # aestream sends its last timestamped datagram with twice its length: the
            # second half repeats what the previous (full) datagram left in its buffer.
            stale = True
            for j in range(words // 2, min(words, _AESTREAM_WORDS)):
                if buf32[w0 + j] != previous[j]:
                    stale = False
                    break
            if stale:
                words //= 2
                counters[C_MALFORMED] += 1
        source = buf32[w0 : w0 + words]
        if timed and words == _AESTREAM_WORDS:
            for j in range(_AESTREAM_WORDS):
                previous[j] = source[j]
            state[S_PREVIOUS] = 1
        else:
            state[S_PREVIOUS] = 0
        dst = out[m : m + words]
        arrival = arrivals[d]
        kept = 0
        j = 0
        while j < words:
            word = np.int64(source[j])
            x = (word >> 16) & 0x7FFF
            y = word & 0x7FFF
            if word & 0x80000000:
                t = arrival
                j += 1
            elif j + 1 < words:
                t, last, offset = _unwrap(np.int64(source[j + 1]), last, offset)
                j += 2
            else:
                t = arrival
                counters[C_UNTIMED] += 1
                j += 1
            if x < x_limit and y < y_limit:
                event = dst[kept]
                event.t = np.uint64(t)
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = (word >> 15) & 1 == 1
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
    state[S_LAST] = last
    state[S_OFFSET] = offset
    counters[C_EVENTS] += m
    return m


@nb.njit(nogil=True, cache=True)
def _decode_faery_t32(
    buf16: Any,
    buf32: Any,
    stride: int,
    lengths: Any,
    n: int,
    out: Any,
    x_limit: int,
    y_limit: int,
    state: Any,
    counters: Any,
) -> int:
    last = state[S_LAST]
    offset = state[S_OFFSET]
    m = 0
    for d in range(n):
        length = lengths[d]
        if length < 0:
            continue
        if length & 7:
            counters[C_MALFORMED] += 1
        records = length >> 3
        w0 = (d * stride) >> 2
        words = buf32[w0 : w0 + 2 * records]
        halves = buf16[2 * w0 : 2 * w0 + 4 * records]
        dst = out[m : m + records]
        kept = 0
        for j in range(records):
            t, last, offset = _unwrap(np.int64(words[2 * j]), last, offset)
            x = np.int64(halves[4 * j + 2])
            packed = np.int64(halves[4 * j + 3])
            y = packed >> 1
            if x < x_limit and y < y_limit:
                event = dst[kept]
                event.t = np.uint64(t)
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = (packed & 1) == 1
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
    state[S_LAST] = last
    state[S_OFFSET] = offset
    counters[C_EVENTS] += m
    return m


@nb.njit(nogil=True, cache=True)
def _decode_faery_t64(
    buf8: Any,
    stride: int,
    lengths: Any,
    n: int,
    out: Any,
    x_limit: int,
    y_limit: int,
    counters: Any,
) -> int:
    m = 0
    for d in range(n):
        length = lengths[d]
        if length < 0:
            continue
        records = length // 13
        if records * 13 != length:
            counters[C_MALFORMED] += 1
        source = buf8[d * stride : d * stride + 13 * records]
        dst = out[m : m + records].view(np.uint8)
        if x_limit >= 1 << 16 and y_limit >= 1 << 16:  # every record is kept: copy bytes
            for byte in range(13 * records):
                dst[byte] = source[byte]
            for j in range(records):
                if dst[13 * j + 12] > 1:
                    dst[13 * j + 12] = 1
            m += records
            continue
        kept = 0
        for j in range(records):
            b = 13 * j
            x = np.int64(source[b + 8]) | (np.int64(source[b + 9]) << 8)
            y = np.int64(source[b + 10]) | (np.int64(source[b + 11]) << 8)
            if x < x_limit and y < y_limit:
                k = 13 * kept
                for byte in range(12):
                    dst[k + byte] = source[b + byte]
                dst[k + 12] = 1 if source[b + 12] else 0
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
    counters[C_EVENTS] += m
    return m


@nb.njit(nogil=True, cache=True)
def _sequence(streams: Any, windows: Any, row: int, sequence: int) -> int:
    """Account for datagram ``sequence`` of stream ``row``: 1 new, 0 duplicate."""
    highest = streams[row, ST_HIGHEST]
    delta = (sequence - (highest & 0xFFFFFFFF)) & 0xFFFFFFFF
    if delta >= _HALF:
        delta -= _WRAP
    ext = highest + delta
    if delta > 0:
        if delta >= WINDOW:
            for word in range(_WINDOW_WORDS):
                windows[row, word] = 0
        else:
            for s in range(highest + 1, ext + 1):
                bit = s & (WINDOW - 1)
                windows[row, bit >> 6] &= ~(np.uint64(1) << np.uint64(bit & 63))
        streams[row, ST_HIGHEST] = ext
    elif highest - ext < WINDOW:
        bit = ext & (WINDOW - 1)
        mask = np.uint64(1) << np.uint64(bit & 63)
        if windows[row, bit >> 6] & mask:
            streams[row, ST_DUPLICATED] += 1
            return 0
        streams[row, ST_REORDERED] += 1
    else:  # older than the window: cannot tell a duplicate, take it as late
        streams[row, ST_REORDERED] += 1
    if ext < streams[row, ST_LOWEST]:
        streams[row, ST_LOWEST] = ext
    if highest - ext < WINDOW:
        bit = ext & (WINDOW - 1)
        windows[row, bit >> 6] |= np.uint64(1) << np.uint64(bit & 63)
    streams[row, ST_UNIQUE] += 1
    return 1


@nb.njit(nogil=True, cache=True)
def _passes_top(time_base: Any, words: Any, count: int) -> bool:
    """Whether a record's time, ``time_base`` plus its delta, passes 2**64 - 1 µs."""
    room = ~time_base  # 2**64 - 1 - time_base
    j = 0
    while j < count and np.uint64(words[2 * j] & np.uint32(0x7FFFFFFF)) <= room:
        j += 1
    return j < count


@nb.njit(nogil=True, cache=True)
def _decode_aerflow(
    buf8: Any,
    buf16: Any,
    buf32: Any,
    buf64: Any,
    stride: int,
    lengths: Any,
    first: int,
    n: int,
    out: Any,
    m: int,
    x_limit: int,
    y_limit: int,
    state: Any,
    counters: Any,
    streams: Any,
    windows: Any,
) -> tuple[int, int]:
    """Decode datagrams ``first..n-1``; (events written so far, next datagram). The next
    datagram is < n when the stream table is full (grow it and call again)."""
    capacity = streams.shape[0]
    d = first
    while d < n:
        length = lengths[d]
        base = d * stride
        if length < 0:
            d += 1
            continue
        if (
            length < AERFLOW_HEADER_BYTES
            or buf32[base >> 2] != _MAGIC_U32
            or buf8[base + 4] != AERFLOW_VERSION
            or buf16[(base + 6) >> 1] != AERFLOW_HEADER_BYTES
            or buf16[(base + 30) >> 1] != _RECORD
            or length != AERFLOW_HEADER_BYTES + _RECORD * np.int64(buf16[(base + 28) >> 1])
        ):
            counters[C_MALFORMED] += 1
            d += 1
            continue
        time_base = buf64[(base + 16) >> 3]
        count = np.int64(buf16[(base + 28) >> 1])
        w0 = (base + AERFLOW_HEADER_BYTES) >> 2
        words = buf32[w0 : w0 + 2 * count]
        if time_base > _SAFE_TIME_BASE and _passes_top(time_base, words, count):
            counters[C_MALFORMED] += 1
            d += 1
            continue
        flags = buf8[base + 5]
        stream_id = np.int64(buf32[(base + 8) >> 2])
        sequence = np.int64(buf32[(base + 12) >> 2])
        row = -1
        for r in range(state[S_STREAMS]):
            if streams[r, ST_ID] == stream_id:
                row = r
                break
        if row < 0:
            if state[S_STREAMS] == capacity:
                return m, d
            row = state[S_STREAMS]
            state[S_STREAMS] += 1
            streams[row, ST_ID] = stream_id
            streams[row, ST_HIGHEST] = sequence - 1  # the first datagram is one step ahead
            streams[row, ST_LOWEST] = sequence
            for word in range(_WINDOW_WORDS):
                windows[row, word] = 0
        elif streams[row, ST_ENDED] and flags & FLAG_END_OF_STREAM:
            d += 1  # a repeat of the end-of-stream datagram
            continue
        streams[row, ST_DATAGRAMS] += 1
        previous = streams[row, ST_HIGHEST]
        if _sequence(streams, windows, row, sequence) == 0:
            d += 1
            continue
        if flags & FLAG_END_OF_STREAM:
            streams[row, ST_ENDED] = 2 if flags & FLAG_ABORTED else 1
        elif streams[row, ST_HIGHEST] > previous:
            streams[row, ST_ENDED] = 0  # new data after the end: the sender went on
        width = np.int64(buf16[(base + 24) >> 1])
        height = np.int64(buf16[(base + 26) >> 1])
        if state[S_WIDTH] == 0 and width and height:
            state[S_WIDTH] = width
            state[S_HEIGHT] = height
        xl = min(x_limit, width) if width else x_limit
        yl = min(y_limit, height) if height else y_limit
        halves = buf16[2 * w0 : 2 * w0 + 4 * count]
        dst = out[m : m + count]
        kept = 0
        for j in range(count):
            word = words[2 * j]
            x = np.int64(halves[4 * j + 2])
            y = np.int64(halves[4 * j + 3])
            if x < xl and y < yl:
                event = dst[kept]
                event.t = time_base + np.uint64(word & np.uint32(0x7FFFFFFF))
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = (word >> np.uint32(31)) == 1
                kept += 1
            else:
                counters[C_OUT_OF_RANGE] += 1
        m += kept
        streams[row, ST_EVENTS] += kept
        counters[C_EVENTS] += kept
        d += 1
    return m, d


@dataclass(frozen=True)
class StreamStats:
    """What one ``aerflow`` sender's datagrams looked like on arrival."""

    stream_id: int
    datagrams: int
    events: int
    lost: int
    duplicated: int
    reordered: int
    ended: bool
    aborted: bool
    first_sequence: int
    last_sequence: int


class DatagramDecoder:
    """Decodes batches of datagrams laid out in slots of ``stride`` bytes, keeping state
    (32-bit time unwrapping, per-stream sequence accounting) from batch to batch.

    ``width``/``height``, when given, bound the coordinates: events outside are dropped
    and counted (``out_of_range``); ``aerflow`` datagrams also bound them by the sensor
    size in their header.
    """

    def __init__(
        self,
        wire: str | WireFormat = "aerflow",
        *,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self.wire = get_wire_format(wire)
        self.x_limit = self.wire.x_limit if width is None else min(int(width), 1 << 16)
        self.y_limit = self.wire.y_limit if height is None else min(int(height), 1 << 16)
        self.state = np.zeros(_N_STATE, np.int64)
        self.state[S_LAST] = -1
        self.counters = np.zeros(_N_COUNTERS, np.int64)
        self._previous = np.zeros(_AESTREAM_WORDS, np.uint32)
        self.streams = np.zeros((16, _N_STREAM_COLUMNS), np.int64)
        self.windows = np.zeros((16, _WINDOW_WORDS), np.uint64)

    # -- what was seen --------------------------------------------------------------------
    @property
    def malformed(self) -> int:
        return int(self.counters[C_MALFORMED])

    @property
    def out_of_range(self) -> int:
        return int(self.counters[C_OUT_OF_RANGE])

    @property
    def untimed(self) -> int:
        return int(self.counters[C_UNTIMED])

    @property
    def events(self) -> int:
        return int(self.counters[C_EVENTS])

    @property
    def sensor_size(self) -> tuple[int, int] | None:
        """The sensor size the first ``aerflow`` datagram that had one announced."""
        if self.state[S_WIDTH]:
            return int(self.state[S_WIDTH]), int(self.state[S_HEIGHT])
        return None

    def stream_stats(self) -> list[StreamStats]:
        """Per ``aerflow`` stream id, in order of first arrival."""
        result = []
        for row in self.streams[: self.state[S_STREAMS]]:
            highest, lowest = int(row[ST_HIGHEST]), int(row[ST_LOWEST])
            result.append(
                StreamStats(
                    stream_id=int(row[ST_ID]),
                    datagrams=int(row[ST_DATAGRAMS]),
                    events=int(row[ST_EVENTS]),
                    lost=max(0, highest - lowest + 1 - int(row[ST_UNIQUE])),
                    duplicated=int(row[ST_DUPLICATED]),
                    reordered=int(row[ST_REORDERED]),
                    ended=bool(row[ST_ENDED]),
                    aborted=bool(row[ST_ENDED] == 2),
                    first_sequence=lowest & 0xFFFFFFFF,
                    last_sequence=highest & 0xFFFFFFFF,
                )
            )
        return result

    def all_ended(self) -> bool:
        """True when at least one ``aerflow`` stream was heard and every one has ended."""
        count = int(self.state[S_STREAMS])
        return count > 0 and bool(np.all(self.streams[:count, ST_ENDED] != 0))

    # -- decoding -------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load (or compile) the kernel now rather than at the first datagram, when a
        stall could overflow the socket's buffer. Changes no state."""
        state, counters = self.state.copy(), self.counters.copy()
        streams, windows = self.streams.copy(), self.windows.copy()
        self.decode(np.zeros(8, np.uint8), 8, np.zeros(1, np.int64), 0, np.zeros(1, np.int64))
        self.state, self.counters, self.streams, self.windows = state, counters, streams, windows

    def capacity(self, lengths: npt.NDArray[np.int64], n: int) -> int:
        """Enough events for datagrams of these lengths."""
        smallest = 4 if self.wire._kind in (_SPIF, _SPIF_T) else self.wire.record_bytes
        return int(np.maximum(lengths[:n], 0).sum()) // smallest + 1

    def decode(
        self,
        buffer: npt.NDArray[np.uint8],
        stride: int,
        lengths: npt.NDArray[np.int64],
        n: int,
        arrivals: npt.NDArray[np.int64] | None = None,
        out: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[Any]:
        """Events of datagrams ``0..n-1``; datagram ``i`` is ``lengths[i]`` bytes at
        ``buffer[i * stride]`` (``stride`` a multiple of 8, ``buffer.size`` too).

        A negative length marks a slot to skip (a datagram already found bad).
        ``arrivals`` (µs, one per datagram) time ``spif`` events that carry no timestamp.
        Returns a view of ``out`` (allocated when None) holding the decoded events.
        """
        if stride % 8 or buffer.size % 8:
            raise ValueError("stride and buffer size must be multiples of 8")
        if n * stride > buffer.size or n > len(lengths):
            raise ValueError("more datagrams than the buffer holds")
        if np.any(lengths[:n] > stride):
            raise ValueError("a datagram length exceeds its slot")
        if out is None:
            out = np.empty(self.capacity(lengths, n), EVENTS_DTYPE)
        elif len(out) < self.capacity(lengths, n) - 1:
            raise ValueError("out is too small for these datagrams")
        buf8, buf16, buf32, buf64 = _views(buffer)
        kind = self.wire._kind
        if kind in (_SPIF, _SPIF_T):
            if arrivals is None:
                arrivals = np.zeros(n, np.int64)
            m = _decode_spif(
                buf32,
                stride,
                lengths,
                arrivals,
                n,
                out,
                self.x_limit,
                self.y_limit,
                self.state,
                self.counters,
                self._previous,
            )
        elif kind == _FAERY_T32:
            m = _decode_faery_t32(
                buf16,
                buf32,
                stride,
                lengths,
                n,
                out,
                self.x_limit,
                self.y_limit,
                self.state,
                self.counters,
            )
        elif kind == _FAERY_T64:
            m = _decode_faery_t64(
                buf8, stride, lengths, n, out, self.x_limit, self.y_limit, self.counters
            )
        else:
            m, d = 0, 0
            while True:
                m, d = _decode_aerflow(
                    buf8,
                    buf16,
                    buf32,
                    buf64,
                    stride,
                    lengths,
                    d,
                    n,
                    out,
                    m,
                    self.x_limit,
                    self.y_limit,
                    self.state,
                    self.counters,
                    self.streams,
                    self.windows,
                )
                if d >= n:
                    break
                self._grow_streams()
        return out[:m]

    def _grow_streams(self) -> None:
        rows = len(self.streams)
        self.streams = np.concatenate((self.streams, np.zeros((rows, _N_STREAM_COLUMNS), np.int64)))
        self.windows = np.concatenate((self.windows, np.zeros((rows, _WINDOW_WORDS), np.uint64)))


def pack_datagrams(
    datagrams: list[bytes], stride: int | None = None
) -> tuple[npt.NDArray[np.uint8], int, npt.NDArray[np.int64]]:
    """Lay ``datagrams`` out in slots as a receiver does: (buffer, stride, lengths)."""
    longest = max((len(d) for d in datagrams), default=0)
    stride = max(8, _round8(longest if stride is None else stride))
    buffer = np.zeros(max(1, len(datagrams)) * stride, np.uint8)
    lengths = np.zeros(len(datagrams), np.int64)
    for i, datagram in enumerate(datagrams):
        buffer[i * stride : i * stride + len(datagram)] = np.frombuffer(datagram, np.uint8)
        lengths[i] = len(datagram)
    return buffer, stride, lengths


def decode_datagrams(
    datagrams: list[bytes],
    wire: str | WireFormat = "aerflow",
    *,
    width: int | None = None,
    height: int | None = None,
    arrivals: list[int] | None = None,
    decoder: DatagramDecoder | None = None,
) -> npt.NDArray[Any]:
    """Events of ``datagrams`` (bytes each), in order: for tests and tools.

    Pass a ``decoder`` to keep its state across calls and read its counters afterwards.
    """
    if decoder is None:
        decoder = DatagramDecoder(wire, width=width, height=height)
    buffer, stride, lengths = pack_datagrams(datagrams)
    times = None if arrivals is None else np.asarray(arrivals, np.int64)
    events = decoder.decode(buffer, stride, lengths, len(datagrams), times)
    result: npt.NDArray[Any] = events.copy()
    return result
