"""CSV and whitespace-separated text: one event per line.

Reading understands the common layouts without being told:

* a header line (a first line none of whose fields is a number) names the columns:
  ``t``/``ts``/``time``/``timestamp``, ``x``, ``y``, ``p``/``on``/``pol``/``polarity``
  (any case; other names are ignored columns). A time name may carry its unit:
  ``t[s]``, ``t (ms)``, ``timestamp_us``;
* OpenEB's CSV: a ``%geometry:W,H`` first line (the sensor size) and ``x,y,p,t`` rows;
* the Event Camera Dataset's ``t x y p`` text with times in seconds;
* aerflow's own ``t,x,y,on`` with a header.

Without a header the columns are ``x,y,p,t`` after a ``%geometry`` line, else ``t,x,y,on``.
The separator is ``,`` or ``;`` when the first line holds one, else runs of blanks. The time
unit is µs unless the header names one or the first event's time has a decimal point or an
exponent (then seconds). ``columns``, ``separator`` and ``time_unit`` override each guess.
Times are rounded to the nearest µs (halves up). Lines starting with ``#`` or ``%`` are
comments; blank lines are skipped; CRLF line ends are fine.

Parsing runs in a numba kernel (``_text_kernels``) on memory-mapped windows of a file, or on
a reusable buffer filled from any binary stream (:meth:`TextReader.from_stream`), keeping
lines that straddle a window edge whole. Malformed lines raise :class:`TextFormatError`
(a :class:`~aerflow.FormatError`) with the line number and the byte offset.

This module holds :class:`TextReader` and the format's public names; ``_text_layout`` has
the column, separator and preamble rules, ``_text_sniff`` recognises such text and
``_text_writer`` holds :class:`TextWriter`.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import OutOfRangeWarning, TextFormatError, TruncatedDataWarning
from ..events import EVENTS_DTYPE, Packet, empty_events
from . import _text_kernels as kernels
from ._base import DEFAULT_CHUNK_SIZE, FileReader, Properties
from ._mapped_memory import _allocate_events, _Window
from ._text_layout import (
    _BLANKS,
    _ROLE_NAMES,
    _UNIT_EXPONENT,
    MAX_LINE,
    _Plan,
    _plan,
    _Preamble,
    _scan_preamble,
)
from ._text_sniff import sniff_text
from ._text_streams import _stream_name, _wait_readable
from ._text_writer import LAYOUTS, MAX_TIME_US, TextWriter

__all__ = [
    "LAYOUTS",
    "MAX_LINE",
    "MAX_TIME_US",
    "TextFormatError",
    "TextReader",
    "TextWriter",
    "sniff_text",
]

log = logging.getLogger(__name__)

_PARALLEL_MIN_BYTES = 1 << 23
_STREAM_MIN_BUFFER = 1 << 16

_ERROR_MESSAGES = {
    kernels.ERR_BAD_TIME: "time {value} is not a number",
    kernels.ERR_NEGATIVE_TIME: "time {value} is negative",
    kernels.ERR_FRACTIONAL_TIME: (
        "time {value} has a fraction, but the first event's time was a whole number, taken "
        "as µs; pass time_unit='s' (or 'ms', 'us') to say which unit the file uses"
    ),
    kernels.ERR_TIME_TOO_LARGE: "time {value} is too large (10**18 µs or more)",
    kernels.ERR_BAD_COORDINATE: "{name} {value} is not a non-negative integer",
    kernels.ERR_NEGATIVE_COORDINATE: "{name} {value} is negative",
    kernels.ERR_COORDINATE_TOO_LARGE: "{name} {value} is larger than 65535",
    kernels.ERR_BAD_POLARITY: "polarity {value} is not 0, 1, -1, true or false",
    kernels.ERR_TOO_FEW_FIELDS: "expected {count} fields ({columns}), found {field}",
    kernels.ERR_TOO_MANY_FIELDS: "expected {count} fields ({columns}), found more",
}


def _locate_torn(state: npt.NDArray[np.int64], base: int) -> None:
    """Turn the kernel's offset of a torn last line, relative to the data it was given at
    byte ``base`` of the input, into the absolute offset + 1."""
    if state[kernels.S_TORN] < 0:
        state[kernels.S_TORN] = base - state[kernels.S_TORN]


class TextReader(FileReader):
    """Reads CSV / text events from a file (memory-mapped windows) or, through
    :meth:`from_stream`, from any binary stream (a pipe, ``sys.stdin.buffer``)."""

    format_name: ClassVar[str] = "csv"
    chunk_size: int
    _stream: Any
    _file: Any
    _size: int
    _position: int
    _buffer: npt.NDArray[np.uint8]
    _filled: int
    _base: int
    _eof: bool
    _plan: _Plan
    _limits: tuple[int, int]
    _state: npt.NDArray[np.int64]
    _max_line: int
    _data_offset: int
    _start_lines: int

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        columns: str | Sequence[str] | None = None,
        separator: str | None = None,
        time_unit: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        super().__init__(path)
        self._check_chunk_size(chunk_size)
        self._stream: Any = None
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            limit = 1 << 16
            while True:
                head = self._file.read(limit) if limit == 1 << 16 else self._reread(limit)
                preamble = _scan_preamble(head, at_eof=len(head) >= self._size)
                if preamble is not None:
                    break
                limit *= 4
            self._setup(preamble, columns, separator, time_unit, width, height)
            self._data_offset = self._position = preamble.data_offset
        except BaseException:
            self._file.close()
            raise

    def _reread(self, limit: int) -> bytes:
        self._file.seek(0)
        head: bytes = self._file.read(limit)
        return head

    @classmethod
    def from_stream(
        cls,
        stream: Any,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        columns: str | Sequence[str] | None = None,
        separator: str | None = None,
        time_unit: str | None = None,
        width: int | None = None,
        height: int | None = None,
        name: str | None = None,
    ) -> TextReader:
        """A reader of an open binary stream (``sys.stdin.buffer``, a pipe, a socket file),
        read with ``readinto`` into one reusable buffer of ``chunk_size`` bytes; packets come
        as soon as whole lines arrive. The stream is not closed by :meth:`close`."""
        if isinstance(stream, io.TextIOBase) or not (
            hasattr(stream, "readinto1") or hasattr(stream, "readinto")
        ):
            raise TypeError(
                "from_stream needs a binary stream with readinto (e.g. sys.stdin.buffer), "
                f"got {type(stream).__name__}"
            )
        reader = cls.__new__(cls)
        FileReader.__init__(reader, name or _stream_name(stream))
        reader._check_chunk_size(chunk_size)
        reader._state = np.zeros(kernels.STATE_SIZE, np.int64)
        reader._max_line = max(MAX_LINE, reader.chunk_size)
        reader._stream = stream
        reader._buffer = np.empty(max(chunk_size, _STREAM_MIN_BUFFER), np.uint8)
        reader._filled = 0
        reader._base = 0
        reader._eof = False
        while True:
            if reader._filled == len(reader._buffer):
                if len(reader._buffer) >= reader._max_line:
                    # A line longer than the limit: parsing will report it where it is.
                    head = reader._buffer[: reader._filled].tobytes()
                    preamble = _scan_preamble(head, at_eof=True)
                    assert preamble is not None  # always found at the end of the input
                    break
                reader._grow_buffer()
            before = reader._filled
            if not reader._fill():
                reader._eof = True
            if (
                not reader._eof
                and reader._filled < len(reader._buffer)
                and kernels.next_newline(reader._buffer[: reader._filled], before) < 0
            ):
                continue  # no line completed by this read
            head = reader._buffer[: reader._filled].tobytes()
            preamble = _scan_preamble(head, at_eof=reader._eof)
            if preamble is not None:
                break
        reader._setup(preamble, columns, separator, time_unit, width, height)
        reader._consume(preamble.data_offset)
        return reader

    def _check_chunk_size(self, chunk_size: int) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)

    def _setup(
        self,
        preamble: _Preamble,
        columns: str | Sequence[str] | None,
        separator: str | None,
        time_unit: str | None,
        width: int | None,
        height: int | None,
    ) -> None:
        plan = _plan(preamble, self.path, columns, separator, time_unit, width, height)
        self._plan = plan
        self._limits = plan.geometry or (1 << 16, 1 << 16)
        self._start_lines = preamble.lines_before
        self._state = np.zeros(kernels.STATE_SIZE, np.int64)
        self._state[kernels.S_LINES] = preamble.lines_before
        self._max_line = max(MAX_LINE, self.chunk_size)
        separator_name = "blanks" if plan.separator == 0 else chr(plan.separator)
        self.metadata = {
            "columns": ",".join(plan.columns),
            "separator": separator_name,
            "time_unit": plan.time_unit,
            "header": "yes" if preamble.header is not None else "no",
        }
        if preamble.geometry is not None:
            self.metadata["geometry"] = f"{preamble.geometry[0]},{preamble.geometry[1]}"
        self.properties = Properties(
            format=self.format_name,
            width=plan.geometry[0] if plan.geometry else None,
            height=plan.geometry[1] if plan.geometry else None,
        )
        log.debug("%s: %s", self.path, self.metadata)

    # -- parsing ----------------------------------------------------------------------------
    @property
    def dropped_out_of_range(self) -> int:
        """Events dropped so far because their coordinates lie outside the sensor."""
        return int(self._state[kernels.S_DROPPED])

    def _parse(
        self,
        data: npt.NDArray[np.uint8],
        base: int,
        final: bool,
        events: npt.NDArray[Any],
        n: int,
        state: npt.NDArray[np.int64] | None = None,
    ) -> tuple[int, int]:
        """Parse whole lines of ``data`` (at byte ``base`` of the input) into ``events[n:]``:
        (bytes consumed, new n). Raises TextFormatError at a malformed line."""
        state = self._state if state is None else state
        plan = self._plan
        consumed, n = kernels.parse_lines(
            data,
            state,
            plan.roles,
            plan.separator,
            _UNIT_EXPONENT[plan.time_unit],
            plan.integer_time,
            self._limits[0],
            self._limits[1],
            final,
            events,
            n,
        )
        if state[kernels.S_ERROR]:
            raise self._error(data, base, state)
        _locate_torn(state, base)
        return int(consumed), int(n)

    def _error(
        self, data: npt.NDArray[np.uint8], base: int, state: npt.NDArray[np.int64]
    ) -> TextFormatError:
        code = int(state[kernels.S_ERROR])
        at = int(state[kernels.S_ERROR_AT])
        field = int(state[kernels.S_ERROR_FIELD])
        plan = self._plan
        end = at
        stops = b" \t\r\n" if plan.separator == 0 else bytes([plan.separator, 10, 13])
        while end < len(data) and end - at < 40 and int(data[end]) not in stops:
            end += 1
        value = bytes(data[at:end]).strip(_BLANKS).decode("utf-8", "replace")
        role = int(plan.roles[field]) if field < len(plan.roles) else kernels.ROLE_SKIP
        message = _ERROR_MESSAGES[code].format(
            value=repr(value),
            name=_ROLE_NAMES.get(role, "field"),
            count=len(plan.roles),
            columns=",".join(plan.columns),
            field=field,
        )
        return TextFormatError(
            message, path=self.path, offset=base + at, line=int(state[kernels.S_LINES]) + 1
        )

    def _line_too_long(self, offset: int) -> TextFormatError:
        return TextFormatError(
            f"a line longer than {self._max_line} bytes (is this a text file?)",
            path=self.path,
            offset=offset,
            line=int(self._state[kernels.S_LINES]) + 1,
        )

    def _finish(self) -> None:
        self._warn_torn()
        if self.dropped_out_of_range:
            width, height = self._limits
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.path}: dropped {self.dropped_out_of_range} events outside the "
                    f"{width}x{height} sensor"
                ),
                stacklevel=4,  # past _iterate or _read, and FileReader's guard
            )

    def _warn_torn(self) -> None:
        at = int(self._state[kernels.S_TORN]) - 1
        if at < 0:
            return
        self._state[kernels.S_TORN] = 0
        line = int(self._state[kernels.S_LINES]) + 1
        if self._state[kernels.S_TORN_CODE] == 0:
            name = _ROLE_NAMES[int(self._plan.roles[-1])]
            why = (
                f"its last field, {name}, may be a number cut short (end the file with a "
                "newline to keep such a line)"
            )
        else:
            why = "it is incomplete"
        warnings.warn(
            TruncatedDataWarning(
                f"{self.path}: the input ends inside line {line} at byte {at}: no newline, and "
                f"{why}; the line is ignored"
            ),
            stacklevel=5,  # one deeper than _finish's own warning
        )

    def _restart(self) -> None:
        if self._stream is not None:
            raise ValueError(
                f"{self.path} is a stream (a pipe or standard input) and cannot be read "
                "again from its start: iterate it once, or read() it once into memory"
            )
        self._position = self._data_offset
        self._state = np.zeros(kernels.STATE_SIZE, np.int64)
        self._state[kernels.S_LINES] = self._start_lines

    # -- files ----------------------------------------------------------------------------
    def _iterate(self) -> Iterator[Packet]:
        if self._stream is not None:
            yield from self._iter_stream()
            return
        events = np.empty(0, EVENTS_DTYPE)
        while self._position < self._size:
            length = min(self.chunk_size, self._size - self._position)
            while True:
                final = self._position + length >= self._size
                if len(events) < self._plan.capacity(length):
                    events = np.empty(self._plan.capacity(length), EVENTS_DTYPE)
                window = _Window(self._file.fileno(), self._position, length, np.dtype(np.uint8))
                try:
                    consumed, n = self._parse(window.view, self._position, final, events, 0)
                finally:
                    window.close()
                if consumed or final:
                    break
                if length >= self._max_line:
                    raise self._line_too_long(self._position)
                length = min(2 * length, self._size - self._position)
            self._position += consumed
            if n:
                yield Packet(events[:n].copy())
        self._finish()

    def _read(self) -> Packet:
        """Every remaining event as one packet (large files on two threads)."""
        if self._stream is not None:
            return super()._read()
        remaining = self._size - self._position
        if remaining <= 0:
            self._finish()
            return Packet(empty_events())
        window = _Window(self._file.fileno(), self._position, remaining, np.dtype(np.uint8))
        try:
            data = window.view
            split = -1
            if remaining >= _PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1:
                split = int(kernels.next_newline(data, remaining // 2)) + 1
            if 0 < split < remaining:
                events, n = self._read_two_threads(data, split)
            else:
                events = _allocate_events(self._plan.capacity(remaining))
                _, n = self._parse(data, self._position, True, events, 0)
        finally:
            window.close()
        self._position = self._size
        self._finish()
        return Packet(events[:n])

    def _read_two_threads(
        self, data: npt.NDArray[np.uint8], split: int
    ) -> tuple[npt.NDArray[Any], int]:
        """Parse ``data[:split]`` (whole lines) on a helper thread and the rest here."""
        # The first share ends with a newline: it holds at most that many events.
        first_capacity = int(kernels.count_newlines(data[:split])) + 1
        events = _allocate_events(first_capacity + self._plan.capacity(len(data) - split))
        first_state = self._state.copy()
        second_state = np.zeros_like(self._state)
        outcome: list[tuple[int, int]] = []
        plan = self._plan
        arguments = (
            plan.roles,
            plan.separator,
            _UNIT_EXPONENT[plan.time_unit],
            plan.integer_time,
            self._limits[0],
            self._limits[1],
            True,
        )

        def first_share() -> None:
            outcome.append(
                kernels.parse_lines(
                    data[:split], first_state, *arguments, events[:first_capacity], 0
                )
            )

        helper = threading.Thread(target=first_share, name="aerflow-text")
        helper.start()
        try:
            _, second_end = kernels.parse_lines(
                data[split:], second_state, *arguments, events, first_capacity
            )
        finally:
            helper.join()
            del helper
        _, n_first = outcome[0]
        if first_state[kernels.S_ERROR]:
            self._state = first_state
            raise self._error(data[:split], self._position, first_state)
        second_state[kernels.S_LINES] += first_state[kernels.S_LINES]
        second_state[kernels.S_DROPPED] += first_state[kernels.S_DROPPED]
        _locate_torn(second_state, self._position + split)
        self._state = second_state
        if second_state[kernels.S_ERROR]:
            raise self._error(data[split:], self._position + split, second_state)
        n_second = int(second_end) - first_capacity
        if n_first != first_capacity:  # close the gap below the second share (memmove speed)
            size = EVENTS_DTYPE.itemsize
            raw = events.view(np.uint8)
            raw[n_first * size : (n_first + n_second) * size] = raw[
                first_capacity * size : (first_capacity + n_second) * size
            ]
        return events, int(n_first) + n_second

    # -- streams --------------------------------------------------------------------------
    def _fill(self) -> bool:
        """Read more of the stream after the buffered bytes; False at the end of it."""
        target = memoryview(self._buffer)[self._filled :]  # type: ignore[arg-type]
        read = getattr(self._stream, "readinto1", None) or self._stream.readinto
        while True:
            count: int | None = read(target)
            if count is None:  # a non-blocking stream with nothing to read yet
                _wait_readable(self._stream)
                continue
            self._filled += count
            return count > 0

    def _grow_buffer(self) -> None:
        if len(self._buffer) >= self._max_line:
            raise self._line_too_long(self._base)
        larger = np.empty(2 * len(self._buffer), np.uint8)
        larger[: self._filled] = self._buffer[: self._filled]
        self._buffer = larger

    def _consume(self, count: int) -> None:
        rest = self._filled - count
        if rest:
            self._buffer[:rest] = self._buffer[count : self._filled]
        self._filled = rest
        self._base += count

    def _iter_stream(self) -> Iterator[Packet]:
        events = np.empty(0, EVENTS_DTYPE)
        while True:
            if self._filled or self._eof:
                capacity = self._plan.capacity(self._filled)
                if len(events) < capacity:
                    events = np.empty(
                        max(capacity, self._plan.capacity(len(self._buffer))), EVENTS_DTYPE
                    )
                data = self._buffer[: self._filled]
                consumed, n = self._parse(data, self._base, self._eof, events, 0)
                self._consume(consumed)
                if n:
                    yield Packet(events[:n].copy())
                if self._eof:
                    break
                if consumed == 0 and self._filled == len(self._buffer):
                    self._grow_buffer()
            if not self._fill():
                self._eof = True
        self._finish()

    def _close(self) -> None:
        # A stream given to from_stream stays open: it belongs to the caller.
        if self._stream is None:
            self._file.close()
