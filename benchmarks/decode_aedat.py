"""AEDAT 2.0 (jAER) and AEDAT 3.1 (cAER) decoding throughput and peak memory.

Tiles the real DVS128 recording (shared/data/aedat2/dvs128_alex_walking_again.aedat,
19,182 events over 6.9 s) in time to >= 20 M events and writes it twice with aerflow's
writers: as AEDAT 2.0 (DVS128 layout, 8 bytes per event) and as AEDAT 3.1 (polarity
packets, 8 bytes per event + 28 per packet). Each tool then decodes each file in its own
fresh process; the script prints Mev/s (median of N runs), peak RSS and whether the decoded
events match the tiled source events. The tiled recording spans ~2 h, so its times pass
2**32 µs (AEDAT 2.0 counter wraps) and 2**31 µs (AEDAT 3.1 overflow packets).

Tools (each imported only in its own measuring process):
    aerflow          aerflow.read(path)        (AEDAT 2.0: two threads on large files)
    aerflow-1thread  the same with the two-thread path switched off (AEDAT 2.0 only)
    aerflow-chunked  aerflow.open(path): packets iterated and dropped (bounded memory)
    tonic            tonic/io.py's helpers (read_aedat_header_from_file,
                     get_aer_events_from_file, make_structured_array) with the bit masks of
                     its read_dvs_128 (AEDAT 2.0) / read_dvs_ibm (AEDAT 3.1), which 1.7.0
                     cannot call itself (they unpack 2 of the header helper's 3 values);
                     loaded without the package, whose import needs scipy & co. It swaps x
                     and y in DVS128 files (swapped back for the check), does not unwrap
                     32-bit times and ignores the AEDAT 3 overflow, packet types and
                     validity flags: its times are wrong on this ~2 h file by design
    evlib            evlib.formats.load_events(path).collect()   (0.13.2 returns 0 events
                     for both files: its AEDAT readers do not follow the format)

Usage (after benchmarks/setup_env.sh; `benchmarks/.venv/bin/pip install --no-deps tonic`):
    benchmarks/.venv/bin/python benchmarks/decode_aedat.py [--repeat 5] [--events 20000000]
        [--formats aedat2,aedat3] [--tools aerflow,tonic,...] [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
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

DVS128_SAMPLE = Source("aedat2/dvs128_alex_walking_again.aedat", "jAER DVS128 sample")
RESULT_PREFIX = "BENCH_RESULT "
FORMATS = ("aedat2", "aedat3")
TOOLS = ("aerflow", "aerflow-1thread", "aerflow-chunked", "tonic", "evlib")
DISTRIBUTIONS = {"tonic": "tonic", "evlib": "evlib"}
RUN_TIMEOUT_S = 600


# --- the measuring process -------------------------------------------------------------


def _max_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _tonic_io() -> Any:
    spec = importlib.util.find_spec("tonic")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tonic is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "io.py"
    module_spec = importlib.util.spec_from_file_location("tonic_io", path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _decode(tool: str, fmt: str, path: Path) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Yield (t, x, y, on) columns of the decoded events of ``path``."""
    if tool in ("aerflow", "aerflow-1thread"):
        import aerflow

        if tool == "aerflow-1thread":
            from aerflow.formats.aedat2 import Aedat2Reader

            Aedat2Reader.parallel_min_bytes = 1 << 62
        events = aerflow.read(path, format=fmt)
        yield events["t"], events["x"], events["y"], events["on"]
    elif tool == "aerflow-chunked":
        import aerflow

        with aerflow.open(path, format=fmt) as reader:
            for packet in reader:
                events = packet.events
                yield events["t"], events["x"], events["y"], events["on"]
    elif tool == "tonic":
        # tonic 1.7.0's read_dvs_128 / read_dvs_ibm unpack two values from
        # read_aedat_header_from_file, which returns three (they raise); the same steps
        # with its own helpers and bit masks:
        io = _tonic_io()
        version, start, _ = io.read_aedat_header_from_file(str(path))
        records = io.get_aer_events_from_file(str(path), version, start)
        address, t = records["address"], records["timeStamp"]
        if fmt == "aedat2":  # read_dvs_128: x from bits 14-8, y from 7-1 (swapped back here)
            x, y, p = (address >> 8) & 0x7F, (address >> 1) & 0x7F, address & 1
            events = io.make_structured_array(x, y, t, p)
            yield events["t"], events["y"], events["x"], events["p"]
        else:  # read_dvs_ibm
            x, y, p = (address >> 17) & 0x1FFF, (address >> 2) & 0x1FFF, (address >> 1) & 1
            events = io.make_structured_array(x, y, t, p)
            yield events["t"], events["x"], events["y"], events["p"]
    elif tool == "evlib":
        import evlib.formats

        frame = evlib.formats.load_events(str(path)).collect()
        yield (
            frame["t"].to_numpy(),
            frame["x"].to_numpy(),
            frame["y"].to_numpy(),
            frame["polarity"].to_numpy() > 0,
        )
    else:
        raise ValueError(f"unknown tool {tool}")


def _measure(tool: str, fmt: str, path: Path, warmup: Path) -> dict[str, Any]:
    for _ in _decode(tool, fmt, warmup):  # imports, numba cache loading, first-call costs
        pass
    baseline = _max_rss_kb()
    accumulator = ChecksumAccumulator()
    seconds = 0.0
    iterator = _decode(tool, fmt, path)
    while True:
        start = time.perf_counter()
        columns = next(iterator, None)
        seconds += time.perf_counter() - start
        if columns is None:
            break
        if len(columns[0]):
            accumulator.add(*columns)
        del columns
    checksum = accumulator.result()
    return {
        "events": checksum.n,
        "seconds": seconds,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": _max_rss_kb(),
        "checksum": checksum.to_dict(),
    }


