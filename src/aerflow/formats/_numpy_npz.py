"""The ``.npz`` archive: :class:`NpzReader` (an ``events`` array or separate ``t``, ``x``,
``y``, ``p`` arrays, plus ``triggers`` and ``sensor_size``, each member read forward in row
blocks) and :class:`NpzWriter` (events spooled to a temporary file, stored on closing)."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, NotThisFormatError
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet, empty_events, empty_triggers
from ._base import FileReader, FileWriter, Properties, check_sensor_size
from ._numpy_arrays import (
    _POLARITY_NAMES,
    _TIME_NAMES,
    _check_chunk,
    _check_layout,
    _chunk_events,
    _column_names,
    _events,
    _triggers,
)
from ._numpy_header import _npy_header, _read_exactly, read_npy_header

__all__ = ["NpzReader", "NpzWriter"]

_COPY_BLOCK = 1 << 24


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
