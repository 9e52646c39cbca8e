"""The word stream of the emulated iniVation cameras: events, blocks of words placed at a time
(trigger codes, IMU samples, APS frames) and timestamp wraps, written as the DVXplorer and the
DAVIS346 send them (usb-devices.md §3.3–3.4).

A timestamp word (bit 15) carries the low 15 bits of the time in µs and a wrap word (0x7000)
adds 0x8000 µs. DVXplorer events are column words (type 1), row-group words (type 4) and
8-pixel masks (types 2 and 3); DAVIS events are row words (type 1) and column words (type 2
OFF, 3 ON).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._jit import njit
from .inivation_registers import FLIP_X, FLIP_Y, INVERT_XY

__all__ = [
    "CHECKPOINT_SHIFT",
    "WRAP_US",
    "big_endian",
    "encode_words",
    "frame_words",
    "imu_raw",
    "imu_words",
]

WRAP_US = 0x8000
"""The time a wrap word adds (the timestamp words' 15 bits)."""
CHECKPOINT_SHIFT = 9
"""One time checkpoint every 2**9 words (1 KiB)."""


@njit(nogil=True, cache=True)
def _put(out: Any, k: int, word: int, checkpoints: Any, now: int) -> int:
    out[k] = word
    checkpoints[k >> CHECKPOINT_SHIFT] = now
    return k + 1


@njit(nogil=True, cache=True)
def _encode(
    davis: bool,
    t: Any,
    x: Any,
    y: Any,
    on: Any,
    insert_t: Any,
    insert_start: Any,
    insert_words: Any,
    end: int,
    dvs_invert: bool,
    out: Any,
    checkpoints: Any,
) -> int:
    """Encode sorted events and pre-encoded blocks of words (``insert_words[insert_start[i]:
    insert_start[i + 1]]`` at time ``insert_t[i]``, placed before events of the same time)
    into ``out``; then wrap the time up to ``end``. Returns the number of words."""
    n = t.size
    inserts = insert_t.size
    k = 0
    now = 0
    offset = 0
    last_column = -1
    last_group_word = -1
    last_row = -1
    i = 0
    j = 0
    while i < n or j < inserts or now < end:
        if j < inserts and (i >= n or insert_t[j] <= t[i]):
            target = np.int64(insert_t[j])
        elif i < n:
            target = np.int64(t[i])
        else:
            target = end
        while (target >> 15) > (offset >> 15):
            offset += WRAP_US
            if offset > now:
                now = offset
            k = _put(out, k, 0x7000, checkpoints, now)
        if target != now:
            now = target
            k = _put(out, k, 0x8000 | (target & 0x7FFF), checkpoints, now)
        if j < inserts and (i >= n or insert_t[j] <= t[i]):
            for w in range(insert_start[j], insert_start[j + 1]):
                k = _put(out, k, insert_words[w], checkpoints, now)
            j += 1
            continue
        if i >= n:
            continue
        if davis:
            row = np.int64(x[i]) if dvs_invert else np.int64(y[i])
            column = np.int64(y[i]) if dvs_invert else np.int64(x[i])
            if row != last_row:
                k = _put(out, k, 0x1000 | row, checkpoints, now)
                last_row = row
            k = _put(out, k, (0x3000 if on[i] else 0x2000) | column, checkpoints, now)
            i += 1
        else:
            column = np.int64(x[i])
            group = np.int64(y[i]) >> 3
            polarity = on[i]
            mask = 0
            e = i
            while (
                e < n
                and t[e] == t[i]
                and x[e] == x[i]
                and (np.int64(y[e]) >> 3) == group
                and on[e] == polarity
                and (mask >> (np.int64(y[e]) & 7)) & 1 == 0
            ):
                mask |= 1 << (np.int64(y[e]) & 7)
                e += 1
            if column != last_column:
                k = _put(out, k, 0x1000 | column, checkpoints, now)
                last_column = column
            # Even groups are addressed as group 0 (type 3), odd ones as group 1 (type 2),
            # through a positive or a negative distance.
            if group % 2 == 0:
                group_word = 0x4000 | group
                kind = 0x3000
            elif group % 4 == 1 or group + 1 >= 60:
                group_word = 0x4000 | (1 << 6) | (group - 1)
                kind = 0x2000
            else:
                group_word = 0x4000 | (1 << 11) | (1 << 6) | (group + 1)
                kind = 0x2000
            if group_word != last_group_word:
                k = _put(out, k, group_word, checkpoints, now)
                last_group_word = group_word
            k = _put(out, k, kind | (0 if polarity else 0x100) | mask, checkpoints, now)
            i = e
    return k


def encode_words(
    events: npt.NDArray[Any],
    inserts: list[tuple[int, npt.NDArray[np.uint16]]],
    *,
    davis: bool,
    end: int,
    dvs_invert: bool = False,
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]:
    """The word stream of ``events`` (any order; re-sorted in time) and ``inserts`` (blocks
    of words placed at a time), then timestamp wraps up to ``end`` µs. Returns the words and
    the time reached at the end of every 512-word block."""
    events = np.asarray(events)
    t = events["t"].astype(np.int64)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    on = events["on"].astype(np.bool_)
    if davis:
        row = x if dvs_invert else y
        order = np.lexsort((row, t))
    else:
        order = np.lexsort((y, on, y >> 3, x, t))
    t, x, y, on = t[order], x[order], y[order], on[order]
    inserts = sorted(inserts, key=lambda item: item[0])
    insert_t = np.array([time for time, _ in inserts], np.int64)
    lengths = np.array([len(words) for _, words in inserts], np.int64)
    insert_start = np.zeros(len(inserts) + 1, np.int64)
    np.cumsum(lengths, out=insert_start[1:])
    insert_words = (
        np.concatenate([words for _, words in inserts]).astype(np.uint16)
        if inserts
        else np.empty(0, np.uint16)
    )
    last = max(int(t[-1]) if len(t) else 0, int(insert_t[-1]) if len(insert_t) else 0, end)
    capacity = (3 if davis else 4) * len(t) + 2 * len(inserts) + int(insert_start[-1])
    capacity += (last >> 15) + 2
    out = np.empty(capacity, np.uint16)
    checkpoints = np.zeros((capacity >> CHECKPOINT_SHIFT) + 1, np.int64)
    k = _encode(
        davis,
        t,
        x,
        y,
        on,
        insert_t,
        insert_start,
        insert_words,
        int(end),
        dvs_invert,
        out,
        checkpoints,
    )
    return out[:k], checkpoints[: ((k - 1) >> CHECKPOINT_SHIFT) + 1 if k else 0]


def imu_words(config: int, data: list[int]) -> npt.NDArray[np.uint16]:
    """An IMU block: start code, config byte, data bytes, end code."""
    words = [0x0005, 0x5300 | (config & 0xFF), *(0x5000 | (b & 0xFF) for b in data), 0x0007]
    return np.array(words, np.uint16)


def frame_words(
    image: npt.NDArray[Any], orientation: int, start_code: int, start: int, exposure: int
) -> list[tuple[int, npt.NDArray[np.uint16]]]:
    """The two blocks of one APS frame of ``image`` (10-bit values, the window's [y, x]):
    at ``start`` the frame start, reset reads and exposure start; at ``start + exposure`` the
    exposure end, signal reads and frame end. Reads are column by column in the APS's own
    order, undoing ``orientation`` so that the decoder rebuilds ``image``."""
    height, width = image.shape
    invert = bool(orientation & INVERT_XY)
    rows, columns = (width, height) if invert else (height, width)
    r = np.arange(rows)
    c = np.arange(columns)
    r = rows - 1 - r if orientation & FLIP_Y else r
    c = columns - 1 - c if orientation & FLIP_X else c
    rr, cc = np.meshgrid(r, c)  # [column, row]
    values = image[cc, rr] if invert else image[rr, cc]
    values = np.clip(values, 0, 1023)
    reset = np.full_like(values, 1023)
    signal = reset - values

    def reads(code: int, samples: npt.NDArray[Any]) -> npt.NDArray[np.uint16]:
        block = np.empty((columns, rows + 2), np.uint16)
        block[:, 0] = code
        block[:, 1:-1] = 0x4000 | samples
        block[:, -1] = 13
        return block.reshape(-1)

    first = np.concatenate([[start_code], reads(11, reset), [14]]).astype(np.uint16)
    second = np.concatenate([[15], reads(12, signal), [10]]).astype(np.uint16)
    return [(start, first), (start + exposure, second)]


def imu_raw(values: npt.NDArray[Any], scale: float) -> npt.NDArray[np.int64]:
    """IMU values (g, °/s) as the signed 16-bit counts of a ``scale`` full scale."""
    clean = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(clean / scale * 32768.0), -32768, 32767).astype(np.int64)


def big_endian(value: int) -> list[int]:
    """The two bytes of a 16-bit value, most significant first (IMU data bytes)."""
    value &= 0xFFFF
    return [value >> 8, value & 0xFF]
