"""The Event Stream writer: DVS or ATIS change-detection streams with the sensor size in the
header, times checked and encoded in pieces of bounded size."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ..errors import NonMonotonicTimeError
from ._base import FileWriter
from ._es_encode import _MAX_GAP_US, _encode, _measure, _piece_end
from ._es_header import _TYPE_CODES, _VERSION, MAGIC

__all__ = ["EventStreamWriter"]

_ENCODE_BUDGET = 1 << 24
"""Bytes the writer encodes at a time when gaps make a write's output larger (one gap of
``_MAX_GAP_US`` alone takes up to 34 MB)."""


class EventStreamWriter(FileWriter):
    """Writes Event Stream 2.0 files of DVS events (``type="dvs"``, the default) or ATIS
    change detections (``type="atis"``), with the sensor size in the header.

    Timestamps must not decrease (within and across :meth:`write` calls). The first event's
    time is stored as its distance from 0: the format has no place for a time origin, so
    ``time_origin`` must be 0 (a file written relative to another origin would read back
    silently shifted); shift the times first (:class:`~aerflow.filters.ShiftTime`) where
    relative times are what is wanted.
    """

    format_name = "es"
    stores = ()

    def _why_unwritten(self, channel: str) -> str:
        return "Event Stream files hold events only"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        type: str = "dvs",
        time_origin: int = 0,
    ) -> None:
        if type not in ("dvs", "atis"):
            raise ValueError(f"type must be 'dvs' or 'atis', got {type!r}")
        width, height = check_int(width, "width"), check_int(height, "height")
        if not (0 < width < 1 << 16 and 0 < height < 1 << 16):
            raise ValueError(
                f"Event Stream stores the sensor size as 16-bit numbers: it must be at most "
                f"65535x65535, got {width}x{height}"
            )
        if time_origin != 0:
            raise ValueError(
                f"Event Stream has no place to store a time origin: with time_origin="
                f"{time_origin} the file would read back {time_origin} µs early; shift the "
                "times first (filter shift-time, ShiftTime) if relative times are what you want"
            )
        super().__init__(path)
        self.width, self.height, self.type = width, height, type
        self._kind = _TYPE_CODES[type]
        self._origin = int(time_origin)
        self._previous = 0  # time (after the origin) of the last event written
        self._written = 0
        self._file.write(
            MAGIC
            + bytes([*_VERSION, self._kind])
            + int(width).to_bytes(2, "little")
            + int(height).to_bytes(2, "little")
        )

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events) == 0:
            return
        if int(events["x"].max()) >= self.width or int(events["y"].max()) >= self.height:
            outside = np.flatnonzero((events["x"] >= self.width) | (events["y"] >= self.height))
            index = int(outside[0])
            raise ValueError(
                f"event {self._written + index} (x={int(events['x'][index])}, "
                f"y={int(events['y'][index])}) lies outside the {self.width}x{self.height} sensor"
            )
        events = np.ascontiguousarray(events)
        total, bad, why = _measure(events, self._origin, self._previous, self._kind)
        if bad >= 0:
            self._refuse(events, bad, why)
        if total <= _ENCODE_BUDGET:
            out = np.empty(total, np.uint8)
            self._previous = int(_encode(events, self._origin, self._previous, self._kind, out))
            self._file.write(out.data)
        else:  # long gaps: encode piece by piece, holding a bounded buffer
            start = 0
            while start < len(events):
                end, size = _piece_end(
                    events, start, self._origin, self._previous, self._kind, _ENCODE_BUDGET
                )
                out = np.empty(size, np.uint8)
                self._previous = int(
                    _encode(events[start:end], self._origin, self._previous, self._kind, out)
                )
                self._file.write(out.data)
                start = end
        self._written += len(events)

    def _refuse(self, events: npt.NDArray[Any], index: int, why: int) -> None:
        t = int(events["t"][index])
        at = self._written + index
        if why == 1 and t < self._origin:
            raise ValueError(f"event {at}: t={t} µs is before the time origin {self._origin} µs")
        # why 1 with t past the origin: t is 2**63 µs or more, beyond int64 and any gap.
        previous = self._previous + self._origin if index == 0 else int(events["t"][index - 1])
        if why == 0:
            raise NonMonotonicTimeError(
                f"event {at}: t={t} µs comes after an event at {previous} µs; Event Stream "
                "stores time differences, so timestamps must not decrease (sort the events)",
                index=at,
            )
        if at == 0:
            raise ValueError(
                f"the first event is at t={t} µs, which Event Stream stores as a gap from "
                f"{self._origin} µs; gaps over {_MAX_GAP_US} µs are refused (they take tens of "
                "MB of overflow bytes). For absolute timestamps, shift the times first (filter "
                "shift-time, ShiftTime): Event Stream cannot store a time origin"
            )
        raise ValueError(
            f"event {at}: t={t} µs is {t - previous} µs after the event before it; gaps over "
            f"{_MAX_GAP_US} µs are refused (they take tens of MB of overflow bytes)"
        )
