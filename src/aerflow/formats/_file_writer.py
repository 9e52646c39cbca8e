"""The base of every file writer (:class:`FileWriter`: packets in, side channels the format
cannot hold counted and logged, the output committed atomically), and the time origin of
writers that keep one in their header (:class:`TimeOrigin`)."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._output import Output
from ..events import TRIGGERS_DTYPE, Packet, as_events
from ..sinks import ClosedOnExit

__all__ = ["FileWriter", "TimeOrigin", "whole_second_origin"]

log = logging.getLogger(__name__)


def whole_second_origin(first_t: int, single_loop_us: int) -> int:
    """The time origin of a file whose first time is ``first_t`` µs: 0 while times fit one
    loop of the format's counter, else the whole second before ``first_t`` (counters then
    stay small, and the header keeps the origin)."""
    return first_t - first_t % 1_000_000 if first_t >= single_loop_us else 0


class TimeOrigin:
    """For writers that store times from a time origin kept in their header: the given
    ``time_origin``, else :func:`whole_second_origin`; fixed once the header is written."""

    single_loop_us: ClassVar[int]
    """The largest time (µs) the format's counter holds without a wrap."""
    _time_origin: int | None
    _origin: int
    _header_written: bool

    def _origin_for(self, first_t: int) -> int:
        """The time origin a file whose first item is at ``first_t`` gets."""
        if self._header_written:
            return self._origin
        if self._time_origin is not None:
            return self._time_origin
        return whole_second_origin(first_t, self.single_loop_us)


class FileWriter(ClosedOnExit, ABC):
    """A writer: a context manager taking packets or arrays. Its output is opened by the one
    policy of :class:`aerflow._output.Output`: a file is written under a temporary name and
    renamed into place on success (nothing the user had is lost on failure); a device, FIFO
    or socket is written as a stream and never replaced; ``-`` is standard output."""

    format_name: ClassVar[str]

    needs_seek: ClassVar[bool] = False
    """Whether the writer goes back to patch what it wrote (then a stream output is spooled)."""

    stores: tuple[str, ...] = ("triggers",)
    """The side channels (``triggers``, ``imu``, ``frames``) the format can hold. What it
    cannot hold is dropped, never failing the events: counted in :attr:`unwritten` and
    logged once, with the count, when the file is closed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._output = Output(path, needs_seek=self.needs_seek)
        self._file = self._output.file
        self._closed = False
        self.unwritten: dict[str, int] = {}
        """Side-channel items dropped so far, by channel (see :attr:`stores`)."""

    @property
    def unwritten_triggers(self) -> int:
        """Triggers dropped so far because the file cannot hold them."""
        return self.unwritten.get("triggers", 0)

    def write(self, events: npt.ArrayLike | Packet, triggers: npt.ArrayLike | None = None) -> None:
        """Append events (any layout :func:`~aerflow.as_events` accepts) and triggers, or a
        whole packet (its IMU samples and frames too, where the format stores them)."""
        if self._closed:
            raise ValueError(f"I/O operation on a closed writer ({self.path})")
        if isinstance(events, Packet):
            if triggers is not None:
                raise TypeError("pass triggers inside the packet, not beside it")
            packet = events
        else:
            packet = Packet(
                as_events(events),
                np.empty(0, TRIGGERS_DTYPE)
                if triggers is None
                else np.asarray(triggers).astype(TRIGGERS_DTYPE, copy=False),
            )
        self._write_packet(self._storable(packet))

    def _storable(self, packet: Packet) -> Packet:
        """``packet`` without what the format cannot hold, which is counted."""
        triggers = packet.triggers
        kept = self._storable_triggers(triggers) if "triggers" in self.stores else triggers[:0]
        dropped = {
            "triggers": len(triggers) - len(kept),
            "imu": 0 if "imu" in self.stores else len(packet.imu),
            "frames": 0 if "frames" in self.stores else len(packet.frames),
        }
        if not any(dropped.values()):
            return packet
        for channel, count in dropped.items():
            if count:
                self.unwritten[channel] = self.unwritten.get(channel, 0) + count
        return Packet(
            packet.events,
            kept,
            packet.imu if "imu" in self.stores else packet.imu[:0],
            packet.frames if "frames" in self.stores else (),
        )

    most_trigger_id: int = 255
    """The largest trigger id the format holds (its id field may be narrower than a byte)."""

    def _storable_triggers(self, triggers: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The triggers the format can hold."""
        if self.most_trigger_id >= 255:
            return triggers
        kept: npt.NDArray[Any] = triggers[triggers["id"] <= self.most_trigger_id]
        return kept

    def _why_unwritten(self, channel: str) -> str:
        """Why the format drops items of ``channel``, for the log."""
        if channel == "triggers" and "triggers" in self.stores:
            return f"{self.format_name} trigger ids are 0-{self.most_trigger_id}"
        return f"{self.format_name} files cannot hold them"

    def _log_unwritten(self) -> None:
        names = {"triggers": "triggers", "imu": "IMU samples", "frames": "frames"}
        for channel, count in self.unwritten.items():
            log.warning(
                "%s: %d %s not written: %s",
                self.path,
                count,
                names[channel],
                self._why_unwritten(channel),
            )

    def _write_packet(self, packet: Packet) -> None:
        """Formats with IMU or frame channels override this; others store events and
        triggers only."""
        self._write(as_events(packet.events), packet.triggers)

    @abstractmethod
    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None: ...

    def _finalize(self) -> None:
        """Last bytes before closing (e.g. pending state); nothing by default."""

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._closed:
            return
        self._closed = True
        try:
            self._finalize()
            self._output.commit()
        except BaseException:
            self._discard()
            raise
        self._log_unwritten()

    def abort(self) -> None:
        """Stop without touching the destination."""
        if not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        self._output.discard()
