"""The render sinks as pipeline components: ``output video``, ``output frames`` and ``output
viewer``, registered on import in :mod:`aerflow.registry` (which imports this module when the
sinks are first looked up). Building one loads its modules.
"""

from __future__ import annotations

from typing import Any

from ..errors import AerflowError
from ..properties import Properties
from ..registry import Component, Option, components, register_component

__all__ = ["LOOK_OPTIONS", "sinks"]

_STYLES = ("on-off", "counts", "time-surface")
_DECAYS = ("exponential", "linear", "window")
_PRESETS = (
    "events",
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)

LOOK_OPTIONS = (
    Option("style", str, "how events become colours", default="on-off", choices=_STYLES),
    Option(
        "tau",
        str,
        "decay time constant, e.g. 20ms (default: two frame periods of event time)",
    ),
    Option("decay", str, "how colours fade with age", default="exponential", choices=_DECAYS),
    Option("colormap", str, "colormap instead of the colours (gray, hot, bwr, bkr, matplotlib's)"),
    Option("on_colour", str, "colour of ON events, #rrggbb", default="#ffc61a"),
    Option("off_colour", str, "colour of OFF events", default="#2e8bff"),
    Option("background", str, "colour where nothing happens", default="#141414"),
    Option("contrast", float, "counts style: events for full colour", default=1.0),
    Option("scale", float, "picture size relative to the sensor", default=1.0),
    Option("size", str, "picture size WIDTHxHEIGHT (instead of --scale)"),
)
"""Options shared by every render sink: the fields of :class:`~aerflow.render.frames.Look`."""

_SEQUENCE_OPTIONS = (
    Option("speed", float, "times real time (0.1: slow motion)", default=1.0),
    Option("start", str, "event time of the first frame (default: the first event)"),
)


def _sensor(properties: Properties, what: str) -> tuple[int, int]:
    if properties.sensor_size is None:
        raise AerflowError(
            f"{what} needs the sensor size, which this source does not give: "
            "pass --width and --height to the input"
        )
    return properties.sensor_size


def _given(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _video(properties: Properties, path: str, **options: Any) -> Any:
    from .video import VideoSink

    return VideoSink(path, *_sensor(properties, "a video"), **_given(options))


def _frames(properties: Properties, directory: str, **options: Any) -> Any:
    from .video import FramesSink

    return FramesSink(directory, *_sensor(properties, "rendering frames"), **_given(options))


def _viewer(properties: Properties, unpaced: bool = False, **options: Any) -> Any:
    from .viewer import Viewer

    options = _given(options)
    if unpaced:
        options["speed"] = None
    return Viewer(*_sensor(properties, "the viewer"), live=properties.live, **options)


_NAMES = ("video", "frames", "viewer")


def sinks() -> dict[str, Component]:
    """The render sinks by name."""
    return {name: components("sink")[name] for name in _NAMES}


for _sink in (
    Component(
        "video",
        "render a video: .mp4/.mkv/.mov (H.264) or .gif (needs aerflow[video])",
        (
            Option("path", str, "video file to write", positional=True, required=True),
            Option("fps", float, "frames per second of video (default: 60, GIF 50)"),
            *_SEQUENCE_OPTIONS,
            *LOOK_OPTIONS,
            Option("crf", int, "H.264 quality, 0 (lossless) .. 51", default=23),
            Option(
                "preset",
                str,
                "H.264 speed: events (tuned for event pictures) or x264's",
                default="events",
                choices=_PRESETS,
            ),
        ),
        _video,
    ),
    Component(
        "frames",
        "render numbered PNG pictures into a folder",
        (
            Option("directory", str, "folder for the PNG files", positional=True, required=True),
            Option("fps", float, "frames per second of event time x speed", default=60.0),
            Option(
                "overwrite",
                bool,
                "remove the frames an earlier run left in the folder (else refused)",
                default=False,
            ),
            *_SEQUENCE_OPTIONS,
            *LOOK_OPTIONS,
        ),
        _frames,
    ),
    Component(
        "viewer",
        "show the events live in a window, with their rate (needs aerflow[viewer])",
        (
            Option("fps", float, "pictures per second", default=60.0),
            Option("speed", float, "recordings: times real time", default=1.0),
            Option("unpaced", bool, "recordings: as fast as they are read", default=False),
            Option("title", str, "window title", default="aerflow"),
            *LOOK_OPTIONS,
        ),
        _viewer,
    ),
):
    register_component("sink", _sink)
