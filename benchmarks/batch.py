"""Many files: a sequential loop in one process against ``aerflow batch --jobs N``.

N EVT 3.0 files of about 1 M events each (the synthetic spinning bar, 640x480) are
converted (to AEDAT 4.0, or the format of ``--to``), each way in a fresh process:

  sequential   one process, one file after another, through the same pipeline code
               as ``aerflow input file X output file Y.aedat4`` (which itself uses
               more than one core: the read-ahead thread, AEDAT 4.0's two compression
               threads; the report gives its CPU time / wall time)
  sequential, threads=1
               the same loop with every reader and output on one thread, as each worker
               of a batch with a worker per core runs them: how the batch scales
  commands     `aerflow convert IN OUT`, one fresh process per file, as a shell loop
               runs it, over the first --command-files files (per file, and scaled to all)
  batch        aerflow.batch on a local Dask cluster of ``--jobs`` processes (the engine
               of ``aerflow batch``), the cluster's start timed apart; with a worker per
               core, each file is read and written with threads=1

Both load aerflow's kernels once before their timed work (the batch on every worker, as
part of its start).

Every output is checked after its mode: one per input, each decoding to the input's events.

Reported: wall time, events/s, input MB/s, peak memory (the largest resident set summed
over the process and its descendants, sampled every 20 ms), CPU time, the whole process's
time (interpreter start, imports, kernels, the cluster's start and stop: what a user
waits for), the speed-up, and the per-file overhead of the batch, two ways:
- wall: ((wall - cluster start) x jobs - sequential wall) / files, what each file costs
  beyond its share of the sequential work (scheduling, transfer, contention);
- CPU: (CPU time of the batch's processes - that of a cluster started and stopped with no
  files - CPU time of the sequential loop) / files. The CPU figure holds on a busy machine,
  where the wall figures mostly measure the share of the cores this session gets (with
  Linux's autogroup scheduling, every process a session starts shares one group's share,
  however many processes it runs).

The three modes run in --rounds rounds (default 3), each round in another order (on this
machine whichever mode runs first after the inputs are made is slowed, by up to 1.6x),
and the medians are reported with every round's wall time.

Usage:
    .venv/bin/python benchmarks/batch.py [--files 200] [--jobs 2] [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULT = "BATCH_RESULT "
SUFFIX = "aedat4"  # the output format, set from --to (the children are given it too)


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


class PeakMemory:
    """The largest summed RSS of a process tree, sampled on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _tree_rss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _tasks(files: list[str], out: str) -> list[Any]:
    import aerflow.batch
    from aerflow.batch.engine import plan
    from aerflow.batch.placeholders import expand

    pipeline = aerflow.batch.parse(f"output file {{stem}}.{SUFFIX}")
    return plan(expand(files), pipeline, out, overwrite=True)[0]


def _warm(warm_file: str, out: str) -> None:
    """Import aerflow and load the kernels of the conversion (from numba's cache)."""
    from aerflow.batch.engine import process_file

    for task in _tasks([warm_file], os.path.join(out, f".warm-{os.getpid()}")):
        process_file(task)
    shutil.rmtree(os.path.join(out, f".warm-{os.getpid()}"))


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the workers of a
    local cluster are its children)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child_sequential(
    files: list[str], out: str, warm_file: str, threads: int | None = None
) -> dict[str, Any]:
    import dataclasses

    from aerflow.batch.engine import process_file

    _warm(warm_file, out)
    events = 0
    cpu = _cpu()
    started = time.perf_counter()
    for task in _tasks(files, out):  # what each task of the batch runs, one after another
        if threads is not None:
            task = dataclasses.replace(task, threads=threads)
        row = process_file(task)
        assert row.status == "done", row.error
        events += row.events
    wall = time.perf_counter() - started
    return {"wall": wall, "events": events, "cpu": _cpu() - cpu}


def _child_batch(
    files: list[str], out: str, jobs: int, warm_file: str, work: bool = True
) -> dict[str, Any]:
    """The batch, its cluster's start (with each worker warmed) timed apart; with ``work``
    False only the start and the end, for the CPU time they cost."""
    import logging

    import aerflow.batch
    from aerflow.batch.engine import connect

    logging.getLogger("distributed").setLevel(logging.ERROR)
    cpu = _cpu()
    started = time.perf_counter()
    events = 0
    task_seconds = 0.0
    with connect(jobs=jobs) as client:
        client.wait_for_workers(jobs)
        client.run(_warm, warm_file, out)  # every worker, as part of the start
        ready = time.perf_counter()
        if work:
            pipeline = f"output file {{stem}}.{SUFFIX}"
            result = aerflow.batch.run(files, pipeline, out=out, client=client)
            if not result.ok:
                failed = result.failures[0]
                raise SystemExit(f"batch failed: {failed.path}: {failed.error}")
            events, task_seconds = int(result.total("events")), result.total("seconds")
        finished = time.perf_counter()
    return {
        "wall": finished - started,
        "start": ready - started,
        "work": finished - ready,
        "task_seconds": task_seconds,
        "events": events,
        "cpu": _cpu() - cpu,  # the workers have ended: their time is counted
    }


