"""Camera driver path: an emulated EVK4 feeding EVT 3.0 as fast as it can.

The emulated camera (``aerflow.devices.emulate("evk4", path)``) plays an EVT3 file through
the real driver code: the emulated USB transport's thread hands 128 KiB transfers to the ring,
the camera's decode thread runs the EVT3 kernel on each buffer, and this process iterates
``(status, packet)`` and counts. The transport is lossless here (an emulated bus playing as
fast as possible waits instead of dropping), so every byte is decoded and the event count is
checked against the file's.

Two files, because the EVT3 decoder's speed per byte depends on the word mix:

* ``recording``: the file decode.py builds (shared/data's EVT2 Gen3 recording, 640x480,
  tiled in time to >= 20 M events, written by aerflow): irregular rows, few vector groups;
* ``synthetic``: 1 s of aerflow's synthetic sensor at 1280x720 and 20 Mev/s (a spinning bar
  and noise), written by aerflow: one ADDR_Y per event, a regular word pattern.

Reported per file and mode, median of --repeat runs, each in a fresh process:

* decoded: MB/s of EVT3 words and Mev/s through the whole path, CPU seconds, peak RSS;
* raw: the same path returning bytes (what recording a .raw file at full speed costs).

``--cores 1`` (default) pins the process to one CPU, so every thread (transport, decode,
consumer) shares one core: the issue's "on one core" condition. Target: decoded throughput
>= 400 MB/s (the USB 3 link rate of an EVK4).

Usage:
    benchmarks/.venv/bin/python benchmarks/camera.py [--repeat 3] [--cores 1]
        [--events 20000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _datasets import DatasetBuilder, find_shared_data  # noqa: E402
from _runner import _max_rss_kb  # noqa: E402

RESULT = "BENCH_RESULT "
TARGET_MB_S = 400.0


def _child(path: str, raw: bool, cores: int, expected_events: int) -> dict[str, Any]:
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    import aerflow.devices

    # Warm up (numba kernels loaded, driver modules imported) on the tiny synthetic default.
    with aerflow.devices.open(backend=aerflow.devices.emulate("evk4")) as camera:
        for _, _ in zip(camera, range(2), strict=False):
            pass
    backend = aerflow.devices.emulate("evk4", path)
    cpu = time.process_time()
    with aerflow.devices.open(backend=backend, raw=raw) as camera:
        start = time.perf_counter()
        events = 0
        data_bytes = 0
        dropped = 0
        for status, packet in camera:
            if packet is None:
                continue
            if raw:
                data_bytes += len(packet)
            else:
                events += len(packet.events)
            if status.ring is not None:
                dropped = status.ring.dropped_buffers
        seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = _max_rss_kb() / 1024
    result = {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "dropped": dropped}
    if raw:
        result["bytes"] = data_bytes
    else:
        result["events"] = events
        result["correct"] = events == expected_events
    return result


def _run(path: Path, raw: bool, cores: int, expected: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(path), str(int(raw)), str(cores)]
    command.append(str(expected))
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            result: dict[str, Any] = json.loads(line[len(RESULT) :])
            return result
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        path, raw, cores, expected = argv[1:5]
        print(RESULT + json.dumps(_child(path, raw == "1", int(cores), int(expected))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=1, help="CPUs to run on (0: all)")
    parser.add_argument("--events", type=int, default=20_000_000)
    args = parser.parse_args(argv)
    recording = DatasetBuilder(find_shared_data(None)).dataset("evt3", args.events)
    files = {
        "recording": (recording.path, recording.events),
        "synthetic": _synthetic(BENCH_DIR / "data" / "evt3_synthetic_1280x720_20M.raw"),
    }
    cores = "all" if args.cores == 0 else str(args.cores)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores (running on {cores}), "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    verdicts = []
    for label, (path, events) in files.items():
        data_bytes = _data_bytes(path)
        print(f"{label}: {path.name}, {events / 1e6:.1f} M events, {data_bytes / 1e6:.1f} MB")
        for raw in (False, True):
            runs = [_run(path, raw, args.cores, events) for _ in range(args.repeat)]
            good = [r for r in runs if "error" not in r]
            mode = "raw" if raw else "decoded"
            if not good:
                print(f"  {mode:<8} error: {runs[0]['error']}")
                continue
            seconds = statistics.median(r["seconds"] for r in good)
            rate = data_bytes / seconds / 1e6
            line = f"  {mode:<8} {rate:7.0f} MB/s"
            if not raw:
                line += f"  {events / seconds / 1e6:6.1f} Mev/s"
                line += f"  correct {all(r['correct'] for r in good)}"
            line += f"  CPU {statistics.median(r['cpu'] for r in good):.2f} s"
            line += f"  peak RSS {max(r['peak_mb'] for r in good):.0f} MB"
            line += f"  dropped {max(r['dropped'] for r in good)}"
            print(line)
            if not raw:
                verdict = "PASS" if rate >= TARGET_MB_S else "FAIL"
                verdicts.append(
                    f"  {verdict}  {label}: decoded {rate:.0f} MB/s on {cores} core(s); "
                    f"target {TARGET_MB_S:.0f} MB/s"
                )
    print("\ntargets:")
    print("\n".join(verdicts))
    return 0


def _synthetic(path: Path) -> tuple[Path, int]:
    """1 s of the synthetic sensor at 1280x720 and 20 Mev/s as EVT3 (built once)."""
    import aerflow
    from aerflow.synthetic import SyntheticSensor

    if not path.exists():
        sensor = SyntheticSensor(width=1280, height=720, rate=20e6, duration="1s")
        events = np.concatenate([packet.events for packet in sensor])
        path.parent.mkdir(parents=True, exist_ok=True)
        aerflow.write(path, events, format="evt3", width=1280, height=720)
    with aerflow.open(path) as reader:
        count = sum(len(packet) for packet in reader)
    return path, count


def _data_bytes(path: Path) -> int:
    """Bytes after the RAW header (the words the camera would send)."""
    from aerflow.formats.raw import read_prophesee_header

    with open(path, "rb") as file:
        header = read_prophesee_header(file, str(path))
    return path.stat().st_size - header.data_offset


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
