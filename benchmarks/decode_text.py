"""Text decoding throughput and peak memory: aerflow's CSV reader against its peers.

Builds two large text files from a real recording (``evt2/evt2_gen3_2020-09-14.raw`` read
with ``aerflow.read``, checked against MANIFEST.json, tiled in time to >= 20 M events):

    csv  aerflow's default CSV: a ``t,x,y,on`` header, integer µs       (~370 MB)
    rpg  the Event Camera Dataset's ``t x y p`` text, seconds, 6 decimals (~420 MB)

and reads each with every installed tool, each measurement in a fresh process (one untimed
warm-up read of a 20,000-event file of the same layout first: numba cache loading, lazy
imports), after the driver has read the file once so that it is in the page cache. Reported:
Mev/s (median of N runs), peak RSS (VmHWM, max over runs), and whether the events match the
tiled recording (count, first/last t, sums; see _checksum.py).

Tools: aerflow (``aerflow.read``; two threads), aerflow-chunked (packets of the default 4 MiB
windows), aerflow-stream (``TextReader.from_stream`` on an open file, as from a pipe; both
packet modes are timed inside the iterator, each packet checksummed and dropped, so their
peak RSS shows the bounded memory),
pandas (``read_csv``, C engine), pandas-pyarrow (``engine="pyarrow"``, multi-threaded),
polars (``read_csv``, multi-threaded), numpy (``loadtxt``), faery (``CsvProperties``).
Peers that give seconds as floats are charged for turning them into integer µs.

Usage (after benchmarks/setup_env.sh; pandas: ``benchmarks/.venv/bin/pip install pandas``):
    benchmarks/.venv/bin/python benchmarks/decode_text.py [--quick] [--repeat 5]
        [--variants csv,rpg] [--tools aerflow,pandas,...] [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _checksum import Checksum, ChecksumAccumulator, tiled_checksum
from _datasets import EVT2_GEN3, SetupError, SourceRecording, find_shared_data, tile
from _runner import RESULT_PREFIX, _max_rss_kb

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
FULL_EVENTS = 20_000_000
QUICK_EVENTS = 2_000_000
TINY_EVENTS = 20_000
TARGET_MEV_S = 10.0
RUN_TIMEOUT_S = 900
SIDECAR_VERSION = 1

VARIANTS: dict[str, dict[str, Any]] = {
    "csv": {"suffix": ".csv", "write": {}, "description": "t,x,y,on header, integer µs"},
    "rpg": {"suffix": ".txt", "write": {"layout": "rpg"}, "description": "t x y p, seconds"},
}


# --------------------------------------------------------------------------- #
# How each tool reads (run inside the measuring process)                      #
# --------------------------------------------------------------------------- #

Columns = tuple[Any, Any, Any, Any]


def _aerflow(path: Path, variant: str) -> Columns:
    import aerflow

    events = aerflow.read(path, format="csv")
    return events["t"], events["x"], events["y"], events["on"]


def _aerflow_chunked(path: Path, variant: str) -> Iterator[Columns]:
    import aerflow

    with aerflow.open(path, format="csv") as reader:
        for packet in reader:
            events = packet.events
            yield events["t"], events["x"], events["y"], events["on"]


def _aerflow_stream(path: Path, variant: str) -> Iterator[Columns]:
    from aerflow.formats.text import TextReader

    with path.open("rb") as handle:
        for packet in TextReader.from_stream(handle):
            events = packet.events
            yield events["t"], events["x"], events["y"], events["on"]


def _seconds_to_us(seconds: Any) -> Any:
    return np.rint(np.asarray(seconds, np.float64) * 1e6).astype(np.uint64)


def _pandas(path: Path, variant: str, engine: str = "c") -> Columns:
    import pandas

    if variant == "csv":
        frame = pandas.read_csv(path, engine=engine)
        return (
            frame["t"].to_numpy(),
            frame["x"].to_numpy(),
            frame["y"].to_numpy(),
            frame["on"].to_numpy() > 0,
        )
    options: dict[str, Any] = {"header": None, "names": ["t", "x", "y", "p"]}
    if engine == "pyarrow":
        options["sep"] = " "
    else:
        options["sep"] = r"\s+"
    frame = pandas.read_csv(path, engine=engine, **options)
    return (
        _seconds_to_us(frame["t"].to_numpy()),
        frame["x"].to_numpy(),
        frame["y"].to_numpy(),
        frame["p"].to_numpy() > 0,
    )


def _pandas_pyarrow(path: Path, variant: str) -> Columns:
    return _pandas(path, variant, engine="pyarrow")


def _polars(path: Path, variant: str) -> Columns:
    import polars

    if variant == "csv":
        frame = polars.read_csv(path)
        t = frame["t"].to_numpy()
        p = frame["on"].to_numpy()
    else:
        frame = polars.read_csv(
            path, has_header=False, separator=" ", new_columns=["t", "x", "y", "p"]
        )
        t = _seconds_to_us(frame["t"].to_numpy())
        p = frame["p"].to_numpy()
    return t, frame["x"].to_numpy(), frame["y"].to_numpy(), p > 0


def _numpy(path: Path, variant: str) -> Columns:
    if variant == "csv":
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64)
        t = table[:, 0]
    else:
        table = np.loadtxt(path, dtype=np.float64)
        t = _seconds_to_us(table[:, 0])
    return t, table[:, 1], table[:, 2], table[:, 3] > 0


def _faery(path: Path, variant: str) -> list[Columns]:
    import faery
    from faery.file_decoder import CsvProperties

    if variant == "csv":
        properties = CsvProperties.default()
    else:
        properties = CsvProperties(
            has_header=False,
            separator=b" ",
            t_index=0,
            x_index=1,
            y_index=2,
            on_index=3,
            t_scale=1e6,
            on_value=b"1",
            off_value=b"0",
            skip_errors=False,
        )
    stream = faery.events_stream_from_file(
        path, dimensions_fallback=(640, 480), file_type="csv", csv_properties=properties
    )
    return [(e["t"], e["x"], e["y"], e["on"]) for e in stream]


TOOLS: dict[str, tuple[str, Callable[[Path, str], Any]]] = {
    "aerflow": ("aerflow", _aerflow),
    "aerflow-chunked": ("aerflow", _aerflow_chunked),
    "aerflow-stream": ("aerflow", _aerflow_stream),
    "pandas": ("pandas", _pandas),
    "pandas-pyarrow": ("pyarrow", _pandas_pyarrow),
    "polars": ("polars", _polars),
    "numpy": ("numpy", _numpy),
    "faery": ("faery", _faery),
}
DEFAULT_TOOLS = tuple(TOOLS)


def _installed(tool: str) -> bool:
    distribution = TOOLS[tool][0]
    names = [distribution] + (["pandas"] if tool.startswith("pandas") else [])
    try:
        for name in names:
            importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _version(tool: str) -> str:
    name = "pandas" if tool.startswith("pandas") else TOOLS[tool][0]
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def measure_here(tool: str, variant: str, path: Path, warmup: Path) -> dict[str, Any]:
    """One timed read in this process (the ``--measure`` mode). Packet iterators are timed
    inside the iterator only; each packet is checksummed and dropped (bounded memory)."""
    read = TOOLS[tool][1]
    accumulator = ChecksumAccumulator()
    warm = read(warmup, variant)
    if isinstance(warm, Iterator):
        for _ in warm:
            pass
    baseline = _max_rss_kb()
    start = time.perf_counter()
    decoded = read(path, variant)
    if isinstance(decoded, Iterator):
        seconds = 0.0
        while True:
            before = time.perf_counter()
            columns = next(decoded, None)
            seconds += time.perf_counter() - before
            if columns is None:
                break
            accumulator.add(*columns)
            del columns
        peak = _max_rss_kb()
    else:
        seconds = time.perf_counter() - start
        peak = _max_rss_kb()
        for columns in decoded if isinstance(decoded, list) else [decoded]:
            if len(columns[0]):
                accumulator.add(*columns)
    checksum = accumulator.result()
    return {
        "events": checksum.n,
        "seconds": seconds,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": peak,
        "checksum": checksum.to_dict(),
        "version": _version(tool),
    }


# --------------------------------------------------------------------------- #
# Datasets                                                                    #
# --------------------------------------------------------------------------- #


def build(
    recording: SourceRecording, variant: str, copies: int
) -> tuple[Path, Path, Checksum, int]:
    """The tiled text file of ``variant`` (cached), its warm-up file, its reference checksum
    and its size in bytes."""
    import aerflow

    spec = VARIANTS[variant]
    stem = Path(recording.source.key).stem
    path = DATA_DIR / f"text_{variant}_{stem}_x{copies}{spec['suffix']}"
    tiny = DATA_DIR / f"text_{variant}_{stem}_tiny{spec['suffix']}"
    reference = tiled_checksum(recording.checksum, recording.sum_x_plus_1, copies, recording.span)
    expected = {
        "sidecar_version": SIDECAR_VERSION,
        "variant": variant,
        "source": recording.source.key,
        "source_sha256": recording.entry["sha256"],
        "copies": copies,
        "reference": reference.to_dict(),
    }
    sidecar = path.with_name(path.name + ".json")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    cached = path.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == expected
    if not cached:
        progress(f"building {path.name} ({recording.checksum.n * copies:,} events)")
        events = tile(recording.events, copies)
        temporary = path.with_name(f".{path.name}.partial{spec['suffix']}")
        aerflow.write(temporary, events, format="csv", **spec["write"])
        del events
        temporary.replace(path)
        sidecar.write_text(json.dumps(expected, indent=1) + "\n")
    if not tiny.is_file():
        aerflow.write(tiny, recording.events[:TINY_EVENTS], format="csv", **spec["write"])
    return path, tiny, reference, path.stat().st_size


# --------------------------------------------------------------------------- #
# Driver                                                                      #
# --------------------------------------------------------------------------- #


def progress(message: str) -> None:
    print(f"[decode_text] {message}", file=sys.stderr, flush=True)


def run_once(tool: str, variant: str, path: Path, tiny: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", tool, variant, str(path), str(tiny)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {RUN_TIMEOUT_S} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    return {"error": (done.stderr.strip().splitlines() or ["no result"])[-1]}


def warm_page_cache(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(1 << 24):
            pass


def machine_line() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), ""
            )
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {model or 'unknown CPU'}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    )


def report(
    variant: str, size: int, reference: Checksum, runs: dict[str, list[dict[str, Any]]]
) -> list[str]:
    lines = [
        f"\n{variant}: {VARIANTS[variant]['description']}, {reference.n:,} events, "
        f"{size / 1e6:.0f} MB",
        f"{'tool':<16}{'version':<10}{'Mev/s':>8}{'MB/s':>8}{'s':>8}{'peak RSS MB':>13}"
        f"{'base MB':>9}  correct",
    ]
    for tool, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            error = results[0].get("error", "") if results else ""
            lines.append(f"{tool:<16}{'':<10}{'error: ' + error}")
            continue
        seconds = statistics.median(r["seconds"] for r in good)
        rate = reference.n / seconds / 1e6
        peak = max(r["peak_rss_kb"] for r in good) / 1024
        base = max(r["baseline_rss_kb"] for r in good) / 1024
        checks = [Checksum.from_dict(r["checksum"]).differences(reference) for r in good]
        wrong = sorted({name for check in checks for name in check})
        correct = "NO (" + ",".join(wrong) + ")" if wrong else "yes"
        lines.append(
            f"{tool:<16}{good[0]['version']:<10}{rate:>8.2f}{size / seconds / 1e6:>8.0f}"
            f"{seconds:>8.2f}{peak:>13.0f}{base:>9.0f}  {correct}"
        )
    return lines


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 M events instead of 20 M")
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool (median)")
    parser.add_argument("--variants", default="csv,rpg", help="comma-separated: csv,rpg")
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help="comma-separated")
    parser.add_argument("--shared-data", type=Path, help="the shared/data folder")
    parser.add_argument("--json", type=Path, help="write every run to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--measure"]:
        tool, variant, path, warmup = argv[1:5]
        try:
            result = measure_here(tool, variant, Path(path), Path(warmup))
        except Exception as error:  # reported in the table
            result = {"error": f"{type(error).__name__}: {error}"}
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    args = parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    tools = [t for t in args.tools.split(",") if t]
    for name in variants + tools:
        if name not in VARIANTS and name not in TOOLS:
            raise SystemExit(f"unknown variant or tool {name!r}")
    try:
        shared = find_shared_data(args.shared_data)
        recording = SourceRecording(shared, EVT2_GEN3)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not recording.digest_ok:
        progress("warning: the source recording does not match MANIFEST.json")
    target = QUICK_EVENTS if args.quick else FULL_EVENTS
    copies = max(1, math.ceil(target / len(recording.events)))
    lines = [f"machine: {machine_line()}"]
    results: dict[str, Any] = {"machine": machine_line(), "variants": {}}
    verdicts = []
    for variant in variants:
        path, tiny, reference, size = build(recording, variant, copies)
        warm_page_cache(path)
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools if _installed(t)}
        for repetition in range(args.repeat):
            for tool in runs:
                if variant == "rpg" and tool == "numpy" and repetition > 0:
                    continue  # minutes per run; once is enough to place it
                progress(f"{variant} {tool} run {repetition + 1}/{args.repeat}")
                runs[tool].append(run_once(tool, variant, path, tiny))
        lines += report(variant, size, reference, runs)
        missing = [t for t in tools if t not in runs]
        if missing:
            lines.append(f"not installed: {', '.join(missing)}")
        good = [r for r in runs.get("aerflow", []) if "error" not in r]
        if good:
            rate = reference.n / statistics.median(r["seconds"] for r in good) / 1e6
            verdicts.append(
                f"{variant}: aerflow.read {rate:.1f} Mev/s, target >= {TARGET_MEV_S:.0f}: "
                + ("PASS" if rate >= TARGET_MEV_S else "FAIL")
            )
        results["variants"][variant] = {"events": reference.n, "bytes": size, "runs": runs}
    lines += ["", *verdicts]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
