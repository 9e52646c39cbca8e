"""``aerflow`` command line: the pipeline (``input ... filter ... output ...``) and the
commands ``info``, ``formats``, ``convert``, ``sample``, ``devices`` and ``udev``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from .. import api, registry
from ..components import FILTERS, SINKS, SOURCES, open_file_stream
from ..errors import AerflowError
from ..render.commands import add_plot_commands, run_plot
from ..stream import Stream
from .devices import add_device_commands, run_devices, run_udev
from .pipeline import (
    KEYWORDS,
    OneLineErrors,
    add_file_source_options,
    file_source_options,
    run_pipeline,
)
from .summary import summarize

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="aerflow",
        description="Move neuromorphic event data from any source to any sink.",
        epilog="pipelines: aerflow input KIND ARGS [filter NAME ARGS]... output KIND ARGS... "
        "(`aerflow input --help`, `aerflow filter --help`, `aerflow output --help`)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser("info", help="describe a recording: format, size, counts, time span")
    info.add_argument("file", help="recording to describe")
    info.add_argument("--format", help="format name (default: detected)")
    add_file_source_options(info)
    commands.add_parser("formats", help="list the file formats and their options")
    convert = commands.add_parser("convert", help="convert a recording to another format")
    convert.add_argument("source", help="recording to read")
    convert.add_argument("destination", help="file to write (format from --to or its extension)")
    convert.add_argument("--from", dest="source_format", help="source format (default: detected)")
    convert.add_argument("--to", dest="destination_format", help="destination format")
    add_file_source_options(convert)
    sample = commands.add_parser(
        "sample", help="write a synthetic recording (a rotating bar with noise, 1 s, 640x480)"
    )
    sample.add_argument("destination", help="file to write (format from --to or its extension)")
    sample.add_argument("--to", dest="destination_format", help="destination format")
    add_plot_commands(commands, add_file_source_options)
    add_device_commands(commands)
    return parser


def _open_source(path: str, format_name: str | None, args: argparse.Namespace) -> Stream:
    return open_file_stream(path, format_name, **file_source_options(args))


def _convert(args: argparse.Namespace) -> None:
    with _open_source(args.source, args.source_format, args) as reader:
        width, height = reader.properties.width, reader.properties.height
        if width is None or height is None:
            raise AerflowError(
                f"{args.source} does not give its sensor size: pass --width and --height"
            )
        options: dict[str, Any] = {"width": width, "height": height}
        with api.open(args.destination, "w", format=args.destination_format, **options) as writer:
            for packet in reader:
                writer.write(packet)


def _sample(args: argparse.Namespace) -> None:
    from ..synthetic import rotating_bar

    api.write(
        args.destination, rotating_bar(), format=args.destination_format, width=640, height=480
    )


def _print_formats(out: TextIO) -> None:
    for info in registry.list_formats():
        modes = "/".join(m for m, ok in (("read", info.reader), ("write", info.writer)) if ok)
        out.write(
            f"{info.name:<8} {' '.join(info.extensions):<10} {modes:<11} {info.description}\n"
        )
        for title, options in (("read", info.read_options), ("write", info.write_options)):
            if options:
                names = ", ".join(o.name for o in options)
                out.write(f"{'':<8} {title} options: {names}\n")


def _print_info(args: argparse.Namespace, out: TextIO) -> None:
    with _open_source(args.file, args.format, args) as reader:
        summary = summarize(reader)
    for label, value in summary.lines():
        out.write(f"{label:<16}{value}\n")


def _is_pipeline(argv: Sequence[str]) -> bool:
    words = [w for w in argv if w not in ("--quiet", "--sync")]
    if not words:
        return bool(argv) or not sys.stdin.isatty()
    return words[0] in KEYWORDS


def run(argv: Sequence[str] | None = None) -> int:
    with _second_interrupt_exits_at_once():
        return _run(argv)


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    pipeline = _is_pipeline(argv)
    logging.basicConfig(level=logging.WARNING, format="aerflow: %(message)s")
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, *_: f"aerflow: warning: {message}\n"
    try:
        args = None if pipeline else _parser().parse_args(argv)
        if args is None:
            run_pipeline(argv)
        elif args.command == "formats":
            _print_formats(sys.stdout)
        elif args.command == "info":
            _print_info(args, sys.stdout)
        elif args.command == "convert":
            _convert(args)
        elif args.command == "sample":
            _sample(args)
        elif args.command == "plot":
            run_plot(args, sys.stdout, lambda: _open_source(args.file, args.format, args))
        elif args.command == "devices":
            run_devices(args, sys.stdout)
        elif args.command == "udev":
            run_udev(args, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except (AerflowError, OSError, ValueError) as error:
        if _debugging():
            raise
        print(f"aerflow: error: {in_cli_words(str(error))}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: one line still, and how to see where it happened
        if _debugging():
            raise
        print(
            f"aerflow: error: {type(error).__name__}: {error} "
            "(AERFLOW_DEBUG=1 shows where it happened)",
            file=sys.stderr,
        )
        return 1
    return 0


@contextlib.contextmanager
def _second_interrupt_exits_at_once() -> Iterator[None]:
    """The first Ctrl-C stops the work cleanly (partial outputs removed); a second one,
    while that cleanup runs, ends the process at once."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield  # SIGINT ignored (a background job) or handled by a host program
        return

    def on_interrupt(number: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, lambda *_: os._exit(128 + signal.SIGINT))
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def in_cli_words(message: str) -> str:
    """A library message as the command line says it: ``format=`` becomes ``--format`` and
    ``camera='davis346'`` becomes ``--camera davis346``, for every option name aerflow has."""
    return _keyword_pattern().sub(_as_flag, message)


def _option_names() -> list[str]:
    names = {"format"}
    for info in registry.list_formats():
        names.update(o.name for o in (*info.read_options, *info.write_options))
    for table in (SOURCES, FILTERS, SINKS):
        for component in table.values():
            names.update(o.name for o in component.all_options() if not o.positional)
    return sorted(names, key=len, reverse=True)


@functools.cache
def _keyword_pattern() -> re.Pattern[str]:
    """A keyword, then '=' and a quoted value, or '=' then the end of a word (built on the
    first error, not at every start)."""
    names = "|".join(map(re.escape, _option_names()))
    return re.compile(r"\b(" + names + r")=(?:'([^']*)'|(?=[\s,.;:)]|$))")


def _as_flag(match: re.Match[str]) -> str:
    flag = "--" + match.group(1).replace("_", "-")
    return flag if match.group(2) is None else f"{flag} {match.group(2)}"


def _debugging() -> bool:
    """AERFLOW_DEBUG=1: errors end in their traceback instead of one line."""
    return os.environ.get("AERFLOW_DEBUG", "").strip() not in ("", "0")
