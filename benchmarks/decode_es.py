"""Event Stream (.es) decoding throughput and peak memory: aerflow against event_stream and faery.

Builds a DVS Event Stream file of >= 20 M events by tiling the real loris recording
(shared/data/es/loris_test.es, 54x239, 4,407 events) in time and writing it with aerflow's
Event Stream writer, then decodes it with each tool, every measurement in its own fresh
process, and prints Mev/s (median of N runs), peak RSS and whether the decoded events match
the tiled source events.

Tools (each imported only in its own measuring process):
    aerflow            aerflow.read(path)                 (two threads on large files)
    aerflow-1thread    the same with the two-thread path switched off
    aerflow-chunked    aerflow.open(path): packets iterated and dropped (bounded memory)
    event_stream       numpy.concatenate(list(event_stream.Decoder(path)))
    faery              numpy.concatenate(list(faery.events_stream_from_file(path)))
                       (faery flips rows, y -> height - 1 - y, when it reads .es files;
                       the check flips them back)

Usage (after benchmarks/setup_env.sh and `benchmarks/.venv/bin/pip install event_stream`):
    benchmarks/.venv/bin/python benchmarks/decode_es.py [--repeat 5] [--events 20000000]
        [--tools aerflow,event_stream,faery] [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _checksum import Checksum, ChecksumAccumulator, tiled_checksum
from _datasets import (
    DATA_DIR,
    TINY_EVENTS,
    SetupError,
    Source,
    SourceRecording,
    _cached,
    _sidecar,
    _write_atomically,
    find_shared_data,
    tile,
)

LORIS = Source("es/loris_test.es", "loris DVS sample")
RESULT_PREFIX = "BENCH_RESULT "
TOOLS = ("aerflow", "aerflow-1thread", "aerflow-chunked", "event_stream", "faery")
DISTRIBUTIONS = {"event_stream": "event_stream", "faery": "faery"}
TARGET_PEER, TARGET_FACTOR = "event_stream", 1.5
RUN_TIMEOUT_S = 600


# --- the measuring process -------------------------------------------------------------


def _max_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _decode(tool: str, path: Path) -> Iterator[Any]:
    """Yield the decoded events of ``path`` as arrays with fields t, x, y and on."""
    if tool in ("aerflow", "aerflow-1thread"):
        import aerflow

        if tool == "aerflow-1thread":
            from aerflow.formats.event_stream import EventStreamReader

            EventStreamReader.parallel_min_bytes = 1 << 62
        yield aerflow.read(path)
    elif tool == "aerflow-chunked":
        import aerflow

        with aerflow.open(path) as reader:
            for packet in reader:
                yield packet.events
    elif tool == "event_stream":
        import event_stream

        yield np.concatenate(list(event_stream.Decoder(str(path))))
    elif tool == "faery":
        import faery

        yield np.concatenate(list(faery.events_stream_from_file(path)))
    else:
        raise ValueError(f"unknown tool {tool}")


def _measure(tool: str, path: Path, warmup: Path, height: int) -> dict[str, Any]:
    for _ in _decode(tool, warmup):  # imports, numba cache loading, first-call costs
        pass
    baseline = _max_rss_kb()
    accumulator = ChecksumAccumulator()
    seconds = 0.0
    iterator = _decode(tool, path)
    while True:
        start = time.perf_counter()
        events = next(iterator, None)
        seconds += time.perf_counter() - start
        if events is None:
            break
        y = events["y"]
        if tool == "faery":
            y = (height - 1) - y.astype(np.int64)
        accumulator.add(events["t"], events["x"], y, events["on"])
        del events, y
    checksum = accumulator.result()
    return {
        "events": checksum.n,
        "seconds": seconds,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": _max_rss_kb(),
        "checksum": checksum.to_dict(),
    }


def measuring_process(argv: Sequence[str]) -> int:
    tool, path, warmup, height = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    try:
        result = _measure(tool, path, warmup, height)
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# --- the driver ------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(shared_data: Path, target_events: int) -> tuple[Path, Path, Checksum, int, int, int]:
    """The tiled file, a tiny file for warming up, the reference checksum, width, height and
    the number of copies."""
    recording = SourceRecording(shared_data, LORIS)
    if not recording.digest_ok:
        raise SetupError("aerflow.read(loris_test.es) does not match MANIFEST.json's sha256")
    copies = recording.copies_for(target_events)
    width, height = recording.size
    reference = tiled_checksum(recording.checksum, recording.sum_x_plus_1, copies, recording.span)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"es_loris_test_x{copies}.es"
    tiny = DATA_DIR / "es_loris_test_tiny.es"
    expected = {
        "format": "es",
        "source": LORIS.key,
        "source_sha256": recording.entry["sha256"],
        "copies": copies,
        "shift_us": recording.span,
        "width": width,
        "height": height,
        "reference": reference.to_dict(),
    }
    if not _cached(path, expected):
        progress(f"building {path.name} ({recording.checksum.n * copies:,} events)...")
        events = tile(recording.events, copies)
        _write_atomically(path, "es", events, (width, height))
        del events
        _sidecar(path).write_text(json.dumps(expected, indent=1) + "\n")
    tiny_expected = {**expected, "copies": 0, "reference": None, "tiny_events": TINY_EVENTS}
    if not _cached(tiny, tiny_expected):
        _write_atomically(tiny, "es", recording.events[:TINY_EVENTS], (width, height))
        _sidecar(tiny).write_text(json.dumps(tiny_expected, indent=1) + "\n")
    return path, tiny, reference, width, height, copies


def installed(tool: str) -> bool:
    distribution = DISTRIBUTIONS.get(tool, "aerflow")
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def version(tool: str) -> str:
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(tool, "aerflow"))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_once(tool: str, path: Path, tiny: Path, height: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", tool, str(path), str(tiny), str(height)]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            cwd=Path(__file__).parent,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {RUN_TIMEOUT_S} s"}
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {completed.returncode}: {tail}"}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool (median)")
    parser.add_argument("--events", type=int, default=20_000_000, help="events in the file")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools")
    parser.add_argument("--shared-data", type=Path, help="the shared/data folder")
    parser.add_argument("--json", type=Path, help="write every run here")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--measure"]:
        return measuring_process(argv[1:])
    args = parse_args(argv)
    tools = [tool for tool in args.tools.split(",") if tool]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        progress(f"unknown tools: {', '.join(unknown)} (known: {', '.join(TOOLS)})")
        return 2
    try:
        shared = find_shared_data(args.shared_data)
        path, tiny, reference, width, height, copies = build(shared, args.events)
    except SetupError as error:
        progress(f"error: {error}")
        return 2
    with path.open("rb", buffering=0) as stream:  # every tool decodes from the page cache
        while stream.read(1 << 24):
            pass
    runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    errors: dict[str, str] = {}
    for tool in tools:
        if not installed(tool):
            errors[tool] = "not installed"
    for index in range(args.repeat):  # tools alternate: drifting load hits all alike
        for tool in tools:
            if tool in errors:
                continue
            result = run_once(tool, path, tiny, height)
            if "error" in result:
                errors[tool] = result["error"]
                progress(f"  {tool}: {result['error']}")
                continue
            runs[tool].append(result)
            rate = result["events"] / result["seconds"] / 1e6
            progress(f"  {tool} run {index + 1}/{args.repeat}: {rate:7.1f} Mev/s")
    size = path.stat().st_size
    print(
        f"\n{path.name}: {reference.n:,} events, {size / 1e6:.0f} MB, {width}x{height} "
        f"(loris_test.es x {copies})"
    )
    print(
        f"{'tool':<16} {'version':<9} {'Mev/s':>8} {'MB/s':>8} {'peak RSS':>9} "
        f"{'base RSS':>9}  correct"
    )
    rates: dict[str, float] = {}
    for tool in tools:
        if tool in errors and not runs[tool]:
            print(f"{tool:<16} {version(tool):<9} {errors[tool]}")
            continue
        seconds = statistics.median(run["seconds"] for run in runs[tool])
        rates[tool] = reference.n / seconds / 1e6
        peak = max(run["peak_rss_kb"] for run in runs[tool]) / 1e3
        base = max(run["baseline_rss_kb"] for run in runs[tool]) / 1e3
        wrong = sorted(
            {
                field
                for run in runs[tool]
                for field in Checksum.from_dict(run["checksum"]).differences(reference)
            }
        )
        correct = "yes" if not wrong else "NO (" + ", ".join(wrong) + ")"
        print(
            f"{tool:<16} {version(tool):<9} {rates[tool]:8.1f} {size / seconds / 1e6:8.0f} "
            f"{peak:7.0f} MB {base:7.0f} MB  {correct}"
        )
    if "aerflow" in rates and TARGET_PEER in rates:
        ratio = rates["aerflow"] / rates[TARGET_PEER]
        verdict = "PASS" if ratio >= TARGET_FACTOR else "FAIL"
        print(f"\n{verdict}  aerflow is {ratio:.2f}x {TARGET_PEER} (target {TARGET_FACTOR}x)")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.machine()}; median of {args.repeat}"
    )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "errors": errors}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
