"""The camera object against a fake model on the emulated bus, and the libusb backend's
logic (its error mapping, and its streaming against a scripted stand-in for usb1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
import aerflow.devices as devices
from aerflow.devices.camera import Camera
from aerflow.devices.usb import TransferStatus
from aerflow.emulators import EmulatedBackend
from aerflow.errors import (
    ConfigurationError,
    DeviceBusyError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
    DevicePermissionError,
    DeviceTimeoutError,
)
from aerflow.pipeline import run
from aerflow.sinks import NullSink

from .devices_fake import (
    GAIN,
    MODE,
    RESOLUTION,
    START,
    Biases,
    FailingDriver,
    FakeConfiguration,
    FakeDevice,
    FakeDriver,
    Mode,
    OtherConfiguration,
    OtherDriver,
    make_events,
)
from .helpers import assert_same_events, deadline

DRIVERS: list[Any] = [FakeDriver]
SMALL = {"buffer_length": 4096, "ring_length": 64}


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # Every test closes its cameras: whatever thread it started must be gone.
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, left


def open_fake(device: FakeDevice, **options: Any) -> Camera[Any]:
    speed = options.pop("speed", None)
    drivers = options.pop("drivers", DRIVERS)
    backend = EmulatedBackend([device], speed=speed)
    return devices.open(backend=backend, drivers=drivers, **{**SMALL, **options})


def read_packets(camera: Camera[Any]) -> tuple[list[np.ndarray], list[devices.Status]]:
    packets = []
    statuses = []
    with deadline(30):
        for status, packet in camera:
            statuses.append(status)
            packets.append(packet.events)
    return packets, statuses


def read_all(camera: Camera[Any]) -> tuple[np.ndarray, list[devices.Status]]:
    packets, statuses = read_packets(camera)
    return np.concatenate(packets), statuses


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    limit = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < limit, "condition not reached"
        time.sleep(0.001)


# -- decoding and raw mode ------------------------------------------------------------------------
def test_decoded_events_equal_what_the_device_played() -> None:
    expected = make_events(20_000)
    device = FakeDevice(events=expected, chunk_bytes=1000)  # records split across chunks
    with open_fake(device) as camera:
        assert camera.name == "fake_camera"
        assert camera.model == "Fake Camera"
        assert camera.serial == "FAKE0001"
        assert camera.sensor_size == (64, 48)
        assert camera.properties.live
        assert camera.configuration == FakeConfiguration()
        events, statuses = read_all(camera)
    assert_same_events(events, expected)
    assert all(s.ring is not None and s.ring.dropped_buffers == 0 for s in statuses)
    assert statuses[-1].current_t == int(expected["t"][-1])
    assert sum(s.ring.buffers for s in statuses if s.ring) == device.chunks
    assert all(s.delay() is not None and s.delay() >= 0 for s in statuses)  # type: ignore[operator]
    # The open sequence ran on the device, its delay recorded rather than slept; the end of
    # the recording closed the camera, which stopped the device.
    writes = [entry for entry in device.log if entry[0] in ("W", "sleep")]
    assert writes[:2] == [("W", RESOLUTION, 1), ("W", GAIN, 3)]
    assert ("sleep", 0.5) in writes
    assert writes[-1] == ("W", START, 0)
    assert camera.closed


def test_iterations_merge_at_most_max_buffers() -> None:
    expected = make_events(10_000)
    device = FakeDevice(events=expected, chunk_bytes=1300)
    camera = open_fake(device, max_buffers=3, ring_length=128)  # room for the 100 chunks
    assert device.finished.wait(10)
    wait_until(lambda: camera.backlog() == device.chunks)
    events, statuses = read_all(camera)
    assert_same_events(events, expected)
    merged = [s.ring.buffers for s in statuses if s.ring]
    assert max(merged) == 3
    assert sum(merged) == device.chunks


def test_raw_mode_returns_the_exact_bytes() -> None:
    expected = make_events(7_777)
    device = FakeDevice(events=expected, chunk_bytes=999)
    parts = []
    with open_fake(device, raw=True) as camera, deadline(30):
        for status, data in camera:
            assert isinstance(data, bytes)
            assert status.current_t is None
            assert status.ring is not None
            parts.append(data)
    assert b"".join(parts) == expected.tobytes()
    assert camera.closed


def test_a_camera_is_a_pipeline_and_tensor_source() -> None:
    expected = make_events(6_000)
    device = FakeDevice(events=expected, chunk_bytes=2600)
    sink = NullSink()
    with open_fake(device).stream() as stream:
        assert stream.properties.live
        assert stream.properties.sensor_size == (64, 48)
        run(stream, sink)
    assert sink.events == len(expected)
    assert stream.camera.closed

    from aerflow.tensors import frames

    with open_fake(FakeDevice(events=expected, chunk_bytes=2600)).stream() as stream:
        total = sum(float(frame.sum()) for frame in frames(stream, events=1000, device="numpy"))
    assert total == len(expected)


def test_a_raw_camera_is_not_a_stream() -> None:
    with open_fake(FakeDevice(), raw=True) as camera, pytest.raises(ValueError, match="raw"):
        camera.stream()


# -- a consumer that falls behind ---------------------------------------------------------------
def test_a_slow_consumer_makes_drops_that_are_counted_while_memory_stays_bounded() -> None:
    expected = make_events(60_000)
    record = expected.dtype.itemsize
    device = FakeDevice(events=expected, chunk_bytes=300 * record, pause_after=100)
    camera = open_fake(device, ring_length=4, lossless=False)  # whole records per chunk
    memory = camera._ring.nbytes
    # The consumer sleeps through the first half of the recording (100 chunks for 4 slots),
    assert device.paused.wait(10)
    packets: list[np.ndarray] = []
    statuses: list[devices.Status] = []
    with deadline(30):
        while camera.backlog() > 0:
            status, packet = next(camera)
            statuses.append(status)
            packets.append(packet.events)
    # then keeps up as best it can with the second.
    device.output_enabled = True
    more_packets, more_statuses = read_packets(camera)
    packets += more_packets
    statuses += more_statuses
    events = np.concatenate(packets)
    rings = [s.ring for s in statuses if s.ring is not None]
    assert rings[0].clutch_engaged
    dropped = rings[-1].dropped_buffers
    assert dropped > 0
    assert sum(r.buffers for r in rings) + dropped == device.chunks
    assert rings[-1].dropped_bytes == dropped * 300 * record
    assert all(r.backlog <= camera.ring_capacity for r in rings)
    assert camera._ring.nbytes == memory == 4 * 4096
    # What arrived is the recording with holes, and the holes are where the status says.
    index = ((events["t"] - 1000) // 10).astype(np.int64)
    assert_same_events(events, expected[index])
    offsets = np.cumsum([0] + [len(p) for p in packets])[:-1]
    starts = [
        int(offset + i)
        for offset, status in zip(offsets, statuses, strict=True)
        for i in (status.ring.overflow_indices if status.ring else ())
    ]
    jumps = [int(i) for i in np.flatnonzero(np.diff(index) != 1) + 1]
    assert starts == jumps
    assert starts  # at least one gap inside what was received


# -- clear_backlog --------------------------------------------------------------------------------
@pytest.mark.parametrize("max_buffers", [1, 64])
def test_clear_backlog_keeps_the_decoder_consistent(max_buffers: int) -> None:
    expected = make_events(1_539)  # 20 007 bytes: 21 chunks of 1000 bytes, records split
    device = FakeDevice(events=expected, chunk_bytes=1000)
    camera = open_fake(device, max_buffers=max_buffers)
    assert device.finished.wait(10)
    wait_until(lambda: camera.backlog() == 21)
    camera.clear_backlog(until=3)
    # Buffers the decode thread took together (max_buffers > 1) are discarded together:
    # at most 3 remain, exactly 3 when it takes them one by one.
    left = camera.backlog()
    assert left == 3 if max_buffers == 1 else left <= 3
    packets, _ = read_packets(camera)
    events = np.concatenate([expected[:0], *packets])
    # The chunks discarded were decoded: the first event returned is the record that ends
    # in the first chunk kept.
    discarded_bytes = (21 - left) * 1000
    assert_same_events(events, expected[discarded_bytes // 13 :])


def test_clear_backlog_to_nothing() -> None:
    device = FakeDevice(events=make_events(3_000), chunk_bytes=1000)
    camera = open_fake(device)
    assert device.finished.wait(10)
    wait_until(lambda: camera.backlog() == device.chunks)
    camera.clear_backlog()
    assert camera.backlog() == 0
    with deadline(10), pytest.raises(StopIteration):
        next(camera)
    assert camera.closed


def test_clear_backlog_in_raw_mode() -> None:
    expected = make_events(3_000)
    device = FakeDevice(events=expected, chunk_bytes=1000)
    camera = open_fake(device, raw=True)
    assert device.finished.wait(10)
    camera.clear_backlog(until=2)
    data = b"".join(packet for _, packet in camera)
    assert data == expected.tobytes()[(device.chunks - 2) * 1000 :]


# -- disconnection, errors, closing -------------------------------------------------------------
@pytest.mark.parametrize("raw", [False, True])
def test_unplugging_mid_stream_raises_on_the_next_iteration(raw: bool) -> None:
    expected = make_events(10_000)
    device = FakeDevice(events=expected, chunk_bytes=1000, unplug_after=5)
    before = set(threading.enumerate())
    camera = open_fake(device, raw=raw)
    received: list[Any] = []

    def consume() -> None:
        for _, packet in camera:
            received.append(packet)

    with deadline(30), pytest.raises(DeviceDisconnectedError) as error:
        consume()
    assert error.value.serial == "FAKE0001"
    # Everything received before the disconnection came first.
    if raw:
        assert b"".join(received) == expected.tobytes()[:5000]
    else:
        assert_same_events(np.concatenate([p.events for p in received]), expected[: 5000 // 13])
    assert camera.closed
    assert set(threading.enumerate()) == before
    with pytest.raises(DeviceDisconnectedError):  # and again, never a silent wait
        next(camera)


def test_a_decoder_failure_reaches_the_caller() -> None:
    device = FakeDevice(events=make_events(5_000), chunk_bytes=1000)
    camera = open_fake(device, drivers=[FailingDriver])
    with deadline(30), pytest.raises(RuntimeError, match="decoder failure"):
        for _ in camera:
            pass
    assert camera.closed


def test_close_from_another_thread_ends_a_waiting_iteration() -> None:
    device = FakeDevice(events=make_events(100))
    device.output_enabled = False  # nothing ever comes
    camera = open_fake(device)
    outcome: list[str] = []

    def consume() -> None:
        for _ in camera:
            outcome.append("packet")
        outcome.append("ended")

    thread = threading.Thread(target=consume)
    thread.start()
    camera.close()
    thread.join(10)
    assert outcome == ["ended"]
    camera.close()  # idempotent
    assert device.log[-1] == ("W", START, 0)


def test_close_joins_the_threads_while_data_is_flowing() -> None:
    device = FakeDevice(events=make_events(5_000), chunk_bytes=1000, loop=True)
    camera = open_fake(device, ring_length=4, lossless=False)
    status, _ = next(camera)
    assert status.ring is not None
    camera.close()
    with pytest.raises(StopIteration):
        next(camera)


def test_the_iterator_timeout_returns_an_empty_packet() -> None:
    expected = make_events(500)
    device = FakeDevice(events=expected, chunk_bytes=6500)
    device.output_enabled = False
    with open_fake(device, timeout=0.02) as camera:
        status, packet = next(camera)
        assert status.ring is None
        assert status.delay() is None
        assert isinstance(packet, aerflow.Packet)
        assert len(packet.events) == 0
        device.output_enabled = True
        events = []
        with deadline(30):
            for _, packet in camera:
                events.append(packet.events)
        assert_same_events(np.concatenate(events), expected)


def test_the_iterator_timeout_returns_none_in_raw_mode() -> None:
    device = FakeDevice()
    device.output_enabled = False
    with open_fake(device, raw=True, timeout=0) as camera:
        status, data = next(camera)
        assert data is None
        assert status.ring is None


# -- selection and listing ----------------------------------------------------------------------
def test_a_busy_device_says_so() -> None:
    backend = EmulatedBackend([FakeDevice()])
    with devices.open(backend=backend, drivers=DRIVERS, **SMALL):
        with pytest.raises(DeviceBusyError, match="already open"):
            devices.open(backend=backend, drivers=DRIVERS, **SMALL)
        with pytest.raises(DeviceBusyError, match="no camera with serial FAKE0001 among"):
            devices.open("FAKE0001", backend=backend, drivers=DRIVERS, **SMALL)
    with devices.open(backend=backend, drivers=DRIVERS, **SMALL) as camera:  # free again
        assert camera.serial == "FAKE0001"


def test_open_by_serial_and_driver_order() -> None:
    backend = EmulatedBackend(
        [
            FakeDevice(serial="FAKE0001", address=5),
            FakeDevice(serial="OTHER0002", address=6),
            FakeDevice(serial="FAKE0003", address=7),
        ]
    )
    drivers: list[Any] = [OtherDriver, FakeDriver]
    with devices.open("FAKE0003", backend=backend, drivers=drivers, **SMALL) as camera:
        assert camera.name == "fake_camera"
    with devices.open(backend=backend, drivers=drivers, **SMALL) as camera:
        assert camera.serial == "FAKE0001"  # the first device found
    with devices.open("OTHER0002", backend=backend, drivers=drivers, **SMALL) as camera:
        assert camera.name == "other_camera"
    # A configuration restricts the search to its model.
    with devices.open(
        configuration=OtherConfiguration(), backend=backend, drivers=drivers, **SMALL
    ) as camera:
        assert camera.serial == "OTHER0002"
    with pytest.raises(DeviceNotFoundError, match=r"found: FAKE0001, OTHER0002, FAKE0003"):
        devices.open("NOPE", backend=backend, drivers=drivers, **SMALL)


def test_nothing_to_open() -> None:
    with pytest.raises(DeviceNotFoundError, match="aerflow devices"):
        devices.open(backend=EmulatedBackend([]), drivers=DRIVERS)


def test_list_reports_errors_per_device() -> None:
    held = FakeDevice(serial="FAKE0001", address=5)
    backend = EmulatedBackend(
        [
            held,
            FakeDevice(serial="FAKE0002", address=6),
            FakeDevice(serial="FAKE0003", address=7, identify_error=True),
        ]
    )
    with devices.open("FAKE0001", backend=backend, drivers=DRIVERS, **SMALL):
        listed = devices.list(backend, drivers=DRIVERS)
    assert [(d.name, d.serial, d.address) for d in listed] == [
        ("fake_camera", None, 5),
        ("fake_camera", "FAKE0002", 6),
        ("fake_camera", None, 7),
    ]
    assert "already open" in str(listed[0].error)
    assert listed[1].error is None
    assert listed[1].model == "Fake Camera"
    assert listed[1].speed == "super"
    assert "stalled" in str(listed[2].error)
    # Devices no driver owns are not listed; those no driver recognises say so.
    assert devices.list(backend, drivers=[]) == []
    only_other = devices.list(EmulatedBackend([FakeDevice()]), drivers=[OtherDriver])
    assert "not recognised" in str(only_other[0].error)


# -- configuration --------------------------------------------------------------------------------
def test_update_configuration(tmp_path: Path) -> None:
    device = FakeDevice()
    device.output_enabled = False
    with open_fake(device) as camera:
        written = len(device.log)
        with pytest.raises(ConfigurationError, match="FakeConfiguration"):
            camera.update_configuration(OtherConfiguration())
        with pytest.raises(ConfigurationError, match="resolution"):
            camera.update_configuration(FakeConfiguration(resolution=2))
        assert len(device.log) == written  # nothing written by refused updates
        new = FakeConfiguration(gain=3, biases=Biases(on=100, off=50), mode=Mode.FAST)
        camera.update_configuration(new)
        assert device.log[written:] == [("W", MODE, 1)]  # only what changed
        assert camera.configuration is new
        path = tmp_path / "fake.toml"
        path.write_text('gain = 9\nmode = "fast"\n', encoding="utf-8")
        camera.update_configuration(path)
        assert device.log[-1] == ("W", GAIN, 9)
        assert camera.configuration == FakeConfiguration(gain=9, mode=Mode.FAST)


def test_open_with_a_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "fake.json"
    path.write_text('{"gain": 5, "biases": {"on": 120}}', encoding="utf-8")
    device = FakeDevice()
    device.output_enabled = False
    with open_fake(device, configuration=str(path)) as camera:
        assert camera.configuration == FakeConfiguration(gain=5, biases=Biases(on=120))
    assert ("W", GAIN, 5) in device.log
    path.write_text('{"gain": "high"}', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"fake\.json: gain: expected an integer"):
        open_fake(FakeDevice(), configuration=path)


def test_open_with_another_models_configuration() -> None:
    with pytest.raises(ConfigurationError, match="no camera driver takes"):
        open_fake(FakeDevice(), configuration=OtherConfiguration())


@pytest.mark.parametrize(
    "options",
    [{"buffer_length": 1000}, {"ring_length": 1}, {"in_flight": 0}, {"max_buffers": 0}],
)
def test_invalid_ring_settings(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        open_fake(FakeDevice(), **options)


# -- registries and emulation ---------------------------------------------------------------------
def test_emulate_builds_a_bus_from_the_registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(devices.EMULATORS, "fake_camera", "tests.devices_fake:FakeDevice")
    monkeypatch.setitem(devices.DRIVERS, "fake_camera", "tests.devices_fake:FakeDriver")
    expected = make_events(2_000)
    path = tmp_path / "recording.csv"
    aerflow.write(path, expected, width=64, height=48)
    backend = devices.emulate("fake-camera", path, serial="EMU1", chunk_bytes=4096)
    assert backend.speed is None
    with devices.open(backend=backend, **SMALL) as camera:  # registered drivers
        assert camera.serial == "EMU1"
        events, _ = read_all(camera)
    assert_same_events(events, expected)
    with pytest.raises(DeviceNotFoundError, match="unknown emulated model 'nope'"):
        devices.emulate("nope")


def test_paced_emulation_takes_the_recordings_time() -> None:
    expected = make_events(2_000)  # 20 ms of events
    device = FakeDevice(events=expected, chunk_bytes=1300, paced=True)
    started = time.monotonic()
    with open_fake(device, speed=1.0) as camera:
        events, _ = read_all(camera)
    assert time.monotonic() - started >= 0.015
    assert_same_events(events, expected)


# -- libusb backend -----------------------------------------------------------------------------
def test_a_missing_usb_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from aerflow.devices import _libusb

    monkeypatch.setitem(__import__("sys").modules, "usb1", None)
    with pytest.raises(DeviceError, match=r"pip install 'aerflow\[usb\]'"):
        _libusb.import_usb1()


def test_libusb_errors_map_to_aerflow_errors() -> None:
    from aerflow.devices._libusb import usb_error

    access = usb_error(-3, "opening the device")
    assert isinstance(access, DevicePermissionError)
    assert "aerflow udev install" in str(access)
    busy = usb_error(-6, "opening the device")
    assert isinstance(busy, DeviceBusyError)
    assert "another program" in str(busy)
    assert isinstance(usb_error(-4, "x"), DeviceDisconnectedError)
    assert isinstance(usb_error(-7, "x"), DeviceTimeoutError)
    assert isinstance(usb_error(-5, "x"), DeviceNotFoundError)
    other = usb_error(-1, "reading", serial="S1")
    assert type(other) is DeviceError
    assert str(other) == "S1: reading: input/output error (-1)"


def test_libusb_listing_returns_a_list() -> None:
    from aerflow.devices._libusb import LibusbBackend

    try:
        backend = LibusbBackend()
        found = backend.devices()
    except DeviceError as error:
        pytest.skip(f"libusb unavailable here: {error}")
    assert isinstance(found, list)
    assert isinstance(devices.list(backend, drivers=DRIVERS), list)


class _FakeUsbError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class _Interrupted(_FakeUsbError):
    pass


class _FakeTransfer:
    def __init__(self, context: _FakeContext) -> None:
        self.context = context
        self.submitted = False
        self.cancelled = False
        self.status = 0
        self.length = 0

    def setBulk(self, endpoint: int, buffer: bytearray, callback: Any) -> None:
        self.buffer = buffer
        self.callback = callback

    def submit(self) -> None:
        if self.context.submits == self.context.refuse_after:
            raise _FakeUsbError(-4)
        self.context.submits += 1
        self.submitted = True
        self.context.queue.append(self)

    def isSubmitted(self) -> bool:
        return self.submitted

    def cancel(self) -> None:
        self.cancelled = True

    def getStatus(self) -> int:
        return self.status

    def getActualLength(self) -> int:
        return self.length

    def getBuffer(self) -> bytearray:
        return self.buffer


class _FakeContext:
    """Completes the queued transfers in order with the scripted (status, bytes)."""

    def __init__(self, script: list[tuple[int, bytes]], refuse_after: int | None) -> None:
        self.script = script
        self.queue: list[_FakeTransfer] = []
        self.submits = 0
        self.refuse_after = refuse_after
        self.lock = threading.Lock()

    def handleEventsTimeout(self, seconds: float) -> None:
        with self.lock:
            if not self.queue:
                return
            transfer = self.queue.pop(0)
            transfer.submitted = False
            if transfer.cancelled:
                transfer.status, transfer.length = 3, 0
            elif self.script:
                status, data = self.script.pop(0)
                transfer.buffer[: len(data)] = data
                transfer.status, transfer.length = status, len(data)
            else:
                self.queue.insert(0, transfer)
                transfer.submitted = True
                return
        transfer.callback(transfer)


class _FakeHandle:
    def __init__(self, context: _FakeContext) -> None:
        self.context = context

    def getTransfer(self) -> _FakeTransfer:
        return _FakeTransfer(self.context)


def _fake_usb1() -> Any:
    return type("usb1", (), {"USBError": _FakeUsbError, "USBErrorInterrupted": _Interrupted})


def _stream(
    script: list[tuple[int, bytes]], refuse_after: int | None = None
) -> tuple[Any, list[tuple[bytes, TransferStatus]]]:
    from aerflow.devices._libusb import LibusbHandle
    from aerflow.devices.usb import UsbDeviceInfo

    context = _FakeContext(script, refuse_after)
    handle = LibusbHandle(_fake_usb1(), context, _FakeHandle(context), UsbDeviceInfo(1, 2, 3, 4))
    calls: list[tuple[bytes, TransferStatus]] = []
    done = threading.Event()

    def callback(view: memoryview, status: TransferStatus) -> None:
        calls.append((bytes(view), status))
        if status not in (TransferStatus.COMPLETED, TransferStatus.TIMED_OUT):
            done.set()

    handle.start_stream(0x81, 64, 4, callback)
    handle.done = done
    return handle, calls


def test_libusb_streaming_resubmits_in_order_until_a_terminal_status() -> None:
    script = [(0, bytes([i]) * (i + 1)) for i in range(10)] + [(2, b"late"), (5, b"")]
    handle, calls = _stream(script)
    assert handle.done.wait(5)
    handle.stop_stream()
    assert [c[0] for c in calls[:10]] == [bytes([i]) * (i + 1) for i in range(10)]
    assert calls[10] == (b"late", TransferStatus.TIMED_OUT)
    assert calls[11] == (b"", TransferStatus.NO_DEVICE)
    assert len(calls) == 12  # nothing after the end, not even the cancellation


def test_libusb_stop_cancels_and_reports_cancelled() -> None:
    handle, calls = _stream([(0, b"abc")])
    wait_until(lambda: len(calls) == 1)
    handle.stop_stream()
    assert calls[-1] == (b"", TransferStatus.CANCELLED)
    assert handle._thread is None
    handle.stop_stream()  # nothing left to stop


def test_libusb_a_refused_resubmission_ends_the_stream() -> None:
    handle, calls = _stream([(0, b"abc"), (0, b"def")], refuse_after=4)
    assert handle.done.wait(5)
    handle.stop_stream()
    assert calls == [(b"abc", TransferStatus.COMPLETED), (b"", TransferStatus.NO_DEVICE)]


class _Evt3FakeDriver(FakeDriver):
    raw_format = "evt3"


def test_raw_header_makes_a_prophesee_raw_file(tmp_path: Path) -> None:
    with open_fake(FakeDevice(), raw=True, drivers=[_Evt3FakeDriver]) as camera:
        header = camera.raw_header()
    path = tmp_path / "empty.raw"
    path.write_bytes(header)
    with aerflow.open(path) as reader:
        assert reader.properties.format == "evt3"
        assert reader.properties.sensor_size == (64, 48)
        assert len(reader.read().events) == 0
    assert b"% serial_number FAKE0001\n" in header
    with open_fake(FakeDevice(), raw=True) as camera, pytest.raises(ValueError, match="raw"):
        camera.raw_header()
