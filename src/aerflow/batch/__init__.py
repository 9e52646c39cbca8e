"""Many recordings through one pipeline on Dask: on every local core by default, or on any
``dask.distributed`` cluster (``pip install 'aerflow[batch]'``).

- :func:`run` runs a pipeline (the command line's words after the input, or a
  :class:`Pipeline`) over files and glob patterns, one task per file (small files
  several to a task), largest first;
  outputs are written atomically, files whose outputs exist are skipped, and a failing
  file is a row of the result, never the end of the batch (``aerflow batch`` on the
  command line).
- :func:`map` applies a function to each opened recording and gathers its small results
  as a list or a pandas DataFrame.

Dask is imported only when a batch runs.
"""

from __future__ import annotations

from .engine import (
    BatchError,
    BatchResult,
    FileResult,
    MissingDependencyError,
    Pipeline,
    map,
    run,
)
from .placeholders import PLACEHOLDERS

__all__ = [
    "PLACEHOLDERS",
    "BatchError",
    "BatchResult",
    "FileResult",
    "MissingDependencyError",
    "Pipeline",
    "map",
    "parse",
    "run",
]


def parse(words: str | list[str]) -> Pipeline:
    """A :class:`Pipeline` from the command line's words after the input (a string is
    split on spaces): ``parse("filter denoise output file {relpath}.aedat4")``."""
    from .grammar import parse as parse_words

    return parse_words(words.split() if isinstance(words, str) else words)
