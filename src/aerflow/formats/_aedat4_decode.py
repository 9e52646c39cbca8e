"""Decoding AEDAT 4.0 packets of a mapped file, chosen by index: payloads decompressed and
decoded into events, triggers, IMU samples and frames, on whichever worker thread asks (each
call decodes its own packets), each run's pages let go once decoded. What a run held is a
:class:`_Decoded`, joined and bounded in time here and turned into a :class:`~aerflow.Packet`."""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError
from ..events import EVENTS_DTYPE, Frame, Packet, empty_imu, empty_triggers
from ._aedat4_compression import decompress
from ._aedat4_events import decode_events
from ._aedat4_side_channels import decode_frame, decode_imu, decode_triggers
from .aedat4_packets import PACKET_HEADER, PayloadError

__all__ = ["EVENTS", "FRAMES", "IMU", "SKIPPED", "TRIGGERS", "PacketDecoder", "release_pages"]

EVENTS, TRIGGERS, IMU, FRAMES, SKIPPED = range(5)
_KIND_NAMES = {EVENTS: "events", TRIGGERS: "triggers", IMU: "IMU", FRAMES: "frame"}
_HEADER = PACKET_HEADER.size  # int32 stream id, int32 payload size


@dataclass
class _Decoded:
    """What a run of packets held, in file order."""

    events: npt.NDArray[Any]
    triggers: list[npt.NDArray[Any]] = field(default_factory=list)
    imu: list[npt.NDArray[Any]] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    dropped: int = 0


class _CountMismatch(Exception):
    """A packet holds another number of events than the file data table says."""


