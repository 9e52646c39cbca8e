"""Shared fixtures: where the shared recordings live and what MANIFEST.json says about them.

The recordings are looked up in ``$AERFLOW_SHARED_DATA`` when set, else in ``shared/data``
beside any ancestor of this folder (normally ``<repo>/../shared/data``). On a user's clone,
tests that need them, a peer library or an extra skip, and the run ends with one line per
cause saying how to get it. Under ``CI=true`` nothing may be missing: the run stops at once
without the recordings, and any other skip is a failure (but for the GPU tests: CI has no GPU).

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


# -- what may be missing where ------------------------------------------------------------

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
NO_GPU = "no CUDA device"
"""The one skip reason CI accepts: CI machines have no GPU."""
SETUP_HINTS = (
    (
        ("shared data", "shared/data", "in shared data", "in the shared data", "manifest"),
        "need the shared recordings: clone with the shared/ folder beside the repository, "
        "or set AERFLOW_SHARED_DATA to its data/ folder",
    ),
    (
        ("could not import", "interop peer", "not installed"),
        "need peer libraries or extras: pip install -e '.[dev,interop]' "
        "and pip install torch==2.13.0 (python3 dev.py test does both)",
    ),
    ((NO_GPU,), "need a CUDA device"),
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and DATA_DIR is None:
        pytest.exit(
            "CI=true but the shared recordings are missing: CI must run every real-data test. "
            "Put the shared/ folder (with data/MANIFEST.json) beside the repository, or set "
            "AERFLOW_SHARED_DATA.",
            returncode=1,
        )


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _refuse_skip_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not (IN_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if NO_GPU in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where it must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    _refuse_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    outcome = yield
    _refuse_skip_in_ci(outcome.get_result())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per missing thing, instead of one per skipped test."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts: dict[str, int] = {}
    for report in skipped:
        reason = _skip_reason(report)
        lowered = reason.lower()
        hint = next(
            (text for keys, text in SETUP_HINTS if any(key.lower() in lowered for key in keys)),
            reason,
        )
        counts[hint] = counts.get(hint, 0) + 1
    for hint, count in counts.items():
        terminalreporter.write_line(f"skipped {count}: {hint}")
