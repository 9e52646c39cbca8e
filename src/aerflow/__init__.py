"""aerflow: move neuromorphic event data from any source to any sink, fast.

``import aerflow`` registers the file formats and loads the errors; the verbs, the event types
and the reader and writer bases load on first use (``aerflow.open`` imports
:mod:`aerflow.api`), so the command line starts without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import formats as _formats  # noqa: F401  (registers the built-in formats)
from ._optional import load_lazy as _load_lazy
from .errors import (
    AerflowError,
    FormatError,
    NotThisFormatError,
    OptionError,
    OutOfRangeWarning,
    OutputError,
    TruncatedDataWarning,
    UnknownFormatError,
)
from .properties import Properties
from .registry import FormatInfo, list_formats

if TYPE_CHECKING:
    from .api import open, read, write
    from .events import (
        EVENTS_DTYPE,
        IMU_DTYPE,
        TRIGGERS_DTYPE,
        Frame,
        Packet,
        as_events,
        parse_time,
    )
    from .formats import FileReader, FileWriter

__version__ = "0.1.0"

__all__ = [
    "EVENTS_DTYPE",
    "IMU_DTYPE",
    "TRIGGERS_DTYPE",
    "AerflowError",
    "FileReader",
    "FileWriter",
    "FormatError",
    "FormatInfo",
    "Frame",
    "NotThisFormatError",
    "OptionError",
    "OutOfRangeWarning",
    "OutputError",
    "Packet",
    "Properties",
    "TruncatedDataWarning",
    "UnknownFormatError",
    "as_events",
    "list_formats",
    "open",
    "parse_time",
    "read",
    "write",
]

_LAZY = {
    "open": "aerflow.api",
    "read": "aerflow.api",
    "write": "aerflow.api",
    "EVENTS_DTYPE": "aerflow.events",
    "IMU_DTYPE": "aerflow.events",
    "TRIGGERS_DTYPE": "aerflow.events",
    "Frame": "aerflow.events",
    "Packet": "aerflow.events",
    "as_events": "aerflow.events",
    "parse_time": "aerflow.events",
    "FileReader": "aerflow.formats",
    "FileWriter": "aerflow.formats",
}
"""Public names imported on first use, and the module each comes from."""


def __getattr__(name: str) -> Any:
    return _load_lazy(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
