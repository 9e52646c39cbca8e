"""AEDAT 4.0 packets of tables of fixed layout, shared by the side channels and the file data
table: a ``{elements: [Table]}`` FlatBuffer built from a structured array, and a payload's root
table read with errors as :class:`~aerflow.errors.PayloadError`."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from ..errors import PayloadError
from .aedat4_flatbuffers import Builder, FlatBufferError, Table, root_table


def _packet_of_tables(
    identifier: bytes, table_size: int, field_offsets: tuple[int, ...], records: Any
) -> bytes:
    """A ``{elements: [Table]}`` FlatBuffer whose element tables are ``records`` (a structured
    array whose first field, the int32 soffset, is filled here), all sharing one vtable."""
    builder = Builder(identifier)
    root_vtable = builder.vtable(8, (4,))
    root = builder.table(root_vtable, 8)
    builder.set_root(root)
    element_vtable = builder.vtable(table_size, field_offsets)
    n = len(records)
    vector = len(builder.data) + (-len(builder.data) % 4)
    first_table = vector + 4 + 4 * n
    first_table += -first_table % 8
    slots = vector + 4 + 4 * np.arange(n, dtype=np.int64)
    tables = first_table + table_size * np.arange(n, dtype=np.int64)
    placed = builder.vector((tables - slots).astype("<u4").tobytes(), n, 4)
    assert placed == vector
    records["soffset"] = tables - element_vtable
    builder.align(8)
    placed = builder.append(records.tobytes())
    assert placed == first_table
    builder.refer(root + 4, vector)
    return builder.finish()


_I8 = struct.Struct("<b")
_I16 = struct.Struct("<h")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")


def _root(buffer: Any, identifier: bytes) -> Table:
    try:
        return root_table(buffer, identifier)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
