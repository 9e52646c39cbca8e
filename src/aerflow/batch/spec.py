"""What a batch runs on each file: a :class:`Pipeline` of ``input file`` options, filters
and outputs, named as in the component tables, with output paths that take placeholders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import AerflowError
from .placeholders import check_template

__all__ = ["PATHLESS_OUTPUTS", "PATH_OPTIONS", "Pipeline", "path_of"]

PATH_OPTIONS = ("path", "directory")
"""The option of an output that names what it writes (``file``/``video``, ``frames``)."""
PATHLESS_OUTPUTS = ("null",)


@dataclass(frozen=True)
class Pipeline:
    """What each file goes through: the options of ``input file`` (``format``, ``width``,
    ``chunk_size``...), then filters and outputs named as in
    :data:`aerflow.components.FILTERS` and :data:`~aerflow.components.SINKS` with their
    options. Output paths may use ``{stem}``, ``{name}``, ``{parent}`` and ``{relpath}``.

    ``Pipeline(outputs=[("file", {"path": "{relpath}.aedat4"})])`` converts every file;
    :func:`aerflow.batch.parse` reads the command-line words instead."""

    outputs: Sequence[tuple[str, Mapping[str, Any]]]
    filters: Sequence[tuple[str, Mapping[str, Any]]] = ()
    input: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse, before anything runs, what cannot run over many files."""
        from ..components import FILTERS, SINKS

        if not self.outputs:
            raise AerflowError("a batch needs at least one output (e.g. output file {stem}.raw)")
        for name, _ in self.filters:
            if name not in FILTERS:
                raise AerflowError(f"unknown filter {name!r} (known: {', '.join(FILTERS)})")
        for name, options in self.outputs:
            if name not in SINKS:
                raise AerflowError(f"unknown output {name!r} (known: {', '.join(SINKS)})")
            template = path_of(options)
            if template is None and name not in PATHLESS_OUTPUTS:
                raise AerflowError(
                    f"output {name} cannot run in a batch: outputs there write files "
                    "(file, video, frames) or count (null)"
                )
            if template is not None:
                check_template(template)


def path_of(options: Mapping[str, Any]) -> str | None:
    for name in PATH_OPTIONS:
        value = options.get(name)
        if isinstance(value, str):
            return value
    return None
