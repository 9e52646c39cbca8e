"""The small part of FlatBuffers that AEDAT 4.0 needs: reading tables, laying buffers out.

Every AEDAT 4.0 structure (the IOHeader, each packet, the file data table) is a
*size-prefixed* FlatBuffer: a little-endian ``uint32`` length, then the buffer, whose first
``uint32`` is the offset of the root table and whose next four bytes are the file identifier
(``EVTS``, ``IOHE``...). Positions here are absolute positions in the byte string that starts
with the size prefix; offsets stored in the buffer are relative to where they are stored, so
the prefix changes nothing but the start of the valid range.

A table starts with an ``int32`` *soffset*: its vtable is at ``table - soffset``. A vtable is
``uint16`` values: its own size, the table's size, then one offset per field (0 = absent, the
field takes its schema default). References to strings, vectors and sub-tables are ``uint32``
*uoffsets* added to their own position. A vector is a ``uint32`` length then the elements.

Reading never trusts the bytes: every position is checked against the buffer before it is
used, and a bad one raises :class:`FlatBufferError` with the position that was wrong.

Writing lays a buffer out front to back (:class:`Builder`): the root table first, everything
it refers to after it, so every uoffset points forward, as the format requires. Alignment is
counted from the size prefix, which is how FlatBuffers' own builders align size-prefixed
buffers (a verifier checks it that way).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._jit import njit
from ..errors import FlatBufferError

__all__ = [
    "Builder",
    "FlatBufferError",
    "Table",
    "root_table",
]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_VTABLE_HEAD = struct.Struct("<HH")

Buffer = Any  # bytes, bytearray, memoryview or mmap: anything struct.unpack_from reads


def root_table(buffer: Buffer, identifier: bytes | None, end: int | None = None) -> Table:
    """The root table of the size-prefixed buffer at the start of ``buffer``.

    ``end`` bounds the buffer (default: its length); the size prefix must fit inside. When
    ``identifier`` is given, the buffer's file identifier must equal it.
    """
    limit = len(buffer) if end is None else end
    if limit < 12:
        raise FlatBufferError(f"{limit} bytes are too few for a FlatBuffer", 0)
    (size,) = _U32.unpack_from(buffer, 0)
    if size + 4 > limit or size < 8:
        raise FlatBufferError(f"the size prefix says {size} bytes, but {limit - 4} follow it", 0)
    end = size + 4
    if identifier is not None:
        found = bytes(buffer[8:12])
        if found != identifier:
            raise FlatBufferError(
                f"the buffer's identifier is {_show(found)}, expected {_show(identifier)}", 8
            )
    (root,) = _U32.unpack_from(buffer, 4)
    return Table(buffer, 4 + root, end)


def _show(identifier: bytes) -> str:
    return repr(identifier.decode("latin-1"))


class Table:
    """One table of a FlatBuffer, its fields read on demand with bounds checks."""

    __slots__ = ("buffer", "end", "position", "size", "vtable", "vtable_size")

    def __init__(self, buffer: Buffer, position: int, end: int) -> None:
        if position < 4 or position + 4 > end:
            raise FlatBufferError("a table lies outside the buffer", position)
        (soffset,) = _I32.unpack_from(buffer, position)
        vtable = position - soffset
        if vtable < 4 or vtable + 4 > end:
            raise FlatBufferError("a table's vtable lies outside the buffer", position)
        vtable_size, table_size = _VTABLE_HEAD.unpack_from(buffer, vtable)
        if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > end:
            raise FlatBufferError(f"a vtable of {vtable_size} bytes does not fit", vtable)
        if table_size < 4 or position + table_size > end:
            raise FlatBufferError(f"a table of {table_size} bytes does not fit", position)
        self.buffer = buffer
        self.position = position
        self.end = end
        self.vtable = vtable
        self.vtable_size = vtable_size
        self.size = table_size

    def field(self, index: int, size: int) -> int:
        """The position of field ``index`` (``size`` bytes wide), or 0 when it is absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_size:
            return 0
        (offset,) = _U16.unpack_from(self.buffer, self.vtable + slot)
        if offset == 0:
            return 0
        if offset < 4 or offset + size > self.size:
            raise FlatBufferError(
                f"field {index} at offset {offset} overruns its {self.size}-byte table",
                self.vtable + slot,
            )
        return self.position + int(offset)

    def scalar(self, index: int, kind: struct.Struct, default: Any) -> Any:
        """A scalar field (``kind`` unpacks exactly one value), or ``default`` when absent."""
        position = self.field(index, kind.size)
        if position == 0:
            return default
        return kind.unpack_from(self.buffer, position)[0]

    def reference(self, index: int) -> int | None:
        """Where the object a uoffset field refers to starts, or None when it is absent."""
        position = self.field(index, 4)
        if position == 0:
            return None
        (offset,) = _U32.unpack_from(self.buffer, position)
        target = position + int(offset)
        if offset == 0 or target + 4 > self.end:
            raise FlatBufferError(f"field {index} refers outside the buffer", position)
        return target

    def vector(self, index: int, element_size: int) -> tuple[int, int] | None:
        """(position of the first element, length) of a vector field, or None when absent."""
        target = self.reference(index)
        if target is None:
            return None
        (length,) = _U32.unpack_from(self.buffer, target)
        if target + 4 + length * element_size > self.end:
            raise FlatBufferError(
                f"a vector of {length} elements of {element_size} bytes overruns the buffer",
                target,
            )
        return target + 4, length

    def bytes(self, index: int) -> bytes | None:
        """A string or ``[ubyte]`` field's bytes (a copy), or None when absent."""
        found = self.vector(index, 1)
        if found is None:
            return None
        start, length = found
        return bytes(self.buffer[start : start + length])

    def tables(self, index: int) -> list[Table]:
        """The tables of a vector-of-tables field (empty when absent)."""
        found = self.vector(index, 4)
        if found is None:
            return []
        start, length = found
        tables = []
        for slot in range(start, start + 4 * length, 4):
            (offset,) = _U32.unpack_from(self.buffer, slot)
            tables.append(Table(self.buffer, slot + offset, self.end))
        return tables


