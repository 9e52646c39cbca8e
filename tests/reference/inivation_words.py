"""Slow, plain-Python reference decoders for the iniVation DVXplorer and DAVIS346 word streams.

Written from the protocol notes (usb-devices §3.3 and §3.4, summarised in
``docs/formats/usb-inivation.md``, "Stream words") to cross-check the numba kernels of
``aerflow.devices._inivation``. They import nothing from ``aerflow``, walk the stream one
16-bit little-endian word at a time with Python integers and keep their state in a plain
dict. A trailing odd byte is ignored.

Conventions they share with the kernels (choices the notes leave open, stated here so the
comparison is meaningful):

* time: a timestamp word sets ``t = max(t, offset + low15)``; a wrap adds 0x8000 to the offset
  and sets ``t = max(t, offset)``;
* triggers: codes 2 / 3 are falling / rising edges of id 0, code 4 a pulse of id 4 (rising);
* IMU: a sample is timed by its start code (5) and emitted at the end code (7) only when
  exactly 14 bytes were placed; acceleration in g, rotation in °/s (raw × full scale / 32768),
  axes negated by the IMU orientation flips, NaN for absent parts, magnetometer NaN;
* DAVIS frames: the window given, readout column by column (reset column starts 11, signal
  column starts 12, column end 13), a pixel without both reads is 0; frame time = frame start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TRIGGERS = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])
IMU = np.dtype(
    [
        ("t", "<u8"),
        ("temperature", "<f4"),
        ("accelerometer", "<f4", (3,)),
        ("gyroscope", "<f4", (3,)),
        ("magnetometer", "<f4", (3,)),
    ]
)

DVX_ACCEL_G = {0: 2.0, 1: 4.0, 2: 8.0, 3: 16.0}
DVX_GYRO_DPS = {0: 2000.0, 1: 1000.0, 2: 500.0, 3: 250.0, 4: 125.0, 5: 125.0, 6: 125.0, 7: 125.0}
DAVIS_ACCEL_G = {0: 2.0, 1: 4.0, 2: 8.0, 3: 16.0}
DAVIS_GYRO_DPS = {0: 250.0, 1: 500.0, 2: 1000.0, 3: 2000.0}


def words_of(data: bytes) -> list[int]:
    """The little-endian 16-bit words of ``data`` (an odd last byte is dropped)."""
    return [data[i] | data[i + 1] << 8 for i in range(0, len(data) - 1, 2)]


def _signed(high: int, low: int) -> int:
    value = high << 8 | low
    return value - 0x10000 if value & 0x8000 else value


class _Imu:
    """The IMU block reader of both models."""

    def __init__(self, davis: bool, flips: int, temperature: tuple[float, float] | None) -> None:
        self.davis = davis
        self.flip_x = bool(flips & 4)
        self.flip_y = bool(flips & 2)
        self.flip_z = bool(flips & 1)
        self.temperature = temperature
        self.phase = "idle"  # idle, started, typed
        self.t = 0
        self.accel: float | None = None
        self.gyro: float | None = None
        self.has_temperature = False
        self.data = [0] * 14
        self.index = 0
        self.samples: list[tuple[Any, ...]] = []

    def start(self, t: int) -> None:
        self.phase = "started"
        self.t = t

    def word(self, word: int) -> None:
        subtype = (word >> 8) & 0xF
        if subtype == 3 and self.phase in ("started", "typed"):
            accel_present = bool(word & 0x80)
            gyro_present = bool(word & 0x40)
            self.has_temperature = bool(word & 0x20)
            if self.davis:
                self.accel = DAVIS_ACCEL_G[(word >> 2) & 3] if accel_present else None
                self.gyro = DAVIS_GYRO_DPS[word & 3] if gyro_present else None
            else:
                self.accel = DVX_ACCEL_G[(word >> 3) & 3] if accel_present else None
                self.gyro = DVX_GYRO_DPS[word & 7] if gyro_present else None
            self.data = [0] * 14
            if accel_present:
                self.index = 0
            elif self.has_temperature:
                self.index = 6
            elif gyro_present:
                self.index = 8
            else:
                self.index = 14
            self.phase = "typed"
        elif subtype == 0 and self.phase == "typed":
            if self.index < 14:
                self.data[self.index] = word & 0xFF
            # After the accelerometer (byte 5) and the temperature (byte 7) skip absent parts.
            if self.index == 5:
                if self.has_temperature:
                    self.index = 6
                elif self.gyro is not None:
                    self.index = 8
                else:
                    self.index = 14
            elif self.index == 7:
                self.index = 8 if self.gyro is not None else 14
            else:
                self.index += 1

    def end(self) -> None:
        if self.phase == "typed" and self.index == 14:
            b = self.data
            if self.davis:
                ax, ay = _signed(b[0], b[1]), _signed(b[2], b[3])
            else:
                ax, ay = _signed(b[2], b[3]), _signed(b[0], b[1])
            az = _signed(b[4], b[5])
            raw_temperature = _signed(b[6], b[7])
            gx, gy, gz = _signed(b[8], b[9]), _signed(b[10], b[11]), _signed(b[12], b[13])
            signs = (
                -1.0 if self.flip_x else 1.0,
                -1.0 if self.flip_y else 1.0,
                -1.0 if self.flip_z else 1.0,
            )
            if self.accel is None:
                accel = (math.nan, math.nan, math.nan)
            else:
                accel = tuple(
                    s * (v * self.accel / 32768.0) for s, v in zip(signs, (ax, ay, az), strict=True)
                )
            if self.gyro is None:
                gyro = (math.nan, math.nan, math.nan)
            else:
                gyro = tuple(
                    s * (v * self.gyro / 32768.0) for s, v in zip(signs, (gx, gy, gz), strict=True)
                )
            if self.has_temperature and self.temperature is not None:
                divisor, offset = self.temperature
                temperature = raw_temperature / divisor + offset
            else:
                temperature = math.nan
            self.samples.append((self.t, temperature, accel, gyro, (math.nan,) * 3))
        self.phase = "idle"

    def array(self) -> np.ndarray:
        out = np.zeros(len(self.samples), IMU)
        for i, sample in enumerate(self.samples):
            out[i] = sample
        return out


def decode_dvxplorer(data: bytes, imu_orientation: int = 0) -> dict[str, Any]:
    """Events, triggers and IMU samples of a DVXplorer word stream."""
    s = {"t": 0, "offset": 0, "column": None, "group0": None, "group1": None}
    imu = _Imu(False, imu_orientation, (512.0, 23.0))
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    for word in words_of(data):
        if word & 0x8000:
            s["t"] = max(s["t"], s["offset"] + (word & 0x7FFF))
            continue
        kind = (word >> 12) & 7
        if kind == 0:
            code = word & 0xFFF
            if code == 2:
                triggers.append((s["t"], 0, False))
            elif code == 3:
                triggers.append((s["t"], 0, True))
            elif code == 4:
                triggers.append((s["t"], 4, True))
            elif code == 5:
                imu.start(s["t"])
            elif code == 7:
                imu.end()
            # 0 reserved, 1 timestamp reset (ignored), other codes ignored
        elif kind == 1:
            column = word & 0x3FF
            s["column"] = column if column < 640 else None
        elif kind in (2, 3):
            group = s["group1"] if kind == 2 else s["group0"]
            if s["column"] is not None and group is not None:
                on = not (word >> 8) & 1
                for bit in range(8):
                    if word & (1 << bit):
                        events.append((s["t"], s["column"], group * 8 + bit, on))
        elif kind == 4:
            group0 = word & 0x3F
            distance = (word >> 6) & 0x1F
            group1 = group0 - distance if word & 0x800 else group0 + distance
            s["group0"] = group0 if group0 < 60 else None
            s["group1"] = group1 if 0 <= group1 < 60 else None
        elif kind == 5:
            imu.word(word)
        elif kind == 7:
            s["offset"] += 0x8000
            s["t"] = max(s["t"], s["offset"])
        # kind 6 ignored
    return {
        "events": np.array(events, EVENTS),
        "triggers": np.array(triggers, TRIGGERS),
        "imu": imu.array(),
        "t": s["t"],
    }


def decode_davis346(
    data: bytes,
    *,
    dvs_orientation: int = 0,
    aps_orientation: int = 0,
    imu_orientation: int = 0,
    imu_type: int = 1,
    window: tuple[int, int, int, int] = (0, 0, 346, 260),
) -> dict[str, Any]:
    """Events, triggers, IMU samples and frames (dicts with t, exposure_start, exposure_end,
    x, y and pixels [y, x] uint16) of a DAVIS346 word stream."""
    dvs_swap = bool(dvs_orientation & 4)
    flip_y = bool(aps_orientation & 1)
    flip_x = bool(aps_orientation & 2)
    aps_swap = bool(aps_orientation & 4)
    temperature = {1: (340.0, 35.0), 2: (333.87, 21.0)}.get(imu_type)
    imu = _Imu(True, imu_orientation, temperature)
    t = 0
    offset = 0
    row: int | None = None
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    frames: list[dict[str, Any]] = []
    frame: dict[str, Any] | None = None
    exposure_start: int | None = None
    exposure_end: int | None = None
    columns_done = {"reset": None, "signal": None}  # columns started, None: no frame
    reading: str | None = None  # "reset" / "signal" while a column is read
    read_row = 0
    for word in words_of(data):
        if word & 0x8000:
            t = max(t, offset + (word & 0x7FFF))
            continue
        kind = (word >> 12) & 7
        if kind == 0:
            code = word & 0xFFF
            if code in (2, 3, 4):
                triggers.append((t, 4 if code == 4 else 0, code != 2))
            elif code == 5:
                imu.start(t)
            elif code == 7:
                imu.end()
            elif code in (8, 9):
                left, top, width, height = window
                frame = {
                    "t": t,
                    "x": left,
                    "y": top,
                    "width": width,
                    "height": height,
                    "rows": width if aps_swap else height,
                    "columns": height if aps_swap else width,
                    "reset": {},
                    "value": {},
                }
                exposure_start = exposure_end = None
                columns_done = {"reset": 0, "signal": 0}
                reading = None
            elif code == 10:
                if frame is not None:
                    pixels = np.zeros((frame["height"], frame["width"]), np.uint16)
                    for (x, y), value in frame["value"].items():
                        pixels[y, x] = value
                    frames.append(
                        {
                            "t": frame["t"],
                            "exposure_start": exposure_start,
                            "exposure_end": exposure_end,
                            "x": frame["x"],
                            "y": frame["y"],
                            "pixels": pixels,
                        }
                    )
                    frame = None
                    exposure_start = exposure_end = None
                    columns_done = {"reset": None, "signal": None}
            elif code in (11, 12):
                which = "reset" if code == 11 else "signal"
                done = columns_done[which]
                if done is not None and frame is not None:
                    if done < frame["columns"]:
                        columns_done[which] = done + 1
                        reading = which
                        read_row = 0
                    else:
                        columns_done[which] = None
                        reading = None
            elif code == 13:
                reading = None
            elif code == 14:
                exposure_start = t
            elif code == 15:
                exposure_end = t
        elif kind == 1:
            value = word & 0xFFF
            row = value if value < (346 if dvs_swap else 260) else None
        elif kind in (2, 3):
            value = word & 0xFFF
            if row is not None and value < (260 if dvs_swap else 346):
                x, y = (row, value) if dvs_swap else (value, row)
                events.append((t, x, y, kind == 3))
        elif kind == 4:
            if reading is not None and frame is not None:
                column = columns_done[reading]
                if column is not None and column > 0:
                    r = frame["rows"] - 1 - read_row if flip_y else read_row
                    c = frame["columns"] - column if flip_x else column - 1
                    pixel = (r, c) if aps_swap else (c, r)
                    sample = word & 0xFFF
                    if reading == "reset":
                        frame["reset"][pixel] = sample
                    elif pixel in frame["reset"]:
                        before = frame["reset"][pixel]
                        if before < 384 or sample == 0:
                            frame["value"][pixel] = 1023 << 6
                        elif before < sample:
                            frame["value"][pixel] = 0
                        else:
                            frame["value"][pixel] = min(before - sample, 1023) << 6
                    if read_row < frame["rows"] - 1:
                        read_row += 1
                    else:
                        reading = None
        elif kind == 5:
            imu.word(word)
        elif kind == 7:
            offset += 0x8000
            t = max(t, offset)
    return {
        "events": np.array(events, EVENTS),
        "triggers": np.array(triggers, TRIGGERS),
        "imu": imu.array(),
        "frames": frames,
        "t": t,
    }
