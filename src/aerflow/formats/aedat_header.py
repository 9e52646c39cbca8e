"""iniVation AEDAT headers: the '#' lines that open AEDAT 1.0, 2.0, 3.0 and 3.1 files.

A header is a run of lines that start with ``#`` and end with CRLF (a bare LF is accepted
too). The first line may be the version line ``#!AER-DATx.y``. AEDAT 3.1 ends its header
with ``#!END-HEADER``, recent jAER files with ``#End Of ASCII Header``; otherwise the header
ends at the first line that does not start with ``#``, or whose bytes are not text (control
characters other than tab): that is a first record that happens to begin with 0x23.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import FormatError

__all__ = [
    "END_HEADER",
    "AedatHeader",
    "format_lines",
    "header_entries",
    "parse_header",
    "read_header",
    "sniff_version",
]

VERSION_PREFIX = b"#!AER-DAT"
END_HEADER = "!END-HEADER"
JAER_END = "end of ascii header"
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f]")
_VERSION = re.compile(rb"#!AER-DAT(\d+\.\d+)\r?\n")
_ENTRY = re.compile(r"^\s?([A-Za-z][\w\-. ]*?)\s*:\s*(.*)$")
_MAX_HEADER = 1 << 26


@dataclass(frozen=True)
class AedatHeader:
    """What the '#' lines say.

    ``lines`` holds every header line without its ``#`` and line ending (decoded as
    Latin-1, so any byte survives), the version line included; ``data_offset`` is the first
    byte after the header; ``complete`` is False when the data ended inside a line.
    """

    version: str | None
    lines: tuple[str, ...]
    data_offset: int
    complete: bool
    ended: bool
    """True when an ``#!END-HEADER`` line closed the header."""


def sniff_version(head: bytes) -> str | None:
    """The ``x.y`` of a ``#!AER-DATx.y`` first line, or None."""
    match = _VERSION.match(head)
    return match.group(1).decode("ascii") if match else None


def parse_header(data: bytes) -> AedatHeader:
    """Parse the header at the start of ``data`` (which may hold more than the header)."""
    version = sniff_version(data)
    lines: list[str] = []
    position = 0
    complete = True
    ended = False
    size = len(data)
    while position < size and data[position] == 0x23:  # '#'
        end = data.find(b"\n", position)
        raw = data[position + 1 : size if end < 0 else end]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if _CONTROL.search(raw):
            break  # binary: the first record happens to start with '#'
        line = raw.decode("latin-1")
        lines.append(line)
        if end < 0:
            position = size
            complete = False
            break
        position = end + 1
        if line == END_HEADER or line.strip().lower() == JAER_END:
            ended = True
            break
    return AedatHeader(version, tuple(lines), position, complete, ended)


def read_header(file: BinaryIO, path: str, size: int) -> AedatHeader:
    """Read the header of an open file of ``size`` bytes, however long it is."""
    limit = 1 << 16
    while True:
        file.seek(0)
        head = file.read(limit)
        header = parse_header(head)
        runs_on = header.data_offset >= len(head) and not header.ended
        if len(head) >= size or not runs_on:
            return header
        if limit >= _MAX_HEADER:
            raise FormatError("header is longer than 64 MiB", path=path, offset=0)
        limit *= 4


def header_entries(lines: tuple[str, ...]) -> dict[str, str]:
    """``Key: value`` lines as a dict (the first of repeated keys wins); XML dumps and
    free text are left out."""
    entries: dict[str, str] = {}
    for line in lines:
        if line.startswith("!"):
            continue
        match = _ENTRY.match(line)
        if match is None or "<" in match.group(1):
            continue
        key = match.group(1).strip()
        entries.setdefault(key, match.group(2).strip())
    return entries


def format_lines(lines: list[str]) -> bytes:
    """Header lines as bytes: each prefixed with '#' and ended with CRLF."""
    out = []
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"a header line cannot hold a line break: {line!r}")
        out.append(("#" + line + "\r\n").encode("latin-1"))
    return b"".join(out)
