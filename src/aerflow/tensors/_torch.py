"""Importing PyTorch lazily, with an actionable error when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import AerflowError

__all__ = ["TorchNotInstalledError", "require_torch"]

INSTALL_HINT = (
    "install it with: pip install 'aerflow[torch]'  (CPU-only machines: "
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu), "
    "or pass device='numpy' to get NumPy arrays instead of tensors"
)


class TorchNotInstalledError(AerflowError, ImportError):
    """PyTorch is needed (tensors on a device) but is not installed."""


def require_torch() -> ModuleType:
    """The ``torch`` module, imported on first use."""
    try:
        return importlib.import_module("torch")
    except ImportError as error:
        raise TorchNotInstalledError(
            f"aerflow.tensors needs PyTorch for tensors: {INSTALL_HINT}", name="torch"
        ) from error
