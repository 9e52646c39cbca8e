"""ATIS .bin (N-MNIST / N-Caltech101): the shared sample, the kernel against the reference on
generated records (overflow markers, rows and columns outside the sensor, torn tails, records
straddling chunk edges), detection by extension only, and bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry
from aerflow.formats import atis_bin

from .helpers import assert_same_events, deadline

try:
    from tests.reference import atis_bin as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import atis_bin as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

SAMPLE = "atis_bin/tonic_sample_nmnist.bin"
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NO_TRIGGERS = np.empty(0, aerflow.TRIGGERS_DTYPE)


def read_all(path: Path, **options: Any) -> tuple[np.ndarray, set[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught, deadline(20):
        warnings.simplefilter("always")
        events = aerflow.read(path, **options)
    return events, {w.category for w in caught}


def read_packets(path: Path, **options: Any) -> tuple[np.ndarray, set[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught, deadline(20):
        warnings.simplefilter("always")
        with aerflow.open(path, **options) as reader:
            parts = [packet.events for packet in reader]
    events = np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)
    return events, {w.category for w in caught}


def expected_warnings(torn: bool, dropped: int) -> set[type[Warning]]:
    found: set[type[Warning]] = set()
    if torn:
        found.add(aerflow.TruncatedDataWarning)
    if dropped:
        found.add(aerflow.OutOfRangeWarning)
    return found


def test_sample_matches_manifest(
    shared_data: Path, manifest: dict[str, Any], digest: Callable[[np.ndarray], str]
) -> None:
    entry = manifest[SAMPLE]
    path = shared_data / SAMPLE
    assert registry.detect(path).name == "atis_bin"
    for events, caught in (read_all(path), read_packets(path, chunk_size=4096)):
        assert caught == set()
        assert len(events) == entry["events"]
        assert int(events["t"][0]) == entry["t_first"]
        assert int(events["t"][-1]) == entry["t_last"]
        assert digest(events) == entry["sha256"]
    with aerflow.open(path) as reader:
        assert reader.properties.format == "atis_bin"
        assert list(reader.properties.sensor_size or ()) == entry["sensor_size"]
    expected, torn, dropped = ref.decode(path.read_bytes(), 34, 34)
    assert not torn
    assert dropped == 0
    assert_same_events(aerflow.read(path), expected)


RECORD_ITEMS = st.lists(
    st.tuples(
        st.integers(0, 7),  # 0: an overflow marker
        st.one_of(st.integers(0, 1000), st.integers(0, (1 << 23) - 1)),
        st.integers(0, 255),
        st.one_of(st.integers(0, 40), st.integers(0, 255)),
        st.booleans(),
        st.binary(min_size=3, max_size=3),
    ),
    max_size=60,
)
TAILS = st.one_of(st.just(b""), st.binary(min_size=1, max_size=4))


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """Records with times up to 2**23, overflow markers, rows and columns anywhere, and maybe
    a torn tail."""
    body = bytearray()
    for kind, t, x, y, on, raw in draw(RECORD_ITEMS):
        if kind == 0:
            body += bytes([x, 240]) + raw
        else:
            body += ref.encode([(t, x, y, on)])
    return bytes(body) + draw(TAILS)


@SETTINGS
@given(data=st.data())
def test_kernel_in_pieces(data: st.DataObject) -> None:
    payload = data.draw(records())
    width = data.draw(st.sampled_from([34, 256, 240, 1, 300]))
    height = data.draw(st.sampled_from([34, 240, 256, 1]))
    expected, torn, dropped = ref.decode(payload, width, height)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=6)))
    room = data.draw(st.integers(1, 5))
    state = np.zeros(2, np.int64)
    array = np.frombuffer(payload, np.uint8)
    parts = []
    position = 0
    for edge in [*cuts, len(payload)]:
        # Like the reader: a window starts at the first byte not consumed.
        while True:
            events = np.empty(room, aerflow.EVENTS_DTYPE)
            consumed, n, _ = atis_bin._decode(
                array[position:edge], state, width, height, events, 0, NO_TRIGGERS, 0
            )
            parts.append(events[:n].copy())
            position += consumed
            if consumed == 0 and n == 0:
                break
    events = np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)
    assert_same_events(events, expected)
    assert int(state[1]) == dropped
    assert (position != len(payload)) == torn


@SETTINGS
@given(payload=records(), chunked=st.booleans())
def test_reader_on_generated_files(
    payload: bytes, chunked: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("bin") / "generated.bin"
    data = payload * (1 + 9000 // max(len(payload), 1))  # records straddle 4096-byte windows
    path.write_bytes(data)
    # Without a size the sensor fits every event (8-bit coordinates), and is at least 34x34.
    expected, torn, dropped = ref.decode(data, 256, 256)
    assert dropped == 0
    size = (
        max(int(expected["x"].max(initial=0)) + 1, 34),
        max(int(expected["y"].max(initial=0)) + 1, 34),
    )
    read = read_packets if chunked else read_all
    events, caught = read(path, chunk_size=4096)
    assert_same_events(events, expected)
    # A torn repetition misaligns the ones after it: the reference sees the same bytes.
    assert caught == expected_warnings(torn, 0)
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == size
    events, caught = read(path, chunk_size=4096, width=34, height=34)
    expected, torn, dropped = ref.decode(data, 34, 34)
    assert_same_events(events, expected)
    assert caught == expected_warnings(torn, dropped)


def test_overflow_markers(tmp_path: Path) -> None:
    body = ref.encode([(5, 1, 2, True), (8000, 3, 4, False)])
    body += bytes([0, 240, 0, 0, 0]) + ref.encode([(7, 5, 6, True)])
    body += bytes([9, 240, 1, 2, 3]) * 2 + ref.encode([(1, 7, 8, False)])
    path = tmp_path / "overflow.bin"
    path.write_bytes(body)
    assert aerflow.read(path).tolist() == [
        (5, 1, 2, True),
        (8000, 3, 4, False),
        (7 + 8192, 5, 6, True),
        (1 + 3 * 8192, 7, 8, False),
    ]


def test_sensor_size(tmp_path: Path) -> None:
    body = ref.encode([(1, 33, 33, True), (2, 34, 0, False), (3, 200, 239, True)])
    path = tmp_path / "caltech.bin"
    path.write_bytes(body)
    # No size given: just large enough for every event, so none is lost.
    events, caught = read_all(path)
    assert caught == set()
    assert len(events) == 3
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (201, 240)
        assert "from the events" in reader.metadata["sensor_size"]
    with pytest.warns(aerflow.OutOfRangeWarning, match="34x34"):
        events = aerflow.read(path, width=34, height=34)
    assert events.tolist() == [(1, 33, 33, True)]
    events, caught = read_all(path, width=256, height=240)
    assert caught == set()
    assert len(events) == 3
    with aerflow.open(path, width=256, height=240) as reader:
        assert reader.properties.sensor_size == (256, 240)
    with pytest.raises(ValueError, match=r"size|width|height"):
        aerflow.read(path, width=0, height=34)
    with pytest.raises(ValueError, match=r"width|height"):
        aerflow.read(path, width=34)


def test_torn_tail(tmp_path: Path) -> None:
    body = ref.encode([(1, 1, 1, True), (2, 2, 2, False)])
    for extra in range(1, 5):
        path = tmp_path / f"torn{extra}.bin"
        path.write_bytes(body + b"\x01" * extra)
        with pytest.warns(aerflow.TruncatedDataWarning, match=f"byte {len(body)}"):
            events = aerflow.read(path)
        assert events.tolist() == [(1, 1, 1, True), (2, 2, 2, False)]


def test_detection_by_extension_only(tmp_path: Path) -> None:
    info = registry.get("atis_bin")
    assert info.extensions == (".bin",)
    assert info.writer is None
    assert not info.sniff(b"")
    assert not info.sniff(bytes(range(256)))
    body = ref.encode([(1, 1, 1, True)])
    for name in ("sample.BIN", "sample.bin"):
        path = tmp_path / name
        path.write_bytes(body)
        assert registry.detect(path).name == "atis_bin"
    other = tmp_path / "sample.dat5"
    other.write_bytes(body)
    with pytest.raises(aerflow.UnknownFormatError):
        aerflow.read(other)
    assert aerflow.read(other, format="atis_bin").tolist() == [(1, 1, 1, True)]
    # Formats that recognise their contents win over the extension.
    es_file = tmp_path / "stream.bin"
    es_file.write_bytes(b"Event Stream\x02\x00\x00\x01\x02\x00\x02\x00" + bytes([3, 1, 0, 1, 0]))
    assert registry.detect(es_file).name == "es"
    with pytest.raises(aerflow.UnknownFormatError):
        registry.for_writing(tmp_path / "out.bin")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2000))
def test_random_bytes(body: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("random") / "random.bin"
    path.write_bytes(body)
    choices: list[dict[str, Any]] = [{}, {"chunk_size": 4096}, {"width": 256, "height": 256}]
    for options in choices:
        with warnings.catch_warnings(), deadline(20):
            warnings.simplefilter("ignore")
            with aerflow.open(path, format="atis_bin", **options) as reader:
                width, height = reader.properties.sensor_size or (0, 0)
                packets = list(reader)
        for packet in packets:
            assert packet.events.dtype == aerflow.EVENTS_DTYPE
            assert int(packet.events["x"].max()) < width
            assert int(packet.events["y"].max()) < height
