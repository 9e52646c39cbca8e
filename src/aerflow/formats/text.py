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
"""

from __future__ import annotations

import io
import logging
import os
import re
import select
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, OutOfRangeWarning, TextFormatError, TruncatedDataWarning
from ..events import EVENTS_DTYPE, Packet, empty_events
from . import _text_format_kernels as format_kernels
from . import _text_kernels as kernels
from ._base import (
    DEFAULT_CHUNK_SIZE,
    FileReader,
    FileWriter,
    Properties,
    _allocate_events,
    _Window,
    check_sensor_size,
)

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

MAX_LINE = 1 << 20
"""A line may be this long (or as long as ``chunk_size``, if larger) before it is refused."""

MAX_TIME_US = 10**18
"""Times from this many µs on are refused by the writer and the reader alike."""

_PARALLEL_MIN_BYTES = 1 << 23
_BOM = b"\xef\xbb\xbf"
_TIME_NAMES = frozenset(("t", "ts", "time", "timestamp"))
_POLARITY_NAMES = frozenset(("p", "on", "pol", "polarity"))
_ROLE_OF_NAME = {
    **dict.fromkeys(_TIME_NAMES, kernels.ROLE_T),
    "x": kernels.ROLE_X,
    "y": kernels.ROLE_Y,
    **dict.fromkeys(_POLARITY_NAMES, kernels.ROLE_P),
}
_ROLE_NAMES = {
    kernels.ROLE_T: "t",
    kernels.ROLE_X: "x",
    kernels.ROLE_Y: "y",
    kernels.ROLE_P: "p",
}
_UNIT_EXPONENT = {"us": 0, "µs": 0, "ms": 3, "s": 6}
_UNIT_IN_NAME = (
    re.compile(r"^([a-z]+)\s*[\[(]\s*(us|µs|ms|s)\s*[\])]$"),
    re.compile(r"^([a-z]+)_(us|ms|s)$"),
)
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEAN = re.compile(rb"true|false", re.IGNORECASE)
_GEOMETRY = re.compile(rb"%\s*geometry\s*[:=]?\s*([0-9]+)\s*[,x]\s*([0-9]+)\s*", re.IGNORECASE)
_BLANKS = b" \t\r"
_STREAM_MIN_BUFFER = 1 << 16

LAYOUTS: dict[str, dict[str, Any]] = {
    "csv": {"columns": ("t", "x", "y", "on"), "separator": ",", "time_unit": "us", "header": True},
    "openeb": {
        "columns": ("x", "y", "p", "t"),
        "separator": ",",
        "time_unit": "us",
        "header": False,
    },
    "rpg": {"columns": ("t", "x", "y", "p"), "separator": " ", "time_unit": "s", "header": False},
}
"""Writer presets: aerflow's CSV, OpenEB's CSV (``%geometry`` line when the size is known) and
the Event Camera Dataset's text (seconds, space-separated, no header)."""

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


# --------------------------------------------------------------------------- #
# Columns, separators, the file's preamble                                    #
# --------------------------------------------------------------------------- #


_SIZE_IN_NAME = re.compile(r"^(x|y)\s*@\s*([0-9]+)$")
"""faery's CSV header names the sensor size with the coordinates: ``t,x@640,y@480,on``."""


def _header_size(names: Sequence[str]) -> tuple[int, int] | None:
    """The sensor size a header names as ``x@W`` and ``y@H``, if it names both."""
    sizes = {}
    for raw in names:
        match = _SIZE_IN_NAME.match(raw.strip().strip("\"'").strip().lower())
        if match:
            sizes[match.group(1)] = int(match.group(2))
    return (sizes["x"], sizes["y"]) if len(sizes) == 2 else None


def _column_name(text: str) -> tuple[str, str | None]:
    """A header or option name, normalised: (name, unit named with it or None)."""
    name = text.strip().strip("\"'").strip().lower()
    sized = _SIZE_IN_NAME.match(name)
    if sized:
        return sized.group(1), None
    if name in _ROLE_OF_NAME:
        return name, None
    for pattern in _UNIT_IN_NAME:
        match = pattern.match(name)
        if match and match.group(1) in _TIME_NAMES:
            return match.group(1), match.group(2)
    return name, None


