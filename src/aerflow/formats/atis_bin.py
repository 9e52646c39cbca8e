"""ATIS binary files (.bin) of the N-MNIST and N-Caltech101 data sets: 5-byte records.

Each record is ``x | y | p t[22..16] | t[15..8] | t[7..0]``: an 8-bit column, an 8-bit row,
the polarity in the top bit of the third byte (1 = ON) and a 23-bit time in µs. A record
whose row is 240 is not an event but a time overflow marker: every later record's time is
2**13 µs later (as in the data sets' own reader). There is no header, so nothing identifies
the format: it is chosen by the ``.bin`` extension when no other format claims the file, or
by name (``format="atis_bin"``).

N-MNIST recordings are 34x34; N-Caltech101 recordings differ in size from one to the next
(at most 256 columns, the 8-bit limit, and 240 rows, since row 240 marks overflows). Without
``width``/``height`` the sensor is taken to be just large enough for the file's events, and
at least N-MNIST's 34x34 (``metadata["sensor_size"]`` says so), so no event is dropped;
give the size you know to drop events outside it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._jit import njit
from ._base import DEFAULT_CHUNK_SIZE, ChunkedReader, Properties, check_sensor_size
from ._mapped_memory import _Window

__all__ = ["NMNIST_SIZE", "OVERFLOW_US", "OVERFLOW_Y", "AtisBinReader"]

NMNIST_SIZE = (34, 34)
"""The default sensor size (width, height): N-MNIST's."""
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
_RECORD = 5

_OFFSET, _DROPPED = range(2)
_U1, _U2, _U3, _U4, _U5 = (np.uint64(k) for k in range(1, 6))


@njit(nogil=True, cache=True)
def _decode(
    data: Any,
    state: Any,
    width: int,
    height: int,
    events: Any,
    n: int,
    triggers: Any,
    m: int,
) -> tuple[int, int, int]:
    # Unsigned positions and output indices spare every access a negative-index check.
    end = np.uint64(data.size - data.size % _RECORD)
    room = np.uint64(events.size)
    k = np.uint64(n)
    offset = state[_OFFSET]
    dropped = state[_DROPPED]
    i = np.uint64(0)
    while i < end:
        y = np.int64(data[i + _U1])
        if y == OVERFLOW_Y:
            offset += OVERFLOW_US
            i += _U5
            continue
        x = np.int64(data[i])
        if x < width and y < height:
            if k >= room:
                break
            high = np.int64(data[i + _U2])
            event = events[k]
            event.t = np.uint64(
                offset + (((high & 0x7F) << 16) | (np.int64(data[i + _U3]) << 8) | data[i + _U4])
            )
            event.x = np.uint16(x)
            event.y = np.uint16(y)
            event.on = high >> 7 == 1
            k += _U1
        else:
            dropped += 1
        i += _U5
    state[_OFFSET] = offset
    state[_DROPPED] = dropped
    return np.int64(i), np.int64(k), m


@njit(nogil=True, cache=True)
def _extent(data: Any) -> tuple[int, int]:
    """The largest column and row of the events among whole records (-1 when none)."""
    end = data.size - data.size % _RECORD
    x_max = y_max = -1
    for i in range(0, end, _RECORD):
        y = np.int64(data[i + 1])
        if y != OVERFLOW_Y:
            x_max = max(x_max, np.int64(data[i]))
            y_max = max(y_max, y)
    return x_max, y_max


class AtisBinReader(ChunkedReader):
    """Reads N-MNIST / N-Caltech101 ATIS .bin files. The sensor is ``width`` x ``height``
    (events outside it are dropped with an OutOfRangeWarning), or without them just large
    enough for the file's events and at least 34x34."""

    format_name = "atis_bin"
    word = np.dtype("u1")
    events_per_byte = 1 / _RECORD
    max_group_events = 1
    state_size = 2
    decoder = staticmethod(_decode)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        super().__init__(path, chunk_size=chunk_size)
        self.metadata = {}
        try:
            given = check_sensor_size(width, height)
            self._width, self._height = given or self._size_of_events()
        except BaseException:
            self.close()
            raise
        self._decoder_options = (self._width, self._height)
        self.properties = Properties(
            format=self.format_name, width=self._width, height=self._height, t0=0
        )
        self._reset_state()

    def _size_of_events(self) -> tuple[int, int]:
        if self._size < _RECORD:
            x_max = y_max = -1
        else:
            window = _Window(self._file.fileno(), 0, self._size, self.word)
            try:
                x_max, y_max = _extent(window.view)
            finally:
                window.close()
        self.metadata["sensor_size"] = "from the events (no width/height given), at least 34x34"
        return max(int(x_max) + 1, NMNIST_SIZE[0]), max(int(y_max) + 1, NMNIST_SIZE[1])
