"""Prophesee HDF5 (ECF) decoding and encoding: aerflow against evlib, evutils and h5py with
the official ECF filter plugin.

Builds a file of >= 20 M events by tiling the real Gen3 EVT 2.0 recording
(shared/data/evt2/evt2_gen3_2020-09-14.raw) in time (copy k shifted by k * (t_last -
t_first + 1)), written by aerflow's writer (OpenEB's layout: 16,384-event ECF chunks stored
with direct chunk writes). Each measurement runs in a fresh process (this script re-invoked
with --measure) after an untimed warm-up on a small file, and reports wall seconds, CPU
seconds (user + system, all threads), peak RSS (VmHWM) and whether the decoded events equal
the tiled source (sha256 of t, x, y as int64 and p > 0 as uint8, the MANIFEST digest).

Decoders:
    aerflow          aerflow.read(path)                          (2 threads by default)
    aerflow-1thread  aerflow.read(path, threads=1)
    aerflow-iter     for packet in aerflow.open(path): ...       (packets dropped)
    evlib            evlib.formats.load_events(path, sort=False)  (its own ECF decoder)
    h5py-plugin      h5py.File(path)["CD/events"][:]             (needs --plugin-dir)
    evutils          EventReader(path, mode="all").read_all()    (reads through the plugin)
    baseline         aerflow.read(path) of another aerflow tree  (needs --baseline-src)
    baseline-1thread aerflow.read(path, threads=1) of that tree
Encoders (the events in memory, to a new file):
    aerflow          aerflow.write(path, events)
    h5py-plugin      create_dataset(..., compression=0x8ECF) through the plugin

The official plugin (github.com/prophesee-ai/hdf5_ecf) is built separately; pass the folder
holding libH5Zecf.so with --plugin-dir (it is put on HDF5_PLUGIN_PATH for those tools only).
--baseline-src names the src folder of an earlier aerflow (e.g. from `git archive`), put
first on PYTHONPATH for the baseline tools, so that old and new run under the same load.

Usage:
    .venv/bin/python benchmarks/hdf5.py [--repeat 3] [--events 20000000]
        [--plugin-dir DIR] [--baseline-src DIR]
        [--tools aerflow,aerflow-1thread,aerflow-iter,evlib,h5py-plugin,evutils,baseline,...]
        [--encoders aerflow,h5py-plugin] [--json results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
SAMPLE = "evt2/evt2_gen3_2020-09-14.raw"
RESULT_PREFIX = "BENCH_RESULT "
DECODERS = ("aerflow", "aerflow-1thread", "aerflow-iter", "evlib", "h5py-plugin", "evutils")
BASELINES = {"baseline": "aerflow", "baseline-1thread": "aerflow-1thread"}
ENCODERS = ("aerflow", "h5py-plugin")
PLUGIN_TOOLS = {"h5py-plugin", "evutils"}
CD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "p", "t"],
        "formats": ["<u2", "<u2", "<i2", "<i8"],
        "offsets": [0, 2, 4, 8],
        "itemsize": 16,
    }
)


def _shared_data() -> Path:
    env = os.environ.get("AERFLOW_SHARED_DATA")
    if env:
        return Path(env)
    for parent in BENCH_DIR.parents:
        if (parent / "shared" / "data" / "MANIFEST.json").is_file():
            return parent / "shared" / "data"
    raise SystemExit("shared/data not found: set AERFLOW_SHARED_DATA")


def digest(t: Any, x: Any, y: Any, p: Any) -> str:
    h = hashlib.sha256()
    for column in (t, x, y):
        h.update(np.asarray(column).astype("<i8").tobytes())
    h.update((np.asarray(p) > 0).astype("u1").tobytes())
    return h.hexdigest()


def tiled_events(n: int) -> np.ndarray:
    import aerflow

    sample = aerflow.read(_shared_data() / SAMPLE)
    span = int(sample["t"][-1]) - int(sample["t"][0]) + 1
    copies = -(-n // len(sample))
    events = np.empty(copies * len(sample), aerflow.EVENTS_DTYPE)
    for k in range(copies):
        part = events[k * len(sample) : (k + 1) * len(sample)]
        part[:] = sample
        part["t"] += np.uint64(k * span)
    return events


# -- one measurement (in its own process) ---------------------------------------------------------


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _system_cpu() -> float:
    """The kernel's share (page faults of fresh output memory, most of it)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _decode(tool: str, path: Path) -> tuple[Any, Any, Any, Any] | str:
    """The columns decoded (or, iterating, a running digest)."""
    if tool.startswith("aerflow"):
        import aerflow

        if tool == "aerflow-iter":
            # Only the time inside the iterator counts (the digest of each packet is not
            # the decoder's work): returned in the digest string's head.
            h = [hashlib.sha256() for _ in range(4)]
            count = 0
            inside = inside_cpu = 0.0
            with aerflow.open(path) as reader:
                packets = iter(reader)
                while True:
                    start, cpu = time.perf_counter(), _cpu()
                    packet = next(packets, None)
                    inside += time.perf_counter() - start
                    inside_cpu += _cpu() - cpu
                    if packet is None:
                        break
                    e = packet.events
                    count += len(e)
                    for i, c in enumerate((e["t"], e["x"], e["y"])):
                        h[i].update(c.astype("<i8").tobytes())
                    h[3].update(e["on"].astype("u1").tobytes())
            return f"{inside!r},{inside_cpu!r}|{count}:" + "".join(x.hexdigest() for x in h)
        events = aerflow.read(path, threads=1 if tool == "aerflow-1thread" else None)
        return events["t"], events["x"], events["y"], events["on"]
    if tool == "evlib":
        import evlib

        frame = evlib.formats.load_events(str(path), sort=False).collect()
        t = frame["t"].to_numpy().astype("timedelta64[us]").astype(np.int64)
        return t, frame["x"].to_numpy(), frame["y"].to_numpy(), frame["polarity"].to_numpy()
    if tool == "h5py-plugin":
        import h5py

        with h5py.File(path, "r") as file:
            records = file["CD/events"][:]
        return records["t"], records["x"], records["y"], records["p"]
    if tool == "evutils":
        from evutils.io import EventReader

        events = EventReader(path, mode="all").read_all()
        return events.t, events.x, events.y, events.p
    raise SystemExit(f"unknown decoder {tool}")


