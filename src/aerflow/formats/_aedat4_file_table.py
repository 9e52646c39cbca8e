"""The AEDAT 4.0 file data table (``FTAB``): one entry per packet (payload offset, stream,
size, element count, first/last timestamp), decoded by a numba kernel and encoded back."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from ..errors import PayloadError
from ._aedat4_events import BAD_TABLE, OK
from ._aedat4_tables import _packet_of_tables, _root
from .aedat4_flatbuffers import FlatBufferError, read_i32, read_i64, read_u32, table_field

__all__ = ["TABLE_DTYPE", "decode_table", "encode_table"]

TABLE_DTYPE = np.dtype(
    [
        ("offset", "<i8"),
        ("stream", "<i4"),
        ("size", "<i4"),
        ("count", "<i8"),
        ("t_start", "<i8"),
        ("t_end", "<i8"),
    ]
)
"""File data table entries: payload byte offset, stream id, payload size, element count and
first/last timestamp (0 where the writer left them unset)."""


_FTAB = np.frombuffer(b"FTAB", np.uint8)
_TABLE_RECORD = np.dtype(
    {
        "names": ["soffset", "stream", "size", "offset", "count", "t_start", "t_end"],
        "formats": ["<i4", "<i4", "<i4", "<i8", "<i8", "<i8", "<i8"],
        "offsets": [0, 4, 8, 16, 24, 32, 40],
        "itemsize": 48,
    }
)


@njit(nogil=True, cache=True)
def _decode_table(data: Any, end: int, first: int, out: Any) -> tuple[int, int]:
    """Fill ``out`` (TABLE_DTYPE) from the vector of FileDataDefinition offsets starting at
    ``first``. Returns (status, position found wrong)."""
    for i in range(out.size):
        slot = first + 4 * i
        table = slot + read_u32(data, slot)
        positions = np.empty(5, np.int64)
        for j in range(5):
            positions[j] = table_field(data, end, table, j, 8)
            if positions[j] < 0:
                return BAD_TABLE, table
        entry = out[i]
        entry.offset = read_i64(data, positions[0]) if positions[0] else 0
        if positions[1]:
            entry.stream = read_i32(data, positions[1])
            entry.size = read_i32(data, positions[1] + 4)
        else:
            entry.stream = 0
            entry.size = 0
        entry.count = read_i64(data, positions[2]) if positions[2] else 0
        entry.t_start = read_i64(data, positions[3]) if positions[3] else 0
        entry.t_end = read_i64(data, positions[4]) if positions[4] else 0
    return OK, 0


def decode_table(buffer: Any) -> npt.NDArray[Any]:
    """A FileDataTable payload as :data:`TABLE_DTYPE` entries, in stored order."""
    data = np.frombuffer(buffer, np.uint8)
    try:
        root = _root(data, b"FTAB")
        found = root.vector(0, 4)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    first, length = found if found is not None else (0, 0)
    out = np.zeros(length, TABLE_DTYPE)
    status, where = _decode_table(data, root.end, first, out)
    if status != OK:
        raise PayloadError("a file data table entry does not fit in the table", where)
    return out


def encode_table(entries: npt.NDArray[Any]) -> bytes:
    """The FileDataTable FlatBuffer of ``entries`` (:data:`TABLE_DTYPE`)."""
    records = np.zeros(len(entries), _TABLE_RECORD)
    for name in ("stream", "size", "offset", "count", "t_start", "t_end"):
        records[name] = entries[name]
    return _packet_of_tables(b"FTAB", 48, (16, 4, 24, 32, 40), records)
