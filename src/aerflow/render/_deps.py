"""Optional dependencies of aerflow.render, imported on first use with an actionable error."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from ..errors import AerflowError

__all__ = ["MissingDependencyError", "require"]

_EXTRAS = {"av": "video", "matplotlib": "plot", "pygame": "viewer"}
_DISTRIBUTIONS = {"av": "av", "matplotlib": "matplotlib", "pygame": "pygame-ce"}


class MissingDependencyError(AerflowError, ImportError):
    """An optional package that this feature needs is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """``module``, imported now; a :class:`MissingDependencyError` naming the extra to install
    when it is missing."""
    if module == "pygame":
        # pygame greets on import; the library never prints.
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = _EXTRAS[module.partition(".")[0]]
        package = _DISTRIBUTIONS[module.partition(".")[0]]
        raise MissingDependencyError(
            f"{purpose} needs {package}: pip install 'aerflow[{extra}]'", name=module
        ) from error
