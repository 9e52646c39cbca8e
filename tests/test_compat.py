"""aerflow.compat: aestream's FileInput/UDPInput loop, with polarity and [p, y, x] frames."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.synthetic import SyntheticSensor

pytest.importorskip("torch")

from aerflow.compat import FileInput, UDPInput


def counts(events: np.ndarray, width: int, height: int) -> np.ndarray:
    frame = np.zeros((2, height, width))
    np.add.at(frame, (events["on"].astype(int), events["y"], events["x"]), 1)
    return frame


def test_file_input_frames_sum_to_the_recording(tmp_path: Path) -> None:
    events = SyntheticSensor(64, 48, rate=100_000, duration="50ms").read().events
    aerflow.write(tmp_path / "r.raw", events, width=64, height=48)
    total = np.zeros((2, 48, 64))
    with FileInput(str(tmp_path / "r.raw"), ignore_time=True) as stream:
        deadline = time.monotonic() + 60
        while not stream.done.is_set() and time.monotonic() < deadline:
            total += stream.read().numpy()
            time.sleep(0.01)
        total += stream.read().numpy()
    assert np.array_equal(total, counts(events, 64, 48))


def test_udp_input_takes_aestream_words(tmp_path: Path) -> None:
    from aerflow.net import UdpSender

    events = SyntheticSensor(32, 32, rate=50_000, duration="20ms").read().events
    with UDPInput((32, 32), port=0) as stream:
        with UdpSender(f"127.0.0.1:{stream.port}", wire="spif") as sender:
            sender.write(events)
        deadline = time.monotonic() + 30
        total = np.zeros((2, 32, 32))
        while total.sum() < len(events) and time.monotonic() < deadline:
            total += stream.read().numpy()
            time.sleep(0.01)
    assert np.array_equal(total, counts(events, 32, 32))


def test_usb_input_reads_a_camera(tmp_path: Path) -> None:
    """aestream's USBInput over aerflow's own driver, here an EVK4 on the emulated bus."""
    from aerflow import devices
    from aerflow.compat import USBInput

    events = SyntheticSensor(1280, 720, rate=200_000, duration="50ms", seed=5).read().events
    aerflow.write(tmp_path / "r.raw", events, width=1280, height=720)
    backend = devices.emulate("evk4", tmp_path / "r.raw")
    with USBInput(backend=backend) as stream:
        total = np.zeros((2, 720, 1280))
        deadline = time.monotonic() + 60
        while total.sum() < len(events) and time.monotonic() < deadline:
            total += stream.read().numpy()
            time.sleep(0.01)
    assert np.array_equal(total, counts(events, 1280, 720))
