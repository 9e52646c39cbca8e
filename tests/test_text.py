"""CSV / text: the shared sample, the parser against the plain-Python reference, streams over
pipes, writers, sniffing, bad input and fuzzing.

The reference (``tests/reference/text.py``) parses whole files with regular expressions and
exact fractions; aerflow parses with a numba kernel on memory-mapped windows (any chunk size,
lines straddling the edges), on two threads, or from a stream filled piece by piece. All must
give the same events, or fail at the same line and byte.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aerflow
from aerflow import registry
from aerflow.formats import text as text_format
from aerflow.formats.text import TextFormatError, TextReader, TextWriter, sniff_text

from .helpers import assert_same_events, deadline

try:
    from tests.reference import text as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import text as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

SAMPLE = "txt/evlib_event.txt"
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_counter = [0]


def save(directory: Path, data: bytes, suffix: str = ".csv") -> Path:
    _counter[0] += 1
    path = directory / f"input{_counter[0]}{suffix}"
    path.write_bytes(data)
    return path


def events_of(rows: list[tuple[int, int, int, bool]]) -> np.ndarray:
    return np.array(rows, dtype=aerflow.EVENTS_DTYPE)


def concatenate(packets: Iterator[aerflow.Packet]) -> np.ndarray:
    parts = [p.events for p in packets]
    return np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)


class Trickle(io.RawIOBase):
    """A raw stream handing out at most ``step`` bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._position = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(self._step, len(view), len(self._data) - self._position)
        view[:count] = self._data[self._position : self._position + count]
        self._position += count
        return count


# --------------------------------------------------------------------------- #
# The shared sample                                                           #
# --------------------------------------------------------------------------- #


def check_manifest(events: np.ndarray, entry: dict[str, Any], digest: Callable[[Any], str]) -> None:
    assert len(events) == entry["events"]
    assert int(events["t"][0]) == entry["t_first"]
    assert int(events["t"][-1]) == entry["t_last"]
    assert [int(events["x"].min()), int(events["x"].max())] == entry["x_range"]
    assert [int(events["y"].min()), int(events["y"].max())] == entry["y_range"]
    assert digest(events) == entry["sha256"]


def test_sample_matches_manifest(
    shared_data: Path, manifest: dict[str, Any], digest: Callable[[Any], str]
) -> None:
    path = shared_data / SAMPLE
    entry = manifest[SAMPLE]
    assert registry.detect(path).name == "csv"
    events = aerflow.read(path)
    check_manifest(events, entry, digest)
    with aerflow.open(path) as reader:
        assert reader.properties.format == "csv"
        assert reader.metadata["time_unit"] == "s"
        assert reader.metadata["header"] == "no"
    for chunk_size in (1, 5, 21, 64, 4096):
        with aerflow.open(path, chunk_size=chunk_size) as reader:
            assert_same_events(concatenate(iter(reader)), events)
    with path.open("rb") as handle:
        assert_same_events(TextReader.from_stream(handle).read().events, events)
    with path.open("rb", buffering=0) as handle:
        assert_same_events(concatenate(iter(TextReader.from_stream(handle, chunk_size=7))), events)
    assert_same_events(events, ref.read_text(path.read_bytes()).events)


def test_sample_rounds_to_the_nearest_microsecond(shared_data: Path) -> None:
    events = aerflow.read(shared_data / SAMPLE)
    assert events["t"][:2].tolist() == [0, 780]  # 0.000779999 s is 780 µs, not 779
    told = aerflow.read(shared_data / SAMPLE, time_unit="s")
    assert_same_events(told, events)


# --------------------------------------------------------------------------- #
# Generated documents: kernel against the reference                           #
# --------------------------------------------------------------------------- #

BAD_TOKENS = ["-3", "1.5", "abc", "", "2", "70000", "1e400", "--1", "+", "0x10", "1 2", "-"]


