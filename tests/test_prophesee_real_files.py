"""Real Prophesee recordings (EVT 2.0, EVT 3.0, DAT) listed in shared/data/MANIFEST.json.

aerflow must give exactly the manifest's facts (which come from independent third-party
decoders), exactly the plain-Python reference decoder's arrays, and the same arrays whatever
the chunk size (so words and vector groups straddling chunk edges are decoded whole).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow

try:
    from tests.reference import prophesee as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

CHUNK_SIZES = (4096, 4097, 5003, 65536, None)  # None: the default
Decoded = tuple[np.ndarray, np.ndarray, dict[str, str], int]


def assert_events_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == aerflow.EVENTS_DTYPE
    assert len(actual) == len(expected)
    for name in ("t", "x", "y", "on"):
        same = actual[name] == expected[name]
        if not same.all():
            index = int(np.flatnonzero(~same)[0])
            pytest.fail(
                f"field {name} differs first at event {index}: "
                f"got {actual[index]!r}, expected {expected[index]!r}"
            )


def assert_triggers_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == aerflow.TRIGGERS_DTYPE
    assert actual.tolist() == expected.tolist()


def test_read_gives_the_manifest_facts(
    prophesee_file: str,
    shared_data: Path,
    manifest: dict[str, Any],
    digest: Callable[[np.ndarray], str],
) -> None:
    entry = manifest[prophesee_file]
    path = shared_data / prophesee_file
    events = aerflow.read(path)
    assert events.dtype == aerflow.EVENTS_DTYPE
    assert len(events) == entry["events"]
    assert int(events["t"][0]) == entry["t_first"]
    assert int(events["t"][-1]) == entry["t_last"]
    assert [int(events["x"].min()), int(events["x"].max())] == entry["x_range"]
    assert [int(events["y"].min()), int(events["y"].max())] == entry["y_range"]
    assert float(events["on"].mean()) == pytest.approx(entry["on_fraction"], abs=1e-12)
    assert digest(events) == entry["sha256"]
    # The titled field: "p" and "on" are the same column.
    assert np.array_equal(events["p"], events["on"])


def test_properties_and_metadata(
    prophesee_file: str, shared_data: Path, manifest: dict[str, Any]
) -> None:
    entry = manifest[prophesee_file]
    path = shared_data / prophesee_file
    header, _ = ref.parse_header(path.read_bytes())
    with aerflow.open(path) as reader:
        properties = reader.properties
        assert properties.format == entry["format"]
        if "sensor_size" in entry:
            assert properties.sensor_size == tuple(entry["sensor_size"])
            assert (properties.width, properties.height) == tuple(entry["sensor_size"])
        elif entry["format"] == "dat" and ("Width" not in header or "Height" not in header):
            assert properties.sensor_size is None
        if properties.event_count is not None:
            assert properties.event_count == entry["events"]
        assert reader.metadata == header
        packet = reader.read()
        assert reader.dropped_out_of_range == 0
    assert len(packet.events) == entry["events"]


def test_read_equals_reference_decoder(
    prophesee_file: str,
    shared_data: Path,
    reference_decode: Callable[[Path], Decoded],
) -> None:
    path = shared_data / prophesee_file
    expected_events, expected_triggers, _, _ = reference_decode(path)
    packet = aerflow.read(path, triggers=True)
    assert isinstance(packet, aerflow.Packet)
    assert_events_equal(packet.events, expected_events)
    assert_triggers_equal(packet.triggers, expected_triggers)
    assert_events_equal(aerflow.read(path), expected_events)


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES, ids=lambda c: f"chunk{c or 'default'}")
def test_chunked_iteration_gives_the_same_arrays(
    prophesee_file: str,
    chunk_size: int | None,
    shared_data: Path,
    reference_decode: Callable[[Path], Decoded],
) -> None:
    path = shared_data / prophesee_file
    expected_events, expected_triggers, _, data_offset = reference_decode(path)
    options = {} if chunk_size is None else {"chunk_size": chunk_size}
    with aerflow.open(path, **options) as reader:
        packets = list(reader)
        for packet in packets:
            assert isinstance(packet, aerflow.Packet)
            assert packet.events.dtype == aerflow.EVENTS_DTYPE
            assert packet.triggers.dtype == aerflow.TRIGGERS_DTYPE
        events = np.concatenate([p.events for p in packets]) if packets else np.empty(0)
        triggers = (
            np.concatenate([p.triggers for p in packets])
            if packets
            else np.empty(0, aerflow.TRIGGERS_DTYPE)
        )
        assert_events_equal(events, expected_events)
        assert_triggers_equal(triggers, expected_triggers)
        if chunk_size is not None:
            payload = path.stat().st_size - data_offset
            # Every packet comes from one window of at most chunk_size bytes, so a file of
            # several windows gives several packets.
            assert len(packets) >= min(payload // chunk_size, len(expected_events) // 64)

        # Rewinding starts again from the first event.
        reader.rewind()
        again = reader.read()
        assert_events_equal(again.events, expected_events)


def test_chunk_size_below_the_minimum_is_refused(prophesee_file: str, shared_data: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        aerflow.open(shared_data / prophesee_file, chunk_size=4095)


def test_read_after_partial_iteration_returns_everything(
    prophesee_file: str,
    shared_data: Path,
    reference_decode: Callable[[Path], Decoded],
) -> None:
    path = shared_data / prophesee_file
    expected, _, _, _ = reference_decode(path)
    with aerflow.open(path, chunk_size=4096) as reader:
        iterator = iter(reader)
        first = next(iterator)
        with pytest.raises(RuntimeError, match="already being read"):
            reader.read()  # the iteration is still under way
        del iterator  # given up: the reader is free again, and starts from the first event
        everything = reader.read()
    assert 0 < len(first.events) < len(expected)
    assert_events_equal(everything.events, expected)