class PacketDecoder:
    """Decodes the packets of one mapped file by their index in its packet arrays (header
    positions, stream ids, payload sizes, kinds, event counts from the file data table or -1),
    dropping events outside ``width`` x ``height``."""

    def __init__(
        self,
        path: str,
        mapped: mmap.mmap,
        codec: int,
        *,
        offsets: npt.NDArray[Any],
        streams: npt.NDArray[Any],
        sizes: npt.NDArray[Any],
        kinds: npt.NDArray[Any],
        counts: npt.NDArray[Any],
        width: int,
        height: int,
    ) -> None:
        self.path = path
        self._map: mmap.mmap | None = mapped
        self._codec = codec
        self._offsets = offsets
        self._streams = streams
        self._sizes = sizes
        self._kinds = kinds
        self._counts = counts
        self._width = width
        self._height = height

    def close(self) -> None:
        """Let go of the mapping (closed by its owner)."""
        self._map = None

    def _payload(self, index: int) -> Any:
        start = int(self._offsets[index]) + _HEADER
        view = memoryview(self._map)[start : start + int(self._sizes[index])]  # type: ignore[arg-type]
        try:
            return decompress(self._codec, view)
        except PayloadError as error:
            raise self._error(index, error) from None

    def _error(self, index: int, error: PayloadError) -> FormatError:
        kind = _KIND_NAMES.get(int(self._kinds[index]), "")
        where = "" if error.offset is None else f" (at byte {error.offset} of its payload)"
        return FormatError(
            f"{kind} packet of stream {int(self._streams[index])}: {error}{where}",
            path=self.path,
            offset=int(self._offsets[index]),
        )

    def _side_channel(self, index: int, decoded: _Decoded) -> None:
        kind = int(self._kinds[index])
        payload = self._payload(index)
        try:
            if kind == TRIGGERS:
                decoded.triggers.append(decode_triggers(payload))
            elif kind == IMU:
                decoded.imu.append(decode_imu(payload))
            else:
                decoded.frames.append(decode_frame(payload))
        except PayloadError as error:
            raise self._error(index, error) from None

    def _events_of(
        self, index: int, events: npt.NDArray[Any], start: int, stop: int
    ) -> tuple[int, int]:
        data = np.frombuffer(self._payload(index), np.uint8)
        try:
            return decode_events(data, events, start, stop, self._width, self._height)
        except PayloadError as error:
            raise self._error(index, error) from None

    def _release(self, indices: npt.NDArray[np.int64]) -> None:
        release_pages(self._map, self._offsets, self._sizes, indices)

    def decode_local(
        self, indices: npt.NDArray[np.int64], bound: tuple[int, int] | None
    ) -> _Decoded:
        """Decode packets into a new events array (grown as needed)."""
        try:
            return self._decode_local_run(indices, bound)
        finally:
            self._release(indices)

    def _decode_local_run(
        self, indices: npt.NDArray[np.int64], bound: tuple[int, int] | None
    ) -> _Decoded:
        counts = self._counts[indices][self._kinds[indices] == EVENTS]
        events = np.empty(int(counts[counts > 0].sum()) + 1024, EVENTS_DTYPE)
        decoded = _Decoded(events)
        n = 0
        for index in indices.tolist():
            if self._kinds[index] != EVENTS:
                self._side_channel(index, decoded)
                continue
            data = np.frombuffer(self._payload(index), np.uint8)
            room = max(len(data) - 32, 0) // 16 + 1  # no packet of this size holds more
            if len(events) - n < room:
                events = np.resize(events, max(len(events) * 3 // 2, n + room))
            try:
                elements, kept = decode_events(
                    data, events, n, len(events), self._width, self._height
                )
            except PayloadError as error:
                raise self._error(index, error) from None
            decoded.dropped += elements - kept
            n += kept
        decoded.events = events[:n]
        if bound is not None:
            _bound(decoded, *bound)
        return decoded

    def decode_into(
        self,
        events: npt.NDArray[Any],
        indices: npt.NDArray[np.int64],
        places: npt.NDArray[np.int64],
    ) -> _Decoded:
        """Decode packets into their places in ``events``; the result's ``events`` lists
        (place, kept, expected) for each event packet."""
        try:
            return self._decode_into_run(events, indices, places)
        finally:
            self._release(indices)

    def _decode_into_run(
        self,
        events: npt.NDArray[Any],
        indices: npt.NDArray[np.int64],
        places: npt.NDArray[np.int64],
    ) -> _Decoded:
        runs = []
        decoded = _Decoded(events[:0])
        for i, index in enumerate(indices.tolist()):
            if self._kinds[index] != EVENTS:
                self._side_channel(index, decoded)
                continue
            start, stop = int(places[i]), int(places[i + 1])
            elements, kept = self._events_of(index, events, start, stop)
            if elements != stop - start:
                raise _CountMismatch
            decoded.dropped += elements - kept
            runs.append((start, kept, elements))
        decoded.events = np.array(runs, np.int64).reshape(-1, 3)
        return decoded


def release_pages(
    mapped: mmap.mmap | None,
    offsets: npt.NDArray[Any],
    sizes: npt.NDArray[Any],
    indices: npt.NDArray[np.int64],
) -> None:
    """Let the pages of these packets' bytes go from this process (they stay in the page
    cache): memory stays bounded by the packets being decoded, whatever the file size."""
    if len(indices) == 0 or mapped is None or not hasattr(mapped, "madvise"):
        return
    start = int(offsets[indices[0]])
    start -= start % mmap.PAGESIZE
    end = int(offsets[indices[-1]] + _HEADER + sizes[indices[-1]])
    with contextlib.suppress(OSError, ValueError):
        mapped.madvise(mmap.MADV_DONTNEED, start, end - start)


def _bound(decoded: _Decoded, start: int, end: int) -> None:
    """Keep only what happens in [start, end)."""
    t = decoded.events["t"]
    inside = (t >= start) & (t < end)
    if not inside.all():
        decoded.events = decoded.events[inside]
    decoded.triggers = [a[(a["t"] >= start) & (a["t"] < end)] for a in decoded.triggers]
    decoded.imu = [a[(a["t"] >= start) & (a["t"] < end)] for a in decoded.imu]
    decoded.frames = [f for f in decoded.frames if start <= f.t < end]


def _has_data(decoded: _Decoded) -> bool:
    return bool(
        len(decoded.events)
        or any(len(a) for a in decoded.triggers)
        or any(len(a) for a in decoded.imu)
        or decoded.frames
    )


def _join(events: npt.NDArray[Any], parts: Sequence[_Decoded]) -> _Decoded:
    joined = _Decoded(events)
    for part in parts:
        joined.triggers.extend(part.triggers)
        joined.imu.extend(part.imu)
        joined.frames.extend(part.frames)
        joined.dropped += part.dropped
    return joined


def _packet(decoded: _Decoded) -> Packet:
    triggers = [a for a in decoded.triggers if len(a)]
    imu = [a for a in decoded.imu if len(a)]
    return Packet(
        decoded.events,
        np.concatenate(triggers) if triggers else empty_triggers(),
        np.concatenate(imu) if imu else empty_imu(),
        tuple(decoded.frames),
    )