@st.composite
def time_texts(draw: st.DrawFn, unit: str) -> str:
    whole = draw(st.integers(0, 10**9))
    if unit == "us":
        text = str(whole)
        if draw(st.integers(0, 9)) == 0:
            text = draw(st.sampled_from(["+", "0", "00"])) + text
        return text
    digits = draw(st.text("0123456789", min_size=0, max_size=12))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return f"{whole}e{draw(st.integers(-9, 3))}"
    if kind == 1:
        return f".{digits or '5'}"
    return f"{whole % 10**6}.{digits}"


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    separator = draw(st.sampled_from([",", ";", " ", "\t", "  ", ", ", " ,"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    order = list(draw(st.permutations(["t", "x", "y", "p"])))
    extra = draw(st.integers(0, 5)) == 0
    if extra:
        order.insert(draw(st.integers(0, 4)), "extra")
    unit = draw(st.sampled_from(["us", "s", "ms"]))
    header = draw(st.booleans())
    options: dict[str, Any] = {}
    names = {"t": "t", "x": "x", "y": "y", "p": draw(st.sampled_from(["p", "on", "polarity"]))}
    if header:
        if unit != "us" and draw(st.booleans()):
            names["t"] = draw(st.sampled_from([f"t_{unit}", f"t[{unit}]", f"timestamp ({unit})"]))
        elif unit == "ms":
            options["time_unit"] = "ms"
    else:
        if order != ["t", "x", "y", "p"]:
            options["columns"] = [names.get(c, c) for c in order]
        if unit == "ms" or draw(st.integers(0, 4)) == 0:
            options["time_unit"] = unit
    if draw(st.integers(0, 6)) == 0:
        options["separator"] = separator.strip() or " "
    lines: list[str] = []
    if header:
        lines.append(separator.join(names.get(c, c) for c in order))
    n_rows = draw(st.integers(0, 25))
    for _ in range(n_rows):
        while draw(st.integers(0, 8)) == 0:
            lines.append(draw(st.sampled_from(["", "  ", "# comment", "% note", "\t#x, y"])))
        fields = []
        for column in order:
            if column == "t":
                fields.append(draw(time_texts(unit)))
            elif column in ("x", "y"):
                value = draw(st.one_of(st.integers(0, 700), st.integers(0, 65535)))
                fields.append(("0" if draw(st.integers(0, 9)) == 0 else "") + str(value))
            elif column == "p":
                fields.append(
                    draw(st.sampled_from(["0", "1", "-1", "+1", "true", "False", "TRUE", "0"]))
                )
            else:
                fields.append(draw(st.sampled_from(["abc", "1.5", "-7", "zz"])))
        if draw(st.integers(0, 12)) == 0:  # corrupt this line
            how = draw(st.integers(0, 2))
            if how == 0:
                fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(BAD_TOKENS))
            elif how == 1:
                fields.pop(draw(st.integers(0, len(fields) - 1)))
            else:
                fields.append("1")
        line = separator.join(fields)
        if draw(st.integers(0, 9)) == 0:
            line = draw(st.sampled_from([" ", "\t"])) + line + draw(st.sampled_from([" ", "\t"]))
        lines.append(line)
    text = eol.join(lines)
    if lines and draw(st.booleans()):
        text += eol
    return text.encode(), options


# What the reference reports for a last line that a cut can produce: aerflow takes such a
# line, when it ends the input without a newline, as torn (see _text_kernels).
TORN_KINDS = frozenset(("too few fields", "bad time", "bad coordinate", "bad polarity"))


def read_reference(data: bytes, **options: Any) -> ref.TextResult | ref.ReferenceTextError:
    try:
        return ref.read_text(data, **options)
    except ref.ReferenceTextError as error:
        return error


def reference_outcome(data: bytes, **options: Any) -> tuple[str, Any]:
    """The reference's reading, with aerflow's rule for a torn last line on top: the
    reference reads whole files, so a torn line is compared as the reference reads the input
    without it (and aerflow must warn)."""
    result = read_reference(data, **options)
    last_start = data.rfind(b"\n") + 1
    last = data[last_start:].strip(b" \t\r")
    if last and last[:1] not in (b"#", b"%"):
        trimmed = read_reference(data[:last_start], **options) if last_start else None
        if isinstance(trimmed, ref.ReferenceTextError):
            torn = False
        elif isinstance(result, ref.ReferenceTextError):
            torn = result.kind in TORN_KINDS and result.line == data.count(b"\n") + 1
        else:
            before = 0 if trimmed is None else len(trimmed.events) + trimmed.dropped
            torn = (
                len(result.events) + result.dropped == before + 1
                and ref._role(result.columns[-1])[0] in ("t", "x", "y")
                and data[-1:] not in (b" ", b"\t", b"\r")
            )
        if torn:
            if trimmed is None:
                return "torn", (np.empty(0, ref.EVENTS), 0)
            assert not isinstance(trimmed, ref.ReferenceTextError)
            return "torn", (trimmed.events, trimmed.dropped)
    if isinstance(result, ref.ReferenceTextError):
        return "error", (result.line, result.offset)
    return "events", (result.events, result.dropped)


def aerflow_outcome(read: Callable[[], tuple[np.ndarray, int]]) -> tuple[str, Any]:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", aerflow.OutOfRangeWarning)
            warnings.simplefilter("always", aerflow.TruncatedDataWarning)
            events, dropped = read()
    except TextFormatError as error:
        return "error", (error.line, error.offset)
    torn = [w for w in caught if issubclass(w.category, aerflow.TruncatedDataWarning)]
    assert len(torn) == len(caught) <= 1, [str(w.message) for w in caught]
    return ("torn" if torn else "events"), (events, dropped)


def assert_same_outcome(actual: tuple[str, Any], expected: tuple[str, Any], how: str) -> None:
    assert actual[0] == expected[0], (how, actual, expected)
    if expected[0] == "error":
        assert actual[1] == expected[1], (how, actual, expected)
    else:
        assert_same_events(actual[1][0], expected[1][0])
        assert actual[1][1] == expected[1][1], how


def read_modes(path: Path, data: bytes, options: dict[str, Any], chunk: int) -> dict[str, Any]:
    def whole() -> tuple[np.ndarray, int]:
        with TextReader(path, **options) as reader:
            return reader.read().events, reader.dropped_out_of_range

    def two_threads() -> tuple[np.ndarray, int]:
        with mock.patch.object(text_format, "_PARALLEL_MIN_BYTES", 1):
            return whole()

    def chunked() -> tuple[np.ndarray, int]:
        with TextReader(path, chunk_size=chunk, **options) as reader:
            return concatenate(iter(reader)), reader.dropped_out_of_range

    def stream() -> tuple[np.ndarray, int]:
        reader = TextReader.from_stream(Trickle(data, chunk), chunk_size=chunk, **options)
        return concatenate(iter(reader)), reader.dropped_out_of_range

    return {"read": whole, "threads": two_threads, "chunked": chunked, "stream": stream}


@SETTINGS
@given(document=documents(), chunk=st.integers(1, 80))
def test_parser_matches_reference(
    document: tuple[bytes, dict[str, Any]], chunk: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data, options = document
    path = save(tmp_path_factory.getbasetemp(), data)
    expected = reference_outcome(data, **options)
    with deadline(20):
        for how, read in read_modes(path, data, options, chunk).items():
            assert_same_outcome(aerflow_outcome(read), expected, how)


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 10**15), st.integers(0, 65535), st.integers(0, 65535), st.booleans()
        ),
        max_size=30,
    ),
    layout=st.sampled_from(["csv", "openeb", "rpg"]),
    time_unit=st.sampled_from([None, "us", "ms", "s"]),
    separator=st.sampled_from([None, ",", ";", " ", "\t"]),
)
def test_writer_matches_reference(
    rows: list[tuple[int, int, int, bool]],
    layout: str,
    time_unit: str | None,
    separator: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    events = events_of(rows)
    options: dict[str, Any] = {"layout": layout}
    preset = dict(text_format.LAYOUTS[layout])
    if time_unit is not None:
        options["time_unit"] = preset["time_unit"] = time_unit
    if separator is not None:
        options["separator"] = preset["separator"] = separator
    expected = ref.write_text(
        events,
        columns=preset["columns"],
        separator=preset["separator"],
        time_unit=preset["time_unit"],
        header=preset["header"],
        geometry=(65536, 65536) if layout == "openeb" else None,
    )
    stream = io.BytesIO()
    with TextWriter.to_stream(stream, width=65536, height=65536, **options) as writer:
        writer.write(events[: len(events) // 2])
        writer.write(events[len(events) // 2 :])
    assert stream.getvalue() == expected
    path = tmp_path_factory.getbasetemp() / f"written{_counter[0]}.txt"
    _counter[0] += 1
    aerflow.write(path, events, format="csv", width=65536, height=65536, **options)
    assert path.read_bytes() == expected
    # Read back: every layout gives the same events (times are exact at 3 or 6 decimals).
    read_options = {} if preset["header"] else {"columns": preset["columns"]}
    if not preset["header"] or preset["time_unit"] == "ms":
        read_options["time_unit"] = preset["time_unit"]
    if separator is not None:
        read_options["separator"] = separator
    assert_same_events(aerflow.read(path, format="csv", **read_options), events)


# --------------------------------------------------------------------------- #
# Layouts and options                                                         #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("data", "options", "expected", "metadata"),
    [
        (b"t,x,y,on\n1,2,3,1\n", {}, [(1, 2, 3, True)], {"columns": "t,x,y,on", "header": "yes"}),
        (b"%geometry:640,480\n2,3,1,17\n", {}, [(17, 2, 3, True)], {"columns": "x,y,p,t"}),
        (b"% geometry: 640x480\r\n2,3,0,17\r\n", {}, [(17, 2, 3, False)], {"geometry": "640,480"}),
        (b"0.5 1 2 1\n", {}, [(500000, 1, 2, True)], {"time_unit": "s", "separator": "blanks"}),
        (b"5 1 2 1\n", {}, [(5, 1, 2, True)], {"time_unit": "us"}),
        (b"5 1 2 1\n", {"time_unit": "ms"}, [(5000, 1, 2, True)], {"time_unit": "ms"}),
        (b"1.25;1;2;-1\n", {"time_unit": "ms"}, [(1250, 1, 2, False)], {"separator": ";"}),
        (b"x y p t\n1 2 true 9\n", {}, [(9, 1, 2, True)], {"columns": "x,y,p,t"}),
        (b"Timestamp,X,Y,Polarity\n9,1,2,FALSE\n", {}, [(9, 1, 2, False)], {}),
        (b"t_ms,x,y,p\n1.5,1,2,0\n", {}, [(1500, 1, 2, False)], {"time_unit": "ms"}),
        (b"t[s] x y p\n2 1 2 0\n", {}, [(2000000, 1, 2, False)], {"time_unit": "s"}),
        (b"t,id,x,y,p\n9,abc,1,2,1\n", {}, [(9, 1, 2, True)], {"columns": "t,id,x,y,p"}),
        (b"\xef\xbb\xbft,x,y,p\n9,1,2,1", {}, [(9, 1, 2, True)], {}),
        (b"1,2,1,3\n", {"columns": "x,y,p,t"}, [(3, 1, 2, True)], {}),
        (b"1,2,0,7\n", {"columns": ("y", "x", "on", "t")}, [(7, 2, 1, False)], {}),
        (b"1\t2 3  1\n", {"separator": "\t"}, [(1, 2, 3, True)], {}),
        (b"t,x,y,p\n", {}, [], {"header": "yes"}),
        (b"", {}, [], {"header": "no"}),
        (b"\n\n# only comments\n", {}, [], {}),
        (b"1.5e3 1 2 1\n", {"time_unit": "us"}, [(1500, 1, 2, True)], {}),
        (b"0.0000005 1 2 1\n0.0000004999 1 2 1\n", {}, [(1, 1, 2, True), (0, 1, 2, True)], {}),
    ],
)
def test_layouts(
    data: bytes,
    options: dict[str, Any],
    expected: list[tuple[int, int, int, bool]],
    metadata: dict[str, str],
    tmp_path: Path,
) -> None:
    path = save(tmp_path, data)
    with aerflow.open(path, format="csv", **options) as reader:
        events = reader.read().events
        for key, value in metadata.items():
            assert reader.metadata[key] == value
    assert events.tolist() == expected
    reference = ref.read_text(data, **options)
    assert reference.events.tolist() == expected


def test_geometry_sets_the_sensor_and_drops_outside(tmp_path: Path) -> None:
    path = save(tmp_path, b"%geometry:4,3\n1,1,1,5\n4,1,1,6\n1,3,0,7\n3,2,0,8\n")
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (4, 3)
        with pytest.warns(aerflow.OutOfRangeWarning, match="dropped 2 events"):
            events = reader.read().events
        assert reader.dropped_out_of_range == 2
    assert events.tolist() == [(5, 1, 1, True), (8, 3, 2, False)]
    with aerflow.open(path, width=10, height=10) as reader:
        assert reader.properties.sensor_size == (10, 10)
        assert len(reader.read().events) == 4


@pytest.mark.parametrize(
    "options",
    [
        {"columns": "t,x,y"},
        {"columns": "t,x,y,p,t"},
        {"separator": "ab"},
        {"separator": "1"},
        {"time_unit": "ns"},
        {"chunk_size": 0},
        {"width": 10},
        {"width": 0, "height": 5},
    ],
)
def test_bad_options(options: dict[str, Any], tmp_path: Path) -> None:
    path = save(tmp_path, b"1,2,3,1\n")
    with pytest.raises(ValueError):  # noqa: PT011 - each names its own problem
        aerflow.read(path, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"layout": "nope"},
        {"columns": "t,x,y"},
        {"columns": "t,x,y,p,extra"},
        {"time_unit": "h"},
        {"separator": ""},
        {"geometry": True},
    ],
)
def test_bad_writer_options(options: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each names its own problem
        TextWriter(tmp_path / "out.csv", **options)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# Bad input: line numbers and byte offsets                                    #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("data", "line", "at", "message"),
    [
        (b"t,x,y,on\n1,2,3,1\n2,-5,3,1\n", 3, b"-5", "x '-5' is negative"),
        (b"1 2 3 1\n2 3.5 4 0\n", 2, b"3.5", "x '3.5' is not a non-negative integer"),
        (b"t,x,y,on\n1,2,3,1\r\n1,2,3,2\r\n", 3, b"2\r", "polarity '2'"),
        (b"1,2,3,1\n1,2,3\n", 2, b"\n", "found 3"),
        (b"1,2,3,1,5\n", 1, b"5", "found more"),
        (b"1,2,70000,1\n", 1, b"70000", "y '70000' is larger than 65535"),
        (b"1,2,3,1\n1.5,2,3,1\n", 2, b"1.5", "time_unit"),
        (b"-1,2,3,1\n", 1, b"-1", "time '-1' is negative"),
        (b"1,2,3,1\nabc,2,3,1\n", 2, b"abc", "time 'abc' is not a number"),
        (b"1e19,2,3,1\n", 1, b"1e19", "too large"),
        (b"t,x,y\n1,2,3\n", 1, b"t,x,y", "names no column p"),
        (b"# c\nt,x,t,p\n1,2,3\n", 2, b"t,x,t", "twice"),
        (b"1,2,3,1\n\n\n 1,2,3,yes\n", 4, b"yes", "polarity 'yes'"),
    ],
)
def test_malformed_lines(data: bytes, line: int, at: bytes, message: str, tmp_path: Path) -> None:
    path = save(tmp_path, data)
    line_starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    offset = data.index(at, line_starts[line - 1])

    def packets() -> None:
        with aerflow.open(path, chunk_size=3) as reader:
            list(reader)

    for read in (
        lambda: aerflow.read(path),
        packets,
        lambda: TextReader.from_stream(io.BytesIO(data), chunk_size=2).read(),
    ):
        with pytest.raises(TextFormatError, match=message) as info:
            read()
        error = info.value
        assert isinstance(error, aerflow.FormatError)
        assert isinstance(error, ValueError)
        assert error.line == line
        assert error.offset == offset
        assert f"line {line}" in str(error)
    with pytest.raises(TextFormatError) as info:
        aerflow.read(path)
    assert info.value.path == str(path)


def test_events_before_a_bad_line_come_in_packets(tmp_path: Path) -> None:
    good = b"".join(b"%d,1,2,1\n" % t for t in range(1000))
    path = save(tmp_path, good + b"5,1,x,1\n")
    with aerflow.open(path, chunk_size=100) as reader:
        packets = iter(reader)
        first = next(packets)
        assert len(first.events) > 0
        with pytest.raises(TextFormatError) as info:
            list(packets)
    assert info.value.line == 1001
    assert info.value.offset == len(good) + 4


def test_line_too_long(tmp_path: Path) -> None:
    data = b"1,2,3,1\n" + b"1" * (text_format.MAX_LINE + 10)
    path = save(tmp_path, data)
    with deadline(20):
        with (
            pytest.raises(TextFormatError, match="longer than") as info,
            aerflow.open(path, format="csv", chunk_size=4096) as reader,
        ):
            list(reader)
        assert info.value.line == 2
        assert info.value.offset == 8
        with pytest.raises(TextFormatError, match="longer than"):
            list(TextReader.from_stream(io.BytesIO(data), chunk_size=4096))
        first = b"# c\n" + b"1" * (2 * text_format.MAX_LINE)
        first_path = save(tmp_path, first)

        def packets() -> None:
            with aerflow.open(first_path, format="csv", chunk_size=4096) as reader:
                list(reader)

        for read in (
            packets,
            lambda: TextReader.from_stream(io.BytesIO(first), chunk_size=4096).read(),
            lambda: TextReader.from_stream(Trickle(first, 1000), chunk_size=4096).read(),
        ):
            with pytest.raises(TextFormatError, match="longer than") as info:
                read()
            assert (info.value.line, info.value.offset) == (2, 4)


def test_long_lines_below_the_limit(tmp_path: Path) -> None:
    comment = b"# " + b"c" * 200_000 + b"\n"
    data = comment + b"t,junk,x,y,p\n" + b"5," + b"j" * 150_000 + b",1,2,1\n6,,3,4,0"
    path = save(tmp_path, data)
    expected = [(5, 1, 2, True), (6, 3, 4, False)]
    assert aerflow.read(path, format="csv").tolist() == expected
    with aerflow.open(path, format="csv", chunk_size=1000) as reader:
        assert concatenate(iter(reader)).tolist() == expected
    stream = TextReader.from_stream(Trickle(data, 5000), chunk_size=1000)
    assert concatenate(iter(stream)).tolist() == expected


def test_two_threads_report_the_right_line(tmp_path: Path) -> None:
    lines = [b"%d,%d,%d,1" % (t, t % 640, t % 480) for t in range(200_000)]
    lines[150_001] = b"5,1,-2,1"
    data = b"\n".join(lines) + b"\n"
    path = save(tmp_path, data)
    with mock.patch.object(text_format, "_PARALLEL_MIN_BYTES", 1 << 16):
        with pytest.raises(TextFormatError) as info:
            aerflow.read(path)
        assert info.value.line == 150_002
        assert info.value.offset == data.index(b"\n5,1,-2,1\n") + 5
        lines[150_001] = b"5,1,2,1"
        path.write_bytes(b"\n".join(lines))
        events = aerflow.read(path)
    assert len(events) == 200_000
    assert events["t"][:3].tolist() == [0, 1, 2]
    assert events["t"][150_001] == 5
    with aerflow.open(path, chunk_size=1 << 14) as reader:
        assert_same_events(events, concatenate(iter(reader)))


# --------------------------------------------------------------------------- #
# Streams and pipes                                                           #
# --------------------------------------------------------------------------- #


def test_from_stream_over_a_pipe() -> None:
    data = b"t,x,y,on\n" + b"".join(
        b"%d,%d,%d,%d\n" % (t, t % 7, t % 5, t % 2) for t in range(5000)
    )
    read_end, write_end = os.pipe()

    def produce() -> None:
        with os.fdopen(write_end, "wb") as sink:
            for start in range(0, len(data), 777):
                sink.write(data[start : start + 777])
                sink.flush()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        with deadline(20), os.fdopen(read_end, "rb") as source:
            reader = TextReader.from_stream(source, chunk_size=4096)
            events = concatenate(iter(reader))
            reader.close()
            assert not source.closed  # the caller's stream stays open
    finally:
        producer.join()
    assert_same_events(events, ref.read_text(data).events)


def test_from_stream_yields_lines_as_they_arrive() -> None:
    read_end, write_end = os.pipe()
    sink = os.fdopen(write_end, "wb")
    try:
        with deadline(20), os.fdopen(read_end, "rb") as source:
            sink.write(b"t,x,y,on\n1,2,3,1\n2,2,3,0\n3,2")  # the third line is not complete
            sink.flush()
            packets = iter(TextReader.from_stream(source))
            assert next(packets).events.tolist() == [(1, 2, 3, True), (2, 2, 3, False)]
            sink.write(b",3,1\n4,5,6,0")
            sink.close()
            rest = concatenate(packets)
    finally:
        if not sink.closed:
            sink.close()
    assert rest.tolist() == [(3, 2, 3, True), (4, 5, 6, False)]


def test_from_stream_needs_a_binary_stream() -> None:
    with pytest.raises(TypeError, match="binary"):
        TextReader.from_stream(io.StringIO("1,2,3,1\n"))
    with pytest.raises(TypeError, match="binary"):
        TextWriter.to_stream(io.StringIO())


def _drain(fd: int, timeout: float = 5.0) -> bytes:
    """What the pipe holds now (waiting up to ``timeout`` for the first byte)."""
    chunks = []
    ready, _, _ = select.select([fd], [], [], timeout)
    while ready:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        ready, _, _ = select.select([fd], [], [], 0.05)
    return b"".join(chunks)


def test_to_stream_over_a_pipe_flushes_each_packet() -> None:
    events = events_of([(t, t % 9, t % 4, t % 3 == 0) for t in range(100)])
    read_end, write_end = os.pipe()
    try:
        with deadline(20), os.fdopen(write_end, "wb") as sink:
            writer = TextWriter.to_stream(sink)
            writer.write(events[:60])
            first = _drain(read_end)
            assert first == ref.write_text(events[:60])  # header + 60 lines, already flushed
            writer.write(aerflow.Packet(events[60:]))
            writer.close()
            assert not sink.closed
            second = _drain(read_end)
        assert first + second == ref.write_text(events)
    finally:
        os.close(read_end)


@pytest.mark.parametrize("buffering", [0, -1])
def test_to_stream_broken_pipe_reaches_the_caller(buffering: int) -> None:
    events = events_of([(t, 1, 2, True) for t in range(1000)])
    read_end, write_end = os.pipe()
    os.close(read_end)
    sink = os.fdopen(write_end, "wb", buffering=buffering)
    try:
        with pytest.raises(BrokenPipeError), TextWriter.to_stream(sink) as writer:
            writer.write(events)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()


def test_to_stream_empty_writes_the_header() -> None:
    stream = io.BytesIO()
    with TextWriter.to_stream(stream):
        pass
    assert stream.getvalue() == b"t,x,y,on\n"
    stream = io.BytesIO()
    with TextWriter.to_stream(stream, layout="openeb", width=640, height=480):
        pass
    assert stream.getvalue() == b"%geometry:640,480\n"


# --------------------------------------------------------------------------- #
# Writing files                                                               #
# --------------------------------------------------------------------------- #


def test_openeb_round_trip(tmp_path: Path) -> None:
    events = events_of([(10, 5, 6, True), (12, 639, 479, False)])
    path = tmp_path / "openeb.csv"
    aerflow.write(path, events, format="csv", layout="openeb", width=640, height=480)
    assert path.read_bytes() == b"%geometry:640,480\n5,6,1,10\n639,479,0,12\n"
    with aerflow.open(path) as reader:
        assert reader.properties.sensor_size == (640, 480)
        assert_same_events(reader.read().events, events)
    with pytest.raises(ValueError, match="outside the 100x100 sensor"):
        aerflow.write(path, events, format="csv", width=100, height=100)
    assert path.read_bytes().startswith(b"%geometry:640,480\n")  # left as it was


def test_seconds_round_trip(tmp_path: Path) -> None:
    events = events_of([(0, 1, 2, True), (1_000_001, 3, 4, False), (123_456_789, 5, 6, True)])
    path = tmp_path / "seconds.txt"
    aerflow.write(path, events, layout="rpg")
    assert path.read_bytes().splitlines()[1] == b"1.000001 3 4 0"
    assert registry.detect(path).name == "csv"
    assert_same_events(aerflow.read(path), events)
    path = tmp_path / "ms.csv"
    aerflow.write(path, events, time_unit="ms")
    assert path.read_bytes().splitlines()[:2] == [b"t_ms,x,y,on", b"0.000,1,2,1"]
    assert_same_events(aerflow.read(path), events)


def test_writer_in_pieces_and_abort(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events = events_of([(t, t % 5, t % 3, bool(t & 1)) for t in range(10)])
    triggers = np.array([(3, 1, True)], dtype=aerflow.TRIGGERS_DTYPE)
    path = tmp_path / "pieces.csv"
    with caplog.at_level(logging.WARNING), aerflow.open(path, "w") as writer:
        for k in range(0, 10, 3):
            writer.write(events[k : k + 3])
        writer.write(events[:0], triggers)
        assert not path.exists()  # written to a temporary file until closed
    assert "1 triggers not written" in caplog.text
    assert path.read_bytes() == ref.write_text(events)

    def fail_while_writing() -> None:
        with aerflow.open(tmp_path / "aborted.csv", "w") as writer:
            writer.write(events)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_while_writing()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pieces.csv"]


def test_api_write_detects_csv_by_extension(tmp_path: Path) -> None:
    events = events_of([(1, 2, 3, True)])
    for name in ("a.csv", "b.txt"):
        aerflow.write(tmp_path / name, events)
        assert (tmp_path / name).read_bytes() == b"t,x,y,on\n1,2,3,1\n"
        assert_same_events(aerflow.read(tmp_path / name), events)


# --------------------------------------------------------------------------- #
# Sniffing                                                                    #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "head",
    [
        b"t,x,y,on\n1,2,3,1\n",
        b"t,x,y,on\n",
        b"%geometry:640,480\n1,2,0,5\n",
        b"%geometry:640,480\n",
        b"0.000000000 30 134 0\r\n0.1 1 2 1\r\n",
        b"1;2;3;1\n",
        b"\xef\xbb\xbft,x,y,p\n1,2,3,1",
        b"timestamp,x,y,polarity,extra\n1,2,3,1,5.5\n",
    ],
)
def test_sniff_claims_text(head: bytes) -> None:
    assert sniff_text(head)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\n\n",
        b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n",
        b"% Data file containing CD events.\n% Version 2\n% Width 304\n% Height 240\n1,2,3,4\n",
        b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n",
        b"#!AER-DAT4.0\r\n",
        b"# 1 2 3 4\n1 2 3 4\n",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<u8'",
        b"PK\x03\x04\x14\x00\x00\x00",
        b"Event Stream\x02\x00\x00\x01",
        b"1,2,3\n4,5,6\n",
        b"a,b,c,d\n1,2,3,4\n",
        b"1,2,3,4\n1,2,3\n",
        b"1,2,3,4\n1,2,x,4\n",
        b"1 2 3 4\x00\n",
        b"hello world, this is not, a CSV file\n",
        bytes(range(256)),
    ],
)
def test_sniff_refuses(head: bytes) -> None:
    assert not sniff_text(head)


