"""Rendering a recording into an MP4 video: aerflow against faery on the same file.

The file: 10 s of aerflow's SyntheticSensor at 1280x720 (a spinning bar plus 5 % noise,
``--rate`` events per second), written as EVT 3.0 to ``benchmarks/data/`` once. Each tool
renders it to H.264 MP4 at 60 fps with an exponential decay of two frame periods, in a fresh
process, ``--repeat`` times; the median wall time is reported with the CPU time of the
process (all its threads), the real-time factor (video duration / wall time; above 1 is
faster than real time), the frames decoded back from the file and its size.

Cases:
  aerflow            aerflow's defaults: preset "events" (x264 ultrafast + mbtree, lookahead
                     10, CABAC, deblocking), crf 23, no B-frames
  aerflow-veryfast   x264 preset veryfast, crf 23, no B-frames
  faery              faery's defaults: preset medium, crf 17, baseline profile
  faery-veryfast     faery with preset veryfast, crf 23 (baseline profile)

Usage (after benchmarks/setup_env.sh and pip install -e '.[video]' in benchmarks/.venv):
    benchmarks/.venv/bin/python benchmarks/render.py [--repeat 3] [--rate 2e6] [--cases ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
RESULT = "RENDER_RESULT "
WIDTH, HEIGHT, FPS = 1280, 720, 60.0
TAU_US = round(2 * 1e6 / FPS)  # two frame periods, aerflow's default
CASES = ("aerflow", "aerflow-veryfast", "faery", "faery-veryfast")


# -- the file -----------------------------------------------------------------------------------
def build_file(rate: float, duration: str) -> Path:
    """The benchmark recording, built once (to a temporary name, then renamed)."""
    import aerflow
    from aerflow.synthetic import SyntheticSensor

    path = DATA_DIR / f"render-synthetic-{WIDTH}x{HEIGHT}-{duration}-{rate / 1e6:g}Mevs.raw"
    if path.is_file() and path.stat().st_size > 0:
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    print(f"building {path.name} ...", file=sys.stderr, flush=True)
    partial = path.with_suffix(".building.raw")
    sensor = SyntheticSensor(WIDTH, HEIGHT, duration=duration, rate=rate, packet_duration="50ms")
    with aerflow.open(partial, "w", format="evt3", width=WIDTH, height=HEIGHT) as writer:
        for packet in sensor:
            writer.write(packet)
    os.replace(partial, path)
    return path


# -- children: one render each ------------------------------------------------------------------
def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(case: str, source: str, output: str) -> dict[str, Any]:
    if case.startswith("aerflow"):
        import aerflow.render
        from aerflow.synthetic import SyntheticSensor

        preset = "veryfast" if case == "aerflow-veryfast" else "events"
        # Untimed warm-up: numba's cached kernels, PyAV's libraries.
        warm = os.path.join(os.path.dirname(output), "warm.mp4")
        aerflow.render.write_video(SyntheticSensor(64, 48, duration="50ms"), warm)

        def render() -> None:
            aerflow.render.write_video(source, output, fps=FPS, tau=TAU_US, preset=preset)

    else:
        import faery

        options = {"crf": 23.0, "preset": "veryfast"} if case == "faery-veryfast" else {}

        def render() -> None:
            (
                faery.events_stream_from_file(source)
                .regularize(frequency_hz=FPS)
                .render(
                    decay="exponential",
                    tau=f"00:00:00.{TAU_US:06d}",
                    colormap=faery.colormaps.starry_night,
                )
                .to_file(output, frame_rate=FPS, **options)
            )

    load = os.getloadavg()[0]
    cpu = _cpu_seconds()
    started = time.perf_counter()
    render()
    wall = time.perf_counter() - started
    return {"wall": wall, "cpu": _cpu_seconds() - cpu, "load": load}


def _decoded(path: Path) -> tuple[int, float, tuple[int, int]]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        rate = float(stream.average_rate or 0)
        size = (stream.codec_context.width, stream.codec_context.height)
    return frames, frames / rate if rate else 0.0, size


def measure(case: str, source: Path, repeat: int) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="aerflow-render-") as folder:
        output = Path(folder) / f"{case}.mp4"
        for _ in range(repeat):
            completed = subprocess.run(
                [sys.executable, __file__, "--child", case, str(source), str(output)],
                capture_output=True,
                text=True,
            )
            lines = [x for x in completed.stdout.splitlines() if x.startswith(RESULT)]
            if completed.returncode or not lines:
                raise RuntimeError(f"{case} failed:\n{completed.stderr[-3000:]}")
            runs.append(json.loads(lines[-1][len(RESULT) :]))
        frames, seconds, size = _decoded(output)
        megabytes = output.stat().st_size / 1e6
    wall = statistics.median(r["wall"] for r in runs)
    return {
        "case": case,
        "wall": wall,
        "cpu": statistics.median(r["cpu"] for r in runs),
        "load": statistics.median(r["load"] for r in runs),
        "frames": frames,
        "video_seconds": seconds,
        "size": size,
        "megabytes": megabytes,
        "realtime": seconds / wall if wall else 0.0,
        "runs": runs,
    }


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(RESULT + json.dumps(_child(*argv[1:4])), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2e6, help="events per second")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", help="write every run here")
    args = parser.parse_args(argv)
    source = build_file(args.rate, args.duration)
    print(f"file: {source.name} ({source.stat().st_size / 1e6:.0f} MB)")
    print(f"machine: {_machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"{'case':<18} {'wall s':>7} {'x real time':>11} {'cpu s':>7} {'load':>5} "
        f"{'frames':>6} {'video s':>7} {'size':>9} {'MB':>6}"
    )
    results = []
    for case in args.cases.split(","):
        if case.startswith("faery") and not _installed("faery"):
            print(f"{case:<18} not installed")
            continue
        result = measure(case, source, args.repeat)
        results.append(result)
        width, height = result["size"]
        print(
            f"{case:<18} {result['wall']:>7.2f} {result['realtime']:>11.2f} "
            f"{result['cpu']:>7.2f} {result['load']:>5.1f} {result['frames']:>6} "
            f"{result['video_seconds']:>7.2f} {f'{width}x{height}':>9} "
            f"{result['megabytes']:>6.1f}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
