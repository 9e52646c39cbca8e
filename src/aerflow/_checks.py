"""Checks of the arguments users pass to public functions, shared so every entry point
refuses the same values with the same words."""

from __future__ import annotations

import operator
import sys
from typing import Any

__all__ = [
    "MAX_SENSOR_SIDE",
    "check_dimension",
    "check_format_name",
    "check_int",
    "check_sensor_size",
]

MAX_SENSOR_SIDE = 1 << 16


def _is_bool(value: Any) -> bool:
    """A Python or NumPy bool. NumPy is not imported for this: a value can only be a
    ``numpy.bool_`` once NumPy is loaded, so the command line starts without it."""
    if isinstance(value, bool):
        return True
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.bool_)


def check_int(value: Any, name: str) -> int:
    """``value`` as an int, or a TypeError for anything that is not an integer: ``int()``
    would quietly turn ``True`` into 1, ``1280.5`` into 1280 and ``"640"`` into 640."""
    if _is_bool(value):
        raise TypeError(f"{name} must be an int, got a bool ({value!r})")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})") from None


def check_dimension(value: Any, name: str, *, low: int = 1, high: int = MAX_SENSOR_SIDE) -> int:
    """``value`` as an int in ``low..high`` (TypeError for a non-integer, ValueError
    outside the range)."""
    number = check_int(value, name)
    if not low <= number <= high:
        raise ValueError(f"{name} must lie in {low}..{high}, got {number}")
    return number


def check_sensor_size(width: Any, height: Any) -> tuple[int, int] | None:
    """A sensor size given by the user: both or neither, each an int in 1..65536."""
    if width is None and height is None:
        return None
    if width is None or height is None:
        raise ValueError("give both width and height, or neither")
    width, height = check_int(width, "width"), check_int(height, "height")
    if not (0 < width <= MAX_SENSOR_SIDE and 0 < height <= MAX_SENSOR_SIDE):
        raise ValueError(f"sensor size {width}x{height} is outside 1..{MAX_SENSOR_SIDE}")
    return width, height


def check_format_name(format: Any) -> str | None:
    """A ``format=`` argument: None (find it) or a name such as ``"evt3"``."""
    if format is not None and not isinstance(format, str):
        raise TypeError(
            f"format must be a format name such as 'evt3' (a str), got "
            f"{type(format).__name__} ({format!r})"
        )
    return format