def _roles(names: Sequence[str]) -> tuple[npt.NDArray[np.int64], str | None, str | None]:
    """Roles of named columns: (roles, time unit named with t or None, problem or None)."""
    roles = np.zeros(len(names), np.int64)
    unit = None
    for i, raw in enumerate(names):
        name, name_unit = _column_name(raw)
        role = _ROLE_OF_NAME.get(name, kernels.ROLE_SKIP)
        if role != kernels.ROLE_SKIP and role in roles[:i]:
            return roles, None, f"names column {_ROLE_NAMES[role]!r} twice"
        roles[i] = role
        if role == kernels.ROLE_T:
            unit = name_unit
    missing = [_ROLE_NAMES[r] for r in _ROLE_NAMES if r not in roles]
    if missing:
        return (
            roles,
            unit,
            f"names no column {', '.join(missing)} (t/timestamp, x, y, p/on/polarity): "
            f"{', '.join(names)}",
        )
    return roles, unit, None


def _separator_byte(separator: str | None) -> int | None:
    """The kernel's separator: a byte, 0 for runs of blanks, None to detect."""
    if separator is None:
        return None
    if separator in (" ", "\t", "whitespace"):
        return 0
    if (
        len(separator) != 1
        or not separator.isascii()
        or separator.isalnum()
        or separator in ".+-#%\r\n\"'_"
    ):
        raise ValueError(
            "separator must be one punctuation character such as ',' or ';', or ' ' / '\\t' "
            f"for blanks, got {separator!r}"
        )
    return ord(separator)


def _detect_separator(line: bytes) -> int:
    for candidate in b",;":
        if candidate in line:
            return candidate
    return 0


def _split(line: bytes, separator: int) -> list[bytes]:
    if separator == 0:
        return line.split()
    return [field.strip(_BLANKS) for field in line.split(bytes([separator]))]


def _is_number(field: bytes) -> bool:
    return bool(_NUMBER.fullmatch(field) or _BOOLEAN.fullmatch(field))


@dataclass(frozen=True)
class _Preamble:
    """What comes before the data lines."""

    data_offset: int
    """Where the kernel starts: after a byte-order mark and the header line."""
    lines_before: int
    """Newlines before ``data_offset``."""
    geometry: tuple[int, int] | None
    header: tuple[str, ...] | None
    header_offset: int
    header_line: int
    separator: int
    """Detected from the header line, else the first data line (0: blanks)."""
    first_line: bytes | None
    """The first data line, blanks stripped (None: no data line)."""


def _scan_preamble(head: bytes, at_eof: bool) -> _Preamble | None:
    """Find the header and the first data line in ``head``; None when more bytes are needed
    (a line that decides is not complete yet)."""
    position = len(_BOM) if head.startswith(_BOM) else 0
    data_offset = position
    geometry = None
    header: tuple[str, ...] | None = None
    header_offset = position
    separator: int | None = None
    while True:
        newline = head.find(b"\n", position)
        if newline < 0 and not at_eof:
            if len(head) - position >= MAX_LINE:
                break  # the kernel will report the line as too long
            return None
        end = len(head) if newline < 0 else newline + 1
        stripped = head[position:end].strip(_BLANKS + b"\n")
        if stripped[:1] in (b"#", b"%"):
            match = _GEOMETRY.fullmatch(stripped)
            if match and header is None:
                geometry = int(match.group(1)), int(match.group(2))
        elif stripped:
            line_separator = _detect_separator(stripped)
            fields = _split(stripped, line_separator)
            if header is not None or any(_is_number(f) for f in fields):
                first_line = stripped
                if separator is None:
                    separator = line_separator
                return _Preamble(
                    data_offset,
                    head.count(b"\n", 0, data_offset),
                    geometry,
                    header,
                    header_offset,
                    head.count(b"\n", 0, header_offset) + 1,
                    separator,
                    first_line,
                )
            header = tuple(f.decode("utf-8", "replace") for f in fields)
            header_offset = position
            separator = line_separator
            data_offset = end
        if newline < 0:
            break
        position = end
    return _Preamble(
        data_offset,
        head.count(b"\n", 0, data_offset),
        geometry,
        header,
        header_offset,
        head.count(b"\n", 0, header_offset) + 1,
        separator or 0,
        None,
    )


