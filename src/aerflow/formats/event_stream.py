"""Event Stream (.es) 2.x: delta-timed byte streams of generic, DVS, ATIS or color events.

The header is ``Event Stream``, a version (major 2), a stream type byte and, except for
generic streams, the sensor's width and height (little-endian uint16). Every event stores the
microseconds elapsed since the previous one; between events, *overflow* bytes add time and
*reset* bytes do nothing (they let a reader that lost track find the idle state again).

=========  =====================================  ===================  =====================
type       event bytes                            overflow             reset
=========  =====================================  ===================  =====================
generic    t, size bytes (varint), data bytes     0xFF: +254 µs        0xFE
DVS        t[6..0] on, x (u16), y (u16)           0xFF: +127 µs        0xFE
ATIS       t[5..0] polarity is_tc, x, y           0b111111xx: +63·xx   0xFC
color      t, x (u16), y (u16), r, g, b           0xFF: +254 µs        0xFE
=========  =====================================  ===================  =====================

Generic size bytes hold 7 bits each, least significant group first, with a flag in bit 0
that is 0 on the last size byte. Inside an event every byte is data, whatever its value.

Reading maps DVS events to events as they are; ATIS change detections to events with
``on = polarity`` (by default; ``atis_events`` selects exposure measurements, ``on = is second
threshold crossing``, or both); color events to events with ``on`` = the colour is not black
(:meth:`EventStreamReader.read_color` gives r, g, b); generic events to no events at all
(:meth:`EventStreamReader.read_generic` gives their times and payloads). Coordinates are
returned as stored (the reference C++ library documents y as increasing from bottom to top;
faery flips rows when it reads .es files, event_stream and loris do not).

The decoders are byte state machines whose whole state (time, bytes of the unfinished
event, its fields) lives in the state array, so an event, a varint or a payload may straddle
any window edge; complete events take a fast path. A file that ends inside an event gives
every event before it and a TruncatedDataWarning naming the byte where the torn event
starts. ``read()`` of a large DVS or ATIS file runs on two threads: a helper maps the output
and decodes the first half while this thread surveys that half (to learn where, and at what
time, the second half starts) and then decodes the second half.

Writing produces DVS (default) or ATIS (change detections) streams with the fewest overflow
bytes: a DVS gap of g µs is ``g // 127`` bytes 0xFF then ``g % 127`` in the event; an ATIS gap
is ``g // 189`` bytes 0xFF (3 x 63 µs), one byte ``0xFC | k`` for the ``k`` = 1 or 2 x 63 µs
left, then ``g % 63`` in the event. No reset bytes are written. Timestamps must not decrease.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, overload

import numba as nb
import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ..errors import (
    FormatError,
    NonMonotonicTimeError,
    NotThisFormatError,
    TruncatedDataWarning,
)
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    FileWriter,
    Properties,
    _allocate_events,
    _Window,
    check_sensor_size,
)

__all__ = [
    "ATIS_EVENTS",
    "COLOR_DTYPE",
    "MAGIC",
    "STREAM_TYPES",
    "EventStreamReader",
    "EventStreamWriter",
    "GenericEvents",
    "NonMonotonicTimeError",
    "sniff",
]

log = logging.getLogger(__name__)

MAGIC = b"Event Stream"
GENERIC, DVS, ATIS, AMD, COLOR = 0, 1, 2, 3, 4
STREAM_TYPES = {GENERIC: "generic", DVS: "dvs", ATIS: "atis", COLOR: "color"}
"""Stream type byte -> name, for the types aerflow reads."""
_TYPE_CODES = {name: code for code, name in STREAM_TYPES.items()}

ATIS_EVENTS = ("change", "exposure", "all")
"""What an ATIS stream's events are: change detections, exposure measurements, or both."""
_CHANGE, _EXPOSURE, _ALL = range(3)

