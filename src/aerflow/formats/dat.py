"""Prophesee DAT: a '% ' header, an (event type, event size) byte pair, 8-byte records.

Records are a 32-bit time in µs and a 32-bit word: for CD (0x0C) and Event2d (0x00) files
``x = bits 0-13, y = bits 14-27, polarity = bit 28`` (the v2 layout; ``Version 1`` headers use
the old ``x = bits 0-8, y = bits 9-16, polarity = bit 17``); for external-trigger (0x0E) files
``polarity = bits 0-3, id = bits 26-31``. Times are unwrapped: a drop of more than 2**31 µs
between consecutive records is a 32-bit counter wrap.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from .._jit import njit
from ..errors import FormatError, NotThisFormatError
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    FileWriter,
    Properties,
    SecondShare,
    TimeOrigin,
    check_sensor_size,
)
from ._clock32 import HALF, MAX_ORIGIN, MAX_RELATIVE, WRAP, Clock32Writer
from .prophesee_header import format_header, raw_encoding
from .raw import TIME_ORIGIN_KEY, read_prophesee_header, time_origin

__all__ = ["DatReader", "DatWriter"]

log = logging.getLogger(__name__)

EVENT_2D, EVENT_CD, EVENT_EXT_TRIGGER = 0x00, 0x0C, 0x0E
_RECORD_SIZE = 8
_SENSOR_LIMIT = 1 << 16  # events hold 16-bit coordinates
_CD_V2, _CD_V1, _TRIGGER = 0, 1, 2
_COORDINATE_LIMIT = {_CD_V2: (1 << 14, 1 << 14), _CD_V1: (1 << 9, 1 << 8), _TRIGGER: (1, 1)}

_PREVIOUS, _OFFSET, _DROPPED = range(3)


_U = np.uint64  # indices made unsigned: numba then leaves out the negative-index wraparound


@njit(nogil=True, cache=True, inline="always")
def _decode_cd(
    data: Any,
    i: int,
    end: int,
    previous: Any,
    offset: Any,
    dropped: Any,
    width: int,
    height: int,
    events: Any,
    n: int,
    x_mask: int,
    y_shift: int,
    y_mask: int,
    on_shift: int,
) -> tuple[int, Any, Any, Any, int]:
    """CD records data[i:end] (i < end) into events[n:], the caller having checked the
    room, with the bit layout given as constants: (end, previous, offset, dropped, n)."""
    for j in range(i, end, 2):
        t32 = np.int64(data[_U(j)])
        word = np.int64(data[_U(j + 1)])
        if previous - t32 > HALF:  # a 32-bit wrap
            offset += WRAP
        previous = t32
        x = word & x_mask
        y = (word >> y_shift) & y_mask
        if ((x - width) & (y - height)) < 0:  # x < width and y < height (one branch)
            event = events[_U(n)]
            event.t = np.uint64(offset + t32)
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = (word >> on_shift) & 1 == 1
            n += 1
        else:
            dropped += 1
    return end, previous, offset, dropped, n


@njit(nogil=True, cache=True)
def _decode(
    data: Any,
    state: Any,
    layout: int,
    width: int,
    height: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    size = data.size - (data.size & 1)  # 32-bit halves of 8-byte records
    previous = state[_PREVIOUS]
    offset = state[_OFFSET]
    dropped = state[_DROPPED]
    i = 0
    while i < size:
        # A record yields at most one item: up to `end` every one fits, and the loops spare
        # the room test per record (~12 % of them).
        room = triggers.size - m if layout == _TRIGGER else events.size - n
        if room <= 0:
            break
        end = min(size, i + 2 * room)
        if layout == _CD_V2:
            i, previous, offset, dropped, n = _decode_cd(
                data, i, end, previous, offset, dropped, width, height, events, n,
                0x3FFF, 14, 0x3FFF, 28,
            )  # fmt: skip
        elif layout == _CD_V1:
            i, previous, offset, dropped, n = _decode_cd(
                data, i, end, previous, offset, dropped, width, height, events, n,
                0x1FF, 9, 0xFF, 17,
            )  # fmt: skip
        else:
            while i < end:
                t32 = np.int64(data[_U(i)])
                word = np.int64(data[_U(i + 1)])
                if previous - t32 > HALF:  # a 32-bit wrap
                    offset += WRAP
                previous = t32
                trigger = triggers[_U(m)]
                trigger.t = np.uint64(offset + t32)
                trigger.id = np.uint8((word >> 26) & 0x3F)
                trigger.rising = (word & 0xF) != 0
                m += 1
                i += 2
    state[_PREVIOUS] = previous
    state[_OFFSET] = offset
    state[_DROPPED] = dropped
    return i, n, m


class DatReader(ChunkedReader):
    """Reads Prophesee DAT files of CD / Event2d records (events) or trigger records."""

    format_name = "dat"
    word = np.dtype("<u4")
    events_per_byte = 1 / _RECORD_SIZE
    decoder = staticmethod(_decode)
    state_size = 3
    max_group_events = 1

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        width: int | None = None,
        height: int | None = None,
        layout: str | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(path, chunk_size=chunk_size, threads=threads)
        try:
            self._open_header(width, height, layout)
        except BaseException:
            self.close()
            raise

    def _open_header(self, width: int | None, height: int | None, layout: str | None) -> None:
        header = read_prophesee_header(self._file, self.path)
        if not header.entries or raw_encoding(header.entries) is not None:
            raise NotThisFormatError("not a Prophesee DAT file", path=self.path, offset=0)
        self._file.seek(header.data_offset)
        pair = self._file.read(2)
        if len(pair) < 2:
            raise FormatError(
                "the file ends before the event type and size bytes",
                path=self.path,
                offset=header.data_offset,
            )
        event_type, event_size = pair
        if event_type not in (EVENT_2D, EVENT_CD, EVENT_EXT_TRIGGER):
            raise FormatError(
                f"unsupported DAT event type {event_type:#04x} (expected 0x00 Event2d, "
                "0x0C CD or 0x0E external trigger)",
                path=self.path,
                offset=header.data_offset,
            )
        if event_size != _RECORD_SIZE:
            raise FormatError(
                f"event size {event_size} for type {event_type:#04x}, expected 8",
                path=self.path,
                offset=header.data_offset + 1,
            )
        entries = header.entries
        if event_type == EVENT_EXT_TRIGGER:
            self._layout = _TRIGGER
        elif layout is not None:
            if layout not in ("v1", "v2"):
                raise ValueError(f"layout must be 'v1' or 'v2', got {layout!r}")
            self._layout = _CD_V1 if layout == "v1" else _CD_V2
        else:
            self._layout = _CD_V1 if entries.get("Version", "2").strip() == "1" else _CD_V2
        geometry = _dat_geometry(entries, self.path)
        geometry = check_sensor_size(width, height) or geometry
        self._width, self._height = geometry or _COORDINATE_LIMIT[self._layout]
        self._decoder_options = (self._layout, self._width, self._height)
        self._origin = time_origin(entries, self.path)
        self.metadata = dict(entries)
        self.event_type = event_type
        self._data_offset = self._position = header.data_offset + 2
        records = (self._size - self._data_offset) // _RECORD_SIZE
        self.properties = Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=self._origin,
            event_count=None if self._layout == _TRIGGER else records,
        )
        self._reset_state()

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare | None:
        if self._layout == _TRIGGER:
            return None
        split = len(words) // 4 * 2  # a record boundary near the middle
        second = np.zeros(3, np.int64)
        second[_PREVIOUS] = words[split - 2] if split else self._state[_PREVIOUS]
        return SecondShare(start=split, state=second, first_events=split // 2)

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int]:
        # The second share counted 32-bit wraps from zero: add those of the first.
        shift = int(first[_OFFSET])
        joined = second.copy()
        joined[_OFFSET] += shift
        joined[_DROPPED] += first[_DROPPED]
        return joined, shift


def _dat_geometry(entries: dict[str, str], path: str) -> tuple[int, int] | None:
    if "Width" not in entries or "Height" not in entries:
        return None
    try:
        width, height = int(entries["Width"]), int(entries["Height"])
    except ValueError:
        raise FormatError(
            "Width/Height in the header are not integers", path=path, offset=0
        ) from None
    if not (0 < width <= _SENSOR_LIMIT and 0 < height <= _SENSOR_LIMIT):
        raise FormatError(
            f"sensor size {width}x{height} is outside 1..{_SENSOR_LIMIT}", path=path, offset=0
        )
    return width, height


@njit(nogil=True, cache=True)
def _encode_cd(events: Any, origin: int, width: int, height: int, clock: Any, out: Any) -> bool:
    """CD records (the 32-bit time, then ``x | y << 14 | on << 28``) of ``events`` into
    ``out`` (two words each), times stored by :class:`Clock32Writer`'s rule from ``clock``
    (the last time written or -1, the counter loops' offset). True, with ``clock``
    advanced, when every event could be stored; False at the first that cannot (outside
    the sensor, before the origin, 2**62 µs after it, or 2**31 µs or more from the time
    before), ``clock`` untouched: the caller then reports it."""
    previous = clock[0]
    offset = clock[1]
    start = np.uint64(origin)
    for i in range(events.size):
        event = events[_U(i)]
        x = np.int64(event.x)
        y = np.int64(event.y)
        t = np.uint64(event.t)
        if x >= width or y >= height or t < start or t - start >= np.uint64(MAX_RELATIVE):
            return False
        relative = np.int64(t - start)
        low = relative & 0xFFFFFFFF
        if previous >= 0 and low < previous and previous - low > HALF:
            offset += WRAP
        if offset + low != relative:
            return False
        previous = low
        out[_U(2 * i)] = np.uint32(low)
        out[_U(2 * i + 1)] = np.uint32(x | (y << 14) | (np.int64(event.on) << 28))
    clock[0] = previous
    clock[1] = offset
    return True


class DatWriter(FileWriter, TimeOrigin):
    """Writes Prophesee DAT files: CD records (``kind="cd"``) or trigger records."""

    format_name = "dat"
    single_loop_us = 1 << 32  # 32-bit times, unwrapped by readers

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        time_origin: int | None = None,
        kind: str = "cd",
        metadata: dict[str, str] | None = None,
    ) -> None:
        if kind not in ("cd", "trigger"):
            raise ValueError(f"kind must be 'cd' or 'trigger', got {kind!r}")
        limit = 1 << 14
        width = None if width is None else check_int(width, "width")
        height = None if height is None else check_int(height, "height")
        if (width is not None and not 0 < width <= limit) or (
            height is not None and not 0 < height <= limit
        ):
            raise ValueError(f"DAT stores 14-bit addresses: the sensor must fit {limit}x{limit}")
        if time_origin is not None and not 0 <= time_origin <= MAX_ORIGIN:
            raise ValueError(f"time_origin must lie in 0..2**62 µs, got {time_origin}")
        super().__init__(path)
        self.width, self.height, self.kind = width, height, kind
        self._time_origin = time_origin
        self._metadata = dict(metadata or {})
        self._origin = 0
        self._header_written = False
        self._clock = Clock32Writer("DAT")
        self._records: npt.NDArray[np.uint32] | None = None  # reused by _write_cd
        self.stores = ("triggers",) if kind == "trigger" else ()
        self.most_trigger_id = 0x3F  # 6 bits

    def _ensure_header(self, first_t: int) -> None:
        if self._header_written:
            return
        origin = self._origin_for(first_t)
        self._origin = origin
        entries = {
            "Data": "file containing " + ("CD" if self.kind == "cd" else "ExtTrigger") + " events.",
            "Version": "2",
            "Date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
        if self.width is not None and self.height is not None:
            entries["Width"], entries["Height"] = str(self.width), str(self.height)
        for key in ("Data", "Version", "Width", "Height", TIME_ORIGIN_KEY):
            self._metadata.pop(key, None)
        entries.update(self._metadata)
        if origin:
            entries[TIME_ORIGIN_KEY] = str(origin)
        self._file.write(format_header(entries))
        event_type = EVENT_CD if self.kind == "cd" else EVENT_EXT_TRIGGER
        self._file.write(bytes([event_type, _RECORD_SIZE]))
        self._header_written = True

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if self.kind == "cd":
            if len(events) and not self._write_cd(events):
                self._write_records(events["t"], self._cd_words(events))
            return
        if len(events):
            self.unwritten["events"] = self.unwritten.get("events", 0) + len(events)
        if len(triggers):
            words = (triggers["id"].astype(np.int64) << 26) | triggers["rising"].astype(np.int64)
            self._write_records(triggers["t"], words)

    @property
    def _sensor(self) -> tuple[int, int]:
        """The bounds CD events must stay within: the sensor, else the 14-bit addresses'."""
        return self.width or 1 << 14, self.height or 1 << 14

    def _cd_words(self, events: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
        width, height = self._sensor
        if int(x.max()) >= width or int(y.max()) >= height:
            raise ValueError(
                f"events lie outside the {width}x{height} sensor "
                f"(max x {int(x.max())}, max y {int(y.max())})"
            )
        return x | (y << 14) | (events["on"].astype(np.int64) << 28)

    def _write_records(self, times: npt.NDArray[np.uint64], words: npt.NDArray[np.int64]) -> None:
        """Records of ``times`` and ``words``, vectorised: the triggers' way, and the CD
        events' when the kernel refused them (this path then raises, naming which and why)."""
        first = int(times.min())
        # Checked before the header goes out: a refused write leaves nothing behind.
        low = self._clock.low_times(times, self._origin_for(first))
        self._ensure_header(first)
        records = np.empty(len(low), dtype=[("t", "<u4"), ("w", "<u4")])
        records["t"] = low
        records["w"] = words
        self._file.write(records.tobytes())

    def _write_cd(self, events: npt.NDArray[Any]) -> bool:
        """CD events encoded by one kernel into a reused buffer; False, with nothing written,
        when one of them cannot be stored (the vectorised path then says which and why)."""
        first = int(events["t"].min())
        origin = self._origin_for(first)
        if origin > MAX_ORIGIN:
            return False
        if self._records is None or len(self._records) < 2 * len(events):
            self._records = np.empty(2 * len(events), np.uint32)
        clock = self._clock.state
        if not _encode_cd(events, origin, *self._sensor, clock, self._records):
            return False
        self._clock.advance(clock)
        self._ensure_header(first)
        self._file.write(self._records[: 2 * len(events)].data)
        return True

    def _finalize(self) -> None:
        self._ensure_header(0)

    def _why_unwritten(self, channel: str) -> str:
        if channel == "triggers" and self.kind == "trigger":
            return super()._why_unwritten(channel)
        return f"a {self.kind} DAT file cannot hold them"
