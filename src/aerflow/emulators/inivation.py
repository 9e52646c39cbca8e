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

Every address, request and scale the emulators answer to comes from
:mod:`.inivation_registers`, written from the protocol notes, not from the drivers; the word
stream is written by :mod:`.inivation_words`.
"""

from __future__ import annotations

import itertools
import math
from abc import abstractmethod
from typing import Any

import numpy as np
import numpy.typing as npt

from ..devices.usb import UsbDeviceInfo
from ..events import IMU_DTYPE, TRIGGERS_DTYPE
from . import inivation_registers as reg
from .base import (
    GET_DESCRIPTOR,
    REQUEST_TYPE_STANDARD_IN,
    REQUEST_TYPE_VENDOR_IN,
    REQUEST_TYPE_VENDOR_OUT,
    STRING_DESCRIPTOR,
    EmulatedDevice,
    EmulatedStall,
    StreamChunk,
    language_table,
    string_descriptor,
)
from .inivation_recording import load_recording
from .inivation_words import (
    CHECKPOINT_SHIFT,
    WRAP_US,
    big_endian,
    encode_words,
    frame_words,
    imu_raw,
    imu_words,
)

__all__ = ["TRIGGER_ID_EDGE", "TRIGGER_ID_PULSE", "EmulatedDavis346", "EmulatedDvxplorer"]

_addresses = itertools.count(1)

SERIAL_INDEX = 3
"""The device descriptor's iSerialNumber in the emulators."""
TRIGGER_ID_EDGE = 0
"""The trigger id of the external input's edges in a recording (aerflow's, as its AEDAT 4
reader gives the external signal)."""
TRIGGER_ID_PULSE = 4
"""The trigger id of a detected pulse in a recording (AEDAT 4's external signal pulse)."""

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
                vendor_id=reg.VENDOR_ID,
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
        self.recording = load_recording(recording, self.WIDTH, self.HEIGHT, model_options)
        self._stream = np.empty(0, np.uint8)
        self._checkpoints = np.zeros(1, np.int64)
        self._cycle_us = WRAP_US
        self._prepared = False
        self._position = 0
        self._cycle = 0

    # ---------------------------------------------------------------------- registers

    def _default_registers(self) -> dict[tuple[int, int], int]:
        return {
            reg.LOGIC_VERSION: reg.LOGIC_VERSION_VALUE,
            reg.LOGIC_CLOCK: 104,
            reg.USB_CLOCK: 80,
            reg.CLOCK_DEVIATION: 1000,
            reg.DVS_SIZE_COLUMNS: self.WIDTH,
            reg.DVS_SIZE_ROWS: self.HEIGHT,
            reg.DVS_ORIENTATION: 0,
            reg.IMU_ORIENTATION: 0,
            reg.IMU_TYPE: 1,
        }

    def register(self, module: int, parameter: int) -> int:
        """A register's current value (0 if never set)."""
        return self.registers.get((module, parameter), 0)

    def clock(self, address: tuple[int, int]) -> float:
        return self.register(*address) * self.register(*reg.CLOCK_DEVIATION) / 1000.0

    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        if request_type == REQUEST_TYPE_VENDOR_IN and request == reg.REQUEST_CONFIG:
            if length != reg.PARAMETER_BYTES:
                raise EmulatedStall(f"parameter reads take 4 bytes, not {length}")
            self.log.append(("SPI_READ", value, index))
            if (value, index) not in self.registers:
                raise EmulatedStall(f"no parameter {value}:{index}")
            return self.registers[(value, index)].to_bytes(4, "big")
        if request_type == REQUEST_TYPE_STANDARD_IN and request == GET_DESCRIPTOR:
            kind, number = value >> 8, value & 0xFF
            self.log.append(("GET_DESCRIPTOR", kind, number))
            if kind != STRING_DESCRIPTOR:
                raise EmulatedStall(f"descriptor type {kind} is not emulated")
            if number == 0:
                return language_table()
            if number == self.info.serial_index and number != 0:
                return string_descriptor(self.serial)
            raise EmulatedStall(f"no string descriptor {number}")
        raise EmulatedStall(f"request 0x{request:02X} (type 0x{request_type:02X}) is not answered")

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        if request_type != REQUEST_TYPE_VENDOR_OUT:
            raise EmulatedStall(f"request type 0x{request_type:02X} is not answered")
        if request == reg.REQUEST_CONFIG:
            if len(data) != reg.PARAMETER_BYTES:
                raise EmulatedStall(f"parameter writes take 4 bytes, not {len(data)}")
            number = int.from_bytes(data, "big")
            self._check_write(value, index, number)
            self.log.append(("SPI", value, index, number))
            self._store(value, index, number)
        elif request == reg.REQUEST_MULTI_WRITE and self.DAVIS:
            size = reg.MULTI_WRITE_ENTRY_BYTES
            if index != 0 or len(data) != size * value or value == 0:
                raise EmulatedStall(f"a multi-write of {value} entries with {len(data)} bytes")
            entries = [
                (data[at], data[at + 1], int.from_bytes(data[at + 2 : at + size], "big"))
                for at in range(0, size * value, size)
            ]
            for module, parameter, number in entries:
                self._check_write(module, parameter, number)
            self.log.append(("MULTI", entries))
            for module, parameter, number in entries:
                self._store(module, parameter, number)
        else:
            raise EmulatedStall(f"request 0x{request:02X} is not answered")

    def _check_write(self, module: int, parameter: int, value: int) -> None:
        if module not in reg.MODULES:
            raise EmulatedStall(f"no module {module}")

    def _store(self, module: int, parameter: int, value: int) -> None:
        before = self.registers.get((module, parameter), 0)
        self.registers[(module, parameter)] = value
        if (module, parameter) == reg.MUX_TIMESTAMP_RUN and value == 1 and before != 1:
            # The host (re)starts the clock: the next playback encodes the stream again,
            # from the registers then, and starts at its beginning.
            self._prepared = False

    def bulk_write(self, endpoint: int, data: bytes) -> None:
        raise EmulatedStall(f"the device has no OUT endpoint 0x{endpoint:02X}")

    def bulk_read(self, endpoint: int, length: int) -> bytes:
        if endpoint != reg.DATA_ENDPOINT:
            raise EmulatedStall(f"no IN endpoint 0x{endpoint:02X}")
        chunk = self.stream_chunk(length)
        return b"" if chunk is None else bytes(chunk.data)

    # ------------------------------------------------------------------------ playback

    def streaming(self) -> bool:
        """True while the host has the multiplexer, USB output and DVS running."""
        get = self.registers.get
        return get(reg.MUX_RUN, 0) == 1 and get(reg.USB_RUN, 0) == 1 and get(reg.DVS_RUN, 0) == 1

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
            min((end - 1) >> (CHECKPOINT_SHIFT + 1), len(self._checkpoints) - 1)
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
        if self.register(*reg.EXTERNAL_INPUT_DETECTOR_RUN) != 1:
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
                    (time, TRIGGER_ID_EDGE, True),
                    (time + 1000, TRIGGER_ID_EDGE, False),
                ]
                rows.append((time + 2000, TRIGGER_ID_PULSE, True))
            triggers = np.array(rows, TRIGGERS_DTYPE)
        rising = self.register(*reg.EXTERNAL_INPUT_DETECT_RISING) == 1
        falling = self.register(*reg.EXTERNAL_INPUT_DETECT_FALLING) == 1
        pulses = self.register(*reg.EXTERNAL_INPUT_DETECT_PULSES) == 1
        out = []
        for time, channel, edge in zip(
            triggers["t"].tolist(),
            triggers["id"].tolist(),
            triggers["rising"].tolist(),
            strict=True,
        ):
            if channel == TRIGGER_ID_PULSE and pulses:
                code = 4
            elif channel == TRIGGER_ID_EDGE and edge and rising:
                code = 3
            elif channel == TRIGGER_ID_EDGE and not edge and falling:
                code = 2
            else:
                continue
            out.append((int(time), np.array([code], np.uint16)))
        return out

    def _imu(self) -> list[tuple[int, npt.NDArray[np.uint16]]]:
        """IMU blocks for the parts running, from the recording's samples or synthesised."""
        accelerometer = self.register(*reg.IMU_ACCELEROMETER_RUN) == 1
        gyroscope = self.register(*reg.IMU_GYROSCOPE_RUN) == 1
        temperature = self.register(*reg.IMU_TEMPERATURE_RUN) == 1
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
        flips = self.register(*reg.IMU_ORIENTATION)
        signs = np.array(
            [
                -1 if flips & reg.IMU_FLIP_X else 1,
                -1 if flips & reg.IMU_FLIP_Y else 1,
                -1 if flips & reg.IMU_FLIP_Z else 1,
            ]
        )
        accel = imu_raw(samples["accelerometer"] * signs, accel_g)
        gyro = imu_raw(samples["gyroscope"] * signs, gyro_dps)
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
                data += big_endian(first) + big_endian(second) + big_endian(az)
            if temperature:
                data += big_endian(int(temperatures[i]))
            if gyroscope:
                for v in gyro[i]:
                    data += big_endian(int(v))
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

    PRODUCT_ID = reg.DVXPLORER_PRODUCT_ID
    WIDTH, HEIGHT = reg.DVXPLORER_WIDTH, reg.DVXPLORER_HEIGHT
    DEFAULT_SERIAL = "DXA00001"
    DEFAULT_BCD = 0x0009
    DAVIS = False
    ACCELEROMETER_G = reg.DVXPLORER_ACCELEROMETER_G
    GYROSCOPE_DPS = reg.DVXPLORER_GYROSCOPE_DPS
    IMU_ACCEL_SHIFT = 3

    def _default_registers(self) -> dict[tuple[int, int], int]:
        registers = super()._default_registers()
        registers[reg.LOGIC_PATCH] = reg.DVXPLORER_LOGIC_PATCH
        registers[reg.IMU_ACCELEROMETER_SCALE] = 1
        registers[reg.IMU_GYROSCOPE_SCALE] = 2
        return registers

    def _check_write(self, module: int, parameter: int, value: int) -> None:
        super()._check_write(module, parameter, value)
        if module == reg.DEVICE and value > 0xFF:
            raise EmulatedStall(f"sensor register 0x{parameter:04X} takes a byte, not {value}")

    def _imu_scales(self) -> tuple[int, int]:
        # Range registers (Bosch codes) index the scale tables directly.
        return (
            self.register(*reg.IMU_ACCELEROMETER_SCALE) & 3,
            self.register(*reg.IMU_GYROSCOPE_SCALE) & 7,
        )

    def _temperature_calibration(self) -> tuple[float, float]:
        return reg.DVXPLORER_TEMPERATURE


