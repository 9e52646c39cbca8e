"""Time at the edges: timestamps near 2**32, 2**48, 2**60, 2**63 and 2**64 - 1, huge gaps and
huge origins through every writer; the UDP time base near 2**64; Event Stream's missing time
origin; CSV files cut inside their last line.

Every writer either round-trips exactly (``aerflow.read`` gives back what was written) or
refuses with a one-line ``ValueError`` / ``AerflowError`` before anything reaches the
destination. The writer cases run in a child process whose address space is capped, so an
attempt at a huge allocation fails fast there (and is reported as a failure) instead of
swapping this machine to a halt.
"""

from __future__ import annotations

import functools
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.filters import ShiftTime
from aerflow.formats.text import TextReader, TextWriter
from aerflow.net import UdpSender
from aerflow.net.wire import DatagramDecoder, aerflow_header, decode_datagrams, encode_datagrams
from aerflow.net.wire import common as wire_state

from .helpers import assert_same_events
from .processes import free_udp_port

TOP = 2**64 - 1
EDGES = [0, 1, 2**32 - 1, 2**32, 2**32 + 1, 2**48, 2**60, 2**62, 2**63 - 1, 2**63, TOP - 1, TOP]


def _cases() -> dict[str, list[int]]:
    cases: dict[str, list[int]] = {}
    for t in EDGES:
        cases[f"at {t}"] = [t, t]
        if t:
            cases[f"0 then {t}"] = [0, 5, t]  # one huge gap
    for t in (2**48, 2**60, 2**62, 2**63):
        cases[f"from {t}"] = [t, t + 1, t + 2**33, t + 2**40]  # a huge origin, then gaps
    cases["just below 2**64"] = [TOP - 2**34, TOP - 2**24, TOP - 1, TOP]
    cases["repeated loops"] = [0, 2**24 + 1, 2**32 + 3, 2**34 + 7, 2**35 + 1, 2**45]
    cases["steps of 2**31"] = [k * (2**31 - 1) for k in range(6)]
    second = 10**12  # a whole second: EVT writers take it as the time origin
    cases["gaps up to 2**46"] = [second, second + 2**45, second + 2**46 - 1, second + 2**46]
    cases["gaps past 2**46"] = [second, second + 2**46 + 1]
    rng = np.random.default_rng(2024)
    for k in range(12):  # random mixes of edges and gaps
        start = EDGES[int(rng.integers(len(EDGES)))]
        gaps = rng.choice([0, 1, 2**24, 2**31, 2**32 + 1, 2**34, 2**45, 2**50, 2**62], 6)
        times = [start]
        for gap in gaps.tolist():
            times.append(min(times[-1] + int(gap), TOP))
        cases[f"random {k}"] = times
    return cases


CASES = _cases()
WRITERS = [info.name for info in aerflow.list_formats() if info.writer]
EXTENSIONS = {info.name: info.extensions[0] for info in aerflow.list_formats()}
MUST_ROUND_TRIP = {
    # Times every writer stores.
    "*": ["at 0", "at 1", "at 4294967295", "0 then 4294967295"],
    # Formats with a header origin or 64-bit times store far times and far origins.
    "evt3": ["at 1152921504606846976", "from 1152921504606846976", "gaps up to 2**46"],
    "evt2": ["at 4611686018427387904", "repeated loops", "from 281474976710656"],
    "evt21": ["at 1152921504606846976", "repeated loops", "from 1152921504606846976"],
    "dat": ["at 1152921504606846976", "steps of 2**31"],
    "aedat2": ["at 4611686018427387904", "steps of 2**31"],
    "aedat3": ["0 then 1152921504606846976", "from 1152921504606846976"],
    "aedat4": ["0 then 9223372036854775807", "from 4611686018427387904"],
    "npy": list(CASES),
    "npz": list(CASES),
    "csv": ["0 then 281474976710656"],
    "es": ["0 then 4294967297", "steps of 2**31"],
}
MEMORY_LIMIT = 3 << 30  # the child's address space: a few times what aerflow needs
PEAK_LIMIT = 64 << 20  # bytes NumPy may hold at once while a few events are written


def events_at(times: list[int]) -> np.ndarray:
    events = np.zeros(len(times), aerflow.EVENTS_DTYPE)
    events["t"] = np.array(times, np.uint64)
    events["x"] = np.arange(len(times)) % 8
    events["y"] = np.arange(len(times)) % 5
    events["on"] = np.arange(len(times)) % 2 == 0
    return events


def _outcome(error: BaseException, folder: Path, target: Path) -> dict[str, Any]:
    return {
        "outcome": "refused",
        "type": type(error).__name__,
        "allowed": isinstance(error, (aerflow.AerflowError, ValueError))
        and not isinstance(error, OverflowError),
        "message": str(error),
        "target_exists": target.exists(),
        "left": sorted(os.listdir(folder)),
    }


