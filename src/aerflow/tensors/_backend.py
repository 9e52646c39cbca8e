"""The two array backends the accumulator runs on: PyTorch (any device) and NumPy.

Both offer the same few operations: staging buffers the packing kernels write into, an upload
of those buffers to the device, scatter-accumulation into a flat ring of window slots, and the
in-place element-wise operations that turn a slot into a frame. On CUDA, staging buffers are
pinned, copies run on a side stream with ``non_blocking=True`` and are ordered against the
accumulation by CUDA events, so one buffer can be filled and copied while the other is being
accumulated. On the CPU the same torch calls run synchronously on the staged memory itself.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _kernels as kernels
from ._torch import require_torch

__all__ = ["DTYPE_NAMES", "Backend", "NumpyBackend", "Staging", "TorchBackend", "make_backend"]

log = logging.getLogger(__name__)

DTYPE_NAMES = (
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
)
"""Output dtypes frames can take (bfloat16 on the torch backend only)."""

SATURATION: dict[str, tuple[int, int]] = {
    "bool": (0, 1),
    "uint8": (0, 255),
    "int8": (-128, 127),
    "int16": (-32768, 32767),
    "float16": (-65504, 65504),
}
"""Where integer counts must be clipped to fit a dtype; dtypes not listed hold any int32."""


def dtype_name(spec: Any) -> str:
    """The canonical name of a torch or NumPy dtype, or of a dtype given by name."""
    if isinstance(spec, str):
        name = spec.removeprefix("torch.")
    elif type(spec).__module__ == "torch" and type(spec).__name__ == "dtype":
        name = str(spec).removeprefix("torch.")
    else:
        try:
            name = np.dtype(spec).name
        except TypeError as error:
            raise TypeError(f"cannot read {spec!r} as a dtype") from error
    aliases = {"float": "float32", "double": "float64", "half": "float16", "long": "int64"}
    name = aliases.get(name, name)
    if name not in DTYPE_NAMES:
        raise ValueError(f"unsupported dtype {spec!r}: use one of {', '.join(DTYPE_NAMES)}")
    return name


class Staging:
    """A host buffer of packed events (filled by the kernels) and its device twin."""

    def __init__(
        self,
        host: dict[str, Any],
        arrays: dict[str, npt.NDArray[Any]],
        device: dict[str, Any],
        uploaded: tuple[str, ...],
    ) -> None:
        self.host = host
        self.arrays = arrays
        """NumPy views of ``host`` for the kernels to write into."""
        self.device = device
        self.uploaded = uploaded
        self.copied: Any = None
        self.consumed: Any = None


class Backend(ABC):
    """What the accumulator needs from an array library."""

    name: str
    cuda = False

    @abstractmethod
    def dtype(self, name: str) -> Any: ...

    def host(self, array: Any) -> npt.NDArray[Any] | None:
        """A NumPy view of ``array`` that numba kernels can write into, when it lives in host
        memory with a dtype numba handles; None otherwise (element-wise array operations
        are used then)."""
        return None

    @abstractmethod
    def empty(self, shape: tuple[int, ...], dtype: str) -> Any: ...

    @abstractmethod
    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> Any: ...

    @abstractmethod
    def staging(self, capacity: int, fields: dict[str, tuple[str, bool]]) -> Staging:
        """Buffers of ``capacity`` entries: name -> (NumPy dtype name, uploaded to device)."""

    def writable(self, staging: Staging) -> None:  # noqa: B027 - nothing to wait for by default
        """Wait until the host buffers may be overwritten (their last copy has finished)."""

    @abstractmethod
    def upload(self, staging: Staging, n: int) -> dict[str, Any]:
        """The first ``n`` entries of the uploaded fields, on the device."""

    def consumed(self, staging: Staging) -> None:  # noqa: B027 - nothing to record by default
        """Mark the device twin as read: the next upload into it may start."""

    @abstractmethod
    def add_ones(self, flat: Any, indices: Any) -> None: ...

    @abstractmethod
    def add_values(self, flat: Any, indices: Any, values: Any, offset: int) -> None: ...

    @abstractmethod
    def maximum_at(self, flat: Any, indices: Any, values: Any) -> None: ...

    @abstractmethod
    def copy_(self, target: Any, source: Any) -> None: ...

    @abstractmethod
    def clamp_(self, array: Any, low: float | None, high: float | None) -> None: ...

    @abstractmethod
    def fill_(self, array: Any, value: float) -> None: ...

    @abstractmethod
    def sub_(self, array: Any, other: Any) -> None: ...

    @abstractmethod
    def maximum_(self, array: Any, other: Any) -> None: ...

    @abstractmethod
    def subtract(self, array: Any, value: int, out: Any) -> None: ...

    @abstractmethod
    def div_(self, array: Any, value: float) -> None: ...

    @abstractmethod
    def less_equal(self, array: Any, value: int, out: Any) -> None: ...

    @abstractmethod
    def zero_where(self, array: Any, mask: Any) -> None: ...

    @abstractmethod
    def exp_(self, array: Any) -> None: ...

    @abstractmethod
    def clone(self, array: Any) -> Any: ...

    @abstractmethod
    def stack(self, arrays: list[Any], shape: tuple[int, ...], dtype: str) -> Any: ...


class NumpyBackend(Backend):
    """NumPy arrays in host memory; scatter operations are numba kernels."""

    name = "numpy"

    def dtype(self, name: str) -> Any:
        if name == "bfloat16":
            raise ValueError("NumPy has no bfloat16; use a torch device for it")
        return np.dtype(name)

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        return np.empty(shape, self.dtype(dtype))

    def host(self, array: Any) -> npt.NDArray[Any] | None:
        return None if array.dtype == np.float16 else array

    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> Any:
        return np.full(shape, value, self.dtype(dtype))

    def staging(self, capacity: int, fields: dict[str, tuple[str, bool]]) -> Staging:
        arrays = {name: np.empty(capacity, kind) for name, (kind, _) in fields.items()}
        uploaded = tuple(name for name, (_, up) in fields.items() if up)
        return Staging(arrays, arrays, arrays, uploaded)

    def upload(self, staging: Staging, n: int) -> dict[str, Any]:
        return {name: staging.arrays[name][:n] for name in staging.uploaded}

    def add_ones(self, flat: Any, indices: Any) -> None:
        kernels.add_ones(flat, indices)

    def add_values(self, flat: Any, indices: Any, values: Any, offset: int) -> None:
        kernels.add_values(flat, indices, values, offset)

    def maximum_at(self, flat: Any, indices: Any, values: Any) -> None:
        kernels.maximum_at(flat, indices, values)

    def copy_(self, target: Any, source: Any) -> None:
        np.copyto(target, source, casting="unsafe")

    def clamp_(self, array: Any, low: float | None, high: float | None) -> None:
        np.clip(array, low, high, out=array)

    def fill_(self, array: Any, value: float) -> None:
        array.fill(value)

    def sub_(self, array: Any, other: Any) -> None:
        np.subtract(array, other, out=array)

    def maximum_(self, array: Any, other: Any) -> None:
        np.maximum(array, other, out=array)

    def subtract(self, array: Any, value: int, out: Any) -> None:
        np.subtract(array, value, out=out)

    def div_(self, array: Any, value: float) -> None:
        np.divide(array, value, out=array)

    def less_equal(self, array: Any, value: int, out: Any) -> None:
        np.less_equal(array, value, out=out)

    def zero_where(self, array: Any, mask: Any) -> None:
        np.copyto(array, 0, where=mask)

    def exp_(self, array: Any) -> None:
        np.exp(array, out=array)

    def clone(self, array: Any) -> Any:
        return array.copy()

    def stack(self, arrays: list[Any], shape: tuple[int, ...], dtype: str) -> Any:
        if not arrays:
            return np.empty((0, *shape), self.dtype(dtype))
        return np.stack(arrays)


class TorchBackend(Backend):
    """torch tensors on any device; pinned staging, a copy stream and events on CUDA."""

    name = "torch"
    host_kernels = True
    """Scatter into and finish windows of CPU tensors with the numba kernels, through NumPy
    views of the same memory: one pass over memory and no intra-op threads, which cost more
    than they bring on arrays this size and stall whenever another process holds a core.
    False runs the torch operations the GPU runs, on the CPU too (the tests do both)."""

    def __init__(self, device: Any) -> None:
        self.torch = torch = require_torch()
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(
                    f"device {device!r} asked for, but torch.cuda.is_available() is False"
                )
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
            self.cuda = True
            self._copy_stream = torch.cuda.Stream(self.device)
        self._scratches: dict[tuple[str, Any], Any] = {}

    def dtype(self, name: str) -> Any:
        return getattr(self.torch, name)

    def host(self, array: Any) -> npt.NDArray[Any] | None:
        torch = self.torch
        if (
            not self.host_kernels
            or self.device.type != "cpu"
            or array.dtype in (torch.float16, torch.bfloat16)
        ):
            return None
        view: npt.NDArray[Any] = array.numpy()
        return view

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self.torch.empty(shape, dtype=self.dtype(dtype), device=self.device)

    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> Any:
        return self.torch.full(shape, value, dtype=self.dtype(dtype), device=self.device)

    def staging(self, capacity: int, fields: dict[str, tuple[str, bool]]) -> Staging:
        torch = self.torch
        host: dict[str, Any] = {}
        device: dict[str, Any] = {}
        for name, (kind, up) in fields.items():
            dtype = torch.from_numpy(np.empty(0, kind)).dtype
            host[name] = torch.empty(capacity, dtype=dtype, pin_memory=self.cuda and up)
            if up:
                device[name] = (
                    torch.empty(capacity, dtype=dtype, device=self.device)
                    if self.device.type != "cpu"
                    else host[name]
                )
        arrays = {name: tensor.numpy() for name, tensor in host.items()}
        uploaded = tuple(name for name, (_, up) in fields.items() if up)
        staging = Staging(host, arrays, device, uploaded)
        if self.cuda:
            staging.copied = torch.cuda.Event()
            staging.consumed = torch.cuda.Event()
        return staging

    def _scratch(self, name: str, size: int, dtype: Any, fill: int | None = None) -> Any:
        """A device buffer of at least ``size`` entries, kept for later calls (grown by
        doubling, so a stream of uploads allocates a few times at most)."""
        buffer = self._scratches.get((name, dtype))
        if buffer is None or len(buffer) < size:
            length = max(size, 2 * (0 if buffer is None else len(buffer)), 1024)
            if fill is None:
                buffer = self.torch.empty(length, dtype=dtype, device=self.device)
            else:
                buffer = self.torch.full((length,), fill, dtype=dtype, device=self.device)
            self._scratches[name, dtype] = buffer
        return buffer[:size]

    def writable(self, staging: Staging) -> None:
        if self.cuda:
            staging.copied.synchronize()

    def upload(self, staging: Staging, n: int) -> dict[str, Any]:
        if self.device.type == "cpu":
            return {name: staging.host[name][:n] for name in staging.uploaded}
        if not self.cuda:  # another accelerator: plain blocking copies
            for name in staging.uploaded:
                staging.device[name][:n].copy_(staging.host[name][:n])
            return {name: staging.device[name][:n] for name in staging.uploaded}
        torch = self.torch
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            # The previous accumulation from this buffer must have read it before we overwrite.
            self._copy_stream.wait_event(staging.consumed)
            for name in staging.uploaded:
                staging.device[name][:n].copy_(staging.host[name][:n], non_blocking=True)
            staging.copied.record(self._copy_stream)
        compute.wait_event(staging.copied)
        return {name: staging.device[name][:n] for name in staging.uploaded}

    def consumed(self, staging: Staging) -> None:
        if self.cuda:
            staging.consumed.record(self.torch.cuda.current_stream(self.device))

    def add_ones(self, flat: Any, indices: Any) -> None:
        views = self._views(flat, indices)
        if views is not None:
            kernels.add_ones(views[0], views[1])
            return
        flat.index_add_(0, indices, self._scratch("_ones", len(indices), flat.dtype, 1))

    def add_values(self, flat: Any, indices: Any, values: Any, offset: int) -> None:
        views = self._views(flat, indices, values)
        if views is not None:
            kernels.add_values(views[0], views[1], views[2], offset)
            return
        if offset:
            shifted = self._scratch("_offset_indices", len(indices), indices.dtype)
            self.torch.add(indices, offset, out=shifted)
            indices = shifted
        flat.index_add_(0, indices, values)

    def maximum_at(self, flat: Any, indices: Any, values: Any) -> None:
        views = self._views(flat, indices, values)
        if views is not None:
            kernels.maximum_at(views[0], views[1], views[2])
            return
        wide = self._scratch("_long_indices", len(indices), self.torch.int64)
        wide.copy_(indices)
        flat.scatter_reduce_(0, wide, values, reduce="amax")

    def copy_(self, target: Any, source: Any) -> None:
        target.copy_(source)

    def clamp_(self, array: Any, low: float | None, high: float | None) -> None:
        array.clamp_(min=low, max=high)

    def fill_(self, array: Any, value: float) -> None:
        view = self.host(array)
        if view is not None:
            view.fill(value)
        else:
            array.fill_(value)

    def _views(self, *arrays: Any) -> list[npt.NDArray[Any]] | None:
        views = []
        for array in arrays:
            view = self.host(array)
            if view is None:
                return None
            views.append(view)
        return views

    def sub_(self, array: Any, other: Any) -> None:
        array.sub_(other)

    def maximum_(self, array: Any, other: Any) -> None:
        self.torch.maximum(array, other, out=array)

    def subtract(self, array: Any, value: int, out: Any) -> None:
        self.torch.sub(array, value, out=out)

    def div_(self, array: Any, value: float) -> None:
        array.div_(value)

    def less_equal(self, array: Any, value: int, out: Any) -> None:
        self.torch.le(array, value, out=out)

    def zero_where(self, array: Any, mask: Any) -> None:
        array.masked_fill_(mask, 0)

    def exp_(self, array: Any) -> None:
        array.exp_()

    def clone(self, array: Any) -> Any:
        return array.clone()

    def stack(self, arrays: list[Any], shape: tuple[int, ...], dtype: str) -> Any:
        if not arrays:
            return self.empty((0, *shape), dtype)
        return self.torch.stack(arrays)


def make_backend(device: Any) -> Backend:
    """NumPy for ``device="numpy"``, else torch on that device."""
    if isinstance(device, str) and device == "numpy":
        return NumpyBackend()
    return TorchBackend("cpu" if device is None else device)
