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
"""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from ..errors import FormatError, NotThisFormatError, TruncatedDataWarning
from ..events import (
    EVENTS_DTYPE,
    IMU_DTYPE,
    TRIGGERS_DTYPE,
    Frame,
    Packet,
    as_events,
    empty_imu,
)
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    FileWriter,
    Properties,
    _allocate_events,
    _grow,
    _Window,
    check_sensor_size,
)
from .aedat_header import END_HEADER, format_lines, header_entries, read_header

__all__ = ["SOURCE_SIZES", "Aedat3Reader", "Aedat3Writer", "sensor_size_of_source"]

log = logging.getLogger(__name__)

SPECIAL, POLARITY, FRAME, IMU6, IMU9 = 0, 1, 2, 3, 4
_HEADER_SIZE = 28
_MIN_SIZE = (8, 8, 36, 36, 48)  # smallest event size of each known type
_TS_OFFSET = (4, 4, 8, 4, 4)  # where each known type keeps its main timestamp
_COORDINATE_LIMIT = 1 << 15
_MAX_TIME = 1 << 62  # overflow (31 bits) << 31 | 31-bit timestamp
SENSOR_SIZE_KEY = "aerflow_sensor_size"

# Special event types.
_TIMESTAMP_RESET = 1
# type -> (trigger id, rising) for the external input types; pulses count as rising edges
_TRIGGER_KINDS = {2: (0, 1), 3: (0, 0), 4: (0, 1), 6: (1, 1), 7: (1, 0), 8: (1, 1)}
_TRIGGER_KINDS |= {9: (2, 1), 10: (2, 0), 11: (2, 1)}
_TRIGGER_ID = np.full(128, -1, np.int64)
_TRIGGER_RISING = np.zeros(128, np.int64)
for _kind, (_id, _rising) in _TRIGGER_KINDS.items():
    _TRIGGER_ID[_kind] = _id
    _TRIGGER_RISING[_kind] = _rising

# Decoder state slots (the last one counts events dropped outside the sensor).
(
    _REMAINING,
    _SKIP,
    _PAD,
    _TYPE,
    _SIZE,
    _OVERFLOW,
    _SHIFT,
    _LATEST,
    _NEED,
    _STOP,
    _ERROR,
    _ERROR_AT,
    _RESETS,
    _DROPPED,
) = range(14)
_STATE_SIZE = 14
_STOP_DATA, _STOP_FULL, _STOP_ERROR = 0, 1, 2
_ERRORS = {
    1: "event size is not positive",
    2: "negative event capacity or number, or more events than capacity",
    3: "negative timestamp overflow",
    4: "timestamp offset outside the event or not where the event type keeps it",
    5: "event size too small for the event type",
    6: "frame event with an impossible size, position or channel count",
}
_FRAME_COLUMNS = 5  # byte offset in the window, start/end of frame, start/end of exposure
_IMU_COLUMNS = 10  # temperature, accelerometer xyz, gyroscope xyz, magnetometer xyz (bits)
_NAN_BITS = 0x7FC00000


@nb.njit(nogil=True, cache=True)
def _u32(data: Any, i: int) -> Any:
    return (
        np.int64(data[i])
        | (np.int64(data[i + 1]) << 8)
        | (np.int64(data[i + 2]) << 16)
        | (np.int64(data[i + 3]) << 24)
    )


@nb.njit(nogil=True, cache=True)
def _word(phases: Any, i: int) -> Any:
    """The little-endian 32-bit word at byte ``i``: one load from the view that starts at
    byte ``i & 3`` (see :func:`_phases`)."""
    return np.int64(phases[i & 3, i >> 2])


@nb.njit(nogil=True, cache=True)
def _i32(data: Any, i: int) -> Any:
    value = _u32(data, i)
    return value - (np.int64(1) << 32) if value >= np.int64(1) << 31 else value


@nb.njit(nogil=True, cache=True)
def _i16(data: Any, i: int) -> Any:
    value = np.int64(data[i]) | (np.int64(data[i + 1]) << 8)
    return value - 65536 if value >= 32768 else value


@nb.njit(nogil=True, cache=True)
def _decode(
    data: Any,
    phases: Any,
    state: Any,
    source: int,
    width: int,
    height: int,
    flip: int,
    trigger_id: Any,
    trigger_rising: Any,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
    imu_t: Any,
    imu_bits: Any,
    k: int,
    frames: Any,
) -> tuple[int, int, int, int, int]:
    size = data.size
    capacity = events.size
    trigger_capacity = triggers.size
    imu_capacity = imu_t.size
    frame_capacity = frames.shape[0]
    remaining = state[_REMAINING]
    skip = state[_SKIP]
    pad = state[_PAD]
    kind = state[_TYPE]
    event_size = state[_SIZE]
    base = state[_OVERFLOW] << 31
    shift = state[_SHIFT]
    latest = state[_LATEST]
    resets = state[_RESETS]
    dropped = state[_DROPPED]
    stop = _STOP_DATA
    need = 0
    error = 0
    error_at = 0
    f = 0
    i = 0
    while True:
        if skip > 0:
            step = min(skip, size - i)
            i += step
            skip -= step
            if skip > 0:
                need = skip
                break
            continue
        if remaining > 0:
            if i + event_size > size:
                need = event_size
                break
            if kind == POLARITY:
                while remaining > 0 and i + event_size <= size:
                    if n >= capacity:
                        stop = _STOP_FULL
                        break
                    word = _word(phases, i)
                    if word & 1:
                        t = shift + base + (_word(phases, i + 4) & 0x7FFFFFFF)
                        if t > latest:
                            latest = t
                        x = word >> 17
                        y = (word >> 2) & 0x7FFF
                        if x < width and y < height:
                            event = events[n]
                            event.t = np.uint64(t)
                            event.x = np.uint16(x)
                            event.y = np.uint16(height - 1 - y if flip else y)
                            event.on = (word >> 1) & 1 == 1
                            n += 1
                        else:
                            dropped += 1
                    i += event_size
                    remaining -= 1
                if stop == _STOP_FULL:
                    break
            else:
                if data[i] & 1:
                    if kind == SPECIAL:
                        word = _word(phases, i)
                        special = (word >> 1) & 0x7F
                        t = shift + base + (_word(phases, i + 4) & 0x7FFFFFFF)
                        if special == _TIMESTAMP_RESET:
                            shift = latest
                            resets += 1
                        elif trigger_id[special] >= 0:
                            if m >= trigger_capacity:
                                stop = _STOP_FULL
                                break
                            trigger = triggers[m]
                            trigger.t = np.uint64(t)
                            trigger.id = np.uint8(trigger_id[special])
                            trigger.rising = trigger_rising[special] == 1
                            m += 1
                            if t > latest:
                                latest = t
                    elif kind == FRAME:
                        if f >= frame_capacity:
                            stop = _STOP_FULL
                            break
                        channels = (_word(phases, i) >> 1) & 7
                        length_x = _i32(data, i + 20)
                        length_y = _i32(data, i + 24)
                        if (
                            (channels != 1 and channels != 3 and channels != 4)
                            or length_x < 0
                            or length_y < 0
                            or length_x > event_size
                            or length_y > event_size
                            or length_x * length_y > event_size
                            or _i32(data, i + 28) < 0
                            or _i32(data, i + 32) < 0
                            or 36 + 2 * length_x * length_y * channels > event_size
                        ):
                            stop = _STOP_ERROR
                            error = 6
                            error_at = i
                            break
                        frames[f, 0] = i
                        for column in range(4):
                            frames[f, 1 + column] = (
                                shift + base + (_word(phases, i + 4 + 4 * column) & 0x7FFFFFFF)
                            )
                        if frames[f, 2] > latest:
                            latest = frames[f, 2]
                        f += 1
                    else:  # IMU6 or IMU9
                        if k >= imu_capacity:
                            stop = _STOP_FULL
                            break
                        t = shift + base + (_word(phases, i + 4) & 0x7FFFFFFF)
                        imu_t[k] = np.uint64(t)
                        imu_bits[k, 0] = np.uint32(_word(phases, i + 32))
                        for axis in range(6):
                            imu_bits[k, 1 + axis] = np.uint32(_word(phases, i + 8 + 4 * axis))
                        for axis in range(3):
                            imu_bits[k, 7 + axis] = (
                                np.uint32(_word(phases, i + 36 + 4 * axis))
                                if kind == IMU9
                                else np.uint32(_NAN_BITS)
                            )
                        k += 1
                        if t > latest:
                            latest = t
                i += event_size
                remaining -= 1
            if remaining == 0:
                skip = pad
            continue
        # A packet header.
        if i + _HEADER_SIZE > size:
            need = _HEADER_SIZE
            break
        packet_type = _i16(data, i)
        packet_source = _i16(data, i + 2)
        packet_size = _i32(data, i + 4)
        ts_offset = _i32(data, i + 8)
        overflow = _i32(data, i + 12)
        packet_capacity = _i32(data, i + 16)
        number = _i32(data, i + 20)
        if packet_size <= 0:
            error = 1
        elif packet_capacity < 0 or number < 0 or number > packet_capacity:
            error = 2
        elif overflow < 0:
            error = 3
        elif ts_offset < 0 or ts_offset + 4 > packet_size:
            error = 4
        elif 0 <= packet_type <= IMU9:
            if packet_size < (8, 8, 36, 36, 48)[packet_type]:
                error = 5
            elif ts_offset != (4, 4, 8, 4, 4)[packet_type]:
                error = 4
        if error:
            stop = _STOP_ERROR
            error_at = i
            break
        i += _HEADER_SIZE
        if 0 <= packet_type <= IMU9 and (source < 0 or packet_source == source):
            kind = packet_type
            event_size = packet_size
            base = overflow << 31
            remaining = number
            pad = (packet_capacity - number) * packet_size
            if remaining == 0:
                skip = pad
        else:
            skip = packet_capacity * packet_size
    state[_REMAINING] = remaining
    state[_SKIP] = skip
    state[_PAD] = pad
    state[_TYPE] = kind
    state[_SIZE] = event_size
    state[_OVERFLOW] = base >> 31
    state[_SHIFT] = shift
    state[_LATEST] = latest
    state[_NEED] = need
    state[_STOP] = stop
    state[_ERROR] = error
    state[_ERROR_AT] = error_at
    state[_RESETS] = resets
    state[_DROPPED] = dropped
    return i, n, m, k, f


def _phases(data: npt.NDArray[np.uint8]) -> Any:
    """Four overlapping little-endian 32-bit views of ``data``, row k starting at byte k, so
    that the word at any byte ``i`` is ``[i & 3, i >> 2]``: one load, although packet
    contents have no fixed alignment. The kernel reads only words that lie wholly inside
    ``data`` (the last column of rows 1-3 may reach past it and is never read)."""
    columns = len(data) // 4
    source = data if columns else np.zeros(4, np.uint8)
    words = source[: max(columns, 1) * 4].view("<u4")
    return np.lib.stride_tricks.as_strided(words, shape=(4, columns), strides=(1, 4))


_KERNEL: Any = _decode  # typed loosely: numba's dispatcher signature is not mypy's business

_SOURCE_PATTERNS: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"dvs128|tmpdiff128", (128, 128)),
    (r"davis240|sbret", (240, 180)),
    (r"davis346", (346, 260)),
    (r"davis640", (640, 480)),
    (r"davis128", (128, 128)),
    (r"davis208|pixelparade|sensdavis192", (208, 192)),
)

SOURCE_SIZES = {
    "DVS128": (128, 128),
    "DAVIS128": (128, 128),
    "DAVIS208": (208, 192),
    "DAVIS240C": (240, 180),
    "DAVIS346B": (346, 260),
    "DAVIS640": (640, 480),
}
"""Device names written in ``#Source`` lines, and their sensor sizes."""