def _write_once(name: str, times: list[int]) -> dict[str, Any]:
    """Write ``times`` to a new file, then read it back."""
    events = events_at(times)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        target = folder / f"out{EXTENSIONS[name]}"
        tracemalloc.start()
        try:
            aerflow.write(target, events, format=name, width=8, height=8)
        except Exception as error:
            return _outcome(error, folder, target)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                back = aerflow.read(target, format=name)
        except Exception as error:
            return {"outcome": "unreadable", "type": type(error).__name__, "message": str(error)}
        same = back.tolist() == events.tolist()
        return {"outcome": "round trip" if same else "changed", "peak": peak}


def _write_after(name: str, times: list[int]) -> dict[str, Any]:
    """Write a few events, then ``times`` in a second call, then more if that was refused:
    a refused call must leave the file as if it had not been made."""
    first = events_at([10, 20])
    later = events_at([30])
    events = events_at(times)
    with tempfile.TemporaryDirectory() as folder_name:
        target = Path(folder_name) / f"out{EXTENSIONS[name]}"
        with aerflow.open(target, "w", format=name, width=8, height=8) as writer:
            writer.write(first)
            try:
                writer.write(events)
            except (aerflow.AerflowError, ValueError) as error:
                if isinstance(error, OverflowError):
                    raise
                refused = True
                writer.write(later)
            else:
                refused = False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            back = aerflow.read(target, format=name)
        expected = np.concatenate([first, later if refused else events])
        return {"refused": refused, "same": back.tolist() == expected.tolist()}


