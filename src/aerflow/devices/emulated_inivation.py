"""Emulated iniVation cameras: a DVXplorer and a DAVIS346 that answer the vendor requests from
a register file and stream word streams encoded from a recording.

Each emulator keeps a register file ``(module, parameter) -> u32``: reads of a register it
does not hold stall, writes are stored (reads then return them). Its ``log`` records, in
order:

* ``("SPI", module, parameter, value)`` for each 0xBF write,
* ``("SPI_READ", module, parameter)`` for each 0xBF read,
* ``("MULTI", [(module, parameter, value), ...])`` for a DAVIS 0xC2 multi-write,
* ``("GET_DESCRIPTOR", 3, index)`` for string-descriptor reads,
* ``("clear_halt", endpoint)`` and ``("sleep", seconds)``.

The data endpoint streams 16-bit words encoded from the recording's events, triggers and IMU
samples (and, on the DAVIS, APS frames rendered from the events), but only while the host
has the multiplexer, the USB output and the DVS running; otherwise it returns no data. The
stream is encoded, from the register values at that moment, the first time it plays after
the host starts the timestamp counter (0, 1 ← 1): IMU blocks only for the IMU parts running,
triggers only for the edge and pulse kinds the external-input detector is set to report,
frames only with the APS running, in the APS window, with the exposure and frame interval
set then. Changes made while it plays are stored but do not alter the stream, and the
emulator does not apply the FPGA's event filters. Device time starts at 0 at the recording's
first item; each playback starts from the beginning.
"""

from __future__ import annotations

import itertools
import math
import os
from abc import abstractmethod
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from ..events import IMU_DTYPE, TRIGGERS_DTYPE, Packet
from . import _inivation as ini
from . import inivation_davis346 as davis
from . import inivation_dvxplorer as dvx
from .emulation import EmulatedDevice, EmulatedStall, StreamChunk, warn_outside
from .usb import (
    CONTROL_IN_STANDARD,
    CONTROL_IN_VENDOR,
    CONTROL_OUT_VENDOR,
    GET_DESCRIPTOR,
    UsbDeviceInfo,
)

__all__ = ["EmulatedDavis346", "EmulatedDvxplorer"]

_addresses = itertools.count(1)

SERIAL_INDEX = 3
"""The device descriptor's iSerialNumber in the emulators."""
LANGUAGE_US_ENGLISH = 0x0409
WRAP_US = 0x8000
_CHECKPOINT_SHIFT = 9  # one time checkpoint every 512 words (1 KiB)

_OPTIONS = frozenset(
    (
        "bcd_device",
        "bus",
        "address",
        "registers",
        "duration",
        "rate",
        "seed",
        "imu_rate",
        "trigger_interval_us",
    )
)


# --------------------------------------------------------------------------------------------
# Encoder


@nb.njit(nogil=True, cache=True)
def _put(out: Any, k: int, word: int, checkpoints: Any, now: int) -> int:
    out[k] = word
    checkpoints[k >> _CHECKPOINT_SHIFT] = now
    return k + 1


