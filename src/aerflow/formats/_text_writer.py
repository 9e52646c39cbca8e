"""The CSV / text writer, :class:`TextWriter`: events as lines of decimal fields (the
``_text_format_kernels`` formatter, a block of events at a time) in one of the
:data:`LAYOUTS` or in columns of the caller's choosing, into a file (moved into place when
closed) or into an open binary stream (:meth:`TextWriter.to_stream`)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from . import _text_format_kernels as format_kernels
from . import _text_kernels as kernels
from ._base import FileWriter, check_sensor_size
from ._text_layout import _UNIT_EXPONENT, _column_name, _roles, _separator_byte
from ._text_streams import _stream_name

__all__ = ["LAYOUTS", "MAX_TIME_US", "TextWriter"]

MAX_TIME_US = 10**18
"""Times from this many µs on are refused by the writer and the reader alike."""

LAYOUTS: dict[str, dict[str, Any]] = {
    "csv": {"columns": ("t", "x", "y", "on"), "separator": ",", "time_unit": "us", "header": True},
    "openeb": {
        "columns": ("x", "y", "p", "t"),
        "separator": ",",
        "time_unit": "us",
        "header": False,
    },
    "rpg": {"columns": ("t", "x", "y", "p"), "separator": " ", "time_unit": "s", "header": False},
}
"""Writer presets: aerflow's CSV, OpenEB's CSV (``%geometry`` line when the size is known) and
the Event Camera Dataset's text (seconds, space-separated, no header)."""

_BLOCK_EVENTS = 1 << 16


