"""``aerflow plot rate|hot-pixels|histogram FILE [-o IMAGE]``: the command-line face of
:mod:`aerflow.render.plots`. Only the CLI calls :func:`run_plot`, which writes to the
terminal stream it is given."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["add_plot_commands", "run_plot"]

_KINDS = {
    "rate": "event rate over time, ON and OFF apart",
    "hot-pixels": "events per pixel as an image; the hottest pixels are listed",
    "histogram": "inter-event intervals on log axes",
}


def add_plot_commands(
    subparsers: Any,
    source_options: Callable[[argparse.ArgumentParser], None] | None = None,
    *,
    help: str | None = None,
) -> argparse.ArgumentParser:
    """Add the ``plot`` command (with its kinds) to an argparse ``add_subparsers()`` object;
    :func:`run_plot` then handles the parsed arguments (``args.command == "plot"``).
    ``source_options`` adds the options that open the recording (the CLI's ``input file``
    options); ``help`` is the command's line in the list of commands (the CLI's own, which
    ``aerflow --help`` shows without importing this module)."""
    plot: argparse.ArgumentParser = subparsers.add_parser(
        "plot",
        help=help,
        description="Plot a recording into an image file (PNG, SVG or PDF by the extension).",
    )
    kinds = plot.add_subparsers(dest="plot_kind", required=True, metavar="KIND")
    for kind, help_text in _KINDS.items():
        parser = kinds.add_parser(kind, help=help_text, description=help_text)
        parser.add_argument("file", help="recording to plot")
        parser.add_argument(
            "-o",
            "--output",
            help=f"image to write (default: FILE's name with -{kind}.png, here)",
        )
        parser.add_argument("--format", help="recording format (default: detected)")
        parser.add_argument("--title", help="figure title (default: a summary)")
        if source_options is not None:
            source_options(parser)
        if kind == "rate":
            parser.add_argument(
                "--bin",
                help="bin width, e.g. 10ms (default: at most 2000 bins of 10 µs, 20 µs, 100 µs...)",
            )
        elif kind == "hot-pixels":
            parser.add_argument(
                "--count", type=int, default=10, help="pixels to list (default: 10)"
            )
        else:
            parser.add_argument(
                "--scope",
                choices=("pixel", "stream"),
                default="pixel",
                help="intervals between events of the same pixel, or of any (default: pixel)",
            )
    return plot


def _output(args: argparse.Namespace) -> str:
    if args.output:
        output: str = args.output
        return output
    stem = os.path.splitext(os.path.basename(args.file))[0]
    return f"{stem}-{args.plot_kind}.png"


def run_plot(
    args: argparse.Namespace, out: TextIO, open_source: Callable[[], Any] | None = None
) -> None:
    """Make the plot that ``args`` asks for; ``hot-pixels`` lists the pixels on ``out``.
    ``open_source`` opens the recording (by default as ``aerflow.open`` does)."""
    from ..api import open as open_file
    from . import plots

    stream = open_source() if open_source else open_file(args.file, "r", format=args.format)
    kind = args.plot_kind
    if kind == "rate":
        figure, _ = plots.plot_rate(stream, args.bin, title=args.title)
    elif kind == "hot-pixels":
        figure, data = plots.plot_hot_pixels(stream, args.count, title=args.title)
        out.write(format_hot_pixels(data.hottest))
    else:
        figure, _ = plots.plot_interval_histogram(
            stream, per_pixel=args.scope == "pixel", title=args.title
        )
    figure.savefig(_output(args))


def format_hot_pixels(hottest: list[Any]) -> str:
    """The hottest pixels as an aligned table (a header line, then one line each)."""
    lines = [f"{'rank':>4} {'x':>6} {'y':>6} {'events':>12} {'share':>8}"]
    for rank, pixel in enumerate(hottest, 1):
        lines.append(f"{rank:>4} {pixel.x:>6} {pixel.y:>6} {pixel.events:>12,} {pixel.share:>8.2%}")
    return "\n".join(lines) + "\n"
