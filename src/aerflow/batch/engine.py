"""The batch engine: one Dask task per file (small files several to a task, see
:func:`bundles`), largest files first, on a local cluster of processes or on any
``dask.distributed`` cluster.

The pipeline of each task is built on the worker from the component tables
(:mod:`aerflow.components`) by name, exactly as ``aerflow input file PATH ...`` builds it,
so a batch writes what running each file alone writes. Outputs are written under a
temporary name and renamed (a worker lost mid-file leaves no final-named file, and the
scheduler runs its task again elsewhere); what such a worker left under temporary names is
removed once every task is done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from .._optional import require
from ..errors import AerflowError, BatchError, MissingDependencyError
from .placeholders import (
    Input,
    expand,
    remove_stale_temporaries,
    substitute,
    uses_placeholders,
)
from .spec import PATH_OPTIONS, Pipeline, path_of

log = logging.getLogger(__name__)

Item = TypeVar("Item")

__all__ = [
    "BatchError",
    "BatchResult",
    "FileResult",
    "MissingDependencyError",
    "Pipeline",
    "map",
    "run",
]


def require_distributed() -> ModuleType:
    """``distributed``, imported now, or a :class:`~aerflow.errors.MissingDependencyError`
    (an ``ImportError``) naming the extra to install."""
    return require("distributed", extra="batch", purpose="a batch", package="dask.distributed")


def _pandas() -> Any:
    return require("pandas", extra="batch", purpose="a DataFrame of results")


@dataclass(frozen=True)
class Task:
    """One file's work, as sent to a worker (absolute paths only)."""

    path: str
    display: str
    size: int
    input: Mapping[str, Any]
    filters: Sequence[tuple[str, Mapping[str, Any]]]
    sinks: Sequence[tuple[str, Mapping[str, Any]]]
    outputs: tuple[str, ...]
    threads: int | None = None
    """The ``threads`` of the reader and of each file output whose format takes them,
    where the pipeline names none (None: the formats' default)."""


@dataclass(frozen=True)
class FileResult:
    """What became of one file: ``status`` is ``done``, ``skipped`` (every output was
    there) or ``failed`` (``error`` says why, in one line)."""

    path: str
    status: str
    outputs: tuple[str, ...] = ()
    events: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    worker: str | None = None


@dataclass
class BatchResult:
    """Every file's :class:`FileResult` (largest file first), and the wall time."""

    rows: list[FileResult]
    files: int = 0
    """How many files the patterns named (the rows once the batch is over)."""
    elapsed: float = 0.0
    workers: int = 0
    tasks: int = 0
    """How many Dask tasks carried the files (small files travel several to a task)."""
    stale_removed: int = 0

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.rows if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def total(self, column: str, status: str = "done") -> float:
        """The sum of ``column`` (``events``, ``bytes``, ``seconds``) over the rows of
        ``status`` (an int for the counts)."""
        value: float = sum(getattr(r, column) for r in self.rows if r.status == status)
        return value

    def as_frame(self) -> Any:
        """The rows as a pandas DataFrame."""
        return _pandas().DataFrame([r.__dict__ for r in self.rows])


def one_line(error: BaseException) -> str:
    """An error as the summary shows it: its first line, with its type unless it is one
    of aerflow's (whose messages name the file and say what went wrong)."""
    message = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, AerflowError) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _worker_address() -> str | None:
    with contextlib.suppress(Exception):
        from distributed import get_worker

        return str(get_worker().address)
    return None


