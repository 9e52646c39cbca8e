"""Recognising CSV / text events by a file's first bytes: :func:`sniff_text`, which the
format registry asks when no earlier format claimed the file."""

from __future__ import annotations

import re

from ._text_layout import _BLANKS, _BOM, _GEOMETRY, _detect_separator, _is_number, _roles, _split

__all__ = ["sniff_text"]

_SNIFF_BYTES = 8192
_SNIFF_LINES = 20
_PRINTABLE = re.compile(rb"[\t\n\r\x20-\x7e]*")
_NAME = re.compile(rb"[A-Za-z_\"'][A-Za-z0-9_ ()\[\]\"'.]*")


def sniff_text(head: bytes) -> bool:
    """True for text that looks like event columns: printable ASCII lines of at least four
    numeric fields (after an optional ``%geometry`` line and an optional header naming the
    columns). Files that start with another ``%`` or ``#`` line (Prophesee, AEDAT headers)
    and binary files are never claimed."""
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    sample = head[:_SNIFF_BYTES]
    lines = sample.split(b"\n")
    if len(head) > _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line is cut by the sample's end
    if not _PRINTABLE.fullmatch(b"\n".join(lines)):
        return False
    lines = [line.strip(_BLANKS) for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return False
    if lines[0].startswith(b"%"):
        if not _GEOMETRY.fullmatch(lines[0]):
            return False
        lines = lines[1:]
        if not lines:
            return True
    if lines[0].startswith(b"#"):
        return False
    separator = _detect_separator(lines[0])
    first = _split(lines[0], separator)
    if len(first) < 4 or len(first) > 32:
        return False
    if not any(_is_number(f) for f in first):
        if not all(_NAME.fullmatch(f) for f in first):
            return False
        _, _, problem = _roles([f.decode() for f in first])
        if problem:
            return False
        lines = lines[1:]
    for line in lines[:_SNIFF_LINES]:
        fields = _split(line, separator)
        if len(fields) != len(first) or not all(_is_number(f) for f in fields):
            return False
    return True
