"""The format registry: names, extensions, magic bytes and options of every file format.

Readers and writers are referenced as ``"module:Class"`` strings and imported on first use, so
listing formats (and the CLI's start-up) does not load numba kernels.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._checks import check_format_name
from .errors import UnknownFormatError

__all__ = ["FormatInfo", "Option", "detect", "for_writing", "get", "list_formats", "register"]

SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Option:
    """A keyword a reader, writer, source, filter or sink accepts.

    ``positional`` ones come first on the command line, in order; a positional option with
    ``required=False`` may be left out.
    """

    name: str
    type: type
    help: str
    default: Any = None
    choices: tuple[Any, ...] | None = None
    positional: bool = False
    required: bool = False


@dataclass(frozen=True)
class FormatInfo:
    """One file format: how to recognise it and where its reader and writer live."""

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    """True when the file's first bytes (up to 64 KiB) are this format."""
    reader: str | None = None
    writer: str | None = None
    read_options: tuple[Option, ...] = ()
    write_options: tuple[Option, ...] = ()
    default_for_extension: bool = field(default=False)
    """Chosen for writing when a path's extension is shared by several formats."""
    sniff_folder: Callable[[str], bool] | None = None
    """For formats stored as a folder (a ROS 2 bag): True when the folder at a path is one."""

    def reader_class(self) -> Any:
        return _load(self.reader, self.name, "reading")

    def writer_class(self) -> Any:
        return _load(self.writer, self.name, "writing")


_REGISTRY: dict[str, FormatInfo] = {}


def _load(reference: str | None, name: str, purpose: str) -> Any:
    if reference is None:
        raise UnknownFormatError(f"format {name!r} does not support {purpose}")
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def register(info: FormatInfo) -> FormatInfo:
    """Add a format (replacing one of the same name)."""
    _REGISTRY[info.name] = info
    return info


def list_formats() -> list[FormatInfo]:
    """Every registered format, in registration order."""
    return list(_REGISTRY.values())


def get(name: str) -> FormatInfo:
    check_format_name(name)
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnknownFormatError(f"unknown format {name!r} (known: {known})") from None


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def detect(path: str | os.PathLike[str], format: str | None = None) -> FormatInfo:
    """The format of an existing file: explicit name, else contents, else extension."""
    if format is not None:
        return get(format)
    path = os.fspath(path)
    if os.path.isdir(path):
        for info in _REGISTRY.values():
            if info.reader and info.sniff_folder is not None and info.sniff_folder(path):
                return info
        raise UnknownFormatError(f"{path} is a folder that no format reads; name a file")
    with open(path, "rb") as file:
        head = file.read(SNIFF_BYTES)
    for info in _REGISTRY.values():
        if info.reader is not None and info.sniff(head):
            return info
    extension = _extension(path)
    candidates = [i for i in _REGISTRY.values() if extension in i.extensions and i.reader]
    if len(candidates) == 1:
        return candidates[0]
    raise UnknownFormatError(
        f"{path}: cannot tell the format from its contents"
        + (f" or its extension {extension!r}" if extension else "")
        + "; name it explicitly with format=..."
    )


def for_writing(path: str | os.PathLike[str], format: str | None = None) -> FormatInfo:
    """The format to write: explicit name, else the path's extension."""
    if format is not None:
        return get(format)
    extension = _extension(os.fspath(path))
    candidates = [i for i in _REGISTRY.values() if extension in i.extensions and i.writer]
    preferred = [i for i in candidates if i.default_for_extension]
    if len(candidates) == 1 or preferred:
        return (preferred or candidates)[0]
    raise UnknownFormatError(
        f"{os.fspath(path)}: no writer for extension {extension!r}; name one with format=..."
    )
