"""Streams: iterables of packets with properties, chained through filters.

Every source (a file reader, the synthetic sensor, a UDP receiver, stdin) is a
:class:`Stream`; filters wrap a stream in another. Work is handed over per packet, never per
event, and :meth:`Stream.ahead` moves the upstream work onto a background thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from . import registry
from ._stopping import stoppable
from .events import Packet, concatenate_packets
from .properties import Properties

__all__ = ["Filter", "IterableStream", "Properties", "Stream"]

log = logging.getLogger(__name__)


class Filter(ABC):
    """One step of a pipeline (the steps themselves live in :mod:`aerflow.filters`)."""

    exhausted: bool = False
    """Set when no later packet can pass: the stream stops reading its source."""

    def properties(self, upstream: Properties) -> Properties:
        """The properties of the filtered stream."""
        return upstream.derived()

    @abstractmethod
    def apply(self, packet: Packet) -> Iterable[Packet]:
        """The packets that ``packet`` turns into (often one, possibly none)."""

    def finish(self) -> Iterable[Packet]:
        """Packets still held when the upstream ends."""
        return ()


class Stream(ABC):
    """Packets in time order, with :attr:`properties`; a context manager.

    A stream is iterated once. The filter methods return a new stream that reads this one.
    """

    properties: Properties

    @abstractmethod
    def __iter__(self) -> Iterator[Packet]: ...

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release what the stream holds (files, sockets, threads)."""

    def progress(self) -> tuple[int, int] | None:
        """(done, total) in the source's own unit (bytes for files), or None when unknown."""
        return None

    def read(self) -> Packet:
        """Every remaining packet as one."""
        return concatenate_packets(list(self))

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def wait_for_data(self) -> Properties:
        """The properties once the source knows them, before any data moves.

        Most sources know their properties when they open and return them at once. Sources
        that learn them from their first data (a UDP receiver from the first datagram, a DV
        client from the server's stream description) override this to wait for that data,
        bounded by their own timeout, and keep what they read for the iteration. Pipelines
        call it before they make their sinks; filtered and read-ahead streams pass it on."""
        return self.properties

    # -- chaining -----------------------------------------------------------------------------
    def filter(self, *filters: Filter) -> Stream:
        """This stream passed through ``filters`` in order."""
        stream: Stream = self
        for item in filters:
            stream = FilteredStream(stream, item)
        return stream

    def apply(self, name: str, *positional: Any, **options: Any) -> Stream:
        """This stream through the registered filter ``name`` (``aerflow filter --help``
        lists them), built from the options its declaration names: ``apply("denoise",
        window="5ms")`` is ``aerflow ... filter denoise --window 5ms``. Options it does not
        take raise :class:`~aerflow.errors.OptionError`."""
        return self.filter(registry.component("filter", name).make(*positional, **options))

    def ahead(self, packets: int = 4) -> Stream:
        """Read this stream on a background thread, up to ``packets`` ahead of the consumer."""
        return AheadStream(self, packets)

    # The shortcuts below are the registered filters under their Python names.
    def chunks(self, *, events: int | None = None, duration: int | str | None = None) -> Stream:
        """Regroup into packets of exactly ``events`` events, or of ``duration`` of event time."""
        if (events is None) == (duration is None):
            raise ValueError("give either events or duration")
        return self.apply("chunk", events=events, duration=duration)

    def time_slice(
        self,
        start: int | str | None = None,
        end: int | str | None = None,
        *,
        absolute: bool = False,
    ) -> Stream:
        """Events with ``start <= t < end``, times counted from the first event unless
        ``absolute``."""
        return self.apply("time-slice", start=start, end=end, absolute=absolute)

    def crop(self, left: int, top: int, width: int, height: int, *, shift: bool = True) -> Stream:
        """Events inside a rectangle; with ``shift`` its corner becomes (0, 0) and the sensor
        size becomes the rectangle's."""
        return self.apply("crop", left, top, width, height, keep_coordinates=not shift)

    def polarity(self, keep: str) -> Stream:
        """Only ``"on"`` or only ``"off"`` events."""
        return self.apply("polarity", keep)

    def flip(self, axis: str) -> Stream:
        """Mirror along ``"x"`` (left-right) or ``"y"`` (up-down)."""
        return self.apply("flip", axis)

    def transpose(self) -> Stream:
        """Swap x and y (and width and height)."""
        return self.apply("transpose")

    def shift_time(self, offset: int | str | None = None) -> Stream:
        """Add ``offset`` µs to every time (negative allowed, as long as no time goes
        below 0); by default, start the stream at t = 0."""
        return self.apply("shift-time", offset=offset)

    def refractory(self, period: int | str) -> Stream:
        """Drop events that follow the last kept event of the same pixel within ``period``."""
        return self.apply("refractory", period)

    def denoise(self, window: int | str = "10ms") -> Stream:
        """Drop events that no neighbouring pixel saw coming within ``window`` (background
        activity filter)."""
        return self.apply("denoise", window=window)

    def decimate(self, factor: int) -> Stream:
        """Keep every ``factor``-th event of each pixel."""
        return self.apply("decimate", factor)

    def pace(self, speed: float = 1.0) -> Stream:
        """Release packets in step with event time (``speed`` times real time), as if live."""
        return self.apply("pace", speed=speed)


