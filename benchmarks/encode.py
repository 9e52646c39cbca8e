"""Encoding throughput and output size of aerflow's Prophesee writers.

    python benchmarks/encode.py [--source FILE] [--formats evt3,evt2,evt21,dat] [--repeat N]

The source (default: the 20.5 M-event EVT 2.0 benchmark file that decode.py builds in
benchmarks/data/) is decoded once; each format is then written ``--repeat`` times with
``aerflow.write`` to a temporary folder, and the median wall time, CPU-seconds (user +
system, all threads) and the file size are printed. Every written file is read back and
compared with the source events (``correct``), and with the ``evt3`` crate too for EVT 3.0
where it is installed. Run the script with ``PYTHONPATH=<other checkout>/src`` to measure
another version of aerflow on the same machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import aerflow

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE / "data" / "evt2_evt2_gen3_2020-09-14_x38.raw"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and all(np.array_equal(a[f], b[f]) for f in ("t", "x", "y", "on"))


def evt3_crate_agrees(path: Path, events: np.ndarray) -> str:
    if importlib.util.find_spec("evt3") is None:
        return "-"
    import evt3

    decoded = evt3.decode_file(str(path))
    ok = (
        len(decoded.t) == len(events)
        and np.array_equal(np.asarray(decoded.t).astype(np.uint64), events["t"])
        and np.array_equal(np.asarray(decoded.x), events["x"])
        and np.array_equal(np.asarray(decoded.y), events["y"])
    )
    return "yes" if ok else "NO"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--formats", default="evt3,evt2,evt21,dat")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with aerflow.open(args.source) as reader:
        width, height = reader.properties.width, reader.properties.height
        events = reader.read().events
    print(f"{args.source.name}: {len(events) / 1e6:.1f} M events, {width}x{height}")
    print(f"{'format':7} {'Mev/s':>7} {'CPU-s':>6} {'MB':>7} {'B/event':>7}  correct  evt3 crate")
    with tempfile.TemporaryDirectory() as folder:
        for fmt in args.formats.split(","):
            path = Path(folder) / f"out-{fmt}.{'dat' if fmt == 'dat' else 'raw'}"
            walls, cpus = [], []
            for _ in range(args.repeat):
                cpu, start = cpu_seconds(), time.perf_counter()
                aerflow.write(path, events, format=fmt, width=width, height=height)
                walls.append(time.perf_counter() - start)
                cpus.append(cpu_seconds() - cpu)
            size = path.stat().st_size
            correct = "yes" if same(aerflow.read(path), events) else "NO"
            crate = evt3_crate_agrees(path, events) if fmt == "evt3" else ""
            print(
                f"{fmt:7} {len(events) / statistics.median(walls) / 1e6:7.1f} "
                f"{statistics.median(cpus):6.3f} {size / 1e6:7.1f} {size / len(events):7.2f}  "
                f"{correct:7}  {crate}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