class Builder:
    """A size-prefixed FlatBuffer laid out front to back.

    ``reserve`` appends zeroed room and returns where it starts, ``pack`` fills it in; vtables
    and tables are placed by the caller, which knows its layout. ``finish`` sets the size
    prefix and pads the buffer to a multiple of 8 bytes.
    """

    def __init__(self, identifier: bytes) -> None:
        if len(identifier) != 4:
            raise ValueError("a file identifier has 4 bytes")
        self.data = bytearray(12)
        self.data[8:12] = identifier

    def align(self, alignment: int) -> None:
        self.data.extend(bytes(-len(self.data) % alignment))

    def reserve(self, size: int, alignment: int = 1) -> int:
        self.align(alignment)
        position = len(self.data)
        self.data.extend(bytes(size))
        return position

    def append(self, data: bytes | bytearray | memoryview, alignment: int = 1) -> int:
        self.align(alignment)
        position = len(self.data)
        self.data.extend(data)
        return position

    def pack(self, fmt: str, position: int, *values: Any) -> None:
        struct.pack_into(fmt, self.data, position, *values)

    def vtable(self, table_size: int, field_offsets: Sequence[int]) -> int:
        """Append a vtable for tables of ``table_size`` bytes; returns its position."""
        return self.append(
            struct.pack(
                f"<{2 + len(field_offsets)}H",
                4 + 2 * len(field_offsets),
                table_size,
                *field_offsets,
            ),
            2,
        )

    def table(self, vtable: int, table_size: int) -> int:
        """Append an 8-aligned table that uses ``vtable``; returns its position."""
        position = self.reserve(table_size, 8)
        self.pack("<i", position, position - vtable)
        return position

    def refer(self, at: int, target: int) -> None:
        """Store at ``at`` the uoffset of ``target`` (which must lie after it)."""
        if target <= at:
            raise ValueError("FlatBuffers offsets point forward")
        self.pack("<I", at, target - at)

    def set_root(self, table: int) -> None:
        self.refer(4, table)

    def vector(self, data: bytes | bytearray | memoryview, length: int, alignment: int) -> int:
        """Append a vector (length, then ``data``) whose elements start ``alignment``-aligned;
        returns the position of its length."""
        self.data.extend(bytes(-(len(self.data) + 4) % max(alignment, 4)))
        position = len(self.data)
        self.data.extend(_U32.pack(length))
        self.data.extend(data)
        return position

    def string(self, text: bytes) -> int:
        """Append a string (NUL-terminated, as FlatBuffers stores them); returns its position."""
        position = self.vector(text, len(text), 4)
        self.data.append(0)
        return position

    def finish(self) -> bytes:
        self.align(8)
        self.pack("<I", 0, len(self.data) - 4)
        return bytes(self.data)


# -- the same reads, for numba kernels over uint8 arrays ---------------------------------------


@njit(nogil=True, cache=True)
def read_u16(data: Any, position: int) -> Any:
    return np.int64(data[position]) | np.int64(data[position + 1]) << 8


@njit(nogil=True, cache=True)
def read_u32(data: Any, position: int) -> Any:
    return (
        np.int64(data[position])
        | np.int64(data[position + 1]) << 8
        | np.int64(data[position + 2]) << 16
        | np.int64(data[position + 3]) << 24
    )


@njit(nogil=True, cache=True)
def read_i32(data: Any, position: int) -> Any:
    value = read_u32(data, position)
    return value - (1 << 32) if value >= 1 << 31 else value


@njit(nogil=True, cache=True)
def read_i64(data: Any, position: int) -> Any:
    low = read_u32(data, position)
    high = read_u32(data, position + 4)
    return np.int64((np.uint64(high) << np.uint64(32)) | np.uint64(low))


@njit(nogil=True, cache=True)
def table_field(data: Any, end: int, table: int, index: int, size: int) -> Any:
    """Position of field ``index`` of the table at ``table``: 0 when absent, -1 when the
    table, its vtable or the field does not fit in ``data[:end]``."""
    if table < 4 or table + 4 > end:
        return -1
    vtable = table - read_i32(data, table)
    if vtable < 4 or vtable + 4 > end:
        return -1
    vtable_size = read_u16(data, vtable)
    table_size = read_u16(data, vtable + 2)
    if vtable_size < 4 or vtable_size % 2 != 0 or vtable + vtable_size > end:
        return -1
    if table_size < 4 or table + table_size > end:
        return -1
    slot = 4 + 2 * index
    if slot + 2 > vtable_size:
        return 0
    offset = read_u16(data, vtable + slot)
    if offset == 0:
        return 0
    if offset < 4 or offset + size > table_size:
        return -1
    return table + offset


@njit(nogil=True, cache=True)
def root_position(data: Any, identifier: Any) -> tuple[int, int]:
    """(root table position, end of the buffer) of the size-prefixed buffer in ``data``;
    (-1, 0) when the prefix does not fit, (-2, 0) when the identifier differs."""
    if data.size < 12:
        return -1, 0
    size = read_u32(data, 0)
    if size < 8 or size + 4 > data.size:
        return -1, 0
    for i in range(4):
        if data[8 + i] != identifier[i]:
            return -2, 0
    return 4 + read_u32(data, 4), size + 4
