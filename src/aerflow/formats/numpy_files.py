"""NumPy files: ``.npy`` arrays of events and ``.npz`` archives of events (and triggers).

Reading accepts any layout :func:`aerflow.as_events` accepts: structured arrays (faery, aedat,
event_stream, tonic, expelliarmus, dv-processing, Metavision fields) and 2-D numeric arrays
whose columns are named by the ``columns`` option. A ``.npy`` file is memory-mapped and read
``chunk_events`` events at a time, so memory stays bounded whatever its size; ``.npz`` members
are read from the archive in pieces too (compressed or not). An ``.npz`` holds either an
``events`` array (or a single unnamed ``arr_0``) or separate 1-D ``t``, ``x``, ``y`` and
``p``/``on`` arrays, plus optionally ``triggers`` (fields ``t``, ``id``, ``rising``) and
``sensor_size`` (``[width, height]``).

Writing produces :data:`~aerflow.EVENTS_DTYPE` arrays: a ``.npy`` whose header is written
again with the final count when the file is closed, or an ``.npz`` with ``events``,
``triggers`` (when any were given) and ``sensor_size`` (when known). Arrays holding Python
objects (ragged or pickled data) are refused: aerflow never unpickles.

This module holds the ``.npy`` reader and writer and the formats' public names; the ``.npz``
reader and writer live in ``_numpy_npz``, the ``.npy`` header in ``_numpy_header``, turning
arrays into events in ``_numpy_arrays``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, TruncatedDataWarning
from ..events import EVENTS_DTYPE, Packet, empty_events
from ._base import FileReader, FileWriter, Properties, check_sensor_size
from ._numpy_arrays import (
    DEFAULT_CHUNK_EVENTS,
    _check_chunk,
    _check_layout,
    _chunk_events,
    _column_names,
    _events,
)
from ._numpy_header import _npy_header, read_npy_header
from ._numpy_npz import NpzReader, NpzWriter

__all__ = ["DEFAULT_CHUNK_EVENTS", "NpyReader", "NpyWriter", "NpzReader", "NpzWriter"]

log = logging.getLogger(__name__)


class NpyReader(FileReader):
    """Reads events from a ``.npy`` file, memory-mapped: ``chunk_events`` events per packet,
    or as many as ``chunk_size`` bytes of the file hold."""

    format_name: ClassVar[str] = "npy"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int | None = None,
        chunk_events: int | None = None,
        columns: str | Sequence[str] = ("t", "x", "y", "on"),
    ) -> None:
        super().__init__(path)
        self._chunk = _check_chunk(chunk_size, chunk_events)
        self.columns = _column_names(columns)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> None:
        info = read_npy_header(self._file, self.path)
        _check_layout(info, self.columns, self.path, "the array")
        self.chunk_events = _chunk_events(self._chunk, info.row_bytes or EVENTS_DTYPE.itemsize)
        size = os.fstat(self._file.fileno()).st_size
        rows = info.rows
        if info.offset + info.nbytes > size:
            if info.fortran_order and len(info.shape) > 1:
                raise FormatError(
                    f"the file ends before the {info.nbytes} bytes its header announces",
                    path=self.path,
                    offset=size,
                )
            rows = (size - info.offset) // info.row_bytes if info.row_bytes else 0
            warnings.warn(
                TruncatedDataWarning(
                    f"{self.path}: the header announces {info.rows} items but the file holds "
                    f"{rows} whole ones; the rest is missing"
                ),
                stacklevel=3,
            )
        self._info = info
        self._rows = rows
        self._next = 0
        shape = (rows, *info.shape[1:])
        self._array: npt.NDArray[Any]
        if rows == 0 or info.row_bytes == 0:
            self._array = np.empty(shape, info.dtype)
        else:
            self._array = np.memmap(
                self._file,
                dtype=info.dtype,
                mode="r",
                offset=info.offset,
                shape=shape,
                order="F" if info.fortran_order else "C",
            )
        self.metadata = {
            "dtype": str(info.dtype.descr if info.dtype.names else info.dtype.str),
            "shape": str(info.shape),
            "fortran_order": str(info.fortran_order),
        }
        self.properties = Properties(
            format=self.format_name, width=None, height=None, event_count=rows
        )

    def _offset_of_row(self, row: int) -> int:
        if self._info.fortran_order:
            return self._info.offset + row * self._info.dtype.itemsize
        return self._info.offset + row * self._info.row_bytes

    def _restart(self) -> None:
        self._next = 0

    def _iterate(self) -> Iterator[Packet]:
        while self._next < self._rows:
            start = self._next
            stop = min(start + self.chunk_events, self._rows)
            block = self._array[start:stop]
            events = _events(
                block, self.columns, self.path, start, self._offset_of_row, "the array"
            )
            self._next = stop
            yield Packet(events)

    def _read(self) -> Packet:
        if self._next >= self._rows:
            return Packet(empty_events())
        block = self._array[self._next :]
        events = _events(
            block, self.columns, self.path, self._next, self._offset_of_row, "the array"
        )
        self._next = self._rows
        return Packet(events)

    def _close(self) -> None:
        array = getattr(self, "_array", None)
        if isinstance(array, np.memmap):
            mapping = getattr(array, "_mmap", None)
            del self._array
            if mapping is not None:
                with contextlib.suppress(BufferError, ValueError):
                    mapping.close()
        self._file.close()


class NpyWriter(FileWriter):
    """Writes a ``.npy`` of :data:`~aerflow.EVENTS_DTYPE`, packet by packet; the header gets
    the final count on :meth:`close`. ``width``/``height`` are accepted and not stored (a
    ``.npy`` has no place for them); triggers cannot be stored either (logged)."""

    format_name: ClassVar[str] = "npy"
    needs_seek: ClassVar[bool] = True
    stores = ()

    def _why_unwritten(self, channel: str) -> str:
        return "a .npy holds events only"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        check_sensor_size(width, height)
        super().__init__(path)
        self._count = 0
        self._file.write(_npy_header(0))

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events):
            self._file.write(np.ascontiguousarray(events).data)
            self._count += len(events)

    def _finalize(self) -> None:
        self._file.seek(0)
        self._file.write(_npy_header(self._count))
        self._file.seek(0, os.SEEK_END)
