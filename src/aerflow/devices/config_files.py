"""Camera configurations in files: TOML or JSON into a driver's frozen configuration dataclass.

Keys are the dataclass's field names; a nested dataclass is a table (``[biases]``), an enum a
member's name (``clock = "internal"``, any case), a tuple or list an array. Settings left out
keep the model's default configuration. TOML has no null: to turn off an optional setting
whose default is on, use JSON (``null``). Unknown keys and values of the wrong type raise
:class:`~aerflow.errors.ConfigurationError` naming the key and the file.

``aerflow devices --config-template MODEL`` prints a model's default configuration as TOML
(:func:`dump`), a starting point for a file.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigurationError

__all__ = ["dump", "from_mapping", "load", "to_mapping"]

C = TypeVar("C")

_NONE_TYPE = type(None)


class _Invalid(Exception):
    """A value that does not fit; ``key`` is the dotted path to it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def load(path: str | os.PathLike[str], configuration_type: type[C]) -> C:
    """The configuration in the TOML (``.toml``) or JSON (``.json``) file ``path``, over
    ``configuration_type``'s defaults."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".toml" and text.lstrip().startswith("{"))
    try:
        data = json.loads(text) if is_json else _toml_loads(text)
    except ValueError as error:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        kind = "JSON" if is_json else "TOML"
        raise ConfigurationError(f"{path}: not valid {kind}: {error}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{path}: expected a table of settings at the top level")
    return from_mapping(data, configuration_type, source=str(path))


def _toml_loads(text: str) -> Any:
    for name in ("tomllib", "tomli"):  # tomllib from Python 3.11; tomli before
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.loads(text)
    raise ConfigurationError(
        "reading TOML needs Python 3.11 or the tomli package: install tomli, or write the "
        "configuration as JSON"
    )


def from_mapping(
    data: Mapping[str, Any], configuration_type: type[C], *, source: str = "configuration"
) -> C:
    """``configuration_type`` built from ``data`` (parsed TOML or JSON) over its defaults.
    ``source`` names where ``data`` came from in error messages."""
    if not (isinstance(configuration_type, type) and dataclasses.is_dataclass(configuration_type)):
        raise TypeError(f"{configuration_type!r} is not a dataclass")
    try:
        base = configuration_type()
    except TypeError:
        base = None
    try:
        result = _dataclass(configuration_type, data, base, "")
    except _Invalid as invalid:
        where = f"{source}: {invalid.key}: " if invalid.key else f"{source}: "
        raise ConfigurationError(where + invalid.message) from None
    return typing.cast(C, result)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to what the fields say
        return {field.name: field.type for field in dataclasses.fields(cls)}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dataclass(cls: type, data: Any, base: Any, key: str) -> Any:
    if not isinstance(data, Mapping):
        raise _Invalid(key, f"expected a table of {cls.__name__} settings, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    unknown = [name for name in data if name not in fields]
    if unknown:
        name = unknown[0]
        raise _Invalid(
            _join(key, str(name)),
            f"unknown setting of {cls.__name__} (known: {', '.join(fields)})",
        )
    values: dict[str, Any] = {}
    for name, value in data.items():
        inner_base = getattr(base, name, None) if base is not None else None
        values[name] = _convert(hints.get(name, Any), value, inner_base, _join(key, name))
    try:
        if base is not None and isinstance(base, cls):
            return dataclasses.replace(typing.cast(Any, base), **values)
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise _Invalid(key, str(error)) from None


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _convert(hint: Any, value: Any, base: Any, key: str) -> Any:
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None:
            if _NONE_TYPE in args:
                return None
            raise _Invalid(key, "this setting cannot be null")
        options = [arg for arg in args if arg is not _NONE_TYPE]
        if len(options) == 1:
            return _convert(options[0], value, base, key)
        first: _Invalid | None = None
        for option in options:
            try:
                return _convert(option, value, base, key)
            except _Invalid as invalid:
                first = first or invalid
        assert first is not None
        raise first
    if value is None:
        raise _Invalid(key, "this setting cannot be null")
    if origin is typing.Literal:
        if any(type(value) is type(arg) and value == arg for arg in args):
            return value
        raise _Invalid(key, f"expected one of {', '.join(map(repr, args))}, got {_describe(value)}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Invalid(key, f"expected an array, got {_describe(value)}")
        if origin is list or (len(args) == 2 and args[1] is Ellipsis) or not args:
            item = args[0] if args else Any
            items = [_convert(item, v, None, f"{key}[{i}]") for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise _Invalid(key, f"expected {len(args)} values, got {len(value)}")
            items = [
                _convert(arg, item, None, f"{key}[{i}]")
                for i, (arg, item) in enumerate(zip(args, value, strict=True))
            ]
        return items if origin is list else tuple(items)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _Invalid(key, f"expected a table, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(item, v, None, _join(key, str(k))) for k, v in value.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _dataclass(hint, value, base if isinstance(base, hint) else None, key)
        if issubclass(hint, enum.Enum):
            return _enum(hint, value, key)
        if hint is bool:
            if isinstance(value, bool):
                return value
            raise _Invalid(key, f"expected true or false, got {_describe(value)}")
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise _Invalid(key, f"expected an integer, got {_describe(value)}")
        if hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise _Invalid(key, f"expected a number, got {_describe(value)}")
        if hint is str:
            if isinstance(value, str):
                return value
            raise _Invalid(key, f"expected a string, got {_describe(value)}")
        if isinstance(value, hint):
            return value
        raise _Invalid(key, f"expected {hint.__name__}, got {_describe(value)}")
    return value


def _enum(cls: type[enum.Enum], value: Any, key: str) -> enum.Enum:
    names = [member.name for member in cls]
    if isinstance(value, str):
        wanted = value.strip().replace("-", "_").upper()
        for member in cls:
            if member.name.upper() == wanted:
                return member
    raise _Invalid(key, f"expected one of {', '.join(names)} (names), got {_describe(value)}")


# -- writing ------------------------------------------------------------------------------------
def to_mapping(configuration: Any) -> dict[str, Any]:
    """``configuration`` as plain data (enums by name, tuples as lists, None kept): what
    :func:`from_mapping` reads back, and what ``json.dumps`` writes."""
    if not dataclasses.is_dataclass(configuration) or isinstance(configuration, type):
        raise TypeError(f"{configuration!r} is not a dataclass instance")
    return {
        field.name: _plain(getattr(configuration, field.name))
        for field in dataclasses.fields(configuration)
        if field.init
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_mapping(value)
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and hasattr(value, "dtype"):  # NumPy scalars
        return value.item()
    return value


def dump(configuration: Any, *, header: str | None = None) -> str:
    """``configuration`` as a TOML document that :func:`load` reads back. Settings that are
    None are written as comments (TOML has no null)."""
    lines: list[str] = []
    if header:
        lines += [f"# {line}".rstrip() for line in header.splitlines()]
    _table(to_mapping(configuration), [], lines)
    return "\n".join(lines).strip("\n") + "\n"


def _table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append(f"[{'.'.join(_toml_key(p) for p in path)}]")
    for name, value in scalars.items():
        if value is None:
            lines.append(f"# {_toml_key(name)} = (not set)")
        else:
            lines.append(f"{_toml_key(name)} = {_toml_value(value)}")
    for name, value in tables.items():
        _table(value, [*path, name], lines)


def _toml_key(name: str) -> str:
    if name and all(c.isalnum() or c in "_-" for c in name) and name.isascii():
        return name
    return json.dumps(name)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        if any(isinstance(item, Mapping) for item in value):
            raise TypeError("arrays of tables are not supported in configurations")
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
