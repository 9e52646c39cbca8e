"""Colours, colormaps and the 256-colour palettes that rendered frames index.

Every style renders a frame as palette indices (one byte a pixel); the palette turns them
into colours. Signed styles (``"on-off"``, ``"counts"``) use indices 0..254 for values
-1..+1 (:data:`SIGNED_BACKGROUND` = 127 is 0); the unsigned ``"time-surface"`` uses 0..255
for 0..1 (0 is the background).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "COLORMAPS",
    "SIGNED_BACKGROUND",
    "SIGNED_LEVELS",
    "Colour",
    "colormap",
    "parse_colour",
    "signed_palette",
    "unsigned_palette",
]

Colour = str | Sequence[int]
"""``"#rrggbb"``, ``"#rgb"``, ``"rrggbb"``, ``"r,g,b"`` (0..255) or a sequence of 3 ints."""

SIGNED_LEVELS = 127
"""Index steps from 0 to full ON (or full OFF) in signed palettes."""
SIGNED_BACKGROUND = SIGNED_LEVELS
"""The index of 0 in signed palettes: the background."""

_Map = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def _clip(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.clip(values, 0.0, 1.0)


def _gray(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.stack([v, v, v], axis=-1)


def _hot(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # Black, then red, yellow and white rising one after the other.
    return np.stack([_clip(3 * v), _clip(3 * v - 1), _clip(3 * v - 2)], axis=-1)


def _bwr(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # Blue through white to red.
    low, high = _clip(2 * v), _clip(2 - 2 * v)
    return np.stack([low, np.minimum(low, high), high], axis=-1)


def _bkr(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # Blue through black to red: a diverging map for dark backgrounds.
    return np.stack([_clip(2 * v - 1), np.zeros_like(v), _clip(1 - 2 * v)], axis=-1)


COLORMAPS: dict[str, _Map] = {"gray": _gray, "hot": _hot, "bwr": _bwr, "bkr": _bkr}
"""Colormaps built in; any other name is looked up in matplotlib when it is installed."""


def parse_colour(value: Colour) -> tuple[int, int, int]:
    """An (r, g, b) triple of 0..255 from a hex string, ``"r,g,b"`` or a sequence."""
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            parts: Sequence[int] = [int(part) for part in text.split(",")]
        else:
            digits = text.removeprefix("#")
            if len(digits) == 3:
                digits = "".join(d * 2 for d in digits)
            if len(digits) != 6 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError(f"cannot read {value!r} as a colour: use '#rrggbb' or 'r,g,b'")
            parts = [int(digits[i : i + 2], 16) for i in (0, 2, 4)]
    else:
        parts = [int(part) for part in value]
    if len(parts) != 3 or not all(0 <= part <= 255 for part in parts):
        raise ValueError(f"a colour needs 3 components in 0..255, got {value!r}")
    return parts[0], parts[1], parts[2]


def colormap(name: str) -> _Map:
    """The colormap called ``name``: built in (:data:`COLORMAPS`) or matplotlib's."""
    if name in COLORMAPS:
        return COLORMAPS[name]
    try:
        import matplotlib
    except ImportError:
        raise ValueError(
            f"unknown colormap {name!r}: built in are {', '.join(COLORMAPS)}; "
            "matplotlib's are available after pip install 'aerflow[plot]'"
        ) from None
    try:
        mapping = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown colormap {name!r} (neither built in nor matplotlib's)") from None

    def lookup(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        rgba: npt.NDArray[np.float64] = np.asarray(mapping(v), dtype=np.float64)
        return rgba[..., :3]

    return lookup


def _to_bytes(rgb: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    return np.round(np.clip(rgb, 0.0, 255.0)).astype(np.uint8)


def signed_palette(
    on: Colour, off: Colour, background: Colour, cmap: str | None = None
) -> npt.NDArray[np.uint8]:
    """(256, 3) colours for signed values: index ``127 + round(127 v)`` shows v in [-1, 1].

    Without ``cmap``, the background fades into the ON colour (v > 0) or the OFF colour
    (v < 0); with it, v is mapped through the colormap at ``(v + 1) / 2``. Index 255 is
    unused and holds the background."""
    values = (np.arange(256, dtype=np.float64) - SIGNED_LEVELS) / SIGNED_LEVELS
    values[255] = 0.0
    if cmap is not None:
        return _to_bytes(colormap(cmap)((values + 1) / 2) * 255)
    back = np.array(parse_colour(background), np.float64)
    targets = np.where(values[:, None] > 0, parse_colour(on), parse_colour(off))
    weight = np.abs(values)[:, None]
    return _to_bytes(back + weight * (targets - back))


def unsigned_palette(
    colour: Colour, background: Colour, cmap: str | None = None
) -> npt.NDArray[np.uint8]:
    """(256, 3) colours for values in [0, 1] at index ``round(255 v)``: the colormap, or
    without one, the background fading into ``colour``."""
    values = np.arange(256, dtype=np.float64) / 255
    if cmap is not None:
        return _to_bytes(colormap(cmap)(values) * 255)
    back = np.array(parse_colour(background), np.float64)
    target = np.array(parse_colour(colour), np.float64)
    return _to_bytes(back + values[:, None] * (target - back))
