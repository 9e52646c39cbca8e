"""What an emulated iniVation camera plays: a recording (any file aerflow reads, or a
:class:`~aerflow.events.Packet`) or the synthetic sensor, clipped to the sensor and re-timed
to start at 0."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import IMU_DTYPE, TRIGGERS_DTYPE, Packet
from .base import warn_outside

__all__ = ["load_recording"]


def load_recording(recording: Any, width: int, height: int, options: dict[str, Any]) -> Packet:
    """Events (clipped to the sensor), triggers and IMU samples, re-timed to start at 0."""
    if recording is None:
        from ..events import concatenate_packets
        from ..synthetic import SyntheticSensor

        sensor = SyntheticSensor(
            width,
            height,
            duration=options.get("duration", "2s"),
            rate=float(options.get("rate", 500_000.0)),
            seed=int(options.get("seed", 0)),
        )
        packet = concatenate_packets(list(sensor))
    elif isinstance(recording, Packet):
        packet = recording
    elif isinstance(recording, (str, os.PathLike)):
        from ..api import open as open_recording

        with open_recording(recording) as reader:
            packet = reader.read()
    else:
        raise TypeError(
            f"recording must be a path, a Packet or None, not {type(recording).__name__}"
        )
    events = np.asarray(packet.events)
    inside = (events["x"] < width) & (events["y"] < height)
    if not inside.all():
        warn_outside(recording, int((~inside).sum()), len(events), width, height)
        events = events[inside]
    if len(events) > 1 and np.any(np.diff(events["t"].astype(np.int64)) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    triggers = np.asarray(packet.triggers, TRIGGERS_DTYPE)
    imu = np.asarray(packet.imu, IMU_DTYPE)
    firsts = [int(a["t"].min()) for a in (events, triggers, imu) if len(a)]
    zero = min(firsts) if firsts else 0

    def shifted(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        array = array.copy()
        array["t"] -= np.uint64(zero)
        return array

    return Packet(shifted(events), shifted(triggers), shifted(imu))
