"""Slow, plain-Python reference reader and writer for aerflow's CSV / text format.

Written from the rules in ``aerflow.formats.text`` / ``_text_kernels`` docstrings and
``docs/formats/text.md``, not from the kernels, and importing nothing from aerflow. It works
on whole lines with ``bytes.split``, regular expressions and exact decimal arithmetic
(:class:`fractions.Fraction`):

* A UTF-8 byte-order mark is skipped. Lines end with ``\\n``; blanks are space, tab and ``\\r``.
* Preamble: blank lines and comment lines (first non-blank byte ``#`` or ``%``) are skipped; a
  ``%geometry:W,H`` comment before the header gives the sensor size. The first other line is
  a header when none of its fields is a number (or true/false); the line after it (or that
  line itself when it is not a header) is the first data line.
* Separator: the option; else ``,`` or ``;`` when the header (or first data) line holds one,
  else runs of blanks.
* Columns: the option; else the header's names; else ``x,y,p,t`` after ``%geometry``; else
  ``t,x,y,on``.
* Time unit: the option; else a unit in the time column's name (``t[s]``, ``t_ms``...); else
  seconds when the first data line's time holds ``.``, ``e`` or ``E``, else whole µs (a later
  fraction is then an error).
* Every line after the header line (all lines when there is none) is data, blank or comment.
  Fields are checked left to right, the first bad one reported; then the field count.
* Times keep 18 significant digits (later digits are dropped) and are rounded to the nearest
  µs, halves up; 10**18 µs or more is too large. Coordinates are decimal digits up to 65535.
  Polarity is 0, 1, -1, +1, true or false (any case).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["EVENTS", "ReferenceTextError", "TextResult", "read_text", "write_text"]

EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])

BLANKS = b" \t\r"
TIME_NAMES = {"t", "ts", "time", "timestamp"}
POLARITY_NAMES = {"p", "on", "pol", "polarity"}
UNITS = {"us": 0, "µs": 0, "ms": 3, "s": 6}
NUMBER = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
TIME = re.compile(rb"\+?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
GEOMETRY = re.compile(rb"%\s*geometry\s*[:=]?\s*([0-9]+)\s*[,x]\s*([0-9]+)\s*", re.IGNORECASE)
POLARITIES = {b"0": False, b"1": True, b"-1": False, b"+1": True, b"true": True, b"false": False}


class ReferenceTextError(Exception):
    """A malformed line (``line`` 1-based, ``offset`` in bytes) or a bad header."""

    def __init__(self, kind: str, line: int, offset: int) -> None:
        super().__init__(f"{kind} at line {line}, byte {offset}")
        self.kind = kind
        self.line = line
        self.offset = offset


@dataclass
class TextResult:
    events: np.ndarray
    dropped: int
    columns: tuple[str, ...]
    time_unit: str
    geometry: tuple[int, int] | None


def _is_number(field: bytes) -> bool:
    return NUMBER.fullmatch(field) is not None or field.lower() in (b"true", b"false")


def _detect_separator(line: bytes) -> bytes | None:
    if b"," in line:
        return b","
    if b";" in line:
        return b";"
    return None


def _fields(line: bytes, line_start: int, separator: bytes | None) -> list[tuple[bytes, int]]:
    """(field, offset of its first non-blank byte, or of what ends it when empty)."""
    if separator is None:
        return [(m.group(), line_start + m.start()) for m in re.finditer(rb"[^ \t\r]+", line)]
    out = []
    position = 0
    for piece in line.split(separator):
        lead = len(piece) - len(piece.lstrip(BLANKS))
        out.append((piece.strip(BLANKS), line_start + position + lead))
        position += len(piece) + 1
    return out


def _role(name: str) -> tuple[str, str | None]:
    """(role t/x/y/p/skip, unit named with a time column)."""
    name = name.strip().strip("\"'").strip().lower()
    if name in TIME_NAMES:
        return "t", None
    if name == "x" or name == "y":
        return name, None
    if name in POLARITY_NAMES:
        return "p", None
    for pattern in (r"([a-z]+)\s*[\[(]\s*(us|µs|ms|s)\s*[\])]", r"([a-z]+)_(us|ms|s)"):
        match = re.fullmatch(pattern, name)
        if match and match.group(1) in TIME_NAMES:
            return "t", match.group(2)
    return "skip", None


def _time_us(text: bytes, scale: int) -> int:
    match = TIME.fullmatch(text)
    assert match is not None
    whole, fraction, exponent = match.group(1), match.group(2) or b"", match.group(3)
    digits = (whole + fraction).decode()
    power = -len(fraction) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    if len(stripped) > 18:  # keep 18 significant digits
        power += len(stripped) - 18
        stripped = stripped[:18]
    value = Fraction(int(stripped or "0")) * Fraction(10) ** (power + scale)
    floor = value.numerator // value.denominator
    return floor + (1 if value - floor >= Fraction(1, 2) else 0)


def read_text(
    data: bytes,
    *,
    columns: str | Sequence[str] | None = None,
    separator: str | None = None,
    time_unit: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> TextResult:
    """Parse a whole text file. Raises ReferenceTextError at the first bad line."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    lines: list[tuple[bytes, int, int]] = []  # (line without '\n', offset, number)
    pieces = data[start:].split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()  # the newline ends the last line
    position = start
    for number, piece in enumerate(pieces, 1):
        lines.append((piece, position, number))
        position += len(piece) + 1

    geometry = None
    header: tuple[tuple[str, ...], int, int] | None = None
    first_data: bytes | None = None
    detected: bytes | None = None
    data_from = 0
    for index, (line, offset, line_number) in enumerate(lines):
        stripped = line.strip(BLANKS)
        if not stripped:
            continue
        if stripped[:1] in (b"#", b"%"):
            match = GEOMETRY.fullmatch(stripped)
            if match and header is None:
                geometry = int(match.group(1)), int(match.group(2))
            continue
        line_separator = _detect_separator(stripped)
        fields = [f for f, _ in _fields(stripped, 0, line_separator)]
        if header is None and not any(_is_number(f) for f in fields):
            names = tuple(f.decode("utf-8", "replace") for f in fields)
            header = (names, offset, line_number)
            detected = line_separator
            data_from = index + 1
            continue
        first_data = stripped
        if header is None:
            detected = line_separator
        break

    if separator is None:
        sep = detected
    elif separator in (" ", "\t", "whitespace"):
        sep = None
    else:
        sep = separator.encode()

    header_unit = None
    if isinstance(columns, str):
        columns = re.split(r"[,\s]+", columns.strip())
    if columns is not None:
        names = tuple(columns)
    elif header is not None:
        names = header[0]
    elif geometry is not None:
        names = ("x", "y", "p", "t")
    else:
        names = ("t", "x", "y", "on")
    roles = []
    for name in names:
        role, unit = _role(name)
        if role != "skip" and role in roles:
            if columns is not None:
                raise ValueError("duplicate column")
            assert header is not None
            raise ReferenceTextError("header", header[2], header[1])
        roles.append(role)
        if role == "t":
            header_unit = unit
    if not {"t", "x", "y", "p"} <= set(roles):
        if columns is not None:
            raise ValueError("missing column")
        assert header is not None
        raise ReferenceTextError("header", header[2], header[1])

    if (
        (width is None or height is None)
        and geometry is not None
        and not all(0 < v <= 1 << 16 for v in geometry)
    ):
        raise ValueError(f"impossible %geometry {geometry}")

    if time_unit is not None:
        unit, integer_only = time_unit, False
    elif header_unit is not None:
        unit, integer_only = header_unit, False
    else:
        unit, integer_only = "us", True
        if first_data is not None:
            fields = [f for f, _ in _fields(first_data, 0, sep)]
            t_index = roles.index("t")
            if len(fields) > t_index and re.search(rb"[.eE]", fields[t_index]):
                unit, integer_only = "s", False
    scale = UNITS[unit]
    size = (width, height) if width is not None and height is not None else geometry
    limit_x, limit_y = size if size is not None else (1 << 16, 1 << 16)

    rows = []
    dropped = 0
    for line, offset, line_number in lines[data_from:]:
        stripped = line.strip(BLANKS)
        if not stripped or stripped[:1] in (b"#", b"%"):
            continue
        values: dict[str, int | bool] = {}
        fields = _fields(line, offset, sep)
        for k, (field, at) in enumerate(fields):
            if k >= len(roles):
                raise ReferenceTextError("too many fields", line_number, at)
            role = roles[k]
            if role == "t":
                if re.match(rb"-[0-9.]", field):
                    raise ReferenceTextError("negative time", line_number, at)
                if not NUMBER.fullmatch(field) or field[:1] == b"-":
                    raise ReferenceTextError("bad time", line_number, at)
                if integer_only and not re.fullmatch(rb"\+?[0-9]+", field):
                    raise ReferenceTextError("fractional time", line_number, at)
                value = _time_us(field, scale)
                if value >= 10**18:
                    raise ReferenceTextError("time too large", line_number, at)
                values["t"] = value
            elif role in ("x", "y"):
                if re.match(rb"-[0-9]", field):
                    raise ReferenceTextError("negative coordinate", line_number, at)
                if not re.fullmatch(rb"[0-9]+", field):
                    raise ReferenceTextError("bad coordinate", line_number, at)
                if int(field) > 65535:
                    raise ReferenceTextError("coordinate too large", line_number, at)
                values[role] = int(field)
            elif role == "p":
                if field.lower() not in POLARITIES:
                    raise ReferenceTextError("bad polarity", line_number, at)
                values["p"] = POLARITIES[field.lower()]
        if len(fields) < len(roles):
            raise ReferenceTextError("too few fields", line_number, offset + len(line))
        if int(values["x"]) < limit_x and int(values["y"]) < limit_y:
            rows.append((values["t"], values["x"], values["y"], values["p"]))
        else:
            dropped += 1
    events = np.array(rows, dtype=EVENTS) if rows else np.empty(0, EVENTS)
    return TextResult(events, dropped, tuple(names), unit, geometry)


def write_text(
    events: np.ndarray,
    *,
    columns: Sequence[str] = ("t", "x", "y", "on"),
    separator: str = ",",
    time_unit: str = "us",
    header: bool = True,
    geometry: tuple[int, int] | None = None,
) -> bytes:
    """The text aerflow's writer should produce for ``events``."""
    out = []
    if geometry is not None:
        out.append(f"%geometry:{geometry[0]},{geometry[1]}\n")
    roles = [_role(c)[0] for c in columns]
    if header:
        names = [
            f"{c}_{time_unit}" if role == "t" and time_unit != "us" else c
            for c, role in zip(columns, roles, strict=True)
        ]
        out.append(separator.join(names) + "\n")
    decimals = UNITS[time_unit]
    for t, x, y, on in events.tolist():
        fields = []
        for role in roles:
            if role == "t":
                if decimals:
                    whole, part = divmod(t, 10**decimals)
                    fields.append(f"{whole}.{part:0{decimals}d}")
                else:
                    fields.append(str(t))
            elif role == "x":
                fields.append(str(x))
            elif role == "y":
                fields.append(str(y))
            else:
                fields.append("1" if on else "0")
        out.append(separator.join(fields) + "\n")
    return "".join(out).encode()
