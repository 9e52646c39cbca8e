"""A small PNG writer for rendered frames: 8-bit indexed colour, standard library only."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from .._output import Output

__all__ = ["encode_png", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_INDEXED = 3


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(
    indices: npt.NDArray[np.uint8], palette: npt.NDArray[Any], compression: int = 6
) -> bytes:
    """The PNG bytes of an index image ``[y, x]`` whose colours are ``palette`` (N, 3)."""
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise ValueError("indices must be a 2-D uint8 array")
    colours = np.ascontiguousarray(palette, dtype=np.uint8)
    if colours.ndim != 2 or colours.shape[1] != 3 or not 1 <= len(colours) <= 256:
        raise ValueError("palette must hold 1 to 256 (r, g, b) colours")
    height, width = indices.shape
    rows = np.empty((height, width + 1), np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    rows[:, 1:] = indices
    header = struct.pack(">IIBBBBB", width, height, 8, _INDEXED, 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", colours.tobytes()),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), compression)),
            _chunk(b"IEND", b""),
        )
    )


def write_png(
    path: str | os.PathLike[str],
    indices: npt.NDArray[np.uint8],
    palette: npt.NDArray[Any],
    compression: int = 6,
) -> None:
    """Write an index image and its palette as a PNG file (whole or not at all)."""
    data = encode_png(indices, palette, compression)
    with Output(path) as output:
        output.file.write(data)
