"""``aerflow batch`` and :mod:`aerflow.batch` on real Dask clusters.

A scheduler and two workers run as separate processes on loopback (``dask scheduler``,
``dask worker``), and ``aerflow batch --scheduler`` runs as a user runs it, over a folder
tree of recordings in several formats written here. The reference for every output is the
ordinary command line run on that one file (``aerflow input file PATH <same pipeline>``,
in this process). The same runs through a ``LocalCluster`` (``jobs=2``). Workers are
killed with SIGKILL while they hold a half-written output open, found through
/proc/PID/fd, so the kill is known to land mid-file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aerflow
from aerflow.cli.main import run as cli_run
from aerflow.synthetic import rotating_bar

from .helpers import assert_same_events, uniform_events
from .processes import PATIENCE, child, interrupt, wait_until

distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")
import dask  # noqa: E402  (installed with distributed)

pytest.importorskip("pandas", reason="pandas not installed")
import aerflow.batch  # noqa: E402
from aerflow.batch.placeholders import Input, expand, remove_stale_temporaries  # noqa: E402

WIDTH, HEIGHT = 240, 180
DASK = Path(sys.executable).with_name("dask")
PIPELINE = ["filter", "refractory", "1ms", "output", "file", "{relpath}.aedat4"]
PIPELINE += ["output", "file", "{relpath}.es"]
DETERMINISTIC = (".aedat4", ".es")  # writers whose bytes depend only on the events


# -- recordings ---------------------------------------------------------------------------------
def _random_events(count: int, duration_us: int, seed: int) -> np.ndarray:
    return uniform_events(count, duration_us, seed, WIDTH, HEIGHT)


# (relative path, format, events): nested folders, several formats, sizes that differ.
def _recordings() -> list[tuple[str, str, np.ndarray]]:
    return [
        ("a/bar.raw", "evt3", rotating_bar(WIDTH, HEIGHT, 60_000, seed=1)),
        ("a/old.raw", "evt2", _random_events(30_000, 200_000, seed=2)),
        ("a/b/deep.aedat4", "aedat4", rotating_bar(WIDTH, HEIGHT, 40_000, seed=3)),
        ("a/b/c/cells.dat", "dat", _random_events(50_000, 300_000, seed=4)),
        ("d/noise.es", "es", _random_events(20_000, 100_000, seed=5)),
        ("d/table.csv", "csv", rotating_bar(WIDTH, HEIGHT, 10_000, seed=6)),
        ("top.npy", "npy", _random_events(15_000, 80_000, seed=7)),
    ]


def _write_tree(root: Path) -> dict[str, np.ndarray]:
    written = {}
    for relative, fmt, events in _recordings():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        aerflow.write(path, events, format=fmt, width=WIDTH, height=HEIGHT)
        written[relative] = events
    return written


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recordings") / "data"
    _write_tree(root)
    return root


@pytest.fixture(scope="module")
def references(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each recording alone through the ordinary command line, into the same layout."""
    out = tmp_path_factory.mktemp("references")
    for relative, _, _ in _recordings():
        stem = str(Path(relative).with_suffix(""))
        words = [w.replace("{relpath}", str(out / stem)) for w in PIPELINE]
        (out / stem).parent.mkdir(parents=True, exist_ok=True)
        assert cli_run(["--quiet", "input", "file", str(tree / relative), *words]) == 0
    return out


def _outputs(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_outputs(actual: Path, expected: Path) -> None:
    """The same files, holding the same events (and, for the writers whose bytes depend
    only on the events, the same bytes)."""
    got, want = _outputs(actual), _outputs(expected)
    assert sorted(got) == sorted(want)
    for name, path in want.items():
        assert_same_events(aerflow.read(got[name]), aerflow.read(path))
        if path.suffix in DETERMINISTIC:
            assert got[name].read_bytes() == path.read_bytes(), name


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in _outputs(folder).items()}


def _corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT4.0\r\n" + bytes(range(256)) * 4)


def _partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