def _measure(mode: str, files: list[str], out: str, jobs: int) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # Each mode starts with no dirty pages: the inputs just made and the last mode's
    # outputs (1-2 GB) would otherwise be written back, and throttle writers, during it.
    os.sync()
    args = [sys.executable, __file__, "--child", mode, "--out", out, "--jobs", str(jobs)]
    args += ["--to", SUFFIX]
    args += ["--warm", os.path.join(os.path.dirname(out), "in", "warm.raw")]
    list_file = os.path.join(os.path.dirname(out), "files.json")
    Path(list_file).write_text(json.dumps(files))
    launched = time.perf_counter()
    process = subprocess.Popen([*args, "--list", list_file], stdout=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    stdout, _ = process.communicate()
    ended = time.perf_counter()
    peak = memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"{mode} run failed ({process.returncode})")
    line = next(x for x in stdout.splitlines() if x.startswith(RESULT))
    measured: dict[str, Any] = json.loads(line[len(RESULT) :])
    measured["peak"] = peak
    measured["process"] = ended - launched  # from the interpreter's start to its exit
    if mode != "start":
        _verify(files, out)
    return measured


def _verify(files: list[str], out: str) -> None:
    """Check that ``out`` holds one output per input and that each decodes to its input's
    events (the inputs are copies of one file)."""
    import numpy as np

    import aerflow

    outputs = [os.path.join(out, f"{Path(path).stem}.{SUFFIX}") for path in files]
    if sorted(os.listdir(out)) != sorted(os.path.basename(o) for o in outputs):
        raise SystemExit(f"{out} holds other files than one output per input")
    expected = aerflow.read(files[0])
    for output in outputs:
        if not np.array_equal(aerflow.read(output), expected):
            raise SystemExit(f"{output} does not decode to the events of its input")


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _command_loop(files: list[str], out: str) -> dict[str, Any]:
    """``aerflow convert IN OUT`` once per file, each a fresh process, as a shell loop runs
    it (each start imports aerflow and loads numba's kernels again)."""
    command = Path(sys.executable).with_name("aerflow")
    argv = [str(command)] if command.is_file() else [sys.executable, "-m", "aerflow"]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    os.sync()  # as _measure does
    cpu = _cpu()
    started = time.perf_counter()
    for path in files:
        target = os.path.join(out, f"{Path(path).stem}.{SUFFIX}")
        subprocess.run([*argv, "convert", path, target], check=True, stdin=subprocess.DEVNULL)
    measured = {"wall": time.perf_counter() - started, "cpu": _cpu() - cpu}
    _verify(files, out)
    return measured


