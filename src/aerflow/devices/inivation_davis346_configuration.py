"""The DAVIS346's configuration: coarse/fine biases, region of interest, pixel, activity, skip
and polarity filters, APS exposure and frame interval (all of them change live)."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, fields

from ..errors import ConfigurationError
from ._davis346_registers import (
    DVS_BACKGROUND_ACTIVITY,
    DVS_BACKGROUND_ACTIVITY_TIME,
    DVS_POLARITY_FLATTEN,
    DVS_POLARITY_SUPPRESS,
    DVS_POLARITY_SUPPRESS_TYPE,
    DVS_REFRACTORY_PERIOD,
    DVS_REFRACTORY_PERIOD_TIME,
    FILTER_TIME_UNIT_US,
    HEIGHT,
    PIXEL_FILTER_SLOTS,
    WIDTH,
)
from ._inivation import DEVICE, Write

__all__ = [
    "COARSE_CURRENTS_PA",
    "ActivityFilter",
    "Davis346Biases",
    "Davis346Configuration",
    "PolarityFilter",
    "RegionOfInterest",
    "bias_register",
    "coarse_fine",
]

# --------------------------------------------------------------------------------------------
# Coarse/fine biases

COARSE_CURRENTS_PA = (11, 94, 756, 6054, 48437, 387500, 3_100_000, 24_800_000)
"""Current (pA) of each coarse setting at fine 255."""
BIAS_INDEX_MAX = 2040

FLAGS_N_TYPE = 0b1111
"""Enabled, N-type, normal type, normal current level."""
FLAGS_P_TYPE = 0b1101
"""Enabled, P-type, normal type, normal current level."""
FLAGS_N_TYPE_DISABLED = 0b1110
"""N-type, disabled (``padfollbn``)."""


@functools.cache
def _coarse_fine_table() -> tuple[tuple[int, int], ...]:
    pairs = sorted(
        ((coarse, fine) for coarse in range(8) for fine in range(1, 256)),
        key=lambda pair: (COARSE_CURRENTS_PA[pair[0]] * pair[1], pair[0]),
    )
    return ((0, 0), *pairs)


def coarse_fine(index: int) -> tuple[int, int]:
    """The (coarse, fine) pair of a bias value 0..2040, ordered by current (monotonic):
    (0, 0) first, then every pair with fine ≥ 1 by coarse current × fine, the smaller coarse
    first on ties. Values above 2040 are clamped."""
    table = _coarse_fine_table()
    return table[min(max(int(index), 0), BIAS_INDEX_MAX)]


def bias_register(index: int, flags: int) -> int:
    """The register value of a coarse/fine bias: flags | fine << 4 | coarse << 12."""
    coarse, fine = coarse_fine(index)
    return flags | fine << 4 | coarse << 12


_BIASES: tuple[tuple[str, int, int], ...] = (
    ("localbufbn", 8, FLAGS_N_TYPE),
    ("padfollbn", 9, FLAGS_N_TYPE_DISABLED),
    ("diffbn", 10, FLAGS_N_TYPE),
    ("onbn", 11, FLAGS_N_TYPE),
    ("offbn", 12, FLAGS_N_TYPE),
    ("pixinvbn", 13, FLAGS_N_TYPE),
    ("prbp", 14, FLAGS_P_TYPE),
    ("prsfbp", 15, FLAGS_P_TYPE),
    ("refrbp", 16, FLAGS_P_TYPE),
    ("readoutbufbp", 17, FLAGS_P_TYPE),
    ("apsrosfbn", 18, FLAGS_N_TYPE),
    ("adccompbp", 19, FLAGS_P_TYPE),
    ("colsellowbn", 20, FLAGS_N_TYPE),
    ("dacbufbp", 21, FLAGS_P_TYPE),
    ("lcoltimeoutbn", 22, FLAGS_N_TYPE),
    ("aepdbn", 23, FLAGS_N_TYPE),
    ("aepuxbp", 24, FLAGS_P_TYPE),
    ("aepuybp", 25, FLAGS_P_TYPE),
    ("ifrefrbn", 26, FLAGS_N_TYPE),
    ("ifthrbn", 27, FLAGS_N_TYPE),
    ("biasbuffer", 34, FLAGS_N_TYPE),
)
"""(field, chip parameter, flags) of every coarse/fine bias, in the order they are written."""


@dataclass(frozen=True)
class Davis346Biases:
    """Coarse/fine biases as values 0..2040 (a monotonic current scale, see
    :func:`coarse_fine`). The defaults are libcaer's DAVIS346 defaults."""

    localbufbn: int = 1461
    padfollbn: int = 2000
    diffbn: int = 1063
    onbn: int = 1564
    offbn: int = 583
    pixinvbn: int = 1691
    prbp: int = 575
    prsfbp: int = 153
    refrbp: int = 993
    readoutbufbp: int = 1457
    apsrosfbn: int = 1776
    adccompbp: int = 1202
    colsellowbn: int = 1
    dacbufbp: int = 1597
    lcoltimeoutbn: int = 1330
    aepdbn: int = 1632
    aepuxbp: int = 1110
    aepuybp: int = 1937
    ifrefrbn: int = 1564
    ifthrbn: int = 1564
    biasbuffer: int = 1563

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"DAVIS346 bias {f.name} must be an int, not {value!r}")
            if not 0 <= value <= BIAS_INDEX_MAX:
                raise ConfigurationError(
                    f"DAVIS346 bias {f.name} must lie in [0, {BIAS_INDEX_MAX}], not {value}"
                )

    def registers(self) -> list[Write]:
        """(module, parameter, value) of every bias, in writing order."""
        return [
            (DEVICE, parameter, bias_register(getattr(self, name), flags))
            for name, parameter, flags in _BIASES
        ]


