"""The emulated cameras are an oracle independent of the drivers: they answer from register
tables written from the protocol notes, so a driver constant changed to a wrong value makes the
driver fail against its emulator (refused, or left silent) instead of agreeing with itself."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.devices import _inivation as ini
from aerflow.devices import _prophesee as pp
from aerflow.devices import prophesee_evk3_hd, prophesee_evk4
from aerflow.devices.inivation_davis346 import Davis346Driver
from aerflow.devices.inivation_dvxplorer import DvxplorerDriver
from aerflow.devices.prophesee_evk3_hd import Evk3HdDriver
from aerflow.devices.prophesee_evk4 import Evk4Driver
from aerflow.emulators.inivation import EmulatedDavis346, EmulatedDvxplorer
from aerflow.emulators.prophesee import EmulatedEvk3Hd, EmulatedEvk4
from aerflow.emulators.usb import EmulatedBackend
from aerflow.errors import DeviceError, DeviceNotFoundError
from aerflow.events import EVENTS_DTYPE, Packet
from aerflow.formats.evt3 import Evt3StreamDecoder

from .helpers import assert_same_events

EMULATORS_DIR = Path(aerflow.__file__).parent / "emulators"

MODELS: dict[str, tuple[Any, Any]] = {
    "evk4": (EmulatedEvk4, Evk4Driver),
    "evk3_hd": (EmulatedEvk3Hd, Evk3HdDriver),
    "dvxplorer": (EmulatedDvxplorer, DvxplorerDriver),
    "davis346": (EmulatedDavis346, Davis346Driver),
}


def small_events(width: int, height: int, count: int = 300) -> np.ndarray:
    rng = np.random.default_rng(7)
    events = np.zeros(count, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(10, 50_000, count))
    events["x"] = rng.integers(0, width, count)
    events["y"] = rng.integers(0, height, count)
    events["on"] = rng.random(count) < 0.5
    return events


def emulated(model: str, tmp_path: Path) -> Any:
    cls, _ = MODELS[model]
    if model in ("evk4", "evk3_hd"):
        path = tmp_path / "small.raw"
        aerflow.write(path, small_events(1280, 720), width=1280, height=720)
        return cls(path)
    width, height = (640, 480) if model == "dvxplorer" else (346, 260)
    return cls(Packet(small_events(width, height)))


def open_driver(device: Any, model: str) -> Any:
    """Identify and open ``device`` with its model's driver, as aerflow.devices.open does."""
    _, driver_type = MODELS[model]
    backend = EmulatedBackend([device])
    handle = backend.open(backend.devices()[0])
    serial = driver_type.identify(handle)
    if serial is None:
        raise DeviceNotFoundError(f"the {model} driver does not recognise its emulator")
    driver = driver_type(handle, serial)
    driver.open(None)
    return driver


def streaming(device: Any) -> bool:
    state = device.streaming
    return bool(state() if callable(state) else state)


@pytest.mark.parametrize("model", list(MODELS))
def test_each_driver_starts_its_emulator(model: str, tmp_path: Path) -> None:
    """With the drivers' constants as they are, each emulator ends up streaming."""
    device = emulated(model, tmp_path)
    open_driver(device, model)
    assert streaming(device)
    chunk = device.stream_chunk(1 << 16)
    assert chunk is not None
    assert len(chunk.data) > 0


def test_an_evk4_emulator_plays_what_the_driver_decodes(tmp_path: Path) -> None:
    """End to end, the EVK4's stream decodes to the recording's events."""
    device = emulated("evk4", tmp_path)
    open_driver(device, "evk4")
    decoder = Evt3StreamDecoder(1280, 720)
    parts = []
    while (chunk := device.stream_chunk(4097)) is not None:
        parts.append(decoder.decode(bytes(chunk.data)).events)
    assert_same_events(np.concatenate(parts), small_events(1280, 720))


# (model, driver module, constant, wrong value, what the emulator makes of it)
WRONG_CONSTANTS: list[tuple[str, ModuleType, str, Any, str]] = [
    ("evk4", pp, "TYPE_REQUEST", 0x73, "refused"),
    ("evk4", pp, "PROPERTY_REGISTER", 0x00010103, "refused"),
    ("evk4", prophesee_evk4, "TIME_BASE_CTRL", 0x900C, "silent"),
    ("evk4", prophesee_evk4, "RO_CTRL", 0x902C, "silent"),
    ("evk3_hd", pp, "LEGACY_WRITE", 0x57, "refused"),
    ("evk3_hd", prophesee_evk3_hd, "TIME_BASE_CTRL", 0x900C, "silent"),
    ("dvxplorer", ini, "REQUEST_CONFIG", 0xBE, "refused"),
    ("dvxplorer", ini, "MUX_RUN", (0, 9), "silent"),
    ("davis346", ini, "LOGIC_VERSION", (6, 1), "refused"),
    ("davis346", ini, "DVS_RUN", (1, 13), "silent"),
]


@pytest.mark.parametrize(
    ("model", "module", "name", "wrong", "outcome"),
    WRONG_CONSTANTS,
    ids=[f"{model}-{name}" for model, _, name, _, _ in WRONG_CONSTANTS],
)
def test_a_wrong_driver_constant_fails_against_the_emulator(
    model: str,
    module: ModuleType,
    name: str,
    wrong: Any,
    outcome: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert getattr(module, name) != wrong
    monkeypatch.setattr(module, name, wrong)
    device = emulated(model, tmp_path)
    if outcome == "refused":
        with pytest.raises(DeviceError):
            open_driver(device, model)
    else:
        open_driver(device, model)  # the driver believes it started the camera...
        assert not streaming(device)  # ...but the register it wrote is not the one that does
        chunk = device.stream_chunk(1 << 16)
        assert chunk is not None
        assert len(chunk.data) == 0


def _imports(path: Path) -> list[str]:
    """The absolute names of the aerflow modules ``path`` imports (any depth, any place)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("aerflow." + (node.module or ""))
                if node.module is None:
                    names += [f"aerflow.{alias.name}" for alias in node.names]
            elif node.module:
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_the_emulators_take_nothing_from_the_drivers() -> None:
    """Of aerflow.devices the emulators import the USB interface only (no register address,
    opcode or constant of a driver); aerflow.devices reaches the emulators only through its
    "module:Class" strings."""
    sources = sorted(EMULATORS_DIR.glob("*.py"))
    assert len(sources) >= 6
    for source in sources:
        for name in _imports(source):
            if name.startswith("aerflow.devices"):
                assert name == "aerflow.devices.usb", f"{source.name} imports {name}"
    devices_dir = EMULATORS_DIR.parent / "devices"
    for source in sorted(devices_dir.glob("*.py")):
        for name in _imports(source):
            assert not name.startswith("aerflow.emulators"), f"{source.name} imports {name}"
