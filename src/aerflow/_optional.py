"""What aerflow imports only when it is used: ``"module:Class"`` references (format readers
and writers, camera drivers and emulators) and optional dependencies (torch, h5py, rosbags,
av, matplotlib, pygame-ce), the latter with one error naming the extra to install."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .errors import MissingDependencyError

__all__ = ["load_lazy", "load_reference", "require"]


def load_reference(reference: str) -> Any:
    """The object a ``"package.module:Name"`` reference names, its module imported now.

    A module that is missing raises ``ModuleNotFoundError`` as ``import`` does (its ``name``
    says which), so a caller can tell an optional module that is absent from a bug."""
    module, colon, attribute = reference.partition(":")
    if not colon or not module or not attribute:
        raise ValueError(f"{reference!r} is not a 'module:Name' reference")
    return getattr(importlib.import_module(module), attribute)


def load_lazy(namespace: dict[str, Any], table: Mapping[str, str], name: str) -> Any:
    """For a package's module ``__getattr__``: the public ``name`` imported from the module
    ``table`` gives for it, then kept in the package's ``namespace`` (its ``globals()``) so
    later look-ups find it directly; an ``AttributeError`` for names ``table`` lacks."""
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    value = load_reference(f"{module}:{name}")
    namespace[name] = value
    return value


def require(
    module: str,
    *,
    extra: str,
    purpose: str,
    package: str | None = None,
    hint: str | None = None,
) -> ModuleType:
    """``module``, imported now; a :class:`~aerflow.errors.MissingDependencyError` (an
    ``ImportError``) when it is missing, saying that ``purpose`` needs ``package`` (by default
    the module's top-level name) and ``pip install 'aerflow[extra]'``, then ``hint``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        needed = package or module.partition(".")[0]
        message = f"{purpose} needs {needed}: pip install 'aerflow[{extra}]'"
        if hint:
            message += f" ({hint})"
        raise MissingDependencyError(message, name=module) from error