def _make_files(folder: Path, count: int, events: int) -> tuple[list[str], int]:
    import aerflow
    from aerflow.synthetic import SyntheticSensor

    duration = max(1, round(events / 2_000_000 * 1e6))
    base = SyntheticSensor(640, 480, duration=duration, seed=1).read().events[:events]
    first = folder / "rec0000.raw"
    aerflow.write(first, base, width=640, height=480)
    files = [str(first)]
    for number in range(1, count):
        path = folder / f"rec{number:04d}.raw"
        shutil.copyfile(first, path)
        files.append(str(path))
    aerflow.write(folder / "warm.raw", base[:10_000], width=640, height=480)
    return files, len(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--events", type=int, default=1_000_000, help="events per file")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the three modes (medians reported)"
    )
    parser.add_argument(
        "--to", default="aedat4", help="output extension: aedat4 (default), dat, es, raw, npy"
    )
    parser.add_argument(
        "--command-files",
        type=int,
        default=20,
        help="files converted by a loop of `aerflow convert` commands (0: none)",
    )
    parser.add_argument(
        "--child",
        choices=("sequential", "sequential-1", "batch", "start"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    parser.add_argument("--warm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global SUFFIX
    SUFFIX = args.to
    if args.child:
        files = json.loads(Path(args.list).read_text())
        if args.child.startswith("sequential"):
            threads = 1 if args.child == "sequential-1" else None
            measured = _child_sequential(files, args.out, args.warm, threads)
        else:
            work = args.child == "batch"
            measured = _child_batch(files, args.out, args.jobs, args.warm, work)
        print(RESULT + json.dumps(measured), flush=True)
        return

    with tempfile.TemporaryDirectory(prefix="aerflow-batch-bench-") as temporary:
        folder = Path(temporary)
        (folder / "in").mkdir()
        files, per_file = _make_files(folder / "in", args.files, args.events)
        size = sum(os.path.getsize(f) for f in files)
        load = os.getloadavg()
        print(
            f"{args.files} EVT 3.0 files of {per_file:,} events ({size / 1e6:,.0f} MB) -> "
            f"{args.to}; {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
            f"before the runs"
        )
        out = str(folder / "out")
        modes = ["sequential", "sequential-1", "batch"]
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for round_number in range(args.rounds):
            # each round in another order: whichever mode runs first runs slower here
            for mode in modes[round_number % 3 :] + modes[: round_number % 3]:
                runs[mode].append(_measure(mode, files, out, args.jobs))
        sequential, one_thread, batch = (_median(runs[mode]) for mode in modes)
        start = _measure("start", files, out, args.jobs)
        commands = _command_loop(files[: args.command_files], out) if args.command_files else None
        after = os.getloadavg()[0]
    del start["events"]

    total_events = sequential["events"]
    assert batch["events"] == total_events, (batch["events"], total_events)
    print(
        f"{'mode':<24}{'wall s':>9}{'Mev/s':>9}{'MB/s':>9}{'peak MB':>10}{'CPU s':>9}"
        f"{'process s':>11}"
    )
    assert one_thread["events"] == total_events, (one_thread["events"], total_events)
    rows = (
        ("sequential", sequential),
        ("sequential, threads=1", one_thread),
        (f"batch -j{args.jobs}", batch),
    )
    for name, measured in rows:
        wall = measured["wall"]
        print(
            f"{name:<24}{wall:>9.2f}{total_events / wall / 1e6:>9.1f}{size / wall / 1e6:>9.1f}"
            f"{measured['peak'] / 1e6:>10.0f}{measured['cpu']:>9.2f}{measured['process']:>11.2f}"
        )
    if args.rounds > 1:
        for mode, name in zip(modes, (name for name, _ in rows), strict=True):
            walls = ", ".join(f"{run['wall']:.2f}" for run in runs[mode])
            print(f"  {name}: wall s of each round {walls}")
    start_cpu = start["cpu"]
    overhead = ((batch["wall"] - batch["start"]) * args.jobs - sequential["wall"]) / args.files
    overhead_cpu = (batch["cpu"] - start_cpu - sequential["cpu"]) / args.files
    print(
        f"speed-up {sequential['wall'] / batch['wall']:.2f}x "
        f"({sequential['wall'] / batch['work']:.2f}x without the cluster's start of "
        f"{batch['start']:.2f} s); per-file overhead {overhead * 1e3:.0f} ms of wall time "
        f"x workers, {overhead_cpu * 1e3:.0f} ms of CPU time"
    )
    print(
        f"against the loop with threads=1 (one core, as each worker reads and writes): "
        f"{one_thread['wall'] / batch['wall']:.2f}x "
        f"({one_thread['wall'] / batch['work']:.2f}x without the cluster's start)"
    )
    print(
        f"end to end (each process from its start to its exit: imports, kernels, the "
        f"cluster): {sequential['process'] / batch['process']:.2f}x the loop, "
        f"{one_thread['process'] / batch['process']:.2f}x the loop with threads=1"
    )
    if commands is not None:
        per_file = commands["wall"] / args.command_files
        print(
            f"a loop of `aerflow convert` commands (one process per file) over "
            f"{args.command_files} of the files: {per_file * 1e3:.0f} ms per file "
            f"({commands['cpu'] / args.command_files * 1e3:.0f} ms of CPU), "
            f"{per_file * args.files:.1f} s for all {args.files} at that pace: "
            f"{per_file * args.files / batch['wall']:.1f}x the batch's time"
        )
    print(
        f"CPU time: sequential {sequential['cpu']:.2f} s "
        f"({sequential['cpu'] / sequential['wall']:.2f} cores busy on average), batch "
        f"{batch['cpu']:.2f} s in all processes, of which {start_cpu:.2f} s start and stop "
        f"the cluster; task time {batch['task_seconds'] / args.files * 1e3:.0f} ms per file "
        f"in the batch vs {sequential['wall'] / args.files * 1e3:.0f} ms sequential; "
        f"load average {after:.2f} after"
    )


if __name__ == "__main__":
    main()
