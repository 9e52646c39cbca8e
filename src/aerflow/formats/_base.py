"""What every file reader and writer shares: properties, chunked mapping, packet assembly."""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import tempfile
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import OutOfRangeWarning, TruncatedDataWarning
from ..events import EVENTS_DTYPE, TRIGGERS_DTYPE, Packet, as_events

__all__ = ["DEFAULT_CHUNK_SIZE", "ChunkedReader", "FileReader", "FileWriter", "Properties"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1 << 22
"""Bytes of file decoded per step; memory per packet is bounded by a small multiple of it."""

_MIN_CHUNK_SIZE = 1 << 12
_PARALLEL_MIN_BYTES = 1 << 23


@dataclass(frozen=True)
class Properties:
    """Standard facts about a recording, the same for every format.

    ``event_count`` and ``time_range`` are None unless the format gives them cheaply.
    """

    format: str
    width: int | None
    height: int | None
    t0: int | None = None
    event_count: int | None = None
    time_range: tuple[int, int] | None = None

    @property
    def sensor_size(self) -> tuple[int, int] | None:
        if self.width is None or self.height is None:
            return None
        return self.width, self.height


class FileReader(ABC):
    """A reader: a context manager that iterates packets in file order."""

    format_name: ClassVar[str]
    properties: Properties
    metadata: dict[str, str]

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    @abstractmethod
    def __iter__(self) -> Iterator[Packet]: ...

    @abstractmethod
    def close(self) -> None: ...

    def read(self) -> Packet:
        """Every remaining event and trigger as one packet."""
        packets = list(self)
        if not packets:
            return Packet(np.empty(0, EVENTS_DTYPE), np.empty(0, TRIGGERS_DTYPE))
        return Packet(
            np.concatenate([p.events for p in packets]),
            np.concatenate([p.triggers for p in packets]),
        )

    def __enter__(self) -> FileReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Window:
    """The whole words among ``length`` bytes at ``offset`` of a file, mapped read-only.

    Words need not be aligned in memory (headers have any length); the kernels only load
    them one at a time, which every supported CPU does at any address.
    """

    def __init__(self, fileno: int, offset: int, length: int, word: np.dtype[Any]) -> None:
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        self._map = mmap.mmap(
            fileno, offset - start + length, offset=start, access=mmap.ACCESS_READ
        )
        self.view: npt.NDArray[Any] = np.frombuffer(
            self._map, word, count=length // word.itemsize, offset=offset - start
        )

    def close(self) -> None:
        del self.view  # the mapping cannot close while an array still exports it
        self._map.close()


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

    parallel_split: ClassVar[float] = 0.6
    """Share of the data decoded by the helper thread in :meth:`read` (the main thread first
    counts that share, which is cheaper than decoding it, then decodes the rest)."""

    def __init__(self, path: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE):
        super().__init__(path)
        if chunk_size < _MIN_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be at least {_MIN_CHUNK_SIZE} bytes")
        self.chunk_size = int(chunk_size)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self._data_offset = 0
        self._position = 0
        self._origin = 0
        self._state = np.zeros(1, np.int64)

    # -- to implement -------------------------------------------------------------------------
    @abstractmethod
    def _kernel(
        self,
        data: npt.NDArray[np.uint8],
        state: npt.NDArray[np.int64],
        events: npt.NDArray[Any],
        n_events: int,
        triggers: npt.NDArray[Any],
        n_triggers: int,
        count_only: bool,
    ) -> tuple[int, int, int]:
        """Decode ``data`` into ``events[n_events:]`` and ``triggers[n_triggers:]``.

        Returns (bytes consumed, new n_events, new n_triggers); stops early, at a group
        boundary, when an output has no room for the next group. With ``count_only`` it
        writes nothing, never stops for room, and only advances ``state`` and the counts.
        """

    @abstractmethod
    def _reset_state(self) -> None:
        """Return the decoder to its state at the start of the data."""

    # -- shared machinery ---------------------------------------------------------------------
    @property
    def dropped_out_of_range(self) -> int:
        """Events dropped so far because their coordinates lie outside the sensor."""
        return int(self._state[-1])

    def close(self) -> None:
        self._file.close()

    def rewind(self) -> None:
        """Start again from the first event."""
        self._position = self._data_offset
        self._reset_state()

    def _packet_capacity(self, n_bytes: int) -> int:
        return int(n_bytes * self.events_per_byte) + self.max_group_events + 64

    def _shift_time(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if self._origin:
            events["t"] += np.uint64(self._origin)
            triggers["t"] += np.uint64(self._origin)

    def __iter__(self) -> Iterator[Packet]:
        if self._position < self._data_offset:
            self.rewind()
        while self._position < self._size:
            length = min(self.chunk_size, self._size - self._position)
            events = np.empty(self._packet_capacity(length), EVENTS_DTYPE)
            triggers = np.empty(256, TRIGGERS_DTYPE)
            n_events, n_triggers, stalled = self._fill(events, 0, triggers, 0, length)
            if n_events or n_triggers:
                events.resize(n_events, refcheck=False)
                triggers.resize(n_triggers, refcheck=False)
                self._shift_time(events, triggers)
                yield Packet(events, triggers)
            if stalled:
                break
        self._finish()

    def read(self) -> Packet:
        """Decode everything left into one pair of arrays, on two threads for large files."""
        if self._position < self._data_offset:
            self.rewind()
        remaining = max(self._size - self._position, 0)
        events = np.empty(self._packet_capacity(remaining), EVENTS_DTYPE)
        triggers = np.empty(1024, TRIGGERS_DTYPE)
        n_events = n_triggers = 0
        if remaining >= _PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1:
            n_events, triggers, n_triggers = self._read_two_threads(events, remaining)
        while self._position < self._size:
            if len(events) - n_events < self.max_group_events:
                events.resize(len(events) + len(events) // 2 + (1 << 16), refcheck=False)
            if n_triggers == len(triggers):
                triggers.resize(2 * len(triggers), refcheck=False)
            n_events, n_triggers, stalled = self._fill(
                events, n_events, triggers, n_triggers, self._size - self._position
            )
            if stalled:
                break
        self._finish()
        events.resize(n_events, refcheck=False)
        triggers.resize(n_triggers, refcheck=False)
        self._shift_time(events, triggers)
        return Packet(events, triggers)

    def _read_two_threads(
        self, events: npt.NDArray[Any], remaining: int
    ) -> tuple[int, npt.NDArray[Any], int]:
        """Decode the first share on a helper thread while this thread counts it (to learn the
        decoder state and output position at its end), then decodes the rest concurrently.

        Returns (events decoded, triggers array, triggers decoded); the position and state
        advance past what was decoded. Both kernels release the GIL.
        """
        window = _Window(self._file.fileno(), self._position, remaining, self.word)
        split = int(len(window.view) * self.parallel_split)
        initial_state = self._state.copy()
        first_state = self._state.copy()
        first_triggers = np.empty(1 << 16, TRIGGERS_DTYPE)
        first: list[tuple[int, int, int]] = []

        def decode_first_share(data: npt.NDArray[np.uint8]) -> None:
            first.append(self._kernel(data, first_state, events, 0, first_triggers, 0, False))

        helper = threading.Thread(
            target=decode_first_share, args=(window.view[:split],), name="aerflow-decode"
        )
        helper.start()
        try:
            counted = self._kernel(
                window.view[:split],
                self._state,
                np.empty(32, EVENTS_DTYPE),
                0,
                np.empty(32, TRIGGERS_DTYPE),
                0,
                True,
            )
            consumed, n_first, m_first = counted
            later_triggers = np.empty(max(1024, m_first), TRIGGERS_DTYPE)
            rest = self._kernel(
                window.view[consumed:], self._state, events, n_first, later_triggers, 0, False
            )
        finally:
            helper.join()
            del helper  # it holds the view until collected; the mapping closes only after
            window.close()
        if first[0] != counted:
            # The helper ran out of trigger room: decode everything again, on one thread.
            self._state = initial_state
            return 0, np.empty(1024, TRIGGERS_DTYPE), 0
        self._position += (consumed + rest[0]) * self.word.itemsize
        triggers = np.concatenate((first_triggers[:m_first], later_triggers))
        return rest[1], triggers, m_first + rest[2]

    def _fill(
        self,
        events: npt.NDArray[Any],
        n_events: int,
        triggers: npt.NDArray[Any],
        n_triggers: int,
        length: int,
    ) -> tuple[int, int, bool]:
        """Decode one window of up to ``length`` bytes; True in the last slot at a torn tail."""
        if length < self.word.itemsize:
            consumed = 0
        else:
            window = _Window(self._file.fileno(), self._position, length, self.word)
            try:
                consumed, n_events, n_triggers = self._kernel(
                    window.view, self._state, events, n_events, triggers, n_triggers, False
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
            stacklevel=4,
        )
        self._position = self._size

    def _finish(self) -> None:
        if self.dropped_out_of_range:
            warnings.warn(
                OutOfRangeWarning(
                    f"{self.path}: dropped {self.dropped_out_of_range} events outside the "
                    f"{self.properties.width}x{self.properties.height} sensor"
                ),
                stacklevel=3,
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class FileWriter(ABC):
    """A writer: a context manager taking packets or arrays, written to a temporary file
    renamed over the destination on success (nothing the user had is lost on failure)."""

    format_name: ClassVar[str]

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        handle, self._temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(self.path)}.", suffix=".part", dir=directory
        )
        self._file = os.fdopen(handle, "wb")
        self._closed = False

    def write(self, events: npt.ArrayLike | Packet, triggers: npt.ArrayLike | None = None) -> None:
        """Append events (any layout :func:`~aerflow.as_events` accepts) and triggers."""
        if isinstance(events, Packet):
            triggers = events.triggers
            events = events.events
        trigger_array = (
            np.empty(0, TRIGGERS_DTYPE)
            if triggers is None
            else np.asarray(triggers).astype(TRIGGERS_DTYPE, copy=False)
        )
        self._write(as_events(events), trigger_array)

    @abstractmethod
    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None: ...

    def _finalize(self) -> None:  # noqa: B027 - optional hook
        """Last bytes before closing (e.g. pending state); nothing by default."""

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._closed:
            return
        self._closed = True
        try:
            self._finalize()
            self._file.close()
            os.chmod(self._temporary, 0o666 & ~_umask())
            os.replace(self._temporary, self.path)
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        """Stop without touching the destination."""
        if not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temporary)

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
