"""Closing a network source from any thread while another waits on its socket."""

from __future__ import annotations

import contextlib
import os
import threading


class ClosedByWakeUp:
    """``close()`` from any thread ends a wait in progress at once.

    The waiting thread polls ``_wake_read`` beside its socket and marks itself ``_busy``;
    ``close()`` then writes to ``_wake_write`` and leaves the release to that thread, or
    releases at once when nothing waits. Subclasses set the attributes and define
    ``_release()`` (idempotent, guarded by ``_released``)."""

    _lock: threading.Lock
    _closing: bool
    _busy: bool
    _released: bool
    _wake_write: int

    def close(self) -> None:
        """Stop: an iteration in progress (in any thread) ends promptly, then the socket
        closes. Safe to call more than once."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._busy:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"x")
                return
            self._release()

    def __del__(self) -> None:
        # Dropped without close(): free the socket and the wake-up pipe.
        if getattr(self, "_released", True) is False and not getattr(self, "_busy", False):
            with contextlib.suppress(Exception):
                self._release()

    def _release(self) -> None:
        raise NotImplementedError