def _threaded(
    task: Task,
) -> tuple[Mapping[str, Any], Sequence[tuple[str, Mapping[str, Any]]]]:
    """The task's input and output options, with its ``threads`` added for the reader and
    the file outputs whose format takes them and that set none."""
    from .. import registry

    if task.threads is None:
        return task.input, task.sinks

    def takes(options: Sequence[registry.Option]) -> bool:
        return any(o.name == "threads" and o.command_line for o in options)

    source = dict(task.input)
    reader = registry.detect(task.path, source.get("format"))
    if source.get("threads") is None and takes(reader.read_options):
        source["threads"] = task.threads
    sinks: list[tuple[str, Mapping[str, Any]]] = []
    for name, options in task.sinks:
        path, unset = options.get("path"), options.get("threads") is None
        if name == "file" and isinstance(path, str) and unset:
            writer = registry.for_writing(path, options.get("format"))
            if takes(writer.write_options):
                options = {**options, "threads": task.threads}
        sinks.append((name, options))
    return source, sinks


def process_file(task: Task) -> FileResult:
    """Run ``task`` here (on a worker): read the file, filter, write every output. An
    error becomes the result's ``error``; it never stops the batch."""
    from ..components import FILTERS, SINKS, open_file_stream
    from ..pipeline import run as run_stream

    started = time.perf_counter()
    try:
        for output in task.outputs:
            os.makedirs(os.path.dirname(output), exist_ok=True)
        source, outputs = _threaded(task)
        stream = open_file_stream(task.path, **source)
        sinks: list[Any] = []
        try:
            stream = stream.filter(*(FILTERS[name].make(**opts) for name, opts in task.filters))
            for name, options in outputs:
                sinks.append(SINKS[name].make(stream.properties, **options))
        except BaseException:
            for sink in sinks:
                getattr(sink, "abort", sink.close)()
            stream.close()
            raise
        final = run_stream(stream, *sinks, ahead=4)
    except Exception as error:
        return FileResult(
            task.display,
            "failed",
            task.outputs,
            bytes=task.size,
            seconds=time.perf_counter() - started,
            error=one_line(error),
            worker=_worker_address(),
        )
    return FileResult(
        task.display,
        "done",
        task.outputs,
        events=final.events,
        bytes=task.size,
        seconds=time.perf_counter() - started,
        worker=_worker_address(),
    )


def process_files(tasks: Sequence[Task]) -> list[FileResult]:
    """:func:`process_file` for each of ``tasks`` in turn (one Dask task: a bundle)."""
    return [process_file(task) for task in tasks]


BUNDLE_BYTES = 16 * 2**20
"""The most input one Dask task carries when it holds several files."""
FILE_WEIGHT = 256 * 2**10
"""A file's fixed cost (opening, headers, the outputs' renames), counted as input bytes:
a task holds 64 files at most."""
TASKS_PER_SLOT = 4
"""Bundles are no larger than would leave this many tasks per worker thread."""


def bundles(sizes: Sequence[int], slots: int) -> list[range]:
    """The consecutive runs of files (``sizes`` in bytes, largest first) that go to the
    workers as one Dask task each. Each task costs the scheduler and a worker a few
    milliseconds of CPU, as much as converting a 100 kB file, so small files travel
    together: a run of several files weighs at most :data:`BUNDLE_BYTES` (each file its
    size plus :data:`FILE_WEIGHT`), and no more than leaves :data:`TASKS_PER_SLOT` tasks
    per worker thread (``slots``), so that every worker has work to the end."""
    weights = [size + FILE_WEIGHT for size in sizes]
    limit = min(BUNDLE_BYTES, sum(weights) / (max(1, slots) * TASKS_PER_SLOT))
    runs: list[range] = []
    start, weight = 0, 0
    for index, file_weight in enumerate(weights):
        if index > start and weight + file_weight > limit:
            runs.append(range(start, index))
            start, weight = index, 0
        weight += file_weight
    if start < len(weights):
        runs.append(range(start, len(weights)))
    return runs


