"""What the tensor functions accept as a source, and the sensor size that goes with it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_sensor_size
from ..events import Packet, as_events

__all__ = ["Source", "event_arrays", "sensor_size_of"]

Source = Iterable[Packet] | Iterable[npt.NDArray[Any]] | Packet | npt.NDArray[Any]
"""An events array, a packet, or any iterable of packets or events arrays: a reader from
:func:`aerflow.open`, a stream, a list of packets."""


def event_arrays(source: Any) -> Iterator[npt.NDArray[Any]]:
    """The source's events as :data:`~aerflow.EVENTS_DTYPE` arrays, packet by packet."""
    if isinstance(source, np.ndarray):
        yield as_events(source)
        return
    if isinstance(source, Packet):
        yield as_events(source.events)
        return
    for item in source:
        yield as_events(item.events if isinstance(item, Packet) else item)


def sensor_size_of(source: Any, sensor_size: tuple[int, int] | None) -> tuple[int, int]:
    """``sensor_size`` when given, else the source's ``properties.width``/``height``."""
    if sensor_size is None:
        properties = getattr(source, "properties", None)
        width = getattr(properties, "width", None)
        height = getattr(properties, "height", None)
        if width is None or height is None:
            raise ValueError(
                "the sensor size is unknown (the source has no properties with a width and "
                "height): pass sensor_size=(width, height)"
            )
        sensor_size = (width, height)
    try:
        width, height = sensor_size
    except (TypeError, ValueError) as error:
        raise ValueError(f"sensor_size must be (width, height), got {sensor_size!r}") from error
    size = check_sensor_size(width, height) if width is not None else None
    if size is None:
        raise ValueError(f"sensor_size must be (width, height), got {sensor_size!r}")
    return size
