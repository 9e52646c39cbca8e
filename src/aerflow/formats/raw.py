"""Prophesee RAW files: the header and what the EVT 2.0, 2.1 and 3.0 readers and writers share."""

from __future__ import annotations

import datetime
import logging
import os
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from .._extent import event_extent
from ..errors import FormatError, NotThisFormatError
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    FileWriter,
    Properties,
    TimeOrigin,
    check_sensor_size,
)
from .prophesee_header import Header, format_header, parse_header, raw_encoding, raw_geometry

__all__ = ["TIME_ORIGIN_KEY", "RawReader", "RawWriter", "order_error", "read_prophesee_header"]

log = logging.getLogger(__name__)

TIME_ORIGIN_KEY = "aerflow_time_origin"
"""Header key holding a time origin (µs) added to every decoded timestamp.

Writers set it when timestamps are too large for the format's counters (Unix time from AEDAT4,
say), so absolute time survives a round trip; other tools ignore the key and see times
relative to it.
"""

_COORDINATE_LIMIT = 2048  # EVT addresses are 11-bit
MAX_TIME_ORIGIN = 1 << 62  # far past any clock, and origin + decoded time stays below 2**64
MAX_SPAN_US = 1 << 46
"""The latest time (µs, ~2.2 years) an EVT writer stores after the file's time origin.

A jump in time is written as one counter loop after another (up to three words per loop, as
every EVT decoder follows them): 2**46 µs is at most 2**22 EVT 3.0 loops, 24 MiB of words.
Times further out would make files (and the buffers that encode them) of up to terabytes.
"""


def read_prophesee_header(file: Any, path: str) -> Header:
    """Read a '% ' header from an open binary file, however long it is."""
    limit = 1 << 16
    while True:
        file.seek(0)
        head = file.read(limit)
        header = parse_header(head)
        if header.complete or len(head) < limit:
            return header
        if limit >= 1 << 26:
            raise FormatError("header is longer than 64 MiB", path=path, offset=0)
        limit *= 4


def time_origin(entries: dict[str, str], path: str) -> int:
    value = entries.get(TIME_ORIGIN_KEY)
    if value is None:
        return 0
    try:
        origin = int(value)
    except ValueError:
        raise FormatError(
            f"header key {TIME_ORIGIN_KEY} is not an integer: {value!r}", path=path, offset=0
        ) from None
    if not 0 <= origin <= MAX_TIME_ORIGIN:
        raise FormatError(
            f"header key {TIME_ORIGIN_KEY} is outside 0..2**62 µs: {origin}", path=path, offset=0
        )
    return origin


class RawReader(ChunkedReader):
    """The shared part of EVT readers: header, sensor size, decoder state and time origin."""

    encoding: ClassVar[str]

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        width: int | None = None,
        height: int | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(path, chunk_size=chunk_size, threads=threads)
        try:
            self._open_header(width, height)
        except BaseException:
            self.close()
            raise

    def _open_header(self, width: int | None, height: int | None) -> None:
        header = read_prophesee_header(self._file, self.path)
        if not header.entries:
            raise NotThisFormatError(
                f"not a Prophesee RAW file: no '% ' header (expected {self.format_name})",
                path=self.path,
                offset=0,
            )
        found = raw_encoding(header.entries)
        if found is None:
            raise NotThisFormatError(
                "the header names no event encoding (no 'format', 'evt' or known 'system_ID')",
                path=self.path,
                offset=0,
            )
        if found[0] != self.encoding:
            raise NotThisFormatError(
                f"the header says {found[0]}, not {self.encoding}", path=self.path, offset=0
            )
        self._order = found[1]
        try:
            geometry = raw_geometry(header.entries)
        except ValueError as error:
            raise FormatError(str(error), path=self.path, offset=0) from None
        geometry = check_sensor_size(width, height) or geometry
        if geometry is None:
            log.warning(
                "%s: the header gives no sensor size; accepting any 11-bit address", self.path
            )
        self._width, self._height = geometry or (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
        self._decoder_options = (self._width, self._height)
        self._origin = time_origin(header.entries, self.path)
        self.metadata = dict(header.entries)
        self._data_offset = self._position = header.data_offset
        self.properties = Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=self._origin,
        )
        self._reset_state()

    _width: int
    _height: int