def sensor_size_of_source(description: str) -> tuple[int, int] | None:
    """The sensor size of a ``#Source`` device name (DVS128, DAVIS240C, DAVIS346B, ...)."""
    name = description.strip().lower()
    if name.startswith(("davishet", "cdavis")):
        return None  # colour DAVIS: event and frame resolutions differ
    for pattern, size in _SOURCE_PATTERNS:
        if re.match(pattern, name):
            return size
    return None


def _sources(lines: tuple[str, ...]) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in lines:
        match = re.fullmatch(r"Source (\d{1,5}): (.*)", line.strip())
        if match:
            found.setdefault(int(match.group(1)), match.group(2).strip())
    return found


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


def _parse_size(value: str, path: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,6})\s*x\s*(\d{1,6})\s*", value)
    size = check_sensor_size(int(match.group(1)), int(match.group(2))) if match else None
    if size is None or max(size) > _COORDINATE_LIMIT:
        raise FormatError(f"bad {SENSOR_SIZE_KEY} {value!r}", path=path, offset=0)
    return size


# -- writing ------------------------------------------------------------------------------------

_PACKET_EVENTS = 1 << 14
_PACKET_HEADER = struct.Struct("<hhiiiiii")
_TRIGGER_CODES = {(0, True): 2, (0, False): 3, (1, True): 6, (1, False): 7}
_TRIGGER_CODES |= {(2, True): 9, (2, False): 10}


