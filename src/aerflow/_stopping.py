"""Stop requests for the threads streams start.

A thread that runs a stream for someone else (the read-ahead thread of
:meth:`aerflow.stream.Stream.ahead`) declares the event that asks it to stop; whatever waits
on the clock inside that thread (pacing, playback) waits with :func:`pause`, which returns at
once when the stop is asked for. On a thread with no such event, :func:`pause` sleeps, which
Ctrl-C interrupts on the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["pause", "stop_requested", "stoppable"]

_local = threading.local()


@contextmanager
def stoppable(stop: threading.Event) -> Iterator[None]:
    """Within the block, :func:`pause` on this thread ends as soon as ``stop`` is set."""
    previous = getattr(_local, "stop", None)
    _local.stop = stop
    try:
        yield
    finally:
        _local.stop = previous


def stop_requested() -> bool:
    """Whether this thread was asked to stop."""
    stop: threading.Event | None = getattr(_local, "stop", None)
    return stop is not None and stop.is_set()


def pause(seconds: float) -> bool:
    """Wait ``seconds``; False, at once, when this thread is asked to stop meanwhile."""
    stop: threading.Event | None = getattr(_local, "stop", None)
    if stop is None:
        time.sleep(seconds)
        return True
    return not stop.wait(seconds)
