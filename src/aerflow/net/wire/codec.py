"""Encoding events into datagrams and decoding them back, one numba call per batch, for
every wire format (the kernels live in the format's module)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...events import EVENTS_DTYPE
from .aerflow import (
    FLAG_ABORTED,
    FLAG_END_OF_STREAM,
    MAX_SPAN,
    N_STREAM_COLUMNS,
    ST_DATAGRAMS,
    ST_DUPLICATED,
    ST_ENDED,
    ST_EVENTS,
    ST_HIGHEST,
    ST_ID,
    ST_LOWEST,
    ST_REORDERED,
    ST_UNIQUE,
    WINDOW_WORDS,
    StreamStats,
    _decode_aerflow,
    _encode_aerflow,
    aerflow_header,
)
from .common import (
    C_EVENTS,
    C_MALFORMED,
    C_OUT_OF_RANGE,
    C_UNTIMED,
    N_COUNTERS,
    N_STATE,
    S_HEIGHT,
    S_LAST,
    S_STREAMS,
    S_WIDTH,
    _first_out_of_range,
    round8,
    views,
)
from .faery import _decode_faery_t32, _decode_faery_t64, _encode_faery_t32, _encode_faery_t64
from .registry import _AERFLOW, _FAERY_T32, _FAERY_T64, _SPIF, _SPIF_T, WireFormat, get_wire_format
from .spif import AESTREAM_WORDS, _decode_spif, _encode_spif

__all__ = [
    "DatagramDecoder",
    "DatagramEncoder",
    "decode_datagrams",
    "encode_datagrams",
    "pack_datagrams",
]

_UNLIMITED_SPAN = (1 << 63) - 1


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
        self.stride = round8(self.datagram_bytes)
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
        limit = MAX_SPAN if self.wire._kind == _AERFLOW else _UNLIMITED_SPAN
        span = limit if max_span is None else int(max_span)
        if not 0 <= span <= limit:
            raise ValueError(f"max_span must lie in 0..{limit} µs")
        self.max_span = span
        slots = max(1, min(4096, buffer_bytes // self.stride))
        self.buffer = np.zeros(slots * self.stride, np.uint8)
        self.buffer.fill(0xFF)  # map every page now, not while sending
        self._views = views(self.buffer)
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
    enough = round8(size) * (len(events) // info.events_per_datagram(size) + 1)
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
        self.state = np.zeros(N_STATE, np.int64)
        self.state[S_LAST] = -1
        self.counters = np.zeros(N_COUNTERS, np.int64)
        self._previous = np.zeros(AESTREAM_WORDS, np.uint32)
        self.streams = np.zeros((16, N_STREAM_COLUMNS), np.int64)
        self.windows = np.zeros((16, WINDOW_WORDS), np.uint64)

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
        buf8, buf16, buf32, buf64 = views(buffer)
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
        self.streams = np.concatenate((self.streams, np.zeros((rows, N_STREAM_COLUMNS), np.int64)))
        self.windows = np.concatenate((self.windows, np.zeros((rows, WINDOW_WORDS), np.uint64)))


def pack_datagrams(
    datagrams: list[bytes], stride: int | None = None
) -> tuple[npt.NDArray[np.uint8], int, npt.NDArray[np.int64]]:
    """Lay ``datagrams`` out in slots as a receiver does: (buffer, stride, lengths)."""
    longest = max((len(d) for d in datagrams), default=0)
    stride = max(8, round8(longest if stride is None else stride))
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
