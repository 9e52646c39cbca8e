"""Importing PyTorch lazily, with an actionable error when it is missing."""

from __future__ import annotations

from types import ModuleType

from .._optional import require
from ..errors import MissingDependencyError

__all__ = ["TorchNotInstalledError", "require_torch"]

TorchNotInstalledError = MissingDependencyError
"""The name :mod:`aerflow.tensors` has always exported for a missing PyTorch."""

_HINT = (
    "CPU-only machines: pip install torch==2.13.0 --index-url "
    "https://download.pytorch.org/whl/cpu; or pass device='numpy' to get NumPy arrays "
    "instead of tensors"
)


def require_torch() -> ModuleType:
    """The ``torch`` module, imported on first use."""
    return require("torch", extra="torch", purpose="aerflow.tensors", package="PyTorch", hint=_HINT)
