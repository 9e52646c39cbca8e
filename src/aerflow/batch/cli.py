"""``aerflow batch PATTERN... [--out DIR] [--jobs N] [--scheduler ADDRESS] [--overwrite]
-- [INPUT OPTIONS] [filter NAME ARGS]... output KIND ARGS...``: the command line's side of
:mod:`aerflow.batch` (argument words in, a summary table on stderr out)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import AerflowError
from .engine import BatchResult, FileResult, require_distributed, run
from .grammar import parse

__all__ = ["parse", "run_batch", "write_summary"]

_USAGE = (
    "aerflow batch PATTERN... [--out DIR] [--jobs N] [--scheduler ADDRESS] [--overwrite] "
    "[--quiet] -- [INPUT OPTIONS] [filter NAME ARGS]... output KIND ARGS..."
)


def _parser() -> argparse.ArgumentParser:
    from ..cli.pipeline import OneLineErrors

    parser = OneLineErrors(
        prog="aerflow batch",
        usage=_USAGE,
        description="Run one pipeline over many recordings on Dask: one task per file "
        "(small files several to a task), largest first, on a local cluster of processes "
        "or on a dask.distributed cluster. "
        "Output paths may use {stem} (rec), {name} (rec.raw), {parent} (the input's "
        "folder) and {relpath} (a/b/rec: the input's path below the pattern's root, "
        "without its extension). Quote patterns so that ** reaches aerflow.",
        epilog="example: aerflow batch 'recordings/**/*.raw' --out converted -- "
        "filter denoise output file {relpath}.aedat4",
    )
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="files or glob patterns")
    parser.add_argument("--out", metavar="DIR", help="folder for relative output paths")
    parser.add_argument(
        "--jobs", type=int, metavar="N", help="local worker processes (default: one per core)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this dask.distributed cluster (tcp://host:8786) instead of a local one",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo files whose outputs all exist"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress, no summary but failures")
    return parser


class _Progress:
    """Files and events done, on a terminal."""

    def __init__(self, out: TextIO) -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(file=out, unit=" files", dynamic_ncols=True, leave=False)
        self._events = 0

    def __call__(self, row: FileResult, result: BatchResult) -> None:
        self._bar.total = result.files
        self._events += row.events
        self._bar.update(1)
        self._bar.set_postfix_str(f"{self._events:,} events, {result.count('failed')} failed")

    def close(self) -> None:
        self._bar.close()


def run_batch(argv: Sequence[str]) -> int:
    """``aerflow batch`` (the words after ``batch``): 0 when every file succeeded or was
    skipped, 1 when any failed."""
    argv = list(argv)
    own, words = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :])
        if "--" in argv
        else (
            argv,
            [],
        )
    )
    args = _parser().parse_args(own)
    if not words:
        raise AerflowError(
            "give the pipeline after '--': aerflow batch 'data/**/*.raw' --out converted "
            "-- output file {relpath}.aedat4"
        )
    pipeline = parse(words)
    if not _debugging():
        # Dask's scheduler and nannies log every start and stop at INFO; the summary says
        # what matters (AERFLOW_DEBUG=1 shows them).
        require_distributed()
        logging.getLogger("distributed").setLevel(logging.ERROR)
    bar = _Progress(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    try:
        result = run(
            args.patterns,
            pipeline,
            out=args.out,
            jobs=args.jobs,
            scheduler=args.scheduler,
            overwrite=args.overwrite,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    write_summary(result, sys.stderr, quiet=args.quiet)
    return 0 if result.ok else 1


def _debugging() -> bool:
    return os.environ.get("AERFLOW_DEBUG", "").strip() not in ("", "0")


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return ""  # pragma: no cover


def write_summary(result: BatchResult, out: TextIO, quiet: bool = False) -> None:
    """The summary table (files, events, bytes read, time per status) and one line per
    failure; with ``quiet`` only the failures."""
    if not quiet:
        workers = f" on {result.workers} workers" if result.workers else ""
        if result.tasks and result.tasks < len(result.rows):
            workers += f" ({result.tasks} tasks)"
        count = f"{len(result.rows)} file" + ("" if len(result.rows) == 1 else "s")
        out.write(f"aerflow batch: {count} in {result.elapsed:.1f} s{workers}\n")
        out.write(f"  {'':<8}{'files':>7}{'events':>16}{'bytes':>11}{'time':>10}\n")
        for status in ("done", "skipped", "failed"):
            files = result.count(status)
            if not files and status != "done":
                continue
            events = f"{int(result.total('events', status)):,}" if status == "done" else ""
            seconds = result.total("seconds", status)
            time_text = f"{seconds:.1f} s" if status != "skipped" else ""
            out.write(
                f"  {status:<8}{files:>7}{events:>16}"
                f"{_size(result.total('bytes', status)):>11}{time_text:>10}\n"
            )
    failures = result.failures
    if failures:
        out.write(f"aerflow batch: {len(failures)} failed:\n")
        for row in failures:
            out.write(f"  {row.path}: {row.error}\n")
