"""Events to tensors: frames in event-time windows on any torch device, or NumPy arrays.

``frames()`` yields one ``(P, H, W)`` array per window (P = 2: index 0 = OFF, 1 = ON; P = 1
with ``merge_polarity``), ``sequence()`` stacks them into ``(T, P, H, W)``, ``batches()``
groups consecutive windows into ``(B, T, P, H, W)`` (or ``(T, B, P, H, W)``) batches, and an
:class:`Accumulator` gathers live packets between reads. Representations: counts, signed
(ON − OFF), binary, exponential time surface and voxel grid
(:mod:`aerflow.tensors.representations`). :class:`EventDataset` serves files, or windows in
them, as a map-style PyTorch dataset.

PyTorch is optional (``pip install 'aerflow[torch]'``) and imported only when a torch device
is used; ``device="numpy"`` gives NumPy arrays without it. Both export through DLPack:
``torch.from_dlpack``, ``numpy.from_dlpack`` or ``jax.dlpack.from_dlpack`` take the arrays
without a copy.
"""

from __future__ import annotations

from ._torch import TorchNotInstalledError
from .accumulate import DEFAULT_CAPACITY
from .batching import batches, sequence
from .dataset import EventDataset
from .live import Accumulator
from .representations import (
    REPRESENTATIONS,
    Binary,
    Counts,
    Representation,
    Signed,
    TimeSurface,
    VoxelGrid,
)
from .windows import Frames, frames

__all__ = [
    "DEFAULT_CAPACITY",
    "REPRESENTATIONS",
    "Accumulator",
    "Binary",
    "Counts",
    "EventDataset",
    "Frames",
    "Representation",
    "Signed",
    "TimeSurface",
    "TorchNotInstalledError",
    "VoxelGrid",
    "batches",
    "frames",
    "sequence",
]
