"""The public verbs: open, read, write."""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from . import formats as _formats  # noqa: F401  (registers the built-in formats)
from ._checks import check_format_name, check_int
from ._output import breaking_hard_links
from .events import TRIGGERS_DTYPE, Packet, as_events, empty_triggers
from .formats import FileReader, FileWriter
from .registry import detect, for_writing

__all__ = ["open", "read", "write"]

PathLike = str | os.PathLike[str]


@overload
def open(
    path: PathLike, mode: Literal["r"] = "r", *, format: str | None = None, **options: Any
) -> FileReader: ...
@overload
def open(
    path: PathLike,
    mode: Literal["w"],
    *,
    format: str | None = None,
    break_hard_links: bool = False,
    **options: Any,
) -> FileWriter: ...


def open(
    path: PathLike,
    mode: str = "r",
    *,
    format: str | None = None,
    break_hard_links: bool = False,
    **options: Any,
) -> FileReader | FileWriter:
    """Open a recording for reading (``"r"``) or writing (``"w"``).

    The format is ``format`` when given, else (reading) what the file's first bytes say, else
    its extension. ``options`` are the format's reader or writer options (``aerflow formats``
    lists them). Both objects are context managers; a reader iterates :class:`Packet` objects
    and has ``.properties``, ``.metadata`` and ``.read()``; a writer has ``.write(events)``.

    A writer replaces a file only when it closes without error, keeping the file's mode; it
    writes a device, FIFO or socket as a stream without replacing it, follows a symbolic link
    to its target, takes ``-`` for standard output (with ``format``), and refuses a directory
    or a file with other hard links (unless ``break_hard_links``).
    """
    check_format_name(format)
    for name in ("width", "height"):
        # Here for every format: some writers would take int(True) or int("640") as a size
        # (each format checks the range it can store).
        if options.get(name) is not None:
            check_int(options[name], name)
    if mode == "r":
        info = detect(path, format)
        info.check_options("r", options, path, format is None)
        reader: FileReader = info.reader_class()(path, **options)
        return reader
    if mode == "w":
        info = for_writing(path, format)
        info.check_options("w", options, path, format is None)
        writer_class = info.writer_class()
        writer: FileWriter = writer_class.__new__(writer_class)
        try:
            with breaking_hard_links(break_hard_links):
                writer_class.__init__(writer, path, **options)
        except BaseException:
            # A writer refused (or interrupted) after its output was opened: the temporary
            # file goes, the destination stays as it was.
            with contextlib.suppress(Exception):
                writer.abort()
            raise
        return writer
    raise ValueError(f"mode must be 'r' or 'w', got {mode!r}")


def _declared_signature(cls: type) -> inspect.Signature:
    """The signature that names a class's options: a subclass whose ``__init__`` passes
    ``**options`` on to its base takes what that base takes."""
    gathered: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init).parameters.values())[1:]  # without self
        passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        for parameter in parameters:
            if parameter.kind is not inspect.Parameter.VAR_KEYWORD:
                gathered.setdefault(parameter.name, parameter)
        if not passes_on:
            ordered = sorted(gathered.values(), key=lambda p: p.kind)  # positional ones first
            return inspect.Signature(ordered)
    return inspect.signature(cls)


def required_options(cls: type) -> set[str]:
    """The options a reader or writer class cannot do without (keywords with no default).

    The formats' declarations do not mark these ``required`` yet; the file sink asks here."""
    return {
        parameter.name
        for parameter in list(_declared_signature(cls).parameters.values())[1:]
        if parameter.default is inspect.Parameter.empty
        and parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


@overload
def read(
    path: PathLike, *, format: str | None = ..., triggers: Literal[False] = ..., **options: Any
) -> npt.NDArray[Any]: ...
@overload
def read(
    path: PathLike, *, format: str | None = ..., triggers: Literal[True], **options: Any
) -> Packet: ...


def read(
    path: PathLike, *, format: str | None = None, triggers: bool = False, **options: Any
) -> npt.NDArray[Any] | Packet:
    """Read a whole recording: the events array, or with ``triggers=True`` a :class:`Packet`
    holding events and triggers."""
    with open(path, "r", format=format, **options) as reader:
        packet = reader.read()
    return packet if triggers else packet.events


def write(
    path: PathLike,
    events: npt.ArrayLike | Packet,
    *,
    format: str | None = None,
    triggers: npt.ArrayLike | None = None,
    break_hard_links: bool = False,
    **options: Any,
) -> None:
    """Write a whole recording: an events array (with ``triggers``) or a :class:`Packet`
    (with its IMU samples and frames, where the format stores them). Without
    ``width``/``height``, the sensor is taken to be just large enough for the events."""
    if isinstance(events, Packet):
        if triggers is not None:
            raise TypeError("pass triggers inside the packet, not beside it")
        packet = events
    else:
        packet = Packet(
            as_events(events),
            empty_triggers()
            if triggers is None
            else np.asarray(triggers).astype(TRIGGERS_DTYPE, copy=False),
        )
    array = as_events(packet.events)
    if "width" not in options and "height" not in options:
        options["width"] = int(array["x"].max()) + 1 if len(array) else 1
        options["height"] = int(array["y"].max()) + 1 if len(array) else 1
    with open(path, "w", format=format, break_hard_links=break_hard_links, **options) as writer:
        writer.write(packet)
