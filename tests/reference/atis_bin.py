"""Slow, plain-Python reference decoder for ATIS .bin files (N-MNIST, N-Caltech101).

Written from ``docs/formats/atis-bin.md``, to cross-check
``aerflow.formats.atis_bin``; it imports nothing from ``aerflow``. Each 5-byte record is
``x | y | p t[22..16] | t[15..8] | t[7..0]`` (polarity in the top bit of the third byte). A
record with ``y == 240`` is not an event: it adds 2**13 µs to the time of every later record.
A trailing partial record is ignored (``torn`` tells whether there was one).
"""

from __future__ import annotations

import numpy as np

__all__ = ["EVENTS", "OVERFLOW_US", "OVERFLOW_Y", "decode", "encode"]

EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13


def decode(
    data: bytes, width: int | None = None, height: int | None = None
) -> tuple[np.ndarray, bool, int]:
    """(events in file order, True when a partial record ends the data, events dropped
    because they lie outside ``width`` x ``height``)."""
    rows = []
    offset = 0
    dropped = 0
    complete = len(data) - len(data) % 5
    for i in range(0, complete, 5):
        x = data[i]
        y = data[i + 1]
        on = data[i + 2] >> 7 == 1
        t = (data[i + 2] & 0x7F) << 16 | data[i + 3] << 8 | data[i + 4]
        if y == OVERFLOW_Y:
            offset += OVERFLOW_US
            continue
        if (width is not None and x >= width) or (height is not None and y >= height):
            dropped += 1
            continue
        rows.append((t + offset, x, y, on))
    events = np.empty(len(rows), EVENTS)
    for i, row in enumerate(rows):
        events[i] = row
    return events, complete != len(data), dropped


def encode(records: list[tuple[int, int, int, bool]]) -> bytes:
    """Records (t, x, y, on) with t < 2**23 (no overflow handling: the caller adds y == 240
    records to move time on)."""
    out = bytearray()
    for t, x, y, on in records:
        assert 0 <= t < 1 << 23
        out += bytes([x, y, int(on) << 7 | t >> 16, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)
