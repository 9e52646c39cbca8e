"""Shared fixtures: where the shared recordings live and what MANIFEST.json says about them.

The recordings are looked up in ``$AERFLOW_SHARED_DATA`` when set, else in ``shared/data``
beside any ancestor of this folder (normally ``<repo>/../shared/data``). Tests that need them
skip cleanly when they are absent.

A test that takes a ``prophesee_file`` argument is run once per Prophesee recording (EVT 2.0,
EVT 3.0 and DAT) listed in the manifest; the argument is the file's name relative to the data
folder, usable with the ``shared_data`` and ``manifest`` fixtures.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PROPHESEE_FORMATS = ("evt2", "evt3", "dat")


def find_data_dir() -> Path | None:
    """``AERFLOW_SHARED_DATA`` if set, else the first ``<ancestor>/shared/data`` with a manifest."""
    env = os.environ.get("AERFLOW_SHARED_DATA")
    if env:
        path = Path(env)
        return path if (path / "MANIFEST.json").is_file() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data"
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    return None


DATA_DIR = find_data_dir()


def _load_manifest() -> dict[str, Any]:
    if DATA_DIR is None:
        return {}
    with (DATA_DIR / "MANIFEST.json").open(encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


MANIFEST: dict[str, Any] = _load_manifest()
MANIFEST_FILES: dict[str, Any] = MANIFEST.get("files", {})
PROPHESEE_FILES: list[str] = sorted(
    name
    for name, entry in MANIFEST_FILES.items()
    if entry.get("format") in PROPHESEE_FORMATS
    and DATA_DIR is not None
    and (DATA_DIR / name).is_file()
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "prophesee_file" in metafunc.fixturenames:
        params = [pytest.param(name, id=name) for name in PROPHESEE_FILES] or [
            pytest.param(
                None,
                id="no-shared-data",
                marks=pytest.mark.skip(reason="no Prophesee recording in shared/data"),
            )
        ]
        metafunc.parametrize("prophesee_file", params)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (the test skips when there is none)."""
    if DATA_DIR is None:
        pytest.skip("shared data folder (shared/data/MANIFEST.json) not available")
    return DATA_DIR


@pytest.fixture(scope="session")
def manifest(shared_data: Path) -> dict[str, Any]:
    """MANIFEST.json's ``files`` mapping: name -> expected facts."""
    return MANIFEST_FILES


def manifest_digest(t: Any, x: Any, y: Any, on: Any) -> str:
    """The MANIFEST digest: sha256 of t, x, y as little-endian int64 then on as uint8 0/1."""
    h = hashlib.sha256()
    h.update(np.asarray(t).astype("<i8").tobytes())
    h.update(np.asarray(x).astype("<i8").tobytes())
    h.update(np.asarray(y).astype("<i8").tobytes())
    h.update(np.asarray(on).astype("u1").tobytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def digest() -> Callable[[np.ndarray], str]:
    """The MANIFEST digest of an events array (fields t, x, y, on)."""
    return lambda events: manifest_digest(events["t"], events["x"], events["y"], events["on"])


@functools.cache
def _reference_decode(path: str) -> tuple[np.ndarray, np.ndarray, dict[str, str], int]:
    try:
        from tests.reference import prophesee as ref
    except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
        from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]
    data = Path(path).read_bytes()
    header, offset = ref.parse_header(data)
    if path.endswith(".dat"):
        events, triggers, header = ref.decode_dat(data)
    else:
        events, triggers, header, _ = ref.decode_raw_file(path)
    return events, triggers, header, offset


@pytest.fixture(scope="session")
def reference_decode() -> Callable[[Path], tuple[np.ndarray, np.ndarray, dict[str, str], int]]:
    """Decode a whole Prophesee file with the plain-Python reference decoder (cached).

    Returns (events, triggers, header entries, offset of the first byte after the header).
    """
    return lambda path: _reference_decode(os.fspath(path))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")