def child_main(name: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    report: dict[str, Any] = {}
    for case, times in CASES.items():
        try:
            report[case] = _write_once(name, times)
        except BaseException as error:  # what the parent reports as a failure
            report[case] = {
                "outcome": "crashed",
                "type": type(error).__name__,
                "message": str(error),
            }
        if min(times) >= 10 and report[case]["outcome"] in ("round trip", "refused"):
            try:
                report[case]["after"] = _write_after(name, times)
            except BaseException as error:
                report[case]["after"] = {"crashed": f"{type(error).__name__}: {error}"}
    json.dump(report, sys.stdout)


@functools.cache
def child_report(name: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.test_time_edges", name],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


@pytest.mark.parametrize("name", WRITERS)
def test_every_writer_round_trips_or_refuses(name: str) -> None:
    report = child_report(name)
    problems = []
    for case, result in report.items():
        outcome = result["outcome"]
        if outcome == "round trip":
            if result["peak"] > PEAK_LIMIT:
                problems.append(f"{case}: {result['peak']} bytes held while writing")
        elif outcome == "refused":
            if not result["allowed"] or "\n" in result["message"]:
                problems.append(f"{case}: {result['type']}: {result['message']!r}")
            if result["target_exists"] or result["left"]:
                problems.append(f"{case}: a refused write left {result['left']}")
        else:
            problems.append(f"{case}: {outcome}: {result.get('type')}: {result.get('message')}")
        after = result.get("after")
        if after is not None and after.get("same") is not True:
            problems.append(f"{case}: after a first write: {after}")
    for case in MUST_ROUND_TRIP["*"] + MUST_ROUND_TRIP.get(name, []):
        if report[case]["outcome"] != "round trip":
            problems.append(f"{case}: expected a round trip, got {report[case]}")
    assert not problems, "\n".join(problems)


def test_the_cases_cover_the_edges() -> None:
    every = {t for times in CASES.values() for t in times}
    assert {0, 2**32 - 1, 2**32 + 1, 2**48, 2**60, 2**63, TOP} <= every
    assert any(len(times) > 1 and times[-1] - times[0] > 2**62 for times in CASES.values())


@pytest.mark.parametrize("name", ["evt3", "evt2", "evt21"])
def test_evt_triggers_alone_at_the_edges(name: str, tmp_path: Path) -> None:
    path = tmp_path / "triggers.raw"
    triggers = np.zeros(2, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = [2**50, 2**50 + 2**40]
    packet = aerflow.Packet(aerflow.as_events(np.zeros(0, aerflow.EVENTS_DTYPE)), triggers)
    aerflow.write(path, packet, format=name, width=8, height=8)
    back = aerflow.read(path, format=name, triggers=True)
    assert back.triggers["t"].tolist() == triggers["t"].tolist()
    triggers["t"] = [TOP - 1, TOP]
    packet = aerflow.Packet(packet.events, triggers)
    with pytest.raises(ValueError, match=r"2\*\*62") as info:
        aerflow.write(path, packet, format=name, width=8, height=8)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["evt3", "evt2", "evt21", "dat", "aedat2"])
def test_a_time_origin_past_2_62_is_refused_up_front(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"out{EXTENSIONS[name]}"
    with pytest.raises(ValueError, match="time_origin"):
        aerflow.open(path, "w", format=name, width=8, height=8, time_origin=2**62 + 1)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


# -- Event Stream keeps no time origin ----------------------------------------------------------


def test_event_stream_refuses_a_time_origin(tmp_path: Path) -> None:
    events = events_at([1_700_000_000_000_000, 1_700_000_000_000_500])
    path = tmp_path / "unix.es"
    with pytest.raises(ValueError, match="no place to store a time origin") as info:
        aerflow.write(path, events, time_origin=1_700_000_000_000_000)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"shift the times first.*cannot store a time origin"):
        aerflow.write(path, events)
    assert list(tmp_path.iterdir()) == []
    shifted = next(iter(ShiftTime().apply(aerflow.Packet(events)))).events
    aerflow.write(path, shifted)
    assert aerflow.read(path)["t"].tolist() == [0, 500]
    aerflow.write(path, events_at([7, 9]), time_origin=0)
    assert aerflow.read(path)["t"].tolist() == [7, 9]


def test_event_stream_time_origin_on_the_command_line(tmp_path: Path) -> None:
    source = tmp_path / "unix.npy"
    np.save(source, events_at([1_700_000_000_000_000, 1_700_000_000_000_500]))
    target = tmp_path / "unix.es"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "aerflow",
            "input",
            "file",
            str(source),
            "output",
            "file",
            str(target),
            "--width",
            "8",
            "--height",
            "8",
            "--time-origin",
            "1700000000000000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode != 0
    assert "no place to store a time origin" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not target.exists()


# -- CSV cut inside its last line ---------------------------------------------------------------


def read_text_all_ways(path: Path, **options: Any) -> list[tuple[np.ndarray, list[str]]]:
    """The events and warnings of a whole read, a chunked iteration and a stream read."""
    data = path.read_bytes()
    results = []
    for how in ("read", "iter", "stream"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if how == "read":
                events = aerflow.read(path, **options)
            elif how == "iter":
                with aerflow.open(path, chunk_size=7, **options) as reader:
                    packets = [packet.events for packet in reader]
                events = np.concatenate(packets) if packets else events_at([])
            else:
                reader = TextReader.from_stream(io.BytesIO(data), chunk_size=5, **options)
                packets = [packet.events for packet in reader]
                events = np.concatenate(packets) if packets else events_at([])
        results.append((events, [f"{w.category.__name__}: {w.message}" for w in caught]))
    return results


@pytest.mark.parametrize(
    ("data", "kept", "torn"),
    [
        # aerflow's t,x,y,on: the last field is a polarity, which a cut cannot shorten.
        (b"t,x,y,on\n1,2,3,1\n4,5,6,0", [1, 4], False),
        (b"t,x,y,on\n1,2,3,1\n4,5,6,0\n", [1, 4], False),
        (b"t,x,y,on\n1,2,3,1\n4,5", [1], True),  # fewer fields
        (b"t,x,y,on\n1,2,3,1\n4,5,6,", [1], True),  # an empty last field
        (b"t,x,y,on\n1,2,3,1\n4,5,6,tr", [1], True),  # 'true' cut short
        (b"t,x,y,on\n1,2,3,1\n45", [1], True),
        (b"1,2", [], True),  # the only line
        # OpenEB's x,y,p,t: a cut inside t leaves a shorter number, taken as torn.
        (b"%geometry:8,8\n1,2,1,1000\n3,4,0,12", [1000], True),
        (b"%geometry:8,8\n1,2,1,1000\n3,4,0,1234\n", [1000, 1234], False),
        (b"%geometry:8,8\n1,2,1,1000\n3,4,0,1234\r", [1000, 1234], False),  # CRLF cut at LF
        (b"%geometry:8,8\n1,2,1,1000\n3,4,0,1234 ", [1000, 1234], False),
        (b"%geometry:8,8\n1,2,1,1000\n3,4", [1000], True),
        (b"0.5 1 2 1\n1.5 1 2 0", [500_000, 1_500_000], False),
        (b"t x y p\n0.5 1 2 1\n1.5 1 2", [500_000], True),
        # Comments and blank lines at the end are no events, torn or not.
        (b"t,x,y,on\n1,2,3,1\n# a comm", [1], False),
        (b"t,x,y,on\n1,2,3,1\n   ", [1], False),
    ],
)
def test_csv_cut_inside_the_last_line(
    data: bytes, kept: list[int], torn: bool, tmp_path: Path
) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes(data)
    for events, caught in read_text_all_ways(path):
        assert events["t"].tolist() == kept
        if torn:
            assert len(caught) == 1, caught
            assert caught[0].startswith("TruncatedDataWarning")
            assert "\n" not in caught[0]
        else:
            assert caught == []


def test_csv_seconds_cut_at_the_point_is_torn_when_time_is_last(tmp_path: Path) -> None:
    # Unlike the space-separated 't x y p' above, here t is last: '12.' may be '12.5' cut.
    path = tmp_path / "cut.csv"
    path.write_bytes(b"x,y,p,t[s]\n1,2,1,0.5\n3,4,0,12.")
    for events, caught in read_text_all_ways(path):
        assert events["t"].tolist() == [500_000]
        assert len(caught) == 1, caught
        assert "t, may be a number cut short" in caught[0]


def test_csv_errors_a_cut_cannot_make_stay_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    for data in (b"t,x,y,on\n1,2,3,1\n4,5,6,1,9", b"t,x,y,on\n1,2,3,1\n4,-5,6,1"):
        path.write_bytes(data)
        with pytest.raises(aerflow.FormatError, match="line 3"):
            aerflow.read(path)
    path.write_bytes(b"t,x,y,on\n1,2\n4,5,6,1\n")  # a short line that is not the last
    with pytest.raises(aerflow.FormatError, match="line 2"):
        aerflow.read(path)


def test_csv_writer_refuses_times_it_cannot_read_back(tmp_path: Path) -> None:
    path = tmp_path / "far.csv"
    aerflow.write(path, events_at([0, 10**18 - 1]))
    assert aerflow.read(path)["t"].tolist() == [0, 10**18 - 1]
    with pytest.raises(ValueError, match=r"10\*\*18") as info:
        aerflow.write(tmp_path / "too-far.csv", events_at([0, 10**18]))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "too-far.csv").exists()
    stream = io.BytesIO()
    writer = TextWriter.to_stream(stream)
    with pytest.raises(ValueError, match=r"10\*\*18"):
        writer.write(events_at([TOP]))
    assert stream.getvalue() == b""  # not even the header line


# -- UDP: a time base near 2**64 ------------------------------------------------------------------


def test_udp_times_up_to_2_64_travel_exactly() -> None:
    events = events_at([TOP - 2**31, TOP - 2**30, TOP - 1, TOP, TOP])
    decoder = DatagramDecoder()
    back = decode_datagrams(encode_datagrams(events), decoder=decoder)
    assert_same_events(back, events)
    assert decoder.malformed == 0


def test_udp_time_base_that_would_wrap_is_malformed() -> None:
    record = np.zeros(2, [("word", "<u4"), ("x", "<u2"), ("y", "<u2")])
    record["word"] = [3, 10]  # deltas: the second passes 2**64 - 1 from a base of 2**64 - 5
    datagram = aerflow_header(7, 0, TOP - 4, 8, 8, 2) + record.tobytes()
    decoder = DatagramDecoder()
    assert len(decode_datagrams([datagram], decoder=decoder)) == 0
    assert decoder.malformed == 1
    assert decoder.stream_stats() == []  # skipped whole, as any malformed datagram
    record["word"] = [3, 4]  # ends exactly at 2**64 - 1
    datagram = aerflow_header(7, 0, TOP - 4, 8, 8, 2) + record.tobytes()
    assert decode_datagrams([datagram])["t"].tolist() == [TOP - 1, TOP]


@pytest.mark.parametrize("wire", ["faery-t32", "spif-t"])
def test_udp_32_bit_unwrapping_stops_short_of_wrapping_64_bits(wire: str) -> None:
    decoder = DatagramDecoder(wire)
    limit = int(wire_state.MAX_UNWRAP)
    decoder.state[wire_state.S_OFFSET] = limit
    decoder.state[wire_state.S_LAST] = limit + 2**32 - 10
    events = events_at([5, 6])  # a drop of nearly 2**32: a wrap, no longer counted
    back = decode_datagrams(encode_datagrams(events, wire), decoder=decoder)
    assert back["t"].tolist() == [limit + 5, limit + 6]
    decoder.state[wire_state.S_OFFSET] = limit - 2**32
    decoder.state[wire_state.S_LAST] = limit - 10
    back = decode_datagrams(encode_datagrams(events, wire), decoder=decoder)
    assert back["t"].tolist() == [limit + 5, limit + 6]  # the last wrap that counts


@pytest.mark.parametrize("middle", [2**63, TOP - 60_000])
def test_udp_pacing_across_2_63_and_near_2_64(middle: int) -> None:
    events = events_at([middle - 50_000 + 500 * k for k in range(201)])
    start = time.monotonic()
    with UdpSender(free_udp_port(), pace=True) as sender:
        sender.write(events)
    # 0.1 s of event time: pacing must wait for it (a wrapped difference would not wait).
    assert time.monotonic() - start > 0.09
    assert sender.stats.events == len(events)


if __name__ == "__main__":
    child_main(sys.argv[1])
