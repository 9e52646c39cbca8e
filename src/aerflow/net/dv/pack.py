"""A DV server's packets: an aerflow packet checked, then encoded and compressed into DV
packets (8-byte header and payload each) by the AEDAT 4 file code."""

from __future__ import annotations

import numpy as np

from ..._extent import event_extent
from ...events import IMU_DTYPE, TRIGGERS_DTYPE, Packet, as_events, empty_imu, empty_triggers
from ...formats.aedat4_packets import (
    PACKET_HEADER,
    compress,
    encode_events,
    encode_frame,
    encode_imu,
    encode_triggers,
)
from .common import COORDINATE_LIMIT, MAX_TIME

__all__ = ["Encoded", "encode_packet"]


class Encoded:
    """The DV packets of one aerflow packet: ``chunks`` (header, payload, header, ...) to send
    in order, with their count, events and bytes."""

    __slots__ = ("bytes", "chunks", "events", "packets")

    def __init__(self) -> None:
        self.chunks: list[memoryview] = []
        self.packets = self.events = self.bytes = 0


def encode_packet(
    packet: Packet,
    ids: dict[str, int],
    sensor_size: tuple[int, int] | None,
    code: int,
    level: int | None,
    packet_events: int,
) -> Encoded:
    """Header and payload of each DV packet ``packet`` makes, every check done first (ValueError
    or TypeError, nothing encoded). ``ids``: stream id by channel served (``events``,
    ``triggers``, ``imu``, ``frames``); ``code``, ``level``: the compression; at most
    ``packet_events`` events per DV packet."""
    events = as_events(packet.events) if "events" in ids else packet.events[:0]
    triggers = np.asarray(packet.triggers) if "triggers" in ids else empty_triggers()
    imu = np.asarray(packet.imu) if "imu" in ids else empty_imu()
    frames = packet.frames if "frames" in ids else ()
    if len(events):
        _, t_max, x_max, y_max = event_extent(np.ascontiguousarray(events))
        width, height = sensor_size or (COORDINATE_LIMIT, COORDINATE_LIMIT)
        if x_max >= width or y_max >= height:
            raise ValueError(
                f"events lie outside the {width}x{height} sensor (max x {x_max}, max y {y_max})"
            )
        if t_max > MAX_TIME:
            raise ValueError(f"event time {t_max} µs does not fit DV's int64")
    for name, items in (("trigger", triggers), ("IMU sample", imu)):
        if len(items) and int(items["t"].max()) > MAX_TIME:
            raise ValueError(f"{name} time {int(items['t'].max())} µs does not fit DV's int64")
    if len(imu) and imu.dtype != IMU_DTYPE:
        raise TypeError(f"IMU samples must have aerflow.IMU_DTYPE, not {imu.dtype}")
    payloads: list[tuple[int, bytes | memoryview, int]] = []
    if len(triggers):
        payloads.append((ids["triggers"], encode_triggers(triggers.astype(TRIGGERS_DTYPE)), 0))
    if len(imu):
        payloads.append((ids["imu"], encode_imu(imu), 0))
    for frame in frames:
        if not 0 <= frame.t <= MAX_TIME:
            raise ValueError(f"frame time {frame.t} µs is outside 0..2**63-1")
        payloads.append((ids["frames"], encode_frame(frame), 0))
    data = np.ascontiguousarray(events)
    for start in range(0, len(data), packet_events):
        part = data[start : start + packet_events]
        payloads.append((ids["events"], encode_events(part), len(part)))
    encoded = Encoded()
    for stream, payload, count in payloads:
        body = compress(code, payload, level)
        encoded.chunks.append(memoryview(PACKET_HEADER.pack(stream, len(body))))
        encoded.chunks.append(memoryview(body))
        encoded.packets += 1
        encoded.events += count
        encoded.bytes += PACKET_HEADER.size + len(body)
    return encoded
