"""The base of every file reader: the one rule of iterating, reading, rewinding and closing
(:class:`FileReader`), and the check of the ``chunk_size`` and ``threads`` options."""

from __future__ import annotations

import contextlib
import os
import threading
from abc import abstractmethod
from collections.abc import Iterator
from typing import ClassVar, final

from ..events import Packet, concatenate_packets
from ..stream import Stream

__all__ = ["FileReader", "chunk_and_threads"]


class FileReader(Stream):
    """A reader: a stream of a recording's packets in file order, with its raw header.

    The same rule holds for every format. Each iteration (a new ``for`` loop) and each
    :meth:`read` starts from the first event, or from where :meth:`rewind` (or a format's
    ``seek_time``) placed the reader; a source that cannot go back (a pipe, standard input)
    refuses a second one with ValueError. One iteration at a time: another one started
    while one is under way, on another thread or nested in it, raises RuntimeError. After
    :meth:`close`, which may be called any number of times, every use raises ValueError.

    Formats provide :meth:`_iterate` (packets from the current position), :meth:`_restart`
    (back to the first event) and :meth:`_close`, and may provide a faster :meth:`_read`.
    """

    format_name: ClassVar[str]
    metadata: dict[str, str]

    # Class defaults too, so that close() works on a reader whose __init__ failed early.
    _closed: bool = False
    _at_start: bool = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._closed = False
        self._at_start = True
        # Not an RLock: a nested iteration on the same thread must be refused as well, and
        # a generator left unfinished releases it from whichever thread collects it.
        self._in_use = threading.Lock()

    @property
    def dropped_out_of_range(self) -> int:
        """Events dropped so far because their coordinates lie outside the sensor."""
        return 0

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- to provide ---------------------------------------------------------------------------
    @abstractmethod
    def _iterate(self) -> Iterator[Packet]:
        """The packets from the current position to the end."""

    @abstractmethod
    def _restart(self) -> None:
        """Go back to the first event (ValueError where the source cannot)."""

    def _read(self) -> Packet:
        """Everything from the current position as one packet."""
        return concatenate_packets(list(self._iterate()))

    def _close(self) -> None:
        """Release the file (nothing by default)."""

    # -- the rule -----------------------------------------------------------------------------
    @final
    def __iter__(self) -> Iterator[Packet]:
        self._check_open()  # at iter() already, not only at the first packet
        return self._guarded()

    def _guarded(self) -> Iterator[Packet]:
        self._begin()
        try:
            for packet in self._iterate():
                yield packet
                if self._closed:  # closed by the loop's body or another thread
                    raise self._closed_error()
        finally:
            self._in_use.release()

    @final
    def read(self) -> Packet:
        """Every event (and trigger, IMU sample, frame) as one packet."""
        self._begin()
        try:
            return self._read()
        finally:
            self._in_use.release()

    def rewind(self) -> None:
        """Go back to the first event (where the next iteration starts anyway)."""
        with self._using(restart=False):
            self._restart()
            self._at_start = True

    @final
    def close(self) -> None:
        """Release the file; later uses raise ValueError, later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def __enter__(self) -> FileReader:
        self._check_open()
        return self

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> ValueError:
        return ValueError(f"I/O operation on a closed reader ({self.path})")

    def _begin(self, *, restart: bool = True) -> None:
        """Take the reader for one iteration or read, from the first event unless the
        position was just set (release ``_in_use`` when done)."""
        if not self._in_use.acquire(blocking=False):
            raise RuntimeError(
                f"the {self.format_name} reader of {self.path} is already being read, by "
                "another thread or by a loop not yet finished: open one reader per thread"
            )
        try:
            self._check_open()
            if restart:
                if not self._at_start:
                    self._restart()
                self._at_start = False
        except BaseException:
            self._in_use.release()
            raise

    @contextlib.contextmanager
    def _using(self, *, restart: bool = True) -> Iterator[None]:
        """:meth:`_begin` … release, for a format's other reading methods; with ``restart``
        they start from the first event like :meth:`read`, without it they leave the
        position alone."""
        self._begin(restart=restart)
        try:
            yield
        finally:
            self._in_use.release()


def chunk_and_threads(chunk_size: int, threads: int | None) -> tuple[int, int]:
    """``chunk_size`` (bytes per packet) and ``threads`` for :meth:`FileReader.read`,
    checked; threads default to 2, or 1 on a single core."""
    if int(chunk_size) < 1:
        raise ValueError("chunk_size must be at least 1 byte")
    if threads is not None and int(threads) < 1:
        raise ValueError("threads must be at least 1")
    return int(chunk_size), int(threads) if threads is not None else min(2, os.cpu_count() or 1)