# -- processes ----------------------------------------------------------------------------------
def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int = 2) -> Iterator[tuple[str, list[Any]]]:
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes (no nanny: the worker
    process is the child itself) on loopback; yields the address and the worker children."""
    if not DASK.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_tcp_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (folder / "scheduler.log").open("wb")
    scheduler_args = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(log)
        scheduler = stack.enter_context(
            child([*scheduler_args, "--no-dashboard"], stdout=log, stderr=log)
        )
        wait_until(lambda: _accepts(port), "the scheduler's port", scheduler)
        children = []
        for number in range(workers):
            worker_log = stack.enter_context((folder / f"worker{number}.log").open("wb"))
            worker_args = [DASK, "worker", address, "--nthreads", "1", "--no-nanny"]
            worker_args += ["--no-dashboard", "--host", "127.0.0.1", "--name", f"w{number}"]
            worker_args += ["--local-directory", str(folder / f"w{number}")]
            children.append(
                stack.enter_context(child(worker_args, stdout=worker_log, stderr=worker_log))
            )
        with distributed.Client(address, timeout=PATIENCE) as client:
            client.wait_for_workers(workers, timeout=PATIENCE)
        yield address, children


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("cluster")) as (address, _):
        yield address


def batch_cli(*words: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aerflow", "batch", *words],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        cwd=cwd,
    )


def _writers_of_partial_files(folder: Path, pids: list[int]) -> list[int]:
    """Those of ``pids`` holding a temporary output below ``folder`` open."""
    holding = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith(str(folder)) and ".part" in target:
                        holding.append(pid)
                        break
    return holding


def _our_processes() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == os.getuid():
                    pids.append(int(entry))
    return pids


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


# -- placeholders and planning (no cluster) -----------------------------------------------------
def test_placeholders_mirror_the_tree_below_the_patterns_root(tree: Path) -> None:
    inputs = expand([str(tree / "**" / "*.dat"), str(tree / "top.npy")])
    assert [i.path for i in inputs] == [str(tree / "a/b/c/cells.dat"), str(tree / "top.npy")]
    cells, top = inputs
    assert cells.fields() == {
        "name": "cells.dat",
        "stem": "cells",
        "parent": str(tree / "a/b/c"),
        "relpath": os.path.join("a", "b", "c", "cells"),
    }
    assert top.fields()["relpath"] == "top"  # a literal file's root is its folder
    assert cells.size == (tree / "a/b/c/cells.dat").stat().st_size


def test_plan_refuses_collisions_unknown_placeholders_and_streams(tree: Path) -> None:
    with pytest.raises(aerflow.AerflowError, match="same output"):
        aerflow.batch.run(str(tree / "a" / "*.raw"), "output file same.aedat4")
    with pytest.raises(aerflow.AerflowError, match=r"unknown placeholder \{size\}"):
        aerflow.batch.parse("output file {size}.aedat4")
    with pytest.raises(aerflow.AerflowError, match="cannot run in a batch"):
        aerflow.batch.parse("output stdout")
    with pytest.raises(aerflow.AerflowError, match="leave out 'input'"):
        aerflow.batch.parse(["input", "file", "x.raw", "output", "null"])
    with pytest.raises(aerflow.AerflowError, match="is an input"):
        aerflow.batch.run(str(tree / "a" / "*.raw"), "output file {parent}/{name}")
    with pytest.raises(aerflow.AerflowError, match="no file matches"):
        aerflow.batch.run(str(tree / "*.nothing"), "output null")


def test_stale_temporaries_of_the_outputs_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = [
        ".rec.aedat4.1a2b3c4d.part",
        ".rec.aedat4.0f0f0f0f.part.mp4",
        ".clip.mp4.a1b2c3d4.part",
    ]
    kept = ["rec.aedat4", ".other.aedat4.1a2b3c4d.part", ".rec.aedat4.part", "rec.aedat4.x.part"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".bag.k_3xz9q1.part").mkdir()  # a ROS 2 bag folder being built
    (tmp_path / ".bag.k_3xz9q1.part" / "bag").mkdir()
    outputs = [str(tmp_path / n) for n in ("rec.aedat4", "clip.mp4", "bag", "absent.es")]
    assert remove_stale_temporaries(outputs) == len(stale) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from aerflow.batch import engine

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'aerflow\[batch\]'"):
        engine.require_distributed()


def test_the_command_line_starts_without_dask() -> None:
    code = (
        "import sys\nfrom aerflow.cli.main import run\ntry:\n    run(['--help'])\n"
        "except SystemExit:\n    pass\nprint(sorted({'dask', 'distributed'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE
    )
    assert done.returncode == 0, done.stderr
    assert "batch" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_batch_without_a_pipeline_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_run(["batch", "x/*.raw"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("aerflow: error: give the pipeline after '--'")
    assert len(error.splitlines()) == 1


# -- a real scheduler and two workers -----------------------------------------------------------
def test_batch_on_a_scheduler_equals_each_file_alone_and_reruns_do_nothing(
    tree: Path, references: Path, scheduler: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    pattern = str(tree / "**" / "*.*")
    done = batch_cli(pattern, "--out", str(out), "--scheduler", scheduler, "--", *PIPELINE)
    assert done.returncode == 0, done.stderr
    assert_same_outputs(out, references)
    assert f"done    {len(_recordings()):>7}" in done.stderr
    assert not _partial_files(out)

    before = _stamps(out)
    again = batch_cli(pattern, "--out", str(out), "--scheduler", scheduler, "--", *PIPELINE)
    assert again.returncode == 0, again.stderr
    assert f"skipped {len(_recordings()):>7}" in again.stderr
    assert f"done    {0:>7}" in again.stderr
    assert _stamps(out) == before  # not one output written again

    # --overwrite redoes every file (new files renamed into place: new inodes).
    redo = batch_cli(
        pattern, "--out", str(out), "--scheduler", scheduler, "--overwrite", "--", *PIPELINE
    )
    assert redo.returncode == 0, redo.stderr
    after = _stamps(out)
    assert all(after[name][0] != before[name][0] for name in before)
    assert_same_outputs(out, references)


def test_a_corrupted_input_is_reported_and_the_rest_succeed(
    tree: Path, references: Path, scheduler: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tree, data)
    _corrupt(data / "a" / "b" / "broken.aedat4")
    out = tmp_path / "out"
    done = batch_cli(
        str(data / "**" / "*.*"), "--out", str(out), "--scheduler", scheduler, "--", *PIPELINE
    )
    assert done.returncode == 1
    failures = done.stderr.split("aerflow batch: 1 failed:\n")[1].splitlines()
    assert len(failures) == 1
    assert failures[0].startswith(f"  {data / 'a' / 'b' / 'broken.aedat4'}: ")
    assert f"done    {len(_recordings()):>7}" in done.stderr
    assert_same_outputs(out, references)  # and nothing at all for the broken file
    assert "Traceback" not in done.stderr


def test_python_run_and_map_on_a_client(tree: Path, scheduler: str, tmp_path: Path) -> None:
    expected = {str(tree / r): e for r, _, e in _recordings()}
    paths = [str(tree / "**" / "*.*")]

    def stats(stream: Any) -> dict[str, int]:
        events = np.concatenate([p.events for p in stream])
        return {"events": len(events), "on": int(events["on"].sum()), "width": WIDTH}

    with distributed.Client(scheduler, timeout=PATIENCE) as client:
        listed = aerflow.batch.map(paths, stats, client=client)
        frame = aerflow.batch.map(paths, stats, client=client, as_frame=True)
        counts = aerflow.batch.map(paths, lambda s: sum(len(p.events) for p in s), client=client)
        result = aerflow.batch.run(
            paths, ["output", "null"], client=client, out=tmp_path / "unused"
        )
        _corrupt(tmp_path / "bad.aedat4")
        with pytest.raises(aerflow.batch.BatchError) as failed:
            aerflow.batch.map([*paths, str(tmp_path / "bad.aedat4")], lambda s: 1, client=client)
    names = [i.path for i in expand(paths)]  # the order of the patterns' matches
    assert sorted(names) == sorted(expected)
    want = [
        {"events": len(expected[n]), "on": int(expected[n]["on"].sum()), "width": WIDTH}
        for n in names
    ]
    assert listed == want
    assert list(frame.columns) == ["path", "events", "on", "width"]
    assert frame["path"].tolist() == names
    assert frame[["events", "on", "width"]].to_dict("records") == want
    assert counts == [len(expected[n]) for n in names]
    assert result.ok
    assert sorted((r.path, r.events) for r in result.rows) == sorted(
        (n, len(expected[n])) for n in names
    )
    assert [r.bytes for r in result.rows] == sorted((r.bytes for r in result.rows), reverse=True)
    assert list(failed.value.failures) == [str(tmp_path / "bad.aedat4")]
    assert failed.value.results == [1] * len(names) + [None]


def _slow_tree(root: Path, files: int) -> None:
    """Sparse recordings of 1.5 s each: with ``filter pace`` every file takes that long."""
    for number in range(files):
        fmt, suffix = (("evt3", "raw"), ("aedat4", "aedat4"), ("es", "es"))[number % 3]
        path = root / f"f{number % 2}" / f"slow{number}.{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        events = _random_events(3_000 + 100 * number, 1_500_000, seed=100 + number)
        aerflow.write(path, events, format=fmt, width=WIDTH, height=HEIGHT)


SLOW = ["filter", "pace", "--speed", "1", "output", "file", "{relpath}.aedat4"]


def _slow_references(root: Path, out: Path) -> None:
    """The same pipeline, paced 1000 times faster (pace delays, it changes nothing)."""
    for path in sorted(root.rglob("slow*")):
        target = out / path.relative_to(root).with_suffix(".aedat4")
        target.parent.mkdir(parents=True, exist_ok=True)
        words = [w.replace("{relpath}.aedat4", str(target)) for w in SLOW]
        words[3] = "1000"
        assert cli_run(["--quiet", "input", "file", str(path), *words]) == 0


def _kill_a_writer(out: Path, candidates: Any, batch: subprocess.Popen[str]) -> int:
    """SIGKILL the first process seen holding a temporary output open below ``out``."""
    victims: list[int] = []

    def found() -> bool:
        victims[:] = _writers_of_partial_files(out, candidates())
        return bool(victims)

    wait_until(found, "a worker writing an output", batch)
    os.kill(victims[0], signal.SIGKILL)
    return victims[0]


@needs_proc
def test_a_worker_killed_mid_file_loses_nothing(tmp_path: Path) -> None:
    data, out, expected = tmp_path / "data", tmp_path / "out", tmp_path / "expected"
    _slow_tree(data, 4)
    _slow_references(data, expected)
    with dask_cluster(tmp_path / "cluster") as (address, workers):
        args = [sys.executable, "-m", "aerflow", "batch", str(data / "**" / "*.*")]
        args += ["--out", str(out), "--scheduler", address, "--", *SLOW]
        with child(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as batch:
            killed = _kill_a_writer(out, lambda: [w.pid for w in workers], batch)
            _, stderr = batch.communicate(timeout=PATIENCE)
        assert killed in [w.pid for w in workers]
        assert batch.returncode == 0, stderr
        assert "done          4" in stderr
        assert_same_outputs(out, expected)
        assert not _partial_files(out)


@needs_proc
def test_local_cluster_equals_each_file_alone_reports_failures_and_reruns_nothing(
    tree: Path, references: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _corrupt(tmp_path / "broken.aedat4")
    patterns = [str(tree / "**" / "*.*"), str(tmp_path / "broken.aedat4")]
    seen: list[str] = []
    result = aerflow.batch.run(
        patterns, PIPELINE, out=out, jobs=2, progress=lambda row, _: seen.append(row.path)
    )
    assert result.workers == 2
    assert [r.path for r in result.failures] == [str(tmp_path / "broken.aedat4")]
    assert (result.failures[0].error or "").startswith(f"{tmp_path / 'broken.aedat4'}: byte 14:")
    assert result.count("done") == len(_recordings())
    assert sorted(seen) == sorted(r.path for r in result.rows)
    assert_same_outputs(out, references)

    before = _stamps(out)
    again = aerflow.batch.run(str(tree / "**" / "*.*"), PIPELINE, out=out, jobs=2)
    assert again.ok
    assert again.count("skipped") == len(_recordings())
    assert again.workers == 0  # nothing to do: no cluster started
    assert _stamps(out) == before


@needs_proc
def test_a_local_worker_killed_mid_file_loses_nothing(tmp_path: Path) -> None:
    data, out, expected = tmp_path / "data", tmp_path / "out", tmp_path / "expected"
    _slow_tree(data, 4)
    _slow_references(data, expected)
    args = [sys.executable, "-m", "aerflow", "batch", str(data / "**" / "*.*"), "--jobs", "2"]
    args += ["--out", str(out), "--", *SLOW]
    with child(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as batch:
        _kill_a_writer(out, _our_processes, batch)  # the nanny starts a new worker
        _, stderr = batch.communicate(timeout=PATIENCE)
    assert batch.returncode == 0, stderr
    assert "done          4" in stderr
    assert_same_outputs(out, expected)
    assert not _partial_files(out)


@needs_proc
def test_ctrl_c_stops_the_batch_and_leaves_only_whole_files(tmp_path: Path) -> None:
    data, out, expected = tmp_path / "data", tmp_path / "out", tmp_path / "expected"
    _slow_tree(data, 3)
    _slow_references(data, expected)
    args = [sys.executable, "-m", "aerflow", "batch", str(data / "**" / "*.*"), "--jobs", "2"]
    args += ["--out", str(out), "--", *SLOW]
    with child(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as batch:
        wait_until(lambda: bool(out.is_dir() and _partial_files(out)), "an output begun", batch)
        _, stderr = interrupt(batch)
    assert batch.returncode == 128 + signal.SIGINT, stderr
    assert not _partial_files(out)
    written = _outputs(out)
    assert len(written) < 3  # stopped before the end
    for name, path in written.items():  # what is there is whole
        assert path.read_bytes() == (expected / name).read_bytes()


def test_inputs_are_largest_first(tree: Path) -> None:
    from aerflow.batch.engine import plan

    inputs: list[Input] = expand([str(tree / "**" / "*.*")])
    tasks, skipped = plan(inputs, aerflow.batch.parse(PIPELINE), "/nowhere", False)
    assert not skipped
    sizes = [t.size for t in tasks]
    assert sizes == sorted(sizes, reverse=True)
    for task in tasks:
        stem = Path("/nowhere") / Path(task.display).relative_to(tree).with_suffix("")
        assert task.outputs == (f"{stem}.aedat4", f"{stem}.es")


def test_a_task_per_core_reads_and_writes_on_one_thread_unless_the_pipeline_says(
    tmp_path: Path,
) -> None:
    """Workers that fill the cores get ``threads=1`` for the reader and for the file outputs
    whose formats take ``threads``; a ``threads`` the pipeline names wins, and formats that
    take none get none."""
    from aerflow.batch.engine import Task, _threaded

    source = tmp_path / "a.raw"
    aerflow.write(source, _random_events(1000, 10_000, seed=3), width=WIDTH, height=HEIGHT)
    sinks = (
        ("file", {"path": str(tmp_path / "a.aedat4")}),
        ("file", {"path": str(tmp_path / "b.aedat4"), "threads": 2}),
        ("file", {"path": str(tmp_path / "a.dat")}),
    )
    task = Task(str(source), "a.raw", 1, {}, (), sinks, (), threads=1)
    reader_options, sink_options = _threaded(task)
    assert reader_options == {"threads": 1}
    assert [options.get("threads") for _, options in sink_options] == [1, 2, None]
    assert _threaded(Task(str(source), "a.raw", 1, {"threads": 2}, (), sinks, ()))[0] == {
        "threads": 2
    }


def test_local_workers_keep_the_allocators_defaults() -> None:
    """Distributed's MALLOC_TRIM_THRESHOLD_ (which costs every file thousands of page faults)
    is not given to the workers of the local cluster a batch starts."""
    from aerflow.batch.engine import connect

    with connect(jobs=1) as client:
        seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(seen.values()) == [None]


# -- small files travel together -----------------------------------------------------------------
def _check_bundles(sizes: list[int], slots: int, runs: list[range]) -> None:
    """The rules of :func:`aerflow.batch.engine.bundles`, checked one by one."""
    from aerflow.batch import engine

    assert [i for run in runs for i in run] == list(range(len(sizes)))  # each once, in order
    weights = [size + engine.FILE_WEIGHT for size in sizes]
    limit = min(engine.BUNDLE_BYTES, sum(weights) / (max(1, slots) * engine.TASKS_PER_SLOT))
    for number, run in enumerate(runs):
        assert 1 <= len(run) <= 64
        weight = sum(weights[i] for i in run)
        if len(run) > 1:
            assert weight <= limit
        if number + 1 < len(runs):  # closed only when the next file does not fit
            assert weight + weights[runs[number + 1][0]] > limit


def test_bundles_by_hand() -> None:
    from aerflow.batch.engine import bundles

    # 200 files of 4.6 MB on 2 workers: 16 MiB = 16,777,216 holds three of 4,862,144 bytes
    runs = bundles([4_600_000] * 200, 2)
    assert [len(r) for r in runs] == [3] * 66 + [2]
    # 2,000 files of 25 kB: 58 of 287,144 bytes fit in 16 MiB (59 would be 16,941,496)
    runs = bundles([25_000] * 2000, 2)
    assert [len(r) for r in runs] == [58] * 34 + [28]
    # three files on two workers: no task above 5,788,432 / 8 = 723,554 bytes
    assert bundles([5_000_000, 1_000, 1_000], 2) == [range(0, 1), range(1, 3)]
    # 130 empty files on one worker: 34,078,720 / 4 = 8,519,680 holds 32 of 262,144
    assert [len(r) for r in bundles([0] * 130, 1)] == [32] * 4 + [2]
    # 1,000 empty files: 16 MiB holds 64, the most a task carries
    assert [len(r) for r in bundles([0] * 1000, 1)] == [64] * 15 + [40]
    # eight small files on two workers: eight tasks, four per worker
    assert len(bundles([10_000] * 8, 2)) == 8
    assert bundles([], 4) == []


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 64 * 2**20), max_size=300).map(lambda s: sorted(s)[::-1]),
    slots=st.integers(0, 64),
)
def test_bundles_keep_their_rules(sizes: list[int], slots: int) -> None:
    from aerflow.batch.engine import bundles

    _check_bundles(sizes, slots, bundles(sizes, slots))


@needs_proc
def test_many_small_files_share_tasks_and_each_is_still_its_own(
    tmp_path: Path,
) -> None:
    """Sixty small recordings and a broken one on a local cluster: fewer tasks than files,
    yet every file has its own row, its own outputs (equal to running it alone) and, for
    the broken one, its own failure; ``map`` gives each file its own result."""
    data, out, expected = tmp_path / "data", tmp_path / "out", tmp_path / "expected"
    names = []
    for number in range(60):
        name = f"{'ab'[number % 2]}/r{number:02d}.{('raw', 'es')[number % 2]}"
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        events = _random_events(300 + 7 * number, 20_000, seed=number)
        aerflow.write(data / name, events, width=WIDTH, height=HEIGHT)
        names.append(name)
        stem = str(Path(name).with_suffix(""))
        words = [w.replace("{relpath}", str(expected / stem)) for w in PIPELINE]
        (expected / stem).parent.mkdir(parents=True, exist_ok=True)
        assert cli_run(["--quiet", "input", "file", str(data / name), *words]) == 0
    _corrupt(data / "a" / "broken.aedat4")
    seen: list[str] = []
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = aerflow.batch.run(
            str(data / "**" / "*.*"),
            PIPELINE,
            out=out,
            client=client,
            progress=lambda row, _: seen.append(row.path),
        )
        counts = aerflow.batch.map(
            [str(data / n) for n in names], lambda s: sum(len(p.events) for p in s), client=client
        )
        with pytest.raises(aerflow.batch.BatchError) as failed:
            aerflow.batch.map(str(data / "**" / "*.*"), lambda s: 1, client=client)
    assert result.tasks < 61
    assert result.count("done") == 60
    assert [r.path for r in result.failures] == [str(data / "a" / "broken.aedat4")]
    assert sorted(seen) == sorted(r.path for r in result.rows)
    assert_same_outputs(out, expected)
    assert counts == [len(aerflow.read(data / n)) for n in names]
    assert list(failed.value.failures) == [str(data / "a" / "broken.aedat4")]
    assert sum(r is not None for r in failed.value.results) == 60


def _count_or_die(stream: Any) -> int:
    """The events of a stream, but for the one of 777 events: that one ends its worker."""
    count = sum(len(packet.events) for packet in stream)
    if count == 777:
        os._exit(13)
    return count


@needs_proc
def test_a_file_that_kills_its_worker_fails_alone(tmp_path: Path) -> None:
    """Small files share tasks; when one of them kills the worker running it, its task's
    other files run again one per task, and only that file fails."""
    paths = []
    for number in range(24):
        path = tmp_path / f"r{number:02d}.es"
        count = 777 if number == 5 else 500 + number
        aerflow.write(path, _random_events(count, 20_000, seed=number), width=WIDTH, height=HEIGHT)
        paths.append(str(path))
    # A worker's death marks only the task it was running (with one task per worker at a
    # time), and marks it bad at once, so that the test needs few deaths.
    scheduler_config = {"allowed-failures": 0, "worker-saturation": 1.0}
    with (
        dask.config.set({f"distributed.scheduler.{k}": v for k, v in scheduler_config.items()}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
        pytest.raises(aerflow.batch.BatchError) as failed,
    ):
        aerflow.batch.map(paths, _count_or_die, client=client)
    assert list(failed.value.failures) == [paths[5]]
    assert "KilledWorker" in failed.value.failures[paths[5]]
    expected = [None if n == 5 else 500 + n for n in range(24)]
    assert failed.value.results == expected
