"""aerflow: move neuromorphic event data from any source to any sink, fast."""

from __future__ import annotations

from .api import open, read, write
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
from .events import (
    EVENTS_DTYPE,
    IMU_DTYPE,
    TRIGGERS_DTYPE,
    Frame,
    Packet,
    as_events,
    parse_time,
)
from .formats._base import FileReader, FileWriter, Properties
from .registry import FormatInfo, list_formats

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
