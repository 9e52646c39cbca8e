"""Command-line start-up: ``aerflow --help`` and ``aerflow info SMALL_FILE`` against faery's
``--help`` and ``info`` on the same file, each a fresh process, median wall time (and CPU
time) of N runs; also ``aerflow convert SMALL_FILE OUT.es`` (faery 0.7.1's conversion fails
without a terminal, so it has no peer here).

    .venv/bin/python benchmarks/startup.py [--runs 15] [--file PATH] [--json FILE]

Both tools run from the interpreter running this script (their console scripts beside it;
``python -m aerflow`` when aerflow has none), alternating run by run so that a busy machine
slows both alike. The small file defaults to the shared DAT recording (16 KB, 2,009 events),
which faery 0.7.1's ``info`` reads (its ``info`` fails on ``.raw`` files with a TypeError
about ``t0``). The two ``info`` commands do not do the same work: aerflow's decodes every
event (counts, time span), faery's prints the header's metadata. Without faery the peer
columns are left out, with a note.

Also printed: the modules ``aerflow --help`` imports (``-X importtime``) that are numba or
aerflow subpackages (there should be none), and the load average before and after.
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = "dat/tonic_sample_ncars.dat"


def _shared_data() -> Path | None:
    env = os.environ.get("AERFLOW_SHARED_DATA")
    if env:
        return Path(env)
    for parent in HERE.parents:
        candidate = parent / "shared" / "data"
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    return None


def _command(tool: str) -> list[str] | None:
    script = Path(sys.executable).with_name(tool)
    if script.is_file():
        return [str(script)]
    found = shutil.which(tool)
    if found:
        return [found]
    if tool == "aerflow":
        return [sys.executable, "-m", "aerflow"]
    return None


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _time(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``."""
    cpu = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode()[-500:]}")
    return elapsed, _children_cpu() - cpu


def _heavy_imports(aerflow: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aerflow", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines()]
    heavy = ("numba", "aerflow.render", "aerflow.tensors", "aerflow.devices", "aerflow.net")
    return sorted({n for n in names if any(n == h or n.startswith(h + ".") for h in heavy)})


def _check_converted(source: Path, converted: Path) -> None:
    """The timed conversion's output holds the source's events."""
    import aerflow

    if aerflow.read(converted).tolist() != aerflow.read(source).tolist():
        sys.exit(f"{converted} does not hold the events of {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (median)")
    parser.add_argument("--file", help=f"small recording (default: shared {DEFAULT_FILE})")
    parser.add_argument("--json", help="write every run's time here")
    args = parser.parse_args()

    if args.file:
        path = Path(args.file)
    else:
        data = _shared_data()
        if data is None:
            sys.exit("no shared data folder: pass --file")
        path = data / DEFAULT_FILE
    aerflow = _command("aerflow")
    assert aerflow is not None
    faery = _command("faery")
    converted = Path(tempfile.mkdtemp(prefix="aerflow-startup-")) / "converted.es"
    cases = {
        "aerflow --help": [*aerflow, "--help"],
        "aerflow info": [*aerflow, "info", str(path)],
        "aerflow convert": [*aerflow, "convert", str(path), str(converted)],
    }
    if faery is not None:
        cases["faery --help"] = [*faery, "--help"]
        cases["faery info"] = [*faery, "info", str(path)]

    load_before = os.getloadavg()
    for argv in cases.values():  # untimed: page cache, numba's on-disk cache, .pyc files
        _time(argv)
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, argv in cases.items():
            wall, used = _time(argv)
            times[name].append(wall)
            cpu[name].append(used)
    load_after = os.getloadavg()
    _check_converted(path, converted)
    shutil.rmtree(converted.parent)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"file: {path} ({path.stat().st_size:,} bytes); {args.runs} runs each, alternating")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7}")
    for name, values in times.items():
        print(
            f"{name:<16} {medians[name]:>9.3f} {min(values):>7.3f} {max(values):>7.3f} "
            f"{statistics.median(cpu[name]):>7.3f}"
        )
    if faery is None:
        print("faery is not installed (pip install 'aerflow[interop]'): no peer columns")
    else:
        for what in ("--help", "info"):
            ratio = medians[f"aerflow {what}"] / medians[f"faery {what}"]
            print(f"aerflow {what} / faery {what}: {ratio:.2f}x")
    heavy = _heavy_imports(aerflow)
    print("aerflow --help imports numba or a subpackage:", ", ".join(heavy) if heavy else "none")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"file": str(path), "times": times, "cpu": cpu, "load": [load_before, load_after]},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