@dataclass(frozen=True)
class RegionOfInterest:
    """The pixels kept (DVS ROI filter) and read (APS window): a rectangle in sensor
    coordinates."""

    left: int = 0
    top: int = 0
    width: int = WIDTH
    height: int = HEIGHT

    def __post_init__(self) -> None:
        for name in ("left", "top", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"region_of_interest.{name} must be an int")
        if self.left < 0 or self.top < 0 or self.width < 1 or self.height < 1:
            raise ConfigurationError("region_of_interest needs left, top ≥ 0 and width, height ≥ 1")
        if self.left + self.width > WIDTH or self.top + self.height > HEIGHT:
            raise ConfigurationError(
                f"region_of_interest {self.width}×{self.height} at ({self.left}, {self.top}) "
                f"does not fit the {WIDTH}×{HEIGHT} sensor"
            )

    @property
    def right(self) -> int:
        """The last column (inclusive)."""
        return self.left + self.width - 1

    @property
    def bottom(self) -> int:
        """The last row (inclusive)."""
        return self.top + self.height - 1


def _filter_time(name: str, microseconds: int) -> int:
    if isinstance(microseconds, bool) or not isinstance(microseconds, int):
        raise ConfigurationError(f"activity_filter.{name} must be an int (µs)")
    if microseconds < 0 or microseconds % FILTER_TIME_UNIT_US or microseconds > 0xFFFFFFFF * 250:
        raise ConfigurationError(
            f"activity_filter.{name} must be a non-negative multiple of {FILTER_TIME_UNIT_US} µs, "
            f"not {microseconds}"
        )
    return microseconds // FILTER_TIME_UNIT_US