class EmulatedDavis346(_EmulatedInivation):
    """An emulated DAVIS346 (346×260) playing ``recording`` (as :class:`EmulatedDvxplorer`),
    with APS frames rendered from the events: a horizontal gradient brightened by each
    pixel's activity since the previous frame.

    Options as :class:`EmulatedDvxplorer` (default ``bcd_device`` 0x0006); the register file
    also holds the filter-presence, orientation and IMU-type registers the driver reads.
    """

    PRODUCT_ID = reg.DAVIS346_PRODUCT_ID
    WIDTH, HEIGHT = reg.DAVIS346_WIDTH, reg.DAVIS346_HEIGHT
    DEFAULT_SERIAL = "00000001"
    DEFAULT_BCD = 0x0006
    DAVIS = True
    ACCELEROMETER_G = reg.DAVIS_ACCELEROMETER_G
    GYROSCOPE_DPS = reg.DAVIS_GYROSCOPE_DPS
    IMU_ACCEL_SHIFT = 2

    def _default_registers(self) -> dict[tuple[int, int], int]:
        registers = super()._default_registers()
        adc_clock = 30
        registers.update(
            {
                reg.LOGIC_PATCH: reg.DAVIS346_LOGIC_PATCH,
                reg.ADC_CLOCK: adc_clock,
                reg.DVS_HAS_PIXEL_FILTER: 1,
                reg.DVS_HAS_BACKGROUND_ACTIVITY_FILTER: 1,
                reg.DVS_HAS_ROI_FILTER: 1,
                reg.DVS_HAS_SKIP_FILTER: 1,
                reg.DVS_HAS_POLARITY_FILTER: 1,
                reg.APS_HAS_GLOBAL_SHUTTER: 1,
                reg.APS_ORIENTATION: 0,
                reg.APS_START_COLUMN: 0,
                reg.APS_START_ROW: 0,
                reg.APS_END_COLUMN: reg.DAVIS346_WIDTH - 1,
                reg.APS_END_ROW: reg.DAVIS346_HEIGHT - 1,
                reg.APS_EXPOSURE: 4000 * adc_clock,
                reg.APS_FRAME_INTERVAL: 40000 * adc_clock,
                reg.IMU_ACCELEROMETER_SCALE: 1,
                reg.IMU_GYROSCOPE_SCALE: 1,
            }
        )
        return registers

    def _dvs_invert(self) -> bool:
        return bool(self.register(*reg.DVS_ORIENTATION) & reg.INVERT_XY)

    def _imu_scales(self) -> tuple[int, int]:
        return (
            self.register(*reg.IMU_ACCELEROMETER_SCALE) & 3,
            self.register(*reg.IMU_GYROSCOPE_SCALE) & 3,
        )

    def _temperature_calibration(self) -> tuple[float, float]:
        return reg.DAVIS_TEMPERATURE.get(self.register(*reg.IMU_TYPE), (340.0, 35.0))

    def window(self) -> tuple[int, int, int, int]:
        """(left, top, width, height) of the APS window registers, clipped to the sensor."""
        left = min(self.register(*reg.APS_START_COLUMN), reg.DAVIS346_WIDTH - 1)
        top = min(self.register(*reg.APS_START_ROW), reg.DAVIS346_HEIGHT - 1)
        right = min(max(self.register(*reg.APS_END_COLUMN), left), reg.DAVIS346_WIDTH - 1)
        bottom = min(max(self.register(*reg.APS_END_ROW), top), reg.DAVIS346_HEIGHT - 1)
        return left, top, right - left + 1, bottom - top + 1

    def _frames(self, last: int) -> list[tuple[int, npt.NDArray[np.uint16]]]:
        if self.register(*reg.APS_RUN) != 1:
            return []
        adc = self.clock(reg.ADC_CLOCK)
        if adc <= 0:
            return []
        exposure = max(round(self.register(*reg.APS_EXPOSURE) / adc), 1)
        interval = round(self.register(*reg.APS_FRAME_INTERVAL) / adc)
        if interval <= 0:
            return []
        left, top, width, height = self.window()
        orientation = self.register(*reg.APS_ORIENTATION)
        start_code = 8 if self.register(*reg.APS_GLOBAL_SHUTTER) == 1 else 9
        events = self.recording.events
        times = events["t"].astype(np.int64)
        gradient = np.linspace(100.0, 900.0, reg.DAVIS346_WIDTH)[None, :].repeat(
            reg.DAVIS346_HEIGHT, 0
        )
        out = []
        previous = 0
        for start in range(interval, max(last, 0) - exposure, interval):
            low, high = np.searchsorted(times, [previous, start])
            activity = np.zeros((reg.DAVIS346_HEIGHT, reg.DAVIS346_WIDTH))
            np.add.at(activity, (events["y"][low:high], events["x"][low:high]), 1.0)
            image = np.clip(gradient + 64.0 * activity, 0, 1023).astype(np.int64)
            window = image[top : top + height, left : left + width]
            out += frame_words(window, orientation, start_code, start, exposure)
            previous = start
        return out
