"""Writing iniVation AEDAT 3.1 files: :class:`Aedat3Writer` and the packets it writes."""

from __future__ import annotations

import datetime
import itertools
import os
import re
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import IMU_DTYPE, TRIGGERS_DTYPE, Frame, Packet, as_events
from ._aedat3_kernels import FRAME, IMU6, IMU9, POLARITY, SPECIAL
from ._aedat3_sensor import _COORDINATE_LIMIT, SENSOR_SIZE_KEY, SOURCE_SIZES
from ._base import FileWriter, check_sensor_size
from .aedat_header import END_HEADER, format_lines

__all__ = ["Aedat3Writer"]

_MAX_TIME = 1 << 62  # overflow (31 bits) << 31 | 31-bit timestamp

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
