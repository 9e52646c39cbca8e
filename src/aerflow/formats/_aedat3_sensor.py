"""The sensor size an AEDAT 3 header gives: the ``aerflow_sensor_size`` entry, or the device
named in a ``#Source`` line (DVS128, DAVIS240C, DAVIS346B, ...)."""

from __future__ import annotations

import re

from ..errors import FormatError
from ._base import check_sensor_size

_COORDINATE_LIMIT = 1 << 15
SENSOR_SIZE_KEY = "aerflow_sensor_size"

_SOURCE_PATTERNS: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"dvs128|tmpdiff128", (128, 128)),
    (r"davis240|sbret", (240, 180)),
    (r"davis346", (346, 260)),
    (r"davis640", (640, 480)),
    (r"davis128", (128, 128)),
    (r"davis208|pixelparade|sensdavis192", (208, 192)),
)

SOURCE_SIZES = {
    "DVS128": (128, 128),
    "DAVIS128": (128, 128),
    "DAVIS208": (208, 192),
    "DAVIS240C": (240, 180),
    "DAVIS346B": (346, 260),
    "DAVIS640": (640, 480),
}
"""Device names written in ``#Source`` lines, and their sensor sizes."""


def sensor_size_of_source(description: str) -> tuple[int, int] | None:
    """The sensor size of a ``#Source`` device name (DVS128, DAVIS240C, DAVIS346B, ...)."""
    name = description.strip().lower()
    if name.startswith(("davishet", "cdavis")):
        return None  # colour DAVIS: event and frame resolutions differ
    for pattern, size in _SOURCE_PATTERNS:
        if re.match(pattern, name):
            return size
    return None


def _sources(lines: tuple[str, ...]) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in lines:
        match = re.fullmatch(r"Source (\d{1,5}): (.*)", line.strip())
        if match:
            found.setdefault(int(match.group(1)), match.group(2).strip())
    return found


def _parse_size(value: str, path: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,6})\s*x\s*(\d{1,6})\s*", value)
    size = check_sensor_size(int(match.group(1)), int(match.group(2))) if match else None
    if size is None or max(size) > _COORDINATE_LIMIT:
        raise FormatError(f"bad {SENSOR_SIZE_KEY} {value!r}", path=path, offset=0)
    return size