def _encode(tool: str, events: np.ndarray, path: Path) -> None:
    if tool == "aerflow":
        import aerflow

        aerflow.write(path, events, format="hdf5", width=640, height=480)
    elif tool == "h5py-plugin":
        import h5py

        records = np.zeros(len(events), CD_DTYPE)
        for name in ("x", "y", "t"):
            records[name] = events[name]
        records["p"] = events["on"]
        with h5py.File(path, "w") as file:
            file.create_dataset(
                "CD/events", data=records, chunks=(16384,), maxshape=(None,), compression=0x8ECF
            )
    else:
        raise SystemExit(f"unknown encoder {tool}")


def measure(args: argparse.Namespace) -> None:
    tool, path = BASELINES.get(args.measure, args.measure), Path(args.path)
    if args.mode == "decode":
        _decode(tool, Path(args.warmup))
        cpu, start, system = _cpu(), time.perf_counter(), _system_cpu()
        decoded = _decode(tool, path)
        seconds, cpu_seconds, peak = time.perf_counter() - start, _cpu() - cpu, _peak_rss_kb()
        system = _system_cpu() - system  # iterating: with the digests' copies
        if isinstance(decoded, str):
            inside, check = decoded.split("|")
            count = int(check.split(":")[0])
            seconds, cpu_seconds = (float(v) for v in inside.split(","))
        else:
            count, check = len(decoded[0]), digest(*decoded)
    else:
        events = np.load(args.warmup)
        small = BENCH_DIR / "data" / f".warmup-{tool}.hdf5"
        _encode(tool, events[:100_000], small)
        events = np.load(args.events_file)
        base = _peak_rss_kb()
        cpu, start, system = _cpu(), time.perf_counter(), _system_cpu()
        _encode(tool, events, path)
        seconds, cpu_seconds, peak = time.perf_counter() - start, _cpu() - cpu, _peak_rss_kb()
        system = _system_cpu() - system
        count, check = len(events), str(path.stat().st_size)
        peak -= base
    result: dict[str, Any] = {"events": count, "seconds": seconds, "cpu_seconds": cpu_seconds}
    result["system_seconds"] = system
    result.update({"peak_rss_kb": peak, "check": check})
    print(RESULT_PREFIX + json.dumps(result))


