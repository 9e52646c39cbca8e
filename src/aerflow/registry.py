"""The registry: every file format (names, extensions, magic bytes, options) and every
pipeline component (sources, filters, sinks), each declared once with its options.

Readers and writers are referenced as ``"module:Class"`` strings and imported on first use
(:func:`aerflow._optional.load_reference`), so listing formats, detecting one and the CLI's
start-up load no reader, writer or numba kernel: the sniffers that ``aerflow.formats``
registers are plain Python over the file's first bytes. Components declare
themselves where they are defined (``@declares("filter", ...)`` on a filter class,
:func:`register_component` for builders); the tables are filled by importing the modules named
in :data:`PROVIDERS` the first time a kind is looked up. The stream shortcuts, the command
line's blocks, their ``--help`` and the listings are all read from these tables, and
:meth:`Component.make` refuses options a component does not declare. Nothing here imports the
modules that register: imports point one way, into this module.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._checks import check_format_name
from ._optional import load_reference
from .errors import OptionError, UnknownComponentError, UnknownFormatError

__all__ = [
    "KINDS",
    "PROVIDERS",
    "Component",
    "FormatInfo",
    "Option",
    "check_options",
    "component",
    "components",
    "declares",
    "detect",
    "for_writing",
    "get",
    "list_formats",
    "register",
    "register_component",
]

SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Option:
    """A keyword a reader, writer, source, filter or sink accepts.

    ``positional`` ones come first on the command line, in order; a positional option with
    ``required=False`` may be left out. ``command_line=False`` marks a keyword only Python
    callers pass (a dict of header entries): declared, checked, not offered as a flag.
    """

    name: str
    type: type
    help: str
    default: Any = None
    choices: tuple[Any, ...] | None = None
    positional: bool = False
    required: bool = False
    command_line: bool = True


def check_options(owner: str, declared: tuple[Option, ...], given: Mapping[str, Any]) -> None:
    """Refuse keywords that ``declared`` does not name with an :class:`OptionError` naming
    ``owner`` (e.g. ``"filter crop"``) and the options it takes."""
    names = [o.name for o in declared]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise OptionError(
            f"{owner} takes no option {', '.join(unknown)}; "
            f"its options: {', '.join(names) or 'none'}"
        )


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

    def options(self, mode: str) -> tuple[Option, ...]:
        """The declared options of the reader (``"r"``) or the writer (``"w"``)."""
        if mode not in ("r", "w"):
            raise ValueError(f"mode must be 'r' or 'w', got {mode!r}")
        return self.read_options if mode == "r" else self.write_options

    def check_options(
        self,
        mode: str,
        options: Mapping[str, Any],
        path: str | os.PathLike[str] | None = None,
        guessed: bool = False,
    ) -> None:
        """Refuse options this format's reader or writer does not declare, with an
        :class:`OptionError` naming the format, the mode and the options it takes (and, when
        the format was ``guessed`` from the file, how to name another)."""
        purpose = "reading" if mode == "r" else "writing"
        owner = f"{self.name} {purpose}"
        if path is not None:
            owner = f"{os.fspath(path)}: {owner}"
        try:
            check_options(owner, self.options(mode), options)
        except OptionError as error:
            if not guessed:
                raise
            raise OptionError(
                f"{error} (the format was chosen from the file's first bytes or its name: "
                "pass format= to choose another)"
            ) from None

    def reader_class(self) -> Any:
        return _load(self.reader, self.name, "reading")

    def writer_class(self) -> Any:
        return _load(self.writer, self.name, "writing")


_REGISTRY: dict[str, FormatInfo] = {}


def _load(reference: str | None, name: str, purpose: str) -> Any:
    if reference is None:
        raise UnknownFormatError(f"format {name!r} does not support {purpose}")
    return load_reference(reference)


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


# -- pipeline components --------------------------------------------------------------------------
KINDS = ("source", "filter", "sink")

PROVIDERS: dict[str, tuple[str, ...]] = {
    "source": ("aerflow.components",),
    "filter": ("aerflow.filters",),
    "sink": ("aerflow.components", "aerflow.render.components"),
}
"""The modules whose import registers each kind of component (imported on first look-up)."""


@dataclass(frozen=True)
class Component:
    """A source, filter or sink: its name, what it does, its options and how to build it.

    Sources and filters build from their options alone; sinks from the stream's properties
    and their options. ``options`` may be a function giving them (the union of the formats'
    options, read when asked for). The options' names are the keywords ``build`` takes, in
    Python and (with ``-`` for ``_``) on the command line."""

    name: str
    help: str
    options: tuple[Option, ...] | Callable[[], tuple[Option, ...]]
    build: Callable[..., Any]
    kind: str = ""

    def all_options(self) -> tuple[Option, ...]:
        return self.options() if callable(self.options) else self.options

    def make(self, *leading: Any, **options: Any) -> Any:
        """Build it, refusing options it does not declare with an :class:`OptionError`.

        ``leading`` are the sink's properties, then positional options in declared order."""
        check_options(f"{self.kind or 'component'} {self.name}", self.all_options(), options)
        return self.build(*leading, **options)


_COMPONENTS: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
_LOADED: set[str] = set()


def register_component(kind: str, item: Component) -> Component:
    """Add a component of ``kind`` (replacing one of the same name)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if item.kind != kind:
        item = Component(item.name, item.help, item.options, item.build, kind)
    _COMPONENTS[kind][item.name] = item
    return item


_T = TypeVar("_T")


def declares(
    kind: str,
    name: str,
    help: str,
    options: tuple[Option, ...] = (),
    build: Callable[..., Any] | None = None,
) -> Callable[[_T], _T]:
    """Class decorator: register the decorated class as the component ``name`` of ``kind``,
    built by ``build`` (default: the class itself, called with the options)."""

    def decorate(cls: _T) -> _T:
        maker: Callable[..., Any] = build or cls  # type: ignore[assignment]
        register_component(kind, Component(name, help, options, maker, kind))
        return cls

    return decorate


def components(kind: str) -> dict[str, Component]:
    """Every registered component of ``kind`` by name, in registration order (the table
    itself: later registrations show in it)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind not in _LOADED:
        for module in PROVIDERS[kind]:
            importlib.import_module(module)  # registers (a module being imported: no-op)
        _LOADED.add(kind)
    return _COMPONENTS[kind]


def component(kind: str, name: str) -> Component:
    """The component ``name`` of ``kind``; an :class:`~aerflow.errors.UnknownComponentError`
    (a LookupError) naming the known ones when there is none."""
    table = components(kind)
    try:
        return table[name]
    except KeyError:
        raise UnknownComponentError(
            f"unknown {kind} {name!r} (known: {', '.join(table)})"
        ) from None