class RawWriter(FileWriter, TimeOrigin):
    """The shared part of EVT writers: header, sensor checks, time origin, encoder state."""

    encoding: ClassVar[str]
    format_field: ClassVar[str]  # the name in the header's 'format' entry
    legacy_evt: ClassVar[str | None]  # the legacy 'evt' entry, when the encoding has one

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        time_origin: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        width, height = check_int(width, "width"), check_int(height, "height")
        if not (0 < width <= _COORDINATE_LIMIT and 0 < height <= _COORDINATE_LIMIT):
            raise ValueError(
                f"{self.format_name} stores 11-bit addresses: the sensor must be at most "
                f"{_COORDINATE_LIMIT}x{_COORDINATE_LIMIT}, got {width}x{height}"
            )
        if time_origin is not None and not 0 <= time_origin <= MAX_TIME_ORIGIN:
            raise ValueError(f"time_origin must lie in 0..2**62 µs, got {time_origin}")
        super().__init__(path)
        self.width, self.height = width, height
        self._time_origin = time_origin
        self._metadata = dict(metadata or {})
        self._header_written = False

    def _header_entries(self, origin: int) -> dict[str, str]:
        entries = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")}
        if self.legacy_evt:
            entries["evt"] = self.legacy_evt
        entries["format"] = f"{self.format_field};height={self.height};width={self.width}"
        entries["geometry"] = f"{self.width}x{self.height}"
        for key in ("evt", "format", "geometry", "endianness", TIME_ORIGIN_KEY):
            self._metadata.pop(key, None)
        entries.update(self._metadata)
        if origin:
            entries[TIME_ORIGIN_KEY] = str(origin)
        return entries

    def _ensure_header(self, first_t: int) -> None:
        if self._header_written:
            return
        origin = self._origin_for(first_t)
        self._origin = origin
        self._file.write(format_header(self._header_entries(origin)))
        self._header_written = True

    def _check_times(self, first: int, last: int) -> None:
        """Refuse, before anything is encoded or written, times the file cannot hold."""
        origin = self._origin_for(first)
        if origin > MAX_TIME_ORIGIN:
            raise ValueError(
                f"{self.format_name} cannot store t={first} µs: the file's time origin (a "
                "whole second before its first time) must lie in 0..2**62 µs"
            )
        if first < origin:
            raise ValueError(f"timestamp {first} µs is before the file's time origin {origin} µs")
        if last - origin > MAX_SPAN_US:
            raise ValueError(
                f"{self.format_name} cannot store t={last} µs: it lies more than 2**46 µs "
                f"(~2.2 years) after the file's time origin {origin} µs, and every counter "
                "loop between would be written out"
            )

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events) == 0 and len(triggers) == 0:
            return
        bounds: list[int] = []
        if len(triggers):
            bounds += [int(triggers["t"].min()), int(triggers["t"].max())]
        if len(events):
            t_min, t_max, x_max, y_max = event_extent(events)
            if x_max >= self.width or y_max >= self.height:
                raise ValueError(
                    f"events lie outside the {self.width}x{self.height} sensor "
                    f"(max x {x_max}, max y {y_max})"
                )
            bounds += [t_min, t_max]
        first, last = min(bounds), max(bounds)
        self._check_times(first, last)
        self._ensure_header(first)
        words = self._encode(events, triggers, last - self._origin)
        self._file.write(np.ascontiguousarray(words).data)

    def _finalize(self) -> None:
        if not self._header_written:
            self._ensure_header(0)

    @abstractmethod
    def _encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any], last: int
    ) -> npt.NDArray[Any]:
        """Encode events and triggers into words; ``last`` is their latest time relative to
        ``self._origin`` (to size the output)."""

    _origin: int


def order_error(events: npt.NDArray[Any], triggers: npt.NDArray[Any], index: int, name: str) -> str:
    """Explain why an encoder refused item ``index`` (events first, then triggers)."""
    if index < len(events):
        what, t = f"event {index}", int(events["t"][index])
    else:
        what, t = f"trigger {index - len(events)}", int(triggers["t"][index - len(events)])
    return (
        f"{name} cannot store {what} at t={t} µs: it goes back in time further than the "
        "format's clock can (sort the events by time first)"
    )
