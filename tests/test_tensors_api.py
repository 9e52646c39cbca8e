"""aerflow.tensors as a package: torch stays optional, DLPack export, the ring's memory."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import aerflow
from aerflow.tensors import Accumulator, TorchNotInstalledError, frames


def _events(n: int = 100) -> np.ndarray:
    events = np.zeros(n, aerflow.EVENTS_DTYPE)
    events["t"] = np.arange(n) * 10
    events["x"] = np.arange(n) % 4
    events["y"] = np.arange(n) % 3
    events["on"] = np.arange(n) % 2 == 0
    return events


def test_importing_aerflow_does_not_import_torch() -> None:
    code = (
        "import sys, aerflow, aerflow.tensors; "
        "import numpy as np; "
        "ev = np.zeros(3, aerflow.EVENTS_DTYPE); "
        "list(aerflow.tensors.frames(ev, events=1, sensor_size=(1, 1), device='numpy')); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_missing_torch_raises_an_actionable_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_torch(name: str, *args: object) -> object:
        if name == "torch":
            raise ModuleNotFoundError("No module named 'torch'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_torch)
    with pytest.raises(TorchNotInstalledError, match=r"aerflow\[torch\]") as info:
        frames(_events(), window=100, sensor_size=(4, 3))
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, aerflow.AerflowError)
    with pytest.raises(ImportError, match="device='numpy'"):
        Accumulator((4, 3))
    # The NumPy backend needs no torch.
    assert len(list(frames(_events(), window=100, sensor_size=(4, 3), device="numpy"))) == 10


def test_dlpack_export_shares_memory() -> None:
    torch = pytest.importorskip("torch")
    (frame,) = list(frames(_events(), window=10_000, sensor_size=(4, 3)))
    as_numpy = np.from_dlpack(frame)
    assert as_numpy.shape == (2, 3, 4)
    assert as_numpy.sum() == 100
    frame[0, 0, 0] = 42
    assert as_numpy[0, 0, 0] == 42
    (array,) = list(frames(_events(), window=10_000, sensor_size=(4, 3), device="numpy"))
    tensor = torch.from_dlpack(array)
    array[1, 0, 0] = 7
    assert tensor[1, 0, 0] == 7


def test_the_ring_grows_from_two_slots_and_stays_bounded() -> None:
    pytest.importorskip("torch")
    events = _events(5000)
    iterator = frames(events, window=10, sensor_size=(4, 3))
    assert iterator._engine.slots == 2
    assert len(list(iterator)) == 5000
    assert iterator._engine.slots == iterator._engine.max_slots == 64
    big = frames(events, window=10, sensor_size=(4096, 4096))
    assert big._engine.max_slots == 1  # 128 MB a slot: one at a time
    fixed = frames(events, window=10, sensor_size=(4, 3), ring_size=5)
    assert fixed._engine.slots == 5
    list(fixed)
    assert fixed._engine.slots == 5