def test_sniff_refuses_every_other_shared_recording(
    shared_data: Path, manifest: dict[str, Any]
) -> None:
    for name in manifest:
        path = shared_data / name
        if path.is_file() and name != SAMPLE:
            with path.open("rb") as handle:
                assert not sniff_text(handle.read(registry.SNIFF_BYTES)), name


@SETTINGS
@given(st.binary(max_size=2000))
def test_sniff_never_claims_binary(data: bytes) -> None:
    if any(b < 9 or 13 < b < 32 or b > 126 for b in data[:100]):
        assert not sniff_text(data)


def test_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    path = save(tmp_path, b"t,x,y,on\n1,2,3,1\n", ".dat")
    assert registry.detect(path).name == "csv"
    assert aerflow.read(path).tolist() == [(1, 2, 3, True)]
    empty = save(tmp_path, b"", ".csv")
    assert registry.detect(empty).name == "csv"  # by extension
    assert len(aerflow.read(empty)) == 0


# --------------------------------------------------------------------------- #
# Fuzzing: every input ends in events or a FormatError, as the reference says  #
# --------------------------------------------------------------------------- #

SEEDS = [
    b"t,x,y,on\n0,1,2,1\n5,3,4,0\n9,100,200,1\n",
    b"%geometry:640,480\n1,2,0,5\n3,4,1,9\n",
    b"0.000000000 30 134 0\n0.000779999 158 59 0\n0.001706000 84 25 1\n",
]


