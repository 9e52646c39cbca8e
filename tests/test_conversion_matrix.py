"""Every reader x every writer: what one format reads, another writes and reads back equal.

A small generated stream (128x128, increasing time, small timestamps) fits every writer and
must come back exactly from each. Each real recording must come back exactly from every
writer; a writer may refuse what it cannot hold (a sensor beyond its address bits, time
that its counter cannot reach) only where the pair is listed in REFUSALS with its reason,
and then with that error before a file appears.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.synthetic import SyntheticSensor

from .conftest import DATA_DIR, MANIFEST_FILES
from .helpers import assert_same_events

WRITERS = [f.name for f in aerflow.list_formats() if f.writer]
SUFFIX = {f.name: (f.extensions or (".bin",))[0] for f in aerflow.list_formats()}
REAL_FILES = sorted(
    name
    for name, entry in MANIFEST_FILES.items()
    if DATA_DIR is not None and (DATA_DIR / name).is_file()
)
# (recording, writer) -> words the writer's refusal must contain, and why it is right.
REFUSALS = {
    ("aedat4/tonic_sample_dvxplorer.aedat4", "es"): (
        "gaps over 4294967296",
        "Unix-time stamps: Event Stream stores the first event as a 32-bit gap from 0",
    ),
    ("evt3/expelliarmus_evt3_gen41_2020-09-14.raw", "aedat2"): (
        "does not fit camera",
        "AEDAT 2.0 addresses hold at most a 1024x512 (DAVIS) sensor, not 1280x720",
    ),
    ("hdf5/evt3_gen41_5000_ecf.hdf5", "aedat2"): (
        "does not fit camera",
        "the same 1280x720 recording as the EVT 3.0 one, in Prophesee HDF5",
    ),
}


def round_trip(events: np.ndarray, size: tuple[int, int], fmt: str, folder: Path) -> np.ndarray:
    path = folder / f"out{SUFFIX[fmt]}"
    options = {o.name for o in aerflow.registry.get(fmt).write_options}
    sizes = {"width": size[0], "height": size[1]} if "width" in options else {}
    aerflow.write(path, events, format=fmt, **sizes)
    return aerflow.read(path, format=fmt)


def generated() -> np.ndarray:
    return SyntheticSensor(128, 128, rate=200_000, duration="50ms", seed=7).read().events


@pytest.mark.parametrize("fmt", WRITERS)
def test_generated_stream_survives_every_writer(fmt: str, tmp_path: Path) -> None:
    events = generated()
    assert len(events) > 5_000
    assert_same_events(round_trip(events, (128, 128), fmt, tmp_path), events)


@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize(
    "name", REAL_FILES or [pytest.param(None, marks=pytest.mark.skip("no shared data"))]
)
def test_real_recording_through_every_writer(name: str, fmt: str, tmp_path: Path) -> None:
    assert DATA_DIR is not None
    entry = MANIFEST_FILES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recordings' own quirks are tested elsewhere
        known = {f.name for f in aerflow.list_formats()}
        fmt_in = entry["format"] if entry["format"] in known else None  # "txt" is detected
        with aerflow.open(DATA_DIR / name, format=fmt_in) as reader:
            size = reader.properties.sensor_size
            events = reader.read().events
    if size is None:
        size = (int(events["x"].max(initial=0)) + 1, int(events["y"].max(initial=0)) + 1)
    refusal = REFUSALS.get((name, fmt))
    if refusal is None:
        assert_same_events(round_trip(events, size, fmt, tmp_path), events)
        return
    with pytest.raises((aerflow.AerflowError, ValueError), match=refusal[0]):
        round_trip(events, size, fmt, tmp_path)
    assert list(tmp_path.iterdir()) == [], "a refused write left a file behind"


def test_refusals_name_real_pairs() -> None:
    """A listed refusal that no longer matches a recording and a writer is stale."""
    assert {name for name, _ in REFUSALS} <= set(REAL_FILES)
    assert {fmt for _, fmt in REFUSALS} <= set(WRITERS)
