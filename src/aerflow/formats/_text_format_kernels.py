"""Numba kernel of the CSV / text writer: events formatted as lines of decimal fields."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import njit
from ._text_kernels import _DOT, _NL, _TEN, _ZERO, ROLE_P, ROLE_T, ROLE_X, ROLE_Y

__all__ = ["format_lines"]


@njit(nogil=True, cache=True, inline="always")
def _put_unsigned(out: Any, k: int, value: int, min_digits: int) -> int:
    """Write ``value`` in decimal (zero-padded to ``min_digits``) at ``out[k]``; new k."""
    digits = 1
    probe = value // _TEN
    while probe > 0:
        digits += 1
        probe //= _TEN
    if digits < min_digits:
        digits = min_digits
    for j in range(digits - 1, -1, -1):
        out[k + j] = np.uint8(value % _TEN) + _ZERO
        value //= _TEN
    return k + digits


@njit(nogil=True, cache=True)
def format_lines(events: Any, roles: Any, separator: int, decimals: int, out: Any) -> int:
    """Write one line per event into ``out`` (bytes): fields in ``roles`` order joined by
    ``separator``, times with ``decimals`` (0, 3 or 6) digits after the point, polarity 1/0,
    each line ending with a newline. Returns the bytes written (``out`` must hold at least
    ``events.size * (roles.size * 22 + 1)``)."""
    k = 0
    n_fields = roles.size
    divisor = np.uint64(1)
    for _ in range(decimals):
        divisor *= np.uint64(10)
    for i in range(events.size):
        event = events[i]
        for f in range(n_fields):
            if f > 0:
                out[k] = separator
                k += 1
            role = roles[f]
            if role == ROLE_T:
                t = np.uint64(event.t)
                if decimals == 0:
                    k = _put_unsigned(out, k, t, 1)
                else:
                    k = _put_unsigned(out, k, t // divisor, 1)
                    out[k] = _DOT
                    k = _put_unsigned(out, k + 1, t % divisor, decimals)
            elif role == ROLE_X:
                k = _put_unsigned(out, k, np.uint64(event.x), 1)
            elif role == ROLE_Y:
                k = _put_unsigned(out, k, np.uint64(event.y), 1)
            elif role == ROLE_P:
                out[k] = _ZERO + (1 if event.on else 0)
                k += 1
        out[k] = _NL
        k += 1
    return k