COLOR_DTYPE = np.dtype(
    [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
)
"""Color events: time in µs, column, row and the colour's red, green and blue components."""

_VERSION = (2, 0, 0)
_HEADER_SIZE = 20  # 16 for generic streams
_EVENT_BYTES = {DVS: 5, ATIS: 5, COLOR: 8}
_MAX_GAP_US = 1 << 32
"""The writer refuses a gap longer than this (~72 min) between consecutive events: it would
take tens of MB of overflow bytes (a sign of absolute timestamps, to shift first)."""
_ENCODE_BUDGET = 1 << 24
"""Bytes the writer encodes at a time when gaps make a write's output larger (one gap of
``_MAX_GAP_US`` alone takes up to 34 MB)."""

# Decoder state slots. _PHASE counts the bytes read of an unfinished event (0: idle) or, in
# generic streams, is the part being read (idle, size bytes, data bytes); _PENDING counts the
# bytes read of an unfinished event, for locating a torn tail.
_T, _PHASE, _PENDING, _X, _Y, _FIRST, _SIZE, _SHIFT, _FILLED, _DROPPED = range(10)
_STATE_SIZE = 10
_G_IDLE, _G_SIZE, _G_DATA = 0, 1, 2
_HUGE = np.int64(1) << 62  # a payload size no file holds (a corrupt varint)
_U1, _U2, _U3, _U4, _U5 = (np.uint64(k) for k in range(1, 6))
_NO_TRIGGERS = np.empty(0, TRIGGERS_DTYPE)


# --------------------------------------------------------------------------- #
# Decoding kernels                                                            #
# --------------------------------------------------------------------------- #


@nb.njit(nogil=True, cache=True)
def _decode_polarity(
    data: Any,
    state: Any,
    kind: int,
    mode: int,
    width: int,
    height: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    """DVS (``kind`` 1) or ATIS (``kind`` 2) bytes into events; stops when ``events`` is full.

    ATIS ``mode``: 0 change detections (on = polarity), 1 exposure measurements (on = is
    second), 2 both.
    """
    size = data.size
    capacity = events.size
    t = state[_T]
    phase = state[_PHASE]
    dropped = state[_DROPPED]
    i = 0
    if phase != 0:
        # Finish an event that began in an earlier window, byte by byte.
        x = state[_X]
        y = state[_Y]
        first = state[_FIRST]
        while phase < 5 and i < size:
            byte = np.int64(data[i])
            if phase == 1:
                x = byte
            elif phase == 2:
                x |= byte << 8
            elif phase == 3:
                y = byte
            else:
                y |= byte << 8
                if kind == DVS:
                    wanted = True
                    on = first & 1 == 1
                else:
                    exposure = first & 1 == 1
                    wanted = mode == _ALL or (mode == _EXPOSURE) == exposure
                    on = first & 2 == 2
                if wanted:
                    if x < width and y < height:
                        if n >= capacity:
                            break  # no room: the last byte is read again next time
                        event = events[n]
                        event.t = np.uint64(t)
                        event.x = np.uint16(x)
                        event.y = np.uint16(y)
                        event.on = on
                        n += 1
                    else:
                        dropped += 1
            phase += 1
            i += 1
        if phase < 5:
            state[_PHASE] = phase
            state[_PENDING] = phase
            state[_X] = x
            state[_Y] = y
            state[_DROPPED] = dropped
            return i, n, m
        phase = 0
    # Whole events. Unsigned positions and output indices spare every access a negative-index
    # check (a third of the time).
    j = np.uint64(i)
    end = np.uint64(size)
    k = np.uint64(n)
    room = np.uint64(capacity)
    if kind == DVS:
        while j < end:
            byte = np.int64(data[j])
            if byte >= 0xFE:
                if byte == 0xFF:
                    t += 127
                j += _U1
                continue
            if j + _U5 > end:
                break
            x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
            y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
            if x < width and y < height:
                if k >= room:
                    break
                event = events[k]
                event.t = np.uint64(t + (byte >> 1))
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = byte & 1 == 1
                k += _U1
            else:
                dropped += 1
            t += byte >> 1
            j += _U5
    else:
        while j < end:
            byte = np.int64(data[j])
            if byte >= 0xFC:
                t += 63 * (byte & 3)
                j += _U1
                continue
            if j + _U5 > end:
                break
            exposure = byte & 1 == 1
            if mode == _ALL or (mode == _EXPOSURE) == exposure:
                x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
                y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
                if x < width and y < height:
                    if k >= room:
                        break
                    event = events[k]
                    event.t = np.uint64(t + (byte >> 2))
                    event.x = np.uint16(x)
                    event.y = np.uint16(y)
                    event.on = byte & 2 == 2
                    k += _U1
                else:
                    dropped += 1
            t += byte >> 2
            j += _U5
    n = np.int64(k)
    i = np.int64(j)
    if i < size and i + 5 > size:
        # An event starts here and ends in the next window: keep its first bytes in the state.
        byte = np.int64(data[i])
        special = byte >= 0xFE if kind == DVS else byte >= 0xFC
        if not special:
            t += byte >> 1 if kind == DVS else byte >> 2
            state[_FIRST] = byte
            x = 0
            y = 0
            phase = 1
            i += 1
            while i < size:
                value = np.int64(data[i])
                if phase == 1:
                    x = value
                elif phase == 2:
                    x |= value << 8
                else:
                    y = value
                phase += 1
                i += 1
            state[_X] = x
            state[_Y] = y
    state[_T] = t
    state[_PHASE] = phase
    state[_PENDING] = phase
    state[_DROPPED] = dropped
    return i, n, m


@nb.njit(nogil=True, cache=True)
def _decode_color(
    data: Any, state: Any, width: int, height: int, colors: Any, n: int
) -> tuple[int, int]:
    """Color stream bytes into ``colors`` (COLOR_DTYPE); stops when ``colors`` is full."""
    size = data.size
    capacity = colors.size
    t = state[_T]
    phase = state[_PHASE]
    dropped = state[_DROPPED]
    x = state[_X]
    y = state[_Y]
    rgb = state[_FIRST]  # r | g << 8 once read
    i = 0
    while i < size:
        byte = np.int64(data[i])
        if phase == 0:
            if byte >= 0xFE:
                if byte == 0xFF:
                    t += 254
                i += 1
                continue
            if i + 8 <= size:
                x = np.int64(data[i + 1]) | (np.int64(data[i + 2]) << 8)
                y = np.int64(data[i + 3]) | (np.int64(data[i + 4]) << 8)
                if x < width and y < height:
                    if n >= capacity:
                        break
                    color = colors[n]
                    color.t = np.uint64(t + byte)
                    color.x = np.uint16(x)
                    color.y = np.uint16(y)
                    color.r = np.uint8(data[i + 5])
                    color.g = np.uint8(data[i + 6])
                    color.b = np.uint8(data[i + 7])
                    n += 1
                else:
                    dropped += 1
                t += byte
                i += 8
                continue
            t += byte
            x = 0
            y = 0
            rgb = 0
        elif phase == 1:
            x = byte
        elif phase == 2:
            x |= byte << 8
        elif phase == 3:
            y = byte
        elif phase == 4:
            y |= byte << 8
        elif phase == 5:
            rgb = byte
        elif phase == 6:
            rgb |= byte << 8
        else:
            if x < width and y < height:
                if n >= capacity:
                    break
                color = colors[n]
                color.t = np.uint64(t)
                color.x = np.uint16(x)
                color.y = np.uint16(y)
                color.r = np.uint8(rgb & 0xFF)
                color.g = np.uint8(rgb >> 8)
                color.b = np.uint8(byte)
                n += 1
            else:
                dropped += 1
            phase = 0
            i += 1
            continue
        phase += 1
        i += 1
    state[_T] = t
    state[_PHASE] = phase
    state[_PENDING] = phase
    state[_X] = x
    state[_Y] = y
    state[_FIRST] = rgb
    state[_DROPPED] = dropped
    return i, n


@nb.njit(nogil=True, cache=True)
def _decode_generic(
    data: Any, state: Any, keep: bool, times: Any, offsets: Any, n: int, payload: Any, m: int
) -> tuple[int, int, int]:
    """Generic stream bytes into event times and payloads.

    With ``keep``, event k's time goes to ``times[n]`` and its payload to ``payload``, ending
    at ``offsets[n + 1]`` (``offsets[n]`` is where the next payload starts); decoding stops
    when either output is full. Without, events are only counted.
    """
    size = data.size
    t = state[_T]
    part = state[_PHASE]
    pending = state[_PENDING]
    length = state[_SIZE]
    shift = state[_SHIFT]
    filled = state[_FILLED]
    capacity = times.size
    room = payload.size
    i = 0
    while i < size:
        if part == _G_IDLE:
            byte = np.int64(data[i])
            i += 1
            if byte == 0xFF:
                t += 254
            elif byte != 0xFE:
                if keep and n >= capacity:
                    i -= 1
                    break
                t += byte
                part = _G_SIZE
                pending = 1
                length = 0
                shift = 0
                filled = 0
        elif part == _G_SIZE:
            byte = np.int64(data[i])
            if shift <= 49:
                length += (byte >> 1) << shift
            elif byte >> 1 != 0:
                length = _HUGE  # more data bytes than any file holds
            if byte & 1 == 0:
                if length == 0:
                    if keep:
                        if n >= capacity:
                            break
                        times[n] = t
                        offsets[n + 1] = m
                    n += 1
                    part = _G_IDLE
                    pending = 0
                else:
                    part = _G_DATA
                    pending += 1
            else:
                shift += 7
                pending += 1
            i += 1
        else:
            take = min(length - filled, size - i)
            if keep:
                if length - filled == take and n >= capacity:
                    take -= 1  # the last byte waits for room for the event
                take = min(take, room - m)
                if take <= 0:
                    break
                payload[m : m + take] = data[i : i + take]
                m += take
            i += take
            filled += take
            pending += take
            if filled == length:
                if keep:
                    times[n] = t
                    offsets[n + 1] = m
                n += 1
                part = _G_IDLE
                pending = 0
    state[_T] = t
    state[_PHASE] = part
    state[_PENDING] = pending
    state[_SIZE] = length
    state[_SHIFT] = shift
    state[_FILLED] = filled
    return i, n, m


@nb.njit(nogil=True, cache=True)
def _survey(
    data: Any, t: int, kind: int, mode: int, width: int, height: int, target: int
) -> tuple[int, int, int]:
    """From an idle state at time ``t``: the first idle position at or after ``target``, the
    time there and the events the decoder returns before it; (-1, ...) when the data end
    inside an event first."""
    end = np.uint64(data.size)
    stop = np.uint64(target)
    j = np.uint64(0)
    count = 0
    if kind == DVS:
        while j < stop:
            byte = np.int64(data[j])
            if byte >= 0xFE:
                if byte == 0xFF:
                    t += 127
                j += _U1
                continue
            if j + _U5 > end:
                return -1, t, count
            x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
            y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
            if x < width and y < height:
                count += 1
            t += byte >> 1
            j += _U5
    else:
        while j < stop:
            byte = np.int64(data[j])
            if byte >= 0xFC:
                t += 63 * (byte & 3)
                j += _U1
                continue
            if j + _U5 > end:
                return -1, t, count
            exposure = byte & 1 == 1
            if mode == _ALL or (mode == _EXPOSURE) == exposure:
                x = np.int64(data[j + _U1]) | (np.int64(data[j + _U2]) << 8)
                y = np.int64(data[j + _U3]) | (np.int64(data[j + _U4]) << 8)
                if x < width and y < height:
                    count += 1
            t += byte >> 2
            j += _U5
    i = np.int64(j)
    return i, t, count


# --------------------------------------------------------------------------- #
# Encoding kernels                                                            #
# --------------------------------------------------------------------------- #


@nb.njit(nogil=True, cache=True, inline="always")
def _event_bytes(gap: int, kind: int) -> int:
    """Bytes of an event ``gap`` µs after the previous one, overflow bytes included."""
    if kind == DVS:
        return gap // 127 + 5
    overflows = gap // 63
    return overflows // 3 + (1 if overflows % 3 else 0) + 5


@nb.njit(nogil=True, cache=True)
def _piece_end(
    events: Any, start: int, origin: int, previous: int, kind: int, budget: int
) -> tuple[int, int]:
    """(end, bytes): events ``start..end-1``, checked already, take ``bytes`` and at most
    ``budget`` of them (or one event, whatever its gap)."""
    total = 0
    i = start
    while i < events.size:
        t = np.int64(events[i].t) - origin
        size = _event_bytes(t - previous, kind)
        if i > start and total + size > budget:
            break
        total += size
        previous = t
        i += 1
    return i, total


@nb.njit(nogil=True, cache=True)
def _measure(events: Any, origin: int, previous: int, kind: int) -> tuple[int, int, int]:
    """(bytes needed, index of the first bad event or -1, why: 0 before the previous event,
    1 before the origin, 2 too long a gap) to write DVS (``kind`` 1) or ATIS (2) events."""
    total = 0
    for i in range(events.size):
        t = np.int64(events[i].t) - origin
        if t < 0:
            return 0, i, 1
        if t < previous:
            return 0, i, 0
        gap = t - previous
        if gap > _MAX_GAP_US:
            return 0, i, 2
        total += _event_bytes(gap, kind)
        previous = t
    return total, -1, 0


@nb.njit(nogil=True, cache=True)
def _encode(events: Any, origin: int, previous: int, kind: int, out: Any) -> int:
    """Write DVS (``kind`` 1) or ATIS change-detection (2) events into ``out``; returns the
    time of the last one. ``out`` has the size :func:`_measure` gave."""
    k = 0
    for i in range(events.size):
        event = events[i]
        t = np.int64(event.t) - origin
        gap = t - previous
        previous = t
        on = 1 if event.on else 0
        if kind == DVS:
            for _ in range(gap // 127):
                out[k] = 0xFF
                k += 1
            out[k] = ((gap % 127) << 1) | on
        else:
            overflows = gap // 63
            for _ in range(overflows // 3):
                out[k] = 0xFF
                k += 1
            if overflows % 3:
                out[k] = 0xFC | (overflows % 3)
                k += 1
            out[k] = ((gap % 63) << 2) | (on << 1)
        x = np.int64(event.x)
        y = np.int64(event.y)
        out[k + 1] = x & 0xFF
        out[k + 2] = x >> 8
        out[k + 3] = y & 0xFF
        out[k + 4] = y >> 8
        k += 5
    return previous


# --------------------------------------------------------------------------- #
# Header                                                                      #
# --------------------------------------------------------------------------- #


def sniff(head: bytes) -> bool:
    """True when ``head`` starts with the Event Stream signature."""
    return head.startswith(MAGIC)


@dataclass(frozen=True)
class _Header:
    version: tuple[int, int, int]
    stream_type: int
    width: int | None
    height: int | None
    data_offset: int


def _read_header(file: Any, path: str) -> _Header:
    file.seek(0)
    head = file.read(_HEADER_SIZE)
    if not head.startswith(MAGIC):
        raise NotThisFormatError(
            "not an Event Stream file (it does not start with 'Event Stream')",
            path=path,
            offset=0,
        )
    if len(head) < 16:
        raise FormatError(
            "the file ends inside the Event Stream header (version and type bytes)",
            path=path,
            offset=len(head),
        )
    version = (head[12], head[13], head[14])
    if version[0] != 2:
        raise FormatError(
            f"Event Stream version {'.'.join(map(str, version))} is not supported (2.x is)",
            path=path,
            offset=12,
        )
    stream_type = head[15]
    if stream_type not in STREAM_TYPES:
        what = (
            "Asynchronous & Modular Display streams (type 3) are not supported"
            if stream_type == AMD
            else f"unknown Event Stream type {stream_type} (expected 0 generic, 1 DVS, 2 ATIS "
            "or 4 color)"
        )
        raise FormatError(what, path=path, offset=15)
    if stream_type == GENERIC:
        return _Header(version, stream_type, None, None, 16)
    if len(head) < _HEADER_SIZE:
        raise FormatError(
            "the file ends inside the Event Stream header (width and height)",
            path=path,
            offset=len(head),
        )
    width = head[16] | head[17] << 8
    height = head[18] | head[19] << 8
    return _Header(version, stream_type, width, height, _HEADER_SIZE)


# --------------------------------------------------------------------------- #
# Reader                                                                      #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class GenericEvents:
    """Generic events: times and byte payloads, stored compactly.

    Event ``i`` happened at ``t[i]`` µs and carries ``data[offsets[i]:offsets[i + 1]]``.
    Indexing and iteration give ``(t, payload bytes)`` pairs; :attr:`events` gives the times
    as :data:`~aerflow.EVENTS_DTYPE` events with x = y = 0 and on False.
    """

    t: npt.NDArray[np.uint64]
    offsets: npt.NDArray[np.int64]
    data: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.t)

    def payload(self, index: int) -> bytes:
        return self.data[self.offsets[index] : self.offsets[index + 1]].tobytes()

    @overload
    def __getitem__(self, index: int) -> tuple[int, bytes]: ...
    @overload
    def __getitem__(self, index: slice) -> GenericEvents: ...

    def __getitem__(self, index: int | slice) -> tuple[int, bytes] | GenericEvents:
        """One ``(t, payload)`` pair, or for a slice the events it selects (a copy)."""
        if isinstance(index, slice):
            chosen = range(len(self))[index]
            payloads = [self.payload(i) for i in chosen]
            offsets = np.zeros(len(payloads) + 1, np.int64)
            offsets[1:] = np.cumsum([len(p) for p in payloads])
            data = np.frombuffer(b"".join(payloads), np.uint8).copy()
            return GenericEvents(self.t[list(chosen)].copy(), offsets, data)
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"generic event {index} out of range ({len(self)} events)")
        index %= len(self)
        return int(self.t[index]), self.payload(index)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for index in range(len(self)):
            yield int(self.t[index]), self.payload(index)

    def payloads(self) -> list[bytes]:
        return [self.payload(index) for index in range(len(self))]

    @property
    def events(self) -> npt.NDArray[Any]:
        """The times as events (x = y = 0, on False), e.g. to place payloads on a timeline."""
        events = np.zeros(len(self), EVENTS_DTYPE)
        events["t"] = self.t
        return events


class EventStreamReader(ChunkedReader):
    """Reads Event Stream 2.x files: DVS, ATIS and color streams as events, generic streams
    through :meth:`read_generic`.

    ``atis_events`` chooses what an ATIS stream's events are: ``"change"`` (change
    detections, on = polarity; the default), ``"exposure"`` (exposure measurements: threshold
    crossings with on = True for the second of a pair) or ``"all"`` (both, in file order).
    ``width``/``height`` override the header's sensor size.
    """

    format_name = "es"
    word = np.dtype("u1")
    events_per_byte = 1 / 5
    max_group_events = 1
    state_size = _STATE_SIZE
    decoder = staticmethod(_decode_polarity)

    survey_share: ClassVar[float] = 0.5
    """Part of a large file that a helper thread decodes while this one surveys it (to learn
    where the rest starts, see :meth:`read`) and then decodes the rest."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        width: int | None = None,
        height: int | None = None,
        atis_events: str = "change",
    ) -> None:
        super().__init__(path, chunk_size=chunk_size)
        try:
            self._open_header(width, height, atis_events)
        except BaseException:
            self.close()
            raise

    def _open_header(self, width: int | None, height: int | None, atis_events: str) -> None:
        if atis_events not in ATIS_EVENTS:
            raise ValueError(f"atis_events must be one of {ATIS_EVENTS}, got {atis_events!r}")
        override = check_sensor_size(width, height)
        header = _read_header(self._file, self.path)
        self.stream_type: str = STREAM_TYPES[header.stream_type]
        """``"generic"``, ``"dvs"``, ``"atis"`` or ``"color"``."""
        self.version = header.version
        self._type = header.stream_type
        self._mode = ATIS_EVENTS.index(atis_events)
        geometry = None if header.width is None else (header.width, header.height or 0)
        if override is not None and self._type != GENERIC:
            geometry = override
        if geometry is not None and (geometry[0] == 0 or geometry[1] == 0):
            raise FormatError(
                f"the header gives a {geometry[0]}x{geometry[1]} sensor: no event fits "
                "(pass width and height to read it anyway)",
                path=self.path,
                offset=16,
            )
        self._width, self._height = geometry or (0, 0)
        if self._type == GENERIC:
            log.info(
                "%s is a generic Event Stream: it holds byte payloads, not polarity events "
                "(read() gives none; read_generic() gives times and payloads)",
                self.path,
            )
        self._data_offset = self._position = header.data_offset
        self.metadata = {
            "version": ".".join(map(str, header.version)),
            "type": self.stream_type,
        }
        self.properties = Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=0,
        )
        self._reset_state()

    # -- decoding -----------------------------------------------------------------------------
    def _packet_capacity(self, n_bytes: int) -> int:
        # At most one event per 5 (DVS, ATIS) or 8 (color) bytes; generic streams give none.
        per_event = _EVENT_BYTES.get(self._type)
        return (n_bytes // per_event if per_event else 0) + self.max_group_events + 64

    def _kernel(
        self,
        words: npt.NDArray[Any],
        state: npt.NDArray[np.int64],
        events: npt.NDArray[Any],
        n_events: int,
        triggers: npt.NDArray[Any],
        n_triggers: int,
    ) -> tuple[int, int, int]:
        if self._type in (DVS, ATIS):
            result: tuple[int, int, int] = _decode_polarity(
                words,
                state,
                self._type,
                self._mode,
                self._width,
                self._height,
                events,
                n_events,
                triggers,
                n_triggers,
            )
            return result
        if self._type == COLOR:
            colors = np.empty(len(events) - n_events, COLOR_DTYPE)
            consumed, count = _decode_color(words, state, self._width, self._height, colors, 0)
            _colors_to_events(colors[:count], events[n_events : n_events + count])
            return consumed, n_events + count, n_triggers
        # Generic streams hold no polarity events: parse (to find torn tails), keep nothing.
        nothing = np.empty(0, np.uint64)
        consumed, _, _ = _decode_generic(
            words, state, False, nothing, np.zeros(1, np.int64), 0, np.empty(0, np.uint8), 0
        )
        return consumed, n_events, n_triggers

    def _finish(self) -> None:
        pending = int(self._state[_PENDING])
        if pending and self._position >= self._size:
            start = self._position - pending
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.path}: the file ends inside an event that starts at byte {start} "
                    f"({pending} trailing bytes ignored)"
                ),
                stacklevel=3,
            )
            self._state[_PENDING] = 0
        super()._finish()

    def _require(self, stream_type: int, method: str) -> None:
        if self._type != stream_type:
            raise ValueError(
                f"{self.path} is a {self.stream_type} stream: {method}() reads "
                f"{STREAM_TYPES[stream_type]} streams"
            )

    def read_generic(self) -> GenericEvents:
        """Every generic event of the file, from its start, with its payload (generic
        streams only; the events :meth:`read` gives are none)."""
        with self._using():
            self._require(GENERIC, "read_generic")
            return self._read_generic()

    def _read_generic(self) -> GenericEvents:
        remaining = self._size - self._position
        times = np.empty(remaining // 2 + 2, np.uint64)  # an event takes 2 bytes or more
        offsets = np.zeros(len(times) + 1, np.int64)
        payload = np.empty(remaining + 1, np.uint8)
        n = m = 0
        while self._position < self._size:
            window = _Window(
                self._file.fileno(), self._position, self._size - self._position, self.word
            )
            try:
                consumed, n, m = _decode_generic(
                    window.view, self._state, True, times, offsets, n, payload, m
                )
            finally:
                window.close()
            self._position += consumed
            if self._position < self._size:  # an output was full (cannot happen): grow it
                times = np.concatenate((times, np.empty(len(times), np.uint64)))
                offsets = np.concatenate((offsets, np.zeros(len(offsets), np.int64)))
                payload = np.concatenate((payload, np.empty(len(payload), np.uint8)))
        self._finish()
        return GenericEvents(times[:n].copy(), offsets[: n + 1].copy(), payload[:m].copy())

    def read_color(self) -> npt.NDArray[Any]:
        """Every color event, with its colour, as :data:`COLOR_DTYPE` (color streams only;
        :meth:`read` gives them as events)."""
        with self._using():
            self._require(COLOR, "read_color")
            return self._read_color()

    def _read_color(self) -> npt.NDArray[Any]:
        colors = np.empty((self._size - self._position) // 8 + 2, COLOR_DTYPE)
        n = 0
        while self._position < self._size:
            window = _Window(
                self._file.fileno(), self._position, self._size - self._position, self.word
            )
            try:
                consumed, n = _decode_color(
                    window.view, self._state, self._width, self._height, colors, n
                )
            finally:
                window.close()
            self._position += consumed
            if self._position < self._size:  # full (cannot happen): grow
                colors = np.concatenate((colors, np.empty(len(colors), COLOR_DTYPE)))
        self._finish()
        result: npt.NDArray[Any] = colors[:n].copy()
        return result

    # -- two threads ----------------------------------------------------------------------------
    def _read(self) -> Packet:
        """Decode everything left into one array; large DVS and ATIS files on two threads."""
        remaining = self._size - self._position
        if (
            self._type not in (DVS, ATIS)
            or self._position < self._data_offset
            or remaining < self.parallel_min_bytes
            or self._state[_PHASE] != 0
            or (os.cpu_count() or 1) < 2
        ):
            return super()._read()
        window = _Window(self._file.fileno(), self._position, remaining, self.word)
        try:
            events, n = self._read_two_threads_overlapped(window.view)
        finally:
            window.close()
        self._position = self._size
        self._finish()
        return Packet(events[:n])

    def _read_two_threads_overlapped(self, data: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], int]:
        """Decode ``data`` (all that is left) on two threads; returns (events, count).

        Event Stream has no way into the middle of its data: where an event starts and the
        time there are known only by walking every byte before. So a helper thread *surveys*
        the first share (walks it without writing, several times faster than decoding) to
        learn where the second share starts, its time and how many events come before it,
        then decodes the second share into its place; meanwhile this thread maps the output
        (populating its pages takes about as long as decoding half the file, and holds the
        GIL, which the survey does not need) and decodes the first share. The first share
        must end exactly where the survey said, or the whole of ``data`` is decoded again
        here on one thread.
        """
        start_state = self._state.copy()
        target = int(len(data) * self.survey_share)
        started = threading.Event()
        surveyed = threading.Event()
        mapped = threading.Event()
        outputs: list[npt.NDArray[Any]] = []
        found: list[tuple[int, int, int]] = []  # (split, time there, events before it)
        second_state = np.zeros(_STATE_SIZE, np.int64)
        second: list[int] = []  # events decoded when the second share is done
        failure: list[BaseException] = []

        def survey_then_decode_second_share() -> None:
            try:
                started.set()
                split, t, count = _survey(
                    data,
                    int(start_state[_T]),
                    self._type,
                    self._mode,
                    self._width,
                    self._height,
                    target,
                )
                found.append((split if 0 <= split < len(data) else -1, t, count))
                surveyed.set()
                mapped.wait()
                if outputs and found[0][0] >= 0:
                    second_state[_T] = t
                    _, n, _ = self._decode_share(
                        data[found[0][0] :], second_state, outputs[0], count
                    )
                    second.append(n)
            except BaseException as error:  # reported on the calling thread
                failure.append(error)
            finally:
                surveyed.set()

        helper = threading.Thread(target=survey_then_decode_second_share, name="aerflow-es")
        helper.start()
        try:
            started.wait()  # the helper is (about to be) inside the survey, which drops the GIL
            try:
                outputs.append(_allocate_events(self._packet_capacity(len(data))))
            finally:
                mapped.set()
            events = outputs[0]
            first_state = start_state.copy()
            # Up to the target (maybe mid-event), then to the split the survey found.
            consumed, n_first, _ = self._decode_share(data[:target], first_state, events, 0)
            surveyed.wait()
            if found and found[0][0] >= 0 and consumed == target:
                more, n_first, _ = self._decode_share(
                    data[target : found[0][0]], first_state, events, n_first
                )
                consumed += more
        finally:
            helper.join()
        if failure:
            raise failure[0]
        if (
            second
            and (consumed, n_first) == (found[0][0], found[0][2])
            and first_state[_PHASE] == 0
            and first_state[_T] == found[0][1]
        ):
            second_state[_DROPPED] += first_state[_DROPPED]
            self._state = second_state
            return events, second[0]
        # The survey and the first share disagree (or the data end inside the first share):
        # decode everything again here.
        log.debug("%s: two-thread decoding fell back to one thread", self.path)
        self._state = start_state
        _, n, _ = self._decode_share(data, self._state, events, 0)
        return events, n

    def _decode_share(
        self, data: npt.NDArray[Any], state: npt.NDArray[np.int64], events: npt.NDArray[Any], n: int
    ) -> tuple[int, int, int]:
        return self._kernel(data, state, events, n, _NO_TRIGGERS, 0)


def _colors_to_events(colors: npt.NDArray[Any], events: npt.NDArray[Any]) -> None:
    events["t"] = colors["t"]
    events["x"] = colors["x"]
    events["y"] = colors["y"]
    events["on"] = (colors["r"] | colors["g"] | colors["b"]) != 0


# --------------------------------------------------------------------------- #
# Writer                                                                      #
# --------------------------------------------------------------------------- #


class EventStreamWriter(FileWriter):
    """Writes Event Stream 2.0 files of DVS events (``type="dvs"``, the default) or ATIS
    change detections (``type="atis"``), with the sensor size in the header.

    Timestamps must not decrease (within and across :meth:`write` calls). The first event's
    time is stored as its distance from 0: the format has no place for a time origin, so
    ``time_origin`` must be 0 (a file written relative to another origin would read back
    silently shifted); shift the times first (:class:`~aerflow.filters.ShiftTime`) where
    relative times are what is wanted.
    """

    format_name = "es"
    stores = ()

    def _why_unwritten(self, channel: str) -> str:
        return "Event Stream files hold events only"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        type: str = "dvs",
        time_origin: int = 0,
    ) -> None:
        if type not in ("dvs", "atis"):
            raise ValueError(f"type must be 'dvs' or 'atis', got {type!r}")
        width, height = check_int(width, "width"), check_int(height, "height")
        if not (0 < width < 1 << 16 and 0 < height < 1 << 16):
            raise ValueError(
                f"Event Stream stores the sensor size as 16-bit numbers: it must be at most "
                f"65535x65535, got {width}x{height}"
            )
        if time_origin != 0:
            raise ValueError(
                f"Event Stream has no place to store a time origin: with time_origin="
                f"{time_origin} the file would read back {time_origin} µs early; shift the "
                "times first (filter shift-time, ShiftTime) if relative times are what you want"
            )
        super().__init__(path)
        self.width, self.height, self.type = width, height, type
        self._kind = _TYPE_CODES[type]
        self._origin = int(time_origin)
        self._previous = 0  # time (after the origin) of the last event written
        self._written = 0
        self._file.write(
            MAGIC
            + bytes([*_VERSION, self._kind])
            + int(width).to_bytes(2, "little")
            + int(height).to_bytes(2, "little")
        )

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events) == 0:
            return
        if int(events["x"].max()) >= self.width or int(events["y"].max()) >= self.height:
            outside = np.flatnonzero((events["x"] >= self.width) | (events["y"] >= self.height))
            index = int(outside[0])
            raise ValueError(
                f"event {self._written + index} (x={int(events['x'][index])}, "
                f"y={int(events['y'][index])}) lies outside the {self.width}x{self.height} sensor"
            )
        events = np.ascontiguousarray(events)
        total, bad, why = _measure(events, self._origin, self._previous, self._kind)
        if bad >= 0:
            self._refuse(events, bad, why)
        if total <= _ENCODE_BUDGET:
            out = np.empty(total, np.uint8)
            self._previous = int(_encode(events, self._origin, self._previous, self._kind, out))
            self._file.write(out.data)
        else:  # long gaps: encode piece by piece, holding a bounded buffer
            start = 0
            while start < len(events):
                end, size = _piece_end(
                    events, start, self._origin, self._previous, self._kind, _ENCODE_BUDGET
                )
                out = np.empty(size, np.uint8)
                self._previous = int(
                    _encode(events[start:end], self._origin, self._previous, self._kind, out)
                )
                self._file.write(out.data)
                start = end
        self._written += len(events)

    def _refuse(self, events: npt.NDArray[Any], index: int, why: int) -> None:
        t = int(events["t"][index])
        at = self._written + index
        if why == 1 and t < self._origin:
            raise ValueError(f"event {at}: t={t} µs is before the time origin {self._origin} µs")
        # why 1 with t past the origin: t is 2**63 µs or more, beyond int64 and any gap.
        previous = self._previous + self._origin if index == 0 else int(events["t"][index - 1])
        if why == 0:
            raise NonMonotonicTimeError(
                f"event {at}: t={t} µs comes after an event at {previous} µs; Event Stream "
                "stores time differences, so timestamps must not decrease (sort the events)",
                index=at,
            )
        if at == 0:
            raise ValueError(
                f"the first event is at t={t} µs, which Event Stream stores as a gap from "
                f"{self._origin} µs; gaps over {_MAX_GAP_US} µs are refused (they take tens of "
                "MB of overflow bytes). For absolute timestamps, shift the times first (filter "
                "shift-time, ShiftTime): Event Stream cannot store a time origin"
            )
        raise ValueError(
            f"event {at}: t={t} µs is {t - previous} µs after the event before it; gaps over "
            f"{_MAX_GAP_US} µs are refused (they take tens of MB of overflow bytes)"
        )
