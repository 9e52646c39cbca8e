"""Built-in file formats, registered on import (their kernels load on first use)."""

from __future__ import annotations

from ..registry import FormatInfo, Option, register
from .prophesee_header import parse_header, raw_encoding

_CHUNK = Option("chunk_size", int, "bytes decoded per step (memory per packet scales with it)")
_SIZE = (
    Option("width", int, "sensor width, overriding the header"),
    Option("height", int, "sensor height, overriding the header"),
)
_RAW_WRITE = (
    Option("width", int, "sensor width (required unless given by the events' extent)"),
    Option("height", int, "sensor height"),
    Option("time_origin", int, "µs subtracted before writing and stored in the header"),
)


def _raw_sniffer(encoding: str):  # type: ignore[no-untyped-def]
    def sniff(head: bytes) -> bool:
        header = parse_header(head)
        found = raw_encoding(header.entries) if header.entries else None
        return found is not None and found[0] == encoding

    return sniff


def _sniff_dat(head: bytes) -> bool:
    header = parse_header(head)
    if not header.entries or raw_encoding(header.entries) is not None:
        return False
    return "Data" in header.entries or "Version" in header.entries


register(
    FormatInfo(
        name="evt3",
        description="Prophesee RAW, EVT 3.0 (16-bit vectorised words; Gen4.1, IMX636, EVK4)",
        extensions=(".raw",),
        sniff=_raw_sniffer("evt3"),
        reader="aerflow.formats.evt3:Evt3Reader",
        writer="aerflow.formats.evt3:Evt3Writer",
        read_options=(_CHUNK, *_SIZE),
        write_options=_RAW_WRITE,
        default_for_extension=True,
    )
)
register(
    FormatInfo(
        name="evt2",
        description="Prophesee RAW, EVT 2.0 (32-bit words; Gen3, Gen4 EVK2)",
        extensions=(".raw",),
        sniff=_raw_sniffer("evt2"),
        reader="aerflow.formats.evt2:Evt2Reader",
        writer="aerflow.formats.evt2:Evt2Writer",
        read_options=(_CHUNK, *_SIZE),
        write_options=_RAW_WRITE,
    )
)
register(
    FormatInfo(
        name="evt21",
        description="Prophesee RAW, EVT 2.1 (64-bit vectorised words, little or legacy order)",
        extensions=(".raw",),
        sniff=_raw_sniffer("evt21"),
        reader="aerflow.formats.evt21:Evt21Reader",
        writer="aerflow.formats.evt21:Evt21Writer",
        read_options=(
            _CHUNK,
            *_SIZE,
            Option("order", str, "word order, overriding the header", choices=("little", "legacy")),
        ),
        write_options=(
            *_RAW_WRITE,
            Option("order", str, "word order", default="little", choices=("little", "legacy")),
        ),
    )
)
register(
    FormatInfo(
        name="dat",
        description="Prophesee DAT (8-byte CD / Event2d or external-trigger records)",
        extensions=(".dat",),
        sniff=_sniff_dat,
        reader="aerflow.formats.dat:DatReader",
        writer="aerflow.formats.dat:DatWriter",
        read_options=(
            _CHUNK,
            *_SIZE,
            Option("layout", str, "record bit layout, overriding the header", choices=("v1", "v2")),
        ),
        write_options=(
            Option("width", int, "sensor width"),
            Option("height", int, "sensor height"),
            Option("time_origin", int, "µs subtracted before writing and stored in the header"),
            Option("kind", str, "records to write", default="cd", choices=("cd", "trigger")),
        ),
    )
)
