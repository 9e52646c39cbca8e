"""Numba kernels of the CSV / text format: the line parser (the formatter is
``_text_format_kernels``).

The parser reads whole lines only. Given a buffer that ends mid-line it stops at the start
of that line and says how many bytes it consumed, so the caller keeps the tail and calls
again with more data (``final`` marks the end of the input, where a last line needs no
newline). It stops at the first malformed line and records why and where in ``state``.

Line rules (``tests/reference/text.py`` states them again, in plain Python):

* blanks are space, tab and carriage return; a line holding only blanks is skipped, and so is
  a line whose first non-blank byte is ``#`` or ``%`` (a comment);
* fields are separated by one separator byte (blanks around a field are ignored) or, in
  whitespace mode (``separator == 0``), by runs of blanks;
* each line has exactly ``roles.size`` fields; the role of a field says what it holds:
  a time (a decimal number ``[+]digits[.digits][e[+-]digits]`` of which 18 significant
  digits are kept, scaled to µs by ``10**scale`` and rounded to the nearest µs, halves up;
  10**18 µs or more is too large), a coordinate (decimal digits, at most 65535), a polarity
  (``0``, ``1``, ``-1``, ``+1``, ``true``, ``false``, any case) or anything (an ignored
  column).

Most lines take a fast path (plain digits, one-byte separators); any other line, and every
error, goes through ``_parse_line``, which implements all the rules.

A last line without a newline may be the start of a longer line that a copy or a crash cut
short. The parser takes it as *torn*, drops it and notes where (``S_TORN``, for the caller's
``TruncatedDataWarning``) when it has fewer fields than columns or a field that a cut can
leave unparsable (a time, coordinate or polarity that is not one), and also when it parses
but its last column is a number (a time or a coordinate, as in OpenEB's ``x,y,p,t``) that
runs to the last byte: a cut inside that number leaves a shorter number, which cannot be
told from a whole one, and keeping it would invent a value. Other errors (too many fields,
a negative or too large value) cannot come from a cut and are reported as usual; a last
line ending in a polarity or an ignored column is kept, since a cut there leaves no valid
polarity or drops nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit

__all__ = [
    "ERR_BAD_COORDINATE",
    "ERR_BAD_POLARITY",
    "ERR_BAD_TIME",
    "ERR_COORDINATE_TOO_LARGE",
    "ERR_FRACTIONAL_TIME",
    "ERR_NEGATIVE_COORDINATE",
    "ERR_NEGATIVE_TIME",
    "ERR_TIME_TOO_LARGE",
    "ERR_TOO_FEW_FIELDS",
    "ERR_TOO_MANY_FIELDS",
    "ROLE_P",
    "ROLE_SKIP",
    "ROLE_T",
    "ROLE_X",
    "ROLE_Y",
    "STATE_SIZE",
    "S_DROPPED",
    "S_ERROR",
    "S_ERROR_AT",
    "S_ERROR_FIELD",
    "S_LINES",
    "S_TORN",
    "S_TORN_CODE",
    "count_newlines",
    "next_newline",
    "parse_lines",
]

ROLE_SKIP, ROLE_T, ROLE_X, ROLE_Y, ROLE_P = range(5)

# Error codes (0: none).
ERR_BAD_TIME = 1
ERR_NEGATIVE_TIME = 2
ERR_FRACTIONAL_TIME = 3
ERR_TIME_TOO_LARGE = 4
ERR_BAD_COORDINATE = 5
ERR_NEGATIVE_COORDINATE = 6
ERR_COORDINATE_TOO_LARGE = 7
ERR_BAD_POLARITY = 8
ERR_TOO_FEW_FIELDS = 9
ERR_TOO_MANY_FIELDS = 10

# State slots. S_TORN is 0, or -(offset + 1) of a torn last line in the data given to
# parse_lines (callers may turn it into an absolute offset + 1, a positive value);
# S_TORN_CODE says why it is torn: the error code, or 0 for a number in the last column.
S_LINES, S_DROPPED, S_ERROR, S_ERROR_AT, S_ERROR_FIELD, S_TORN, S_TORN_CODE = range(7)
STATE_SIZE = 7

_INCOMPLETE = -1  # the line runs past the end of a non-final buffer
_SKIPPED = -2  # blank or comment line
_NL, _CR, _SPACE, _TAB = 10, 13, 32, 9
_PLUS, _MINUS, _DOT = 43, 45, 46
_ZERO, _NINE = 48, 57
_HASH, _PERCENT = 35, 37
_COORDINATE_MAX = 65535
_TEN = np.uint64(10)
_MANTISSA_LIMIT = 10**17  # numbers keep 18 significant digits
_POW10 = np.array([10**k for k in range(19)], np.int64)


@njit(nogil=True, cache=True, inline="always")
def _blank(c: int) -> bool:
    return c in (_SPACE, _TAB, _CR)


@njit(nogil=True, cache=True, inline="always")
def _digit(c: int) -> bool:
    return _ZERO <= c <= _NINE


@njit(nogil=True, cache=True, inline="always")
def _lower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


@njit(nogil=True, cache=True)
def _scale_time(digits: int, exponent: int) -> tuple[int, int]:
    """``digits * 10**exponent`` (``digits`` < 10**18) rounded to the nearest integer, halves
    up: (value, error code); values of 10**18 or more are too large."""
    if digits == 0:
        return 0, 0
    if exponent >= 0:
        if exponent > 18 or digits >= _POW10[18 - exponent]:
            return 0, ERR_TIME_TOO_LARGE
        return digits * _POW10[exponent], 0
    if exponent < -18:  # below 10**18 / 10**19: less than a tenth
        return 0, 0
    power = _POW10[-exponent]
    whole = digits // power
    if 2 * (digits - whole * power) >= power:
        whole += 1
    return whole, 0


@njit(nogil=True, cache=True)
def _parse_line(
    data: Any,
    start: int,
    size: int,
    final: bool,
    roles: Any,
    separator: int,
    scale: int,
    integer_time: bool,
    values: Any,
) -> tuple[int, int, int, int]:
    """Parse the line at ``start``: (status, end, error offset, error field).

    ``status`` is 0 for an event (stored in ``values``: t, x, y, on), ``_SKIPPED``,
    ``_INCOMPLETE`` or an error code; ``end`` is the index after the line's newline.
    """
    n_fields = roles.size
    whitespace = separator == 0
    i = start
    while i < size and _blank(data[i]):
        i += 1
    if i >= size:
        if final:
            return _SKIPPED, size, 0, 0
        return _INCOMPLETE, start, 0, 0
    c = data[i]
    if c == _NL:
        return _SKIPPED, i + 1, 0, 0
    if c == _HASH or c == _PERCENT:  # noqa: SIM109
        while i < size and data[i] != _NL:
            i += 1
        if i >= size:
            if final:
                return _SKIPPED, size, 0, 0
            return _INCOMPLETE, start, 0, 0
        return _SKIPPED, i + 1, 0, 0
    field = 0
    while True:
        # i: first non-blank byte of field ``field`` (or the byte that ends an empty field).
        if field >= n_fields:
            return ERR_TOO_MANY_FIELDS, 0, i, field
        role = roles[field]
        field_start = i
        bad = 0
        had_fraction = False
        digits = np.int64(0)
        exponent = 0
        if role == ROLE_T:
            if i < size and data[i] == _PLUS:
                i += 1
            elif (
                i + 1 < size and data[i] == _MINUS and (_digit(data[i + 1]) or data[i + 1] == _DOT)
            ):
                bad = ERR_NEGATIVE_TIME
            any_digit = False
            while bad == 0 and i < size and _digit(data[i]):
                any_digit = True
                if digits < _MANTISSA_LIMIT:
                    digits = digits * 10 + (data[i] - _ZERO)
                else:
                    exponent += 1  # past 18 significant digits: ignored
                i += 1
            if bad == 0 and i < size and data[i] == _DOT:
                had_fraction = True
                i += 1
                while i < size and _digit(data[i]):
                    any_digit = True
                    if digits < _MANTISSA_LIMIT:
                        digits = digits * 10 + (data[i] - _ZERO)
                        exponent -= 1
                    i += 1
            if bad == 0 and not any_digit:
                bad = ERR_BAD_TIME
            if bad == 0 and i < size and (data[i] == 101 or data[i] == 69):  # e, E
                had_fraction = True
                i += 1
                negative = False
                if i < size and (data[i] == _PLUS or data[i] == _MINUS):
                    negative = data[i] == _MINUS
                    i += 1
                if i >= size or not _digit(data[i]):
                    bad = ERR_BAD_TIME
                power = 0
                while bad == 0 and i < size and _digit(data[i]):
                    if power < 100000:
                        power = power * 10 + (data[i] - _ZERO)
                    i += 1
                exponent += -power if negative else power
        elif role == ROLE_X or role == ROLE_Y:  # noqa: SIM109
            if i + 1 < size and data[i] == _MINUS and _digit(data[i + 1]):
                bad = ERR_NEGATIVE_COORDINATE
            elif i >= size or not _digit(data[i]):
                bad = ERR_BAD_COORDINATE
            while bad == 0 and i < size and _digit(data[i]):
                if digits <= _COORDINATE_MAX:
                    digits = digits * 10 + (data[i] - _ZERO)
                i += 1
        elif role == ROLE_P:
            # 0, 1, -1, +1, true, false (any case)
            if i < size and data[i] == _ZERO:
                digits = 0
                i += 1
            elif i < size and data[i] == _ZERO + 1:
                digits = 1
                i += 1
            elif i + 1 < size and data[i] == _MINUS and data[i + 1] == _ZERO + 1:
                digits = 0
                i += 2
            elif i + 1 < size and data[i] == _PLUS and data[i + 1] == _ZERO + 1:
                digits = 1
                i += 2
            elif (
                i + 3 < size
                and _lower(data[i]) == 116  # t
                and _lower(data[i + 1]) == 114  # r
                and _lower(data[i + 2]) == 117  # u
                and _lower(data[i + 3]) == 101  # e
            ):
                digits = 1
                i += 4
            elif (
                i + 4 < size
                and _lower(data[i]) == 102  # f
                and _lower(data[i + 1]) == 97  # a
                and _lower(data[i + 2]) == 108  # l
                and _lower(data[i + 3]) == 115  # s
                and _lower(data[i + 4]) == 101  # e
            ):
                digits = 0
                i += 5
            else:
                bad = ERR_BAD_POLARITY
        else:  # an ignored column: up to the next separator (or blank) or the line end
            while i < size:
                c = data[i]
                if c == _NL or (c == separator if not whitespace else _blank(c)):
                    break
                i += 1
            # trailing blanks in separator mode belong to the field, harmlessly
        # The field ends here: blanks, then a separator, the newline or the end of data.
        after_value = i
        while i < size and _blank(data[i]):
            i += 1
        if i >= size and not final:
            return _INCOMPLETE, start, 0, 0
        at_end = i >= size or data[i] == _NL
        ends_field = at_end or (
            (not whitespace and data[i] == separator) or (whitespace and i > after_value)
        )
        if bad == 0 and not ends_field:
            if role == ROLE_T:
                bad = ERR_BAD_TIME
            elif role == ROLE_P:
                bad = ERR_BAD_POLARITY
            else:
                bad = ERR_BAD_COORDINATE
        if bad != 0:
            # An error is only reported for a complete line.
            j = i
            while j < size and data[j] != _NL:
                j += 1
            if j >= size and not final:
                return _INCOMPLETE, start, 0, 0
            return bad, 0, field_start, field
        if role == ROLE_T:
            if integer_time and had_fraction:
                return _complete_or(
                    ERR_FRACTIONAL_TIME, data, i, size, final, start, field_start, field
                )
            value, error = _scale_time(digits, exponent + scale)
            if error != 0:
                return _complete_or(error, data, i, size, final, start, field_start, field)
            values[0] = value
        elif role == ROLE_X or role == ROLE_Y:  # noqa: SIM109
            if digits > _COORDINATE_MAX:
                return _complete_or(
                    ERR_COORDINATE_TOO_LARGE, data, i, size, final, start, field_start, field
                )
            values[1 if role == ROLE_X else 2] = digits
        elif role == ROLE_P:
            values[3] = digits
        field += 1
        if at_end:
            if field < n_fields:
                return _complete_or(ERR_TOO_FEW_FIELDS, data, i, size, final, start, i, field)
            return 0, (i + 1 if i < size else size), 0, 0
        if not whitespace:
            i += 1  # the separator
            while i < size and _blank(data[i]):
                i += 1
            if i >= size and not final:
                return _INCOMPLETE, start, 0, 0


@njit(nogil=True, cache=True)
def _complete_or(
    error: int, data: Any, i: int, size: int, final: bool, start: int, at: int, field: int
) -> tuple[int, int, int, int]:
    """``error`` at ``at`` if the line is complete, else incomplete (more data may come)."""
    while i < size and data[i] != _NL:
        i += 1
    if i >= size and not final:
        return _INCOMPLETE, start, 0, 0
    return error, 0, at, field


@njit(nogil=True, cache=True)
def parse_lines(
    data: Any,
    state: Any,
    roles: Any,
    separator: int,
    scale: int,
    integer_time: bool,
    width: int,
    height: int,
    final: bool,
    events: Any,
    n: int,
) -> tuple[int, int]:
    """Parse the complete lines of ``data`` into ``events[n:]``: (bytes consumed, new n).

    Stops before a line that runs past the end of ``data`` (unless ``final``), when
    ``events`` is full, or at a malformed line (``state[S_ERROR]`` then holds its error code,
    ``state[S_ERROR_AT]`` the offset in ``data`` and ``state[S_ERROR_FIELD]`` the field;
    the bytes consumed end where that line starts). ``state[S_LINES]`` counts the newlines
    consumed and ``state[S_DROPPED]`` the events outside ``width`` x ``height``.
    """
    size = data.size
    capacity = events.size
    lines = state[S_LINES]
    dropped = state[S_DROPPED]
    values = np.zeros(4, np.int64)
    n_fields = roles.size
    whitespace = separator == 0
    i = 0
    while i < size and n < capacity:
        # Fast path: plain digits, single separators, '\n' or '\r\n' line ends. Anything
        # else (and every error) goes to the careful parser below, which agrees with it.
        j = i
        ok = True
        t = np.int64(0)
        x = np.int64(0)
        y = np.int64(0)
        p = np.int64(0)
        for f in range(n_fields):
            role = roles[f]
            if role == ROLE_T:
                mantissa = np.int64(0)
                start = j
                while j < size:
                    d = np.int64(data[j]) - _ZERO
                    if d < 0 or d > 9:
                        break
                    mantissa = mantissa * 10 + d
                    j += 1
                whole_digits = j - start
                fraction_digits = 0
                if j < size and data[j] == _DOT:
                    if integer_time:
                        ok = False
                        break
                    j += 1
                    start = j
                    while j < size:
                        d = np.int64(data[j]) - _ZERO
                        if d < 0 or d > 9:
                            break
                        mantissa = mantissa * 10 + d
                        j += 1
                    fraction_digits = j - start
                digits = whole_digits + fraction_digits
                if digits == 0 or digits > 18:
                    ok = False
                    break
                exponent = scale - fraction_digits
                if exponent == 0:
                    t = mantissa
                elif exponent > 0:
                    if mantissa >= _POW10[18 - exponent]:
                        ok = False
                        break
                    t = mantissa * _POW10[exponent]
                else:
                    power = _POW10[-exponent]
                    whole = mantissa // power
                    if 2 * (mantissa - whole * power) >= power:
                        whole += 1
                    t = whole
            elif role == ROLE_X or role == ROLE_Y:  # noqa: SIM109
                value = np.int64(0)
                start = j
                while j < size:
                    d = np.int64(data[j]) - _ZERO
                    if d < 0 or d > 9:
                        break
                    value = value * 10 + d
                    j += 1
                if j == start or j - start > 5 or value > _COORDINATE_MAX:
                    ok = False
                    break
                if role == ROLE_X:
                    x = value
                else:
                    y = value
            elif role == ROLE_P and j < size and (data[j] == _ZERO or data[j] == _ZERO + 1):
                p = np.int64(data[j]) - _ZERO
                j += 1
            else:
                ok = False
                break
            if f + 1 < n_fields:
                if j >= size:
                    ok = False
                    break
                c = data[j]
                if whitespace:
                    if c != _SPACE and c != _TAB:
                        ok = False
                        break
                    j += 1
                    while j < size and (data[j] == _SPACE or data[j] == _TAB):
                        j += 1
                elif c == separator:
                    j += 1
                else:
                    ok = False
                    break
            else:
                if j < size and data[j] == _CR:
                    j += 1
                if j < size and data[j] == _NL:
                    j += 1
                else:
                    ok = False
        if ok:
            lines += 1
            if x < width and y < height:
                event = events[n]
                event.t = np.uint64(t)
                event.x = np.uint16(x)
                event.y = np.uint16(y)
                event.on = p != 0
                n += 1
            else:
                dropped += 1
            i = j
            continue
        status, end, error_at, error_field = _parse_line(
            data, i, size, final, roles, separator, scale, integer_time, values
        )
        if status == _INCOMPLETE:
            break
        if final and status != _SKIPPED and _torn(data, i, end, status, roles):
            state[S_TORN] = -(i + 1)
            state[S_TORN_CODE] = status
            i = size
            break
        if status > 0:
            state[S_ERROR] = status
            state[S_ERROR_AT] = error_at
            state[S_ERROR_FIELD] = error_field
            break
        if end > 0 and data[end - 1] == _NL:
            lines += 1
        if status == 0:
            if values[1] < width and values[2] < height:
                event = events[n]
                event.t = np.uint64(values[0])
                event.x = np.uint16(values[1])
                event.y = np.uint16(values[2])
                event.on = values[3] != 0
                n += 1
            else:
                dropped += 1
        i = end
    state[S_LINES] = lines
    state[S_DROPPED] = dropped
    return i, n


@njit(nogil=True, cache=True)
def _torn(data: Any, start: int, end: int, status: int, roles: Any) -> bool:
    """Whether the line at ``start`` of final data, parsed with ``status``, is a torn last
    line (see the module's docstring)."""
    if status == 0:
        # A newline, or a blank after the value (a CRLF file cut before its LF), shows that
        # the last field ended.
        if end < data.size or data[data.size - 1] == _NL or _blank(data[data.size - 1]):
            return False
        return roles[roles.size - 1] in (ROLE_T, ROLE_X, ROLE_Y)
    if next_newline(data, start) >= 0:
        return False
    return status in (ERR_TOO_FEW_FIELDS, ERR_BAD_TIME, ERR_BAD_COORDINATE, ERR_BAD_POLARITY)


@njit(nogil=True, cache=True)
def count_newlines(data: Any) -> int:
    """How many newline bytes ``data`` holds."""
    count = 0
    for i in range(data.size):
        count += data[i] == _NL
    return count


@njit(nogil=True, cache=True)
def next_newline(data: Any, start: int) -> int:
    """The index of the first newline at or after ``start``, or -1."""
    for i in range(start, data.size):
        if data[i] == _NL:
            return i
    return -1