@dataclass(frozen=True)
class ActivityFilter:
    """The FPGA's background-activity filter (drops events with no recent neighbour within
    ``mask_isolated_time_us``) and refractory filter. Times are multiples of 250 µs."""

    mask_isolated: bool = True
    mask_isolated_time_us: int = 2000
    refractory_period: bool = False
    refractory_period_time_us: int = 250

    def __post_init__(self) -> None:
        for name in ("mask_isolated", "refractory_period"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"activity_filter.{name} must be a bool")
        _filter_time("mask_isolated_time_us", self.mask_isolated_time_us)
        _filter_time("refractory_period_time_us", self.refractory_period_time_us)

    def registers(self) -> list[Write]:
        return [
            (*DVS_BACKGROUND_ACTIVITY, int(self.mask_isolated)),
            (*DVS_BACKGROUND_ACTIVITY_TIME, self.mask_isolated_time_us // FILTER_TIME_UNIT_US),
            (*DVS_REFRACTORY_PERIOD, int(self.refractory_period)),
            (*DVS_REFRACTORY_PERIOD_TIME, self.refractory_period_time_us // FILTER_TIME_UNIT_US),
        ]


class PolarityFilter(enum.Enum):
    """The FPGA's polarity filter."""

    DISABLED = "disabled"
    FLATTEN = "flatten"
    """Every event becomes OFF."""
    MASK_ON = "mask_on"
    """ON events are dropped (the rest flattened)."""
    MASK_OFF = "mask_off"
    """OFF events are dropped."""
    MASK_OFF_FLATTEN = "mask_off_flatten"
    """OFF events are dropped and the ON events flattened."""

    def registers(self) -> list[Write]:
        flatten = self in (PolarityFilter.FLATTEN, PolarityFilter.MASK_OFF_FLATTEN)
        suppress = self in (
            PolarityFilter.MASK_ON,
            PolarityFilter.MASK_OFF,
            PolarityFilter.MASK_OFF_FLATTEN,
        )
        return [
            (*DVS_POLARITY_FLATTEN, int(flatten)),
            (*DVS_POLARITY_SUPPRESS, int(suppress)),
            (*DVS_POLARITY_SUPPRESS_TYPE, int(self is PolarityFilter.MASK_ON)),
        ]


@dataclass(frozen=True)
class Davis346Configuration:
    """Everything the DAVIS346 driver sets; every field changes live.

    ``pixel_filter`` lists up to 8 (x, y) pixels whose events the FPGA drops (hot pixels).
    ``skip_events_every`` > 0 makes the FPGA drop events, keeping one in that many (0: off).
    ``exposure_us`` and ``frame_interval_us`` time the APS frames.
    """

    biases: Davis346Biases = field(default_factory=Davis346Biases)
    region_of_interest: RegionOfInterest = field(default_factory=RegionOfInterest)
    pixel_filter: tuple[tuple[int, int], ...] = ()
    activity_filter: ActivityFilter = field(default_factory=ActivityFilter)
    skip_events_every: int = 0
    polarity_filter: PolarityFilter = PolarityFilter.DISABLED
    exposure_us: int = 4000
    frame_interval_us: int = 40000

    def __post_init__(self) -> None:
        for name, kind in (
            ("biases", Davis346Biases),
            ("region_of_interest", RegionOfInterest),
            ("activity_filter", ActivityFilter),
            ("polarity_filter", PolarityFilter),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ConfigurationError(f"{name} must be a {kind.__name__}")
        try:
            pixels = tuple(tuple(pixel) for pixel in self.pixel_filter)
        except TypeError:
            raise ConfigurationError("pixel_filter must be a sequence of (x, y) pairs") from None
        if len(pixels) > PIXEL_FILTER_SLOTS:
            raise ConfigurationError(
                f"pixel_filter takes at most {PIXEL_FILTER_SLOTS} pixels, not {len(pixels)}"
            )
        for pixel in pixels:
            if (
                len(pixel) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in pixel)
                or not (0 <= pixel[0] < WIDTH and 0 <= pixel[1] < HEIGHT)
            ):
                raise ConfigurationError(
                    f"pixel_filter entries are (x, y) inside {WIDTH}×{HEIGHT}, not {pixel!r}"
                )
        object.__setattr__(self, "pixel_filter", pixels)
        for name, low in (("skip_events_every", 0), ("exposure_us", 1), ("frame_interval_us", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value:
                raise ConfigurationError(f"{name} must be an integer ≥ {low}, not {value!r}")
            if value > 0xFFFFFFFF:
                raise ConfigurationError(f"{name} must fit 32 bits, not {value}")