def _runs(overflow: npt.NDArray[np.uint64], limit: int) -> list[tuple[int, int]]:
    """(start, stop) of packets: runs of one overflow value, at most ``limit`` long."""
    cuts = np.flatnonzero(np.diff(overflow)) + 1 if len(overflow) > 1 else np.empty(0, np.int64)
    bounds = [0, *cuts.tolist(), len(overflow)]
    out: list[tuple[int, int]] = []
    for start, stop in itertools.pairwise(bounds):
        out.extend((s, min(s + limit, stop)) for s in range(start, stop, limit))
    return out


class Aedat3Writer(FileWriter):
    """Writes AEDAT 3.1 files: polarity packets, special packets for triggers, IMU6/IMU9
    packets for IMU samples and frame packets for frames."""

    format_name = "aedat3"
    stores = ("triggers", "imu", "frames")

    most_trigger_id = 2

    def _why_unwritten(self, channel: str) -> str:
        if channel == "triggers":
            return "AEDAT 3 has external inputs 0, 1 and 2 only"
        return super()._why_unwritten(channel)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        camera: str | None = None,
        source: int = 1,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if (width is None) != (height is None):
            raise ValueError("give both width and height, or neither")
        size = check_sensor_size(width, height)
        if size is not None and max(size) > _COORDINATE_LIMIT:
            raise ValueError(
                f"AEDAT 3 stores 15-bit addresses: the sensor must fit "
                f"{_COORDINATE_LIMIT}x{_COORDINATE_LIMIT}, got {size[0]}x{size[1]}"
            )
        if not 0 <= int(source) < 1 << 15:
            raise ValueError(f"source must lie in 0..32767, got {source}")
        if camera is None:
            names = [name for name, known in SOURCE_SIZES.items() if known == size]
            camera = names[0] if names else "File"
        if not re.fullmatch(r"[\w\-. ]+", camera):
            raise ValueError(f"camera must be a plain device name, got {camera!r}")
        super().__init__(path)
        self.width, self.height = size or (_COORDINATE_LIMIT, _COORDINATE_LIMIT)
        self.camera = camera
        self.source = int(source)
        lines = [
            "!AER-DAT3.1",
            "Format: RAW",
            f"Source {self.source}: {camera}",
            datetime.datetime.now().astimezone().strftime("Start-Time: %Y-%m-%d %H:%M:%S (TZ%z)"),
        ]
        if size is not None:
            lines.append(f"{SENSOR_SIZE_KEY}: {size[0]}x{size[1]}")
        reserved = {"version", "header", "Format", "Start-Time", SENSOR_SIZE_KEY}
        for key, value in (metadata or {}).items():
            if key not in reserved and not key.startswith(("Source", "-Source", "!")):
                lines.append(f" {key}: {value}")
        lines.append(END_HEADER)
        self._file.write(format_lines(lines))

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        self._write_packet(Packet(events, triggers))

    def _write_packet(self, packet: Packet) -> None:
        events = as_events(packet.events)
        packets: list[list[tuple[int, int, bytes]]] = [
            self._triggers(np.asarray(packet.triggers).astype(TRIGGERS_DTYPE, copy=False)),
            self._polarity(events),
            self._frames(packet.frames),
            self._imu(np.asarray(packet.imu)),
        ]
        # Merge the types by first timestamp, each keeping its own order.
        heads = [0] * len(packets)
        while True:
            best = -1
            for index, queue in enumerate(packets):
                if heads[index] < len(queue) and (
                    best < 0 or queue[heads[index]][:2] < packets[best][heads[best]][:2]
                ):
                    best = index
            if best < 0:
                break
            self._file.write(packets[best][heads[best]][2])
            heads[best] += 1

    def _header(self, kind: int, size: int, ts_offset: int, overflow: int, count: int) -> bytes:
        return _PACKET_HEADER.pack(
            kind, self.source, size, ts_offset, overflow, count, count, count
        )

    @staticmethod
    def _check_times(times: npt.NDArray[np.uint64], what: str) -> None:
        if len(times) and int(times.max()) >= _MAX_TIME:
            raise ValueError(
                f"AEDAT 3 times are 62-bit: {what} time {int(times.max())} µs is at or past "
                "2**62 µs"
            )

    def _polarity(self, events: npt.NDArray[Any]) -> list[tuple[int, int, bytes]]:
        if len(events) == 0:
            return []
        x = events["x"].astype(np.uint32)
        y = events["y"].astype(np.uint32)
        if int(x.max()) >= self.width or int(y.max()) >= self.height:
            raise ValueError(
                f"events lie outside the {self.width}x{self.height} sensor "
                f"(max x {int(x.max())}, max y {int(y.max())})"
            )
        times = events["t"]
        self._check_times(times, "event")
        records = np.empty(len(events), [("data", "<u4"), ("t", "<u4")])
        records["data"] = 1 | (events["on"].astype(np.uint32) << 1) | (y << 2) | (x << 17)
        records["t"] = times & np.uint64(0x7FFFFFFF)
        overflow = times >> np.uint64(31)
        out = []
        for start, stop in _runs(overflow, _PACKET_EVENTS):
            head = self._header(POLARITY, 8, 4, int(overflow[start]), stop - start)
            out.append((int(times[start]), POLARITY, head + records[start:stop].tobytes()))
        return out

    def _triggers(self, triggers: npt.NDArray[Any]) -> list[tuple[int, int, bytes]]:
        if len(triggers) == 0:
            return []
        times = triggers["t"]
        self._check_times(times, "trigger")
        codes = np.where(
            triggers["rising"],
            np.array([2, 6, 9])[triggers["id"]],
            np.array([3, 7, 10])[triggers["id"]],
        ).astype(np.uint32)
        records = np.empty(len(triggers), [("data", "<u4"), ("t", "<u4")])
        records["data"] = 1 | (codes << 1)
        records["t"] = times & np.uint64(0x7FFFFFFF)
        overflow = times >> np.uint64(31)
        out = []
        for start, stop in _runs(overflow, _PACKET_EVENTS):
            head = self._header(SPECIAL, 8, 4, int(overflow[start]), stop - start)
            out.append((int(times[start]), SPECIAL, head + records[start:stop].tobytes()))
        return out

    def _imu(self, imu: npt.NDArray[Any]) -> list[tuple[int, int, bytes]]:
        if len(imu) == 0:
            return []
        imu = imu.astype(IMU_DTYPE, copy=False)
        times = imu["t"]
        self._check_times(times, "IMU")
        nine = bool(np.isfinite(imu["magnetometer"]).any())
        columns = 10 if nine else 7
        records = np.empty(len(imu), [("info", "<u4"), ("t", "<u4"), ("v", "<f4", (columns,))])
        records["info"] = 1
        records["t"] = times & np.uint64(0x7FFFFFFF)
        records["v"][:, 0:3] = imu["accelerometer"]
        records["v"][:, 3:6] = imu["gyroscope"]
        records["v"][:, 6] = imu["temperature"]
        if nine:
            records["v"][:, 7:10] = imu["magnetometer"]
        kind, size = (IMU9, 48) if nine else (IMU6, 36)
        overflow = times >> np.uint64(31)
        out = []
        for start, stop in _runs(overflow, _PACKET_EVENTS):
            head = self._header(kind, size, 4, int(overflow[start]), stop - start)
            out.append((int(times[start]), kind, head + records[start:stop].tobytes()))
        return out

    def _frames(self, frames: tuple[Frame, ...]) -> list[tuple[int, int, bytes]]:
        out = []
        for frame in frames:
            pixels = np.asarray(frame.pixels)
            if pixels.dtype == np.uint8:
                pixels = pixels.astype(np.uint16) * np.uint16(257)
            elif pixels.dtype != np.uint16:
                raise ValueError(
                    f"AEDAT 3 frames hold 16-bit pixels: got {pixels.dtype} (convert to uint16)"
                )
            if pixels.ndim == 2:
                channels = 1
            elif pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4):
                channels = pixels.shape[2]
            else:
                raise ValueError(
                    f"AEDAT 3 frames are (H, W) or (H, W, 1|3|4) arrays, got {pixels.shape}"
                )
            length_y, length_x = pixels.shape[:2]
            if min(frame.x, frame.y) < 0 or max(length_x, length_y) >= 1 << 15:
                raise ValueError("a frame's position or size does not fit AEDAT 3")
            start = int(frame.t)
            exposure_start = start if frame.exposure_start is None else int(frame.exposure_start)
            exposure_end = start if frame.exposure_end is None else int(frame.exposure_end)
            end = max(start, exposure_end)
            times = np.array([start, end, exposure_start, exposure_end], np.uint64)
            self._check_times(times, "frame")
            overflow = int(times[1]) >> 31
            if any(int(t) >> 31 != overflow for t in times):
                raise ValueError(
                    f"the frame at t={start} µs spans a 2**31 µs boundary, which one AEDAT 3 "
                    "frame event cannot hold"
                )
            size = 36 + 2 * pixels.size
            body = struct.pack(
                "<IIIIIiiii",
                1 | channels << 1,
                *(int(t) & 0x7FFFFFFF for t in times),
                length_x,
                length_y,
                int(frame.x),
                int(frame.y),
            )
            head = self._header(FRAME, size, 8, overflow, 1)
            data = head + body + np.ascontiguousarray(pixels, "<u2").tobytes()
            out.append((end, FRAME, data))
        return out
