"""Events to frames: throughput of aerflow.tensors.frames against plain NumPy and AEStream.

Measures Mev/s (events accumulated per second, median of --repeat runs) of

* ``aerflow.tensors.frames`` over events in memory, per representation and device
  ("cpu" torch tensors, "numpy" arrays, and "cuda" when a GPU is present: the clock stops
  after ``torch.cuda.synchronize()``);
* the same from the file, decoding included (``frames(aerflow.open(path), ...)``);
* a naive NumPy loop: per window, ``np.searchsorted`` for its bounds and ``np.add.at`` into a
  new zeroed frame (voxel grids: the two interpolation weights with ``np.add.at``), and the
  better NumPy idiom, ``np.bincount`` of flat indices;
* AEStream's file path when ``aestream`` is installed in ``benchmarks/.venv``:
  ``FileInput(path, (W, H), ignore_time=True)`` streamed as fast as it goes, ``read()``
  called in a loop until the stream ends. Its frames are wall-clock accumulations, not
  event-time windows, so only the throughput compares.

Every aerflow and NumPy result is checked against the others (total count per frame).

The input is the EVT3 file decode.py builds: shared/data's EVT2 Gen3 recording (640x480)
tiled in time to >= 20 M events (--events to change).

Usage:
    .venv/bin/python benchmarks/tensors.py [--quick] [--repeat 3] [--window 10ms]
        [--representations counts,voxel] [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _datasets import DatasetBuilder, SetupError, find_shared_data

import aerflow
from aerflow.tensors import frames

BENCH_DIR = Path(__file__).resolve().parent
PEER_PYTHON = BENCH_DIR / ".venv" / "bin" / "python"
FULL_EVENTS = 20_000_000
QUICK_EVENTS = 2_000_000

AESTREAM_SNIPPET = r"""
import json, sys, time
import aestream
path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def run(check):
    start, cpu = time.perf_counter(), time.process_time()
    total = 0.0
    reads = 0
    with aestream.FileInput(path, (width, height), ignore_time=True) as stream:
        while stream.is_streaming():
            frame = stream.read()
            if check:
                total += float(frame.sum())
            reads += 1
        total += float(stream.read().sum())
    return time.perf_counter() - start, total, reads, time.process_time() - cpu
delivered = run(True)[1]  # warms the page cache and the library, counts the events
results = []
for _ in range(int(sys.argv[4])):
    wall, _, reads, cpu = run(False)
    results.append((wall, delivered, reads, cpu))
print(json.dumps({"version": aestream.__version__, "runs": results}))
"""


def timed(
    function: Callable[[], Any], repeat: int, sync: Callable[[], None]
) -> tuple[tuple[float, float], Any]:
    """Median wall and CPU seconds (this process, all threads) of ``repeat`` runs, and the
    last run's result. On a shared machine CPU time is the steadier of the two."""
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        result = function()
        sync()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def consume(frames_: Iterable[Any], check: bool) -> list[float]:
    """Take every frame; with ``check``, their totals (summed on the device, gathered
    once), else one 0.0 per frame: timed runs do nothing with the frames."""
    if not check:
        return [0.0 for _ in frames_]
    sums = [frame.sum() for frame in frames_]
    if not sums or isinstance(sums[0], np.generic):
        return [float(s) for s in sums]
    import torch

    totals: list[float] = torch.stack(sums).double().cpu().tolist()
    return totals


def naive_numpy(
    events: Any, width: int, height: int, window: int, representation: str, bins: int
) -> Iterator[Any]:
    """A frame per window the way it is usually written: np.add.at into new zeroed arrays."""
    t = events["t"]
    t0 = int(t[0])
    count = (int(t[-1]) - t0) // window + 1
    edges = np.searchsorted(t, t0 + window * np.arange(count + 1, dtype=np.uint64))
    for k in range(count):
        part = events[edges[k] : edges[k + 1]]
        p = part["on"].astype(np.intp)
        y = part["y"].astype(np.intp)
        x = part["x"].astype(np.intp)
        if representation == "voxel":
            grid = np.zeros((bins, 2, height, width), np.float32)
            a = t0 + k * window
            position = (bins - 1) * (part["t"].astype(np.float64) - a) / (window - 1)
            low = np.minimum(position.astype(np.intp), bins - 2)
            fraction = (position - low).astype(np.float32)
            np.add.at(grid, (low, p, y, x), 1 - fraction)
            np.add.at(grid, (low + 1, p, y, x), fraction)
            yield grid
        else:
            frame = np.zeros((2, height, width), np.float32)
            np.add.at(frame, (p, y, x), 1)
            yield frame


def bincount_numpy(events: Any, width: int, height: int, window: int) -> Iterator[Any]:
    """Counts per window with np.bincount of flat indices: NumPy at its best."""
    t = events["t"]
    t0 = int(t[0])
    count = (int(t[-1]) - t0) // window + 1
    edges = np.searchsorted(t, t0 + window * np.arange(count + 1, dtype=np.uint64))
    plane = width * height
    for k in range(count):
        part = events[edges[k] : edges[k + 1]]
        index = part["on"].astype(np.intp) * plane + part["y"].astype(np.intp) * width
        index += part["x"]
        counts = np.bincount(index, minlength=2 * plane).reshape(2, height, width)
        yield counts.astype(np.float32)


