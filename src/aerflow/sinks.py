"""Sinks: where packets go. A file writer is a sink as it is; this module adds the others."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

from .events import Packet

__all__ = ["ClosedOnExit", "NullSink", "Sink"]


@runtime_checkable
class Sink(Protocol):
    """Anything with ``write(packet)`` and ``close()``; ``abort()``, when present, is called
    instead of ``close()`` after an error (a file writer then leaves its destination as it
    was)."""

    def write(self, packet: Packet) -> None: ...

    def close(self) -> None: ...


_Self = TypeVar("_Self", bound="ClosedOnExit")


class ClosedOnExit:
    """A sink as a context manager: :meth:`close` when the ``with`` block ends normally,
    :meth:`abort` (by default the same) when it ends with an error."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        self.close()

    def __enter__(self: _Self) -> _Self:
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


class NullSink(ClosedOnExit):
    """Counts what it is given and keeps nothing (for benchmarks and dry runs)."""

    def __init__(self) -> None:
        self.packets = self.events = self.triggers = 0

    def write(self, packet: Packet) -> None:
        self.packets += 1
        self.events += len(packet.events)
        self.triggers += len(packet.triggers)

    def close(self) -> None:
        pass
