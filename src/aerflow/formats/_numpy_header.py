"""The ``.npy`` header: read (versions 1.0, 2.0 and 3.0; a malformed or implausible header
is a FormatError) into an :class:`_ArrayInfo`, and written (version 1.0, a fixed length so
that the final count can be written over it in place)."""

from __future__ import annotations

import ast
import math
from typing import IO, Any

import numpy as np

from ..errors import FormatError, NotThisFormatError
from ..events import EVENTS_DTYPE

MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20


class _ArrayInfo:
    """What an ``.npy`` header says, and where the data start."""

    def __init__(
        self, shape: tuple[int, ...], fortran_order: bool, dtype: np.dtype[Any], offset: int
    ) -> None:
        self.shape = shape
        self.fortran_order = fortran_order
        self.dtype = dtype
        self.offset = offset

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize


def _read_exactly(file: IO[bytes], count: int) -> bytes:
    parts = []
    while count > 0:
        part = file.read(count)
        if not part:
            break
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


def read_npy_header(file: IO[bytes], path: str, base: int = 0) -> _ArrayInfo:
    """Parse the header of an ``.npy`` file (versions 1.0, 2.0 and 3.0) at the file's
    position; ``base`` is that position's byte offset (for error messages)."""
    magic = _read_exactly(file, 8)
    if len(magic) < 8 or not magic.startswith(MAGIC):
        raise NotThisFormatError(
            "not a NumPy .npy array (no \\x93NUMPY magic)", path=path, offset=base
        )
    major = magic[6]
    if major not in (1, 2, 3):
        raise FormatError(
            f"unsupported .npy version {major}.{magic[7]}", path=path, offset=base + 6
        )
    size_bytes = 2 if major == 1 else 4
    raw_size = _read_exactly(file, size_bytes)
    if len(raw_size) < size_bytes:
        raise FormatError("the file ends inside the .npy header", path=path, offset=base + 8)
    header_size = int.from_bytes(raw_size, "little")
    if header_size > _MAX_HEADER:
        raise FormatError(
            f".npy header of {header_size} bytes is implausible", path=path, offset=base + 8
        )
    raw = _read_exactly(file, header_size)
    offset = 8 + size_bytes + header_size
    if len(raw) < header_size:
        raise FormatError(
            "the file ends inside the .npy header",
            path=path,
            offset=base + 8 + size_bytes + len(raw),
        )
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
        descr = header["descr"]
        fortran_order = header["fortran_order"]
        shape = header["shape"]
        dtype = np.lib.format.descr_to_dtype(descr)
    except (
        ValueError,
        SyntaxError,
        KeyError,
        TypeError,
        UnicodeDecodeError,
        MemoryError,
        RecursionError,
    ) as error:
        raise FormatError(
            f"cannot parse the .npy header: {error}", path=path, offset=base + 8 + size_bytes
        ) from None
    if (
        not isinstance(shape, tuple)
        or not all(isinstance(v, int) and v >= 0 for v in shape)
        or not isinstance(fortran_order, bool)
    ):
        raise FormatError(
            f"invalid .npy header {text.strip()!r}", path=path, offset=base + 8 + size_bytes
        )
    return _ArrayInfo(shape, fortran_order, dtype, base + offset)


def _npy_header(count: int) -> bytes:
    """A version 1.0 header for ``count`` events, padded to a fixed length (so that it can be
    written again in place once the count is known) that keeps the data 64-byte aligned."""
    descr = repr(np.lib.format.dtype_to_descr(EVENTS_DTYPE))
    text = f"{{'descr': {descr}, 'fortran_order': False, 'shape': ({count},), }}"
    longest = len(text) - len(str(count)) + 20
    total = -(-(10 + longest + 1) // 64) * 64
    text = text.ljust(total - 10 - 1) + "\n"
    return MAGIC + b"\x01\x00" + (total - 10).to_bytes(2, "little") + text.encode("latin1")
