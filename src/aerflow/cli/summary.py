"""Streaming statistics of a recording (what ``aerflow info`` prints)."""

from __future__ import annotations

from dataclasses import dataclass

from ..stream import Stream


@dataclass(frozen=True)
class Summary:
    format: str
    width: int | None
    height: int | None
    events: int
    triggers: int
    first_t: int | None
    last_t: int | None
    size_inferred: bool = False
    details: tuple[tuple[str, str], ...] = ()
    """Format-specific rows from the reader's ``details()`` (e.g. a bag's topics)."""

    @property
    def duration(self) -> int | None:
        if self.first_t is None or self.last_t is None:
            return None
        return self.last_t - self.first_t

    def lines(self) -> list[tuple[str, str]]:
        size = f"{self.width}x{self.height}" if self.width and self.height else "unknown"
        if self.size_inferred:
            size += " (the events' extent: the file gives none)"
        rows = [
            ("format", self.format),
            ("sensor size", size),
            ("events", f"{self.events:,}"),
            ("triggers", f"{self.triggers:,}"),
        ]
        if self.first_t is not None and self.last_t is not None:
            duration = self.last_t - self.first_t
            rows += [
                ("first t", f"{self.first_t} µs"),
                ("last t", f"{self.last_t} µs"),
                ("duration", f"{duration / 1e6:.6f} s"),
            ]
            if duration > 0:
                rows.append(("mean rate", f"{self.events / duration:.6f} Mev/s"))
        return rows + list(self.details)


def summarize(reader: Stream) -> Summary:
    """Read every packet once, keeping only counts and the time span (bounded memory)."""
    events = triggers = 0
    first_t: int | None = None
    last_t: int | None = None
    for packet in reader:
        triggers += len(packet.triggers)
        if len(packet.events):
            events += len(packet.events)
            if first_t is None:
                first_t = int(packet.events["t"][0])
            last_t = int(packet.events["t"][-1])
    return Summary(
        format=reader.properties.format,
        width=reader.properties.width,
        size_inferred=reader.properties.size_inferred,
        height=reader.properties.height,
        events=events,
        triggers=triggers,
        first_t=first_t,
        last_t=last_t,
        details=tuple(details()) if callable(details := getattr(reader, "details", None)) else (),
    )
