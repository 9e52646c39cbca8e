"""Optional dependencies of aerflow.render, imported on first use with an actionable error."""

from __future__ import annotations

import os
from types import ModuleType

from .. import _optional
from ..errors import MissingDependencyError

__all__ = ["MissingDependencyError", "require"]

_EXTRAS = {"av": "video", "matplotlib": "plot", "pygame": "viewer"}
_DISTRIBUTIONS = {"av": "av", "matplotlib": "matplotlib", "pygame": "pygame-ce"}


def require(module: str, purpose: str) -> ModuleType:
    """``module``, imported now; a :class:`MissingDependencyError` naming the extra to install
    when it is missing."""
    if module == "pygame":
        # pygame greets on import; the library never prints.
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    top = module.partition(".")[0]
    return _optional.require(
        module, extra=_EXTRAS[top], purpose=purpose, package=_DISTRIBUTIONS[top]
    )
