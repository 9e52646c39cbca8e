"""Prophesee EVT 3.0 streams cut anywhere: :class:`Evt3StreamDecoder` (a camera's data
endpoint, stdin, message payloads) and :class:`Evt3StreamEncoder`, each carrying its state
from one call to the next."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._room import OutputRoom
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet
from ._evt3_decode import (
    _DROPPED,
    _HIGH,
    _LOOP,
    _LOW,
    _MOST_VECTOR_EVENTS,
    _STARTED,
    _STATE_SIZE,
    _decode,
)
from ._evt3_encode import SINGLE_LOOP_US, encode, new_encoder_state
from ._file_writer import whole_second_origin
from .raw import order_error

__all__ = ["Evt3StreamDecoder", "Evt3StreamEncoder"]


_FIRST_TRIGGERS = 64


def _grown(array: npt.NDArray[Any], filled: int) -> npt.NDArray[Any]:
    larger = np.empty(2 * array.size, array.dtype)
    larger[:filled] = array[:filled]
    return larger


def _as_bytes(data: npt.NDArray[Any] | bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    """``data`` as a one-dimensional uint8 array, without a copy where its memory allows."""
    if isinstance(data, np.ndarray):
        array = data if data.dtype == np.uint8 else np.ascontiguousarray(data).view(np.uint8)
        return np.ascontiguousarray(array.reshape(-1))
    return np.frombuffer(data, np.uint8)


class Evt3StreamDecoder:
    """Decodes an EVT 3.0 byte stream (a camera's data endpoint, stdin, message payloads)
    chunk by chunk, cut anywhere.

    It runs the file decoder's kernel with its state kept between chunks. A word cut by a
    chunk's end is decoded when the next chunk brings its second byte: that one word on its
    own, then the rest of the chunk in place (no EVT 3.0 word depends on the words after it,
    so nothing else waits and nothing is copied). Events before the first TIME_HIGH word are
    dropped, as OpenEB does. Output arrays are sized by the previous chunk's events per word
    (one at first) and grow when a chunk yields more. Events outside ``width`` × ``height``
    are dropped and counted.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._state = np.zeros(_STATE_SIZE, np.int64)
        self._pending: int | None = None  # the first byte of a word cut by a chunk's end
        self._room = OutputRoom(density=1.0, floor=0.25)  # events per word

    @property
    def current_t(self) -> int:
        """The decoder's time in µs after the last chunk (0 before the first TIME_HIGH)."""
        state = self._state
        if state[_STARTED] == 0:
            return 0
        return int((state[_LOOP] << 24) | (state[_HIGH] << 12) | state[_LOW])

    @property
    def dropped_out_of_range(self) -> int:
        """Events dropped so far because they lie outside the sensor."""
        return int(self._state[_DROPPED])

    @property
    def pending_bytes(self) -> int:
        """Bytes kept from the last chunk, waiting for the rest of their word (0 or 1)."""
        return 0 if self._pending is None else 1

    def decode(self, data: npt.NDArray[Any] | bytes | bytearray | memoryview) -> Packet:
        """The events and triggers of ``data`` following the bytes decoded before."""
        chunk = _as_bytes(data)
        pieces = []
        if self._pending is not None and chunk.size:
            pieces.append(np.array([self._pending, chunk[0]], np.uint8).view("<u2"))
            self._pending = None
            chunk = chunk[1:]
        if chunk.size % 2:
            self._pending = int(chunk[-1])
            chunk = chunk[:-1]
        # A chunk that starts on an odd address gives an unaligned view: the kernel reads it
        # as it is (numba compiles a version for unaligned arrays).
        pieces.append(chunk.view("<u2"))
        words = sum(piece.size for piece in pieces)
        events = np.empty(self._room.events(words) + _MOST_VECTOR_EVENTS, EVENTS_DTYPE)
        triggers = np.empty(_FIRST_TRIGGERS, TRIGGERS_DTYPE)
        n = m = 0
        for piece in pieces:
            events, n, triggers, m = self._decode_words(piece, events, n, triggers, m)
        self._room.observe(words, n)
        return Packet(events[:n], triggers[:m])

    def _decode_words(
        self,
        words: npt.NDArray[Any],
        events: npt.NDArray[Any],
        n: int,
        triggers: npt.NDArray[Any],
        m: int,
    ) -> tuple[npt.NDArray[Any], int, npt.NDArray[Any], int]:
        """Decode all of ``words`` after the n events and m triggers already out; the kernel
        stops where an output is full, and decoding then goes on into a larger one."""
        start = 0
        while True:
            consumed, n, m = _decode(
                words[start:], self._state, self.width, self.height, events, n, triggers, m
            )
            start += consumed
            events_full = events.size - n < _MOST_VECTOR_EVENTS
            if start >= words.size or not (events_full or m == triggers.size):
                return events, n, triggers, m
            if events_full:
                events = _grown(events, n)
            if m == triggers.size:
                triggers = _grown(triggers, m)


class Evt3StreamEncoder:
    """Encodes events and triggers into an EVT 3.0 word stream, call after call, its clock
    carried over (the encoder of the EVT 3.0 writers and of the emulated cameras).

    Times are written relative to ``origin`` µs: None takes the origin a file would (0 while
    the first time fits one loop of the 24-bit counter's 2**34 µs span, else the whole second
    before it). Each call's events and triggers must each be in time order and not before
    the previous call's; :meth:`encode` raises ValueError naming the first item that is not.
    """

    def __init__(self, width: int, *, origin: int | None = 0) -> None:
        self.width = width
        self.origin = origin
        self._state = new_encoder_state()

    def encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[np.uint16]:
        """The words of ``events`` and ``triggers`` (both in time order) after those of the
        calls before."""
        if triggers is None:
            triggers = np.empty(0, TRIGGERS_DTYPE)
        times = [int(a["t"].max()) for a in (events, triggers) if len(a)]
        if not times:
            return np.empty(0, np.uint16)
        if self.origin is None:
            first = min(int(a["t"][0]) for a in (events, triggers) if len(a))
            self.origin = whole_second_origin(first, SINGLE_LOOP_US)
        last = max(max(times) - self.origin, 0)
        words, bad = encode(events, triggers, self.origin, last, self.width, self._state)
        if bad >= 0:
            raise ValueError(order_error(events, triggers, bad, "EVT 3.0"))
        return words
