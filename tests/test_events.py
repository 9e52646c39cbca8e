"""The event model: dtypes, as_events() over other libraries' layouts, parse_time()."""

from __future__ import annotations

import numpy as np
import pytest

import aerflow
from aerflow.events import Packet, as_events, parse_time


def _reference_events() -> np.ndarray:
    events = np.zeros(4, aerflow.EVENTS_DTYPE)
    events["t"] = [1, 2, 30, 400]
    events["x"] = [0, 5, 65535, 7]
    events["y"] = [9, 0, 3, 65535]
    events["on"] = [True, False, True, False]
    return events


def test_events_dtype_is_packed_and_titled() -> None:
    dtype = aerflow.EVENTS_DTYPE
    assert dtype.itemsize == 13
    assert [dtype.fields[name][1] for name in ("t", "x", "y", "on")] == [0, 8, 10, 12]
    events = _reference_events()
    assert (events["p"] == events["on"]).all()
    assert aerflow.TRIGGERS_DTYPE.itemsize == 10


def test_matching_bytes_give_a_view() -> None:
    faery_like = np.zeros(3, [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    converted = as_events(faery_like)
    assert converted.dtype == aerflow.EVENTS_DTYPE
    assert np.shares_memory(converted, faery_like)
    event_stream_like = np.zeros(3, [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    assert np.shares_memory(as_events(event_stream_like), event_stream_like)
    same = _reference_events()
    assert as_events(same) is same


@pytest.mark.parametrize(
    ("layout", "polarity"),
    [
        # tonic: x first, bool polarity
        ([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")], [True, False, True, False]),
        # expelliarmus 1.1 (aligned, 16 bytes)
        (
            np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")], align=True),
            [1, 0, 1, 0],
        ),
        # dv-processing
        (
            np.dtype(
                [("timestamp", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "i1")], align=True
            ),
            [1, 0, 1, 0],
        ),
        # Metavision EventCD
        ([("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")], [1, 0, 1, 0]),
        # evlib-style -1/+1 polarity
        ([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "i1")], [1, -1, 1, -1]),
    ],
)
def test_other_layouts_are_copied(layout: object, polarity: list[int]) -> None:
    expected = _reference_events()
    expected["x"][2] = 3  # signed 16-bit layouts cannot hold 65535
    expected["y"][3] = 4
    other = np.zeros(4, layout)  # type: ignore[call-overload]
    time_name = "timestamp" if "timestamp" in other.dtype.names else "t"
    polarity_name = next(n for n in ("p", "polarity", "on") if n in other.dtype.names)
    other[time_name] = expected["t"]
    other["x"] = expected["x"]
    other["y"] = expected["y"]
    other[polarity_name] = polarity
    converted = as_events(other)
    assert converted.dtype == aerflow.EVENTS_DTYPE
    assert not np.shares_memory(converted, other)
    assert converted.tolist() == expected.tolist()


def test_unstructured_columns() -> None:
    table = np.array([[10, 1, 2, 1], [20, 3, 4, 0]])
    converted = as_events(table)
    assert converted.tolist() == [(10, 1, 2, True), (20, 3, 4, False)]
    swapped = as_events(np.array([[1, 2, 10, 1]]), columns=("x", "y", "t", "p"))
    assert swapped.tolist() == [(10, 1, 2, True)]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(2, [("t", "<i8"), ("x", "<i2")]), "cannot read events"),
        (np.array([[-1, 0, 0, 1]]), "t must lie in"),
        (np.array([[0, 70000, 0, 1]]), "x must lie in"),
        (np.array([[0.5, 0, 0, 1]]), "non-integer"),
        (np.zeros((2, 3)), "columns"),
    ],
)
def test_bad_layouts_raise(array: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        as_events(array)


@pytest.mark.parametrize(
    ("text", "microseconds"),
    [
        (250, 250),
        ("250", 250),
        ("250us", 250),
        ("250µs", 250),
        ("10ms", 10_000),
        ("2.5s", 2_500_000),
        ("0.000001s", 1),
        ("0.0000015s", 2),  # rounded to the nearest µs, half up
        ("3min", 180_000_000),
        ("1h", 3_600_000_000),
        ("1:02.5", 62_500_000),
        ("00:01:02.5", 62_500_000),
        ("2:00:00", 7_200_000_000),
        (".5ms", 500),
    ],
)
def test_parse_time(text: str | int, microseconds: int) -> None:
    assert parse_time(text) == microseconds


@pytest.mark.parametrize("text", ["", "ten ms", "10 parsecs", "-5ms", "1:2:3:4", "1e3s"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_time(text)


def test_parse_time_rejects_negative_and_bool() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_time(-1)
    with pytest.raises(TypeError):
        parse_time(True)


def test_packet_defaults_to_no_triggers() -> None:
    packet = Packet(_reference_events())
    assert len(packet) == 4
    assert packet.triggers.dtype == aerflow.TRIGGERS_DTYPE
    assert len(packet.triggers) == 0


def test_errors_also_inherit_builtins() -> None:
    assert issubclass(aerflow.FormatError, ValueError)
    assert issubclass(aerflow.FormatError, aerflow.AerflowError)
    assert issubclass(aerflow.UnknownFormatError, LookupError)
    error = aerflow.FormatError("bad word", path="a.raw", offset=12)
    assert str(error) == "a.raw: byte 12: bad word"
    assert (error.path, error.offset) == ("a.raw", 12)
