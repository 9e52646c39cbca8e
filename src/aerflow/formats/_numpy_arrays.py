"""Arrays read from ``.npy`` and ``.npz`` files turned into events and triggers: the layout
checks made on opening, the conversion of each block (with the first item that cannot be
stored named in the error), and the readers' options shared by both formats (packet size,
column names)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError
from ..events import TRIGGERS_DTYPE, as_events
from ._numpy_header import _ArrayInfo

DEFAULT_CHUNK_EVENTS = 1 << 18
"""Events per packet (about 3.4 MB of events)."""

_TIME_NAMES = ("t", "timestamp", "ts", "time")
_POLARITY_NAMES = ("on", "p", "polarity", "pol")


def _check_layout(info: _ArrayInfo, columns: Sequence[str], path: str, what: str) -> None:
    """Refuse arrays that no block of can become events."""
    dtype = info.dtype
    if dtype.hasobject:
        raise FormatError(
            f"{what} holds Python objects (a ragged or pickled array); aerflow reads numeric "
            "arrays only",
            path=path,
            offset=0,
        )
    if dtype.names is not None:
        if len(info.shape) != 1:
            raise FormatError(
                f"{what} is a structured array of shape {info.shape}; expected one dimension",
                path=path,
                offset=0,
            )
        try:
            as_events(np.zeros(0, dtype))
        except (ValueError, TypeError) as error:
            raise FormatError(f"{what}: {error}", path=path, offset=0) from None
        return
    if len(info.shape) != 2 or info.shape[1] != len(columns):
        raise FormatError(
            f"{what} has shape {info.shape}; an unstructured array must be 2-D with "
            f"{len(columns)} columns {tuple(columns)} (see the columns option)",
            path=path,
            offset=0,
        )
    if dtype.kind not in "uifb":
        raise FormatError(f"{what} has dtype {dtype}; expected numbers", path=path, offset=0)
    try:
        as_events(np.zeros((0, len(columns)), dtype), columns=columns)
    except (ValueError, TypeError) as error:
        raise FormatError(f"{what}: {error}", path=path, offset=0) from None


def _first_bad_row(block: npt.NDArray[Any], columns: Sequence[str]) -> tuple[int, str] | None:
    """The first row of ``block`` whose t, x or y cannot be stored, and why."""
    if block.dtype.names is not None:
        names = block.dtype.names
        fields = {
            "t": next((n for n in _TIME_NAMES if n in names), None),
            "x": "x",
            "y": "y",
        }
        values = {k: block[v] for k, v in fields.items() if v is not None}
    else:
        index = {name: i for i, name in enumerate(columns)}
        t_name = next((n for n in _TIME_NAMES if n in index), "t")
        values = {
            "t": block[:, index[t_name]],
            "x": block[:, index["x"]],
            "y": block[:, index["y"]],
        }
    worst: tuple[int, str] | None = None
    for name, column in values.items():
        limit = np.iinfo("u8" if name == "t" else "u2").max
        as_float = column.astype(np.float64)
        bad = ~np.isfinite(as_float) | (as_float < 0) | (as_float > limit)
        if column.dtype.kind == "f":
            bad |= as_float != np.round(as_float)
        rows = np.flatnonzero(bad)
        if len(rows) and (worst is None or rows[0] < worst[0]):
            worst = (
                int(rows[0]),
                f"{name} = {column[rows[0]].item()!r} is not an integer in [0, {limit}]",
            )
    return worst


def _events(
    block: npt.NDArray[Any],
    columns: Sequence[str],
    path: str,
    first_row: int,
    offset_of_row: Any,
    what: str,
) -> npt.NDArray[Any]:
    """``block`` as events of their own (never a view of a mapping)."""
    try:
        events = as_events(block, columns=columns)
    except (ValueError, TypeError) as error:
        bad = _first_bad_row(block, columns)
        row = first_row + (bad[0] if bad else 0)
        reason = bad[1] if bad else str(error)
        raise FormatError(
            f"{what}, item {row}: {reason}", path=path, offset=offset_of_row(row)
        ) from None
    if np.may_share_memory(events, block):
        events = events.copy()
    return events


def _triggers(array: npt.NDArray[Any], path: str) -> npt.NDArray[Any]:
    names = array.dtype.names
    if names is None or array.ndim != 1 or not {"t", "id", "rising"} <= set(names):
        raise FormatError(
            f"triggers of dtype {array.dtype} and shape {array.shape}: expected a 1-D "
            "structured array with fields t, id and rising",
            path=path,
            offset=0,
        )
    out = np.empty(len(array), TRIGGERS_DTYPE)
    for name, limit in (("t", np.iinfo("u8").max), ("id", 255)):
        column = np.asarray(array[name])
        if column.dtype.kind not in "uib" or (
            len(column) and (int(column.min()) < 0 or int(column.max()) > limit)
        ):
            raise FormatError(
                f"trigger {name} must be integers in [0, {limit}]", path=path, offset=0
            )
        out[name] = column
    out["rising"] = np.asarray(array["rising"]) > 0
    return out


def _check_chunk(chunk_size: int | None, chunk_events: int | None) -> tuple[str, int] | None:
    """The packet size asked for: ("bytes", n), ("events", n), or None for the default."""
    if chunk_size is not None and chunk_events is not None:
        raise ValueError("give chunk_size (bytes) or chunk_events (events), not both")
    for name, value in (("chunk_size", chunk_size), ("chunk_events", chunk_events)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if chunk_events is not None:
        return ("events", chunk_events)
    return None if chunk_size is None else ("bytes", chunk_size)


def _chunk_events(chunk: tuple[str, int] | None, row_bytes: int) -> int:
    if chunk is None:
        return DEFAULT_CHUNK_EVENTS
    unit, value = chunk
    return value if unit == "events" else max(1, value // row_bytes)


def _column_names(columns: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(columns, str):
        return tuple(c.strip() for c in columns.replace(" ", ",").split(",") if c.strip())
    return tuple(str(c) for c in columns)
