"""The EventPacket encodings and event message types of ROS bags: what the reader accepts
(word sizes, which clock each gives), what the writer can put in each (sensor size, longest
message, triggers), and the payload of one written message in an encoding other than
``evt3`` (whose stream the EVT 3.0 encoder writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import ros_kernels as kernels

ENCODINGS = ("evt3", "mono", "trigger", "libcaer", "libcaer_cmp")
"""EventPacket encodings aerflow decodes."""
_WORD_BYTES = {"evt3": 2, "mono": 8, "trigger": 8, "libcaer": 8, "libcaer_cmp": 2}
_SENSOR_TIME = ("evt3", "mono", "trigger")
"""Encodings whose times are the camera's own clock; the others give ROS (host) time."""
_EVT3_MAX_SIZE = 2048  # 11-bit addresses
_EVT3_MAX_SPAN_US = 1 << 46  # as the .raw writer: each 2**24 µs loop costs up to 3 words


MESSAGE_TYPES = (
    "event_camera_msgs/EventPacket",
    "dvs_msgs/EventArray",
    "prophesee_event_msgs/EventArray",
)
WRITE_ENCODINGS = ENCODINGS


@dataclass(frozen=True)
class _WrittenEncoding:
    """What one EventPacket encoding holds, for the writer."""

    width: int
    height: int
    """Largest sensor its addresses hold."""
    longest_message_us: int | None
    """Longest ``message_duration`` whose times its per-message offsets hold."""
    stores: tuple[str, ...]
    most_trigger_id: int = 255
    holds_events: bool = True


_WRITTEN = {
    "evt3": _WrittenEncoding(_EVT3_MAX_SIZE, _EVT3_MAX_SIZE, None, ("triggers",), 0xF),
    # mono and trigger: an int32 of ns after time_base (the codec's encoders clamp at 0).
    "mono": _WrittenEncoding(1 << 16, 1 << 15, (1 << 31) // 1000, ()),
    "trigger": _WrittenEncoding(1 << 16, 1 << 16, (1 << 31) // 1000, ("triggers",), 0xFF, False),
    # libcaer: an int32 of µs after time_base; libcaer_cmp: a 24-bit µs offset, 11-bit x, y.
    "libcaer": _WrittenEncoding(1 << 15, 1 << 15, 1 << 31, ()),
    "libcaer_cmp": _WrittenEncoding(_EVT3_MAX_SIZE, _EVT3_MAX_SIZE, 1 << 24, ()),
}
_ARRAY_LIMIT = _WrittenEncoding(1 << 16, 1 << 16, None, ())
_LIBCAER_WORD = np.dtype([("address", "<u4"), ("stamp", "<i4")])


def _packet_payload(
    encoding: str, events: npt.NDArray[Any], triggers: npt.NDArray[Any], base_us: int
) -> npt.NDArray[Any]:
    """The payload of one message of ``encoding`` other than evt3 (times at or after
    ``base_us``, within the encoding's longest message)."""
    if encoding == "trigger":
        dt = (triggers["t"] - np.uint64(base_us)) * np.uint64(1000)
        rising = triggers["rising"].astype(np.uint64) << np.uint64(63)
        edges: npt.NDArray[Any] = rising | (triggers["id"].astype(np.uint64) << np.uint64(48)) | dt
        return edges
    if encoding == "mono":
        dt = (events["t"] - np.uint64(base_us)) * np.uint64(1000)
        on = events["on"].astype(np.uint64) << np.uint64(63)
        xy = (events["y"].astype(np.uint64) << np.uint64(48)) | (
            events["x"].astype(np.uint64) << np.uint64(32)
        )
        mono: npt.NDArray[Any] = on | xy | dt
        return mono
    if encoding == "libcaer":
        words = np.empty(len(events), _LIBCAER_WORD)
        # x bits 17-31, y bits 2-16, polarity bit 1, bit 0: libcaer's valid flag.
        words["address"] = (
            (events["x"].astype(np.uint32) << np.uint32(17))
            | (events["y"].astype(np.uint32) << np.uint32(2))
            | (events["on"].astype(np.uint32) << np.uint32(1))
            | np.uint32(1)
        )
        words["stamp"] = (events["t"] - np.uint64(base_us)).astype(np.int32)
        return words
    words16 = np.empty(4 * len(events) + 1, np.uint16)
    count = kernels.encode_libcaer_cmp(
        events["t"], events["x"], events["y"], events["on"], base_us, words16
    )
    return words16[:count]
