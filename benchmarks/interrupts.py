"""How long Ctrl-C takes to stop live and paced pipelines, with every core busy.

    python benchmarks/interrupts.py [--repeat N] [--idle]

Each pipeline is started, given time to reach its steady state (outputs open, the first
packet written), sent SIGINT, and timed until the process has ended. The script checks
what must hold as well: exit status 130 and no file left in the output folder. By default
one spinning process per core runs meanwhile, as on a machine running other jobs; `--idle`
leaves the cores alone. Prints the median and worst latency per pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SLOW_PACE = ["filter", "pace", "--speed", "0.00001"]
"""40 ms of event time take 4000 s: only a stop that does not wait for the source ends such a
pipeline quickly."""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _written(folder: Path) -> int:
    total = 0
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def pipelines(
    folder: Path, listener: socket.socket
) -> dict[str, tuple[list[str], Callable[[], bool]]]:
    """Name -> (arguments, whether it is ready to be interrupted). Paced pipelines also send
    to ``listener``: its first datagram tells that the first event passed and the second is
    being waited for."""
    two = folder / "two.csv"
    two.write_text("t,x,y,on\n0,1,1,1\n40000,2,2,0\n")
    paced = ["input", "file", str(two), "--width", "64", "--height", "64", *SLOW_PACE]
    udp = ["output", "udp", f"127.0.0.1:{listener.getsockname()[1]}"]
    out = folder / "out"
    out.mkdir()
    port = _free_udp_port()
    started = time.monotonic()
    return {
        "csv | pace | file": (
            [*paced, *udp, "output", "file", str(out / "a.raw")],
            lambda: _received(listener),
        ),
        "csv | pace | tee (raw, aedat4, null)": (
            [
                *paced,
                *udp,
                "output",
                "file",
                str(out / "a.raw"),
                "output",
                "file",
                str(out / "b.aedat4"),
                "output",
                "null",
            ],
            lambda: _received(listener),
        ),
        "udp (silent) | file": (
            [
                "input",
                "udp",
                f"127.0.0.1:{port}",
                "--width",
                "640",
                "--height",
                "480",
                "output",
                "file",
                str(out / "a.raw"),
            ],
            lambda: any(out.iterdir()) and time.monotonic() - started > 1.0,
        ),
        "camera --emulate evk4 --loop | file": (
            [
                "input",
                "camera",
                "--emulate",
                "evk4",
                "--loop",
                "output",
                "file",
                str(out / "a.raw"),
            ],
            lambda: _written(out) > 256 * 1024,
        ),
    }


def _received(listener: socket.socket) -> bool:
    try:
        return bool(listener.recv(65536))
    except TimeoutError:
        return False


def measure(name: str, repeat: int) -> list[float]:
    latencies = []
    for _ in range(repeat):
        with (
            tempfile.TemporaryDirectory() as directory,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener,
        ):
            listener.bind(("127.0.0.1", 0))
            listener.settimeout(0.01)
            folder = Path(directory)
            args, ready = pipelines(folder, listener)[name]
            command = [sys.executable, "-m", "aerflow", "--quiet", *args]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            limit = time.monotonic() + 120
            while not ready():
                if process.poll() is not None or time.monotonic() > limit:
                    process.kill()
                    raise SystemExit(f"{name}: never got ready ({process.returncode})")
                time.sleep(0.01)
            sent = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
            latencies.append(time.monotonic() - sent)
            stderr = process.stderr.read().decode() if process.stderr else ""
            left = list((folder / "out").iterdir())
            if process.returncode != 130 or left:
                raise SystemExit(f"{name}: exit {process.returncode}, left {left}: {stderr}")
            if process.stderr:
                process.stderr.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--idle", action="store_true", help="no spinning processes")
    args = parser.parse_args()
    spinners = (
        []
        if args.idle
        else [
            subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 2)
        ]
    )
    try:
        print(f"cores: {os.cpu_count()}, {'idle' if args.idle else 'all busy with spinners'}")
        with tempfile.TemporaryDirectory() as directory, socket.socket() as unused:
            names = list(pipelines(Path(directory), unused))
        for name in names:
            latencies = measure(name, args.repeat)
            print(
                f"{name:<45} median {statistics.median(latencies):.3f} s, "
                f"worst {max(latencies):.3f} s (n={len(latencies)}, exit 130, nothing left)"
            )
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
