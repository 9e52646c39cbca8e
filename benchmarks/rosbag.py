"""ROS bag decoding throughput and peak memory: aerflow against rosbags message by message.

Builds, with aerflow's writer, a ROS 1 (or, with --ros2, a ROS 2 MCAP) bag of N events
(default 20 M, 640x480, random pixels, about 10 Mev/s of event time) twice: as
``event_camera_msgs/EventPacket`` ``evt3`` messages and as ``dvs_msgs/EventArray`` messages,
1 ms each, and the same events as a Prophesee ``.raw`` EVT 3.0 file. Then decodes each, every
measurement in its own fresh process (after an untimed warm-up on a small bag), ``--repeat``
rounds of all of them in turn, and prints the medians of wall time, CPU-seconds, Mev/s and
peak RSS (VmHWM):

    aerflow          aerflow.open(bag).read()                  one array
    aerflow-chunked  packets iterated and dropped               bounded memory
    aerflow-raw      aerflow.open(raw).read()                   the .raw EVT 3.0 baseline
    rosbags          every message deserialised by rosbags' type store, then (dvs_msgs)
                     its events gathered into a NumPy array the way users do today,
                     event by event; for evt3 only the deserialisation is timed (rosbags
                     does not decode EVT 3.0), so its figure is an upper bound

Usage:
    .venv/bin/python benchmarks/rosbag.py [--events 20000000] [--peer-events 2000000]
        [--ros2] [--repeat 3] [--tools aerflow,aerflow-raw] [--folder /tmp/aerflow-rosbag-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULT = "BENCH_RESULT "


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _events(n: int, seed: int = 0) -> Any:
    import aerflow

    rng = np.random.default_rng(seed)
    events = np.empty(n, aerflow.EVENTS_DTYPE)
    events["t"] = 1_000_000 + np.cumsum(rng.random(n) < 0.1)  # ~10 Mev/s
    events["x"] = rng.integers(0, 640, n)
    events["y"] = rng.integers(0, 480, n)
    events["on"] = rng.integers(0, 2, n).astype(bool)
    return events


def _build(folder: Path, n: int, ros2: bool, suffix: str = "") -> dict[str, Path]:
    import aerflow

    folder.mkdir(parents=True, exist_ok=True)
    ext = ".mcap" if ros2 else ".bag"
    paths = {
        "evt3": folder / f"evt3{suffix}{ext}",
        "dvs": folder / f"dvs{suffix}{ext}",
        "raw": folder / f"events{suffix}.raw",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    events = _events(n)
    aerflow.write(paths["evt3"], events, width=640, height=480)
    aerflow.write(paths["dvs"], events, message_type="dvs_msgs/EventArray", width=640, height=480)
    aerflow.write(paths["raw"], events, width=640, height=480)
    return paths


def _rosbags_decode(path: Path, kind: str, ros2: bool) -> int:
    """What users write today: rosbags deserialises each message into Python objects."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.reference.ros import typestore

    store = typestore(2 if ros2 else 1)
    if ros2:
        from rosbags.rosbag2 import Reader

        deserialize = store.deserialize_cdr
    else:
        from rosbags.rosbag1 import Reader  # type: ignore[assignment]

        deserialize = store.deserialize_ros1
    total = 0
    with Reader(path) as reader:
        for connection, _, raw in reader.messages():
            message = deserialize(raw, connection.msgtype)
            if kind == "dvs":
                rows = np.array(
                    [
                        (e.ts.sec * 1_000_000 + e.ts.nanosec // 1000, e.x, e.y, e.polarity)
                        for e in message.events
                    ],
                    np.int64,
                )
                total += len(rows)
            else:
                total += len(message.events)  # payload bytes: rosbags stops here
    return total


def measure(tool: str, kind: str, path: Path, warm: Path, ros2: bool) -> dict[str, Any]:
    import aerflow

    def run(target: Path) -> int:
        if tool == "rosbags":
            return _rosbags_decode(target, kind, ros2)
        if tool == "aerflow-chunked":
            with aerflow.open(target) as reader:
                return sum(len(p.events) for p in reader)
        with aerflow.open(target) as reader:
            return len(reader.read().events)

    run(warm)
    known = None
    if tool == "rosbags" and kind == "evt3":  # counted untimed: rosbags decodes no EVT 3.0
        with aerflow.open(path) as reader:
            known = len(reader.read().events)
    start, cpu_start = time.perf_counter(), time.process_time()
    count = run(path) if known is None else (run(path), known)[1]
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # user + system, every thread
    return {
        "events": count,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_kb": _peak_rss_kb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--peer-events", type=int, default=2_000_000)
    parser.add_argument("--ros2", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each, alternating; medians reported"
    )
    parser.add_argument(
        "--tools",
        default="aerflow,aerflow-chunked,aerflow-raw,rosbags",
        help="comma-separated subset of the tools to run",
    )
    parser.add_argument("--folder", type=Path, default=Path("/tmp/aerflow-rosbag-bench"))
    parser.add_argument("--measure", nargs=4, metavar=("TOOL", "KIND", "PATH", "WARM"))
    args = parser.parse_args()
    if args.measure:
        tool, kind, path, warm = args.measure
        result = measure(tool, kind, Path(path), Path(warm), args.ros2)
        print(RESULT + json.dumps(result))
        return
    tag = "ros2" if args.ros2 else "ros1"
    big = _build(args.folder / tag, args.events, args.ros2)
    peer = _build(args.folder / tag, args.peer_events, args.ros2, suffix="-peer")
    warm = _build(args.folder / tag, 20_000, args.ros2, suffix="-warm")
    runs = [
        ("aerflow", "evt3", big["evt3"], warm["evt3"]),
        ("aerflow-chunked", "evt3", big["evt3"], warm["evt3"]),
        ("aerflow-raw", "evt3", big["raw"], warm["raw"]),
        ("rosbags", "evt3", peer["evt3"], warm["evt3"]),
        ("aerflow", "dvs", big["dvs"], warm["dvs"]),
        ("aerflow-chunked", "dvs", big["dvs"], warm["dvs"]),
        ("rosbags", "dvs", peer["dvs"], warm["dvs"]),
    ]
    tools = set(args.tools.split(","))
    runs = [r for r in runs if r[0] in tools]
    print(
        f"{tag}: {args.events:,} events ({args.peer_events:,} for rosbags); load {os.getloadavg()}"
    )
    # Round after round of every measurement, so that a change of load hits them all alike.
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(runs))}
    for _ in range(args.repeat):
        for i, (tool, kind, path, warm_path) in enumerate(runs):
            command = [sys.executable, __file__, "--measure", tool, kind, str(path), str(warm_path)]
            if args.ros2:
                command.append("--ros2")
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            line = next(x for x in out.splitlines() if x.startswith(RESULT))
            results[i].append(json.loads(line[len(RESULT) :]))
    print(f"load after: {os.getloadavg()}; medians of {args.repeat} runs")
    for i, (tool, kind, _, _) in enumerate(runs):
        seconds = statistics.median(r["seconds"] for r in results[i])
        cpu = statistics.median(r["cpu_seconds"] for r in results[i])
        rss = statistics.median(r["peak_rss_kb"] for r in results[i]) / 1024
        count = results[i][0]["events"]
        each = ", ".join(f"{r['seconds']:.3f}" for r in results[i])
        print(
            f"{kind:<5} {tool:<16} {count:>11,} ev {seconds:8.3f} s ({cpu:.3f} CPU-s) "
            f"{count / seconds / 1e6:8.2f} Mev/s  peak RSS {rss:8.1f} MiB  "
            f"[{each} s]"
        )


if __name__ == "__main__":
    main()
