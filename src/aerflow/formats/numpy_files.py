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
"""

from __future__ import annotations

import ast
import contextlib
import logging
import math
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from typing import IO, Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, NotThisFormatError, TruncatedDataWarning
from ..events import (
    EVENTS_DTYPE,
    TRIGGERS_DTYPE,
    Packet,
    as_events,
    empty_events,
    empty_triggers,
)
from ._base import FileReader, FileWriter, Properties, check_sensor_size

__all__ = ["DEFAULT_CHUNK_EVENTS", "NpyReader", "NpyWriter", "NpzReader", "NpzWriter"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_EVENTS = 1 << 18
"""Events per packet (about 3.4 MB of events)."""

MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20
_TIME_NAMES = ("t", "timestamp", "ts", "time")
_POLARITY_NAMES = ("on", "p", "polarity", "pol")
_COPY_BLOCK = 1 << 24


# --------------------------------------------------------------------------- #
# The .npy header                                                             #
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Turning arrays into events                                                  #
# --------------------------------------------------------------------------- #


def _check_layout(info: _ArrayInfo, columns: Sequence[str], path: str, what: str) -> None:
    """Refuse arrays that no block of can become events."""
    dtype = info.dtype
    if dtype.hasobject:
        raise FormatError(
            f"{what} holds Python objects (a ragged or pickled array); aerflow reads numeric "
            "arrays only",
            path=path,
            offset=0,
        )
    if dtype.names is not None:
        if len(info.shape) != 1:
            raise FormatError(
                f"{what} is a structured array of shape {info.shape}; expected one dimension",
                path=path,
                offset=0,
            )
        try:
            as_events(np.zeros(0, dtype))
        except (ValueError, TypeError) as error:
            raise FormatError(f"{what}: {error}", path=path, offset=0) from None
        return
    if len(info.shape) != 2 or info.shape[1] != len(columns):
        raise FormatError(
            f"{what} has shape {info.shape}; an unstructured array must be 2-D with "
            f"{len(columns)} columns {tuple(columns)} (see the columns option)",
            path=path,
            offset=0,
        )
    if dtype.kind not in "uifb":
        raise FormatError(f"{what} has dtype {dtype}; expected numbers", path=path, offset=0)
    try:
        as_events(np.zeros((0, len(columns)), dtype), columns=columns)
    except (ValueError, TypeError) as error:
        raise FormatError(f"{what}: {error}", path=path, offset=0) from None


def _first_bad_row(block: npt.NDArray[Any], columns: Sequence[str]) -> tuple[int, str] | None:
    """The first row of ``block`` whose t, x or y cannot be stored, and why."""
    if block.dtype.names is not None:
        names = block.dtype.names
        fields = {
            "t": next((n for n in _TIME_NAMES if n in names), None),
            "x": "x",
            "y": "y",
        }
        values = {k: block[v] for k, v in fields.items() if v is not None}
    else:
        index = {name: i for i, name in enumerate(columns)}
        t_name = next((n for n in _TIME_NAMES if n in index), "t")
        values = {
            "t": block[:, index[t_name]],
            "x": block[:, index["x"]],
            "y": block[:, index["y"]],
        }
    worst: tuple[int, str] | None = None
    for name, column in values.items():
        limit = np.iinfo("u8" if name == "t" else "u2").max
        as_float = column.astype(np.float64)
        bad = ~np.isfinite(as_float) | (as_float < 0) | (as_float > limit)
        if column.dtype.kind == "f":
            bad |= as_float != np.round(as_float)
        rows = np.flatnonzero(bad)
        if len(rows) and (worst is None or rows[0] < worst[0]):
            worst = (
                int(rows[0]),
                f"{name} = {column[rows[0]].item()!r} is not an integer in [0, {limit}]",
            )
    return worst


def _events(
    block: npt.NDArray[Any],
    columns: Sequence[str],
    path: str,
    first_row: int,
    offset_of_row: Any,
    what: str,
) -> npt.NDArray[Any]:
    """``block`` as events of their own (never a view of a mapping)."""
    try:
        events = as_events(block, columns=columns)
    except (ValueError, TypeError) as error:
        bad = _first_bad_row(block, columns)
        row = first_row + (bad[0] if bad else 0)
        reason = bad[1] if bad else str(error)
        raise FormatError(
            f"{what}, item {row}: {reason}", path=path, offset=offset_of_row(row)
        ) from None
    if np.may_share_memory(events, block):
        events = events.copy()
    return events


def _triggers(array: npt.NDArray[Any], path: str) -> npt.NDArray[Any]:
    names = array.dtype.names
    if names is None or array.ndim != 1 or not {"t", "id", "rising"} <= set(names):
        raise FormatError(
            f"triggers of dtype {array.dtype} and shape {array.shape}: expected a 1-D "
            "structured array with fields t, id and rising",
            path=path,
            offset=0,
        )
    out = np.empty(len(array), TRIGGERS_DTYPE)
    for name, limit in (("t", np.iinfo("u8").max), ("id", 255)):
        column = np.asarray(array[name])
        if column.dtype.kind not in "uib" or (
            len(column) and (int(column.min()) < 0 or int(column.max()) > limit)
        ):
            raise FormatError(
                f"trigger {name} must be integers in [0, {limit}]", path=path, offset=0
            )
        out[name] = column
    out["rising"] = np.asarray(array["rising"]) > 0
    return out


# --------------------------------------------------------------------------- #
# .npy                                                                        #
# --------------------------------------------------------------------------- #


def _check_chunk(chunk_size: int | None, chunk_events: int | None) -> tuple[str, int] | None:
    """The packet size asked for: ("bytes", n), ("events", n), or None for the default."""
    if chunk_size is not None and chunk_events is not None:
        raise ValueError("give chunk_size (bytes) or chunk_events (events), not both")
    for name, value in (("chunk_size", chunk_size), ("chunk_events", chunk_events)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if chunk_events is not None:
        return ("events", chunk_events)
    return None if chunk_size is None else ("bytes", chunk_size)


def _chunk_events(chunk: tuple[str, int] | None, row_bytes: int) -> int:
    if chunk is None:
        return DEFAULT_CHUNK_EVENTS
    unit, value = chunk
    return value if unit == "events" else max(1, value // row_bytes)


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


def _column_names(columns: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(columns, str):
        return tuple(c.strip() for c in columns.replace(" ", ",").split(",") if c.strip())
    return tuple(str(c) for c in columns)


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


# --------------------------------------------------------------------------- #
# .npz                                                                        #
# --------------------------------------------------------------------------- #


class _Member:
    """One ``.npy`` inside a zip archive, read row block by row block."""

    def __init__(self, archive: zipfile.ZipFile, name: str, path: str) -> None:
        self.name = name[:-4]
        self.path = path
        self.file = archive.open(name)
        try:
            self.info = read_npy_header(self.file, path)
        except BaseException:
            self.file.close()
            raise
        self.read_rows = 0

    def read(self, rows: int) -> npt.NDArray[Any]:
        """The next ``rows`` rows (fewer at the end)."""
        info = self.info
        rows = min(rows, info.rows - self.read_rows)
        if info.fortran_order and len(info.shape) > 1:
            raise FormatError(
                f"member {self.name!r} is a Fortran-ordered array; save it in C order",
                path=self.path,
                offset=0,
            )
        data = _read_exactly(self.file, rows * info.row_bytes)
        if len(data) < rows * info.row_bytes:
            raise FormatError(
                f"member {self.name!r} ends before the {info.rows} items its header announces",
                path=self.path,
                offset=None,
            )
        self.read_rows += rows
        return np.frombuffer(data, info.dtype).reshape((rows, *info.shape[1:]))

    def read_all(self) -> npt.NDArray[Any]:
        return self.read(self.info.rows - self.read_rows)

    def close(self) -> None:
        self.file.close()


class NpzReader(FileReader):
    """Reads events (and triggers) from a ``.npz`` archive: ``chunk_events`` events per
    packet, or as many as ``chunk_size`` bytes of decoded events hold (13 bytes each)."""

    format_name: ClassVar[str] = "npz"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int | None = None,
        chunk_events: int | None = None,
        columns: str | Sequence[str] = ("t", "x", "y", "on"),
    ) -> None:
        super().__init__(path)
        self.chunk_events = _chunk_events(
            _check_chunk(chunk_size, chunk_events), EVENTS_DTYPE.itemsize
        )
        self.columns = _column_names(columns)
        self._members: list[_Member] = []
        self._member_names: list[str] = []
        try:
            self._archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
            raise NotThisFormatError(
                f"not a NumPy .npz archive: {error}", path=self.path, offset=0
            ) from None
        try:
            self._open()
        except zipfile.BadZipFile as error:
            self.close()
            raise FormatError(f"damaged .npz archive: {error}", path=self.path) from None
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        names = {n[:-4]: n for n in self._archive.namelist() if n.endswith(".npy")}
        self._triggers = empty_triggers()
        self._pending_triggers = 0
        if "triggers" in names:
            member = _Member(self._archive, names["triggers"], self.path)
            try:
                if member.info.dtype.hasobject:
                    raise FormatError("triggers hold Python objects", path=self.path, offset=0)
                self._triggers = _triggers(member.read_all(), self.path)
            finally:
                member.close()
        size = self._sensor_size(names["sensor_size"]) if "sensor_size" in names else None
        events_name = "events" if "events" in names else None
        if events_name is None and set(names) - {"sensor_size"} == {"arr_0"}:
            events_name = "arr_0"
        if events_name is not None:
            member = _Member(self._archive, names[events_name], self.path)
            self._members = [member]
            self._member_names = [names[events_name]]
            _check_layout(member.info, self.columns, self.path, f"array {events_name!r}")
            rows = member.info.rows
            self._separate = False
        else:
            chosen = [
                next((n for n in _TIME_NAMES if n in names), None),
                "x" if "x" in names else None,
                "y" if "y" in names else None,
                next((n for n in _POLARITY_NAMES if n in names), None),
            ]
            if None in chosen and "triggers" not in names:
                raise NotThisFormatError(
                    f"the archive holds {sorted(names) or 'no arrays'}; expected 'events' or "
                    "separate 't', 'x', 'y' and 'p' (or 'on') arrays",
                    path=self.path,
                    offset=0,
                )
            rows = 0
            self._separate = True
            if None not in chosen:
                self._members = [
                    _Member(self._archive, names[n], self.path) for n in chosen if n is not None
                ]
                self._member_names = [names[n] for n in chosen if n is not None]
                for member in self._members:
                    info = member.info
                    if (
                        info.dtype.hasobject
                        or info.dtype.names is not None
                        or len(info.shape) != 1
                        or info.dtype.kind not in "uifb"
                    ):
                        raise FormatError(
                            f"array {member.name!r} (dtype {info.dtype}, shape {info.shape}) "
                            "must be a 1-D array of numbers",
                            path=self.path,
                            offset=0,
                        )
                lengths = {m.name: m.info.rows for m in self._members}
                if len(set(lengths.values())) > 1:
                    raise FormatError(
                        "arrays "
                        + ", ".join(f"{k} ({v})" for k, v in lengths.items())
                        + " differ in length",
                        path=self.path,
                        offset=0,
                    )
                rows = self._members[0].info.rows
        self._rows = rows
        self._next = 0
        self.metadata = {"arrays": ",".join(sorted(names))}
        self.properties = Properties(
            format=self.format_name,
            width=size[0] if size else None,
            height=size[1] if size else None,
            event_count=rows,
        )

    def _sensor_size(self, name: str) -> tuple[int, int]:
        member = _Member(self._archive, name, self.path)
        try:
            if member.info.dtype.kind not in "ui" or member.info.count != 2:
                raise FormatError(
                    "sensor_size must hold two integers [width, height]", path=self.path, offset=0
                )
            width, height = (int(v) for v in member.read_all().reshape(-1))
        finally:
            member.close()
        try:
            size = check_sensor_size(width, height)
        except ValueError as error:
            raise FormatError(str(error), path=self.path, offset=0) from None
        assert size is not None
        return size

    def _block(self, rows: int) -> npt.NDArray[Any]:
        start = self._next
        if not self._separate:
            member = self._members[0]
            block = member.read(rows)
            name = member.name
            return _events(
                block, self.columns, self.path, start, lambda row: None, f"array {name!r}"
            )
        parts = [m.read(rows) for m in self._members]
        combined = np.empty(
            len(parts[0]),
            [
                ("t", parts[0].dtype),
                ("x", parts[1].dtype),
                ("y", parts[2].dtype),
                ("on", parts[3].dtype),
            ],
        )
        for field, part in zip(("t", "x", "y", "on"), parts, strict=True):
            combined[field] = part
        return _events(combined, self.columns, self.path, start, lambda row: None, "the arrays")

    def _packets(self) -> Iterator[Packet]:
        triggers = self._triggers
        sent = self._pending_triggers
        ordered = len(triggers) < 2 or bool(np.all(np.diff(triggers["t"].astype(np.int64)) >= 0))
        while self._next < self._rows:
            rows = min(self.chunk_events, self._rows - self._next)
            events = self._block(rows)
            self._next += rows
            last = self._next >= self._rows
            if last:
                until = len(triggers)
            elif ordered and len(events):
                until = int(np.searchsorted(triggers["t"], events["t"][-1], side="right"))
            else:
                until = sent
            until = max(until, sent)
            self._pending_triggers = until
            yield Packet(events, triggers[sent:until].copy())
            sent = until
        if sent < len(triggers):
            self._pending_triggers = len(triggers)
            yield Packet(empty_events(), triggers[sent:].copy())

    def _restart(self) -> None:
        # Members are compressed streams read forward: reopen them to go back.
        members, self._members = self._members, []
        for member in members:
            member.close()
        try:
            for name in self._member_names:  # each appended at once: close() finds it
                self._members.append(_Member(self._archive, name, self.path))
        except zipfile.BadZipFile as error:
            raise FormatError(f"damaged .npz archive: {error}", path=self.path) from None
        self._next = 0
        self._pending_triggers = 0

    def _iterate(self) -> Iterator[Packet]:
        try:
            yield from self._packets()
        except zipfile.BadZipFile as error:
            raise FormatError(f"damaged .npz archive: {error}", path=self.path) from None

    def _close(self) -> None:
        for member in self._members:
            member.close()
        self._members = []
        archive = getattr(self, "_archive", None)
        if archive is not None:
            archive.close()


class NpzWriter(FileWriter):
    """Writes a ``.npz`` archive: ``events`` (:data:`~aerflow.EVENTS_DTYPE`), ``triggers``
    (when any were written) and ``sensor_size`` (when ``width`` and ``height`` are given).
    Events are spooled to a temporary file and stored when the writer closes; ``compress``
    deflates the members."""

    format_name: ClassVar[str] = "npz"
    needs_seek: ClassVar[bool] = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compress: bool = False,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self._size = check_sensor_size(width, height)
        super().__init__(path)
        self._compress = bool(compress)
        self._spool = tempfile.TemporaryFile(  # noqa: SIM115 - closed in _finalize/_discard
            dir=os.path.dirname(os.path.abspath(self.path))
        )
        self._count = 0
        self._trigger_parts: list[npt.NDArray[Any]] = []

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events):
            self._spool.write(np.ascontiguousarray(events).data)
            self._count += len(events)
        if len(triggers):
            self._trigger_parts.append(np.array(triggers, TRIGGERS_DTYPE))

    def _finalize(self) -> None:
        compression = zipfile.ZIP_DEFLATED if self._compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(self._file, "w", compression=compression, allowZip64=True) as archive:
            with archive.open("events.npy", "w", force_zip64=True) as member:
                member.write(_npy_header(self._count))
                self._spool.seek(0)
                shutil.copyfileobj(self._spool, member, _COPY_BLOCK)
            if self._trigger_parts:
                triggers = np.concatenate(self._trigger_parts)
                with archive.open("triggers.npy", "w") as member:
                    np.lib.format.write_array(member, triggers, allow_pickle=False)
            if self._size is not None:
                with archive.open("sensor_size.npy", "w") as member:
                    np.lib.format.write_array(
                        member, np.array(self._size, np.int64), allow_pickle=False
                    )
        self._spool.close()

    def _discard(self) -> None:
        self._spool.close()
        super()._discard()
