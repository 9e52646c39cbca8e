"""AEDAT 4.0 decoding throughput, CPU time and peak memory: aerflow against its peers.

Builds AEDAT 4.0 files of >= 20 M events by tiling the real DVXplorer sample
(shared/data/aedat4/tonic_sample_dvxplorer.aedat4, checked against MANIFEST.json) in time
(copy k shifted by k * (t_last - t_first + 1)) and writing it with aerflow's writer, once
with LZ4 and once with Zstd (default packet size, 16384 events). Then decodes each file with
aerflow and every installed peer, each run in a fresh process (this script re-invoked with
--measure) after an untimed warm-up decode of a tiny file, and prints Mev/s (median of the
runs), CPU seconds, peak RSS and whether the decoded events match the tiled source.

Usage (after benchmarks/setup_env.sh and `benchmarks/.venv/bin/pip install aedat dv-processing`):
    benchmarks/.venv/bin/python benchmarks/decode_aedat4.py [--repeat 5] [--codecs lz4,zstd]
        [--tools aerflow,aerflow-1thread,aerflow-iter,aedat,dv-processing,faery,evutils,evlib]
        [--events 20000000] [--json results.json]

How each tool decodes (whole file into memory):
    aerflow          aerflow.read(path)                      (2 threads by default)
    aerflow-1thread  aerflow.read(path, threads=1)
    aerflow-iter     for packet in aerflow.open(path): ...   (packets dropped; 2 threads)
    aedat            numpy.concatenate of packet["events"] over aedat.Decoder(path)
    dv-processing    dv.io.MonoCameraRecording(path), getNextEventBatch() until None,
                     numpy.concatenate of batch.numpy()
    faery            numpy.concatenate(list(faery.events_stream_from_file(path)))
    evutils          evutils.io.EventReader(path, mode="all", width=W, height=H).read_all()
    evlib            evlib.formats.load_events(path).collect()   (a polars DataFrame)

A tool whose events differ from the reference is marked and never counts as the peer a
target is measured against. Targets: aerflow (two threads) >= 2x the fastest correct peer's
throughput (meant for idle cores), and aerflow with threads=1 spending no more CPU-seconds
than the leanest correct peer.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _checksum import Checksum, ChecksumAccumulator, tiled_checksum  # noqa: E402

SAMPLE_KEY = "aedat4/tonic_sample_dvxplorer.aedat4"
DATA_DIR = BENCH_DIR / "data"
FULL_EVENTS = 20_000_000
TINY_EVENTS = 20_000
RESULT_PREFIX = "BENCH_RESULT "
RUN_TIMEOUT_S = 900
SIDECAR_VERSION = 1
TARGET_FACTOR = 2.0

Columns = tuple[Any, Any, Any, Any]

# --- how each tool decodes ---------------------------------------------------------------


def _aerflow(path: Path) -> Any:
    import aerflow

    return aerflow.read(path)


def _aerflow_1thread(path: Path) -> Any:
    import aerflow

    return aerflow.read(path, threads=1)


def _aerflow_iter(path: Path) -> Iterator[Any]:
    import aerflow

    with aerflow.open(path) as reader:
        for packet in reader:
            yield packet.events


def _aedat(path: Path) -> Any:
    import aedat

    return np.concatenate([p["events"] for p in aedat.Decoder(str(path)) if "events" in p])


def _dv(path: Path) -> Any:
    import dv_processing as dv

    recording = dv.io.MonoCameraRecording(str(path))
    batches = []
    while (batch := recording.getNextEventBatch()) is not None:
        batches.append(batch.numpy())
    return np.concatenate(batches)


def _faery(path: Path) -> Any:
    import faery

    return np.concatenate(list(faery.events_stream_from_file(path)))


def _evutils(path: Path) -> Any:
    from evutils.io import EventReader

    return EventReader(path, mode="all", width=640, height=480).read_all()


def _evutils_columns(events: Any) -> Columns:
    return events.t, events.x, events.y, np.asarray(events.p) > 0


def _evlib(path: Path) -> Any:
    import evlib.formats

    return evlib.formats.load_events(str(path)).collect()


def _evlib_columns(frame: Any) -> Columns:
    return (
        frame["t"].to_numpy(),
        frame["x"].to_numpy(),
        frame["y"].to_numpy(),
        frame["polarity"].to_numpy() > 0,
    )


def _packed(events: Any) -> Columns:
    return events["t"], events["x"], events["y"], events["on"]


def _dv_columns(events: Any) -> Columns:
    return events["timestamp"], events["x"], events["y"], events["polarity"] > 0


# name: (distribution, module, whole-file decoder or None, chunk iterator or None, columns)
TOOLS: dict[str, tuple[str, str, Callable[[Path], Any] | None, Any, Callable[[Any], Columns]]] = {
    "aerflow": ("aerflow", "aerflow", _aerflow, None, _packed),
    "aerflow-1thread": ("aerflow", "aerflow", _aerflow_1thread, None, _packed),
    "aerflow-iter": ("aerflow", "aerflow", None, _aerflow_iter, _packed),
    "aedat": ("aedat", "aedat", _aedat, None, _packed),
    "dv-processing": ("dv-processing", "dv_processing", _dv, None, _dv_columns),
    "faery": ("faery", "faery", _faery, None, _packed),
    "evutils": ("evutils", "evutils.io", _evutils, None, _evutils_columns),
    "evlib": ("evlib", "evlib.formats", _evlib, None, _evlib_columns),
}
PEERS = ("aedat", "dv-processing", "faery", "evutils", "evlib")


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(TOOLS[name][0])
    except importlib.metadata.PackageNotFoundError:
        return None


# --- one measurement (in its own process) ------------------------------------------------


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure_here(tool: str, path: Path, warmup: Path) -> dict[str, Any]:
    _, module, whole, chunks, columns = TOOLS[tool]
    __import__(module)
    accumulator = ChecksumAccumulator()
    if whole is not None:
        whole(warmup)
        baseline = _rss_kb("VmHWM")
        cpu, start = time.process_time(), time.perf_counter()
        events = whole(path)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = _rss_kb("VmHWM")
        accumulator.add(*columns(events))
    else:
        for _ in chunks(warmup):
            pass
        baseline = _rss_kb("VmHWM")
        cpu, start = time.process_time(), time.perf_counter()
        for events in chunks(path):
            accumulator.add(*columns(events))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = _rss_kb("VmHWM")
    checksum = accumulator.result()
    return {
        "events": checksum.n,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": peak,
        "checksum": checksum.to_dict(),
    }


def run_once(tool: str, path: Path, warmup: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", tool, str(path), str(warmup)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {RUN_TIMEOUT_S} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {done.returncode}: {tail}"}


# --- the files -----------------------------------------------------------------------------


def find_shared_data(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else []
    if os.environ.get("AERFLOW_SHARED_DATA"):
        candidates.append(Path(os.environ["AERFLOW_SHARED_DATA"]))
    candidates.append(BENCH_DIR.parent.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    raise SystemExit(f"error: shared/data with MANIFEST.json not found (tried {candidates})")


def build(shared: Path, codecs: Sequence[str], target: int) -> dict[str, dict[str, Any]]:
    """The tiled files (cached in benchmarks/data with a checksum sidecar)."""
    from _datasets import manifest_digest, tile

    import aerflow

    entry = json.loads((shared / "MANIFEST.json").read_text())["files"][SAMPLE_KEY]
    source = aerflow.read(shared / SAMPLE_KEY)
    if manifest_digest(source) != entry["sha256"]:
        raise SystemExit("error: aerflow does not decode the sample as MANIFEST.json says")
    copies = math.ceil(target / len(source))
    span = int(source["t"][-1]) - int(source["t"][0]) + 1
    accumulator = ChecksumAccumulator()
    accumulator.add(source["t"], source["x"], source["y"], source["on"])
    sum_x_plus_1 = int(np.sum(source["x"], dtype=np.uint64)) + len(source)
    reference = tiled_checksum(accumulator.result(), sum_x_plus_1, copies, span)
    width, height = entry["sensor_size"]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    datasets = {}
    for codec in codecs:
        path = DATA_DIR / f"aedat4_{codec}_dvxplorer_x{copies}.aedat4"
        tiny = DATA_DIR / f"aedat4_{codec}_dvxplorer_tiny.aedat4"
        sidecar = path.with_name(path.name + ".json")
        expected = {
            "sidecar_version": SIDECAR_VERSION,
            "source_sha256": entry["sha256"],
            "codec": codec,
            "copies": copies,
            "shift_us": span,
            "reference": reference.to_dict(),
        }
        cached = path.is_file() and tiny.is_file() and sidecar.is_file()
        if not cached or json.loads(sidecar.read_text()) != expected:
            progress(f"building {path.name} ({len(source) * copies / 1e6:.1f} M events) ...")
            started = time.perf_counter()
            events = tile(source, copies)
            aerflow.write(path, events, width=width, height=height, compression=codec)
            del events
            aerflow.write(tiny, source[:TINY_EVENTS], width=width, height=height, compression=codec)
            sidecar.write_text(json.dumps(expected, indent=1) + "\n")
            progress(f"  written in {time.perf_counter() - started:.1f} s")
        datasets[codec] = {"path": path, "tiny": tiny, "reference": reference}
    return datasets


# --- report --------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summarize(runs: list[dict[str, Any]], reference: Checksum) -> dict[str, Any]:
    rates = [run["events"] / run["seconds"] / 1e6 for run in runs]
    wrong = sorted(
        {
            name
            for run in runs
            for name in Checksum.from_dict(run["checksum"]).differences(reference)
        }
    )
    return {
        "mev_s": statistics.median(rates),
        "best_mev_s": max(rates),
        "cpu_s": statistics.median(run["cpu_seconds"] for run in runs),
        "peak_mb": max(run["peak_rss_kb"] for run in runs) * 1024 / 1e6,
        "base_mb": max(run["baseline_rss_kb"] for run in runs) * 1024 / 1e6,
        "correct": "yes" if not wrong else "NO (" + ", ".join(wrong) + ")",
    }


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "--measure":
        tool, path, warmup = argv[1], Path(argv[2]), Path(argv[3])
        try:
            result = measure_here(tool, path, warmup)
        except Exception as error:  # reported by the parent
            result = {"error": f"{type(error).__name__}: {error}"}
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool and file (median)")
    parser.add_argument("--codecs", default="lz4,zstd", help="comma-separated: lz4, zstd, ...")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    parser.add_argument("--events", type=int, default=FULL_EVENTS, help="events per file")
    parser.add_argument("--shared-data", type=Path)
    parser.add_argument("--json", type=Path, help="also write every run to this file")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or args.repeat < 1:
        parser.error(f"unknown tools {unknown}" if unknown else "--repeat must be >= 1")
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    datasets = build(find_shared_data(args.shared_data), codecs, args.events)
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    for codec, dataset in datasets.items():
        with dataset["path"].open("rb", buffering=0) as stream:  # into the page cache
            while stream.read(1 << 24):
                pass
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools if version(t)}
        errors: dict[str, str] = {}
        for index in range(args.repeat):  # tools alternate: drifting load hits all alike
            # ... and the order is shuffled each round, seeded (see decode.py: which tool
            # runs after one that freed much memory changes what fresh memory costs).
            order = list(runs)
            random.Random(index).shuffle(order)
            for tool in order:
                if tool in errors:
                    continue
                result = run_once(tool, dataset["path"], dataset["tiny"])
                if "error" in result:
                    errors[tool] = result["error"]
                    progress(f"  {codec} {tool}: {result['error']}")
                    continue
                runs[tool].append(result)
                rate = result["events"] / result["seconds"] / 1e6
                progress(f"  {codec} {tool} run {index + 1}/{args.repeat}: {rate:.1f} Mev/s")
        results[codec] = {"dataset": dataset, "runs": runs, "errors": errors}
    load_after = os.getloadavg()
    report(results, tools, args.repeat, load_before, load_after)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    c: {"file": str(r["dataset"]["path"]), "runs": r["runs"]}
                    for c, r in results.items()
                },
                indent=1,
            )
            + "\n"
        )
    return 0


def report(
    results: dict[str, dict[str, Any]],
    tools: Sequence[str],
    repeat: int,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    versions = ", ".join(f"{t} {version(t) or 'not installed'}" for t in tools)
    print(f"\n{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}")
    print(f"{versions}")
    print(
        f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"Mev/s: median of {repeat} runs (wall clock), each in a fresh process after a warm-up"
    )
    verdicts = []
    for codec, result in results.items():
        dataset = result["dataset"]
        reference: Checksum = dataset["reference"]
        size = dataset["path"].stat().st_size
        print(
            f"\n{codec}: {dataset['path'].name}, {reference.n / 1e6:.1f} M events, "
            f"{size / 1e6:.1f} MB"
        )
        header = ["tool", "version", "Mev/s", "best", "CPU s", "peak RSS MB", "base MB", "correct"]
        rows = [header]
        summaries = {}
        for tool in tools:
            runs = result["runs"].get(tool)
            if runs is None:
                rows.append([tool, "-", "not installed", "", "", "", "", ""])
                continue
            if not runs:
                rows.append([tool, version(tool) or "-", "error", "", "", "", "", ""])
                continue
            s = summaries[tool] = summarize(runs, reference)
            rows.append(
                [
                    tool,
                    version(tool) or "-",
                    f"{s['mev_s']:.1f}",
                    f"{s['best_mev_s']:.1f}",
                    f"{s['cpu_s']:.3f}",
                    f"{s['peak_mb']:.0f}",
                    f"{s['base_mb']:.0f}",
                    s["correct"],
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for i, row in enumerate(rows):
            print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            if i == 0:
                print("  " + "  ".join("-" * w for w in widths))
        for tool, error in result["errors"].items():
            print(f"  {tool} error: {error}")
        correct = {t: s for t, s in summaries.items() if t in PEERS and s["correct"] == "yes"}
        peers = {t: s["mev_s"] for t, s in correct.items()}
        ours = summaries.get("aerflow")
        one = summaries.get("aerflow-1thread")
        if one and correct:
            leanest = min(correct, key=lambda t: correct[t]["cpu_s"])
            theirs = correct[leanest]["cpu_s"]
            ok = one["cpu_s"] <= theirs and one["correct"] == "yes"
            verdicts.append(
                f"  {'PASS' if ok else 'FAIL'}  {codec}: threads=1 {one['cpu_s']:.3f} CPU-s "
                f"against the leanest correct peer's ({leanest}, {theirs:.3f})"
            )
        if ours and peers:
            best = max(peers, key=lambda t: peers[t])
            ratio = ours["mev_s"] / peers[best]
            verdict = "PASS" if ratio >= TARGET_FACTOR and ours["correct"] == "yes" else "FAIL"
            verdicts.append(
                f"  {verdict}  {codec}: aerflow {ours['mev_s']:.1f} Mev/s = {ratio:.2f}x the best "
                f"correct peer ({best}, {peers[best]:.1f}); target {TARGET_FACTOR:g}x on idle cores"
            )
        if ours:
            verdict = "PASS" if ours["correct"] == "yes" else "FAIL"
            verdicts.append(f"  {verdict}  {codec}: aerflow decodes the tiled events exactly")
    print("\ntargets:")
    print("\n".join(verdicts))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