def mutate(data: bytes, changes: list[tuple[int, int, int]]) -> bytes:
    buffer = bytearray(data)
    for op, position, value in changes:
        if not buffer:
            buffer.append(value)
            continue
        at = position % (len(buffer) + 1)
        if op == 0 and at < len(buffer):
            buffer[at] = value
        elif op == 1:
            buffer[at:at] = bytes([value])
        elif op == 2:
            del buffer[at : at + 1 + value % 4]
        else:
            buffer[at:at] = bytes([b"0123456789,.-\n\r #%e+ \t"[value % 22]])
    return bytes(buffer)


@SETTINGS
@given(
    seed=st.sampled_from(SEEDS),
    changes=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 200), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    chunk=st.integers(1, 40),
)
def test_fuzz_against_the_reference(
    seed: bytes,
    changes: list[tuple[int, int, int]],
    chunk: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = mutate(seed, changes)
    path = save(tmp_path_factory.getbasetemp(), data, ".txt")
    try:
        expected = reference_outcome(data)
    except ValueError:  # not decodable as this format (e.g. a %geometry of 0)
        expected = ("refused", None)
    with deadline(20):
        for how, read in read_modes(path, data, {}, chunk).items():
            if expected[0] == "refused":
                with pytest.raises(aerflow.FormatError):
                    read()
                continue
            try:
                outcome = aerflow_outcome(read)
            except aerflow.FormatError as error:
                raise AssertionError(
                    f"{how}: {error} where the reference gives {expected}"
                ) from None
            assert_same_outcome(outcome, expected, how)


@SETTINGS
@given(data=st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = save(tmp_path_factory.getbasetemp(), data, ".csv")
    with deadline(20):
        for options in ({}, {"chunk_size": 3}):
            error = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with aerflow.open(path, format="csv", **options) as reader:
                        for packet in reader:
                            assert packet.events.dtype == aerflow.EVENTS_DTYPE
            except aerflow.FormatError as caught:
                error = caught
            if error is not None:
                assert error.path == str(path)
                assert error.offset is not None
                assert 0 <= error.offset <= len(data)