class TextWriter(FileWriter):
    """Writes events as text lines: by default ``t,x,y,on`` with a header, times in µs.

    ``layout`` picks a preset (``"csv"``, ``"openeb"``: ``x,y,p,t`` after ``%geometry:W,H``,
    ``"rpg"``: ``t x y p`` with times in seconds); ``columns``, ``separator``, ``time_unit``
    (``"us"``, ``"ms"`` or ``"s"``, written with 0, 3 or 6 decimals) and ``header`` override
    it. ``geometry`` writes a ``%geometry:W,H`` first line (default: for the OpenEB layout
    when ``width`` and ``height`` are given). Triggers cannot be stored (they are counted in
    ``unwritten_triggers`` and logged).
    """

    format_name: ClassVar[str] = "csv"
    stores = ()

    def _why_unwritten(self, channel: str) -> str:
        return "text files hold events only"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layout: str = "csv",
        columns: str | Sequence[str] | None = None,
        separator: str | None = None,
        time_unit: str | None = None,
        header: bool | None = None,
        geometry: bool | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self._configure(layout, columns, separator, time_unit, header, geometry, width, height)
        super().__init__(path)
        self._out: Any = self._file
        self._stream = False

    @classmethod
    def to_stream(
        cls,
        stream: Any,
        *,
        layout: str = "csv",
        columns: str | Sequence[str] | None = None,
        separator: str | None = None,
        time_unit: str | None = None,
        header: bool | None = None,
        geometry: bool | None = None,
        width: int | None = None,
        height: int | None = None,
        name: str | None = None,
    ) -> TextWriter:
        """A writer straight into an open binary stream (``sys.stdout.buffer``, a pipe): no
        temporary file, flushed after every packet; :meth:`close` flushes but leaves the
        stream open. Errors of the stream (``BrokenPipeError``) reach the caller as they are.
        """
        if isinstance(stream, io.TextIOBase) or not hasattr(stream, "write"):
            raise TypeError(
                "to_stream needs a binary stream (e.g. sys.stdout.buffer), "
                f"got {type(stream).__name__}"
            )
        writer = cls.__new__(cls)
        writer._configure(layout, columns, separator, time_unit, header, geometry, width, height)
        writer.path = name or _stream_name(stream)
        writer._out = stream
        writer._stream = True
        writer._closed = False
        writer.unwritten = {}
        return writer

    def _configure(
        self,
        layout: str,
        columns: str | Sequence[str] | None,
        separator: str | None,
        time_unit: str | None,
        header: bool | None,
        geometry: bool | None,
        width: int | None,
        height: int | None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        preset = LAYOUTS[layout]
        if columns is None:
            names: tuple[str, ...] = preset["columns"]
        elif isinstance(columns, str):
            names = tuple(c.strip() for c in re.split(r"[,\s]+", columns.strip()))
        else:
            names = tuple(str(c) for c in columns)
        roles, _, problem = _roles(names)
        if problem:
            raise ValueError(f"columns {problem}")
        if kernels.ROLE_SKIP in roles:
            raise ValueError(f"columns to write must be t, x, y and p only, got {names}")
        separator = preset["separator"] if separator is None else separator
        separator_byte = _separator_byte(separator)
        assert separator_byte is not None
        unit = preset["time_unit"] if time_unit is None else time_unit
        if unit not in _UNIT_EXPONENT:
            raise ValueError(f"time_unit must be 'us', 'ms' or 's', got {unit!r}")
        self._size = check_sensor_size(width, height)
        self.width: int | None = self._size[0] if self._size else None
        self.height: int | None = self._size[1] if self._size else None
        self._roles = roles
        self._separator = separator_byte or (9 if separator == "\t" else 32)
        self._decimals = _UNIT_EXPONENT[unit]
        self._header = preset["header"] if header is None else bool(header)
        self._geometry = (layout == "openeb") if geometry is None else bool(geometry)
        if self._geometry and self._size is None and geometry:
            raise ValueError("geometry=True needs width and height")
        self._names = tuple(
            f"{_column_name(n)[0]}_{unit}"
            if unit != "us" and roles[i] == kernels.ROLE_T
            else _column_name(n)[0]
            for i, n in enumerate(names)
        )
        self._preamble_written = False
        """Triggers handed to the writer, which text cannot hold."""

    def _write_preamble(self) -> None:
        if self._preamble_written:
            return
        self._preamble_written = True
        lines = []
        if self._geometry and self._size is not None:
            lines.append(f"%geometry:{self._size[0]},{self._size[1]}\n")
        if self._header:
            lines.append(chr(self._separator).join(self._names) + "\n")
        if lines:
            self._out.write("".join(lines).encode())

    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        # Readers keep 18 significant digits: a larger time would not read back.
        if len(events) and int(events["t"].max()) >= MAX_TIME_US:
            raise ValueError(
                f"text stores times below 10**18 µs (~31,700 years): got "
                f"t={int(events['t'].max())} µs"
            )
        self._write_preamble()
        if self._size is not None and len(events):
            width, height = self._size
            if int(events["x"].max()) >= width or int(events["y"].max()) >= height:
                raise ValueError(
                    f"events lie outside the {width}x{height} sensor "
                    f"(max x {int(events['x'].max())}, max y {int(events['y'].max())})"
                )
        line_bound = len(self._roles) * 22 + 1
        for start in range(0, len(events), _BLOCK_EVENTS):
            block = np.ascontiguousarray(events[start : start + _BLOCK_EVENTS])
            out = np.empty(len(block) * line_bound, np.uint8)
            count = format_kernels.format_lines(
                block, self._roles, self._separator, self._decimals, out
            )
            self._out.write(memoryview(out[:count]))  # type: ignore[arg-type]
        if self._stream:
            self._out.flush()

    def _finalize(self) -> None:
        self._write_preamble()

    def close(self) -> None:
        """Finish: move the file into place, or flush the stream (left open)."""
        if not self._stream:
            super().close()
            return
        if self._closed:
            return
        self._closed = True
        self._finalize()
        self._out.flush()
        self._log_unwritten()

    def abort(self) -> None:
        """Stop: discard the temporary file; a stream is left as it is."""
        if not self._stream:
            super().abort()
            return
        self._closed = True
