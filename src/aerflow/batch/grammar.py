"""The pipeline words of a batch (the command line's grammar after ``input file PATH``) as a
:class:`~aerflow.batch.spec.Pipeline`, parsed by the grammar's own block parser so that a
batch takes exactly what a pipeline takes."""

from __future__ import annotations

from collections.abc import Sequence

from ..cli.pipeline import Block, parse_block, split_words
from ..errors import AerflowError
from .spec import Pipeline

__all__ = ["parse"]


def parse(words: Sequence[str]) -> Pipeline:
    """The pipeline words after the input, as in ``aerflow input file PATH <words>``: the
    options of ``input file`` first (``--format``, ``--width``...), then filters and
    outputs (whose paths may use ``{stem}``, ``{name}``, ``{parent}``, ``{relpath}``)."""
    leading, blocks = split_words(words)
    if any(b.keyword == "input" for b in blocks):
        raise AerflowError(
            "a batch reads each matched file: leave out 'input' (its options, such as "
            "--format or --width, come first: -- --format evt2 output file {stem}.dat)"
        )
    _, source = parse_block(Block("input", ["file", "PATH", *leading]))
    source.pop("path", None)
    filters = [parse_block(b) for b in blocks if b.keyword == "filter"]
    outputs = [parse_block(b) for b in blocks if b.keyword == "output"]
    pipeline = Pipeline(
        outputs=[(component.name, options) for component, options in outputs],
        filters=[(component.name, options) for component, options in filters],
        input=source,
    )
    pipeline.check()
    return pipeline
