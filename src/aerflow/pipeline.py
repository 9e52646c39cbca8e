"""Running a stream into sinks: ``run(stream, sink, ...)`` moves every packet to every sink.

With ``ahead`` (the default), the stream is read on a background thread while this thread
hands packets to the sinks: decoding (numba, no GIL) overlaps encoding and sending. Errors
and Ctrl-C abort every sink (a file being written is discarded, never half-replaced) and
close the stream before the exception continues.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .sinks import Sink
from .stream import Stream

log = logging.getLogger(__name__)

__all__ = ["Progress", "run"]


@dataclass(frozen=True)
class Progress:
    """Where a run stands: what has passed, for how long, and how much of the source is
    read when the source knows (``done``/``total`` in its own unit, bytes for files)."""

    packets: int
    events: int
    elapsed: float
    done: int | None
    total: int | None
    live: bool

    @property
    def rate(self) -> float:
        """Events per second so far."""
        return self.events / self.elapsed if self.elapsed > 0 else 0.0


def _quietly_close(sink: Sink) -> None:
    """Close a sink whose reader is gone (flushing it may fail the same way)."""
    abort = getattr(sink, "abort", None)
    with contextlib.suppress(OSError):
        (abort or sink.close)()


def run(
    stream: Stream,
    *sinks: Sink,
    ahead: int | None = 4,
    progress: Callable[[Progress], None] | None = None,
    interval: float = 0.2,
) -> Progress:
    """Move every packet of ``stream`` to every sink (a tee when there are several), then
    close them all. ``ahead`` packets are read in advance on a background thread (None
    reads on this thread). ``progress`` is called at most every ``interval`` seconds and
    once at the end. Returns the final :class:`Progress`."""
    source = stream
    started = time.perf_counter()
    packets = events = 0
    last_report = started

    def state() -> Progress:
        known = source.progress()
        return Progress(
            packets,
            events,
            time.perf_counter() - started,
            None if known is None else known[0],
            None if known is None else known[1],
            source.properties.live,
        )

    active = list(sinks)
    try:
        source = stream.ahead(ahead) if ahead else stream
        for packet in source:
            for sink in tuple(active):
                try:
                    sink.write(packet)
                except BrokenPipeError:
                    # A reader that went away (`| head`) ends that output only: the tee's
                    # other outputs still get every packet. With none left, stop.
                    active.remove(sink)
                    _quietly_close(sink)
                    if not active:
                        raise
                    log.info("%s: the reader went away; the other outputs go on", sink)
            packets += 1
            events += len(packet.events)
            if progress is not None and time.perf_counter() - last_report >= interval:
                last_report = time.perf_counter()
                progress(state())
    except BaseException:
        for sink in active:
            abort = getattr(sink, "abort", None)
            (abort or sink.close)()
        source.close()
        raise
    try:
        for sink in active:
            sink.close()
    finally:
        source.close()
    final = state()
    if progress is not None:
        progress(final)
    return final