def measuring_process(argv: Sequence[str]) -> int:
    tool, fmt, path, warmup = argv[0], argv[1], Path(argv[2]), Path(argv[3])
    try:
        result = _measure(tool, fmt, path, warmup)
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# --- the driver ------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(
    shared_data: Path, target_events: int, formats: Sequence[str]
) -> tuple[dict[str, tuple[Path, Path]], Checksum, int]:
    """Per format: the tiled file and a tiny one for warming up; the reference checksum and
    the number of copies."""
    recording = SourceRecording(shared_data, DVS128_SAMPLE)
    if not recording.digest_ok:
        raise SetupError("aerflow.read(the DVS128 sample) does not match MANIFEST.json's sha256")
    copies = recording.copies_for(target_events)
    size = recording.size
    reference = tiled_checksum(recording.checksum, recording.sum_x_plus_1, copies, recording.span)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, Path]] = {}
    events = None
    for fmt in formats:
        path = DATA_DIR / f"{fmt}_dvs128_alex_x{copies}.aedat"
        tiny = DATA_DIR / f"{fmt}_dvs128_alex_tiny.aedat"
        expected = {
            "format": fmt,
            "source": DVS128_SAMPLE.key,
            "source_sha256": recording.entry["sha256"],
            "copies": copies,
            "shift_us": recording.span,
            "width": size[0],
            "height": size[1],
            "reference": reference.to_dict(),
        }
        if not _cached(path, expected):
            progress(f"building {path.name} ({recording.checksum.n * copies:,} events)...")
            if events is None:
                events = tile(recording.events, copies)
            _write_atomically(path, fmt, events, size)
            _sidecar(path).write_text(json.dumps(expected, indent=1) + "\n")
        tiny_expected = {**expected, "copies": 0, "reference": None, "tiny_events": TINY_EVENTS}
        if not _cached(tiny, tiny_expected):
            _write_atomically(tiny, fmt, recording.events[:TINY_EVENTS], size)
            _sidecar(tiny).write_text(json.dumps(tiny_expected, indent=1) + "\n")
        files[fmt] = (path, tiny)
    return files, reference, copies


def installed(tool: str) -> bool:
    try:
        importlib.metadata.version(DISTRIBUTIONS.get(tool, "aerflow"))
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def version(tool: str) -> str:
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(tool, "aerflow"))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_once(tool: str, fmt: str, path: Path, tiny: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", tool, fmt, str(path), str(tiny)]
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
    parser.add_argument("--events", type=int, default=20_000_000, help="events per file")
    parser.add_argument("--formats", default=",".join(FORMATS), help="aedat2,aedat3")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools")
    parser.add_argument("--shared-data", type=Path, help="the shared/data folder")
    parser.add_argument("--json", type=Path, help="write every run here")
    return parser.parse_args(argv)


def report(
    fmt: str,
    path: Path,
    reference: Checksum,
    copies: int,
    tools: Sequence[str],
    runs: dict[str, list[dict[str, Any]]],
    errors: dict[str, str],
) -> None:
    size = path.stat().st_size
    print(
        f"\n{fmt}: {path.name}: {reference.n:,} events, {size / 1e6:.0f} MB "
        f"(the DVS128 sample x {copies})"
    )
    print(
        f"{'tool':<16} {'version':<9} {'Mev/s':>8} {'MB/s':>8} {'peak RSS':>9} "
        f"{'base RSS':>9}  correct"
    )
    for tool in tools:
        if not runs[tool]:
            print(f"{tool:<16} {version(tool):<9} {errors.get(tool, 'no runs')}")
            continue
        seconds = statistics.median(run["seconds"] for run in runs[tool])
        rate = reference.n / seconds / 1e6
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
            f"{tool:<16} {version(tool):<9} {rate:8.1f} {size / seconds / 1e6:8.0f} "
            f"{peak:7.0f} MB {base:7.0f} MB  {correct}"
        )


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--measure"]:
        return measuring_process(argv[1:])
    args = parse_args(argv)
    tools = [tool for tool in args.tools.split(",") if tool]
    formats = [fmt for fmt in args.formats.split(",") if fmt]
    unknown = sorted((set(tools) - set(TOOLS)) | (set(formats) - set(FORMATS)))
    if unknown:
        progress(f"unknown tools or formats: {', '.join(unknown)}")
        return 2
    try:
        shared = find_shared_data(args.shared_data)
        files, reference, copies = build(shared, args.events, formats)
    except SetupError as error:
        progress(f"error: {error}")
        return 2
    everything: dict[str, Any] = {}
    for fmt in formats:
        path, tiny = files[fmt]
        with path.open("rb", buffering=0) as stream:  # every tool decodes from the page cache
            while stream.read(1 << 24):
                pass
        present = [t for t in tools if not (t == "aerflow-1thread" and fmt != "aedat2")]
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in present}
        errors = {tool: "not installed" for tool in present if not installed(tool)}
        for index in range(args.repeat):  # tools alternate: drifting load hits all alike
            for tool in present:
                if tool in errors:
                    continue
                result = run_once(tool, fmt, path, tiny)
                if "error" in result:
                    errors[tool] = result["error"]
                    progress(f"  {fmt} {tool}: {result['error']}")
                    continue
                runs[tool].append(result)
                rate = result["events"] / result["seconds"] / 1e6
                progress(f"  {fmt} {tool} run {index + 1}/{args.repeat}: {rate:7.1f} Mev/s")
        report(fmt, path, reference, copies, present, runs, errors)
        everything[fmt] = {"runs": runs, "errors": errors}
    print(
        f"\nmachine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.machine()}; median of {args.repeat}; Mev/s counts the source events"
    )
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
