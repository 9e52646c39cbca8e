"""AEDAT 4.0 packet compression: the codes of the IOHeader (none, LZ4, LZ4 HC, Zstd, Zstd high)
and one packet payload (or the file data table) compressed and decompressed, with checks that
a payload cannot claim more bytes than it can hold."""

from __future__ import annotations

import struct
import threading
from typing import Any

import lz4.frame  # type: ignore[import-untyped]
import zstandard

from ..errors import PayloadError

__all__ = [
    "DEFAULT_LEVELS",
    "LZ4",
    "LZ4_HIGH",
    "NONE",
    "ZSTD",
    "ZSTD_HIGH",
    "compress",
    "decompress",
]

NONE, LZ4, LZ4_HIGH, ZSTD, ZSTD_HIGH = range(5)
DEFAULT_LEVELS = {LZ4: 0, LZ4_HIGH: 9, ZSTD: 3, ZSTD_HIGH: 19}
"""Compression levels by code: LZ4 fast, LZ4 HC level 9, Zstd 3 (its default), Zstd 19."""

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_PAYLOAD = 1 << 32
_ZSTD_MAX_RATIO = 1 << 15  # one 4-byte RLE block can stand for a 128 KiB block
_local = threading.local()


def decompress(code: int, payload: Any) -> Any:
    """The FlatBuffer bytes of one packet payload (``payload`` itself when uncompressed).

    Zstd (de)compressor objects are not thread-safe: each thread keeps its own.
    """
    if code == NONE:
        return payload
    try:
        if code in (LZ4, LZ4_HIGH):
            return _decompress_lz4(payload)
        return _decompress_zstd(payload)
    except PayloadError:
        raise
    except (RuntimeError, ValueError, zstandard.ZstdError, MemoryError, OverflowError) as error:
        name = "LZ4" if code in (LZ4, LZ4_HIGH) else "Zstd"
        raise PayloadError(f"cannot decompress the {name} data ({error})") from None


def _decompress_lz4(payload: Any) -> bytes:
    head = bytes(payload[:14])
    if head[:4] != _LZ4_MAGIC:
        raise PayloadError(f"not an LZ4 frame (it starts {head[:4].hex()}, not 04224d18)")
    if len(head) >= 14 and head[4] & 0x08:  # the frame header holds the content size
        (size,) = struct.unpack_from("<Q", head, 6)
        if size > 255 * len(payload) + (1 << 16) or size > _MAX_PAYLOAD:
            raise PayloadError(
                f"the LZ4 frame claims {size} bytes, more than {len(payload)} bytes can hold"
            )
    data: bytes = lz4.frame.decompress(payload)
    return data


def _decompress_zstd(payload: Any) -> bytes:
    if bytes(payload[:4]) != _ZSTD_MAGIC:
        raise PayloadError(f"not a Zstd frame (it starts {bytes(payload[:4]).hex()}, not 28b52ffd)")
    decompressor = getattr(_local, "zstd", None)
    if decompressor is None:
        decompressor = _local.zstd = zstandard.ZstdDecompressor()
    size = zstandard.frame_content_size(payload)
    limit = min(len(payload) * _ZSTD_MAX_RATIO + (1 << 20), _MAX_PAYLOAD)
    if size > limit:
        raise PayloadError(f"the Zstd frame claims {size} bytes, more than it can hold")
    if size >= 0:
        data: bytes = decompressor.decompress(payload)
        return data
    # No content size in the frame: stream it out, bounded.
    parts = []
    total = 0
    with decompressor.stream_reader(payload, read_across_frames=False) as reader:
        while True:
            part = reader.read(1 << 20)
            if not part:
                break
            total += len(part)
            if total > limit:
                raise PayloadError("the Zstd frame expands beyond any plausible packet")
            parts.append(part)
    return b"".join(parts)


def compress(code: int, data: bytes | memoryview, level: int | None = None) -> bytes | memoryview:
    """Compress one packet payload (or the file data table) with the file's codec."""
    if code == NONE:
        return data
    chosen = DEFAULT_LEVELS[code] if level is None else level
    if code in (LZ4, LZ4_HIGH):
        # Independent blocks: about 15 % faster to compress than linked ones here, and no
        # larger (each block of up to 64 KiB holds some 4000 events).
        out: bytes = lz4.frame.compress(
            data, compression_level=chosen, block_linked=False, store_size=True
        )
        return out
    compressors = getattr(_local, "zstd_compressors", None)
    if compressors is None:
        compressors = _local.zstd_compressors = {}
    compressor = compressors.get(chosen)
    if compressor is None:
        compressor = compressors[chosen] = zstandard.ZstdCompressor(level=chosen)
    out = compressor.compress(data)
    return out
