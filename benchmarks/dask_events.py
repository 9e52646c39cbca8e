"""Per-pixel event counts over many files: aerflow.dask.read_events against a NumPy loop.

The dataset is ``--files`` EVT3 files of ``--events-per-file`` events each (default 100 ×
1 M = 100 M events, 640x480): the synthetic rotating bar (``aerflow.synthetic``), each file
a different seed, written once into ``benchmarks/data/dask_events/`` (reused while the
sidecar matches). Every measurement runs in a fresh process and computes the same
(H, W) table of events per pixel:

* ``numpy``: one process, ``for path: events = aerflow.read(path);
  counts += np.bincount(y * W + x)``;
* ``dask-groupby``: ``aerflow.dask.read_events(paths, columns=["x", "y"])
  .groupby(["x", "y"]).size().compute()`` on Dask's default (threaded) scheduler;
* ``dask-bincount``: the same DataFrame, a bincount per partition (``to_delayed``), summed;
* ``dask-bincount-noindex``: the same with ``chunk_events=None, index=None`` (one partition
  per file, nothing decoded before the computation);
* ``dask-groupby-cluster``: the groupby on a ``distributed.LocalCluster`` of
  ``--workers`` single-threaded worker processes, started (aerflow and pandas imported in
  each) before the clock starts.

Imports and numba compilation are untimed in every mode (one file is read first).

Reported: Mev/s (events / wall seconds, the index build included; its share is shown),
CPU seconds (user + system of the process, plus the workers' for the cluster run) and
peak RSS (VmHWM of the process, and the largest worker's). Each result is checked against
the NumPy table.

Usage:
    .venv/bin/python benchmarks/dask_events.py [--files 100] [--events-per-file 1000000]
        [--quick] [--repeat 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data" / "dask_events"
WIDTH, HEIGHT = 640, 480
RESULT = "BENCH_RESULT "
MODES = ("numpy", "dask-groupby", "dask-bincount", "dask-bincount-noindex", "dask-groupby-cluster")


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(files: int, per_file: int) -> list[Path]:
    """The dataset's files, written once (a sidecar records what they hold)."""
    import aerflow
    from aerflow.synthetic import rotating_bar

    folder = DATA_DIR / f"{files}x{per_file}"
    sidecar = folder / "dataset.json"
    paths = [folder / f"bar_{i:04d}.raw" for i in range(files)]
    expected = {"files": files, "events_per_file": per_file, "version": 1}
    if (
        sidecar.exists()
        and json.loads(sidecar.read_text()) == expected
        and all(path.exists() for path in paths)
    ):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rate = len(rotating_bar(WIDTH, HEIGHT, 100_000, seed=0)) / 100_000  # events per µs
    for i, path in enumerate(paths):
        events = rotating_bar(WIDTH, HEIGHT, int(per_file / rate * 1.1) + 1_000, seed=i)
        aerflow.write(path, events[:per_file], format="evt3", width=WIDTH, height=HEIGHT)
    sidecar.write_text(json.dumps(expected))
    return paths