# -- the driver ----------------------------------------------------------------------------------


def _run(
    command: list[str], plugin_dir: str | None, tool: str, baseline: str | None = None
) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("HDF5_PLUGIN_PATH", None)
    if tool in BASELINES:
        if not baseline:
            raise RuntimeError("needs --baseline-src")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))
    if tool in PLUGIN_TOOLS:
        if not plugin_dir:
            raise RuntimeError("needs --plugin-dir")
        env["HDF5_PLUGIN_PATH"] = plugin_dir
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError((done.stderr or done.stdout).strip().splitlines()[-1])


def _iter_digest(events: np.ndarray) -> str:
    parts = [hashlib.sha256(events[n].astype("<i8").tobytes()) for n in ("t", "x", "y")]
    parts.append(hashlib.sha256(events["on"].astype("u1").tobytes()))
    return f"{len(events)}:" + "".join(p.hexdigest() for p in parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--plugin-dir")
    parser.add_argument("--baseline-src")
    parser.add_argument("--tools", default=",".join(DECODERS))
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    parser.add_argument("--json")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", help=argparse.SUPPRESS)
    parser.add_argument("--events-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return

    import aerflow

    DATA_DIR.mkdir(exist_ok=True)
    events = tiled_events(args.events)
    full = DATA_DIR / f"ecf-{len(events)}.hdf5"
    small = DATA_DIR / "ecf-small.hdf5"
    aerflow.write(full, events, format="hdf5", width=640, height=480)
    aerflow.write(small, events[:200_000], format="hdf5", width=640, height=480)
    arrays = DATA_DIR / f"ecf-{len(events)}.npy"
    np.save(arrays, events)
    np.save(DATA_DIR / "ecf-small.npy", events[:200_000])
    expected = digest(events["t"], events["x"], events["y"], events["on"])
    expected_iter = _iter_digest(events)
    print(
        f"{len(events):,} events, {full.stat().st_size / 1e6:.1f} MB "
        f"({full.stat().st_size / len(events):.2f} B/event); {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    script = [sys.executable, str(Path(__file__).resolve())]
    results: dict[str, Any] = {"events": len(events), "decode": {}, "encode": {}}
    for mode, tools in (("decode", args.tools), ("encode", args.encoders)):
        for tool in [t for t in tools.split(",") if t]:
            runs = []
            for _ in range(args.repeat):
                command = [*script, "--measure", tool, "--mode", mode]
                if mode == "decode":
                    command += ["--path", str(full), "--warmup", str(small)]
                else:
                    out = DATA_DIR / f"encoded-{tool}.hdf5"
                    command += ["--path", str(out), "--warmup", str(DATA_DIR / "ecf-small.npy")]
                    command += ["--events-file", str(arrays)]
                try:
                    runs.append(_run(command, args.plugin_dir, tool, args.baseline_src))
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    print(f"{mode} {tool}: failed: {error}")
                    break
            if not runs:
                continue
            wall = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu_seconds"] for r in runs)
            system = statistics.median(r["system_seconds"] for r in runs)
            peak = max(r["peak_rss_kb"] for r in runs) / 1024
            if mode == "decode":
                want = expected_iter if tool.endswith("-iter") else expected
                exact = all(r["check"] == want for r in runs)
                note = "exact" if exact else "DIFFERS"
            else:
                note = f"{int(runs[0]['check']) / 1e6:.1f} MB"
            rate = len(events) / wall / 1e6
            print(
                f"{mode:6} {tool:16} {rate:7.1f} Mev/s  wall {wall:6.3f} s  cpu {cpu:6.3f} s "
                f"(sys {system:5.3f})  peak {peak:7.0f} MiB  {note}  "
                f"(load {os.getloadavg()[0]:.2f})"
            )
            results[mode][tool] = {"mev_s": rate, "wall": wall, "cpu": cpu, "peak_mib": peak}
            results[mode][tool]["system"] = system
            results[mode][tool]["note"] = note
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
