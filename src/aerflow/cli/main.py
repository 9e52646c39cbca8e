"""``aerflow`` command line: the pipeline (``input ... filter ... output ...``) and the
commands ``info``, ``formats``, ``convert``, ``sample``, ``plot``, ``devices``, ``udev`` and
``batch``.

Start-up stays light: a command imports what it runs when it runs (readers, filters, render,
devices, net), and only the chosen command's arguments are added to the parser, so
``aerflow --help``, ``aerflow formats`` and every ``--help`` load no numba kernel and none of
the subpackages (``tests/test_architecture.py`` checks it)."""

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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .. import registry
from ..errors import AerflowError
from .devices import add_device_commands, run_devices, run_udev
from .pipeline import (
    KEYWORDS,
    OneLineErrors,
    add_file_source_options,
    file_source_options,
    run_pipeline,
)

if TYPE_CHECKING:
    from ..stream import Stream

__all__ = ["run"]

INTERPRETED_BYTES = 64 * 1024
"""``info`` and ``convert`` on a file up to this size run the kernels as plain Python,
quicker than loading numba and the kernels (0.3-0.5 s) for every format at this size."""


def _kernels_for(path: str) -> contextlib.AbstractContextManager[None]:
    """Plain-Python kernels for a regular file of up to :data:`INTERPRETED_BYTES`, else the
    compiled ones."""
    from .._jit import interpreted

    small = os.path.isfile(path) and os.path.getsize(path) <= INTERPRETED_BYTES
    return interpreted() if small else contextlib.nullcontext()


def _command_word(argv: Sequence[str]) -> str | None:
    """The command named on the command line (``aerflow`` takes no option before it)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _add_info(commands: Any) -> None:
    info = commands.add_parser("info", help=_COMMANDS["info"][0])
    info.add_argument("file", help="recording to describe")
    info.add_argument("--format", help="format name (default: detected)")
    add_file_source_options(info)


def _add_formats(commands: Any) -> None:
    commands.add_parser("formats", help=_COMMANDS["formats"][0])


def _add_convert(commands: Any) -> None:
    convert = commands.add_parser("convert", help=_COMMANDS["convert"][0])
    convert.add_argument("source", help="recording to read")
    convert.add_argument("destination", help="file to write (format from --to or its extension)")
    convert.add_argument("--from", dest="source_format", help="source format (default: detected)")
    convert.add_argument("--to", dest="destination_format", help="destination format")
    add_file_source_options(convert)


def _add_sample(commands: Any) -> None:
    sample = commands.add_parser("sample", help=_COMMANDS["sample"][0])
    sample.add_argument("destination", help="file to write (format from --to or its extension)")
    sample.add_argument("--to", dest="destination_format", help="destination format")


def _add_plot(commands: Any) -> None:
    from ..render.commands import add_plot_commands

    add_plot_commands(commands, add_file_source_options, help=_COMMANDS["plot"][0])


_COMMANDS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "info": ("describe a recording: format, size, counts, time span", _add_info),
    "formats": ("list the file formats and their options", _add_formats),
    "convert": ("convert a recording to another format", _add_convert),
    "sample": (
        "write a synthetic recording (a rotating bar with noise, 1 s, 640x480)",
        _add_sample,
    ),
    "plot": ("plot a recording: rate, hot-pixels or histogram (needs aerflow[plot])", _add_plot),
}
"""The commands before ``devices`` and ``udev``: their help line (all that ``aerflow --help``
shows) and what adds their arguments (what the command itself needs)."""


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser, with the arguments of ``command`` only: the others are
    listed with their help line (their arguments need the formats' options or a subpackage)."""
    parser = OneLineErrors(
        prog="aerflow",
        description="Move neuromorphic event data from any source to any sink.",
        epilog="pipelines: aerflow input KIND ARGS [filter NAME ARGS]... output KIND ARGS... "
        "(`aerflow input --help`, `aerflow filter --help`, `aerflow output --help`)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments) in _COMMANDS.items():
        if name == command:
            add_arguments(commands)
        else:
            commands.add_parser(name, help=help_text)
    add_device_commands(commands)  # light: cli/devices imports aerflow.devices when run
    commands.add_parser("batch", help="run a pipeline over many files on Dask (batch --help)")
    return parser


def _open_source(path: str, format_name: str | None, args: argparse.Namespace) -> Stream:
    from ..components import open_file_stream

    return open_file_stream(path, format_name, **file_source_options(args))


def _convert(args: argparse.Namespace) -> None:
    from .. import api

    with (
        _kernels_for(args.source),
        _open_source(args.source, args.source_format, args) as reader,
    ):
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
    from .. import api
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
    from .summary import summarize

    with _kernels_for(args.file), _open_source(args.file, args.format, args) as reader:
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
        if not pipeline and argv[:1] == ["batch"]:  # Dask is imported only for a batch
            from ..batch.cli import run_batch

            return run_batch(argv[1:])
        args = None if pipeline else _parser(_command_word(argv)).parse_args(argv)
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
            from ..render.commands import run_plot

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
    for kind in registry.KINDS:
        for component in registry.components(kind).values():
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
