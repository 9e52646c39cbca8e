"""The facts every stream states about itself: :class:`Properties`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Properties"]


@dataclass(frozen=True)
class Properties:
    """Standard facts about a stream, the same for every source.

    ``event_count`` and ``time_range`` are None unless the source gives them cheaply;
    ``live`` streams (cameras, network) have no end of their own.
    """

    format: str
    width: int | None
    height: int | None
    t0: int | None = None
    event_count: int | None = None
    time_range: tuple[int, int] | None = None
    live: bool = False
    size_inferred: bool = False
    """Whether ``width`` and ``height`` come from the events' extent, not from the source."""

    @property
    def sensor_size(self) -> tuple[int, int] | None:
        if self.width is None or self.height is None:
            return None
        return self.width, self.height

    def derived(self, **changes: Any) -> Properties:
        """These properties after a filter: counts and time ranges are no longer known."""
        return replace(self, **{"event_count": None, "time_range": None, **changes})
