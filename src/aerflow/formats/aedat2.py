"""iniVation AEDAT 1.0 and 2.0 (jAER): '#' header lines, then big-endian records.

AEDAT 1.0 records are ``int16 address, int32 timestamp`` (6 bytes), AEDAT 2.0 records
``int32 address, int32 timestamp`` (8 bytes), both big-endian, timestamps in µs. How an
address maps to an event depends on the jAER chip class named by the header's ``AEChip``
(or ``HardwareInterface``) line, or on the reader's ``camera`` option:

* DVS128 (16-bit address): bit 15 external event, bits 14-8 y, bits 7-1 x, bit 0 polarity
  (1 = ON); higher address bits are ignored.
* DAVIS (DAVIS240, DAVIS346, DAVIS640, ...): bit 31 set = an APS pixel read or an IMU
  sample (skipped and counted, never decoded as events); otherwise bits 30-22 y,
  bits 21-12 x, bits 11-10 ``00`` OFF, ``10`` ON, ``01``/``11`` external event.

External events become triggers (id 0, rising: the format records no edge). Coordinates are
returned as stored (jAER's origin is the lower-left corner) unless ``flip_y=True``.
Timestamps are unwrapped as unsigned 32-bit values: a drop of more than 2**31 µs between
consecutive records is a counter wrap (2**32 µs are added); smaller drops, which old files
have, are kept as they are.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from ..errors import FormatError, NotThisFormatError, TruncatedDataWarning
from ._base import (
    DEFAULT_CHUNK_SIZE,
    ChunkedReader,
    FileWriter,
    Properties,
    SecondShare,
    TimeOrigin,
    check_sensor_size,
)
from ._clock32 import HALF, MAX_ORIGIN, WRAP, Clock32Writer
from .aedat_header import format_lines, header_entries, read_header

__all__ = ["CAMERAS", "Aedat2Reader", "Aedat2Writer", "Camera", "camera_from_header"]

log = logging.getLogger(__name__)

DVS128, DAVIS = 0, 1
TIME_ORIGIN_KEY = "aerflow_time_origin"
SENSOR_SIZE_KEY = "aerflow_sensor_size"

_PREVIOUS, _OFFSET, _APS, _IMU, _DROPPED = range(5)
_STATE_SIZE = 5


@dataclass(frozen=True)
class Camera:
    """An address layout and, where the chip fixes it, the sensor size."""

    layout: int
    width: int | None
    height: int | None
    chip_class: str | None
    """The jAER ``AEChip`` class written in headers."""

    @property
    def address_limit(self) -> tuple[int, int]:
        """The largest (x, y) + 1 the layout's bits hold."""
        return (128, 128) if self.layout == DVS128 else (1 << 10, 1 << 9)


_HINT_RECORDS = 1 << 16
"""Records read to suggest a camera when the header names none."""

CAMERAS: dict[str, Camera] = {
    "dvs128": Camera(DVS128, 128, 128, "ch.unizh.ini.jaer.chip.retina.DVS128"),
    "davis128": Camera(DAVIS, 128, 128, "eu.seebetter.ini.chips.davis.Davis128"),
    "davis208": Camera(DAVIS, 208, 192, "eu.seebetter.ini.chips.davis.Davis208"),
    "davis240": Camera(DAVIS, 240, 180, "eu.seebetter.ini.chips.davis.DAVIS240C"),
    "davis346": Camera(DAVIS, 346, 260, "eu.seebetter.ini.chips.davis.Davis346B"),
    "davis640": Camera(DAVIS, 640, 480, "eu.seebetter.ini.chips.davis.Davis640"),
    "davis": Camera(DAVIS, None, None, None),
}
"""Reader ``camera`` / writer ``camera`` choices. ``davis`` is the DAVIS layout without a
known sensor size (give ``width`` and ``height``)."""

# Chip names (jAER class or hardware interface names, lower case) and what they mean,
# tried in order.
_CHIP_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"dvs128|tmpdiff128", "dvs128"),
    (r"het640|cdavis", "davis"),
    (r"davis240|sbret", "davis240"),
    (r"346", "davis346"),
    (r"davis640", "davis640"),
    (r"davis128", "davis128"),
    (r"davis208|pixelparade|sensdavis192", "davis208"),
    (r"davis", "davis"),
)


