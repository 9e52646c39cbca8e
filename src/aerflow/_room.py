"""Output room for decoders that return one packet per chunk of input."""

from __future__ import annotations

MARGIN = 1.125
"""Room for this many times the events the last chunk's density predicts."""


class OutputRoom:
    """Sizes each chunk's output by the events per input unit of the chunk before, with a
    margin; decoders stop where an output is full and go on into another.

    Decoders hand out views of these outputs rather than shrinking them: shrunk arrays leave
    the allocator freed blocks smaller than its next request, so every chunk would be
    decoded into fresh memory and pay its page faults (a tenth of the decoding time or more).
    Sized by the density seen, the views waste at most the margin.
    """

    def __init__(self, density: float, floor: float) -> None:
        self._density = density
        self._floor = floor

    def events(self, units: int) -> int:
        """The events to make room for, for ``units`` of input."""
        return int(units * self._density * MARGIN)

    def observe(self, units: int, events: int) -> None:
        """Learn from a chunk: ``units`` of input gave ``events``. The floor keeps a quiet
        chunk from leaving the next, busy one to grow its room in many steps."""
        if units > 0:
            self._density = max(events / units, self._floor)
