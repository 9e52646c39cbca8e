"""Every reader x every writer: what one format reads, another writes and reads back equal.

A small generated stream (128x128, increasing time, small timestamps) fits every writer and
must come back exactly from each. Each real recording must come back exactly from every
writer that accepts it; a writer may refuse what it cannot hold (a coordinate beyond its
address bits, time stepping back in Event Stream), but only with a clear error before a
file appears.
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
    name for name in MANIFEST_FILES if DATA_DIR is not None and (DATA_DIR / name).is_file()
)


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
    try:
        back = round_trip(events, size, fmt, tmp_path)
    except (aerflow.AerflowError, ValueError) as refusal:
        reason = str(refusal)
        assert reason, "a refusal must say why"
        assert list(tmp_path.iterdir()) == [], "a refused write left a file behind"
        pytest.skip(f"{fmt} cannot hold {name}: {reason}")
    assert_same_events(back, events)