@nb.njit(nogil=True, cache=True)
def _encode(
    davis: bool,
    t: Any,
    x: Any,
    y: Any,
    on: Any,
    insert_t: Any,
    insert_start: Any,
    insert_words: Any,
    end: int,
    dvs_invert: bool,
    out: Any,
    checkpoints: Any,
) -> int:
    """Encode sorted events and pre-encoded blocks of words (``insert_words[insert_start[i]:
    insert_start[i + 1]]`` at time ``insert_t[i]``, placed before events of the same time)
    into ``out``; then wrap the time up to ``end``. Returns the number of words."""
    n = t.size
    inserts = insert_t.size
    k = 0
    now = 0
    offset = 0
    last_column = -1
    last_group_word = -1
    last_row = -1
    i = 0
    j = 0
    while i < n or j < inserts or now < end:
        if j < inserts and (i >= n or insert_t[j] <= t[i]):
            target = np.int64(insert_t[j])
        elif i < n:
            target = np.int64(t[i])
        else:
            target = end
        while (target >> 15) > (offset >> 15):
            offset += WRAP_US
            if offset > now:
                now = offset
            k = _put(out, k, 0x7000, checkpoints, now)
        if target != now:
            now = target
            k = _put(out, k, 0x8000 | (target & 0x7FFF), checkpoints, now)
        if j < inserts and (i >= n or insert_t[j] <= t[i]):
            for w in range(insert_start[j], insert_start[j + 1]):
                k = _put(out, k, insert_words[w], checkpoints, now)
            j += 1
            continue
        if i >= n:
            continue
        if davis:
            row = np.int64(x[i]) if dvs_invert else np.int64(y[i])
            column = np.int64(y[i]) if dvs_invert else np.int64(x[i])
            if row != last_row:
                k = _put(out, k, 0x1000 | row, checkpoints, now)
                last_row = row
            k = _put(out, k, (0x3000 if on[i] else 0x2000) | column, checkpoints, now)
            i += 1
        else:
            column = np.int64(x[i])
            group = np.int64(y[i]) >> 3
            polarity = on[i]
            mask = 0
            e = i
            while (
                e < n
                and t[e] == t[i]
                and x[e] == x[i]
                and (np.int64(y[e]) >> 3) == group
                and on[e] == polarity
                and (mask >> (np.int64(y[e]) & 7)) & 1 == 0
            ):
                mask |= 1 << (np.int64(y[e]) & 7)
                e += 1
            if column != last_column:
                k = _put(out, k, 0x1000 | column, checkpoints, now)
                last_column = column
            # Even groups are addressed as group 0 (type 3), odd ones as group 1 (type 2),
            # through a positive or a negative distance.
            if group % 2 == 0:
                group_word = 0x4000 | group
                kind = 0x3000
            elif group % 4 == 1 or group + 1 >= 60:
                group_word = 0x4000 | (1 << 6) | (group - 1)
                kind = 0x2000
            else:
                group_word = 0x4000 | (1 << 11) | (1 << 6) | (group + 1)
                kind = 0x2000
            if group_word != last_group_word:
                k = _put(out, k, group_word, checkpoints, now)
                last_group_word = group_word
            k = _put(out, k, kind | (0 if polarity else 0x100) | mask, checkpoints, now)
            i = e
    return k


def encode_words(
    events: npt.NDArray[Any],
    inserts: list[tuple[int, npt.NDArray[np.uint16]]],
    *,
    davis: bool,
    end: int,
    dvs_invert: bool = False,
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]:
    """The word stream of ``events`` (any order; re-sorted in time) and ``inserts`` (blocks
    of words placed at a time), then timestamp wraps up to ``end`` µs. Returns the words and
    the time reached at the end of every 512-word block."""
    events = np.asarray(events)
    t = events["t"].astype(np.int64)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    on = events["on"].astype(np.bool_)
    if davis:
        row = x if dvs_invert else y
        order = np.lexsort((row, t))
    else:
        order = np.lexsort((y, on, y >> 3, x, t))
    t, x, y, on = t[order], x[order], y[order], on[order]
    inserts = sorted(inserts, key=lambda item: item[0])
    insert_t = np.array([time for time, _ in inserts], np.int64)
    lengths = np.array([len(words) for _, words in inserts], np.int64)
    insert_start = np.zeros(len(inserts) + 1, np.int64)
    np.cumsum(lengths, out=insert_start[1:])
    insert_words = (
        np.concatenate([words for _, words in inserts]).astype(np.uint16)
        if inserts
        else np.empty(0, np.uint16)
    )
    last = max(int(t[-1]) if len(t) else 0, int(insert_t[-1]) if len(insert_t) else 0, end)
    capacity = (3 if davis else 4) * len(t) + 2 * len(inserts) + int(insert_start[-1])
    capacity += (last >> 15) + 2
    out = np.empty(capacity, np.uint16)
    checkpoints = np.zeros((capacity >> _CHECKPOINT_SHIFT) + 1, np.int64)
    k = _encode(
        davis,
        t,
        x,
        y,
        on,
        insert_t,
        insert_start,
        insert_words,
        int(end),
        dvs_invert,
        out,
        checkpoints,
    )
    return out[:k], checkpoints[: ((k - 1) >> _CHECKPOINT_SHIFT) + 1 if k else 0]


