"""The ``aerflow`` wire format: aerflow's own datagrams, with a stream id, sequence numbers,
the sensor size and an end of stream.


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

import numpy as np

from ..._jit import njit
from .common import C_EVENTS, C_MALFORMED, C_OUT_OF_RANGE, S_HEIGHT, S_STREAMS, S_WIDTH, _group

__all__ = [
    "AERFLOW_HEADER_BYTES",
    "AERFLOW_MAGIC",
    "AERFLOW_RECORD_BYTES",
    "AERFLOW_VERSION",
    "FLAG_ABORTED",
    "FLAG_END_OF_STREAM",
    "MAX_SPAN",
    "N_STREAM_COLUMNS",
    "WINDOW",
    "WINDOW_WORDS",
    "AerflowHeader",
    "StreamStats",
    "aerflow_header",
    "parse_aerflow_header",
]

AERFLOW_MAGIC = b"AERF"
AERFLOW_VERSION = 1
AERFLOW_HEADER_BYTES = 32
AERFLOW_RECORD_BYTES = 8
FLAG_END_OF_STREAM = 0x01
FLAG_ABORTED = 0x02
MAX_SPAN = (1 << 31) - 1
"""µs between the first and last event of an aerflow datagram, at most."""

_MAGIC_U32 = int.from_bytes(AERFLOW_MAGIC, "little")
_RECORD = AERFLOW_RECORD_BYTES
_HALF = np.int64(1) << 31
_WRAP = np.int64(1) << 32
_SAFE_TIME_BASE = np.uint64((1 << 64) - (1 << 31))  # plus any 31-bit delta: at most 2**64 - 1

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
N_STREAM_COLUMNS = 9
WINDOW = 1024
"""Sequence numbers remembered per stream to tell duplicates from late datagrams."""
WINDOW_WORDS = WINDOW // 64


# -- encoding ---------------------------------------------------------------------------------


@njit(nogil=True, cache=True)
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


# -- decoding ---------------------------------------------------------------------------------


@njit(nogil=True, cache=True)
def _sequence(streams: Any, windows: Any, row: int, sequence: int) -> int:
    """Account for datagram ``sequence`` of stream ``row``: 1 new, 0 duplicate."""
    highest = streams[row, ST_HIGHEST]
    delta = (sequence - (highest & 0xFFFFFFFF)) & 0xFFFFFFFF
    if delta >= _HALF:
        delta -= _WRAP
    ext = highest + delta
    if delta > 0:
        if delta >= WINDOW:
            for word in range(WINDOW_WORDS):
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


@njit(nogil=True, cache=True)
def _passes_top(time_base: Any, words: Any, count: int) -> bool:
    """Whether a record's time, ``time_base`` plus its delta, passes 2**64 - 1 µs."""
    room = ~time_base  # 2**64 - 1 - time_base
    j = 0
    while j < count and np.uint64(words[2 * j] & np.uint32(0x7FFFFFFF)) <= room:
        j += 1
    return j < count


@njit(nogil=True, cache=True)
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
            for word in range(WINDOW_WORDS):
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
