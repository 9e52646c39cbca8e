"""Prophesee's ASCII header, shared by RAW (EVT 2.0/2.1/3.0) and DAT files.

A header is a run of ``% key value`` lines. Parsing stops at ``% end`` or at the first line
that does not start with ``"% "`` (legacy files have no ``% end``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SYSTEM_ID_TABLE",
    "Header",
    "format_header",
    "parse_header",
    "raw_encoding",
    "raw_geometry",
]

# system_ID -> (encoding, width, height), consulted only when the header names no geometry.
SYSTEM_ID_TABLE: dict[int, tuple[str, int, int]] = {
    0x15: ("evt2", 640, 480),  # CCAM3_GEN3
    0x17: ("evt2", 640, 480),  # CCAM4_GEN3
    0x19: ("evt2", 640, 480),  # CCAM4_GEN3_REV_B
    0x1A: ("evt2", 1280, 720),  # CCAM3_GEN4
    0x1C: ("evt2", 640, 480),  # CCAM3_GEN31
    0x1D: ("evt2", 640, 480),  # CCAM4_GEN3_REV_B_EVK_BRIDGE
    0x1E: ("evt3", 1280, 720),  # CCAM5_GEN4
    0x1F: ("evt2", 1280, 720),  # EVK2_GEN4
    0x21: ("evt2", 640, 480),  # VISIONCAM_GEN3
    0x22: ("evt2", 640, 480),  # VISIONCAM_GEN31
    0x23: ("evt2", 640, 480),  # CCAM5_GEN31 / EVK3_GEN31_EVT2
    0x27: ("evt2", 1280, 720),  # EVK2_GEN41
    0x28: ("evt3", 640, 480),  # EVK3_GEN31_EVT3
    0x29: ("evt2", 640, 480),  # EVK2_GEN31
    0x2E: ("evt3", 1280, 720),  # CCAM5_GEN4_FIXED_FRAME
    0x30: ("evt3", 1280, 720),  # EVK3_GEN41
    0x31: ("evt3", 1280, 720),  # EVK3_IMX636
    0x32: ("evt3", 1280, 720),  # EVK2_IMX636
    0x97: ("evt2", 640, 480),  # CCAM4_GEN3_EVK
    0x99: ("evt2", 640, 480),  # CCAM4_GEN3_REV_B_EVK
    0xA1: ("evt2", 640, 480),  # VISIONCAM_GEN3_EVK
    0xA2: ("evt2", 640, 480),  # VISIONCAM_GEN31_EVK
}
# Systems older than this one wrote EVT 2.1 with the 32-bit halves swapped.
_FIRST_SYSTEM_WITH_LITTLE_EVT21 = 0x37

_FORMAT_NAMES = {"EVT2": "evt2", "EVT21": "evt21", "EVT3": "evt3"}
_LEGACY_EVT = {"2.0": "evt2", "2.1": "evt21", "3.0": "evt3"}


@dataclass(frozen=True)
class Header:
    """A parsed header: its entries in file order and where the binary data starts."""

    entries: dict[str, str]
    data_offset: int
    complete: bool  # False when the bytes ran out before the header ended


def parse_header(data: bytes | memoryview) -> Header:
    """Parse the header at the start of ``data``."""
    entries: dict[str, str] = {}
    position = 0
    size = len(data)
    while position + 1 < size and data[position] == 0x25 and data[position + 1] == 0x20:
        newline = bytes(data[position : position + 65536]).find(b"\n")
        if newline < 0:
            return Header(entries, size, complete=False)
        line = bytes(data[position + 2 : position + newline]).decode("latin-1")
        position += newline + 1
        tokens = line.split()
        if not tokens:
            continue
        if tokens == ["end"]:
            break
        entries[tokens[0]] = " ".join(tokens[1:])
    return Header(entries, position, complete=True)


def format_header(entries: dict[str, str]) -> bytes:
    """Serialise ``entries`` as header lines followed by ``% end``."""
    lines = []
    for key, value in entries.items():
        if not key or any(c.isspace() for c in key) or "\n" in value:
            raise ValueError(f"invalid header entry {key!r}: {value!r}")
        lines.append(f"% {key} {value}\n" if value else f"% {key}\n")
    lines.append("% end\n")
    return "".join(lines).encode("latin-1")


def _format_options(entries: dict[str, str]) -> tuple[str | None, dict[str, str]]:
    value = entries.get("format")
    if value is None:
        return None, {}
    name, *options = value.split(";")
    parsed = {}
    for option in options:
        key, _, option_value = option.partition("=")
        parsed[key.strip()] = option_value.strip()
    return name.strip().upper(), parsed


def _system_id(entries: dict[str, str]) -> int | None:
    value = entries.get("system_ID")
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None


def raw_encoding(entries: dict[str, str]) -> tuple[str, str | None] | None:
    """Return (encoding, EVT 2.1 word order) for a RAW header, or None if it names none.

    The encoding comes from ``format``, else the legacy ``evt`` key, else the system_ID table.
    The EVT 2.1 order comes from the format's ``endianness`` option, else the ``endianness``
    key, else ``legacy`` for systems older than the first to write ``little``.
    """
    name, options = _format_options(entries)
    encoding = _FORMAT_NAMES.get(name) if name else None
    if encoding is None and "evt" in entries:
        encoding = _LEGACY_EVT.get(entries["evt"].strip())
    system_id = _system_id(entries)
    if encoding is None and system_id in SYSTEM_ID_TABLE:
        encoding = SYSTEM_ID_TABLE[system_id][0]
    if encoding is None:
        return None
    if encoding != "evt21":
        return encoding, None
    order = options.get("endianness") or entries.get("endianness")
    if order is None:
        legacy = system_id is not None and system_id < _FIRST_SYSTEM_WITH_LITTLE_EVT21
        order = "legacy" if legacy else "little"
    return encoding, order


def raw_geometry(entries: dict[str, str]) -> tuple[int, int] | None:
    """Sensor (width, height): format options, else ``geometry``, else the system_ID table.

    Raises ValueError when the format options and ``geometry`` disagree or are malformed.
    """
    _, options = _format_options(entries)
    from_format = None
    if "width" in options and "height" in options:
        from_format = (_positive(options["width"]), _positive(options["height"]))
    from_geometry = None
    if "geometry" in entries:
        width, sep, height = entries["geometry"].lower().partition("x")
        if not sep:
            raise ValueError(f"geometry {entries['geometry']!r} is not WIDTHxHEIGHT")
        from_geometry = (_positive(width), _positive(height))
    if from_format and from_geometry and from_format != from_geometry:
        raise ValueError(
            f"format says {from_format[0]}x{from_format[1]} but geometry says "
            f"{from_geometry[0]}x{from_geometry[1]}"
        )
    if from_format or from_geometry:
        return from_format or from_geometry
    system_id = _system_id(entries)
    if system_id in SYSTEM_ID_TABLE:
        _, table_width, table_height = SYSTEM_ID_TABLE[system_id]
        return table_width, table_height
    return None


def _positive(text: str) -> int:
    value = int(text.strip())
    if value <= 0 or value > 65536:
        raise ValueError(f"sensor dimension {value} is out of range")
    return value
