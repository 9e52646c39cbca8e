"""The EVK4's configuration: biases (offsets from the camera's own values), x/y and pixel
masks, output and trigger switches (live), and the clock and rate limiter (at open)."""

from __future__ import annotations

import enum
import operator
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigurationError
from ._evk4_registers import (
    BIAS_ADDRESSES,
    DIGITAL_MASK_ENABLE,
    PIXEL_MASK_SLOTS,
)
from ._prophesee import (
    SENSOR_HEIGHT,
    SENSOR_WIDTH,
    RateLimiter,
    mask_indices,
)

__all__ = ["Clock", "Evk4Biases", "Evk4Configuration", "RateLimiter", "pixel_mask_words"]


class Clock(enum.Enum):
    """Where the time base comes from (several cameras can share one clock)."""

    INTERNAL = "internal"
    """The camera's own clock (default)."""
    INTERNAL_WITH_OUTPUT_ENABLED = "internal with output enabled"
    """Primary: the camera's own clock, also sent out on the sync pad."""
    EXTERNAL = "external"
    """Secondary: the clock comes in on the sync pad from a primary camera. Open the
    secondaries first, wait a second, then open the primary."""


@dataclass(frozen=True)
class Evk4Biases:
    """Bias offsets from the camera's factory values.

    At open the driver reads each bias register (its bits 0..7); the value written is that
    factory value plus the offset, which must stay within 0..255
    (:meth:`Evk4Driver.biases_bounds` gives the range per bias once open). All offsets 0
    (the default) keep the factory tuning, as in neuromorphic-drivers 0.18 and OpenEB.
    """

    pr: int = 0
    fo: int = 0
    hpf: int = 0
    diff_on: int = 0
    diff: int = 0
    diff_off: int = 0
    inv: int = 0
    refr: int = 0
    reqpuy: int = 0
    reqpux: int = 0
    sendreqpdy: int = 0
    unknown_1: int = 0
    unknown_2: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"Evk4Biases.{item.name} must be an integer offset")
            if not -255 <= value <= 255:
                raise ConfigurationError(
                    f"Evk4Biases.{item.name} = {value}: an offset lies in -255..255"
                )

    def items(self) -> list[tuple[str, int]]:
        """(name, offset) in register order."""
        return [(name, getattr(self, name)) for name in BIAS_ADDRESSES]


def _pixels(values: Any) -> tuple[tuple[int, int], ...]:
    try:
        pixels = tuple((operator.index(x), operator.index(y)) for x, y in values)
    except (TypeError, ValueError):
        raise ConfigurationError("pixel_mask must be a sequence of (x, y) pairs") from None
    if len(pixels) > PIXEL_MASK_SLOTS:
        raise ConfigurationError(
            f"pixel_mask holds {len(pixels)} pixels; the camera has {PIXEL_MASK_SLOTS} slots"
        )
    for x, y in pixels:
        if not (0 <= x < SENSOR_WIDTH and 0 <= y < SENSOR_HEIGHT):
            raise ConfigurationError(
                f"pixel_mask pixel ({x}, {y}) lies outside the {SENSOR_WIDTH}x{SENSOR_HEIGHT} "
                "sensor"
            )
    if len(set(pixels)) != len(pixels):
        raise ConfigurationError("pixel_mask names a pixel twice")
    return pixels


def _flag(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{owner}.{name} must be True or False, not {value!r}")


@dataclass(frozen=True)
class Evk4Configuration:
    """Everything the EVK4 driver programs.

    - ``biases``: offsets from the factory biases (:class:`Evk4Biases`).
    - ``x_mask`` / ``y_mask``: columns (0..1279) and rows (0..719) to switch off; any
      iterable of integers (a ``range`` for instance), stored as a sorted tuple. With
      ``mask_intersection_only`` False (the default) a pixel is off when its column **or**
      its row is masked; with True, only when both are [I: the meaning of RoiCtrl bit 6,
      from ND's helper].
    - ``pixel_mask``: up to 64 distinct (x, y) pixels to switch off one by one, stored as a
      tuple of pairs.
    - ``enable_external_trigger``: the camera turns edges on its trigger input into trigger
      events (EDF 0x7004 bit 10).
    - ``clock``: internal, primary or secondary (:class:`Clock`); open time only.
    - ``rate_limiter``: None, or the camera's event-rate controller settings
      (:class:`RateLimiter`); open time only.
    - ``enable_output``: False keeps the sensor running but sends no events.
    """

    biases: Evk4Biases = field(default_factory=Evk4Biases)
    x_mask: Collection[int] = ()
    y_mask: Collection[int] = ()
    pixel_mask: Collection[tuple[int, int]] = ()
    mask_intersection_only: bool = False
    enable_external_trigger: bool = True
    clock: Clock = Clock.INTERNAL
    rate_limiter: RateLimiter | None = None
    enable_output: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.biases, Evk4Biases):
            raise ConfigurationError("Evk4Configuration.biases must be an Evk4Biases")
        object.__setattr__(self, "x_mask", mask_indices(self.x_mask, SENSOR_WIDTH, "x_mask"))
        object.__setattr__(self, "y_mask", mask_indices(self.y_mask, SENSOR_HEIGHT, "y_mask"))
        object.__setattr__(self, "pixel_mask", _pixels(self.pixel_mask))
        for name in ("mask_intersection_only", "enable_external_trigger", "enable_output"):
            _flag("Evk4Configuration", name, getattr(self, name))
        try:
            object.__setattr__(self, "clock", Clock(self.clock))
        except ValueError:
            raise ConfigurationError(
                f"Evk4Configuration.clock must be a Clock, not {self.clock!r}"
            ) from None
        if self.rate_limiter is not None and not isinstance(self.rate_limiter, RateLimiter):
            raise ConfigurationError("Evk4Configuration.rate_limiter must be a RateLimiter or None")


def pixel_mask_words(pixels: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    """The 64 DigitalMask words: slot j holds {x (bits 0..10), 719 − y (bits 16..25), enable
    (bit 31)} for the j-th pixel, 0 for an unused slot. The row is flipped as in ND
    (§3.13 item 11, unresolved [I])."""
    words = [0] * PIXEL_MASK_SLOTS
    for slot, (x, y) in enumerate(pixels):
        words[slot] = x | (SENSOR_HEIGHT - 1 - y) << 16 | DIGITAL_MASK_ENABLE
    return tuple(words)
