"""AEDAT 4.0 file header: the version line, the IOHeader FlatBuffer and its XML description.

A file starts with ``#!AER-DAT4.0\\r\\n`` and a size-prefixed ``IOHE`` FlatBuffer whose fields
are the compression of every packet (0 none, 1 LZ4, 2 LZ4 high, 3 Zstd, 4 Zstd high), the
byte position of the file data table (-1: none) and an XML description (DV's ``infoNode``)::

    <dv version="2.0">
        <node name="outInfo" path="/mainloop/Recorder/outInfo/">
            <node name="0" path="/mainloop/Recorder/outInfo/0/">
                <attr key="typeIdentifier" type="string">EVTS</attr>
                ...
                <node name="info" path="/mainloop/Recorder/outInfo/0/info/">
                    <attr key="sizeX" type="int">320</attr>
                    ...

Each child of ``outInfo`` is a stream: its node name is the stream id found in packet headers,
``typeIdentifier`` the FlatBuffer identifier of its packets (``EVTS``, ``TRIG``, ``IMUS``,
``FRME``...), ``info`` holds the sensor size (``sizeX``, ``sizeY``) and the camera (``source``).
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..errors import FlatBufferError, HeaderError
from .aedat4_flatbuffers import Builder, root_table

__all__ = [
    "COMPRESSIONS",
    "MAGIC",
    "HeaderError",
    "IOHeader",
    "StreamInfo",
    "build_description",
    "build_io_header",
    "parse_description",
    "parse_io_header",
]

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSIONS = ("NONE", "LZ4", "LZ4_HIGH", "ZSTD", "ZSTD_HIGH")
"""Compression names by their IOHeader code (DV's names, also used in stream attributes)."""

_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_MAX_SENSOR = 1 << 16
_ROOT_PATH = "/mainloop/Recorder/outInfo/"


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the description: its id in packet headers and what it carries."""

    id: int
    type_identifier: str
    attributes: dict[str, str] = field(default_factory=dict)
    """The stream node's attributes (``compression``, ``originalOutputName``...)."""
    info: dict[str, str] = field(default_factory=dict)
    """The ``info`` child's attributes (``sizeX``, ``sizeY``, ``source``, ``tsOffset``...)."""

    @property
    def name(self) -> str:
        """The output's name (``originalOutputName``), else the type identifier."""
        return self.attributes.get("originalOutputName", self.type_identifier)

    @property
    def size(self) -> tuple[int, int] | None:
        """(sizeX, sizeY) when the description gives both."""
        if "sizeX" not in self.info or "sizeY" not in self.info:
            return None
        return int(self.info["sizeX"]), int(self.info["sizeY"])


@dataclass(frozen=True)
class IOHeader:
    compression: int
    data_table_position: int
    description: str
    data_offset: int
    """Where the first packet starts (the byte after the header)."""


def parse_io_header(data: Any, file_size: int, start: int = len(MAGIC)) -> IOHeader:
    """Parse the IOHeader FlatBuffer in ``data`` (the file's bytes from the start, at least
    up to the end of the header). ``start`` is where its size prefix lies: after the version
    line in a file, at 0 on DV's network streams, which send the header alone."""
    if len(data) < start + 4:
        raise HeaderError("the file ends inside the IOHeader's size prefix", start)
    (size,) = struct.unpack_from("<I", data, start)
    end = start + 4 + size
    if end > file_size or end > len(data):
        raise HeaderError(
            f"the IOHeader says it has {size} bytes but the file ends before them", start
        )
    buffer = memoryview(data)[start:end]
    try:
        root = root_table(buffer, None)
        compression = root.scalar(0, _I32, 0)
        position = root.scalar(1, _I64, -1)
        description = root.bytes(2)
    except FlatBufferError as error:
        raise HeaderError(f"IOHeader: {error}", start + error.offset) from None
    if not 0 <= compression < len(COMPRESSIONS):
        raise HeaderError(f"unknown compression code {compression} in the IOHeader", start)
    try:
        text = (description or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError("the IOHeader's description is not UTF-8 text", start) from None
    return IOHeader(compression, position, text, end)


def parse_description(text: str, offset: int) -> list[StreamInfo]:
    """The streams of a DV XML description, by ascending id. ``offset`` is where errors
    are reported."""
    if not text.strip():
        return []
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise HeaderError("the description declares a DTD or entities (not DV XML)", offset)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise HeaderError(f"the description is not well-formed XML ({error})", offset) from None
    out_info = next((node for node in root.iter("node") if node.get("name") == "outInfo"), None)
    if out_info is None:
        return []
    streams: dict[int, StreamInfo] = {}
    for node in out_info.findall("node"):
        name = node.get("name", "")
        if not name.isdigit() or int(name) >= 1 << 31:
            continue
        attributes = _attributes(node)
        info_node = next((n for n in node.findall("node") if n.get("name") == "info"), None)
        info = _attributes(info_node) if info_node is not None else {}
        stream = StreamInfo(int(name), attributes.get("typeIdentifier", ""), attributes, info)
        _check_size(stream, offset)
        streams.setdefault(stream.id, stream)
    return [streams[key] for key in sorted(streams)]


def _attributes(node: ElementTree.Element) -> dict[str, str]:
    return {
        attr.get("key", ""): (attr.text or "").strip()
        for attr in node.findall("attr")
        if attr.get("key")
    }


def _check_size(stream: StreamInfo, offset: int) -> None:
    for key in ("sizeX", "sizeY"):
        value = stream.info.get(key)
        if value is None:
            continue
        try:
            number = int(value)
        except ValueError:
            raise HeaderError(
                f"stream {stream.id}: {key} is not an integer: {value!r}", offset
            ) from None
        if not 0 < number <= _MAX_SENSOR:
            raise HeaderError(
                f"stream {stream.id}: {key} = {number} is outside 1..{_MAX_SENSOR}", offset
            )


def build_description(streams: Sequence[StreamInfo]) -> str:
    """DV's XML description of ``streams`` (the layout DV itself writes)."""
    lines = ['<dv version="2.0">', f'    <node name="outInfo" path="{_ROOT_PATH}">']
    for stream in streams:
        path = f"{_ROOT_PATH}{stream.id}/"
        lines.append(f'        <node name="{stream.id}" path="{path}">')
        attributes = dict(stream.attributes)
        attributes["typeIdentifier"] = stream.type_identifier
        for key in sorted(attributes):
            lines.append("            " + _attr_line(key, attributes[key]))
        lines.append(f'            <node name="info" path="{path}info/">')
        for key in sorted(stream.info):
            lines.append("                " + _attr_line(key, stream.info[key]))
        lines.append("            </node>")
        lines.append("        </node>")
    lines += ["    </node>", "</dv>", ""]
    return "\n".join(lines)


_INT_KEYS = {"sizeX": "int", "sizeY": "int", "tsOffset": "long"}


def _attr_line(key: str, value: str) -> str:
    kind = _INT_KEYS.get(key, "string")
    return f"<attr key={quoteattr(key)} type={quoteattr(kind)}>{escape(value)}</attr>"


def io_header_size(description: bytes) -> int:
    """Bytes :func:`build_io_header` writes (with its size prefix) for ``description``."""
    return len(_io_header_buffer(0, -1, description))


def build_io_header(
    compression: int, data_table_position: int, description: bytes, size: int | None = None
) -> bytes:
    """The size-prefixed IOHeader buffer. With ``size``, the description is padded with
    trailing spaces so that the buffer takes exactly ``size`` bytes (a header written
    before the data and rewritten at the end keeps its length)."""
    buffer = _io_header_buffer(compression, data_table_position, description)
    if size is None or len(buffer) == size:
        return buffer
    missing = size - len(buffer)
    if missing < 0:
        raise ValueError(f"the header needs {len(buffer)} bytes, more than the {size} reserved")
    for extra in range(missing, max(missing - 16, -1), -1):
        candidate = _io_header_buffer(compression, data_table_position, description + b" " * extra)
        if len(candidate) == size:
            return candidate
    raise ValueError(f"cannot pad the header to {size} bytes")  # pragma: no cover - 8-aligned


def _io_header_buffer(compression: int, data_table_position: int, description: bytes) -> bytes:
    # Table: soffset, compression (int32), dataTablePosition (int64, 8-aligned), infoNode.
    builder = Builder(b"IOHE")
    vtable = builder.vtable(20, (4, 8, 16))
    table = builder.table(vtable, 20)
    builder.pack("<iq", table + 4, compression, data_table_position)
    builder.set_root(table)
    builder.refer(table + 16, builder.string(description))
    return builder.finish()
