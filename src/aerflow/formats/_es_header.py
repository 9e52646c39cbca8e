"""Event Stream header: the signature ``Event Stream``, the version (major 2), the stream type
byte and, except for generic streams, the sensor's width and height (little-endian uint16);
the stream type codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import FormatError, NotThisFormatError

__all__ = ["MAGIC", "STREAM_TYPES", "sniff"]

MAGIC = b"Event Stream"
GENERIC, DVS, ATIS, AMD, COLOR = 0, 1, 2, 3, 4
STREAM_TYPES = {GENERIC: "generic", DVS: "dvs", ATIS: "atis", COLOR: "color"}
"""Stream type byte -> name, for the types aerflow reads."""
_TYPE_CODES = {name: code for code, name in STREAM_TYPES.items()}

_VERSION = (2, 0, 0)
_HEADER_SIZE = 20  # 16 for generic streams


def sniff(head: bytes) -> bool:
    """True when ``head`` starts with the Event Stream signature."""
    return head.startswith(MAGIC)


@dataclass(frozen=True)
class _Header:
    version: tuple[int, int, int]
    stream_type: int
    width: int | None
    height: int | None
    data_offset: int


def _read_header(file: Any, path: str) -> _Header:
    file.seek(0)
    head = file.read(_HEADER_SIZE)
    if not head.startswith(MAGIC):
        raise NotThisFormatError(
            "not an Event Stream file (it does not start with 'Event Stream')",
            path=path,
            offset=0,
        )
    if len(head) < 16:
        raise FormatError(
            "the file ends inside the Event Stream header (version and type bytes)",
            path=path,
            offset=len(head),
        )
    version = (head[12], head[13], head[14])
    if version[0] != 2:
        raise FormatError(
            f"Event Stream version {'.'.join(map(str, version))} is not supported (2.x is)",
            path=path,
            offset=12,
        )
    stream_type = head[15]
    if stream_type not in STREAM_TYPES:
        what = (
            "Asynchronous & Modular Display streams (type 3) are not supported"
            if stream_type == AMD
            else f"unknown Event Stream type {stream_type} (expected 0 generic, 1 DVS, 2 ATIS "
            "or 4 color)"
        )
        raise FormatError(what, path=path, offset=15)
    if stream_type == GENERIC:
        return _Header(version, stream_type, None, None, 16)
    if len(head) < _HEADER_SIZE:
        raise FormatError(
            "the file ends inside the Event Stream header (width and height)",
            path=path,
            offset=len(head),
        )
    width = head[16] | head[17] << 8
    height = head[18] | head[19] << 8
    return _Header(version, stream_type, width, height, _HEADER_SIZE)
