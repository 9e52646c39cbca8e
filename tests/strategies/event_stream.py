"""Hypothesis strategies for Event Stream 2.0 (.es) files: generic, DVS, ATIS and color.

Each strategy draws a stream's events and then one of the byte encodings the specification
(neuromorphic-paris/event_stream ``README.md``, summarised in ``docs/formats/event-stream.md``)
permits for them: times as deltas split between *overflow* bytes and the event's
own field, *reset* bytes anywhere a reader is idle, and, for generic events, size fields with
more size bytes than needed (which the specification explicitly allows). Nothing comes from
aerflow's writer or from ``tests/reference``.

Rules followed:

* DVS: ``0xFF`` adds 127 µs, ``0xFE`` is a reset; event byte 0 is ``t[6..0] is_increase``
  with t < 127; then x and y as little-endian uint16.
* ATIS: ``0b111111xx`` with xx = 1..3 adds 63·xx µs (any mix of them adding up to the gap),
  ``0xFC`` is a reset; byte 0 is ``t[5..0] polarity is_tc`` with t < 63.
* color: ``0xFF`` adds 254 µs, ``0xFE`` is a reset; byte 0 is t < 254, then x, y, r, g, b.
* generic: as color for time; then size bytes ``s[6..0] is_last`` (0 on the last one,
  n = Σ s_i << 7i) and n data bytes.

Reset bytes are placed only between events (the idle state). The specification recommends
runs of several (so that a reader lost inside an event finds the idle state again); a reader
that never lost track treats each one as nothing, so runs of any length are drawn.

Left out: Asynchronous & Modular Display streams (type 3: aerflow does not read them),
versions other than 2.0.0 (a later minor version may add what a 2.0 reader cannot know),
coordinates outside the sensor, and trailing overflow bytes after the last event (they add
time to no event; whether a reader should report that time is not said).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "ATIS_MODES",
    "COLOR_DTYPE",
    "EVENTS_DTYPE",
    "EventStreamFile",
    "event_stream_files",
]

EVENTS_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
COLOR_DTYPE = np.dtype(
    [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
)
ATIS_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("is_tc", "?"), ("polarity", "?")])
ATIS_MODES = ("change", "exposure", "all")
_TYPE_CODES = {"generic": 0, "dvs": 1, "atis": 2, "color": 4}


@dataclass(frozen=True)
class EventStreamFile:
    """A generated .es file and what it holds, in file order.

    ``records``: DVS as :data:`EVENTS_DTYPE`, ATIS as :data:`ATIS_DTYPE` (``is_tc`` 0 for a
    change detection, 1 for a threshold crossing; ``polarity`` is is_increase or is_second),
    color as :data:`COLOR_DTYPE`; ``generic`` holds (t, payload) pairs of generic streams.
    """

    data: bytes
    stream_type: str
    width: int | None
    height: int | None
    records: np.ndarray
    generic: tuple[tuple[int, bytes], ...] = field(default=())

    def events(self, atis_events: str = "change") -> np.ndarray:
        """The records as polarity events, the way aerflow documents its mapping: DVS as they
        are; ATIS change detections (``"change"``), threshold crossings (``"exposure"``,
        on = is_second) or both (``"all"``), on = the polarity bit; color events with
        on = the colour is not black; generic streams none."""
        records = self.records
        if self.stream_type == "generic":
            return np.zeros(0, EVENTS_DTYPE)
        out = np.zeros(len(records), EVENTS_DTYPE)
        for name in ("t", "x", "y"):
            out[name] = records[name]
        if self.stream_type == "dvs":
            out["on"] = records["on"]
        elif self.stream_type == "color":
            out["on"] = (records["r"] | records["g"] | records["b"]) != 0
        else:
            out["on"] = records["polarity"]
            if atis_events == "change":
                out = out[~records["is_tc"]]
            elif atis_events == "exposure":
                out = out[records["is_tc"]]
        return out


def _times(rng: random.Random, n: int, regime: tuple[int, float]) -> list[int]:
    gap_max, p_long = regime
    t = 0
    out = []
    for _ in range(n):
        t += rng.randrange(1 << 10, 1 << 18) if rng.random() < p_long else rng.randint(0, gap_max)
        out.append(t)
    return out


def _idle_bytes(
    rng: random.Random, kind: str, gap: int, p_reset: float, p_split: float
) -> tuple[bytes, int]:
    """Bytes a writer may put before an event whose time is ``gap`` µs after the previous
    one: overflow bytes (and resets, anywhere among them) and the delta left for the event."""
    if kind == "dvs":
        overflows = [0xFF] * (gap // 127)
        left = gap % 127
        reset = 0xFE
    elif kind == "atis":
        units = gap // 63
        left = gap % 63
        overflows = []
        while units:
            # 0b111111xx adds xx * 63 µs: any split of the units into 1, 2 and 3 is a valid
            # encoding, the fewest bytes (all 3s) being only one of them.
            step = min(units, 3 if rng.random() >= p_split else rng.randint(1, 3))
            overflows.append(0xFC | step)
            units -= step
        reset = 0xFC
    else:
        overflows = [0xFF] * (gap // 254)
        left = gap % 254
        reset = 0xFE
    out = []
    for byte in overflows:
        while rng.random() < p_reset:
            out.append(reset)
        out.append(byte)
    while rng.random() < p_reset:
        out.append(reset)
    return bytes(out), left


def _size_bytes(rng: random.Random, n: int, p_long: float) -> bytes:
    """The size field: 7 bits per byte, least significant first, bit 0 set on all but the
    last; sometimes with extra all-zero groups, which the specification allows."""
    groups = []
    while True:
        groups.append(n & 0x7F)
        n >>= 7
        if not n:
            break
    while rng.random() < p_long:
        groups.append(0)
    return bytes((g << 1) | (1 if i < len(groups) - 1 else 0) for i, g in enumerate(groups))


@st.composite
def event_stream_files(
    draw: st.DrawFn, types: tuple[str, ...] = ("generic", "dvs", "atis", "color")
) -> EventStreamFile:
    """An Event Stream 2.0.0 file of one of ``types`` (see the module docstring)."""
    kind = draw(st.sampled_from(list(types)))
    rng = random.Random(draw(st.integers(0, 2**64 - 1)))
    n = draw(st.integers(0, 2000 if kind != "generic" else 200))
    regime = draw(
        st.tuples(st.sampled_from([0, 3, 62, 126, 253, 254, 2000]), st.sampled_from([0.0, 0.05]))
    )
    p_reset = draw(st.sampled_from([0.0, 0.0, 0.1, 0.6]))
    p_split = draw(st.sampled_from([0.0, 0.5]))
    width = height = None
    head = b"Event Stream" + bytes([2, 0, 0, _TYPE_CODES[kind]])
    if kind != "generic":
        width = draw(st.sampled_from([1, 2, 34, 304, 640, 1280, 65535]))
        height = draw(st.sampled_from([1, 3, 34, 240, 480, 720, 65535]))
        head += struct.pack("<HH", width, height)
    body = bytearray()
    rows: list[tuple[Any, ...]] = []
    generic: list[tuple[int, bytes]] = []
    previous = 0
    p_tc = rng.choice([0.0, 0.5, 1.0])
    for t in _times(rng, n, regime):
        idle, left = _idle_bytes(rng, kind, t - previous, p_reset, p_split)
        previous = t
        body += idle
        if kind == "generic":
            payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 127, 128, 300])))
            body.append(left)
            body += _size_bytes(rng, len(payload), 0.3) + payload
            generic.append((t, payload))
            continue
        x, y = rng.randrange(width or 1), rng.randrange(height or 1)
        coordinates = struct.pack("<HH", x, y)
        if kind == "dvs":
            on = rng.random() < 0.5
            body.append(left << 1 | int(on))
            rows.append((t, x, y, on))
        elif kind == "atis":
            is_tc, polarity = rng.random() < p_tc, rng.random() < 0.5
            body.append(left << 2 | int(polarity) << 1 | int(is_tc))
            rows.append((t, x, y, is_tc, polarity))
        else:
            r, g, b = (rng.choice([0, 0, rng.randrange(256)]) for _ in range(3))
            body.append(left)
            coordinates += bytes([r, g, b])
            rows.append((t, x, y, r, g, b))
        body += coordinates
    while rng.random() < p_reset:  # resets after the last event, where a reader is idle
        body.append(0xFC if kind == "atis" else 0xFE)
    dtype = {"dvs": EVENTS_DTYPE, "atis": ATIS_DTYPE, "color": COLOR_DTYPE}.get(kind, EVENTS_DTYPE)
    records = np.zeros(len(rows), dtype)
    for i, row in enumerate(rows):
        records[i] = row
    return EventStreamFile(
        data=head + bytes(body),
        stream_type=kind,
        width=width,
        height=height,
        records=records,
        generic=tuple(generic),
    )
