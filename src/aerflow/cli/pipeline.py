"""The pipeline grammar: ``aerflow [--quiet] [--sync] input KIND ARGS [filter NAME ARGS]...
output KIND ARGS [output KIND ARGS]...``.

Each block's arguments are parsed by a parser generated from the components' declarations
in :mod:`aerflow.registry`, so the command line offers exactly what the library does. A
``--`` makes the next word literal (a file called ``output``). No ``input`` reads CSV from
standard input; no ``output`` writes CSV to standard output.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .. import registry
from ..errors import AerflowError
from ..pipeline import run
from ..registry import Component, Option
from .progress import ProgressBar

__all__ = ["KEYWORDS", "Block", "OneLineErrors", "parse_block", "run_pipeline", "split_words"]

KEYWORDS = ("input", "filter", "output")
_KINDS = {"input": "source", "filter": "filter", "output": "sink"}
_NOUNS = {"input": "source", "filter": "filter", "output": "sink"}


@dataclass
class Block:
    """One block of a pipeline: its keyword (input, filter, output) and the words after it."""

    keyword: str
    words: list[str] = field(default_factory=list)


def split_words(argv: Sequence[str]) -> tuple[list[str], list[Block]]:
    """Global words before the first block, then the blocks; ``--`` escapes one word."""
    leading: list[str] = []
    blocks: list[Block] = []
    words = iter(argv)
    for word in words:
        literal = word == "--"
        if literal:
            escaped = next(words, None)
            if escaped is None:
                raise AerflowError("'--' must be followed by the word it makes literal")
            word = escaped
        if not literal and word in KEYWORDS:
            blocks.append(Block(word))
        elif blocks:
            blocks[-1].words.append(word)
        else:
            leading.append(word)
    return leading, blocks


class OneLineErrors(argparse.ArgumentParser):
    """A parser whose usage errors are one line and exit status 1, as every other error of
    the command line (``--help`` still prints the usage)."""

    def error(self, message: str) -> NoReturn:
        raise AerflowError(f"{self.prog}: {message} (`{self.prog} --help` lists the options)")


# Option values that start with '-' and a digit are values, not flags: "--offset -1s".
_NEGATIVE_VALUE = re.compile(r"^-\d")


def _argument_parser(keyword: str, component: Component) -> argparse.ArgumentParser:
    parser = OneLineErrors(prog=f"aerflow {keyword} {component.name}", description=component.help)
    # argparse takes only plain negative numbers as values; times such as -1s or -10ms too.
    parser._negative_number_matcher = _NEGATIVE_VALUE
    for option in component.all_options():
        _add(parser, option)
    return parser


def _add(parser: argparse.ArgumentParser, option: Option, prefix: str = "") -> None:
    """Add ``option`` (as ``--name``, or positional), stored under ``prefix + name``;
    options only Python callers pass are left out."""
    if not option.command_line:
        return
    help_text = option.help
    if option.default is not None and option.type is not bool:
        help_text += f" (default: {option.default})"
    help_text = help_text.replace("%", "%%")  # argparse formats help with %
    if option.positional:
        parser.add_argument(
            option.name,
            type=option.type,
            choices=option.choices,
            nargs=None if option.required else "?",
            default=option.default,
            help=help_text,
        )
        return
    # Options left out are not passed at all: the library's own defaults apply.
    flag = "--" + option.name.replace("_", "-")
    if option.type is bool:
        parser.add_argument(
            flag,
            dest=prefix + option.name,
            action="store_true",
            default=argparse.SUPPRESS,
            help=help_text,
        )
    else:
        parser.add_argument(
            flag,
            dest=prefix + option.name,
            metavar=None if option.choices else option.name.upper(),
            type=option.type,
            choices=option.choices,
            default=argparse.SUPPRESS,
            help=help_text,
        )


def add_file_source_options(parser: argparse.ArgumentParser) -> None:
    """The read options of ``input file`` (every format's, and ``--width/--height``), for
    the commands that read a recording (``info``, ``convert``, ``plot``)."""
    from ..components import file_read_options

    for option in file_read_options():
        _add(parser, option, _SOURCE_PREFIX)


def file_source_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options :func:`add_file_source_options` added that were given."""
    given = vars(args)
    return {
        name[len(_SOURCE_PREFIX) :]: value
        for name, value in given.items()
        if name.startswith(_SOURCE_PREFIX)
    }


_SOURCE_PREFIX = "source_option_"  # apart from the commands' own names (convert's `source`)


def _kinds_help(keyword: str) -> str:
    table = registry.components(_KINDS[keyword])
    width = max(len(name) for name in table)
    lines = [f"usage: aerflow {keyword} KIND [ARGS...]   ({_NOUNS[keyword]}s:)"]
    lines += [f"  {name:<{width}}  {c.help}" for name, c in table.items()]
    lines.append(f"`aerflow {keyword} KIND --help` describes one.")
    return "\n".join(lines) + "\n"


def parse_block(block: Block) -> tuple[Component, dict[str, Any]]:
    """The component a block names and its options, as parsed from its words (``--help``
    prints the block's help and exits)."""
    table = registry.components(_KINDS[block.keyword])
    if not block.words or block.words[0] in ("-h", "--help"):
        sys.stdout.write(_kinds_help(block.keyword))
        raise SystemExit(0)
    kind, *rest = block.words
    component = table.get(kind)
    if component is None:
        raise AerflowError(
            f"unknown {_NOUNS[block.keyword]} {kind!r} after '{block.keyword}' "
            f"(known: {', '.join(table)})"
        )
    if kind == "file" and block.keyword in ("input", "output") and {"-h", "--help"} & set(rest):
        component = _for_the_named_format(block.keyword, component, rest)
    options = vars(_argument_parser(block.keyword, component).parse_args(rest))
    return component, options


_SIZE_OPTIONS = (
    Option("width", int, "sensor width, stating or overriding what the file gives"),
    Option("height", int, "sensor height"),
)


def _for_the_named_format(keyword: str, component: Component, words: list[str]) -> Component:
    """``input file PATH --help`` (or ``--format NAME``) describes the options of that one
    format; without a path or format that tells, the options of every format."""
    path = next((w for w in words if not w.startswith("-")), None)
    named = None
    if "--format" in words[:-1]:
        named = words[words.index("--format") + 1]
    try:
        if keyword == "input":
            if named is None and (path is None or not os.path.isfile(path)):
                return component
            info = registry.detect(path or "", named)
            taken = {o.name for o in info.read_options}
            # Any input takes a sensor size (components.open_file_stream).
            size = tuple(o for o in _SIZE_OPTIONS if o.name not in taken)
            format_options = (*info.read_options, *size)
        else:
            if named is None and path is None:
                return component
            info = registry.for_writing(path or "", named)
            format_options = info.write_options
    except AerflowError:
        return component  # an unknown format: the error comes when the file is opened
    fixed = tuple(o for o in component.all_options() if o.positional or o.name == "format")
    options = (*fixed, *format_options)
    return dataclasses.replace(
        component,
        help=f"{component.help}; options of format {info.name} ({info.description})",
        options=options,
    )


def _global_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="aerflow",
        usage="aerflow [--quiet] [--sync] input KIND ARGS [filter NAME ARGS]... "
        "output KIND ARGS [output KIND ARGS]...",
        description="Move events from a source, through filters, to one or more sinks.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--sync", action="store_true", help="read and write on one thread (no read-ahead)"
    )
    return parser


