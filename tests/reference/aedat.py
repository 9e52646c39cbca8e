"""Slow, plain-Python reference decoders (and builders) for iniVation AEDAT 1.0/2.0 and 3.x.

Written from ``docs/formats/aedat2.md`` and ``docs/formats/aedat3.md`` (iniVation's
"AEDAT file formats" page), not from aerflow's kernels; they import nothing from aerflow.
Each walks the file one record or event at a time with ordinary Python integers and
``struct``, one branch per documented case, so every line can be read against the spec.

Conventions shared with aerflow (chosen where the spec leaves room, stated here once):

* Header: text lines that start with ``#`` and end with LF (CR before it stripped); a '#'
  line holding a control byte (not tab) is data; ``#!END-HEADER`` (3.1) and jAER's
  ``#End Of ASCII Header`` end the header.
* AEDAT 1.0/2.0: timestamps unwrapped as unsigned 32-bit values (a drop of more than 2**31
  between consecutive records adds 2**32); external events -> trigger (t, 0, True); DAVIS
  APS/IMU words skipped; events outside the sensor dropped; ``flip_y`` stores
  ``height - 1 - y``.
* AEDAT 3.x: t = overflow << 31 | (timestamp & 0x7FFFFFFF) plus a time-base shift: a
  TIMESTAMP_RESET sets the shift to the latest time decoded so far (events, triggers, IMU
  samples, frame ends); external input specials -> triggers (types 2/3/4 id 0, 6/7/8 id 1,
  9/10/11 id 2; rising, falling, pulse = rising); frames -> dicts with the start of frame as
  ``t``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "EVENTS",
    "IMU",
    "TRIGGERS",
    "Aedat3Decoded",
    "Aedat3Error",
    "aedat2_file",
    "aedat3_file",
    "aedat3_packet",
    "davis_address",
    "decode_aedat2",
    "decode_aedat3",
    "dvs128_address",
    "parse_header",
]

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


# --------------------------------------------------------------------------- #
# Header                                                                      #
# --------------------------------------------------------------------------- #


def parse_header(data: bytes) -> tuple[str | None, list[str], int]:
    """(version 'x.y' or None, header lines without '#' and line end, data offset).

    A header line starts with '#' and is text (no control byte but tab; a '#' line with one
    is the first record); ``#!END-HEADER`` (3.1) or ``#End Of ASCII Header`` (jAER) ends it.
    """
    version = None
    lines: list[str] = []
    start = 0
    while start < len(data) and data[start] == ord("#"):
        newline = data.find(b"\n", start)
        stop = len(data) if newline == -1 else newline
        line = data[start + 1 : stop]
        if line.endswith(b"\r"):
            line = line[:-1]
        if any(byte < 0x20 and byte != 0x09 for byte in line):
            break
        text = line.decode("latin-1")
        if not lines and text.startswith("!AER-DAT"):
            version = text[len("!AER-DAT") :]
        lines.append(text)
        start = len(data) if newline == -1 else newline + 1
        if text == "!END-HEADER" or text.strip().lower() == "end of ascii header":
            break
    return version, lines, start


# --------------------------------------------------------------------------- #
# AEDAT 1.0 / 2.0                                                             #
# --------------------------------------------------------------------------- #


def dvs128_address(x: int, y: int, on: bool, external: bool = False) -> int:
    """DVS128 address (docs/formats/aedat2.md): bit 15 external, 14-8 y, 7-1 x, 0 polarity."""
    return (0x8000 if external else 0) | (y << 8) | (x << 1) | (1 if on else 0)


def davis_address(
    x: int = 0, y: int = 0, on: bool = False, kind: str = "dvs", imu_type: int = 0
) -> int:
    """DAVIS address (docs/formats/aedat2.md). kind: dvs, external, aps_reset, aps_signal, imu."""
    if kind == "dvs":
        return (y << 22) | (x << 12) | ((0b10 if on else 0b00) << 10)
    if kind == "external":
        return (y << 22) | (x << 12) | (0b01 << 10)
    if kind == "aps_reset":
        return (1 << 31) | (y << 22) | (x << 12) | (0b00 << 10) | 0x155
    if kind == "aps_signal":
        return (1 << 31) | (y << 22) | (x << 12) | (0b01 << 10) | 0x2AA
    if kind == "imu":
        return (1 << 31) | (imu_type << 28) | (0x1234 << 12) | (0b11 << 10)
    raise ValueError(kind)


def aedat2_file(
    records: list[tuple[int, int]], lines: list[str] | None = None, version: str = "2.0"
) -> bytes:
    """A file: header lines (default: version line and a DVS128 AEChip line), then
    big-endian (address, timestamp) records; timestamps are taken modulo 2**32 (and
    addresses modulo 2**16 in 1.0 files)."""
    if lines is None:
        lines = [f"!AER-DAT{version}", " AEChip: ch.unizh.ini.jaer.chip.retina.DVS128"]
    head = b"".join(b"#" + line.encode("latin-1") + b"\r\n" for line in lines)
    if version.startswith("1"):
        return head + b"".join(struct.pack(">HI", a & 0xFFFF, t & 0xFFFFFFFF) for a, t in records)
    return head + b"".join(struct.pack(">II", a, t & 0xFFFFFFFF) for a, t in records)


def decode_aedat2(
    data: bytes,
    layout: str,
    version: str,
    width: int,
    height: int,
    flip_y: bool = False,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(events, triggers, APS words, IMU words) of a whole file; ``layout`` is 'dvs128' or
    'davis', ``version`` '1.0' (6-byte records) or '2.0' (8-byte records)."""
    _, _, offset = parse_header(data)
    record = 6 if version == "1.0" else 8
    fmt = ">HI" if version == "1.0" else ">II"
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    aps = imu = 0
    previous = 0
    wraps = 0
    position = offset
    while position + record <= len(data):
        address, stamp = struct.unpack_from(fmt, data, position)
        position += record
        if stamp < previous and previous - stamp > 1 << 31:
            wraps += 1
        previous = stamp
        t = wraps * (1 << 32) + stamp
        if layout == "dvs128":
            address &= 0xFFFF
            if address >> 15:
                triggers.append((t, 0, True))
                continue
            y = (address >> 8) & 0x7F
            x = (address >> 1) & 0x7F
            on = address & 1 == 1
        else:
            if address >> 31:
                if (address >> 10) & 0b11 == 0b11:
                    imu += 1
                else:
                    aps += 1
                continue
            subtype = (address >> 10) & 0b11
            if subtype in (0b01, 0b11):
                triggers.append((t, 0, True))
                continue
            y = (address >> 22) & 0x1FF
            x = (address >> 12) & 0x3FF
            on = subtype == 0b10
        if x >= width or y >= height:
            continue
        if flip_y:
            y = height - 1 - y
        events.append((t, x, y, on))
    return np.array(events, EVENTS), np.array(triggers, TRIGGERS), aps, imu