def camera_from_header(entries: dict[str, str]) -> str | None:
    """The camera a jAER header names through ``AEChip`` (else ``HardwareInterface``)."""
    for key in ("AEChip", "HardwareInterface"):
        value = entries.get(key)
        if not value:
            continue
        name = value.strip().split(".")[-1].lower() if key == "AEChip" else value.lower()
        for pattern, camera in _CHIP_PATTERNS:
            if re.search(pattern, name):
                return camera
    return None


@njit(nogil=True, cache=True)
def _swap16(value: Any) -> Any:
    return ((value & 0xFF) << 8) | (value >> 8)


@njit(nogil=True, cache=True)
def _swap32(value: Any) -> Any:
    return (
        ((value & 0xFF) << 24) | ((value & 0xFF00) << 8) | ((value >> 8) & 0xFF00) | (value >> 24)
    )


@njit(nogil=True, cache=True)
def _decode(
    data: Any,
    state: Any,
    words: int,
    layout: int,
    width: int,
    height: int,
    flip: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    """Records of ``words`` little-endian-loaded words holding big-endian fields: 2 32-bit
    words (AEDAT 2.0) or 3 16-bit words (AEDAT 1.0)."""
    size = data.size - data.size % words
    capacity = events.size
    trigger_capacity = triggers.size
    previous = state[_PREVIOUS]
    offset = state[_OFFSET]
    aps = state[_APS]
    imu = state[_IMU]
    dropped = state[_DROPPED]
    i = 0
    while i < size:
        if n >= capacity or m >= trigger_capacity:
            break
        if words == 2:
            address = _swap32(np.int64(data[i]))
            stamp = _swap32(np.int64(data[i + 1]))
        else:
            address = _swap16(np.int64(data[i]))
            stamp = (_swap16(np.int64(data[i + 1])) << 16) | _swap16(np.int64(data[i + 2]))
        i += words
        if stamp < previous and previous - stamp > HALF:
            offset += WRAP
        previous = stamp
        t = np.uint64(offset + stamp)
        if layout == DVS128:
            if address & 0x8000:
                trigger = triggers[m]
                trigger.t = t
                trigger.id = 0
                trigger.rising = True
                m += 1
                continue
            x = (address >> 1) & 0x7F
            y = (address >> 8) & 0x7F
            on = (address & 1) == 1
        else:
            if address >> 31:
                if (address >> 10) & 3 == 3:
                    imu += 1
                else:
                    aps += 1
                continue
            kind = (address >> 10) & 3
            if kind & 1:
                trigger = triggers[m]
                trigger.t = t
                trigger.id = 0
                trigger.rising = True
                m += 1
                continue
            x = (address >> 12) & 0x3FF
            y = (address >> 22) & 0x1FF
            on = kind == 2
        if x < width and y < height:
            event = events[n]
            event.t = t
            event.x = np.uint16(x)
            event.y = np.uint16(height - 1 - y if flip else y)
            event.on = on
            n += 1
        else:
            dropped += 1
    state[_PREVIOUS] = previous
    state[_OFFSET] = offset
    state[_APS] = aps
    state[_IMU] = imu
    state[_DROPPED] = dropped
    return i, n, m


_WORDS: dict[str, np.dtype[Any]] = {"1.0": np.dtype("<u2"), "2.0": np.dtype("<u4")}


class Aedat2Reader(ChunkedReader):
    """Reads iniVation AEDAT 1.0 and 2.0 (jAER) files."""

    format_name = "aedat2"
    word = _WORDS["2.0"]
    """32-bit words for AEDAT 2.0 (two per record); AEDAT 1.0 files read 16-bit words
    (three per record)."""
    events_per_byte = 1 / 6
    decoder = staticmethod(_decode)
    state_size = _STATE_SIZE
    max_group_events = 1

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        camera: str | None = None,
        width: int | None = None,
        height: int | None = None,
        flip_y: bool = False,
        version: str | None = None,
    ) -> None:
        super().__init__(path, chunk_size=chunk_size)
        try:
            self._open_header(camera, width, height, bool(flip_y), version)
        except BaseException:
            self.close()
            raise

    def _camera_hint(self, data_offset: int) -> str:
        """Which camera the first records' addresses fit, as words to add to the error."""
        records = np.fromfile(self.path, ">u4", count=2 * _HINT_RECORDS, offset=data_offset)
        addresses = records[0::2].astype(np.int64)
        if not len(addresses):
            return ""
        if int(addresses.max()) < 1 << 16:
            return ": the first records' addresses are 16-bit, as camera='dvs128' writes them"
        # DAVIS polarity events: bit 31 (APS/IMU) and bit 10 (external) clear.
        dvs = addresses[((addresses >> 31) == 0) & (((addresses >> 10) & 1) == 0)]
        if not len(dvs):
            return ""
        x_max, y_max = int(((dvs >> 12) & 0x3FF).max()), int(((dvs >> 22) & 0x1FF).max())
        for name, camera in CAMERAS.items():
            if camera.layout != DAVIS or camera.width is None or camera.height is None:
                continue
            if x_max < camera.width and y_max < camera.height:
                return (
                    f": the first records' DAVIS addresses (x up to {x_max}, y up to {y_max}) "
                    f"fit camera='{name}'"
                )
        return f": the first records' addresses reach x {x_max}, y {y_max} (camera='davis')"

    def _open_header(
        self,
        camera: str | None,
        width: int | None,
        height: int | None,
        flip_y: bool,
        version: str | None,
    ) -> None:
        if version is not None and version not in ("1.0", "2.0"):
            raise ValueError(f"version must be '1.0' or '2.0', got {version!r}")
        if camera is not None and camera not in CAMERAS:
            raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
        header = read_header(self._file, self.path, self._size)
        if header.version is not None and not header.version.startswith(("1.", "2.")):
            raise NotThisFormatError(
                f"an AEDAT {header.version} file, not AEDAT 1.0/2.0", path=self.path, offset=0
            )
        if header.version is None and version is None:
            raise NotThisFormatError(
                "not an AEDAT 1.0/2.0 file: no '#!AER-DAT' version line (pass version='1.0' "
                "to read a file without one)",
                path=self.path,
                offset=0,
            )
        if version is None:
            assert header.version is not None
            version = "1.0" if header.version.startswith("1.") else "2.0"
        self.version = version
        self._record = 6 if self.version == "1.0" else 8
        self._words = 3 if self.version == "1.0" else 2
        vars(self)["word"] = _WORDS[self.version]  # this file's word, over the class's
        entries = header_entries(header.lines)
        named = camera or camera_from_header(entries)
        if named is None:
            if self.version == "2.0":
                raise FormatError(
                    "the header names no chip (no AEChip or HardwareInterface line), so the "
                    "address layout is unknown: pass camera= with one of "
                    f"{', '.join(CAMERAS)}{self._camera_hint(header.data_offset)}",
                    path=self.path,
                    offset=0,
                )
            named = "dvs128"  # AEDAT 1.0 addresses are 16-bit: the DVS128 layout
        chip = CAMERAS[named]
        if chip.layout == DAVIS and self.version == "1.0":
            raise FormatError(
                f"camera {named} needs 32-bit addresses, but AEDAT 1.0 has 16-bit ones",
                path=self.path,
                offset=0,
            )
        self.camera = named
        self._layout = chip.layout
        geometry = check_sensor_size(width, height)
        if geometry is None and chip.width is not None and chip.height is not None:
            geometry = (chip.width, chip.height)
        if geometry is None and SENSOR_SIZE_KEY in entries:
            geometry = _sensor_size(entries[SENSOR_SIZE_KEY], self.path)
        if flip_y and geometry is None:
            raise ValueError(
                f"flip_y needs the sensor height, which camera {named!r} does not fix: "
                "pass width and height"
            )
        limit_x, limit_y = chip.address_limit
        self._width, self._height = geometry or (limit_x, limit_y)
        self._decoder_options = (
            self._words,
            self._layout,
            min(self._width, limit_x),
            min(self._height, limit_y),
            int(flip_y),
        )
        self._origin = _time_origin(entries, self.path)
        self.metadata = {"version": self.version, "camera": named, **entries}
        self.metadata["header"] = "\n".join(header.lines)
        self._data_offset = self._position = header.data_offset
        self.properties = Properties(
            format=self.format_name,
            width=geometry[0] if geometry else None,
            height=geometry[1] if geometry else None,
            t0=self._origin,
        )
        if not header.complete:
            warnings.warn(
                TruncatedDataWarning(f"{self.path}: the file ends inside its header"),
                stacklevel=4,
            )
        self._reset_state()

    @property
    def skipped_aps(self) -> int:
        """DAVIS APS pixel reads passed over so far (jAER stores frames pixel by pixel)."""
        return int(self._state[_APS])

    @property
    def skipped_imu(self) -> int:
        """DAVIS IMU sample words passed over so far (7 per IMU sample)."""
        return int(self._state[_IMU])

    def _packet_capacity(self, n_bytes: int) -> int:
        return n_bytes // self._record + self.max_group_events + 64

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare | None:
        per_record = self._words
        split = len(words) // per_record // 2 * per_record
        if split == 0:
            return None
        second = np.zeros(_STATE_SIZE, np.int64)
        if per_record == 2:
            second[_PREVIOUS] = int(words[split - 1].byteswap())
        else:
            high, low = (int(w) for w in words[split - 2 : split].byteswap())
            second[_PREVIOUS] = high << 16 | low
        return SecondShare(start=split, state=second, first_events=split // per_record)

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int]:
        # The second share counted wraps from zero: add those of the first.
        shift = int(first[_OFFSET])
        joined = second.copy()
        joined[_OFFSET] += shift
        for slot in (_APS, _IMU, _DROPPED):
            joined[slot] += first[slot]
        return joined, shift


