"""Prophesee EVT 3.0 (16-bit stateful words with vectorised x addresses): RAW files through
:class:`Evt3Reader` and :class:`Evt3Writer`, and the public names of the EVT 3.0 codec.

The word types, decoding rules and decoding kernels are in ``_evt3_decode``, the encoding
kernels in ``_evt3_encode``, and the decoder and encoder of streams cut anywhere in
``_evt3_stream``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE
from ._base import SecondShare
from ._evt3_decode import (
    _DROPPED,
    _LOOP,
    _MOST_VECTOR_EVENTS,
    _RESUMABLE,
    _STARTED,
    _STATE_SIZE,
    _decode,
)
from ._evt3_encode import SINGLE_LOOP_US, encode, new_encoder_state
from ._evt3_stream import Evt3StreamDecoder, Evt3StreamEncoder
from .raw import RawReader, RawWriter, order_error

__all__ = [
    "SINGLE_LOOP_US",
    "Evt3Reader",
    "Evt3StreamDecoder",
    "Evt3StreamEncoder",
    "Evt3Writer",
    "encode",
    "new_encoder_state",
]


class Evt3Reader(RawReader):
    """Reads Prophesee RAW files in EVT 3.0."""

    format_name = "evt3"
    encoding = "evt3"
    word = np.dtype("<u2")
    events_per_byte = 0.5
    decoder = staticmethod(_decode)
    state_size = _STATE_SIZE
    max_group_events = _MOST_VECTOR_EVENTS
    warm_up_words = 1 << 16
    """Words decoded just before the middle of a large file to guess the state there."""

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare | None:
        """Guess the decoder state in the middle by decoding a stretch just before it from
        scratch: every field is overwritten by the words of a few milliseconds of real data
        (except the time loop count, which the join adds). The join checks the guess."""
        middle = len(words) // 2
        if middle < 2 * self.warm_up_words:
            return None
        guess = np.zeros(_STATE_SIZE, np.int64)
        # Decoding stops early when the scratch fills up: the guess then holds for that point.
        scratch = np.empty(self.warm_up_words, EVENTS_DTYPE)
        scratch_triggers = np.empty(self.warm_up_words, TRIGGERS_DTYPE)
        stretch = words[middle - self.warm_up_words : middle]
        consumed, n, _ = _decode(
            stretch, guess, self._width, self._height, scratch, 0, scratch_triggers, 0
        )
        if guess[_STARTED] == 0:
            return None
        guess[_DROPPED] = 0
        start = middle - self.warm_up_words + consumed
        # Room for the first share's events: its density guessed from the stretch, with margin.
        first_events = int(start * n / max(consumed, 1) * 1.25) + 1024
        return SecondShare(start=start, state=guess, first_events=first_events)

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int] | None:
        guess = share.state
        if any(first[slot] != guess[slot] for slot in _RESUMABLE):
            return None
        loops = int(first[_LOOP] - guess[_LOOP])
        joined = second.copy()
        joined[_LOOP] += loops
        joined[_DROPPED] += first[_DROPPED]
        return joined, loops << 24


class Evt3Writer(RawWriter):
    """Writes Prophesee RAW files in EVT 3.0 (vector groups where events allow)."""

    format_name = "evt3"
    most_trigger_id = 0xF  # 4 bits
    encoding = "evt3"
    format_field = "EVT3"
    legacy_evt = "3.0"
    single_loop_us = SINGLE_LOOP_US

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(path, **options)
        self._state = new_encoder_state()

    def _encode(
        self, events: npt.NDArray[Any], triggers: npt.NDArray[Any], last: int
    ) -> npt.NDArray[Any]:
        words, bad = encode(events, triggers, self._origin, last, self.width, self._state)
        if bad >= 0:
            raise ValueError(order_error(events, triggers, bad, "EVT 3.0"))
        return words