def plan(
    inputs: Sequence[Input], pipeline: Pipeline, out: str | None, overwrite: bool
) -> tuple[list[Task], list[FileResult]]:
    """The tasks to run (largest file first) and the files skipped because every output
    exists. Two files writing one output, or an output over an input, is refused."""
    pipeline.check()
    templates = [p for _, o in pipeline.outputs if (p := path_of(o)) is not None]
    if len(inputs) > 1 and templates and not uses_placeholders(templates):
        raise AerflowError(
            f"{len(inputs)} files would write the same output {templates[0]}: "
            "use {stem}, {name}, {parent} or {relpath} in the output path"
        )
    locations = {i.location for i in inputs}
    owners: dict[str, str] = {}
    tasks: list[Task] = []
    skipped: list[FileResult] = []
    for item in sorted(inputs, key=lambda i: i.size, reverse=True):
        sinks: list[tuple[str, Mapping[str, Any]]] = []
        outputs: list[str] = []
        for name, options in pipeline.outputs:
            template = path_of(options)
            if template is None:
                sinks.append((name, dict(options)))
                continue
            key = next(k for k in PATH_OPTIONS if options.get(k) == template)
            target = substitute(template, item, out)
            if target in locations:
                raise AerflowError(f"output {target} of {item.path} is an input: name another")
            other = owners.setdefault(target, item.path)
            if other != item.path or target in outputs:
                raise AerflowError(
                    f"output {target} is written for both {other} and {item.path}: "
                    "make the names differ (with {stem}, {relpath}...)"
                )
            outputs.append(target)
            sinks.append((name, {**options, key: target}))
        task = Task(
            item.location,
            item.path,
            item.size,
            dict(pipeline.input),
            list(pipeline.filters),
            sinks,
            tuple(outputs),
        )
        if not overwrite and outputs and all(os.path.exists(p) for p in outputs):
            skipped.append(FileResult(item.path, "skipped", task.outputs, bytes=item.size))
        else:
            tasks.append(task)
    return tasks, skipped


_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
_DASK_MALLOC_TRIM = 65536
"""Distributed's default for its workers' ``MALLOC_TRIM_THRESHOLD_``."""


@contextlib.contextmanager
def _glibc_malloc_defaults() -> Iterator[None]:
    """While a local cluster starts: its workers keep glibc's default allocator settings.

    Distributed starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which, being set,
    also fixes glibc's mmap threshold at 128 KiB: every packet's arrays and every output
    buffer are then mapped afresh and faulted in page by page (7,100 page faults per 1 M-event
    file, against 220 in one process), 21 ms of CPU per file in a worker. A value set in the
    environment or in Dask's configuration other than distributed's default is kept."""
    import dask

    if dask.config.get(_MALLOC_TRIM, None) != _DASK_MALLOC_TRIM:
        yield
        return
    with dask.config.set({_MALLOC_TRIM: None}):
        yield


@contextlib.contextmanager
def connect(
    client: Any = None,
    scheduler: str | None = None,
    jobs: int | None = None,
    tasks: int | None = None,
) -> Any:
    """The client to submit to: ``client`` as given, a new client of the cluster at
    ``scheduler``, or a new local cluster of ``jobs`` processes (default: one per core; no
    more than ``tasks``)."""
    if client is not None:
        yield client
        return
    distributed = require_distributed()
    if scheduler is not None:
        with distributed.Client(scheduler, timeout="60s") as made:
            yield made
        return
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise AerflowError(f"--jobs must be at least 1 (got {workers})")
    if tasks is not None:
        workers = max(1, min(workers, tasks))
    with _glibc_malloc_defaults():  # read as the nannies are made (a restart reuses it)
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # its HTTP server always starts: any free port
            silence_logs=logging.ERROR,
        )
    with cluster, distributed.Client(cluster) as made:
        yield made


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _worker_list(client: Any) -> list[Mapping[str, Any]]:
    """The scheduler's description of each worker (none when it cannot say)."""
    with contextlib.suppress(Exception):
        return list(client.scheduler_info().get("workers", {}).values())
    return []


