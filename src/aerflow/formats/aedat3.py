"""iniVation AEDAT 3.0 / 3.1 (cAER): '#' header lines, then typed event packets.

Every packet is a 28-byte little-endian header (type, source, event size, timestamp
offset, timestamp overflow, capacity, number, valid) followed by ``capacity`` events of
``size`` bytes. Bit 0 of every event is its validity mark (invalid events are skipped). A
full time is ``overflow << 31 | timestamp`` (31-bit event timestamps).

Read: polarity events (type 1: bit 1 ON, bits 2-16 y, bits 17-31 x), special events (type
0: external inputs 0, 1 and 2 become triggers of that id, rising and falling edges as such
and pulses as rising edges; a timestamp reset starts a new time base that continues from the
latest time seen before it, so time never goes back; wraps, APS and generator markers are
passed over), IMU6/IMU9 samples (types 3 and 4, already in g, °/s, °C and µT) as the IMU
side channel, and frames (type 2, 16-bit pixels) as :class:`~aerflow.Frame` objects whose
``t`` is the start of frame capture. Other packet types are skipped. Coordinates are as
stored (3.1: upper-left origin; 3.0: lower-left) unless ``flip_y=True``.

The packet layout and the decoding kernel are in ``_aedat3_kernels``, the sensor size from
the header in ``_aedat3_sensor``, and :class:`Aedat3Writer` in ``_aedat3_writer``; this module
holds :class:`Aedat3Reader` and the public names.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, NotThisFormatError, TruncatedDataWarning
from ..events import (
    EVENTS_DTYPE,
    IMU_DTYPE,
    TRIGGERS_DTYPE,
    Frame,
    Packet,
    empty_imu,
)
from ._aedat3_kernels import (
    _ERROR,
    _ERROR_AT,
    _ERRORS,
    _FRAME_COLUMNS,
    _IMU_COLUMNS,
    _KERNEL,
    _NEED,
    _REMAINING,
    _RESETS,
    _SKIP,
    _STATE_SIZE,
    _STOP,
    _STOP_ERROR,
    _STOP_FULL,
    _TRIGGER_ID,
    _TRIGGER_RISING,
    _decode,
    _phases,
)
from ._aedat3_sensor import (
    _COORDINATE_LIMIT,
    SENSOR_SIZE_KEY,
    SOURCE_SIZES,
    _parse_size,
    _sources,
    sensor_size_of_source,
)
from ._aedat3_writer import Aedat3Writer
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    Properties,
    check_sensor_size,
)
from ._mapped_memory import _allocate_events, _grow, _Window
from .aedat_header import END_HEADER, header_entries, read_header

__all__ = ["SOURCE_SIZES", "Aedat3Reader", "Aedat3Writer", "sensor_size_of_source"]

log = logging.getLogger(__name__)


@dataclass
class _Outputs:
    """What one or more kernel calls fill."""

    events: npt.NDArray[Any]
    triggers: npt.NDArray[Any]
    imu_t: npt.NDArray[np.uint64]
    imu_bits: npt.NDArray[np.uint32]
    frame_table: npt.NDArray[np.int64]
    n: int = 0
    m: int = 0
    k: int = 0
    frames: list[Frame] = field(default_factory=list)

    @classmethod
    def allocate(cls, events: npt.NDArray[Any], side: int) -> _Outputs:
        return cls(
            events,
            np.empty(side, TRIGGERS_DTYPE),
            np.empty(side, np.uint64),
            np.empty((side, _IMU_COLUMNS), np.uint32),
            np.empty((max(side // 16, 4), _FRAME_COLUMNS), np.int64),
        )

    def grow(self) -> None:
        """Room for more of whatever filled up."""
        if len(self.events) - self.n < 1:
            self.events = _grow(self.events, self.n)
        if self.m == len(self.triggers):
            self.triggers = np.resize(self.triggers, 2 * len(self.triggers))
        if self.k == len(self.imu_t):
            self.imu_bits = np.resize(self.imu_bits, (2 * len(self.imu_t), _IMU_COLUMNS))
            self.imu_t = np.resize(self.imu_t, 2 * len(self.imu_t))

    def empty(self) -> bool:
        return not (self.n or self.m or self.k or self.frames)

    def packet(self) -> Packet:
        imu = np.empty(self.k, IMU_DTYPE) if self.k else empty_imu()
        if self.k:
            values = self.imu_bits[: self.k].view("<f4")
            imu["t"] = self.imu_t[: self.k]
            imu["temperature"] = values[:, 0]
            imu["accelerometer"] = values[:, 1:4]
            imu["gyroscope"] = values[:, 4:7]
            imu["magnetometer"] = values[:, 7:10]
        return Packet(
            self.events[: self.n], self.triggers[: self.m].copy(), imu, tuple(self.frames)
        )


class Aedat3Reader(ChunkedReader):
    """Reads iniVation AEDAT 3.0 and 3.1 (cAER) files: polarity events, triggers, IMU
    samples and frames."""

    format_name = "aedat3"
    word = np.dtype("u1")
    events_per_byte = 1 / 8
    decoder = staticmethod(_decode)
    state_size = _STATE_SIZE
    max_group_events = 1

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        width: int | None = None,
        height: int | None = None,
        flip_y: bool = False,
        source: int | None = None,
    ) -> None:
        super().__init__(path, chunk_size=chunk_size)
        try:
            self._open_header(width, height, bool(flip_y), source)
        except BaseException:
            self.close()
            raise

    def _open_header(
        self, width: int | None, height: int | None, flip_y: bool, source: int | None
    ) -> None:
        if source is not None and not 0 <= int(source) < 1 << 15:
            raise ValueError(f"source must be a source ID in 0..32767, got {source}")
        header = read_header(self._file, self.path, self._size)
        if header.version is None or not header.version.startswith("3."):
            what = f"an AEDAT {header.version} file" if header.version else "no '#!AER-DAT3.x' line"
            raise NotThisFormatError(
                f"not an AEDAT 3.0/3.1 file ({what})", path=self.path, offset=0
            )
        entries = header_entries(header.lines)
        encoding = entries.get("Format", "RAW").strip()
        if encoding.upper() != "RAW":
            raise FormatError(
                f"unsupported AEDAT 3 packet format {encoding!r} (only RAW is defined)",
                path=self.path,
                offset=0,
            )
        if header.version != "3.0" and not header.ended:
            log.warning(
                "%s: the AEDAT %s header has no %s line", self.path, header.version, END_HEADER
            )
        sources = _sources(header.lines)
        self.sources = sources
        """Source IDs and device names from the ``#Source`` lines."""
        geometry = check_sensor_size(width, height)
        if geometry is None and SENSOR_SIZE_KEY in entries:
            geometry = _parse_size(entries[SENSOR_SIZE_KEY], self.path)
        if geometry is None and sources:
            chosen = sources.get(source) if source is not None else next(iter(sources.values()))
            if chosen is not None:
                geometry = sensor_size_of_source(chosen)
        if flip_y and geometry is None:
            raise ValueError("flip_y needs the sensor height: pass width and height")
        self.version = header.version
        self._width, self._height = geometry or (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
        self._decoder_options = (
            -1 if source is None else int(source),
            min(self._width, _COORDINATE_LIMIT),
            min(self._height, _COORDINATE_LIMIT),
            int(flip_y),
        )
        self._flip = flip_y
        self.metadata = {"version": header.version, **entries, "header": "\n".join(header.lines)}
        self._data_offset = self._position = header.data_offset
        self.properties = Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=0,
        )
        self._header_complete = header.complete
        self._reset_state()

    @property
    def timestamp_resets(self) -> int:
        """TIMESTAMP_RESET special events met so far."""
        return int(self._state[_RESETS])

    # -- decoding -----------------------------------------------------------------------------
    def _step(self, out: _Outputs, length: int) -> bool:
        """Decode up to ``length`` bytes into ``out``; True when nothing more can be decoded
        (the end of the file, or a torn tail)."""
        start = self._position
        window = _Window(self._file.fileno(), start, length, self.word)
        try:
            consumed, out.n, out.m, out.k, f = _KERNEL(
                window.view,
                _phases(window.view),
                self._state,
                *self._decoder_options,
                _TRIGGER_ID,
                _TRIGGER_RISING,
                out.events,
                out.n,
                out.triggers,
                out.m,
                out.imu_t,
                out.imu_bits,
                out.k,
                out.frame_table,
            )
            for row in out.frame_table[:f]:
                out.frames.append(self._frame(window.view, row))
        finally:
            window.close()
        self._position = start + consumed
        state = self._state
        if state[_STOP] == _STOP_ERROR:
            offset = start + int(state[_ERROR_AT])
            raise FormatError(
                f"bad AEDAT 3 packet: {_ERRORS[int(state[_ERROR])]}", path=self.path, offset=offset
            )
        if state[_STOP] == _STOP_FULL:
            return False
        return self._position + int(state[_NEED]) > self._size

    def _frame(self, data: npt.NDArray[np.uint8], row: npt.NDArray[np.int64]) -> Frame:
        at = int(row[0])
        info = int(data[at]) | int(data[at + 1]) << 8
        channels = (info >> 1) & 7
        length_x, length_y, position_x, position_y = (
            int(v) for v in data[at + 20 : at + 36].view("<i4")
        )
        count = length_x * length_y * channels
        pixels = data[at + 36 : at + 36 + 2 * count].view("<u2").astype(np.uint16)
        shape = (length_y, length_x) if channels == 1 else (length_y, length_x, channels)
        pixels = pixels.reshape(shape)
        if self._flip:
            pixels = np.ascontiguousarray(pixels[::-1])
            position_y = self._height - position_y - length_y
        return Frame(
            t=int(row[1]),
            pixels=pixels,
            exposure_start=int(row[3]),
            exposure_end=int(row[4]),
            x=position_x,
            y=position_y,
        )

    def _end(self) -> None:
        state = self._state
        torn = self._position < self._size or state[_REMAINING] > 0 or state[_SKIP] > 0
        if torn or not self._header_complete:
            where = (
                "inside its header"
                if not self._header_complete
                else f"inside a packet at byte {self._position}"
            )
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.path}: the file ends {where} "
                    f"({self._size - self._position} trailing bytes ignored)"
                ),
                stacklevel=4,
            )
            self._header_complete = True
        self._position = self._size
        state[_REMAINING] = state[_SKIP] = 0
        self._finish()

    def _iterate(self) -> Iterator[Packet]:
        if self._position < self._data_offset:
            self._restart()
        while self._position < self._size:
            need = int(self._state[_NEED])
            length = min(max(self.chunk_size, need), self._size - self._position)
            out = _Outputs.allocate(np.empty(length // 8 + 1, EVENTS_DTYPE), 256)
            finished = self._step(out, length)
            if not out.empty():
                if out.n < len(out.events) // 2:
                    out.events = out.events[: out.n].copy()
                yield out.packet()
            if finished:
                break
        self._end()

    def _read(self) -> Packet:
        """Decode everything left into one packet."""
        if self._position < self._data_offset:
            self._restart()
        remaining = max(self._size - self._position, 0)
        out = _Outputs.allocate(_allocate_events(remaining // 8 + 64), 1024)
        while self._position < self._size:
            if self._step(out, self._size - self._position):
                break
            out.grow()
        self._end()
        return out.packet()
