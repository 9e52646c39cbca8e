"""A fake camera model for the device tests: a driver and its emulated device.

The fake device answers two vendor requests (read its serial, write a 32-bit register), and
once its START register is 1 streams the bytes of packed EVENTS_DTYPE records on endpoint
0x81, in chunks of ``chunk_bytes`` (13-byte records split anywhere unless ``chunk_bytes`` is
a multiple of 13). Its decoder keeps a split record's head for the next chunk.
"""

from __future__ import annotations

import contextlib
import enum
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import aerflow
from aerflow.devices.driver import CameraDriver
from aerflow.devices.usb import CONTROL_IN_VENDOR, CONTROL_OUT_VENDOR, UsbDeviceInfo, UsbHandle
from aerflow.emulators.base import EmulatedDevice, EmulatedStall, StreamChunk
from aerflow.errors import ConfigurationError, DeviceError, DeviceProtocolError

FAKE_IDS = (0xFAE0, 0x0E01)
FAKE_WIDTH, FAKE_HEIGHT = 64, 48

GET_SERIAL = 0x01
WRITE_REGISTER = 0x02

START = 0x00
GAIN = 0x10
BIAS_ON = 0x14
BIAS_OFF = 0x18
MODE = 0x20
RESOLUTION = 0x24


class Mode(enum.Enum):
    NORMAL = 0
    FAST = 1


@dataclass(frozen=True)
class Biases:
    on: int = 100
    off: int = 50


@dataclass(frozen=True)
class FakeConfiguration:
    gain: int = 3
    biases: Biases = field(default_factory=Biases)
    mode: Mode = Mode.NORMAL
    resolution: int = 1
    """Cannot change while streaming."""


@dataclass(frozen=True)
class OtherConfiguration:
    gain: int = 3


def make_events(count: int, *, seed: int = 0) -> npt.NDArray[Any]:
    """``count`` events whose times (10 µs apart) say their index."""
    rng = np.random.default_rng(seed)
    events = np.empty(count, dtype=aerflow.EVENTS_DTYPE)
    events["t"] = np.arange(count, dtype=np.uint64) * 10 + 1000
    events["x"] = rng.integers(0, FAKE_WIDTH, count)
    events["y"] = rng.integers(0, FAKE_HEIGHT, count)
    events["on"] = rng.integers(0, 2, count).astype(bool)
    return events


