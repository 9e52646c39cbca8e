"""The event model: dtypes, packets, conversion of other libraries' layouts, time parsing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EVENTS_DTYPE",
    "IMU_DTYPE",
    "TRIGGERS_DTYPE",
    "Frame",
    "Packet",
    "as_events",
    "concatenate_packets",
    "empty_events",
    "empty_imu",
    "empty_triggers",
    "parse_time",
]

EVENTS_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), (("p", "on"), "?")])
"""Packed 13-byte events: time in µs, column, row, polarity (True = ON). ``on`` is titled ``p``."""

TRIGGERS_DTYPE = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])
"""External trigger edges: time in µs, input channel, rising (True) or falling edge."""


IMU_DTYPE = np.dtype(
    [
        ("t", "<u8"),
        ("temperature", "<f4"),
        ("accelerometer", "<f4", (3,)),
        ("gyroscope", "<f4", (3,)),
        ("magnetometer", "<f4", (3,)),
    ]
)
"""Inertial samples: time in µs, °C, acceleration in g, rotation in °/s, field in µT (x, y, z).
Quantities a device does not measure are NaN."""


def empty_events() -> npt.NDArray[Any]:
    return np.empty(0, dtype=EVENTS_DTYPE)


def empty_triggers() -> npt.NDArray[Any]:
    return np.empty(0, dtype=TRIGGERS_DTYPE)


def empty_imu() -> npt.NDArray[Any]:
    return np.empty(0, dtype=IMU_DTYPE)


@dataclass(frozen=True, slots=True)
class Frame:
    """An intensity image (DAVIS APS, AEDAT 4 frames) with its timing in µs.

    ``pixels`` is indexed ``[y, x]`` (``(H, W)`` grey or ``(H, W, C)`` colour) and covers the
    sensor region starting at (``x``, ``y``).
    """

    t: int
    pixels: npt.NDArray[Any]
    exposure_start: int | None = None
    exposure_end: int | None = None
    x: int = 0
    y: int = 0


@dataclass(frozen=True, slots=True)
class Packet:
    """What a stream yields: events plus the side channels that came with them, in file order."""

    events: npt.NDArray[Any]
    triggers: npt.NDArray[Any] = field(default_factory=empty_triggers)
    imu: npt.NDArray[Any] = field(default_factory=empty_imu)
    frames: tuple[Frame, ...] = ()

    def __len__(self) -> int:
        return len(self.events)


def concatenate_packets(packets: Sequence[Packet]) -> Packet:
    """One packet holding every channel of ``packets`` in order."""
    if len(packets) == 1:
        return packets[0]
    if not packets:
        return Packet(empty_events())
    return Packet(
        np.concatenate([p.events for p in packets]),
        np.concatenate([p.triggers for p in packets]),
        np.concatenate([p.imu for p in packets]),
        tuple(frame for p in packets for frame in p.frames),
    )


_TIME_NAMES = ("t", "timestamp", "ts", "time")
_POLARITY_NAMES = ("on", "p", "polarity", "pol")


def _field(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    for candidate in candidates:
        if candidate in names:
            return candidate
    return None


def as_events(
    array: npt.ArrayLike, *, columns: Sequence[str] = ("t", "x", "y", "on")
) -> npt.NDArray[Any]:
    """Return ``array`` as :data:`EVENTS_DTYPE` events.

    Accepts structured arrays with fields named ``t``/``timestamp``, ``x``, ``y`` and
    ``on``/``p``/``polarity`` in any order and any integer types (faery, aedat, event-stream,
    tonic, expelliarmus, dv-processing, Metavision layouts), and 2-D numeric arrays whose
    columns are named by ``columns``. Where the bytes already match, the result is a view
    (no copy); otherwise a new array. Polarity is ON when the value is > 0, so 0/1, -1/+1 and
    booleans all work.
    """
    arr = np.asarray(array)
    if arr.dtype == EVENTS_DTYPE:
        return arr
    if arr.dtype.names is None:
        return _from_columns(arr, columns)
    names = arr.dtype.names
    t_name = _field(names, _TIME_NAMES)
    p_name = _field(names, _POLARITY_NAMES)
    if t_name is None or p_name is None or "x" not in names or "y" not in names:
        raise ValueError(
            f"cannot read events from fields {names}: expected t (or timestamp), x, y and "
            "on (or p, polarity)"
        )
    if _same_bytes(arr.dtype, t_name, p_name):
        return arr.view(EVENTS_DTYPE)
    return _assemble(arr[t_name], arr["x"], arr["y"], arr[p_name])


def _same_bytes(dtype: np.dtype[Any], t_name: str, p_name: str) -> bool:
    fields = dtype.fields
    assert fields is not None
    expected = {t_name: ("<u8", 0), "x": ("<u2", 8), "y": ("<u2", 10), p_name: ("|b1", 12)}
    if dtype.itemsize != EVENTS_DTYPE.itemsize or len(dtype.names or ()) != 4:
        return False
    for name, (kind, offset) in expected.items():
        field_dtype, field_offset = fields[name][:2]
        if field_dtype.str != kind or field_offset != offset:
            return False
    return True


def _from_columns(arr: npt.NDArray[Any], columns: Sequence[str]) -> npt.NDArray[Any]:
    if arr.ndim != 2 or arr.shape[1] != len(columns):
        raise ValueError(
            f"an unstructured array must be 2-D with {len(columns)} columns {tuple(columns)}, "
            f"got shape {arr.shape}"
        )
    index = {name: i for i, name in enumerate(columns)}
    t_name = _field(list(index), _TIME_NAMES)
    p_name = _field(list(index), _POLARITY_NAMES)
    if t_name is None or p_name is None or "x" not in index or "y" not in index:
        raise ValueError(f"columns {tuple(columns)} must name t, x, y and on")
    return _assemble(
        arr[:, index[t_name]], arr[:, index["x"]], arr[:, index["y"]], arr[:, index[p_name]]
    )


def _checked_unsigned(values: npt.NDArray[Any], name: str, dtype: str) -> npt.NDArray[Any]:
    if values.dtype.kind == "f":
        if values.size and not np.all(np.isfinite(values) & (values == np.round(values))):
            raise ValueError(f"{name} holds non-integer values; convert them to integers first")
    elif values.dtype.kind not in "uib":
        raise TypeError(f"{name} must be numeric, got {values.dtype}")
    limit = np.iinfo(dtype).max
    if values.size and (values.min() < 0 or values.max() > limit):
        raise ValueError(f"{name} must lie in [0, {limit}]")
    return values.astype(dtype, copy=False)


def _assemble(
    t: npt.NDArray[Any], x: npt.NDArray[Any], y: npt.NDArray[Any], p: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    out = np.empty(len(t), dtype=EVENTS_DTYPE)
    out["t"] = _checked_unsigned(np.asarray(t), "t", "u8")
    out["x"] = _checked_unsigned(np.asarray(x), "x", "u2")
    out["y"] = _checked_unsigned(np.asarray(y), "y", "u2")
    out["on"] = np.asarray(p) > 0
    return out


_UNITS_US = {
    "us": 1,
    "µs": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "min": 60_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|min|m|h)\s*$")
_CLOCK = re.compile(r"^\s*(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)\s*$")


def parse_time(value: str | int) -> int:
    """Return a duration or timestamp in integer microseconds.

    Integers are microseconds already. Strings take a unit (``"250us"``, ``"10ms"``,
    ``"2.5s"``, ``"3min"``, ``"1h"``) or a clock form ``"M:SS.f"`` / ``"H:MM:SS.f"``
    (``"1:02.5"`` is 62.5 s; fields after a colon must be below 60). Fractions of a
    microsecond are rounded to the nearest one.
    """
    if isinstance(value, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"time must not be negative, got {value}")
        return int(value)
    if not isinstance(value, str):
        raise TypeError(f"time must be an int (µs) or a string like '10ms', got {value!r}")
    if value.strip().isdigit():
        return int(value)
    match = _QUANTITY.match(value)
    if match:
        number, unit = match.groups()
        return _round_us(number, _UNITS_US[unit])
    match = _CLOCK.match(value)
    if match:
        hours, minutes, seconds = match.groups()
        # The leading field may run over (90:00 is 90 minutes); the others are clock digits.
        if int(seconds.partition(".")[0]) >= 60 or (hours is not None and int(minutes) >= 60):
            raise ValueError(
                f"cannot read {value!r} as a time: minutes and seconds after a ':' must be below 60"
            )
        whole = (int(hours or 0) * 60 + int(minutes)) * 60_000_000
        return whole + _round_us(seconds, 1_000_000)
    raise ValueError(f"cannot read {value!r} as a time: use e.g. '250us', '10ms', '2.5s', '1:02.5'")


def _round_us(number: str, scale: int) -> int:
    # Decimal-exact scaling: float("0.1") * 1e6 would be off by rounding in the last place.
    whole, _, fraction = number.partition(".")
    denominator = int("1" + "0" * len(fraction))
    numerator = int(whole or "0") * scale * denominator + int(fraction or "0") * scale
    return (2 * numerator + denominator) // (2 * denominator)
