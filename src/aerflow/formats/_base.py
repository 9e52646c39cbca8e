"""The base of word-oriented readers: :class:`ChunkedReader` decodes a file window by window
with a format's stateful kernel (packets, one whole read on two threads, checkpoints).

The format modules import every reader and writer base from here: the other bases, defined
in ``_file_reader``, ``_file_writer`` and ``_mapped_memory``, are re-exported.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from .._room import OutputRoom
from ..errors import OutOfRangeWarning, TruncatedDataWarning
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet
from ..properties import Properties
from ._file_reader import FileReader
from ._file_reader import chunk_and_threads as chunk_and_threads
from ._file_writer import FileWriter, TimeOrigin
from ._mapped_memory import _allocate_events, _grow, _move_down, _Window

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkedReader",
    "FileReader",
    "FileWriter",
    "Properties",
    "ReaderCheckpoint",
    "TimeOrigin",
    "check_sensor_size",
]

DEFAULT_CHUNK_SIZE = 1 << 22
"""Bytes of file decoded per step; memory per packet is bounded by a small multiple of it."""

_MIN_CHUNK_SIZE = 1 << 12

_READ_STEP = 1 << 23
"""Bytes of file decoded per step by :meth:`ChunkedReader.read`; each step's pages are then
dropped from the map, so the input costs about this much resident memory per thread, not
the whole file."""


@dataclass(frozen=True)
class SecondShare:
    """Where a second decoding thread starts and with what.

    ``start`` is a word index, ``state`` the decoder state to start from (times relative to
    what only the first share knows, fixed by ``_join_shares``), ``first_events`` where the
    second share's events go: at least as many as the first share yields (the gap between
    is closed after both finish).
    """

    start: int
    state: npt.NDArray[np.int64]
    first_events: int


@dataclass(frozen=True)
class ReaderCheckpoint:
    """Where a :class:`ChunkedReader` can start again: the byte ``position`` in the file of
    the first word not yet decoded and the decoder ``state`` there (a copy). Plain values,
    so it pickles and can travel to another process, whose reader of the same file then
    goes on from it (:meth:`ChunkedReader.resume`); ``format_name`` guards against handing
    it to a reader of another format. It holds nothing that names the file: keep it with
    the path it came from."""

    format_name: str
    position: int
    state: tuple[int, ...]


class ChunkedReader(FileReader):
    """A reader for word-oriented formats decoded by a stateful kernel, window by window.

    Subclasses parse their header in ``__init__`` (setting ``properties``, ``metadata``,
    ``_data_offset``, ``_origin``) and implement :meth:`_kernel`. Decoder state lives in
    ``_state`` between calls (its last slot counts events dropped outside the sensor), so a
    word or group that straddles a window edge is decoded whole from the next window, which
    starts at the first unconsumed byte.
    """

    word: ClassVar[np.dtype[Any]]
    """The unit the kernel reads; positions it returns count these."""

    events_per_byte: ClassVar[float]
    """A typical output density, used to size packets (decoding never overflows: it stops)."""

    max_group_events: ClassVar[int]
    """The most events one word or group yields; decoding stops when less room is left."""

    parallel_min_bytes: ClassVar[int] = 1 << 23
    """Smallest remainder that :meth:`read` splits between two threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int | None = None,
    ):
        super().__init__(path)
        if chunk_size < _MIN_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be at least {_MIN_CHUNK_SIZE} bytes")
        self.chunk_size, self.threads = chunk_and_threads(chunk_size, threads)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self._data_offset = 0
        self._position = 0
        self._origin = 0
        self._state = np.zeros(1, np.int64)

    # -- to provide ---------------------------------------------------------------------------
    decoder: ClassVar[Any]
    """The format's numba kernel, called as ``decoder(words, state, *options, events,
    n_events, triggers, n_triggers)`` with ``options`` from ``_decoder_options``. It decodes
    ``words`` into ``events[n_events:]`` and ``triggers[n_triggers:]`` and returns (words
    consumed, new n_events, new n_triggers), stopping early, at a group boundary, when an
    output has no room for the next group."""

    state_size: ClassVar[int]
    """Slots of the decoder state; all zero at the start of the data."""

    _decoder_options: tuple[int, ...] = ()

    def _second_share(self, words: npt.NDArray[Any]) -> SecondShare | None:
        """How a second thread can decode the later part of ``words`` while a first decodes
        the rest from the current state; None where the format has no cheap way in."""
        return None

    def _join_shares(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64], share: SecondShare
    ) -> tuple[npt.NDArray[np.int64], int] | None:
        """The state after both shares, and the µs to add to the second share's times, given
        the first share's end state and the second's (which started from ``share.state``);
        None when the first share did not end in the state the second started from."""
        return None  # formats without a second share never get here

    def _reset_state(self) -> None:
        self._state = np.zeros(self.state_size, np.int64)

    def _kernel(
        self,
        words: npt.NDArray[Any],
        state: npt.NDArray[np.int64],
        events: npt.NDArray[Any],
        n_events: int,
        triggers: npt.NDArray[Any],
        n_triggers: int,
    ) -> tuple[int, int, int]:
        result: tuple[int, int, int] = self.decoder(
            words, state, *self._decoder_options, events, n_events, triggers, n_triggers
        )
        return result

    # -- shared machinery ---------------------------------------------------------------------
    @property
    def dropped_out_of_range(self) -> int:
        """Events dropped so far because their coordinates lie outside the sensor."""
        return int(self._state[-1])

    def _close(self) -> None:
        self._file.close()

    def progress(self) -> tuple[int, int]:
        """Bytes of data decoded so far, and in all."""
        total = max(self._size - self._data_offset, 0)
        return min(max(self._position - self._data_offset, 0), total), total

    def _restart(self) -> None:
        self._position = self._data_offset
        self._reset_state()

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def resumable(self) -> bool:
        """Whether :meth:`checkpoint` and :meth:`resume` work: the reader's whole position is
        its byte position and decoder state, as in every format that keeps the shared
        decoding loop (formats with their own loop, such as AEDAT 3, are not)."""
        cls = type(self)
        return cls._iterate is ChunkedReader._iterate and cls._restart is ChunkedReader._restart

    def checkpoint(self) -> ReaderCheckpoint:
        """Where the reader stands now, to :meth:`resume` from later, in this reader or a
        fresh one of the same file. Taken between two packets of an iteration (in the body
        of a ``for packet in reader`` loop), it marks the first event of the next packet;
        taken before any reading, the first event of the file; after a whole read, the end.

        Raises ValueError when the reader is closed or not :attr:`resumable`.
        """
        self._check_open()
        if not self.resumable:
            raise ValueError(f"the {self.format_name} reader of {self.path} cannot checkpoint")
        position, state = self._position, self._state
        if position < self._data_offset:  # nothing read yet: where an iteration would start
            kept = self._state
            try:
                self._reset_state()
                position, state = self._data_offset, self._state
            finally:
                self._state = kept
        return ReaderCheckpoint(self.format_name, position, tuple(state.tolist()))

    def resume(self, checkpoint: ReaderCheckpoint) -> None:
        """Place the reader at ``checkpoint`` (from :meth:`checkpoint` on a reader of the same
        file): the next iteration or :meth:`read` starts there, with the decoder state and
        the count of events dropped outside the sensor it had then. The file itself is not
        checked; a checkpoint from another file decodes garbage or fails.

        Raises ValueError when the reader is closed or not :attr:`resumable`, or when the
        checkpoint is of another format or lies outside the file's data; RuntimeError
        while an iteration is under way.
        """
        with self._using(restart=False):
            if not self.resumable:
                raise ValueError(f"the {self.format_name} reader of {self.path} cannot resume")
            if checkpoint.format_name != self.format_name:
                raise ValueError(
                    f"a checkpoint of a {checkpoint.format_name} reader cannot resume the "
                    f"{self.format_name} reader of {self.path}"
                )
            if not self._data_offset <= checkpoint.position <= self._size:
                raise ValueError(
                    f"{self.path}: checkpoint at byte {checkpoint.position} lies outside the "
                    f"data (bytes {self._data_offset} to {self._size})"
                )
            if len(checkpoint.state) != self.state_size:
                raise ValueError(
                    f"{self.path}: checkpoint has {len(checkpoint.state)} state slots, the "
                    f"{self.format_name} decoder {self.state_size}"
                )
            self._position = checkpoint.position
            self._state = np.array(checkpoint.state, np.int64)
            self._at_start = True  # the next iteration starts here, not at the first event

    def _packet_capacity(self, n_bytes: int) -> int:
        return int(n_bytes * self.events_per_byte) + self.max_group_events + 64

    def _shift_time(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if self._origin:
            events["t"] += np.uint64(self._origin)
            triggers["t"] += np.uint64(self._origin)

    def _iterate(self) -> Iterator[Packet]:
        if self._position < self._data_offset:
            self._restart()
        typical = self._packet_capacity
        density = typical(self.chunk_size) / self.chunk_size
        room = OutputRoom(density, density / 4)
        while self._position < self._size:
            length = min(self.chunk_size, self._size - self._position)
            # The kernel stops where an output is full: the next packet goes on from there.
            capacity = min(room.events(length) + self.max_group_events + 64, typical(length))
            events = np.empty(capacity, EVENTS_DTYPE)
            triggers = np.empty(256, TRIGGERS_DTYPE)
            start = self._position
            n_events, n_triggers, stalled = self._fill(events, 0, triggers, 0, length)
            room.observe(self._position - start, n_events)
            if n_events or n_triggers:
                events, triggers = events[:n_events], triggers[:n_triggers]
                self._shift_time(events, triggers)
                yield Packet(events, triggers)
            if stalled:
                break
        self._finish()

    def _read(self) -> Packet:
        """Decode everything left straight into one pair of arrays: on two threads for large
        files unless ``threads`` is 1. The input is mapped once and decoded
        :data:`_READ_STEP` bytes at a time, each step's pages dropped from the map behind."""
        if self._position < self._data_offset:
            self._restart()
        remaining = max(self._size - self._position, 0)
        events = _allocate_events(self._packet_capacity(remaining))
        triggers = np.empty(1024, TRIGGERS_DTYPE)
        n_events = n_triggers = 0
        if remaining >= self.parallel_min_bytes and self.threads > 1:
            n_events, triggers, n_triggers = self._read_two_threads(events, remaining)
        mapped = None
        if self._size - self._position >= 2 * _READ_STEP:
            # One mapping for all the steps rather than one per step (fewer system calls);
            # its pages still leave the process a step at a time.
            mapped = _Window(
                self._file.fileno(), self._position, self._size - self._position, self.word
            )
        try:
            start = self._position
            while self._position < self._size:
                if len(events) - n_events < self.max_group_events:
                    events = _grow(events, n_events)
                if n_triggers == len(triggers):
                    triggers.resize(max(2 * len(triggers), 1024), refcheck=False)
                n_events, n_triggers, stalled = self._fill(
                    events,
                    n_events,
                    triggers,
                    n_triggers,
                    min(self._size - self._position, _READ_STEP),
                    None if mapped is None else (mapped, start),
                )
                if stalled:
                    break
        finally:
            if mapped is not None:
                mapped.close()
        self._finish()
        events = events[:n_events]
        triggers.resize(n_triggers, refcheck=False)
        self._shift_time(events, triggers)
        return Packet(events, triggers)

    def _read_two_threads(
        self, events: npt.NDArray[Any], remaining: int
    ) -> tuple[int, npt.NDArray[Any], int]:
        """Decode the first share of the data on a helper thread and the second share here,
        at the same time (the kernels release the GIL), each into its own part of ``events``.

        Returns (events decoded, triggers array, triggers decoded); the position and state
        advance past what was decoded. Formats without a way into the middle of their data
        decode nothing here.
        """
        window = _Window(self._file.fileno(), self._position, remaining, self.word)
        try:
            share = self._second_share(window.view)
            window.release(0, share.start if share is not None else len(window.view))
            if share is None or share.first_events + self.max_group_events > len(events):
                return 0, np.empty(1024, TRIGGERS_DTYPE), 0
            first_state = self._state.copy()
            second_state = share.state.copy()
            first_triggers = np.empty(1 << 16, TRIGGERS_DTYPE)
            second_triggers = np.empty(1 << 16, TRIGGERS_DTYPE)
            first: list[tuple[int, int, int]] = []

            def decode_first_share(words: npt.NDArray[Any]) -> None:
                # The first share may fill no more than the room left below the second.
                room = events[: share.first_events]
                first.append(
                    self._kernel_steps(window, 0, words, first_state, room, 0, first_triggers, 0)
                )

            helper = threading.Thread(
                target=decode_first_share, args=(window.view[: share.start],), name="aerflow"
            )
            helper.start()
            try:
                second = self._kernel_steps(
                    window,
                    share.start,
                    window.view[share.start :],
                    second_state,
                    events,
                    share.first_events,
                    second_triggers,
                    0,
                )
            finally:
                helper.join()
                del helper  # it refers to the view; the mapping closes only without views
        finally:
            window.close()
        first_consumed, n_first, m_first = first[0]
        joined = self._join_shares(first_state, second_state, share)
        if first_consumed != share.start or joined is None:
            # The first share ran out of room, or the second did not start where the first
            # ended: keep the first share's work and decode the rest on one thread.
            self._state = first_state
            self._position += first_consumed * self.word.itemsize
            return n_first, first_triggers[: max(m_first, 1024)].copy(), m_first
        second_consumed, second_end, m_second = second
        n_second = second_end - share.first_events
        if n_first != share.first_events:  # close the gap below the second share
            size = EVENTS_DTYPE.itemsize
            _move_down(
                events.view(np.uint8), n_first * size, share.first_events * size, n_second * size
            )
        self._state, shift = joined
        if shift:
            events["t"][n_first : n_first + n_second] += np.uint64(shift)
            second_triggers["t"][:m_second] += np.uint64(shift)
        self._position += (share.start + second_consumed) * self.word.itemsize
        triggers = np.concatenate((first_triggers[:m_first], second_triggers[:m_second]))
        return n_first + n_second, triggers, m_first + m_second

    def _kernel_steps(
        self,
        window: _Window,
        first_word: int,
        words: npt.NDArray[Any],
        state: npt.NDArray[np.int64],
        events: npt.NDArray[Any],
        n_events: int,
        triggers: npt.NDArray[Any],
        n_triggers: int,
    ) -> tuple[int, int, int]:
        """:meth:`_kernel` over ``words`` (which start at word ``first_word`` of ``window``)
        :data:`_READ_STEP` bytes at a time, dropping each step's pages from the map once
        decoded; the same result as one call."""
        step = max(_READ_STEP // self.word.itemsize, 1)
        done = 0
        while done < len(words):
            end = min(done + step, len(words))
            consumed, n_events, n_triggers = self._kernel(
                words[done:end], state, events, n_events, triggers, n_triggers
            )
            window.release(first_word + done, first_word + done + consumed)
            done += consumed
            # Nothing decoded: an output is full (or a group is torn at the very end).
            if consumed == 0 or (end == len(words) and done < end):
                break
        return done, n_events, n_triggers

    def _fill(
        self,
        events: npt.NDArray[Any],
        n_events: int,
        triggers: npt.NDArray[Any],
        n_triggers: int,
        length: int,
        mapped: tuple[_Window, int] | None = None,
    ) -> tuple[int, int, bool]:
        """Decode one window of up to ``length`` bytes; True in the last slot at a torn tail.

        ``mapped``: a window already mapped (and the file position it starts at) that holds
        these bytes; its pages are dropped from the map once decoded."""
        if length < self.word.itemsize:
            consumed = 0
        elif mapped is not None:
            window, start = mapped
            first = (self._position - start) // self.word.itemsize
            consumed, n_events, n_triggers = self._kernel(
                window.view[first : first + length // self.word.itemsize],
                self._state,
                events,
                n_events,
                triggers,
                n_triggers,
            )
            window.release(first, first + consumed)
        else:
            window = _Window(self._file.fileno(), self._position, length, self.word)
            try:
                consumed, n_events, n_triggers = self._kernel(
                    window.view, self._state, events, n_events, triggers, n_triggers
                )
            finally:
                window.close()
        self._position += consumed * self.word.itemsize
        outputs_full = len(events) - n_events < self.max_group_events or n_triggers == len(triggers)
        if consumed == 0 and not outputs_full:
            self._warn_torn_tail()
            return n_events, n_triggers, True
        return n_events, n_triggers, False

    def _warn_torn_tail(self) -> None:
        warnings.warn(
            TruncatedDataWarning(
                f"{self.path}: the file ends inside a record at byte {self._position} "
                f"({self._size - self._position} trailing bytes ignored)"
            ),
            stacklevel=5,  # past _fill, _iterate or _read, and FileReader's guard
        )
        self._position = self._size

    def _finish(self) -> None:
        if self.dropped_out_of_range:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.path}: dropped {self.dropped_out_of_range} events outside the "
                    f"{self.properties.width}x{self.properties.height} sensor"
                ),
                stacklevel=4,  # past _iterate or _read, and FileReader's guard
            )