def _fills_this_machine(workers: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every worker runs on this machine (a local cluster) and together they run
    at least as many tasks at once as it has cores."""
    if workers and all(w.get("host") in _LOOPBACK for w in workers):
        return _threads(workers) >= (os.cpu_count() or 1)
    return False


def _threads(workers: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(w.get("nthreads", 1)) for w in workers)


def _slots(workers: Sequence[Mapping[str, Any]]) -> int:
    """How many tasks the cluster runs at once (its workers' threads), or this machine's
    core count while no worker has joined."""
    return _threads(workers) or os.cpu_count() or 1


def _as_pipeline(pipeline: Pipeline | str | Sequence[str]) -> Pipeline:
    if isinstance(pipeline, Pipeline):
        return pipeline
    from .grammar import parse

    return parse(pipeline.split() if isinstance(pipeline, str) else list(pipeline))


def run(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    pipeline: Pipeline | str | Sequence[str],
    *,
    out: str | os.PathLike[str] | None = None,
    client: Any = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Callable[[FileResult, BatchResult], None] | None = None,
) -> BatchResult:
    """Run ``pipeline`` over every file of ``paths`` (files or glob patterns, ``**`` spans
    folders), one Dask task per file (small files several to a task: :func:`bundles`),
    largest first. ``pipeline`` is a :class:`Pipeline` or the command line's words after
    the input (``"filter denoise output file {relpath}.aedat4"``). Relative output paths
    go under ``out``. Files whose outputs all exist are skipped unless ``overwrite``. Runs
    on ``client`` (a ``dask.distributed.Client``), else on the cluster at ``scheduler``,
    else on a local cluster of ``jobs`` processes. When the workers all run here and run
    a task per core or more, readers and file outputs that take ``threads`` get
    ``threads=1`` (unless the pipeline names it): more threads per file would add no speed
    there. A file that fails is a failed row, never an exception; ``progress`` is called
    with each finished file's row."""
    spec = _as_pipeline(pipeline)
    inputs = expand([paths] if isinstance(paths, str | os.PathLike) else paths)
    target = None if out is None else os.path.abspath(os.fspath(out))
    started = time.perf_counter()
    tasks, skipped = plan(inputs, spec, target, overwrite)
    result = BatchResult([], files=len(inputs))
    for row in skipped:
        result.rows.append(row)
        if progress is not None:
            progress(row, result)
    try:
        if tasks:
            with connect(client, scheduler, jobs, len(tasks)) as active:
                workers = _worker_list(active)
                result.workers = len(workers)
                sent = tasks
                if _fills_this_machine(workers):
                    # A task per core already: more threads per file add no speed, only
                    # their hand-overs (7 ms of CPU per 1 M-event file to AEDAT 4.0 with
                    # two workers on two cores).
                    sent = [dataclasses.replace(t, threads=1) for t in tasks]
                runs = bundles([t.size for t in sent], _slots(workers))
                result.tasks = len(runs)
                groups = [sent[run.start : run.stop] for run in runs]
                for group, outcome in _completed(active, process_files, groups):
                    rows = _failed(group, outcome) if isinstance(outcome, str) else outcome
                    for row in rows:
                        result.rows.append(row)
                        if progress is not None:
                            progress(row, result)
    finally:
        # Every task has ended (or, interrupted, a local cluster is gone): what is left
        # under a temporary name beside an output was written by a worker that died, in
        # this run or an earlier one.
        outputs = [o for t in tasks for o in t.outputs] + [o for r in skipped for o in r.outputs]
        result.stale_removed = remove_stale_temporaries(outputs)
    order = {t.display: i for i, t in enumerate(tasks)}
    result.rows.sort(key=lambda r: (r.status == "skipped", order.get(r.path, 0)))
    result.elapsed = time.perf_counter() - started
    return result


def _completed(
    client: Any, function: Callable[[list[Item]], list[Any]], groups: Sequence[list[Item]]
) -> Iterator[tuple[list[Item], list[Any] | str]]:
    """Each group with ``function``'s results for it as its Dask task completes, or with why
    the cluster could not run it (in one line). The tasks go to the scheduler as one graph,
    started in the order given (a submit per task costs the scheduler an update each). A
    group of several files whose task failed as a whole (its workers died each time it
    ran) runs again one file per task, so that only the file at fault fails."""
    futures = client.map(function, groups, pure=False)
    group_of = {f.key: group for f, group in zip(futures, groups, strict=True)}
    pending = require_distributed().as_completed(futures)
    try:
        for future in pending:
            group = group_of.pop(future.key)
            if future.status == "finished":
                yield group, future.result()
            elif future.status == "error" and len(group) > 1:
                alone = client.map(function, [[item] for item in group], pure=False)
                futures += alone
                group_of.update((f.key, [item]) for f, item in zip(alone, group, strict=True))
                pending.update(alone)
            else:
                yield group, _why_not_run(future)
            future.release()
    finally:
        client.cancel([f for f in futures if not f.done()])


def _failed(tasks: Sequence[Task], error: str) -> list[FileResult]:
    return [FileResult(t.display, "failed", t.outputs, bytes=t.size, error=error) for t in tasks]


def _why_not_run(future: Any) -> str:
    """Why a Dask task gave no result (its workers kept dying, it was cancelled), in one
    line."""
    error = future.exception() if future.status == "error" else None
    return one_line(error) if error is not None else f"task {future.status}"


def _apply(
    items: Sequence[tuple[int, str]], options: Mapping[str, Any], function: Callable[[Any], Any]
) -> list[tuple[bool, Any]]:
    """``function`` of each file (``(index, path)``) opened in turn: ``(True, result)``, or
    ``(False, the error in one line)`` for a file that failed (the others still run)."""
    from ..components import open_file_stream

    outcomes: list[tuple[bool, Any]] = []
    for _, path in items:
        try:
            with open_file_stream(path, **options) as stream:
                outcomes.append((True, function(stream)))
        except Exception as error:
            outcomes.append((False, one_line(error)))
    return outcomes


def map(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    function: Callable[[Any], Any],
    *,
    client: Any = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    as_frame: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """``function(stream)`` for every file of ``paths``, each file opened on a worker (with
    the ``input file`` ``options``), largest first; the results, which should be small
    (statistics, features), come back in the order of ``paths`` as a list, or with
    ``as_frame`` as a pandas DataFrame with a ``path`` column (a mapping result gives a
    column per key, anything else a ``result`` column). A failure raises
    :class:`BatchError` once every file is done."""
    inputs = expand([paths] if isinstance(paths, str | os.PathLike) else paths)
    results: list[Any] = [None] * len(inputs)
    failures: dict[str, str] = {}
    if inputs:
        with connect(client, scheduler, jobs, len(inputs)) as active:
            order = sorted(range(len(inputs)), key=lambda i: inputs[i].size, reverse=True)
            items = [(i, inputs[i].location) for i in order]
            runs = bundles([inputs[i].size for i in order], _slots(_worker_list(active)))
            groups = [items[run.start : run.stop] for run in runs]
            apply = functools.partial(_apply, options=dict(options or {}), function=function)
            for group, outcome in _completed(active, apply, groups):
                if isinstance(outcome, str):
                    outcome = [(False, outcome)] * len(group)
                for (index, _), (ok, value) in zip(group, outcome, strict=True):
                    if ok:
                        results[index] = value
                    else:
                        failures[inputs[index].path] = value
    if failures:
        raise BatchError(failures, results)
    if not as_frame:
        return results
    pandas = _pandas()
    names = [i.path for i in inputs]
    if results and all(isinstance(r, Mapping) for r in results):
        frame = pandas.DataFrame([dict(r) for r in results])
        frame.insert(0, "path", names)
        return frame
    return pandas.DataFrame({"path": names, "result": results})
