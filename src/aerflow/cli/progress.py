"""Progress on the terminal: a tqdm bar for finite sources, rate and elapsed time for live ones.

Shown only when stderr is a terminal, so pipes and logs stay clean.
"""

from __future__ import annotations

from typing import Any, TextIO

from ..pipeline import Progress

__all__ = ["ProgressBar"]


class ProgressBar:
    """A callable for :func:`aerflow.pipeline.run`'s ``progress`` argument."""

    def __init__(self, out: TextIO, live: bool) -> None:
        from tqdm import tqdm

        self._live = live
        self._bar: Any = tqdm(
            file=out,
            unit="B" if not live else " ev",
            unit_scale=True,
            unit_divisor=1024 if not live else 1000,
            dynamic_ncols=True,
            leave=False,
        )

    @classmethod
    def for_terminal(cls, out: TextIO, live: bool) -> ProgressBar | None:
        """A bar on ``out`` when it is a terminal, else None."""
        return cls(out, live) if out.isatty() else None

    def __call__(self, progress: Progress) -> None:
        bar = self._bar
        if not self._live and progress.total is not None and progress.done is not None:
            bar.total = progress.total
            bar.n = progress.done
        else:
            bar.n = progress.events
        bar.set_postfix_str(f"{progress.events:,} events, {progress.rate / 1e6:.2f} Mev/s")
        bar.refresh()

    def close(self) -> None:
        self._bar.close()
