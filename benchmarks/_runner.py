"""One measurement, in a fresh process: python _runner.py TOOL FORMAT PATH [options].

Imports the tool, does one untimed warm-up decode of a tiny file of the same format
(numba JIT compilation / cache loading, lazy imports, first-call costs), then times
one decode of PATH with time.perf_counter and prints one line

    BENCH_RESULT {"events": ..., "seconds": ..., "cpu_seconds": ..., "peak_rss_kb": ..., ...}

"cpu_seconds" is the process's user + system time over the same span, all threads together:
a decoder that is fast only by keeping both cores busy shows it there.

Peak RSS is VmHWM (see _max_rss_kb) taken right after the timed decode, before the
checksum is computed (the checksum may allocate temporaries).

In chunked mode the packets are consumed one by one and dropped; "seconds" is the
time spent inside the iterator (fetching each next packet), so the checksum work
done on each packet is not counted, while "wall_seconds" includes it.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from _checksum import ChecksumAccumulator
from _peers import TOOLS, Tool, import_tool, version

RESULT_PREFIX = "BENCH_RESULT "


def _max_rss_kb() -> int:
    """Peak resident set size of this process so far, in KiB.

    VmHWM belongs to this process's own address space. ru_maxrss is only a fallback:
    on Linux it also counts the parent's RSS at fork time (it survives exec), which
    would charge the benchmark driver's memory to every tool.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _full(tool: Tool, path: Path, fmt: str, width: int, height: int) -> dict[str, Any]:
    baseline = _max_rss_kb()
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    decoded = tool.read(path, fmt, width, height)
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu_start
    peak = _max_rss_kb()
    accumulator = ChecksumAccumulator()
    accumulator.add(*tool.columns(decoded))
    checksum = accumulator.result()
    return {
        "events": checksum.n,
        "seconds": seconds,
        "wall_seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": peak,
        "checksum": checksum.to_dict(),
    }


def _chunked(
    tool: Tool, path: Path, fmt: str, width: int, height: int, chunk_size: int | None
) -> dict[str, Any]:
    assert tool.chunks is not None
    baseline = _max_rss_kb()
    accumulator = ChecksumAccumulator()
    packets = 0
    inside = 0.0
    cpu_inside = 0.0
    start = time.perf_counter()
    iterator = iter(tool.chunks(path, fmt, width, height, chunk_size))
    while True:
        before = time.perf_counter()
        cpu_before = _cpu_seconds()
        chunk = next(iterator, None)
        inside += time.perf_counter() - before
        cpu_inside += _cpu_seconds() - cpu_before
        if chunk is None:
            break
        packets += 1
        accumulator.add(*tool.columns(chunk))
        del chunk
    wall = time.perf_counter() - start
    checksum = accumulator.result()
    return {
        "events": checksum.n,
        "seconds": inside,
        "wall_seconds": wall,
        "cpu_seconds": cpu_inside,
        "packets": packets,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": _max_rss_kb(),
        "checksum": checksum.to_dict(),
    }


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    tool = TOOLS[args.tool]
    import_tool(tool)
    if args.mode == "chunked":
        if args.warmup is not None:
            for _ in tool.chunks(args.warmup, args.format, args.width, args.height, None):  # type: ignore[misc]
                pass
        result = _chunked(tool, args.path, args.format, args.width, args.height, args.chunk_size)
    else:
        if args.warmup is not None:
            tool.read(args.warmup, args.format, args.width, args.height)
        result = _full(tool, args.path, args.format, args.width, args.height)
    result["version"] = version(tool)
    return result


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("format")
    parser.add_argument("path", type=Path)
    parser.add_argument("--mode", choices=("full", "chunked"), default="full")
    parser.add_argument("--warmup", type=Path, help="tiny file of the same format")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument(
        "--chunk-size", type=int, help="bytes per chunk (aerflow) or events (expelliarmus)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    try:
        result = _measure(args)
    except Exception as error:  # reported to the parent, which prints it in the table
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