@dataclass(frozen=True)
class _Plan:
    """How the kernel parses the data lines."""

    roles: npt.NDArray[np.int64]
    columns: tuple[str, ...]
    separator: int
    time_unit: str
    integer_time: bool
    geometry: tuple[int, int] | None

    @property
    def min_line_bytes(self) -> int:
        """The fewest bytes a line with an event takes (fields and separators)."""
        return int(np.count_nonzero(self.roles)) + len(self.roles) - 1

    def capacity(self, n_bytes: int) -> int:
        """Enough room for the events of ``n_bytes`` of lines."""
        return n_bytes // self.min_line_bytes + 1


def _plan(
    preamble: _Preamble,
    path: str,
    columns: str | Sequence[str] | None,
    separator: str | None,
    time_unit: str | None,
    width: int | None,
    height: int | None,
) -> _Plan:
    separator_byte = _separator_byte(separator)
    if separator_byte is None:
        separator_byte = preamble.separator
    header_unit = None
    if columns is not None:
        if isinstance(columns, str):
            names = tuple(c.strip() for c in re.split(r"[,\s]+", columns.strip()))
        else:
            names = tuple(str(c) for c in columns)
        roles, header_unit, problem = _roles(names)
        if problem:
            raise ValueError(f"columns {problem}")
    elif preamble.header is not None:
        names = preamble.header
        roles, header_unit, problem = _roles(names)
        if problem:
            raise TextFormatError(
                f"the header {problem}",
                path=path,
                offset=preamble.header_offset,
                line=preamble.header_line,
            )
    else:
        names = ("x", "y", "p", "t") if preamble.geometry is not None else ("t", "x", "y", "on")
        roles, _, _ = _roles(names)
    if time_unit is not None:
        if time_unit not in _UNIT_EXPONENT:
            raise ValueError(f"time_unit must be 'us', 'ms' or 's', got {time_unit!r}")
        unit, integer_time = time_unit, False
    elif header_unit is not None:
        unit, integer_time = header_unit, False
    else:
        unit, integer_time = "us", True
        if preamble.first_line is not None:
            fields = _split(preamble.first_line, separator_byte)
            t_index = int(np.flatnonzero(roles == kernels.ROLE_T)[0])
            if len(fields) > t_index and re.search(rb"[.eE]", fields[t_index]):
                unit, integer_time = "s", False
    geometry = check_sensor_size(width, height)
    named = preamble.geometry
    if named is None and columns is None and preamble.header is not None:
        named = _header_size(preamble.header)
    if geometry is None and named is not None:
        if not all(0 < v <= 1 << 16 for v in named):
            raise FormatError(
                f"sensor size {named[0]}x{named[1]} is outside 1..65536",
                path=path,
                offset=0,
            )
        geometry = named
    return _Plan(roles, names, separator_byte, unit, integer_time, geometry)


# --------------------------------------------------------------------------- #
# Sniffing                                                                    #
# --------------------------------------------------------------------------- #

_SNIFF_BYTES = 8192
_SNIFF_LINES = 20
_PRINTABLE = re.compile(rb"[\t\n\r\x20-\x7e]*")
_NAME = re.compile(rb"[A-Za-z_\"'][A-Za-z0-9_ ()\[\]\"'.]*")