def _numpy(paths: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    import aerflow

    counts = np.zeros(WIDTH * HEIGHT, np.int64)
    for path in paths:
        events = aerflow.read(path)
        flat = events["y"].astype(np.int64) * WIDTH + events["x"]
        counts += np.bincount(flat, minlength=WIDTH * HEIGHT)
        del events, flat
    return counts.reshape(HEIGHT, WIDTH), {}


def _table(series: Any) -> np.ndarray:
    table = np.zeros((HEIGHT, WIDTH), np.int64)
    xs = series.index.get_level_values("x").to_numpy().astype(np.intp)
    ys = series.index.get_level_values("y").to_numpy().astype(np.intp)
    table[ys, xs] = series.to_numpy()
    return table


def _bincount(part: Any) -> np.ndarray:
    flat = part["y"].to_numpy().astype(np.int64) * WIDTH + part["x"].to_numpy()
    return np.bincount(flat, minlength=WIDTH * HEIGHT)[None, :]


def _start_cluster(workers: int) -> Any:
    """A LocalCluster of single-threaded worker processes, with aerflow warm in each."""
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    client.run(_warm_up)
    return client


def _warm_up() -> None:
    import pandas  # noqa: F401

    import aerflow.dask  # noqa: F401


def _dask(paths: list[str], mode: str, client: Any | None) -> tuple[np.ndarray, dict[str, Any]]:
    import dask
    import dask.array

    import aerflow.dask

    extra: dict[str, Any] = {}
    if client is not None:
        extra["workers_cpu_start"] = sum(client.run(_cpu_seconds).values())
    start = time.perf_counter()
    if mode == "dask-bincount-noindex":
        frame = aerflow.dask.read_events(paths, columns=["x", "y"], chunk_events=None, index=None)
    else:
        frame = aerflow.dask.read_events(paths, columns=["x", "y"])
    extra["index_seconds"] = time.perf_counter() - start
    extra["partitions"] = frame.npartitions
    if mode.startswith("dask-bincount"):
        pieces = frame.to_delayed()
        arrays = [
            dask.array.from_delayed(
                dask.delayed(_bincount)(piece), shape=(1, WIDTH * HEIGHT), dtype=np.int64
            )
            for piece in pieces
        ]
        table = dask.array.concatenate(arrays).sum(axis=0).compute().reshape(HEIGHT, WIDTH)
    else:
        table = _table(frame.groupby(["x", "y"]).size().compute())
    if client is not None:
        extra["workers_cpu_seconds"] = sum(client.run(_cpu_seconds).values()) - extra.pop(
            "workers_cpu_start"
        )
        extra["workers_peak_rss_kb"] = max(client.run(_peak_rss_kb).values())
    return table, extra


def measure(mode: str, paths: list[str], workers: int) -> dict[str, Any]:
    """One run of ``mode`` in this process."""
    import aerflow

    aerflow.read(paths[0])  # numba kernels compiled or loaded from the cache, untimed
    client = _start_cluster(workers) if mode == "dask-groupby-cluster" else None
    if mode != "numpy":
        import dask.dataframe  # noqa: F401  (imported untimed, like aerflow)
    cpu = _cpu_seconds()
    start = time.perf_counter()
    if mode == "numpy":
        table, extra = _numpy(paths)
    else:
        table, extra = _dask(paths, mode, client)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    if client is not None:
        client.shutdown()
    return {
        "mode": mode,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_kb": _peak_rss_kb(),
        "events": int(table.sum()),
        "table_sum_weighted": int((table * np.arange(table.size).reshape(table.shape)).sum()),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--events-per-file", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10 files of 1 M events")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args()
    if args.quick:
        args.files = 10
    paths = [os.fspath(p) for p in build(args.files, args.events_per_file)]
    if args.run:
        print(RESULT + json.dumps(measure(args.run, paths, args.workers)), flush=True)
        return
    results: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            command = [
                sys.executable,
                __file__,
                "--run",
                mode,
                "--files",
                str(args.files),
                "--events-per-file",
                str(args.events_per_file),
                "--workers",
                str(args.workers),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            line = next(x for x in output.splitlines() if x.startswith(RESULT))
            results.append(json.loads(line[len(RESULT) :]))
    reference = next(r for r in results if r["mode"] == "numpy")
    load = os.getloadavg()
    print(
        f"{args.files} files x {args.events_per_file:,} events, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} / {load[1]:.1f}"
    )
    print(
        f"{'mode':<22} {'Mev/s':>7} {'wall s':>7} {'index s':>8} {'CPU s':>7} "
        f"{'peak MB':>8} {'worker MB':>9}  same"
    )
    for result in results:
        same = (result["events"], result["table_sum_weighted"]) == (
            reference["events"],
            reference["table_sum_weighted"],
        )
        cpu = result["cpu_seconds"] + result.get("workers_cpu_seconds", 0.0)
        worker = result.get("workers_peak_rss_kb")
        print(
            f"{result['mode']:<22} {result['events'] / result['seconds'] / 1e6:7.1f} "
            f"{result['seconds']:7.2f} {result.get('index_seconds', 0.0):8.2f} {cpu:7.2f} "
            f"{result['peak_rss_kb'] / 1024:8.0f} "
            f"{'' if worker is None else f'{worker / 1024:.0f}':>9}  {'yes' if same else 'NO'}"
        )
    if args.json:
        args.json.write_text(json.dumps({"load": load, "results": results}, indent=1))


if __name__ == "__main__":
    main()