# --------------------------------------------------------------------------- #
# AEDAT 3.x                                                                   #
# --------------------------------------------------------------------------- #


class Aedat3Error(ValueError):
    """A packet header the spec does not allow; ``offset`` is its byte offset."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"byte {offset}: {message}")
        self.offset = offset


@dataclass
class Aedat3Decoded:
    events: np.ndarray
    triggers: np.ndarray
    imu: np.ndarray
    frames: list[dict[str, Any]]
    truncated: bool
    resets: int
    header: list[str] = field(default_factory=list)


_MIN_SIZE = {0: 8, 1: 8, 2: 36, 3: 36, 4: 48}
_TS_OFFSET = {0: 4, 1: 4, 2: 8, 3: 4, 4: 4}
_TRIGGER_SPECIALS = {
    2: (0, True),
    3: (0, False),
    4: (0, True),
    6: (1, True),
    7: (1, False),
    8: (1, True),
    9: (2, True),
    10: (2, False),
    11: (2, True),
}


def decode_aedat3(
    data: bytes,
    width: int = 1 << 15,
    height: int = 1 << 15,
    flip_y: bool = False,
    source: int | None = None,
) -> Aedat3Decoded:
    """Decode a whole AEDAT 3.x file; raises :class:`Aedat3Error` at a bad packet header."""
    _, lines, position = parse_header(data)
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    imu: list[tuple[Any, ...]] = []
    frames: list[dict[str, Any]] = []
    shift = 0
    latest = 0
    resets = 0
    truncated = False
    while position < len(data):
        if position + 28 > len(data):
            truncated = True
            break
        (kind, src, size, ts_offset, overflow, capacity, number, _valid) = struct.unpack_from(
            "<hhiiiiii", data, position
        )
        if size <= 0:
            raise Aedat3Error("event size", position)
        if capacity < 0 or number < 0 or number > capacity:
            raise Aedat3Error("counts", position)
        if overflow < 0:
            raise Aedat3Error("overflow", position)
        if ts_offset < 0 or ts_offset + 4 > size:
            raise Aedat3Error("ts offset", position)
        if kind in _MIN_SIZE and size < _MIN_SIZE[kind]:
            raise Aedat3Error("size for type", position)
        if kind in _MIN_SIZE and ts_offset != _TS_OFFSET[kind]:
            raise Aedat3Error("ts offset for type", position)
        position += 28
        body_end = position + capacity * size
        wanted = kind in _MIN_SIZE and (source is None or src == source)
        if not wanted:
            if body_end > len(data):
                truncated = True
            position = body_end
            continue
        for index in range(number):
            at = position + index * size
            if at + size > len(data):
                truncated = True
                break
            first_word, stamp = struct.unpack_from("<II", data, at)
            if first_word & 1 == 0:
                continue  # invalid event
            t = shift + (overflow << 31) + (stamp & 0x7FFFFFFF)
            if kind == 1:
                latest = max(latest, t)
                x = (first_word >> 17) & 0x7FFF
                y = (first_word >> 2) & 0x7FFF
                on = (first_word >> 1) & 1 == 1
                if x < width and y < height:
                    events.append((t, x, height - 1 - y if flip_y else y, on))
            elif kind == 0:
                special = (first_word >> 1) & 0x7F
                if special == 1:  # TIMESTAMP_RESET
                    shift = latest
                    resets += 1
                elif special in _TRIGGER_SPECIALS:
                    channel, rising = _TRIGGER_SPECIALS[special]
                    triggers.append((t, channel, rising))
                    latest = max(latest, t)
            elif kind in (3, 4):
                values = struct.unpack_from("<7f", data, at + 8)
                magnet = struct.unpack_from("<3f", data, at + 36) if kind == 4 else (np.nan,) * 3
                imu.append((t, values[6], values[0:3], values[3:6], magnet))
                latest = max(latest, t)
            else:  # frame
                info = first_word
                channels = (info >> 1) & 0b111
                stamps = struct.unpack_from("<4I", data, at + 4)
                times = [shift + (overflow << 31) + (s & 0x7FFFFFFF) for s in stamps]
                lx, ly, px, py = struct.unpack_from("<4i", data, at + 20)
                if (
                    channels not in (1, 3, 4)
                    or min(lx, ly, px, py) < 0
                    or 36 + 2 * lx * ly * channels > size
                ):
                    raise Aedat3Error("frame", at)
                count = lx * ly * channels
                pixels = np.array(struct.unpack_from(f"<{count}H", data, at + 36), np.uint16)
                pixels = pixels.reshape((ly, lx) if channels == 1 else (ly, lx, channels))
                if flip_y:
                    pixels = pixels[::-1]
                    py = height - py - ly
                frames.append(
                    {
                        "t": times[0],
                        "end": times[1],
                        "exposure_start": times[2],
                        "exposure_end": times[3],
                        "x": px,
                        "y": py,
                        "pixels": pixels,
                    }
                )
                latest = max(latest, times[1])
        else:
            if body_end > len(data):
                truncated = True
            position = body_end
            continue
        break
    return Aedat3Decoded(
        np.array(events, EVENTS),
        np.array(triggers, TRIGGERS),
        np.array(imu, IMU),
        frames,
        truncated,
        resets,
        lines,
    )


def aedat3_packet(
    kind: int,
    events: list[bytes],
    *,
    size: int | None = None,
    source: int = 1,
    overflow: int = 0,
    ts_offset: int | None = None,
    capacity: int | None = None,
    number: int | None = None,
    valid: int | None = None,
) -> bytes:
    """One packet: the 28-byte header and the events (each padded to ``size`` bytes), then
    zero bytes up to ``capacity`` events."""
    if size is None:
        size = max((len(e) for e in events), default=8)
    number = len(events) if number is None else number
    capacity = number if capacity is None else capacity
    valid = number if valid is None else valid
    if ts_offset is None:
        ts_offset = _TS_OFFSET.get(kind, 4)
    head = struct.pack(
        "<hhiiiiii", kind, source, size, ts_offset, overflow, capacity, number, valid
    )
    body = b"".join(e.ljust(size, b"\0") for e in events)
    return head + body + b"\0" * max(capacity * size - len(body), 0)


def polarity_event(t: int, x: int, y: int, on: bool, valid: bool = True) -> bytes:
    """Polarity event (docs/formats/aedat3.md): bit 0 valid, 1 polarity, 2-16 y, 17-31 x; then
    timestamp."""
    word = (1 if valid else 0) | ((1 if on else 0) << 1) | (y << 2) | (x << 17)
    return struct.pack("<II", word, t & 0x7FFFFFFF)


def special_event(t: int, special: int, data: int = 0, valid: bool = True) -> bytes:
    """Special event (docs/formats/aedat3.md): bit 0 valid, bits 1-7 type, 8-31 data; then
    timestamp."""
    return struct.pack("<II", (1 if valid else 0) | special << 1 | data << 8, t & 0x7FFFFFFF)


def imu_event(
    t: int,
    accel: tuple[float, float, float],
    gyro: tuple[float, float, float],
    temperature: float,
    magnet: tuple[float, float, float] | None = None,
    valid: bool = True,
) -> bytes:
    """IMU6 (or IMU9 with ``magnet``): info, timestamp, accel xyz, gyro xyz, temp[, mag xyz]."""
    body = struct.pack("<II7f", 1 if valid else 0, t & 0x7FFFFFFF, *accel, *gyro, temperature)
    return body + (struct.pack("<3f", *magnet) if magnet is not None else b"")


def frame_event(
    times: tuple[int, int, int, int],
    pixels: np.ndarray,
    x: int = 0,
    y: int = 0,
    valid: bool = True,
) -> bytes:
    """Frame event: info (valid, channels), 4 timestamps (start/end of frame, start/end of
    exposure), lengths, position, 16-bit pixels row by row."""
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    info = (1 if valid else 0) | channels << 1
    head = struct.pack(
        "<I4I4i", info, *(t & 0x7FFFFFFF for t in times), pixels.shape[1], pixels.shape[0], x, y
    )
    return head + pixels.astype("<u2").tobytes()


def aedat3_file(packets: list[bytes], lines: list[str] | None = None) -> bytes:
    """Header lines (default: a 3.1 header for a DAVIS346B) and the packets."""
    if lines is None:
        lines = [
            "!AER-DAT3.1",
            "Format: RAW",
            "Source 1: DAVIS346B",
            "Start-Time: 2024-01-01 00:00:00 (TZ+0000)",
            "!END-HEADER",
        ]
    head = b"".join(b"#" + line.encode("latin-1") + b"\r\n" for line in lines)
    return head + b"".join(packets)
