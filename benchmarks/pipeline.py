"""Pipelines end to end: reading on the consumer's thread ("sync") against reading ahead on a
background thread ("ahead"), and aerflow's CLI against faery's on the same conversion.

Cases, each in a fresh process, median of N runs:
  file -> null          decode only, the packets dropped
  file -> file          decode EVT3, encode EVT2 (both numba kernels, no GIL)
  file -> udp -> null   decode, send over loopback (native wire format) to a receiver process
  cli raw -> aedat4     `aerflow input file X output file Y.aedat4` vs `faery input file X
                        output file Y.aedat4` (wall time of the whole command)

Usage (after benchmarks/setup_env.sh):
    benchmarks/.venv/bin/python benchmarks/pipeline.py [--repeat 5] [--events 20000000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pty
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _datasets import DatasetBuilder, find_shared_data

BENCH_DIR = Path(__file__).resolve().parent
RESULT = "PIPELINE_RESULT "
MODES = ("sync", "ahead")


# -- children: one measurement each -------------------------------------------------------------
def _child(case: str, mode: str, path: str, warmup: str, port: int) -> dict[str, Any]:
    import aerflow
    from aerflow.pipeline import run
    from aerflow.sinks import NullSink

    ahead = None if mode == "sync" else 4
    out_dir = tempfile.mkdtemp(prefix="aerflow-bench-")
    try:

        def once(source: str) -> tuple[int, float]:
            stream = aerflow.open(source)
            if case == "file-null":
                sinks: list[Any] = [NullSink()]
            elif case == "file-file":
                sinks = [
                    aerflow.open(
                        os.path.join(out_dir, "out.raw"),
                        "w",
                        format="evt2",
                        width=stream.properties.width,
                        height=stream.properties.height,
                    )
                ]
            else:
                from aerflow.net import UdpSender

                sinks = [
                    UdpSender(
                        f"127.0.0.1:{port}",
                        wire="aerflow",
                        width=stream.properties.width,
                        height=stream.properties.height,
                    )
                ]
            start = time.perf_counter()
            final = run(stream, *sinks, ahead=ahead)
            return final.events, time.perf_counter() - start

        if case != "file-udp":
            once(warmup)  # JIT caches, imports, first-call costs
        events, seconds = once(path)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {"events": events, "seconds": seconds}


def _receiver(port: int, ready: str) -> dict[str, Any]:
    from aerflow.net import UdpReceiver

    with UdpReceiver(f"127.0.0.1:{port}", wire="aerflow", idle_timeout=5.0) as receiver:
        Path(ready).touch()
        events = 0
        start: float | None = None
        for packet in receiver:
            if start is None:
                start = time.perf_counter()
            events += len(packet.events)
        stats = receiver.stats
    return {"events": events, "lost": getattr(stats, "lost", None)}


# -- driver -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT):
            parsed: dict[str, Any] = json.loads(line[len(RESULT) :])
            return parsed
    tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {completed.returncode}: {tail}"}


def _run_child(*args: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *args]
    return _result(subprocess.run(command, capture_output=True, text=True, timeout=900))


def measure_case(case: str, mode: str, path: Path, warmup: Path) -> dict[str, Any]:
    port = _free_port()
    if case != "file-udp":
        return _run_child(case, mode, str(path), str(warmup), str(port))
    ready = Path(tempfile.mktemp(prefix="aerflow-ready-"))
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(port), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = _run_child(case, mode, str(path), str(warmup), str(port))
    stdout, stderr = receiver.communicate(timeout=120)
    ready.unlink(missing_ok=True)
    received = _result(subprocess.CompletedProcess([], receiver.returncode, stdout, stderr))
    sent["received"] = received.get("events")
    sent["lost"] = received.get("lost")
    return sent


def measure_cli(tool: str, path: Path) -> dict[str, Any]:
    executable = Path(sys.executable).parent / tool
    if not executable.exists():
        return {"error": "not installed"}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.aedat4"
        command = [str(executable), "input", "file", str(path), "output", "file", str(out)]
        # Both run on a pseudo-terminal: faery's CLI fails when its output is not one.
        controller, terminal = pty.openpty()
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=terminal, stderr=terminal)
        os.close(terminal)
        output = b""
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(controller, 1 << 16):
                output += chunk
        process.wait(timeout=900)
        seconds = time.perf_counter() - start
        os.close(controller)
        if process.returncode:
            tail = (output.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            return {"error": f"exit {process.returncode}: {tail}"}
        return {"seconds": seconds, "bytes": out.stat().st_size}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        case, mode, path, warmup, port = argv[1:6]
        print(RESULT + json.dumps(_child(case, mode, path, warmup, int(port))), flush=True)
        return 0
    if argv[:1] == ["--receiver"]:
        print(RESULT + json.dumps(_receiver(int(argv[1]), argv[2])), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--cases", default="file-null,file-file,file-udp,cli")
    args = parser.parse_args(argv)
    dataset = DatasetBuilder(find_shared_data(None)).dataset("evt3", args.events)
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"file: {dataset.path.name}, {dataset.events / 1e6:.1f} M events (EVT3)")
    cases = args.cases.split(",")
    for case in (c for c in cases if c != "cli"):
        for mode in MODES:
            runs = [
                measure_case(case, mode, dataset.path, dataset.tiny_path)
                for _ in range(args.repeat)
            ]
            good = [r for r in runs if "error" not in r]
            if not good:
                print(f"  {case:<10} {mode:<6} error: {runs[0]['error']}")
                continue
            rate = statistics.median(r["events"] / r["seconds"] / 1e6 for r in good)
            extra = ""
            if case == "file-udp":
                lost = [r.get("lost") for r in good]
                received = [r.get("received") for r in good]
                extra = f"  received {received}  lost {lost}"
            print(f"  {case:<10} {mode:<6} {rate:7.1f} Mev/s{extra}")
    if "cli" in cases:
        for tool in ("aerflow", "faery"):
            runs = [measure_cli(tool, dataset.path) for _ in range(args.repeat)]
            good = [r for r in runs if "error" not in r]
            if not good:
                print(f"  cli raw->aedat4 {tool:<8} {runs[0]['error']}")
                continue
            seconds = statistics.median(r["seconds"] for r in good)
            print(
                f"  cli raw->aedat4 {tool:<8} {seconds:6.2f} s "
                f"({dataset.events / seconds / 1e6:.1f} Mev/s, {good[0]['bytes'] / 1e6:.0f} MB)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
