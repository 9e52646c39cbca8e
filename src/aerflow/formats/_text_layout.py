"""The layout of CSV / text lines, shared by the reader and the writer: column names and
the role the parser gives each (a time unit named with the time column, faery's ``x@W``
sizes), separators, the preamble before the data lines (a byte-order mark, ``%geometry``,
comments, a header) and the plan the parser follows (roles, separator, time unit, sensor
size). The rules themselves are told in :mod:`aerflow.formats.text`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, TextFormatError
from . import _text_kernels as kernels
from ._base import check_sensor_size

MAX_LINE = 1 << 20
"""A line may be this long (or as long as ``chunk_size``, if larger) before it is refused."""

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
