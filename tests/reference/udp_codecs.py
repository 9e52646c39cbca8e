"""Slow, plain-Python encoders and decoders of the UDP wire formats, written from the format
descriptions (``docs/formats/udp.md`` and the aerflow.net.wire docstrings), not from the
kernels.

Events are lists of ``(t, x, y, on)`` tuples. Decoders return ``(events, counters)`` where
counters is a dict with ``malformed``, ``out_of_range``, ``untimed`` and, for ``aerflow``,
per-stream sequence accounting.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

Event = tuple[int, int, int, bool]

MAX_SPAN_AERFLOW = (1 << 31) - 1
RECORD_BYTES = {"spif": 4, "spif-t": 8, "faery-t64": 13, "faery-t32": 8, "aerflow": 8}
HEADER_BYTES = {"aerflow": 32}
WINDOW = 1024


# -- encoding ---------------------------------------------------------------------------------


def split(events: list[Event], per_datagram: int, max_span: int | None) -> list[list[Event]]:
    """Greedy datagram filling: up to ``per_datagram`` events whose times span at most
    ``max_span`` µs (max - min)."""
    groups: list[list[Event]] = []
    current: list[Event] = []
    lo = hi = 0
    for event in events:
        t = event[0]
        if current:
            new_lo, new_hi = min(lo, t), max(hi, t)
            fits = len(current) < per_datagram and (max_span is None or new_hi - new_lo <= max_span)
            if fits:
                current.append(event)
                lo, hi = new_lo, new_hi
                continue
            groups.append(current)
        current = [event]
        lo = hi = t
    if current:
        groups.append(current)
    return groups


def spif_word(x: int, y: int, on: bool, timestamped: bool) -> int:
    assert 0 <= x < 1 << 15
    assert 0 <= y < 1 << 15
    return (0 if timestamped else 1 << 31) | x << 16 | (1 << 15 if on else 0) | y


def encode_record(wire: str, event: Event, time_base: int = 0) -> bytes:
    t, x, y, on = event
    if wire == "spif":
        return struct.pack("<I", spif_word(x, y, on, False))
    if wire == "spif-t":
        return struct.pack("<II", spif_word(x, y, on, True), t % (1 << 32))
    if wire == "faery-t64":
        return struct.pack("<QHHB", t, x, y, 1 if on else 0)
    if wire == "faery-t32":
        assert y < 1 << 15
        return struct.pack("<IHH", t % (1 << 32), x, y << 1 | (1 if on else 0))
    if wire == "aerflow":
        delta = t - time_base
        assert 0 <= delta < 1 << 31
        return struct.pack("<IHH", delta | (1 << 31 if on else 0), x, y)
    raise ValueError(wire)


def aerflow_header(
    stream_id: int,
    sequence: int,
    time_base: int,
    width: int,
    height: int,
    count: int,
    flags: int = 0,
) -> bytes:
    return (
        b"AERF"
        + bytes([1, flags])
        + struct.pack("<H", 32)
        + struct.pack("<I", stream_id)
        + struct.pack("<I", sequence % (1 << 32))
        + struct.pack("<Q", time_base)
        + struct.pack("<HHHH", width, height, count, 8)
    )


def encode(
    wire: str,
    events: list[Event],
    datagram_bytes: int,
    *,
    stream_id: int = 0,
    sequence: int = 0,
    width: int = 0,
    height: int = 0,
    max_span: int | None = None,
) -> list[bytes]:
    header = HEADER_BYTES.get(wire, 0)
    per = (datagram_bytes - header) // RECORD_BYTES[wire]
    if wire == "aerflow" and max_span is None:
        max_span = MAX_SPAN_AERFLOW
    datagrams = []
    for i, group in enumerate(split(events, per, max_span)):
        if wire == "aerflow":
            base = min(e[0] for e in group)
            head = aerflow_header(stream_id, sequence + i, base, width, height, len(group))
            datagrams.append(head + b"".join(encode_record(wire, e, base) for e in group))
        else:
            datagrams.append(b"".join(encode_record(wire, e) for e in group))
    return datagrams


# -- decoding ---------------------------------------------------------------------------------


class Unwrapper:
    """64-bit times from 32-bit ones: a drop of more than 2^31 is a wrap (+2^32 from then
    on); a value more than 2^31 above the last one, after a wrap, is a late pre-wrap one."""

    def __init__(self) -> None:
        self.last = -1
        self.offset = 0

    def __call__(self, t32: int) -> int:
        t = self.offset + t32
        if t + (1 << 31) < self.last:
            self.offset += 1 << 32
            t += 1 << 32
        elif t > self.last + (1 << 31) and self.offset >= 1 << 32:
            return t - (1 << 32)
        self.last = t
        return t


@dataclass
class Counters:
    malformed: int = 0
    out_of_range: int = 0
    untimed: int = 0


def _keep(
    out: list[Event], counters: Counters, event: Event, width: int | None, height: int | None
) -> None:
    _, x, y, _ = event
    if (width is not None and x >= width) or (height is not None and y >= height):
        counters.out_of_range += 1
    else:
        out.append(event)


def decode_spif(
    datagrams: list[bytes],
    arrivals: list[int] | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> tuple[list[Event], Counters]:
    """Word by word: bit 31 set → arrival time; clear → the next word is the time (a
    missing last timestamp → arrival time, counted as untimed). Includes the receiver's
    repair of aestream's doubled last datagram."""
    unwrap = Unwrapper()
    counters = Counters()
    out: list[Event] = []
    width = min(width, 1 << 15) if width is not None else 1 << 15
    height = min(height, 1 << 15) if height is not None else 1 << 15
    previous: list[int] | None = None
    for d, datagram in enumerate(datagrams):
        arrival = 0 if arrivals is None else arrivals[d]
        if len(datagram) % 4:
            counters.malformed += 1
        words = list(struct.unpack(f"<{len(datagram) // 4}I", datagram[: len(datagram) // 4 * 4]))
        timed = len(words) >= 2 and not words[0] >> 31
        if timed and previous is not None and len(words) % 4 == 0 and len(words) // 2 < 64:
            half = len(words) // 2
            if words[half : min(len(words), 64)] == previous[half : min(len(words), 64)]:
                words = words[:half]
                counters.malformed += 1
        previous = words[:] if timed and len(words) == 64 else None
        j = 0
        while j < len(words):
            word = words[j]
            x, y, on = word >> 16 & 0x7FFF, word & 0x7FFF, bool(word >> 15 & 1)
            if word >> 31:
                t = arrival
                j += 1
            elif j + 1 < len(words):
                t = unwrap(words[j + 1])
                j += 2
            else:
                t = arrival
                counters.untimed += 1
                j += 1
            _keep(out, counters, (t, x, y, on), width, height)
    return out, counters


def decode_faery_t64(
    datagrams: list[bytes], *, width: int | None = None, height: int | None = None
) -> tuple[list[Event], Counters]:
    counters = Counters()
    out: list[Event] = []
    for datagram in datagrams:
        if len(datagram) % 13:
            counters.malformed += 1
        for k in range(len(datagram) // 13):
            t, x, y, on = struct.unpack_from("<QHHB", datagram, 13 * k)
            _keep(out, counters, (t, x, y, on != 0), width, height)
    return out, counters


def decode_faery_t32(
    datagrams: list[bytes], *, width: int | None = None, height: int | None = None
) -> tuple[list[Event], Counters]:
    unwrap = Unwrapper()
    counters = Counters()
    out: list[Event] = []
    height = min(height, 1 << 15) if height is not None else 1 << 15
    for datagram in datagrams:
        if len(datagram) % 8:
            counters.malformed += 1
        for k in range(len(datagram) // 8):
            t32, x, packed = struct.unpack_from("<IHH", datagram, 8 * k)
            _keep(out, counters, (unwrap(t32), x, packed >> 1, bool(packed & 1)), width, height)
    return out, counters


@dataclass
class Stream:
    """Sequence accounting of one aerflow stream: every sequence number ever accepted, the
    highest and lowest (64-bit extended)."""

    stream_id: int
    highest: int = -1
    lowest: int = 0
    seen: set[int] = field(default_factory=set)
    duplicated: int = 0
    reordered: int = 0
    datagrams: int = 0
    events: int = 0
    ended: int = 0  # 0 open, 1 ended, 2 aborted
    unique: int = 0

    def accept(self, sequence: int) -> bool:
        """True for a datagram to deliver, False for a duplicate."""
        delta = (sequence - self.highest) % (1 << 32)
        if delta >= 1 << 31:
            delta -= 1 << 32
        ext = self.highest + delta
        if delta > 0:
            self.highest = ext
        elif self.highest - ext < WINDOW:
            if ext in self.seen:
                self.duplicated += 1
                return False
            self.reordered += 1
        else:
            self.reordered += 1  # too old to tell: taken as late
        self.lowest = min(self.lowest, ext)
        self.seen.add(ext)
        return True

    @property
    def lost(self) -> int:
        """Sequence numbers between the lowest and highest never accepted (a datagram too
        old to tell from a duplicate counts as accepted)."""
        return max(0, self.highest - self.lowest + 1 - self.unique)


def decode_aerflow(
    datagrams: list[bytes], *, width: int | None = None, height: int | None = None
) -> tuple[list[Event], Counters, dict[int, Stream], tuple[int, int] | None]:
    """(events, counters, streams by id, first announced sensor size)."""
    counters = Counters()
    out: list[Event] = []
    streams: dict[int, Stream] = {}
    size: tuple[int, int] | None = None
    for datagram in datagrams:
        if len(datagram) < 32:
            counters.malformed += 1
            continue
        magic = datagram[:4]
        version, flags, header_bytes, stream_id, sequence, base = struct.unpack_from(
            "<BBHIIQ", datagram, 4
        )
        w, h, count, record = struct.unpack_from("<HHHH", datagram, 24)
        if (
            magic != b"AERF"
            or version != 1
            or header_bytes != 32
            or record != 8
            or len(datagram) != 32 + 8 * count
        ):
            counters.malformed += 1
            continue
        stream = streams.get(stream_id)
        if stream is None:
            stream = streams[stream_id] = Stream(stream_id, highest=sequence - 1, lowest=sequence)
        elif stream.ended and flags & 1:
            continue  # a repeated end of stream
        stream.datagrams += 1
        before = stream.highest
        if not stream.accept(sequence):
            continue
        stream.unique += 1
        if flags & 1:
            stream.ended = 2 if flags & 2 else 1
        elif stream.highest > before:
            stream.ended = 0
        if size is None and w and h:
            size = (w, h)
        xl = min(width if width is not None else 1 << 16, w or 1 << 16)
        yl = min(height if height is not None else 1 << 16, h or 1 << 16)
        for k in range(count):
            word, x, y = struct.unpack_from("<IHH", datagram, 32 + 8 * k)
            event = (base + (word & 0x7FFFFFFF), x, y, bool(word >> 31))
            before_count = len(out)
            _keep(out, counters, event, xl, yl)
            stream.events += len(out) - before_count
    return out, counters, streams, size


def decode(
    wire: str,
    datagrams: list[bytes],
    *,
    arrivals: list[int] | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[list[Event], Counters]:
    if wire in ("spif", "spif-t"):
        return decode_spif(datagrams, arrivals, width=width, height=height)
    if wire == "faery-t64":
        return decode_faery_t64(datagrams, width=width, height=height)
    if wire == "faery-t32":
        return decode_faery_t32(datagrams, width=width, height=height)
    if wire == "aerflow":
        events, counters, _, _ = decode_aerflow(datagrams, width=width, height=height)
        return events, counters
    raise ValueError(wire)
