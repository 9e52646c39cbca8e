"""A DV client's packets, from the bytes received to aerflow packets: each scanned DV packet
decompressed and decoded by the AEDAT 4 file code, events of the chosen stream, triggers, IMU
samples and frames of every stream of their type, the rest skipped and counted."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from ...events import EVENTS_DTYPE, Frame, Packet, empty_imu, empty_triggers
from ...formats.aedat4_packets import (
    PACKET_HEADER,
    PayloadError,
    decode_events,
    decode_frame,
    decode_imu,
    decode_triggers,
    decompress,
)
from .common import COORDINATE_LIMIT

__all__ = ["EVENTS", "FRAMES", "IMU", "KINDS", "SKIPPED", "TRIGGERS", "Unpacker"]

log = logging.getLogger(__name__)

EVENTS, TRIGGERS, IMU, FRAMES, SKIPPED = range(5)
KINDS = {"EVTS": EVENTS, "TRIG": TRIGGERS, "IMUS": IMU, "FRME": FRAMES}
"""What the client does with the packets of each FlatBuffer type (others: SKIPPED)."""


class Unpacker:
    """Decodes the DV packets found in a client's receive buffer, and counts what it saw.

    ``kinds`` maps each stream id the description names to what is done with its packets;
    ``codec`` is the stream's compression; events outside ``width`` x ``height`` are dropped
    and counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.codec = 0
        self.kinds: dict[int, int] = {}
        self.width = self.height = COORDINATE_LIMIT
        self.packets = self.events = self.triggers = self.imu = self.frames = 0
        self.skipped = self.malformed = self.out_of_range = 0
        self._unknown_ids: set[int] = set()
        self._consumed = 0

    def unpack(
        self,
        buffer: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        ids: npt.NDArray[np.int32],
        sizes: npt.NDArray[np.int64],
        found: int,
        consumed: int,
    ) -> Packet | None:
        """The ``found`` packets just scanned as one aerflow packet (None when they hold
        nothing aerflow keeps); ``consumed``: bytes of the connection before ``buffer[0]``."""
        self._consumed = consumed
        self.packets += found
        event_payloads: list[tuple[int, int, Any]] = []
        triggers: list[npt.NDArray[Any]] = []
        imu: list[npt.NDArray[Any]] = []
        frames: list[Frame] = []
        view = memoryview(buffer)  # type: ignore[arg-type]
        where = zip(
            offsets[:found].tolist(), ids[:found].tolist(), sizes[:found].tolist(), strict=True
        )
        for offset, stream, size in where:
            kind = self.kinds.get(stream)
            if kind is None:
                self.skipped += 1
                if stream not in self._unknown_ids:
                    self._unknown_ids.add(stream)
                    log.warning(
                        "%s: packets of stream %d, which the description does not name, "
                        "are skipped",
                        self.name,
                        stream,
                    )
                continue
            if kind == SKIPPED:
                self.skipped += 1
                continue
            start = offset + PACKET_HEADER.size
            payload = view[start : start + size]
            try:
                data = decompress(self.codec, payload)
                if kind == EVENTS:
                    event_payloads.append((offset, stream, np.frombuffer(data, np.uint8)))
                elif kind == TRIGGERS:
                    triggers.append(decode_triggers(data))
                elif kind == IMU:
                    imu.append(decode_imu(data))
                else:
                    frames.append(decode_frame(data))
            except PayloadError as error:
                self._bad_packet(offset, stream, error)
        events = self._decode_events(event_payloads)
        self.triggers += sum(len(a) for a in triggers)
        self.imu += sum(len(a) for a in imu)
        self.frames += len(frames)
        if not (len(events) or triggers or imu or frames):
            return None
        return Packet(
            events,
            np.concatenate(triggers) if triggers else empty_triggers(),
            np.concatenate(imu) if imu else empty_imu(),
            tuple(frames),
        )

    def _decode_events(self, payloads: list[tuple[int, int, Any]]) -> npt.NDArray[Any]:
        capacity = sum(len(data) // 16 for _, _, data in payloads)  # 16 bytes an event at least
        events = np.empty(capacity, EVENTS_DTYPE)
        kept = 0
        for offset, stream, data in payloads:
            try:
                elements, taken = decode_events(
                    data, events, kept, capacity, self.width, self.height
                )
            except PayloadError as error:
                self._bad_packet(offset, stream, error)
                continue
            kept += taken
            self.out_of_range += elements - taken
        self.events += kept
        events.resize(kept, refcheck=False)  # no view of it exists: shrink in place
        return events

    def _bad_packet(self, offset: int, stream: int, error: PayloadError) -> None:
        self.malformed += 1
        where = "" if error.offset is None else f" (at byte {error.offset} of its payload)"
        log.warning(
            "%s: the packet of stream %d at byte %d is skipped: %s%s",
            self.name,
            stream,
            self._consumed + offset,
            error,
            where,
        )