def imu_words(config: int, data: list[int]) -> npt.NDArray[np.uint16]:
    """An IMU block: start code, config byte, data bytes, end code."""
    words = [0x0005, 0x5300 | (config & 0xFF), *(0x5000 | (b & 0xFF) for b in data), 0x0007]
    return np.array(words, np.uint16)


def _raw(values: npt.NDArray[Any], scale: float) -> npt.NDArray[np.int64]:
    clean = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(clean / scale * 32768.0), -32768, 32767).astype(np.int64)


def _be(value: int) -> list[int]:
    value &= 0xFFFF
    return [value >> 8, value & 0xFF]


def _load(recording: Any, width: int, height: int, options: dict[str, Any]) -> Packet:
    """Events (clipped to the sensor), triggers and IMU samples, re-timed to start at 0."""
    if recording is None:
        from ..events import concatenate_packets
        from ..synthetic import SyntheticSensor

        sensor = SyntheticSensor(
            width,
            height,
            duration=options.get("duration", "2s"),
            rate=float(options.get("rate", 500_000.0)),
            seed=int(options.get("seed", 0)),
        )
        packet = concatenate_packets(list(sensor))
    elif isinstance(recording, Packet):
        packet = recording
    elif isinstance(recording, (str, os.PathLike)):
        from ..api import open as open_recording

        with open_recording(recording) as reader:
            packet = reader.read()
    else:
        raise TypeError(
            f"recording must be a path, a Packet or None, not {type(recording).__name__}"
        )
    events = np.asarray(packet.events)
    inside = (events["x"] < width) & (events["y"] < height)
    if not inside.all():
        warn_outside(recording, int((~inside).sum()), len(events), width, height)
        events = events[inside]
    if len(events) > 1 and np.any(np.diff(events["t"].astype(np.int64)) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    triggers = np.asarray(packet.triggers, TRIGGERS_DTYPE)
    imu = np.asarray(packet.imu, IMU_DTYPE)
    firsts = [int(a["t"].min()) for a in (events, triggers, imu) if len(a)]
    zero = min(firsts) if firsts else 0

    def shifted(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        array = array.copy()
        array["t"] -= np.uint64(zero)
        return array

    return Packet(shifted(events), shifted(triggers), shifted(imu))


class _EmulatedInivation(EmulatedDevice):
    """What both emulators share: registers, vendor requests, descriptors and playback."""

    PRODUCT_ID: int
    WIDTH: int
    HEIGHT: int
    DEFAULT_SERIAL: str
    DEFAULT_BCD: int
    DAVIS: bool
    ACCELEROMETER_G: npt.NDArray[np.float64]
    GYROSCOPE_DPS: npt.NDArray[np.float64]
    IMU_ACCEL_SHIFT: int
    """Where the accelerometer scale sits in the IMU configuration word."""

    def __init__(
        self,
        recording: Any = None,
        *,
        serial: str | None = None,
        loop: bool = False,
        **model_options: Any,
    ) -> None:
        unknown = set(model_options) - _OPTIONS
        if unknown:
            raise TypeError(f"unknown emulator option(s): {', '.join(sorted(unknown))}")
        self.serial = self.DEFAULT_SERIAL if serial is None else serial
        super().__init__(
            UsbDeviceInfo(
                vendor_id=ini.VENDOR_ID,
                product_id=self.PRODUCT_ID,
                bus=int(model_options.get("bus", 1)),
                address=int(model_options.get("address", next(_addresses))),
                bcd_device=int(model_options.get("bcd_device", self.DEFAULT_BCD)),
                serial_index=SERIAL_INDEX if self.serial else 0,
                speed="super",
            )
        )
        self.loop = loop
        self.options = model_options
        self.registers: dict[tuple[int, int], int] = self._default_registers()
        for address, value in dict(model_options.get("registers", {})).items():
            self.registers[(int(address[0]), int(address[1]))] = int(value) & 0xFFFFFFFF
        self.recording = _load(recording, self.WIDTH, self.HEIGHT, model_options)
        self._stream = np.empty(0, np.uint8)
        self._checkpoints = np.zeros(1, np.int64)
        self._cycle_us = WRAP_US
        self._prepared = False
        self._position = 0
        self._cycle = 0

    # ---------------------------------------------------------------------- registers

    def _default_registers(self) -> dict[tuple[int, int], int]:
        return {
            ini.LOGIC_VERSION: ini.REQUIRED_LOGIC_VERSION,
            ini.LOGIC_CLOCK: 104,
            ini.USB_CLOCK: 80,
            ini.CLOCK_DEVIATION: 1000,
            ini.DVS_SIZE_COLUMNS: self.WIDTH,
            ini.DVS_SIZE_ROWS: self.HEIGHT,
            ini.DVS_ORIENTATION: 0,
            ini.IMU_ORIENTATION: 0,
            ini.IMU_TYPE: 1,
        }

    def register(self, module: int, parameter: int) -> int:
        """A register's current value (0 if never set)."""
        return self.registers.get((module, parameter), 0)

    def clock(self, address: tuple[int, int]) -> float:
        return self.register(*address) * self.register(*ini.CLOCK_DEVIATION) / 1000.0

    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        if request_type == CONTROL_IN_VENDOR and request == ini.REQUEST_CONFIG:
            if length != 4:
                raise EmulatedStall(f"parameter reads take 4 bytes, not {length}")
            self.log.append(("SPI_READ", value, index))
            if (value, index) not in self.registers:
                raise EmulatedStall(f"no parameter {value}:{index}")
            return self.registers[(value, index)].to_bytes(4, "big")
        if request_type == CONTROL_IN_STANDARD and request == GET_DESCRIPTOR:
            kind, number = value >> 8, value & 0xFF
            self.log.append(("GET_DESCRIPTOR", kind, number))
            if kind != ini.STRING_DESCRIPTOR:
                raise EmulatedStall(f"descriptor type {kind} is not emulated")
            if number == 0:
                return bytes((4, 3)) + LANGUAGE_US_ENGLISH.to_bytes(2, "little")
            if number == self.info.serial_index and number != 0:
                text = self.serial.encode("utf-16-le")
                return bytes((2 + len(text), 3)) + text
            raise EmulatedStall(f"no string descriptor {number}")
        raise EmulatedStall(f"request 0x{request:02X} (type 0x{request_type:02X}) is not answered")

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        if request_type != CONTROL_OUT_VENDOR:
            raise EmulatedStall(f"request type 0x{request_type:02X} is not answered")
        if request == ini.REQUEST_CONFIG:
            if len(data) != 4:
                raise EmulatedStall(f"parameter writes take 4 bytes, not {len(data)}")
            number = int.from_bytes(data, "big")
            self._check_write(value, index, number)
            self.log.append(("SPI", value, index, number))
            self._store(value, index, number)
        elif request == ini.REQUEST_MULTI_WRITE and self.DAVIS:
            if index != 0 or len(data) != 6 * value or value == 0:
                raise EmulatedStall(f"a multi-write of {value} entries with {len(data)} bytes")
            entries = [
                (data[6 * i], data[6 * i + 1], int.from_bytes(data[6 * i + 2 : 6 * i + 6], "big"))
                for i in range(value)
            ]
            for module, parameter, number in entries:
                self._check_write(module, parameter, number)
            self.log.append(("MULTI", entries))
            for module, parameter, number in entries:
                self._store(module, parameter, number)
        else:
            raise EmulatedStall(f"request 0x{request:02X} is not answered")

    def _check_write(self, module: int, parameter: int, value: int) -> None:
        if module not in (0, 1, 2, 3, 4, 5, 6, 9):
            raise EmulatedStall(f"no module {module}")

    def _store(self, module: int, parameter: int, value: int) -> None:
        before = self.registers.get((module, parameter), 0)
        self.registers[(module, parameter)] = value
        if (module, parameter) == ini.MUX_TIMESTAMP_RUN and value == 1 and before != 1:
            # The host (re)starts the clock: the next playback encodes the stream again,
            # from the registers then, and starts at its beginning.
            self._prepared = False

    def bulk_write(self, endpoint: int, data: bytes) -> None:
        raise EmulatedStall(f"the device has no OUT endpoint 0x{endpoint:02X}")

    def bulk_read(self, endpoint: int, length: int) -> bytes:
        if endpoint != ini.DATA_ENDPOINT:
            raise EmulatedStall(f"no IN endpoint 0x{endpoint:02X}")
        chunk = self.stream_chunk(length)
        return b"" if chunk is None else bytes(chunk.data)

    # ------------------------------------------------------------------------ playback

    def streaming(self) -> bool:
        """True while the host has the multiplexer, USB output and DVS running."""
        get = self.registers.get
        return get(ini.MUX_RUN, 0) == 1 and get(ini.USB_RUN, 0) == 1 and get(ini.DVS_RUN, 0) == 1

    def stream_chunk(self, length: int) -> StreamChunk | None:
        if not self.streaming():
            return StreamChunk(b"")
        if not self._prepared:
            with self.lock:
                if not self._prepared:
                    self._prepare()
        stream = self._stream
        position = self._position
        if position >= stream.size:
            if not self.loop:
                return None
            position = 0
            self._cycle += 1
        end = min(position + max(int(length), 1), stream.size)
        self._position = end
        checkpoint = self._checkpoints[
            min((end - 1) >> (_CHECKPOINT_SHIFT + 1), len(self._checkpoints) - 1)
        ]
        return StreamChunk(
            stream.data[position:end], self._cycle * self._cycle_us + int(checkpoint)
        )

    def _prepare(self) -> None:
        recording = self.recording
        inserts = self._triggers() + self._imu()
        last = max(
            [
                int(a["t"].max())
                for a in (recording.events, recording.triggers, recording.imu)
                if len(a)
            ]
            or [0]
        )
        inserts += self._frames(last)
        last = max([last] + [time for time, _ in inserts])
        cycle = (last // WRAP_US + 1) * WRAP_US
        words, checkpoints = encode_words(
            recording.events, inserts, davis=self.DAVIS, end=cycle, dvs_invert=self._dvs_invert()
        )
        self._stream = words.view(np.uint8)
        self._checkpoints = checkpoints if len(checkpoints) else np.zeros(1, np.int64)
        self._cycle_us = cycle
        self._position = 0
        self._cycle = 0
        self._prepared = True

    def _dvs_invert(self) -> bool:
        return False

    def _frames(self, last: int) -> list[tuple[int, npt.NDArray[np.uint16]]]:
        return []

    def _triggers(self) -> list[tuple[int, npt.NDArray[np.uint16]]]:
        """Trigger codes, for the kinds the detector is set to report."""
        if self.register(*ini.EXTERNAL_INPUT_DETECTOR_RUN) != 1:
            return []
        triggers = self.recording.triggers
        if len(triggers) == 0:
            interval = int(self.options.get("trigger_interval_us", 100_000))
            last = int(self.recording.events["t"].max()) if len(self.recording.events) else 0
            times: npt.NDArray[np.int64] = np.arange(
                interval if interval > 0 else last, last, max(interval, 1), dtype=np.int64
            )
            rows = []
            for time in times:
                rows += [
                    (time, ini.TRIGGER_ID_EDGE, True),
                    (time + 1000, ini.TRIGGER_ID_EDGE, False),
                ]
                rows.append((time + 2000, ini.TRIGGER_ID_PULSE, True))
            triggers = np.array(rows, TRIGGERS_DTYPE)
        rising = self.register(*ini.EXTERNAL_INPUT_DETECT_RISING) == 1
        falling = self.register(*ini.EXTERNAL_INPUT_DETECT_FALLING) == 1
        pulses = self.register(*ini.EXTERNAL_INPUT_DETECT_PULSES) == 1
        out = []
        for time, channel, edge in zip(
            triggers["t"].tolist(),
            triggers["id"].tolist(),
            triggers["rising"].tolist(),
            strict=True,
        ):
            if channel == ini.TRIGGER_ID_PULSE and pulses:
                code = 4
            elif channel == ini.TRIGGER_ID_EDGE and edge and rising:
                code = 3
            elif channel == ini.TRIGGER_ID_EDGE and not edge and falling:
                code = 2
            else:
                continue
            out.append((int(time), np.array([code], np.uint16)))
        return out

    def _imu(self) -> list[tuple[int, npt.NDArray[np.uint16]]]:
        """IMU blocks for the parts running, from the recording's samples or synthesised."""
        accelerometer = self.register(*ini.IMU_ACCELEROMETER_RUN) == 1
        gyroscope = self.register(*ini.IMU_GYROSCOPE_RUN) == 1
        temperature = self.register(*ini.IMU_TEMPERATURE_RUN) == 1
        if not (accelerometer or gyroscope or temperature):
            return []
        samples = self.recording.imu
        if len(samples) == 0:
            rate = float(self.options.get("imu_rate", 1000.0))
            last = int(self.recording.events["t"].max()) if len(self.recording.events) else 0
            times: npt.NDArray[np.uint64] = (
                np.arange(0, last, 1e6 / rate).astype(np.uint64)
                if rate > 0
                else np.empty(0, np.uint64)
            )
            samples = np.zeros(len(times), IMU_DTYPE)
            samples["t"] = times
            phase = samples["t"].astype(np.float64) / 1e6 * 2 * math.pi
            samples["accelerometer"][:, 0] = 0.05 * np.sin(phase)
            samples["accelerometer"][:, 1] = -1.0
            samples["accelerometer"][:, 2] = 0.05 * np.cos(phase)
            samples["gyroscope"][:, 0] = 10.0 * np.sin(phase)
            samples["gyroscope"][:, 1] = 5.0 * np.cos(phase)
            samples["gyroscope"][:, 2] = -3.0
            samples["temperature"] = 30.0
        accel_index, gyro_index = self._imu_scales()
        accel_g = float(self.ACCELEROMETER_G[accel_index])
        gyro_dps = float(self.GYROSCOPE_DPS[gyro_index])
        flips = self.register(*ini.IMU_ORIENTATION)
        signs = np.array(
            [
                -1 if flips & ini.IMU_FLIP_X else 1,
                -1 if flips & ini.IMU_FLIP_Y else 1,
                -1 if flips & ini.IMU_FLIP_Z else 1,
            ]
        )
        accel = _raw(samples["accelerometer"] * signs, accel_g)
        gyro = _raw(samples["gyroscope"] * signs, gyro_dps)
        divisor, offset = self._temperature_calibration()
        celsius = np.nan_to_num(np.asarray(samples["temperature"], np.float64), nan=offset)
        temperatures = np.clip(np.round((celsius - offset) * divisor), -32768, 32767)
        config = (
            (0x80 if accelerometer else 0)
            | (0x40 if gyroscope else 0)
            | (0x20 if temperature else 0)
            | accel_index << self.IMU_ACCEL_SHIFT
            | gyro_index
        )
        out = []
        for i, time in enumerate(samples["t"].tolist()):
            data: list[int] = []
            if accelerometer:
                ax, ay, az = (int(v) for v in accel[i])
                first, second = (ax, ay) if self.DAVIS else (ay, ax)
                data += _be(first) + _be(second) + _be(az)
            if temperature:
                data += _be(int(temperatures[i]))
            if gyroscope:
                for v in gyro[i]:
                    data += _be(int(v))
            out.append((int(time), imu_words(config, data)))
        return out

    @abstractmethod
    def _imu_scales(self) -> tuple[int, int]:
        """The model's accelerometer (g) and gyroscope (°/s) full scales."""

    @abstractmethod
    def _temperature_calibration(self) -> tuple[float, float]:
        """The model's IMU temperature (divisor, offset): °C = raw / divisor + offset."""


class EmulatedDvxplorer(_EmulatedInivation):
    """An emulated DVXplorer (640×480) playing ``recording``: a path to any file aerflow
    reads, a :class:`Packet`, or None for the synthetic sensor (``duration``, default "2s";
    ``rate``, default 500 000 events/s; ``seed``).

    Options: ``bcd_device`` (default 0x0009), ``registers`` ({(module, parameter): value}
    overriding the register file, e.g. ``{(6, 7): 3}`` for an old logic patch), ``imu_rate``
    (Hz of the IMU samples synthesised when the recording has none; default 1000),
    ``trigger_interval_us`` (period of the triggers synthesised when the recording has none;
    default 100 000), ``bus`` and ``address``. ``serial=""`` emulates a device without a
    serial string. ``loop=True`` replays the recording for ever, time running on.
    """

    PRODUCT_ID = dvx.PRODUCT_ID
    WIDTH, HEIGHT = dvx.WIDTH, dvx.HEIGHT
    DEFAULT_SERIAL = "DXA00001"
    DEFAULT_BCD = 0x0009
    DAVIS = False
    ACCELEROMETER_G = ini.DVXPLORER_ACCELEROMETER_G
    GYROSCOPE_DPS = ini.DVXPLORER_GYROSCOPE_DPS
    IMU_ACCEL_SHIFT = 3

    def _default_registers(self) -> dict[tuple[int, int], int]:
        registers = super()._default_registers()
        registers[ini.LOGIC_PATCH] = dvx.MINIMUM_LOGIC_PATCH
        registers[dvx.IMU_ACCELEROMETER_RANGE] = 1
        registers[dvx.IMU_GYROSCOPE_RANGE] = 2
        return registers

    def _check_write(self, module: int, parameter: int, value: int) -> None:
        super()._check_write(module, parameter, value)
        if module == ini.DEVICE and value > 0xFF:
            raise EmulatedStall(f"sensor register 0x{parameter:04X} takes a byte, not {value}")

    def _imu_scales(self) -> tuple[int, int]:
        # Range registers (Bosch codes) index the scale tables directly.
        return (
            self.register(*dvx.IMU_ACCELEROMETER_RANGE) & 3,
            self.register(*dvx.IMU_GYROSCOPE_RANGE) & 7,
        )

    def _temperature_calibration(self) -> tuple[float, float]:
        return ini.DVXPLORER_TEMPERATURE


class EmulatedDavis346(_EmulatedInivation):
    """An emulated DAVIS346 (346×260) playing ``recording`` (as :class:`EmulatedDvxplorer`),
    with APS frames rendered from the events: a horizontal gradient brightened by each
    pixel's activity since the previous frame.

    Options as :class:`EmulatedDvxplorer` (default ``bcd_device`` 0x0006); the register file
    also holds the filter-presence, orientation and IMU-type registers the driver reads.
    """

    PRODUCT_ID = davis.PRODUCT_ID
    WIDTH, HEIGHT = davis.WIDTH, davis.HEIGHT
    DEFAULT_SERIAL = "00000001"
    DEFAULT_BCD = 0x0006
    DAVIS = True
    ACCELEROMETER_G = ini.DAVIS_ACCELEROMETER_G
    GYROSCOPE_DPS = ini.DAVIS_GYROSCOPE_DPS
    IMU_ACCEL_SHIFT = 2

    def _default_registers(self) -> dict[tuple[int, int], int]:
        registers = super()._default_registers()
        adc_clock = 30
        registers.update(
            {
                ini.LOGIC_PATCH: davis.MINIMUM_LOGIC_PATCH,
                ini.ADC_CLOCK: adc_clock,
                davis.DVS_HAS_PIXEL_FILTER: 1,
                davis.DVS_HAS_BACKGROUND_ACTIVITY_FILTER: 1,
                davis.DVS_HAS_ROI_FILTER: 1,
                davis.DVS_HAS_SKIP_FILTER: 1,
                davis.DVS_HAS_POLARITY_FILTER: 1,
                davis.APS_HAS_GLOBAL_SHUTTER: 1,
                davis.APS_ORIENTATION: 0,
                davis.APS_START_COLUMN: 0,
                davis.APS_START_ROW: 0,
                davis.APS_END_COLUMN: davis.WIDTH - 1,
                davis.APS_END_ROW: davis.HEIGHT - 1,
                davis.APS_EXPOSURE: 4000 * adc_clock,
                davis.APS_FRAME_INTERVAL: 40000 * adc_clock,
                davis.IMU_ACCELEROMETER_FULL_SCALE: 1,
                davis.IMU_GYROSCOPE_FULL_SCALE: 1,
            }
        )
        return registers

    def _dvs_invert(self) -> bool:
        return bool(self.register(*ini.DVS_ORIENTATION) & ini.INVERT_XY)

    def _imu_scales(self) -> tuple[int, int]:
        return (
            self.register(*davis.IMU_ACCELEROMETER_FULL_SCALE) & 3,
            self.register(*davis.IMU_GYROSCOPE_FULL_SCALE) & 3,
        )

    def _temperature_calibration(self) -> tuple[float, float]:
        return ini.DAVIS_TEMPERATURE.get(self.register(*ini.IMU_TYPE), (340.0, 35.0))

    def window(self) -> tuple[int, int, int, int]:
        """(left, top, width, height) of the APS window registers, clipped to the sensor."""
        left = min(self.register(*davis.APS_START_COLUMN), davis.WIDTH - 1)
        top = min(self.register(*davis.APS_START_ROW), davis.HEIGHT - 1)
        right = min(max(self.register(*davis.APS_END_COLUMN), left), davis.WIDTH - 1)
        bottom = min(max(self.register(*davis.APS_END_ROW), top), davis.HEIGHT - 1)
        return left, top, right - left + 1, bottom - top + 1

    def _frames(self, last: int) -> list[tuple[int, npt.NDArray[np.uint16]]]:
        if self.register(*davis.APS_RUN) != 1:
            return []
        adc = self.clock(ini.ADC_CLOCK)
        if adc <= 0:
            return []
        exposure = max(round(self.register(*davis.APS_EXPOSURE) / adc), 1)
        interval = round(self.register(*davis.APS_FRAME_INTERVAL) / adc)
        if interval <= 0:
            return []
        left, top, width, height = self.window()
        orientation = self.register(*davis.APS_ORIENTATION)
        start_code = 8 if self.register(*davis.APS_GLOBAL_SHUTTER) == 1 else 9
        events = self.recording.events
        times = events["t"].astype(np.int64)
        gradient = np.linspace(100.0, 900.0, davis.WIDTH)[None, :].repeat(davis.HEIGHT, 0)
        out = []
        previous = 0
        for start in range(interval, max(last, 0) - exposure, interval):
            low, high = np.searchsorted(times, [previous, start])
            activity = np.zeros((davis.HEIGHT, davis.WIDTH))
            np.add.at(activity, (events["y"][low:high], events["x"][low:high]), 1.0)
            image = np.clip(gradient + 64.0 * activity, 0, 1023).astype(np.int64)
            window = image[top : top + height, left : left + width]
            out += frame_words(window, orientation, start_code, start, exposure)
            previous = start
        return out


def frame_words(
    image: npt.NDArray[Any], orientation: int, start_code: int, start: int, exposure: int
) -> list[tuple[int, npt.NDArray[np.uint16]]]:
    """The two blocks of one APS frame of ``image`` (10-bit values, the window's [y, x]):
    at ``start`` the frame start, reset reads and exposure start; at ``start + exposure`` the
    exposure end, signal reads and frame end. Reads are column by column in the APS's own
    order, undoing ``orientation`` so that the decoder rebuilds ``image``."""
    height, width = image.shape
    invert = bool(orientation & ini.INVERT_XY)
    rows, columns = (width, height) if invert else (height, width)
    r = np.arange(rows)
    c = np.arange(columns)
    r = rows - 1 - r if orientation & ini.FLIP_Y else r
    c = columns - 1 - c if orientation & ini.FLIP_X else c
    rr, cc = np.meshgrid(r, c)  # [column, row]
    values = image[cc, rr] if invert else image[rr, cc]
    values = np.clip(values, 0, 1023)
    reset = np.full_like(values, 1023)
    signal = reset - values

    def reads(code: int, samples: npt.NDArray[Any]) -> npt.NDArray[np.uint16]:
        block = np.empty((columns, rows + 2), np.uint16)
        block[:, 0] = code
        block[:, 1:-1] = 0x4000 | samples
        block[:, -1] = 13
        return block.reshape(-1)

    first = np.concatenate([[start_code], reads(11, reset), [14]]).astype(np.uint16)
    second = np.concatenate([[15], reads(12, signal), [10]]).astype(np.uint16)
    return [(start, first), (start + exposure, second)]
