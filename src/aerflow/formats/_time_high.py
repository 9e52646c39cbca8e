"""TIME_HIGH emission shared by the EVT 2.0 and EVT 2.1 encoders (34-bit clocks, 6-bit low part)."""

from __future__ import annotations

from typing import Any

from .._jit import njit

TIME_HIGH = 0x8
HIGH_MAX = (1 << 28) - 1
MAX_TIMESTAMP = HIGH_MAX << 6

# Encoder state slots.
STARTED, LOOP, HIGH = range(3)


@njit(nogil=True, cache=True, inline="always")
def needs_time_high(target: int, state: Any) -> bool:
    """Whether ``target`` (µs) needs TIME_HIGH headers first. Encoders test this before
    calling :func:`emit_time_high`, which costs far more than the test in the common case of
    an unchanged clock (about 20 against 400 Mev/s here)."""
    return bool(state[STARTED] == 0 or (target >> 6) != ((state[LOOP] << 28) | state[HIGH]))


@njit(nogil=True, cache=True)
def emit_time_high(target: int, loop_gap: int, state: Any, headers: Any, k: int) -> int:
    """Append TIME_HIGH headers that bring the decoder's clock to ``target`` (µs).

    A decoder counts a loop (adds 2**34 µs) when TIME_HIGH drops by ``loop_gap`` µs or more,
    so a wrap is announced by the largest TIME_HIGH followed by a small one. Returns the new
    length, or -1 when ``target`` lies too far back to be written.
    """
    target_loop = target >> 34
    target_high = (target >> 6) & HIGH_MAX
    if state[STARTED] == 0:
        first = target_high if target_loop == 0 else 0
        headers[k] = (TIME_HIGH << 28) | first
        k += 1
        state[STARTED] = 1
        state[LOOP] = 0
        state[HIGH] = first
    loop = state[LOOP]
    high = state[HIGH]
    if target_loop < loop:
        return -1
    while loop < target_loop:
        if high != HIGH_MAX:
            headers[k] = (TIME_HIGH << 28) | HIGH_MAX
            k += 1
            high = HIGH_MAX
        headers[k] = TIME_HIGH << 28
        k += 1
        high = 0
        loop += 1
    if high != target_high:
        if target_high < high and (high - target_high) << 6 >= loop_gap:
            return -1
        headers[k] = (TIME_HIGH << 28) | target_high
        k += 1
        high = target_high
    state[LOOP] = loop
    state[HIGH] = high
    return k