def run_pipeline(argv: Sequence[str]) -> None:
    leading, blocks = split_words(argv)
    settings = _global_parser().parse_args(leading)
    inputs = [b for b in blocks if b.keyword == "input"]
    if len(inputs) > 1:
        raise AerflowError("a pipeline takes one input")
    if blocks and blocks[0].keyword != "input" and inputs:
        raise AerflowError("'input' comes first")
    source_block = inputs[0] if inputs else Block("input", ["stdin"])
    filter_blocks = [b for b in blocks if b.keyword == "filter"]
    sink_blocks = [b for b in blocks if b.keyword == "output"] or [Block("output", ["stdout"])]
    # Parse everything before opening anything: a typo must not leave half-made files.
    source, source_options = parse_block(source_block)
    filters = [parse_block(b) for b in filter_blocks]
    sinks_parsed = [parse_block(b) for b in sink_blocks]

    stream = origin = source.make(**source_options)
    sinks: list[Any] = []
    try:
        if stream.properties.sensor_size is None:
            # A source that learns its properties from its first data (a network stream, a
            # camera) waits for it here, bounded by its own timeout, so that filters and
            # outputs are made from what it announces; the others answer at once.
            stream.wait_for_data()
        stream = stream.filter(*(component.make(**options) for component, options in filters))
        for component, options in sinks_parsed:
            sinks.append(component.make(stream.properties, **options))
        live = stream.properties.live
        bar = None if settings.quiet else ProgressBar.for_terminal(sys.stderr, live)
    except BaseException:
        for sink in sinks:
            getattr(sink, "abort", sink.close)()
        stream.close()
        raise
    try:
        run(stream, *sinks, ahead=None if settings.sync else 4, progress=bar)
    finally:
        if bar is not None:
            bar.close()
        _report_reception(origin, settings.quiet)


def _report_reception(source: Any, quiet: bool) -> None:
    """What a network source received, on stderr: a line of statistics (unless --quiet),
    and a warning whatever --quiet says when nothing usable arrived."""
    stats = getattr(source, "stats", None)
    if stats is not None and hasattr(stats, "reconnects"):  # a DV network stream
        if not quiet:
            sys.stderr.write(
                f"aerflow: received {stats.packets:,} DV packets, {stats.events:,} events; "
                f"skipped {stats.skipped:,}, malformed {stats.malformed:,}, "
                f"outside the sensor {stats.out_of_range:,}, reconnects {stats.reconnects:,}\n"
            )
        return
    if stats is None or not hasattr(stats, "datagrams"):
        return
    if not quiet:
        sys.stderr.write(
            f"aerflow: received {stats.datagrams:,} datagrams, {stats.events:,} events; "
            f"lost {stats.lost:,}, malformed {stats.malformed:,}, "
            f"outside the sensor {stats.out_of_range:,}\n"
        )
    if stats.datagrams == 0:
        sys.stderr.write("aerflow: warning: no datagram arrived\n")
    elif stats.malformed:
        sys.stderr.write(
            f"aerflow: warning: {stats.malformed:,} of {stats.datagrams:,} datagrams did not "
            "decode: does --wire match the sender's format?\n"
        )
