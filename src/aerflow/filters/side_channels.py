"""Filters of the side channels: drop triggers, IMU samples or frames, or keep only the
triggers of some ids (for outputs that cannot hold them all). Events pass untouched."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from ..errors import AerflowError
from ..events import Packet
from ..registry import Component, Option, register_component
from ..stream import Filter
from ._common import _has_data

__all__ = ["SIDE_CHANNELS", "SideChannel"]

SIDE_CHANNELS = ("triggers", "imu", "frames")


class SideChannel(Filter):
    """Drop one side channel (``triggers``, ``imu`` or ``frames``), or keep only the
    triggers whose id is in ``keep_ids``: for outputs that cannot hold them all, or simply
    to leave them out. Events pass untouched."""

    def __init__(self, channel: str, keep_ids: Iterable[int] | None = None) -> None:
        if channel not in SIDE_CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(SIDE_CHANNELS)}, got {channel!r}")
        ids = None if keep_ids is None else sorted(set(keep_ids))
        if ids is not None and channel != "triggers":
            raise ValueError("only triggers have ids to keep")
        if ids is not None and not all(0 <= i <= 255 for i in ids):
            raise ValueError(f"trigger ids lie in 0..255, got {ids}")
        self.channel = channel
        self._ids = None if ids is None else np.array(ids, np.uint8)

    def apply(self, packet: Packet) -> Iterable[Packet]:
        if self.channel == "triggers":
            triggers = packet.triggers
            kept = (
                triggers[:0] if self._ids is None else triggers[np.isin(triggers["id"], self._ids)]
            )
            packet = replace(packet, triggers=kept)
        elif self.channel == "imu":
            packet = replace(packet, imu=packet.imu[:0])
        else:
            packet = replace(packet, frames=())
        return [packet] if _has_data(packet) else []


def _side_channel(channel: str, action: str, ids: str | None = None) -> Filter:
    if action == "drop":
        if ids is not None:
            raise AerflowError(f"'{channel} drop' takes no ids")
        return SideChannel(channel)
    if ids is None:
        raise AerflowError("'triggers keep-ids' needs the ids kept, e.g. 0,2")
    try:
        kept = [int(word) for word in ids.split(",") if word.strip()]
    except ValueError:
        raise AerflowError(f"trigger ids are integers separated by commas, got {ids!r}") from None
    return SideChannel(channel, kept)


for _channel, _what in (("triggers", "triggers"), ("imu", "IMU samples"), ("frames", "frames")):
    _ids = _channel == "triggers"
    register_component(
        "filter",
        Component(
            _channel,
            f"drop the {_what}" + (", or keep those of some ids" if _ids else ""),
            (
                Option(
                    "action",
                    str,
                    "what to do",
                    positional=True,
                    required=True,
                    choices=("drop", "keep-ids") if _ids else ("drop",),
                ),
                *(
                    (Option("ids", str, "with keep-ids: the ids kept, e.g. 0,2", positional=True),)
                    if _ids
                    else ()
                ),
            ),
            functools.partial(_side_channel, _channel),
        ),
    )