def sniff_text(head: bytes) -> bool:
    """True for text that looks like event columns: printable ASCII lines of at least four
    numeric fields (after an optional ``%geometry`` line and an optional header naming the
    columns). Files that start with another ``%`` or ``#`` line (Prophesee, AEDAT headers)
    and binary files are never claimed."""
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    sample = head[:_SNIFF_BYTES]
    lines = sample.split(b"\n")
    if len(head) > _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line is cut by the sample's end
    if not _PRINTABLE.fullmatch(b"\n".join(lines)):
        return False
    lines = [line.strip(_BLANKS) for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return False
    if lines[0].startswith(b"%"):
        if not _GEOMETRY.fullmatch(lines[0]):
            return False
        lines = lines[1:]
        if not lines:
            return True
    if lines[0].startswith(b"#"):
        return False
    separator = _detect_separator(lines[0])
    first = _split(lines[0], separator)
    if len(first) < 4 or len(first) > 32:
        return False
    if not any(_is_number(f) for f in first):
        if not all(_NAME.fullmatch(f) for f in first):
            return False
        _, _, problem = _roles([f.decode() for f in first])
        if problem:
            return False
        lines = lines[1:]
    for line in lines[:_SNIFF_LINES]:
        fields = _split(line, separator)
        if len(fields) != len(first) or not all(_is_number(f) for f in fields):
            return False
    return True


# --------------------------------------------------------------------------- #
# Reading                                                                     #
# --------------------------------------------------------------------------- #


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


def _stream_name(stream: Any) -> str:
    name = getattr(stream, "name", None)
    if isinstance(name, int):
        return f"<fd {name}>"
    return "<stream>" if name is None else str(name)


def _wait_readable(stream: Any) -> None:
    try:
        select.select([stream], [], [], 1.0)
    except (TypeError, ValueError, OSError, io.UnsupportedOperation):
        time.sleep(0.001)


# --------------------------------------------------------------------------- #
# Writing                                                                     #
# --------------------------------------------------------------------------- #

_BLOCK_EVENTS = 1 << 16


class TextWriter(FileWriter):
    """Writes events as text lines: by default ``t,x,y,on`` with a header, times in µs.

    ``layout`` picks a preset (``"csv"``, ``"openeb"``: ``x,y,p,t`` after ``%geometry:W,H``,
    ``"rpg"``: ``t x y p`` with times in seconds); ``columns``, ``separator``, ``time_unit``
    (``"us"``, ``"ms"`` or ``"s"``, written with 0, 3 or 6 decimals) and ``header`` override
    it. ``geometry`` writes a ``%geometry:W,H`` first line (default: for the OpenEB layout
    when ``width`` and ``height`` are given). Triggers cannot be stored (they are counted in
    ``unwritten_triggers`` and logged).
    """

    format_name: ClassVar[str] = "csv"
    stores = ()

    def _why_unwritten(self, channel: str) -> str:
        return "text files hold events only"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layout: str = "csv",
        columns: str | Sequence[str] | None = None,
        separator: str | None = None,
        time_unit: str | None = None,
        header: bool | None = None,
        geometry: bool | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self._configure(layout, columns, separator, time_unit, header, geometry, width, height)
        super().__init__(path)
        self._out: Any = self._file
        self._stream = False

    @classmethod
    def to_stream(
        cls,
        stream: Any,
        *,
        layout: str = "csv",
        columns: str | Sequence[str] | None = None,
        separator: str | None = None,
        time_unit: str | None = None,
        header: bool | None = None,
        geometry: bool | None = None,
        width: int | None = None,
        height: int | None = None,
        name: str | None = None,
    ) -> TextWriter:
        """A writer straight into an open binary stream (``sys.stdout.buffer``, a pipe): no
        temporary file, flushed after every packet; :meth:`close` flushes but leaves the
        stream open. Errors of the stream (``BrokenPipeError``) reach the caller as they are.
        """
        if isinstance(stream, io.TextIOBase) or not hasattr(stream, "write"):
            raise TypeError(
                "to_stream needs a binary stream (e.g. sys.stdout.buffer), "
                f"got {type(stream).__name__}"
            )
        writer = cls.__new__(cls)
        writer._configure(layout, columns, separator, time_unit, header, geometry, width, height)
        writer.path = name or _stream_name(stream)
        writer._out = stream
        writer._stream = True
        writer._closed = False
        writer.unwritten = {}
        return writer

    def _configure(
        self,
        layout: str,
        columns: str | Sequence[str] | None,
        separator: str | None,
        time_unit: str | None,
        header: bool | None,
        geometry: bool | None,
        width: int | None,
        height: int | None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        preset = LAYOUTS[layout]
        if columns is None:
            names: tuple[str, ...] = preset["columns"]
        elif isinstance(columns, str):
            names = tuple(c.strip() for c in re.split(r"[,\s]+", columns.strip()))
        else:
            names = tuple(str(c) for c in columns)
        roles, _, problem = _roles(names)
        if problem:
            raise ValueError(f"columns {problem}")
        if kernels.ROLE_SKIP in roles:
            raise ValueError(f"columns to write must be t, x, y and p only, got {names}")
        separator = preset["separator"] if separator is None else separator
        separator_byte = _separator_byte(separator)
        assert separator_byte is not None
        unit = preset["time_unit"] if time_unit is None else time_unit
        if unit not in _UNIT_EXPONENT:
            raise ValueError(f"time_unit must be 'us', 'ms' or 's', got {unit!r}")
        self._size = check_sensor_size(width, height)
        self.width: int | None = self._size[0] if self._size else None
        self.height: int | None = self._size[1] if self._size else None
        self._roles = roles
        self._separator = separator_byte or (9 if separator == "\t" else 32)
        self._decimals = _UNIT_EXPONENT[unit]
        self._header = preset["header"] if header is None else bool(header)
        self._geometry = (layout == "openeb") if geometry is None else bool(geometry)
        if self._geometry and self._size is None and geometry:
            raise ValueError("geometry=True needs width and height")
        self._names = tuple(
            f"{_column_name(n)[0]}_{unit}"
            if unit != "us" and roles[i] == kernels.ROLE_T
            else _column_name(n)[0]
            for i, n in enumerate(names)
        )
        self._preamble_written = False
        """Triggers handed to the writer, which text cannot hold."""

    def _write_preamble(self) -> None:
        if self._preamble_written:
            return
        self._preamble_written = True
        lines = []
        if self._geometry and self._size is not None:
            lines.append(f"%geometry:{self._size[0]},{self._size[1]}\n")
        if self._header:
            lines.append(chr(self._separator).join(self._names) + "\n")
        if lines:
            self._out.write("".join(lines).encode())

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        # Readers keep 18 significant digits: a larger time would not read back.
        if len(events) and int(events["t"].max()) >= MAX_TIME_US:
            raise ValueError(
                f"text stores times below 10**18 µs (~31,700 years): got "
                f"t={int(events['t'].max())} µs"
            )
        self._write_preamble()
        if self._size is not None and len(events):
            width, height = self._size
            if int(events["x"].max()) >= width or int(events["y"].max()) >= height:
                raise ValueError(
                    f"events lie outside the {width}x{height} sensor "
                    f"(max x {int(events['x'].max())}, max y {int(events['y'].max())})"
                )
        line_bound = len(self._roles) * 22 + 1
        for start in range(0, len(events), _BLOCK_EVENTS):
            block = np.ascontiguousarray(events[start : start + _BLOCK_EVENTS])
            out = np.empty(len(block) * line_bound, np.uint8)
            count = format_kernels.format_lines(
                block, self._roles, self._separator, self._decimals, out
            )
            self._out.write(memoryview(out[:count]))  # type: ignore[arg-type]
        if self._stream:
            self._out.flush()

    def _finalize(self) -> None:
        self._write_preamble()

    def close(self) -> None:
        """Finish: move the file into place, or flush the stream (left open)."""
        if not self._stream:
            super().close()
            return
        if self._closed:
            return
        self._closed = True
        self._finalize()
        self._out.flush()
        self._log_unwritten()

    def abort(self) -> None:
        """Stop: discard the temporary file; a stream is left as it is."""
        if not self._stream:
            super().abort()
            return
        self._closed = True
