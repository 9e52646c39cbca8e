"""A cheap, order-sensitive-enough checksum of decoded events.

The benchmark compares every decoder against the events aerflow tiled and wrote,
so the checksum must be computable from plain column arrays (any dtype) and,
for tiled files, derivable from the source recording alone (the 1 GiB file is
never held in memory).

Fields (all integers; sums wrap modulo 2**64 like unsigned 64-bit arithmetic):
    n        number of events
    t_first  timestamp of the first event in file order
    t_last   timestamp of the last event in file order
    sum_t    sum of t
    sum_x    sum of x
    sum_y    sum of y
    n_on     number of ON events
    sum_tx   sum of t * (x + 1), ties each timestamp to its own event's x
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

MASK64 = (1 << 64) - 1
_BLOCK = 1 << 16  # events per step: keeps temporaries (and so peak RSS) small


@dataclass(frozen=True)
class Checksum:
    n: int
    t_first: int
    t_last: int
    sum_t: int
    sum_x: int
    sum_y: int
    n_on: int
    sum_tx: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> Checksum:
        return cls(**{key: int(value) for key, value in data.items()})

    def differences(self, other: Checksum) -> list[str]:
        """Names of the fields that differ from ``other``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [key for key in mine if mine[key] != theirs[key]]


def _u64(values: npt.NDArray[np.generic]) -> npt.NDArray[np.uint64]:
    """Reinterpret or convert integer/bool/timedelta columns as uint64."""
    if values.dtype.kind == "m":
        values = values.view(np.int64)
    if values.dtype.itemsize == 8 and values.dtype.kind in "iu":
        return values.view(np.uint64)
    return values.astype(np.uint64)


def _wrapped_sum(values: npt.NDArray[np.uint64]) -> int:
    # numpy's uint64 addition wraps, which is exactly the modulo-2**64 sum.
    return int(np.sum(values, dtype=np.uint64))


class ChecksumAccumulator:
    """Builds a :class:`Checksum` from a sequence of column chunks."""

    def __init__(self) -> None:
        self.n = 0
        self.t_first = 0
        self.t_last = 0
        self.sum_t = 0
        self.sum_x = 0
        self.sum_y = 0
        self.n_on = 0
        self.sum_tx = 0

    def add(
        self,
        t: npt.NDArray[np.generic],
        x: npt.NDArray[np.generic],
        y: npt.NDArray[np.generic],
        on: npt.NDArray[np.bool_],
    ) -> None:
        for start in range(0, len(t), _BLOCK):
            stop = start + _BLOCK
            self._add_block(t[start:stop], x[start:stop], y[start:stop], on[start:stop])

    def _add_block(
        self,
        t: npt.NDArray[np.generic],
        x: npt.NDArray[np.generic],
        y: npt.NDArray[np.generic],
        on: npt.NDArray[np.bool_],
    ) -> None:
        t64, x64 = _u64(t), _u64(x)
        if self.n == 0:
            self.t_first = int(t64[0])
        self.t_last = int(t64[-1])
        self.n += len(t64)
        self.sum_t = (self.sum_t + _wrapped_sum(t64)) & MASK64
        self.sum_x = (self.sum_x + _wrapped_sum(x64)) & MASK64
        self.sum_y = (self.sum_y + _wrapped_sum(_u64(y))) & MASK64
        self.n_on += int(np.count_nonzero(on))
        weighted = t64 * (x64 + np.uint64(1))
        self.sum_tx = (self.sum_tx + _wrapped_sum(weighted)) & MASK64

    def result(self) -> Checksum:
        return Checksum(
            n=self.n,
            t_first=self.t_first,
            t_last=self.t_last,
            sum_t=self.sum_t,
            sum_x=self.sum_x,
            sum_y=self.sum_y,
            n_on=self.n_on,
            sum_tx=self.sum_tx,
        )


def tiled_checksum(source: Checksum, sum_x_plus_1: int, copies: int, shift: int) -> Checksum:
    """Checksum of ``copies`` back-to-back copies of a recording, copy k shifted by k * shift.

    ``sum_x_plus_1`` is the plain (unwrapped) sum of (x + 1) over the source, needed
    for ``sum_tx``: sum over k of sum((t + k*shift) * (x + 1)).
    """
    k_sum = copies * (copies - 1) // 2
    return Checksum(
        n=source.n * copies,
        t_first=source.t_first,
        t_last=source.t_last + (copies - 1) * shift,
        sum_t=(copies * source.sum_t + source.n * shift * k_sum) & MASK64,
        sum_x=(copies * source.sum_x) & MASK64,
        sum_y=(copies * source.sum_y) & MASK64,
        n_on=copies * source.n_on,
        sum_tx=(copies * source.sum_tx + shift * sum_x_plus_1 * k_sum) & MASK64,
    )