class IterableStream(Stream):
    """A stream over any iterable of packets."""

    def __init__(
        self,
        packets: Iterable[Packet],
        properties: Properties,
        *,
        close: Callable[[], None] | None = None,
    ) -> None:
        self._packets = packets
        self.properties = properties
        self._close = close

    def __iter__(self) -> Iterator[Packet]:
        return iter(self._packets)

    def close(self) -> None:
        if self._close is not None:
            self._close()


class FilteredStream(Stream):
    """``upstream`` passed through one filter."""

    def __init__(self, upstream: Stream, filter: Filter) -> None:
        self.upstream = upstream
        self._filter = filter
        self.properties = filter.properties(upstream.properties)

    def __iter__(self) -> Iterator[Packet]:
        step = self._filter
        for packet in self.upstream:
            yield from step.apply(packet)
            if step.exhausted:
                break
        yield from step.finish()

    def close(self) -> None:
        self.upstream.close()

    def progress(self) -> tuple[int, int] | None:
        return self.upstream.progress()

    def wait_for_data(self) -> Properties:
        before = self.upstream.properties
        if self.upstream.wait_for_data() != before:
            self.properties = self._filter.properties(self.upstream.properties)
        return self.properties


_END = object()
_STOP_WAIT_S = 0.5  # how long closing waits for the read-ahead thread


class AheadStream(Stream):
    """``upstream`` iterated on a background thread through a bounded queue of packets."""

    def __init__(self, upstream: Stream, packets: int) -> None:
        if packets < 1:
            raise ValueError("packets must be at least 1")
        self.upstream = upstream
        self.properties = upstream.properties
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=packets)
        self._stop = threading.Event()
        self._stop_requested_at: float | None = None
        self._thread: threading.Thread | None = None

    def _produce(self) -> None:
        try:
            with stoppable(self._stop):
                for packet in self.upstream:
                    if not self._put(packet):
                        return
        except BaseException as error:  # re-raised on the consumer's thread
            self._put(error)
            return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Packet]:
        if self._thread is not None:
            raise RuntimeError("a stream is iterated only once")
        self._thread = threading.Thread(target=self._produce, name="aerflow-ahead", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # A producer busy decoding stops at its next hand-off, one pacing at once; one
            # blocked in a live source is released by close().
            self._request_stop()
            if self._thread.ident is not None:  # Ctrl-C may come before it started
                self._thread.join(timeout=self._stop_wait_left())

    def _request_stop(self) -> None:
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._stop.set()

    def _stop_wait_left(self) -> float:
        """What is left of the one wait for the producer after the stop was asked for."""
        assert self._stop_requested_at is not None
        return max(0.0, self._stop_requested_at + _STOP_WAIT_S - time.monotonic())

    def close(self) -> None:
        self._request_stop()
        self.upstream.close()
        thread = self._thread
        if (
            thread is not None
            and thread.ident is not None
            and thread is not threading.current_thread()
        ):
            # Bounded, over the iteration's end and close() together: a producer stuck in a
            # call that cannot be interrupted (one large decode, a blocking read) is a daemon
            # thread and ends with the process; closing does not wait for it.
            thread.join(timeout=self._stop_wait_left())
            if thread.is_alive():
                log.debug("the read-ahead thread is still busy after %.1f s", _STOP_WAIT_S)
            # A consumer still waiting on another thread gets the end instead of waiting for
            # ever (the producer gave up its own hand-off once stopped).
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_END)

    def progress(self) -> tuple[int, int] | None:
        return self.upstream.progress()

    def wait_for_data(self) -> Properties:
        self.properties = self.upstream.wait_for_data()
        return self.properties
