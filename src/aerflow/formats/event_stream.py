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

This module holds the reader and the format's public names. The header parser lives in
``_es_header``, the decoding kernels in ``_es_decode``, the encoding kernels in ``_es_encode``
and the writer in ``_es_writer`` (its :class:`EventStreamWriter` is re-exported here).
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

import numpy as np
import numpy.typing as npt

from ..errors import (
    FormatError,
    NonMonotonicTimeError,
    TruncatedDataWarning,
)
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    Properties,
    check_sensor_size,
)
from ._es_decode import _DROPPED as _DROPPED  # re-exported (tests drive the kernels)
from ._es_decode import _PENDING as _PENDING
from ._es_decode import _PHASE, _T, ATIS_EVENTS, _survey
from ._es_decode import _STATE_SIZE as _STATE_SIZE
from ._es_decode import _decode_color as _decode_color
from ._es_decode import _decode_generic as _decode_generic
from ._es_decode import _decode_polarity as _decode_polarity
from ._es_header import ATIS as ATIS
from ._es_header import COLOR, GENERIC, MAGIC, STREAM_TYPES, _read_header, sniff
from ._es_header import DVS as DVS
from ._es_writer import EventStreamWriter
from ._mapped_memory import _allocate_events, _Window

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

COLOR_DTYPE = np.dtype(
    [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
)
"""Color events: time in µs, column, row and the colour's red, green and blue components."""

_EVENT_BYTES = {DVS: 5, ATIS: 5, COLOR: 8}
_NO_TRIGGERS = np.empty(0, TRIGGERS_DTYPE)

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
