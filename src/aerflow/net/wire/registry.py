"""The registry of UDP wire formats: names, aliases, record sizes and limits."""

from __future__ import annotations

from dataclasses import dataclass

from .aerflow import AERFLOW_HEADER_BYTES, AERFLOW_RECORD_BYTES
from .common import MAX_DATAGRAM_BYTES, MTU_DATAGRAM_BYTES

__all__ = ["WIRE_FORMATS", "WireFormat", "get_wire_format", "wire_format_names"]

_RECORD = AERFLOW_RECORD_BYTES

# Kernel selectors.
_SPIF, _SPIF_T, _FAERY_T64, _FAERY_T32, _AERFLOW = range(5)


@dataclass(frozen=True)
class WireFormat:
    """One way of putting events in datagrams.

    ``x_limit``/``y_limit`` are exclusive coordinate limits; ``times`` is ``"none"``
    (receivers use the arrival time), ``"low32"`` (the low 32 bits of µs, unwrapped on
    receive) or ``"full"`` (64-bit µs, or a 64-bit base plus deltas).
    """

    name: str
    description: str
    record_bytes: int
    header_bytes: int
    x_limit: int
    y_limit: int
    times: str
    default_datagram_bytes: int
    aliases: tuple[str, ...] = ()
    _kind: int = -1

    def events_per_datagram(self, datagram_bytes: int) -> int:
        return (datagram_bytes - self.header_bytes) // self.record_bytes

    def check_datagram_bytes(self, datagram_bytes: int | None) -> int:
        """``datagram_bytes`` (or this format's default) checked against the format."""
        if datagram_bytes is None:
            return self.default_datagram_bytes
        size = int(datagram_bytes)
        smallest = self.header_bytes + self.record_bytes
        if not smallest <= size <= MAX_DATAGRAM_BYTES:
            raise ValueError(
                f"datagram_bytes={size} is outside {smallest}..{MAX_DATAGRAM_BYTES} "
                f"for wire format {self.name!r}"
            )
        return size


WIRE_FORMATS: dict[str, WireFormat] = {
    info.name: info
    for info in (
        WireFormat(
            "aerflow",
            "aerflow's own: header with stream id, sequence number, sensor size, end of "
            "stream; 8-byte events (64-bit time base + 31-bit deltas)",
            _RECORD,
            AERFLOW_HEADER_BYTES,
            1 << 16,
            1 << 16,
            "full",
            MTU_DATAGRAM_BYTES,
            _kind=_AERFLOW,
        ),
        WireFormat(
            "spif",
            "SPIF / aestream 32-bit words without timestamps (x, y < 32768; receivers "
            "assign arrival times)",
            4,
            0,
            1 << 15,
            1 << 15,
            "none",
            512,  # aestream's UDPInput reads at most 512 bytes of a datagram
            _kind=_SPIF,
        ),
        WireFormat(
            "spif-t",
            "SPIF / aestream words each followed by a timestamp word (low 32 bits of µs)",
            8,
            0,
            1 << 15,
            1 << 15,
            "low32",
            512,
            _kind=_SPIF_T,
        ),
        WireFormat(
            "faery-t64",
            "faery t64_x16_y16_on8: 13-byte records t u64, x u16, y u16, on u8",
            13,
            0,
            1 << 16,
            1 << 16,
            "full",
            MTU_DATAGRAM_BYTES,
            aliases=("t64_x16_y16_on8",),
            _kind=_FAERY_T64,
        ),
        WireFormat(
            "faery-t32",
            "faery t32_x16_y15_on1: 8-byte records t u32, x u16, y<<1|on u16 (y < 32768)",
            8,
            0,
            1 << 16,
            1 << 15,
            "low32",
            MTU_DATAGRAM_BYTES,
            aliases=("t32_x16_y15_on1",),
            _kind=_FAERY_T32,
        ),
    )
}
"""Every wire format by name, the default (``aerflow``) first."""


def wire_format_names() -> list[str]:
    """The names :func:`get_wire_format` takes (aliases excluded)."""
    return list(WIRE_FORMATS)


def get_wire_format(name: str | WireFormat) -> WireFormat:
    """The wire format called ``name`` (faery's own names are aliases)."""
    if isinstance(name, WireFormat):
        return name
    key = name.strip().lower()
    if key in WIRE_FORMATS:
        return WIRE_FORMATS[key]
    for info in WIRE_FORMATS.values():
        if key in info.aliases:
            return info
    known = ", ".join(WIRE_FORMATS)
    raise ValueError(f"unknown wire format {name!r} (known: {known})")