def _sensor_size(value: str, path: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,6})\s*x\s*(\d{1,6})\s*", value)
    size = check_sensor_size(int(match.group(1)), int(match.group(2))) if match else None
    if size is None or max(size) > 1 << 15:
        raise FormatError(f"bad {SENSOR_SIZE_KEY} {value!r}", path=path, offset=0)
    return size


def _time_origin(entries: dict[str, str], path: str) -> int:
    value = entries.get(TIME_ORIGIN_KEY)
    if value is None:
        return 0
    try:
        origin = int(value)
    except ValueError:
        raise FormatError(
            f"header line {TIME_ORIGIN_KEY} is not an integer: {value!r}", path=path, offset=0
        ) from None
    if not 0 <= origin <= MAX_ORIGIN:
        raise FormatError(
            f"header line {TIME_ORIGIN_KEY} is outside 0..2**62 µs: {origin}", path=path, offset=0
        )
    return origin


def _choose_camera(width: int | None, height: int | None) -> str:
    if width is None or height is None:
        return "dvs128"
    for name in ("dvs128", "davis240", "davis346", "davis640"):
        chip = CAMERAS[name]
        assert chip.width is not None
        assert chip.height is not None
        if width <= chip.width and height <= chip.height:
            return name
    return "davis"


def merge_positions(event_times: npt.NDArray[Any], trigger_times: npt.NDArray[Any]) -> Any:
    """Where each of the (sorted) triggers goes among the events when both are merged by
    time, the events keeping their own order: before the first event not earlier than it."""
    if len(event_times) == 0:
        return np.zeros(len(trigger_times), np.int64)
    return np.searchsorted(np.maximum.accumulate(event_times), trigger_times, side="left")


