"""What an emulated Prophesee camera plays on its data endpoint: EVT 3.0 bytes, from a RAW
EVT 3.0 recording as they are, from any other recording through the EVT 3.0 encoder, or from
the synthetic sensor; played in slices, once or looped (each pass shifted in time by
rewriting only its TIME_HIGH words, so that the clock keeps running forward).
"""

from __future__ import annotations

import bisect
import logging
import mmap
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, concatenate_packets
from ..formats.evt3 import Evt3StreamEncoder
from .base import StreamChunk, warn_outside
from .prophesee_registers import SENSOR_HEIGHT, SENSOR_WIDTH

__all__ = ["Playback", "recording_playback", "synthetic_playback"]

log = logging.getLogger(__name__)

SYNTHETIC_DURATION_US = 3_000_000
SYNTHETIC_RATE = 1_000_000.0
PLAYBACK_BLOCK = 1 << 25
"""Bytes copied (and their TIME_HIGH words shifted) at a time for a looped pass."""


@njit(nogil=True, cache=True)
def _time_high_index(data: Any) -> tuple[Any, Any]:
    """Byte offsets of the TIME_HIGH words in little-endian EVT 3.0 ``data`` (uint8) and the
    time each sets (µs, its low 12 bits 0), with the decoder's wrap rule (a drop of 2048 or
    more is a counter loop)."""
    n = data.size // 2
    count = 0
    for i in range(n):
        if (data[2 * i + 1] >> 4) == 0x8:
            count += 1
    positions = np.empty(count, np.int64)
    times = np.empty(count, np.int64)
    k = 0
    loop = 0
    high = -1
    for i in range(n):
        upper = np.int64(data[2 * i + 1])
        if (upper >> 4) == 0x8:
            value = ((upper & 0xF) << 8) | np.int64(data[2 * i])
            if high >= 0 and high >= value + 2048:
                loop += 1
            high = value
            positions[k] = 2 * i
            times[k] = (loop << 24) | (value << 12)
            k += 1
    return positions, times


class Playback:
    """EVT 3.0 bytes played in slices, once or looped; each slice's end time comes from an
    index of the TIME_HIGH words (so it is exact to a TIME_HIGH step, 4096 µs).

    A looped pass starts at the first TIME_HIGH and is shifted by a whole number of TIME_HIGH
    steps (4096 µs) past the end of the previous one, by rewriting its TIME_HIGH words in a
    copy; the other words are unchanged."""

    def __init__(self, data: npt.NDArray[np.uint8], *, loop: bool, keep: Any = None) -> None:
        self._data = data[: data.size & ~1]
        self._view = self._data.data
        self._keep = keep  # a mapping the data lives in
        self._positions, self._times = _time_high_index(self._data)
        self._position_list = self._positions.tolist()
        self._time_list = self._times.tolist()
        if self._positions.size:
            self._loop_start = int(self._positions[0])
            first = int(self._times[0]) >> 12
            last = int(self._times[-1]) >> 12
            self._period = (last - first + 2) << 12
        else:
            self._loop_start = 0
            self._period = 0
        self._loop = loop and self._loop_start < self._data.size
        self.rewind()

    @property
    def size(self) -> int:
        return int(self._data.size)

    def rewind(self) -> None:
        self._pass = 0
        self._offset = 0
        self._block: memoryview | None = None
        self._block_start = self._block_end = 0

    def _make_block(self, start: int) -> None:
        end = min(start + PLAYBACK_BLOCK, self._data.size)
        block = self._data[start:end].copy()
        first = int(np.searchsorted(self._positions, start))
        stop = int(np.searchsorted(self._positions, end))
        where = self._positions[first:stop] - start
        shift = ((self._pass * self._period) >> 12) & 0xFFF
        value = ((block[where + 1].astype(np.int64) & 0xF) << 8) | block[where]
        value = (value + shift) & 0xFFF
        block[where] = value & 0xFF
        block[where + 1] = 0x80 | (value >> 8)
        self._block = block.data
        self._block_start, self._block_end = start, end

    def next(self, length: int) -> StreamChunk | None:
        size = self._data.size
        if self._offset >= size:
            if not self._loop:
                return None
            self._pass += 1
            self._offset = self._loop_start
            self._block = None
        start = self._offset
        if self._pass == 0:
            end = min(start + length, size)
            data = self._view[start:end]
        else:
            if self._block is None or start >= self._block_end:
                self._make_block(start)
            assert self._block is not None
            end = min(start + length, self._block_end)
            data = self._block[start - self._block_start : end - self._block_start]
        self._offset = end
        # bisect on lists: a NumPy call per 128 KiB transfer costs the player more.
        index = bisect.bisect_right(self._position_list, end - 2) - 1
        t_end = None if index < 0 else self._time_list[index] + self._pass * self._period
        return StreamChunk(data, t_end)


def _encode(events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """EVT 3.0 bytes of ``events`` and ``triggers`` (in time order), times kept as they are
    (less a whole number of seconds when they are too large for the counters, as the EVT 3.0
    writer does)."""
    encoder = Evt3StreamEncoder(SENSOR_WIDTH, origin=None)
    try:
        words = encoder.encode(events, triggers)
    except ValueError as error:
        raise ValueError(f"cannot encode the recording in EVT 3.0: {error}") from None
    return words.view(np.uint8)


def _in_order(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if len(array) > 1 and np.any(np.diff(array["t"].astype(np.int64)) < 0):
        return array[np.argsort(array["t"], kind="stable")]
    return array


def recording_playback(path: str, loop: bool) -> Playback:
    """A recording's EVT 3.0 bytes: a RAW EVT 3.0 file's own data, or any other file
    decoded and encoded."""
    from .. import api
    from ..formats.raw import read_prophesee_header
    from ..registry import detect

    if detect(path).name == "evt3":
        with open(path, "rb") as file:
            offset = read_prophesee_header(file, path).data_offset
            size = os.fstat(file.fileno()).st_size
            if size <= offset:
                return Playback(np.empty(0, np.uint8), loop=loop)
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        data = np.frombuffer(mapping, np.uint8, offset=offset)
        return Playback(data, loop=loop, keep=mapping)
    with api.open(path) as reader:
        packet = concatenate_packets(list(reader))
    events = packet.events.astype(EVENTS_DTYPE, copy=False)
    triggers = packet.triggers.astype(TRIGGERS_DTYPE, copy=False)
    inside = (events["x"] < SENSOR_WIDTH) & (events["y"] < SENSOR_HEIGHT)
    if not inside.all():
        warn_outside(path, int((~inside).sum()), len(events), SENSOR_WIDTH, SENSOR_HEIGHT)
        events = events[inside]
    valid = triggers["id"] <= 0xF
    if not valid.all():
        log.warning("%s: triggers with ids above 15 are not played (EVT 3.0 ids are 4-bit)", path)
        triggers = triggers[valid]
    return Playback(_encode(_in_order(events), _in_order(triggers)), loop=loop)


def synthetic_playback(loop: bool) -> Playback:
    """Three seconds of the synthetic sensor at 1280 × 720."""
    from ..synthetic import SyntheticSensor

    sensor = SyntheticSensor(
        SENSOR_WIDTH,
        SENSOR_HEIGHT,
        rate=SYNTHETIC_RATE,
        duration=SYNTHETIC_DURATION_US,
        packet_duration=SYNTHETIC_DURATION_US,
    )
    events = concatenate_packets(list(sensor)).events
    return Playback(_encode(events, np.empty(0, TRIGGERS_DTYPE)), loop=loop)
