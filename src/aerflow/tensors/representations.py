"""What a window of events becomes: the representations and their options.

Every representation gives one array per window; ``P`` is 2 (index 0 = OFF, 1 = ON) or 1
when polarities are merged:

========================  ==================  ============================================
name                      shape               value at a pixel
========================  ==================  ============================================
``"counts"``              ``(P, H, W)``       number of events (merged: of either polarity)
``"signed"``              ``(1, H, W)``       ON count minus OFF count
``"binary"``              ``(P, H, W)``       1 where at least one event, else 0
``"time_surface"``        ``(P, H, W)``       ``exp(-(t_ref - t_last) / tau)``: t_last is
                                              the pixel's latest event in this window *or
                                              any earlier one* (the state carries over);
                                              t_ref is the window's end (time windows) or
                                              its last event (count windows); 0 where no
                                              event ever came
``"voxel"``               ``(bins, P, H, W)`` events spread over ``bins`` time bins by
                                              linear interpolation (Zhu et al. 2019); per
                                              polarity, or merged: ON +, OFF − in one
                                              signed channel (the classic ``(T, H, W)``
                                              grid with a channel axis of 1)
========================  ==================  ============================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..events import parse_time

__all__ = [
    "REPRESENTATIONS",
    "Binary",
    "Counts",
    "Representation",
    "Signed",
    "TimeSurface",
    "VoxelGrid",
    "resolve",
]


@dataclass(frozen=True)
class Representation:
    """Base of the representations; use the subclasses or their names."""

    name: ClassVar[str]
    allowed_dtypes: ClassVar[tuple[str, ...]] = (
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "bfloat16",
        "float32",
        "float64",
    )

    def frame_shape(self, width: int, height: int, merged: bool) -> tuple[int, ...]:
        """The shape of one window's array."""
        return (1 if merged else 2, height, width)

    def check_dtype(self, dtype: str) -> None:
        if dtype not in self.allowed_dtypes:
            raise ValueError(
                f"{self.name} frames cannot be {dtype}: use one of {', '.join(self.allowed_dtypes)}"
            )


@dataclass(frozen=True)
class Counts(Representation):
    """Events per pixel and polarity. Integer dtypes saturate at their maximum (a uint8
    pixel that saw 300 events reads 255), the way an image sensor clips."""

    name: ClassVar[str] = "counts"


@dataclass(frozen=True)
class Signed(Representation):
    """ON minus OFF events per pixel, one channel; integer dtypes saturate at both ends."""

    name: ClassVar[str] = "signed"
    allowed_dtypes: ClassVar[tuple[str, ...]] = (
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "bfloat16",
        "float32",
        "float64",
    )

    def frame_shape(self, width: int, height: int, merged: bool) -> tuple[int, ...]:
        return (1, height, width)


@dataclass(frozen=True)
class Binary(Representation):
    """1 where a pixel (of a polarity) saw at least one event in the window, else 0."""

    name: ClassVar[str] = "binary"
    allowed_dtypes: ClassVar[tuple[str, ...]] = ("bool", *Representation.allowed_dtypes)


_FLOATS = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class TimeSurface(Representation):
    """An exponentially decaying time surface with time constant ``tau`` (µs, or a string
    such as ``"5ms"``). The latest event time per pixel carries over from window to window."""

    name: ClassVar[str] = "time_surface"
    allowed_dtypes: ClassVar[tuple[str, ...]] = _FLOATS
    tau: int | float | str = "10ms"

    @property
    def tau_us(self) -> float:
        tau = float(parse_time(self.tau)) if isinstance(self.tau, str) else float(self.tau)
        if not (tau > 0 and math.isfinite(tau)):
            raise ValueError(f"tau must be a positive time, got {self.tau!r}")
        return tau

    def __post_init__(self) -> None:
        self.tau_us  # noqa: B018 - validates


@dataclass(frozen=True)
class VoxelGrid(Representation):
    """Events spread over ``bins`` time bins of the window by linear interpolation."""

    name: ClassVar[str] = "voxel"
    allowed_dtypes: ClassVar[tuple[str, ...]] = _FLOATS
    bins: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise ValueError(f"bins must be a positive integer, got {self.bins!r}")

    def frame_shape(self, width: int, height: int, merged: bool) -> tuple[int, ...]:
        return (self.bins, 1 if merged else 2, height, width)


REPRESENTATIONS: dict[str, type[Representation]] = {
    cls.name: cls for cls in (Counts, Signed, Binary, TimeSurface, VoxelGrid)
}
"""The representations by name."""


def resolve(
    representation: str | Representation,
    *,
    tau: int | float | str | None = None,
    bins: int | None = None,
) -> Representation:
    """A representation from its name (with ``tau``/``bins`` options) or as given."""
    if isinstance(representation, Representation):
        if tau is not None or bins is not None:
            raise ValueError("give tau and bins inside the representation object, not beside it")
        return representation
    if not isinstance(representation, str) or representation not in REPRESENTATIONS:
        raise ValueError(
            f"unknown representation {representation!r}: use one of {', '.join(REPRESENTATIONS)}"
        )
    if representation == "time_surface":
        if bins is not None:
            raise ValueError("bins applies to the voxel representation only")
        return TimeSurface() if tau is None else TimeSurface(tau=tau)
    if representation == "voxel":
        if tau is not None:
            raise ValueError("tau applies to the time_surface representation only")
        return VoxelGrid() if bins is None else VoxelGrid(bins=bins)
    if tau is not None or bins is not None:
        raise ValueError(f"the {representation} representation takes neither tau nor bins")
    return REPRESENTATIONS[representation]()
