"""``aerflow devices``, ``aerflow udev`` and the ``camera`` pipeline source, with the fake
model registered as "fake_camera"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
import aerflow.devices as devices
from aerflow import components
from aerflow.cli.main import run
from aerflow.devices.config_files import load
from aerflow.devices.udev import rules
from aerflow.emulators import EmulatedBackend
from aerflow.events import Packet

from .devices_fake import (
    GAIN,
    START,
    FakeConfiguration,
    FakeDevice,
    TrackedFakeDevice,
    make_events,
    register,
)
from .helpers import assert_same_events
from .processes import child, interrupt, wait_until

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    TrackedFakeDevice.instances.clear()


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def recording(tmp_path: Path, count: int = 3_000) -> tuple[Path, np.ndarray]:
    events = make_events(count)
    path = tmp_path / "recording.csv"
    aerflow.write(path, events, width=64, height=48)
    return path, events


# -- aerflow devices ------------------------------------------------------------------------------
def test_devices_prints_a_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = EmulatedBackend(
        [FakeDevice(serial="FAKE0001", address=5), FakeDevice(serial="FAKE0002", address=12)]
    )
    monkeypatch.setattr(devices, "_backend", lambda backend_=None: backend)
    with devices.open("FAKE0002", backend=backend, buffer_length=4096, ring_length=4):
        code, out, _ = cli(capsys, "devices")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "SERIAL", "BUS:ADDRESS", "SPEED", "ERROR"]
    assert lines[1].split() == ["fake_camera", "Fake", "Camera", "FAKE0001", "001:005", "super"]
    assert lines[2].split()[:6] == ["fake_camera", "Fake", "Camera", "?", "001:012", "super"]
    assert "already open" in lines[2]


def test_devices_without_cameras_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devices, "_backend", lambda backend_=None: EmulatedBackend([]))
    code, out, _ = cli(capsys, "devices")
    assert code == 0
    assert out.startswith("no camera found")
    assert "sudo aerflow udev install" in out


def test_config_template_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "devices", "--config-template", "fake-camera")
    assert code == 0
    path = tmp_path / "fake.toml"
    path.write_text(out, encoding="utf-8")
    assert load(path, FakeConfiguration) == FakeConfiguration()
    code, _, err = cli(capsys, "devices", "--config-template", "nope")
    assert code == 1
    assert "unknown camera model 'nope'" in err


@pytest.mark.parametrize("model", ["evk4", "evk3_hd", "dvxplorer", "davis346"])
def test_every_models_template_reads_back(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    driver = devices.driver_class(model)
    code, out, err = cli(capsys, "devices", "--config-template", model)
    assert code == 0, err
    path = tmp_path / f"{model}.toml"
    path.write_text(out, encoding="utf-8")
    default = driver.configuration_type()
    loaded = load(path, driver.configuration_type)
    # Settings that are None are left out of the TOML and come back as the default's.
    assert loaded == default


# -- aerflow udev ---------------------------------------------------------------------------------
def test_udev_print(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "udev", "print")
    assert code == 0
    assert out == rules()


def test_udev_install_without_root_gives_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 1000, raising=False)
    code, _, err = cli(capsys, "udev", "install", "--path", tmp_path / "65-aerflow.rules")
    assert code == 1
    assert "needs root" in err
    assert "sudo" in err
    assert "aerflow udev install" in err
    assert not (tmp_path / "65-aerflow.rules").exists()


def test_udev_install_as_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aerflow.devices import udev

    commands: list[list[str]] = []
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 0, raising=False)
    monkeypatch.setattr(udev, "_run", lambda command: commands.append(list(command)))
    target = tmp_path / "65-aerflow.rules"
    code, out, _ = cli(capsys, "udev", "install", "--path", target)
    assert code == 0
    assert target.read_text(encoding="utf-8") == rules()
    assert commands[0] == ["udevadm", "control", "--reload-rules"]
    assert commands[1][:2] == ["udevadm", "trigger"]
    assert str(target) in out


# -- aerflow input camera -----------------------------------------------------------------------
def test_emulated_camera_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, events = recording(tmp_path)
    before = set(threading.enumerate())
    code, _, err = cli(
        capsys,
        "--quiet", "input", "camera", "--emulate", "fake_camera", path, "--speed", "0",
        "output", "file", tmp_path / "out.raw",
    )  # fmt: skip
    assert code == 0, err
    with aerflow.open(tmp_path / "out.raw") as reader:
        assert reader.properties.sensor_size == (64, 48)
        assert_same_events(reader.read().events, events)
    assert set(threading.enumerate()) == before
    (device,) = TrackedFakeDevice.instances
    assert device.log[-1] == ("W", START, 0)  # the camera was closed


def test_camera_configuration_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = recording(tmp_path, 100)
    config = tmp_path / "camera.toml"
    config.write_text("gain = 7\n[biases]\non = 90\n", encoding="utf-8")
    code, _, err = cli(
        capsys,
        "--quiet", "input", "camera", "--emulate", "fake_camera", path, "--speed", "0",
        "--config", config, "output", "null",
    )  # fmt: skip
    assert code == 0, err
    assert ("W", GAIN, 7) in TrackedFakeDevice.instances[0].log
    config.write_text("gain = 7\ncolour = 3\n", encoding="utf-8")
    code, _, err = cli(
        capsys, "input", "camera", "--emulate", "fake_camera", "--config", config, "output", "null"
    )
    assert code == 1
    assert f"{config}: colour: unknown setting" in err


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["recording.raw"], "only an emulated camera plays a recording"),
        (["--emulate", "nope"], "unknown emulated model 'nope'"),
        (["--emulate", "fake_camera", "--speed", "-1"], "--speed must be positive"),
    ],
)
def test_camera_option_errors(
    words: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "input", "camera", *words, "output", "null")
    assert code == 1
    assert message in err


class _Interrupting:
    def write(self, packet: Packet) -> None:
        raise KeyboardInterrupt

    def close(self) -> None:
        pass


def test_ctrl_c_closes_the_camera(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        components.SINKS,
        "interrupt",
        components.Component("interrupt", "Ctrl-C", (), lambda properties: _Interrupting()),
    )
    before = set(threading.enumerate())
    code, _, _ = cli(
        capsys, "input", "camera", "--emulate", "fake_camera", "--loop", "output", "interrupt"
    )
    assert code == 130
    assert set(threading.enumerate()) == before
    assert TrackedFakeDevice.instances[0].log[-1] == ("W", START, 0)


_SCRIPT = """
import sys
import pytest
import aerflow.devices as devices
from aerflow.cli.main import run
from tests.devices_fake import TrackedFakeDevice, register

register(pytest.MonkeyPatch())
code = run(sys.argv[1:])
print("last", TrackedFakeDevice.instances[0].log[-1])
sys.exit(code)
"""


def test_sigint_exits_130_after_closing_the_camera(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    with child(
        [sys.executable, "-c", _SCRIPT, "input", "camera", "--emulate", "fake_camera",
         "--loop", "output", "null"],
        cwd=REPOSITORY,
        env={**os.environ, "AERFLOW_TEST_READY": str(ready)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:  # fmt: skip
        wait_until(ready.exists, "the camera's first chunk", process)
        out, err = interrupt(process)
    assert process.returncode == 130, err
    assert f"last ('W', {START}, 0)" in out


def test_library_stream_source_is_the_component(tmp_path: Path) -> None:
    path, events = recording(tmp_path, 500)
    stream: Any = components.SOURCES["camera"].build(
        recording=str(path), emulate="fake_camera", speed=0.0
    )
    with stream:
        assert stream.properties.live
        assert_same_events(stream.read().events, events)