class Aedat2Writer(FileWriter, TimeOrigin):
    """Writes AEDAT 2.0 files in the DVS128 or the DAVIS address layout, with the header
    lines jAER reads (``AEChip`` names the chip class)."""

    format_name = "aedat2"
    single_loop_us = 1 << 31  # signed 32-bit times, unwrapped by readers

    def _storable_triggers(self, triggers: npt.NDArray[Any]) -> npt.NDArray[Any]:
        kept: npt.NDArray[Any] = triggers[(triggers["id"] == 0) & triggers["rising"]]
        return kept

    def _why_unwritten(self, channel: str) -> str:
        if channel == "triggers":
            return "AEDAT 2.0 external events have no channel or edge (only id 0, rising, is kept)"
        return super()._why_unwritten(channel)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        camera: str | None = None,
        width: int | None = None,
        height: int | None = None,
        time_origin: int | None = None,
        flip_y: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if (width is None) != (height is None):
            raise ValueError("give both width and height, or neither")
        size = check_sensor_size(width, height)
        if camera is None:
            camera = _choose_camera(*(size or (None, None)))
        if camera not in CAMERAS:
            raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
        chip = CAMERAS[camera]
        limit_x, limit_y = chip.address_limit
        if chip.width is not None and chip.height is not None:
            limit_x, limit_y = chip.width, chip.height
        if size is not None and (size[0] > limit_x or size[1] > limit_y):
            raise ValueError(
                f"a {size[0]}x{size[1]} sensor does not fit camera {camera!r} "
                f"({limit_x}x{limit_y}); pick a larger camera"
            )
        if size is None and chip.width is None:
            raise ValueError("camera 'davis' needs width and height")
        if time_origin is not None and not 0 <= time_origin <= MAX_ORIGIN:
            raise ValueError("time_origin must lie in 0..2**62 µs")
        super().__init__(path)
        self.camera = camera
        self._chip = chip
        self.width, self.height = size or (limit_x, limit_y)
        self._sensor_height = chip.height if chip.height is not None else self.height
        self._flip = bool(flip_y)
        self._time_origin = time_origin
        self._metadata = dict(metadata or {})
        self._origin = 0
        self._header_written = False
        self._clock = Clock32Writer("AEDAT 2.0")

    def _ensure_header(self, first_t: int) -> None:
        if self._header_written:
            return
        origin = self._origin_for(first_t)
        self._origin = origin
        lines = [
            "!AER-DAT2.0",
            " This is a raw AE data file - do not edit",
            " Data format is int32 address, int32 timestamp (8 bytes total), repeated for "
            "each event",
            " Timestamps tick is 1 us",
            " created " + datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y"),
        ]
        if self._chip.chip_class is not None:
            lines.append(f" AEChip: {self._chip.chip_class}")
        else:
            lines.append(" AEChip: eu.seebetter.ini.chips.davis.DavisBaseCamera")
            lines.append(f" {SENSOR_SIZE_KEY}: {self.width}x{self.height}")
        reserved = {"AEChip", "HardwareInterface", TIME_ORIGIN_KEY, SENSOR_SIZE_KEY}
        for key, value in self._metadata.items():
            if key not in reserved and key not in ("version", "camera", "header"):
                lines.append(f" {key}: {value}")
        if origin:
            lines.append(f" {TIME_ORIGIN_KEY}: {origin}")
        lines.append("End Of ASCII Header")
        self._file.write(format_lines(lines))
        self._header_written = True

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events) == 0 and len(triggers) == 0:
            return
        x = events["x"].astype(np.int64)
        y = events["y"].astype(np.int64)
        if len(events) and (int(x.max()) >= self.width or int(y.max()) >= self.height):
            raise ValueError(
                f"events lie outside the {self.width}x{self.height} sensor of camera "
                f"{self.camera!r} (max x {int(x.max())}, max y {int(y.max())})"
            )
        if self._flip:
            y = self._sensor_height - 1 - y
        on = events["on"].astype(np.int64)
        if self._chip.layout == DVS128:
            addresses = (y << 8) | (x << 1) | on
            external = 0x8000
        else:
            addresses = (y << 22) | (x << 12) | (on << 11)
            external = 1 << 10
        times = events["t"]
        if len(triggers):
            order = np.argsort(triggers["t"], kind="stable")
            trigger_times = triggers["t"][order]
            at = merge_positions(times, trigger_times)
            addresses = np.insert(addresses, at, external)
            times = np.insert(times, at, trigger_times)
        first = int(times.min())
        # Checked before the header goes out: a refused write leaves nothing behind.
        low = self._clock.low_times(times, self._origin_for(first))
        self._ensure_header(first)
        records = np.empty(len(low), dtype=[("a", ">u4"), ("t", ">u4")])
        records["a"] = addresses
        records["t"] = low
        self._file.write(records.tobytes())

    def _finalize(self) -> None:
        self._ensure_header(0)
