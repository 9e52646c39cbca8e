"""Large benchmark files: real recordings tiled in time, written with aerflow's writers.

A dataset is ``copies`` back-to-back copies of one recording, copy k shifted by
k * (t_last - t_first + 1) so that time stays monotonic, written with
``aerflow.write(path, events, format=..., width=..., height=...)``.

Files are cached in ``benchmarks/data/`` under a name that encodes the format, the
source and the number of copies, next to a ``.json`` sidecar that holds the
reference checksum of the tiled events (derived from the source recording, so the
1 GiB file never has to be held in memory to be checked) and the build's details.
A file is rebuilt only when it or its sidecar is missing or does not match.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _checksum import Checksum, ChecksumAccumulator, tiled_checksum
from _peers import SUFFIXES

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
DEFAULT_SHARED_DATA = REPO_DIR.parent / "shared" / "data"
TINY_EVENTS = 20_000
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class Source:
    """A real recording from shared/data that a dataset is tiled from."""

    key: str  # path relative to shared/data, as in MANIFEST.json
    label: str


# EVT3 and EVT2.1 are tiled from the EVT2 Gen3 recording (640x480, ~10 Mev/s bursts):
# its density makes realistic vectorised EVT3/EVT2.1 words; the 5,000-event EVT3 cut
# is sparse (~0.1 Mev/s) and would mostly exercise time words.
EVT2_GEN3 = Source("evt2/evt2_gen3_2020-09-14.raw", "EVT2 Gen3 recording")
NCARS_DAT = Source("dat/tonic_sample_ncars.dat", "N-CARS DAT sample")
SOURCES: dict[str, Source] = {
    "evt3": EVT2_GEN3,
    "evt2": EVT2_GEN3,
    "evt21": EVT2_GEN3,
    "dat": NCARS_DAT,
}


class SetupError(RuntimeError):
    """The benchmark cannot run (missing data, missing aerflow...)."""


@dataclass(frozen=True)
class Dataset:
    """A built (or cached) benchmark file and what decoding it must give."""

    format: str
    path: Path
    tiny_path: Path
    width: int
    height: int
    copies: int
    reference: Checksum
    source: str

    @property
    def events(self) -> int:
        return self.reference.n

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


def find_shared_data(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit is not None else []
    if explicit is None and os.environ.get("AERFLOW_SHARED_DATA"):
        candidates.append(Path(os.environ["AERFLOW_SHARED_DATA"]))
    if explicit is None:
        candidates.append(DEFAULT_SHARED_DATA)
    for candidate in candidates:
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise SetupError(
        f"shared test recordings not found (looked for MANIFEST.json in {tried}); "
        "the benchmark expects the project's shared/data folder beside the repository "
        "(<repo>/../shared/data), or pass --shared-data / set AERFLOW_SHARED_DATA"
    )


def _import_aerflow() -> Any:
    try:
        import aerflow
    except ImportError as error:
        raise SetupError(
            f"cannot import aerflow ({error}); run benchmarks/setup_env.sh and use "
            "benchmarks/.venv/bin/python"
        ) from error
    return aerflow


def manifest_digest(events: npt.NDArray[np.void]) -> str:
    """sha256 as defined in shared/data/MANIFEST.json."""
    digest = hashlib.sha256()
    for field in ("t", "x", "y"):
        digest.update(events[field].astype("<i8").tobytes())
    digest.update(events["on"].astype(np.uint8).tobytes())
    return digest.hexdigest()


def _source_checksum(events: npt.NDArray[np.void]) -> tuple[Checksum, int]:
    accumulator = ChecksumAccumulator()
    accumulator.add(events["t"], events["x"], events["y"], events["on"])
    sum_x_plus_1 = int(np.sum(events["x"], dtype=np.uint64)) + len(events)
    return accumulator.result(), sum_x_plus_1


def _span(events: npt.NDArray[np.void]) -> int:
    return int(events["t"][-1]) - int(events["t"][0]) + 1


def tile(events: npt.NDArray[np.void], copies: int) -> npt.NDArray[np.void]:
    """``copies`` back-to-back copies, copy k shifted in time by k * span."""
    n, span = len(events), _span(events)
    out = np.empty(n * copies, dtype=events.dtype)
    for k in range(copies):
        block = out[k * n : (k + 1) * n]
        block[...] = events
        block["t"] += np.uint64(k * span)
    return out


class SourceRecording:
    """A source recording read with aerflow and checked against MANIFEST.json."""

    def __init__(self, shared_data: Path, source: Source) -> None:
        manifest = json.loads((shared_data / "MANIFEST.json").read_text())
        self.source = source
        self.path = shared_data / source.key
        self.entry: dict[str, Any] = manifest["files"][source.key]
        self.events = _import_aerflow().read(self.path)
        self.digest_ok = manifest_digest(self.events) == self.entry["sha256"]
        self.checksum, self.sum_x_plus_1 = _source_checksum(self.events)
        self.span = _span(self.events)

    @property
    def size(self) -> tuple[int, int]:
        if "sensor_size" in self.entry:
            width, height = self.entry["sensor_size"]
            return int(width), int(height)
        return int(self.events["x"].max()) + 1, int(self.events["y"].max()) + 1

    def copies_for(self, target_events: int) -> int:
        return max(1, math.ceil(target_events / len(self.events)))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_atomically(
    path: Path, fmt: str, events: npt.NDArray[np.void], size: tuple[int, int]
) -> None:
    temporary = path.with_name(f".{path.name}.partial{path.suffix}")
    temporary.unlink(missing_ok=True)
    width, height = size
    _import_aerflow().write(temporary, events, format=fmt, width=width, height=height)
    temporary.replace(path)


def _expected_sidecar(fmt: str, recording: SourceRecording, copies: int) -> dict[str, Any]:
    width, height = recording.size
    reference = tiled_checksum(recording.checksum, recording.sum_x_plus_1, copies, recording.span)
    return {
        "sidecar_version": SIDECAR_VERSION,
        "format": fmt,
        "source": recording.source.key,
        "source_sha256": recording.entry["sha256"],
        "copies": copies,
        "shift_us": recording.span,
        "width": width,
        "height": height,
        "reference": reference.to_dict(),
    }


def _cached(path: Path, expected: dict[str, Any]) -> bool:
    sidecar = _sidecar(path)
    if not (path.is_file() and sidecar.is_file()):
        return False
    try:
        return bool(json.loads(sidecar.read_text()) == expected)
    except json.JSONDecodeError:
        return False


def _build(
    path: Path, fmt: str, recording: SourceRecording, copies: int, expected: dict[str, Any]
) -> None:
    events = tile(recording.events, copies)
    accumulator = ChecksumAccumulator()
    accumulator.add(events["t"], events["x"], events["y"], events["on"])
    if accumulator.result().to_dict() != expected["reference"]:
        raise AssertionError("tiling does not match its derived checksum (benchmark bug)")
    _write_atomically(path, fmt, events, recording.size)
    del events
    _sidecar(path).write_text(json.dumps(expected, indent=1) + "\n")


class DatasetBuilder:
    """Builds or reuses datasets; reads each source recording at most once."""

    def __init__(self, shared_data: Path, data_dir: Path = DATA_DIR) -> None:
        self.shared_data = shared_data
        self.data_dir = data_dir
        self._recordings: dict[str, SourceRecording] = {}
        self.warnings: list[str] = []

    def recording(self, source: Source) -> SourceRecording:
        if source.key not in self._recordings:
            recording = SourceRecording(self.shared_data, source)
            if not recording.digest_ok:
                self.warnings.append(
                    f"aerflow.read({source.key}) does not match MANIFEST.json's sha256: "
                    "reference checksums built from it are suspect"
                )
            self._recordings[source.key] = recording
        return self._recordings[source.key]

    def dataset(self, fmt: str, target_events: int, on_build: Any = None) -> Dataset:
        source = SOURCES[fmt]
        recording = self.recording(source)
        copies = recording.copies_for(target_events)
        stem = Path(source.key).stem
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / f"{fmt}_{stem}_x{copies}{SUFFIXES[fmt]}"
        tiny = self.data_dir / f"{fmt}_{stem}_tiny{SUFFIXES[fmt]}"
        expected = _expected_sidecar(fmt, recording, copies)
        if not _cached(path, expected):
            if on_build is not None:
                on_build(path, recording.checksum.n * copies)
            _build(path, fmt, recording, copies, expected)
        tiny_expected = {**expected, "copies": 0, "reference": None, "tiny_events": TINY_EVENTS}
        if not _cached(tiny, tiny_expected):
            _write_atomically(tiny, fmt, recording.events[:TINY_EVENTS], recording.size)
            _sidecar(tiny).write_text(json.dumps(tiny_expected, indent=1) + "\n")
        width, height = recording.size
        return Dataset(
            format=fmt,
            path=path,
            tiny_path=tiny,
            width=width,
            height=height,
            copies=copies,
            reference=Checksum.from_dict(expected["reference"]),
            source=f"{recording.source.label} ({source.key}) x{copies}",
        )