class FakeDevice(EmulatedDevice):
    """The fake camera; ``log`` holds ("W", address, value), ("serial",) and ("sleep", s).

    ``unplug_after``: unplug once that many chunks were streamed; ``pause_after``: clear
    ``output_enabled`` then (and set ``paused``). ``output_enabled``: clear it to keep the
    data endpoint silent. ``finished`` is set when the recording has been
    played entirely."""

    def __init__(
        self,
        recording: str | None = None,
        *,
        serial: str | None = None,
        loop: bool = False,
        events: npt.NDArray[Any] | None = None,
        chunk_bytes: int = 1000,
        unplug_after: int | None = None,
        pause_after: int | None = None,
        address: int = 5,
        identify_error: bool = False,
        paced: bool = False,
    ) -> None:
        super().__init__(
            UsbDeviceInfo(
                vendor_id=FAKE_IDS[0],
                product_id=FAKE_IDS[1],
                bus=1,
                address=address,
                speed="super",
            )
        )
        if events is None:
            events = aerflow.read(recording) if recording is not None else make_events(5000)
        self.events = aerflow.as_events(events)
        self.data = self.events.tobytes()
        self.serial = serial or "FAKE0001"
        self.loop = loop
        self.chunk_bytes = chunk_bytes
        self.unplug_after = unplug_after
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.identify_error = identify_error
        self.paced = paced
        self.registers: dict[int, int] = {}
        self.output_enabled = True
        self.position = 0
        self.chunks = 0
        self.finished = threading.Event()

    def control_read(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        if request_type == CONTROL_IN_VENDOR and request == GET_SERIAL:
            self.log.append(("serial",))
            if self.identify_error:
                raise EmulatedStall("serial request refused")
            return self.serial.encode()
        raise EmulatedStall(f"unknown request 0x{request:02X}")

    def control_write(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        if request_type == CONTROL_OUT_VENDOR and request == WRITE_REGISTER and len(data) == 4:
            number = int.from_bytes(data, "little")
            self.registers[value] = number
            self.log.append(("W", value, number))
            return
        raise EmulatedStall(f"unknown request 0x{request:02X}")

    def bulk_write(self, endpoint: int, data: bytes) -> None:
        raise EmulatedStall("no bulk OUT endpoint")

    def bulk_read(self, endpoint: int, length: int) -> bytes:
        raise EmulatedStall("no bulk reads outside streaming")

    def stream_chunk(self, length: int) -> StreamChunk | None:
        if not self.output_enabled or self.registers.get(START) != 1:
            return StreamChunk(b"")
        if self.position >= len(self.data):
            if not self.loop or not self.data:
                self.finished.set()
                return None
            self.position = 0
        end = min(self.position + min(length, self.chunk_bytes), len(self.data))
        chunk = memoryview(self.data)[self.position : end]
        self.position = end
        self.chunks += 1
        if self.unplug_after is not None and self.chunks >= self.unplug_after:
            self.unplug()
        if self.chunks == self.pause_after:
            self.output_enabled = False
            self.paused.set()
        t_end = None
        if self.paced:
            t_end = int(self.events["t"][max(0, end // 13 - 1)])
        return StreamChunk(chunk, t_end)


class FakeDecoder:
    """Packed 13-byte records to events; a record split across chunks is completed by the
    next chunk. Output never refers to the input (the camera reuses its buffers)."""

    def __init__(self) -> None:
        self._head = b""
        self._t = 0

    def decode(self, data: npt.NDArray[np.uint8]) -> aerflow.Packet:
        buffer = self._head + data.tobytes()
        whole = len(buffer) // 13 * 13
        events = np.frombuffer(buffer[:whole], dtype=aerflow.EVENTS_DTYPE).copy()
        self._head = buffer[whole:]
        if len(events):
            self._t = int(events["t"][-1])
        return aerflow.Packet(events)

    @property
    def current_t(self) -> int:
        return self._t


class FakeDriver(CameraDriver):
    name = "fake_camera"
    model = "Fake Camera"
    ids = (FAKE_IDS,)
    width = FAKE_WIDTH
    height = FAKE_HEIGHT
    data_endpoint = 0x81
    raw_format = None
    configuration_type = FakeConfiguration

    @classmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        serial = handle.control_read(CONTROL_IN_VENDOR, GET_SERIAL, 0, 0, 32, 1.0).decode()
        return None if serial.startswith("OTHER") else serial

    def _write(self, address: int, value: int) -> None:
        self.handle.control_write(
            CONTROL_OUT_VENDOR, WRITE_REGISTER, address, 0, value.to_bytes(4, "little"), 1.0
        )

    def _apply(self, previous: FakeConfiguration | None, new: FakeConfiguration) -> None:
        settings = (
            (GAIN, lambda c: c.gain),
            (BIAS_ON, lambda c: c.biases.on),
            (BIAS_OFF, lambda c: c.biases.off),
            (MODE, lambda c: c.mode.value),
        )
        for address, get in settings:
            if previous is None or get(previous) != get(new):
                self._write(address, get(new))

    def open(self, configuration: Any) -> None:
        if not isinstance(configuration, FakeConfiguration):
            raise DeviceProtocolError("wrong configuration")
        self._write(RESOLUTION, configuration.resolution)
        self._apply(None, configuration)
        self.handle.sleep(0.5)
        self._write(START, 1)

    def update_configuration(self, previous: Any, configuration: Any) -> None:
        if previous.resolution != configuration.resolution:
            raise ConfigurationError("the resolution cannot change while streaming")
        self._apply(previous, configuration)

    def close(self) -> None:
        with contextlib.suppress(DeviceError):
            self._write(START, 0)

    def decoder(self) -> FakeDecoder:
        return FakeDecoder()


class OtherDriver(FakeDriver):
    """Shares the fake's ids; owns the devices whose serial starts with OTHER."""

    name = "other_camera"
    model = "Other Camera"
    configuration_type = OtherConfiguration

    @classmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        serial = handle.control_read(CONTROL_IN_VENDOR, GET_SERIAL, 0, 0, 32, 1.0).decode()
        return serial if serial.startswith("OTHER") else None

    def open(self, configuration: Any) -> None:
        self._write(START, 1)

    def update_configuration(self, previous: Any, configuration: Any) -> None:
        self._write(GAIN, configuration.gain)


class FailingDecoder(FakeDecoder):
    """Fails once it has been given more than 2000 bytes (its stream's third chunk or a
    batch reaching it)."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    def decode(self, data: npt.NDArray[np.uint8]) -> aerflow.Packet:
        self.received += len(data)
        if self.received > 2000:
            raise RuntimeError("decoder failure")
        return super().decode(data)


class FailingDriver(FakeDriver):
    def decoder(self) -> FakeDecoder:
        return FailingDecoder()


DRIVERS = [FakeDriver]


class TrackedFakeDevice(FakeDevice):
    """A fake device that the tests can find after the command line built it: every
    instance is appended to ``instances``. With $AERFLOW_TEST_READY set, the file it names
    is created when the first chunk is streamed."""

    instances: list[TrackedFakeDevice] = []  # noqa: RUF012 - shared on purpose

    def __init__(self, recording: str | None = None, **options: Any) -> None:
        super().__init__(recording, **options)
        TrackedFakeDevice.instances.append(self)
        self._ready = os.environ.get("AERFLOW_TEST_READY")

    def stream_chunk(self, length: int) -> StreamChunk | None:
        chunk = super().stream_chunk(length)
        if self._ready and chunk is not None and len(chunk.data):
            Path(self._ready).touch()
            self._ready = None
        return chunk


def register(monkeypatch: Any) -> None:
    """Make "fake_camera" a registered driver and emulator for the test's duration."""
    import aerflow.devices as devices

    monkeypatch.setitem(devices.DRIVERS, "fake_camera", "tests.devices_fake:FakeDriver")
    monkeypatch.setitem(devices.EMULATORS, "fake_camera", "tests.devices_fake:TrackedFakeDevice")