def aestream_run(path: Path, width: int, height: int, repeat: int) -> dict[str, Any] | None:
    if not PEER_PYTHON.is_file():
        return None
    check = subprocess.run(
        [str(PEER_PYTHON), "-c", "import aestream"], capture_output=True, check=False
    )
    if check.returncode:
        return None
    result = subprocess.run(
        [str(PEER_PYTHON), "-c", AESTREAM_SNIPPET, str(path), str(width), str(height), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode:
        print(f"aestream failed: {result.stderr.strip()[-400:]}", file=sys.stderr)
        return None
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 M events instead of 20 M")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", default="10ms")
    parser.add_argument("--representations", default="counts,voxel")
    parser.add_argument("--bins", type=int, default=5)
    parser.add_argument("--shared-data", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    try:
        builder = DatasetBuilder(find_shared_data(args.shared_data))
        target = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
        dataset = builder.dataset("evt3", target)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    width, height = dataset.width, dataset.height
    window = aerflow.parse_time(args.window)
    events = aerflow.read(dataset.path)
    n = len(events)
    representations = args.representations.split(",")
    print(f"machine: {machine()}")
    print(f"input: {dataset.source}: {n:,} events, {width}x{height}, window {args.window}")

    torch: Any = None
    with contextlib.suppress(ImportError):
        import torch
    devices = ["numpy"] + (["cpu"] if torch is not None else [])
    cuda = torch is not None and torch.cuda.is_available()
    if cuda:
        devices.append("cuda")
        print(f"gpu: {torch.cuda.get_device_name()}")

    def sync_for(device: str) -> Callable[[], None]:
        if device == "cuda":
            synchronize: Callable[[], None] = torch.cuda.synchronize
            return synchronize
        return lambda: None

    # Warm-up: numba compilation or cache loading, torch start-up, CUDA context.
    for device in devices:
        for representation in representations:
            consume(
                frames(
                    events[:10_000],
                    window=window,
                    representation=representation,
                    device=device,
                    sensor_size=(width, height),
                ),
                check=True,
            )

    rows: list[dict[str, Any]] = []

    def measure(
        name: str,
        representation: str,
        make: Callable[[], Iterable[Any]],
        sync: Callable[[], None] = lambda: None,
    ) -> None:
        """Time taking every frame ``make()`` gives, then check them in one more run."""
        wall, cpu = timed(lambda: consume(make(), check=False), args.repeat, sync)[0]
        totals = consume(make(), check=True)
        rows.append(
            {
                "case": name,
                "representation": representation,
                "seconds": wall,
                "cpu_seconds": cpu,
                "mev_s": n / wall / 1e6,
                "mev_per_cpu_s": n / cpu / 1e6,
                "frames": len(totals),
                "total": float(sum(totals)),
            }
        )
        print(
            f"  {name:<42} {representation:<12} {n / wall / 1e6:7.1f} Mev/s"
            f" {n / cpu / 1e6:7.1f} Mev/CPU-s  ({wall:.3f} s, {len(totals)} frames)"
        )

    for representation in representations:
        bins = args.bins if representation == "voxel" else None
        for device in devices:
            for reuse in (False, True):
                measure(
                    f"aerflow frames(), in memory, {device}{', reuse' if reuse else ''}",
                    representation,
                    functools.partial(
                        frames,
                        events,
                        window=window,
                        representation=representation,
                        device=device,
                        sensor_size=(width, height),
                        bins=bins,
                        reuse=reuse,
                    ),
                    sync_for(device),
                )
        if representation not in ("counts", "voxel"):
            continue
        measure(
            "naive NumPy (np.add.at)",
            representation,
            functools.partial(
                naive_numpy, events, width, height, window, representation, args.bins
            ),
        )
        if representation == "counts":
            measure(
                "NumPy np.bincount", "counts", lambda: bincount_numpy(events, width, height, window)
            )

    file_device = "cpu" if torch is not None else "numpy"
    measure(
        f"aerflow frames(open(file)), {file_device}",
        "counts",
        lambda: frames(aerflow.open(dataset.path), window=window, device=file_device),
    )
    peer = aestream_run(dataset.path, width, height, args.repeat)
    if peer is None:
        print("  aestream: not installed in benchmarks/.venv (bash benchmarks/setup_env.sh)")
    else:
        runs = peer["runs"]
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[3] for run in runs)
        delivered = runs[-1][1]
        rows.append(
            {
                "case": f"aestream {peer['version']} FileInput.read() loop",
                "representation": "counts",
                "seconds": wall,
                "cpu_seconds": cpu,
                "mev_s": n / wall / 1e6,
                "mev_per_cpu_s": n / cpu / 1e6,
                "frames": runs[-1][2],
                "total": delivered,
            }
        )
        print(
            f"  {'aestream ' + peer['version'] + ' FileInput, read() loop':<42} {'counts':<12} "
            f"{n / wall / 1e6:7.1f} Mev/s {n / cpu / 1e6:7.1f} Mev/CPU-s  ({wall:.3f} s, "
            f"{runs[-1][2]} reads, {int(delivered):,} of {n:,} events delivered)"
        )

    # Correctness: every aerflow and NumPy case saw every event (voxel weights sum to 1).
    # Other representations: every device gives the same totals.
    by_representation: dict[str, list[float]] = {}
    for row in rows:
        if row["case"].startswith("aestream"):
            continue
        if row["representation"] in ("counts", "voxel"):
            if abs(row["total"] - n) > 1e-4 * n:
                print(f"MISMATCH: {row['case']} {row['representation']} total {row['total']}")
        else:
            by_representation.setdefault(row["representation"], []).append(row["total"])
    for representation, totals in by_representation.items():
        if max(totals) - min(totals) > 1e-4 * max(abs(max(totals)), 1.0):
            print(f"MISMATCH: {representation} totals differ between devices: {totals}")
    if not cuda:
        print("  cuda: no GPU here; GPU numbers not measured")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"machine": machine(), "events": n, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
