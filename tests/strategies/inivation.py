"""Hypothesis strategies for iniVation AEDAT 1.0 / 2.0, 3.0 / 3.1 and 4.0 files.

Each strategy draws what a file holds (events, triggers, IMU samples, frames) and then one of
the many byte encodings the format permits for it, so the expected decode is known without
running any decoder. The bytes are put together here from the format descriptions
(``docs/formats/aedat2.md``, ``aedat3.md``, ``aedat4.md``, iniVation's "AEDAT file formats"
page and the DV FlatBuffers schemas): nothing comes from aerflow's writers or from
``tests/reference``.

Where a format leaves the mapping to the reader (trigger channels, time after a timestamp
reset), the expected values follow aerflow's documented conventions, stated at each place.
What a format leaves ambiguous is not generated; each omission is noted where it applies.

Bulk content (event fields, gaps, layout choices) comes from a ``random.Random`` seeded by
Hypothesis, while the knobs that shape a file (how many events, which encodings, how often
each rare case happens) are drawn by Hypothesis itself, so shrinking still simplifies both.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lz4.frame
import numpy as np
import zstandard
from hypothesis import strategies as st

__all__ = [
    "EVENTS_DTYPE",
    "IMU_DTYPE",
    "TRIGGERS_DTYPE",
    "ExpectedFrame",
    "InivationFile",
    "aedat2_files",
    "aedat3_files",
    "aedat4_files",
]

EVENTS_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TRIGGERS_DTYPE = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])
IMU_DTYPE = np.dtype(
    [
        ("t", "<u8"),
        ("temperature", "<f4"),
        ("accelerometer", "<f4", (3,)),
        ("gyroscope", "<f4", (3,)),
        ("magnetometer", "<f4", (3,)),
    ]
)


@dataclass(frozen=True)
class ExpectedFrame:
    """A frame as its packet stores it: times in µs, position, pixels ``(H, W[, C])``
    (AEDAT 4: uint8, ``format`` DV's frame format; AEDAT 3: uint16, ``format`` the channel
    count, ``begin_t`` = ``t`` the start of frame capture)."""

    t: int
    begin_t: int
    end_t: int
    exposure_begin_t: int
    exposure_end_t: int
    format: int
    x: int
    y: int
    pixels: np.ndarray


@dataclass(frozen=True)
class InivationFile:
    """A generated file and what any correct decoder must find in it.

    ``options`` are the reader options a file needs because the format leaves them to the
    reader (AEDAT 1.0 without a version line, AEDAT 2.0 without a chip line). ``layout``,
    ``version``, ``width`` and ``height`` say how the file was built. ``by_source`` maps an
    AEDAT 3 source ID to the (events, triggers, IMU) of that source alone.
    """

    data: bytes
    suffix: str
    version: str
    events: np.ndarray
    triggers: np.ndarray
    imu: np.ndarray = field(default_factory=lambda: np.zeros(0, IMU_DTYPE))
    frames: tuple[ExpectedFrame, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    layout: str = ""
    width: int | None = None
    height: int | None = None
    aps_words: int = 0
    imu_words: int = 0
    by_source: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    streams: dict[int, str] = field(default_factory=dict)
    """AEDAT 4: stream ID -> type identifier, for every stream of the description."""
    event_stream: int | None = None
    """AEDAT 4: the ID of the event stream that holds ``events`` (the lowest EVTS ID)."""
    packets: tuple[tuple[int, int], ...] = ()
    """AEDAT 4: (stream ID, element count) of every packet, in file order."""


def _seeded(draw: st.DrawFn) -> random.Random:
    return random.Random(draw(st.integers(0, 2**64 - 1)))


def _array(rows: Sequence[tuple[Any, ...]], dtype: np.dtype[Any]) -> np.ndarray:
    out = np.zeros(len(rows), dtype)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def _header_lines(lines: Sequence[str]) -> bytes:
    """AEDAT header lines: '#', the text, CRLF (the common header rule of every version)."""
    return b"".join(b"#" + line.encode("latin-1") + b"\r\n" for line in lines)


# --------------------------------------------------------------------------- #
# AEDAT 1.0 / 2.0 (jAER)                                                      #
# --------------------------------------------------------------------------- #

# jAER chip classes whose address layout the spec gives, with their pixel arrays; the reader
# option name (aerflow's ``camera``) is the key. The short names are what MATLAB's
# saveaerdat.m writes after "AEChip:" instead of a Java class.
_JAER_CHIPS: dict[str, tuple[str, int, int, str, str]] = {
    "dvs128": ("dvs128", 128, 128, "ch.unizh.ini.jaer.chip.retina.DVS128", "DVS128"),
    "davis240": ("davis", 240, 180, "eu.seebetter.ini.chips.davis.DAVIS240C", "DAVIS240C"),
    "davis346": ("davis", 346, 260, "eu.seebetter.ini.chips.davis.Davis346B", "DAVIS346B"),
    "davis640": ("davis", 640, 480, "eu.seebetter.ini.chips.davis.Davis640", "DAVIS640"),
}
_HARDWARE_INTERFACES = {"dvs128": "DVS128-V1 0298", "davis": "DAVIS FX3 0002-INI"}
_PREFERENCES = (
    "Start of Preferences for this AEChip",
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    '<!DOCTYPE preferences SYSTEM "http://java.sun.com/dtd/preferences.dtd">',
    '<preferences EXTERNAL_XML_VERSION="1.0">',
    '  <root type="user">',
    "    <map/>",
    '    <node name="ch">',
    '      <entry key="DAVIS240C.AddressedIPotCF.ApsROSFBn.LowCurrent" value="false"/>',
    '      <entry key="bias.Pr" value="2: 87"/>',
    "    </node>",
    "  </root>",
    "</preferences>",
    "End of Preferences for this AEChip",
)


def _jaer_times(rng: random.Random, n: int, regime: tuple[int, float, float]) -> list[int]:
    """True (unwrapped) record times: non-negative, consecutive gaps below 2**31 µs so that the
    32-bit counter's wraps stay recoverable, and (where ``regime`` allows) small jumps back,
    which the spec says old files have and readers keep, but never back across a multiple of
    2**32 (a jump back over a wrap cannot be told from a wrap)."""
    gap_max, p_huge, p_back = regime
    if n == 0:
        return []
    first = rng.choice([0, rng.randrange(1 << 16), rng.randrange(1 << 32), (1 << 32) - 1 - gap_max])
    times = [max(first, 0)]
    for _ in range(n - 1):
        t = times[-1]
        roll = rng.random()
        if roll < p_huge:
            t += rng.randrange(1 << 30, 1 << 31)
        elif roll < p_huge + p_back:
            back = t - rng.randrange(1, 1000)
            if back >= 0 and back >> 32 == t >> 32:
                t = back
        else:
            t += rng.randint(0, gap_max)
        times.append(t)
    return times


@st.composite
def aedat2_files(draw: st.DrawFn, versions: Sequence[str] = ("1.0", "2.0")) -> InivationFile:
    """An AEDAT 1.0 or 2.0 file: '#' header lines in the variants jAER and MATLAB tools write,
    then big-endian (address, timestamp) records in the DVS128 or DAVIS layout.

    DVS128 addresses: bit 15 external event (its other bits left random: nothing else is
    defined for it), bits 14-8 y, 7-1 x, 0 polarity; AEDAT 2.0 leaves bits 31-16 zero.
    DAVIS addresses: DVS events and external events (subtype 01 or 11), APS reset/signal
    reads and 7-word IMU samples (bit 31 set), which readers pass over: their counts are in
    ``aps_words`` / ``imu_words``. Bits 9-0 are zero except for APS reads (the spec says so).
    External events are expected as triggers (t, 0, rising) as aerflow maps them: the format
    records no channel or edge. Timestamps are unsigned 32-bit values (a jAER int32 that
    overflows is the same bits), unwrapped: see :func:`_jaer_times`.

    Left out: other chips (Tmpdiff128, cDAVIS, ...; their layouts are not in the spec),
    addresses outside the chip's pixel array, and the APS subtype 10 ("unused").
    """
    version = draw(st.sampled_from(list(versions)))
    chip = "dvs128" if version == "1.0" else draw(st.sampled_from(sorted(_JAER_CHIPS)))
    layout, width, height, chip_class, short_name = _JAER_CHIPS[chip]
    rng = _seeded(draw)
    n = draw(st.integers(0, 1500))
    p_external = draw(st.sampled_from([0.0, 0.02, 0.3]))
    p_aps, p_imu = (0.0, 0.0)
    if layout == "davis":
        p_aps = draw(st.sampled_from([0.0, 0.05, 0.3]))
        p_imu = draw(st.sampled_from([0.0, 0.02]))
    regime = draw(
        st.tuples(
            st.sampled_from([0, 3, 1000, 1 << 24]),
            st.sampled_from([0.0, 0.0, 0.01, 0.2]),
            st.sampled_from([0.0, 0.0, 0.05]),
        )
    )

    slots: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if roll < p_external:
            slots.append("external")
        elif roll < p_external + p_aps:
            slots.append("aps")
        elif roll < p_external + p_aps + p_imu:
            slots.append("imu")
        else:
            slots.append("event")
    # The seven words of an IMU sample share one time.
    kinds: list[str] = []
    times: list[int] = []
    for kind, t in zip(slots, _jaer_times(rng, len(slots), regime), strict=True):
        copies = 7 if kind == "imu" else 1
        kinds += [kind] * copies
        times += [t] * copies

    addresses: list[int] = []
    events: list[tuple[int, int, int, bool]] = []
    triggers: list[tuple[int, int, bool]] = []
    aps = imu = 0
    for kind, t in zip(kinds, times, strict=True):
        x, y, on = rng.randrange(width), rng.randrange(height), rng.random() < 0.5
        if layout == "dvs128":
            if kind == "external":
                address = 0x8000 | rng.randrange(1 << 15)
                triggers.append((t, 0, True))
            else:
                address = y << 8 | x << 1 | int(on)
                events.append((t, x, y, on))
        elif kind == "event":
            address = y << 22 | x << 12 | (0b10 if on else 0b00) << 10
            events.append((t, x, y, on))
        elif kind == "external":
            subtype = rng.choice([0b01, 0b11])
            address = rng.randrange(1 << 9) << 22 | rng.randrange(1 << 10) << 12 | subtype << 10
            triggers.append((t, 0, True))
        elif kind == "aps":
            subtype = rng.choice([0b00, 0b01])
            address = 1 << 31 | y << 22 | x << 12 | subtype << 10 | rng.randrange(1 << 10)
            aps += 1
        else:
            address = 1 << 31 | (imu % 7) << 28 | rng.randrange(1 << 16) << 12 | 0b11 << 10
            imu += 1
        addresses.append(address)

    lines: list[str] = []
    options: dict[str, Any] = {}
    if version == "2.0" or draw(st.booleans()):
        lines.append(f"!AER-DAT{version}")
    else:
        options["version"] = "1.0"  # no version line: the spec says 1.0, aerflow wants it said
    record_text = "int32 address" if version == "2.0" else "int16 address"
    size_text = "8 bytes" if version == "2.0" else "6 bytes"
    comments = [
        " This is a raw AE data file - do not edit",
        f" Data format is {record_text}, int32 timestamp ({size_text} total), repeated for "
        "each event",
        " Timestamps tick is 1 us",
        " created Fri Apr 15 09:54:36 PDT 2016",
        "",
        # Informative text is free: a tab, and a local date with a UTF-8 'ä' (bytes C3 A4).
        " created\tMi. M\xc3\xa4r. 16 09:54:36 MEZ 2016",
    ]
    lines += [line for line in comments if draw(st.booleans())]
    if draw(st.booleans()):
        lines.append(f" HardwareInterface: {_HARDWARE_INTERFACES[layout]}")
    chip_line = draw(st.sampled_from(["class", "short", "none"]))
    if chip_line == "class":
        lines.append(f" AEChip: {chip_class}")
    elif chip_line == "short":
        lines.append(f" AEChip: {short_name}")
    elif version == "2.0":
        options["camera"] = chip  # no chip line: the layout must come from the reader
    if draw(st.booleans()):
        lines += _PREFERENCES
    if draw(st.booleans()):
        lines.append(" Prefs-File: recording-prefs.xml")
    # jAER ends its header with this line (MATLAB's saveaerdat.m writes the lower-case "of");
    # only with it may the first record begin with '#' (0x23), which otherwise reads as
    # another header line (the ambiguity the spec warns of for AEDAT 3.0 headers).
    terminator = draw(st.sampled_from([None, "End Of ASCII Header", " End of ASCII Header"]))
    if terminator is not None:
        lines.append(terminator)

    if addresses and terminator is None:
        first_byte = addresses[0] >> (24 if version == "2.0" else 8) & 0xFF
        if first_byte == 0x23:  # only a DVS event or a DAVIS external event can: move its row
            if kinds[0] == "event":
                t, x, _, on = events[0]
                events[0] = (t, x, 0, on)
            addresses[0] &= ~(0x1FF << 22 if layout == "davis" else 0x7F << 8)
    if version == "2.0":
        records = np.zeros(len(addresses), [("a", ">u4"), ("t", ">u4")])
    else:
        records = np.zeros(len(addresses), [("a", ">u2"), ("t", ">u4")])
    records["a"] = addresses
    records["t"] = [t & 0xFFFFFFFF for t in times]
    return InivationFile(
        data=_header_lines(lines) + records.tobytes(),
        suffix=".aedat",
        version=version,
        events=_array(events, EVENTS_DTYPE),
        triggers=_array(triggers, TRIGGERS_DTYPE),
        options=options,
        layout=layout,
        width=width,
        height=height,
        aps_words=aps,
        imu_words=imu,
    )


# --------------------------------------------------------------------------- #
# AEDAT 3.0 / 3.1 (cAER)                                                      #
# --------------------------------------------------------------------------- #

# '#Source' device names (the spec's "Supported Devices" list) and their DVS pixel arrays;
# None: not a camera, or (DAVISHet640, left out) one whose DVS size the spec does not give.
_CAER_DEVICES: dict[str, tuple[int, int] | None] = {
    "DVS128": (128, 128),
    "DAVIS240A": (240, 180),
    "DAVIS240B": (240, 180),
    "DAVIS240C": (240, 180),
    "DAVIS128": (128, 128),
    "DAVIS208": (208, 192),
    "DAVIS346A": (346, 260),
    "DAVIS346B": (346, 260),
    "DAVIS346Cbsi": (346, 260),
    "DAVIS640": (640, 480),
    "File": None,
    "Network": None,
}
_SPECIAL, _POLARITY, _FRAME, _IMU6, _IMU9 = 0, 1, 2, 3, 4
_INT32_MAX = 0x7FFFFFFF
# Special event type -> (trigger id, rising), the external-input mapping aerflow documents:
# input 0/1/2 -> id 0/1/2, pulses as rising edges.
_CAER_TRIGGERS = {
    2: (0, True),
    3: (0, False),
    4: (0, True),
    6: (1, True),
    7: (1, False),
    8: (1, True),
    9: (2, True),
    10: (2, False),
    11: (2, True),
}
# Special types that carry no time or trigger for a reader: DVS row-only, generator edges,
# APS frame and exposure markers. (TIMESTAMP_WRAP and TIMESTAMP_RESET are placed apart.)
_CAER_QUIET_SPECIALS = (5, 12, 13, 14, 15, 16, 17)
# Packet types readers of events skip, with (eventSize, eventTSOffset) from the spec's event
# layouts; 3.0 had only some of them. Private types (100 and up) are added per file.
_CAER_OTHER_TYPES_31 = {5: (8, 4), 7: (10, 6), 8: (12, 8), 9: (16, 12), 10: (20, 16), 11: (24, 20)}
_CAER_OTHER_TYPES_30 = {5: (8, 4), 7: (10, 6)}


@dataclass
class _Item:
    full: int  # overflow << 31 | 31-bit main timestamp, in the source's own time base
    kind: int  # packet type
    body: bytes  # the event's bytes after the info word and main timestamp
    info: int
    expected: tuple[str, tuple[Any, ...]] | None  # ("event" | "trigger" | ..., row w/o t)
    stamped: bool = True  # False: ``body`` follows the info word directly (frames)

    def event(self) -> bytes:
        if self.stamped:
            return struct.pack("<II", self.info, self.full & _INT32_MAX) + self.body
        return struct.pack("<I", self.info) + self.body


@dataclass
class _Packet3:
    kind: int
    source: int
    overflow: int
    items: list[_Item]
    size: int
    ts_offset: int
    key: tuple[int, float, int]
    raw: bytes | None = None  # whole event bytes of a packet of a skipped type
    number: int = 0


def _float32(rng: random.Random) -> float:
    value = rng.choice([0.0, -0.0, 1.0, rng.uniform(-20.0, 20.0), rng.uniform(-2000.0, 2000.0)])
    return float(np.float32(value))


def _caer_timeline(rng: random.Random, n: int, regime: tuple[int, float, bool]) -> list[int]:
    """Non-decreasing 62-bit device times (overflow << 31 | timestamp); with ``top``, near
    the end of the range, where eventTSOverflow reaches its int32 limit."""
    gap_max, p_huge, top = regime
    t = rng.choice([0, rng.randrange(1 << 20), (1 << 31) - rng.randrange(1, 2000)])
    if top:
        # Each huge gap below adds at most two overflow periods.
        t += ((1 << 31) - 1 - 2 * n - 1) << 31
    else:
        t += rng.choice([0, 0, rng.randrange(1 << 10) << 31])
    out = []
    for _ in range(n):
        roll = rng.random()
        t += rng.randrange(1 << 29, 1 << 32) if roll < p_huge else rng.randint(0, gap_max)
        out.append(t)
    return out


def _caer_items(
    rng: random.Random,
    n: int,
    width: int,
    height: int,
    mix: tuple[float, float, float, float],
    imu_kind: int,
    regime: tuple[int, float, bool],
    version: str,
) -> list[_Item]:
    p_trigger, p_imu, p_quiet, p_frame = mix
    items = []
    for full in _caer_timeline(rng, n, regime):
        roll = rng.random()
        if roll < p_frame:
            items.append(_caer_frame(rng, full, width, height, version))
        elif roll < p_frame + p_trigger:
            special = rng.choice(sorted(_CAER_TRIGGERS))
            items.append(
                _Item(full, _SPECIAL, b"", 1 | special << 1, ("trigger", _CAER_TRIGGERS[special]))
            )
        elif roll < p_frame + p_trigger + p_quiet:
            special = rng.choice(_CAER_QUIET_SPECIALS)
            data = rng.randrange(height) if special == 5 else 0  # row-only events carry a row
            items.append(_Item(full, _SPECIAL, b"", 1 | special << 1 | data << 8, None))
        elif roll < p_frame + p_trigger + p_quiet + p_imu:
            accel = [_float32(rng) for _ in range(3)]
            gyro = [_float32(rng) for _ in range(3)]
            temperature = _float32(rng)
            magnet = [_float32(rng) for _ in range(3)] if imu_kind == _IMU9 else [np.nan] * 3
            body = struct.pack("<7f", *accel, *gyro, temperature)
            if imu_kind == _IMU9:
                body += struct.pack("<3f", *magnet)
            items.append(
                _Item(full, imu_kind, body, 1, ("imu", (temperature, accel, gyro, magnet)))
            )
        else:
            x, y, on = rng.randrange(width), rng.randrange(height), rng.random() < 0.5
            info = 1 | int(on) << 1 | y << 2 | x << 17
            items.append(_Item(full, _POLARITY, b"", info, ("event", (x, y, on))))
    return items


def _caer_frame(rng: random.Random, end: int, width: int, height: int, version: str) -> _Item:
    """A frame event whose main timestamp (end of frame capture) is ``end``: start of frame,
    start and end of exposure in the same overflow period no later than it, then the ROI's
    lengths and position and its 16-bit pixels row by row (1, 3 or 4 channels)."""
    period = end & ~_INT32_MAX
    start = rng.randint(max(period, end - 50_000), end)
    exposure_start = rng.randint(start, end)
    exposure_end = rng.randint(exposure_start, end)
    channels = rng.choice([1, 3, 4])
    largest = rng.choice([(6, 5), (6, 5), (64, 48)])  # the larger ones span reading chunks
    length_x = rng.randint(1, min(width, largest[0]))
    length_y = rng.randint(1, min(height, largest[1]))
    x, y = rng.randrange(width - length_x + 1), rng.randrange(height - length_y + 1)
    shape = (length_y, length_x) if channels == 1 else (length_y, length_x, channels)
    pixels = np.array(
        [rng.randrange(1 << 16) for _ in range(length_x * length_y * channels)], "<u2"
    ).reshape(shape)
    # Colour filter and ROI ID: bits 4-7 and 8-14 in 3.1, bits 4-6 and 7-13 in 3.0.
    if version == "3.1":
        extra = rng.randrange(9) << 4 | rng.randrange(128) << 8
    else:
        extra = rng.randrange(3) << 4 | rng.randrange(128) << 7
    stamps = [stamp & _INT32_MAX for stamp in (start, end, exposure_start, exposure_end)]
    body = struct.pack("<4I4i", *stamps, length_x, length_y, x, y) + pixels.tobytes()
    row = (start, exposure_start, exposure_end, x, y, pixels)
    return _Item(end, _FRAME, body, 1 | channels << 1 | extra, ("frame", row), stamped=False)


def _chunks(rng: random.Random, items: list[_Item], largest: int) -> list[list[_Item]]:
    """Split time-sorted items into packets: never across an overflow change (a packet has
    one eventTSOverflow), otherwise at random lengths up to ``largest``."""
    out: list[list[_Item]] = []
    current: list[_Item] = []
    limit = rng.randint(1, largest)
    for item in items:
        if current and (item.full >> 31 != current[-1].full >> 31 or len(current) >= limit):
            out.append(current)
            current = []
            limit = rng.randint(1, largest)
        current.append(item)
    if current:
        out.append(current)
    return out


def _caer_packets(
    rng: random.Random,
    source: int,
    items: list[_Item],
    largest: int,
    wraps: bool,
    other_types: dict[int, tuple[int, int]],
    p_other: float,
) -> list[_Packet3]:
    """One source's packets over one time base, in the order the spec asks: per type
    time-monotonic, and between types by the main timestamp of the first event (ties in
    random order, which the spec allows, but never between two packets of one type)."""
    packets = []
    rank: dict[int, float] = {}

    def key(kind: int, full: int) -> tuple[int, float, int]:
        return (full, rank.setdefault(kind, rng.random()), len(packets))

    for kind in (_SPECIAL, _POLARITY, _FRAME, _IMU6, _IMU9):
        same = [item for item in items if item.kind == kind]
        for chunk in _chunks(rng, same, largest):
            # Frames of one packet share the largest one's size; the pixels past a smaller
            # frame's own are zero (the spec allows more room than pixels).
            size = max(len(item.event()) for item in chunk)
            if kind == _FRAME:
                size += 2 * rng.choice([0, 0, 3])
            packets.append(
                _Packet3(
                    kind,
                    source,
                    chunk[0].full >> 31,
                    chunk,
                    size,
                    8 if kind == _FRAME else 4,
                    key(kind, chunk[0].full),
                )
            )
    if items and wraps:
        # cAER commits a packet holding one TIMESTAMP_WRAP special event, with the highest
        # timestamp of the ending overflow period, each time the overflow counter steps.
        for overflow in range(items[0].full >> 31, items[-1].full >> 31):
            wrap = _Item(overflow << 31 | _INT32_MAX, _SPECIAL, b"", 1, None)
            packets.append(
                _Packet3(_SPECIAL, source, overflow, [wrap], 8, 4, key(_SPECIAL, wrap.full))
            )
    if items and other_types:
        for _ in range(sum(rng.random() < p_other for _ in range(4))):
            kind = rng.choice(sorted(other_types))
            size, ts_offset = other_types[kind]
            number = rng.randint(0, 4)
            full = rng.randint(items[0].full, items[-1].full)
            raw = bytes(rng.randrange(256) for _ in range(number * size))
            packets.append(
                _Packet3(
                    kind, source, full >> 31, [], size, ts_offset, key(kind, full), raw, number
                )
            )
    packets.sort(key=lambda packet: packet.key)
    return packets


def _merge(rng: random.Random, queues: list[list[Any]]) -> list[Any]:
    """Interleave lists at random, each keeping its own order."""
    queues = [list(q) for q in queues if q]
    out = []
    while queues:
        index = rng.randrange(len(queues))
        out.append(queues[index].pop(0))
        if not queues[index]:
            queues.pop(index)
    return out


@st.composite
def aedat3_files(
    draw: st.DrawFn, versions: Sequence[str] = ("3.0", "3.1"), spare_capacity: bool = False
) -> InivationFile:
    """An AEDAT 3.0 or 3.1 file from one or more sources.

    Header: version line, then (3.1) ``#Format: RAW``, ``#Source`` lines in increasing ID
    order, optional ``#-Source`` lines of an earlier recording, ``#Start-Time`` and
    ``#!END-HEADER``; a 3.0 header is the version line and some of those informative lines,
    without an end line (its first data byte is a packet type's low byte, never '#').

    Packets: polarity, special (external inputs, TIMESTAMP_WRAP with the top timestamp of its
    overflow period, TIMESTAMP_RESET, DVS row-only, generator and APS markers), IMU6 / IMU9,
    frames (1, 3 or 4 channels, colour filter and ROI bits set, several per packet with the
    packet's event size that of the largest plus, sometimes, zero pixels), and packets of
    types readers of events skip (sample, configuration, points), each event with its
    validity bit; invalid events (bit 0 clear, other bits random) are sprinkled in and must
    not be decoded. Times are ``overflow << 31 | timestamp`` and packets never span
    an overflow change. Sources interleave freely (the spec orders nothing across sources).

    Expected times: a TIMESTAMP_RESET (only in single-source files: with several sources it
    is unclear whose time base restarts) makes later times continue from the latest time
    decoded before it (events, triggers, IMU samples, frame ends), aerflow's documented
    convention (frames are expected with the start of capture as their time); its
    own timestamp is the highest one, as the spec says. External inputs become triggers
    (input 0/1/2 -> id 0/1/2, pulses as rising edges), as aerflow maps them.

    ``spare_capacity``: some packets get eventCapacity > eventNumber, with random bytes in the
    unused slots. The spec says files always have capacity == number (other values only occur
    in memory), but the byte layout (capacity x size bytes follow) is unambiguous.

    Left out: events or frames outside the pixel array; DAVISHet640 sources (their DVS array
    size is not in the spec); frames whose four timestamps span an overflow change (the
    packet's one eventTSOverflow could not express them).
    """
    version = draw(st.sampled_from(list(versions)))
    rng = _seeded(draw)
    n_sources = draw(st.sampled_from([1, 1, 1, 2, 3]))
    ids = sorted(
        draw(
            st.sets(
                st.sampled_from([0, 1, 2, 5, 31, 300, 32767]),
                min_size=n_sources,
                max_size=n_sources,
            )
        )
    )
    devices = [draw(st.sampled_from(sorted(_CAER_DEVICES))) for _ in ids]
    known = [size for size in (_CAER_DEVICES[d] for d in devices) if size is not None]
    width = min((w for w, _ in known), default=1 << 15)
    height = min((h for _, h in known), default=1 << 15)
    n = draw(st.integers(0, 1200))
    mix = draw(
        st.tuples(
            st.sampled_from([0.0, 0.05, 0.4]),
            st.sampled_from([0.0, 0.03, 0.3]),
            st.sampled_from([0.0, 0.02]),
            st.sampled_from([0.0, 0.0, 0.02, 0.3]),
        )
    )
    regime = draw(
        st.tuples(
            st.sampled_from([0, 5, 1000, 1 << 26]),
            st.sampled_from([0.0, 0.01, 0.1]),
            st.sampled_from([False, False, False, True]),
        )
    )
    largest = draw(st.sampled_from([1, 3, 40, 5000]))
    wraps = draw(st.booleans())
    p_invalid = draw(st.sampled_from([0.0, 0.0, 0.05, 0.5]))
    other_types = dict(_CAER_OTHER_TYPES_31 if version == "3.1" else _CAER_OTHER_TYPES_30)
    # The spec leaves IDs from 100 up to private event types, of any size and layout.
    private_size = rng.randint(4, 40)
    other_types[rng.randint(100, 32767)] = (private_size, rng.randint(0, private_size - 4))
    p_other = draw(st.sampled_from([0.0, 0.3]))
    # Time bases that restart near 2**62 µs would add up past 64 bits: no resets there.
    resets = draw(st.integers(0, 3)) if n_sources == 1 and not regime[2] else 0
    p_spare = draw(st.sampled_from([0.0, 0.5])) if spare_capacity else 0.0

    # Per source: segments of items, each in a fresh time base after a reset.
    per_source: list[list[list[_Packet3]]] = []
    for source in ids:
        share = n // len(ids)
        cuts = sorted(rng.randint(0, share) for _ in range(resets))
        bounds = [0, *cuts, share]
        imu_kind = rng.choice([_IMU6, _IMU9])
        segments = []
        for a, b in itertools.pairwise(bounds):
            items = _caer_items(rng, b - a, width, height, mix, imu_kind, regime, version)
            segments.append(_caer_packets(rng, source, items, largest, wraps, other_types, p_other))
        per_source.append(segments)
    if n_sources == 1:
        ordered: list[_Packet3] = []
        for index, segment in enumerate(per_source[0]):
            ordered += segment
            if index < len(per_source[0]) - 1:
                last = max((p.overflow for p in segment), default=0)
                reset = _Item(last << 31 | _INT32_MAX, _SPECIAL, b"", 1 | 1 << 1, ("reset", ()))
                ordered.append(_Packet3(_SPECIAL, ids[0], last, [reset], 8, 4, (0, 0.0, 0)))
    else:
        ordered = _merge(rng, [segments[0] for segments in per_source])

    # Bytes and expected values, in file order.
    body = bytearray()
    latest = shift = 0
    events: list[tuple[Any, ...]] = []
    triggers: list[tuple[Any, ...]] = []
    imu: list[tuple[Any, ...]] = []
    frames: list[ExpectedFrame] = []
    by_source: dict[int, tuple[list[Any], list[Any], list[Any]]] = {i: ([], [], []) for i in ids}
    for packet in ordered:
        slots: list[bytes] = []
        valid = 0
        if packet.raw is not None:
            slots = [
                packet.raw[i * packet.size : (i + 1) * packet.size] for i in range(packet.number)
            ]
            valid = sum(s[0] & 1 for s in slots)
        for item in packet.items:
            while rng.random() < p_invalid:
                junk_info = rng.randrange(1 << 32) & ~1
                junk = struct.pack("<II", junk_info, rng.randrange(1 << 31))
                slots.append(junk + bytes(rng.randrange(256) for _ in range(packet.size - 8)))
            slots.append(item.event().ljust(packet.size, b"\0"))
            valid += 1
            if item.expected is None:
                continue
            what, row = item.expected
            if what == "reset":
                shift = latest
                continue
            t = shift + item.full
            latest = max(latest, t)
            target = by_source[packet.source]
            if what == "event":
                events.append((t, *row))
                target[0].append((t, *row))
            elif what == "trigger":
                triggers.append((t, *row))
                target[1].append((t, *row))
            elif what == "frame":
                start, exposure_start, exposure_end, x, y, pixels = row
                frames.append(
                    ExpectedFrame(
                        t=shift + start,
                        begin_t=shift + start,
                        end_t=t,
                        exposure_begin_t=shift + exposure_start,
                        exposure_end_t=shift + exposure_end,
                        format=pixels.shape[2] if pixels.ndim == 3 else 1,
                        x=x,
                        y=y,
                        pixels=pixels,
                    )
                )
            else:
                imu.append((t, *row))
                target[2].append((t, *row))
        number = len(slots)
        capacity = number + (rng.randint(1, 3) if rng.random() < p_spare else 0)
        spare = bytes(rng.randrange(256) for _ in range((capacity - number) * packet.size))
        body += struct.pack(
            "<hhiiiiii",
            packet.kind,
            packet.source,
            packet.size,
            packet.ts_offset,
            packet.overflow,
            capacity,
            number,
            valid,
        )
        body += b"".join(slots) + spare

    lines = [f"!AER-DAT{version}"]
    if version == "3.1" or draw(st.booleans()):
        lines.append("Format: RAW")
    if version == "3.1" or draw(st.booleans()):
        lines += [f"Source {i}: {d}" for i, d in zip(ids, devices, strict=True)]
    if draw(st.booleans()):
        lines.append("-Source 0: DVS128")
    if version == "3.1" or draw(st.booleans()):
        lines.append("Start-Time: 2016-04-15 09:54:36 (TZ+0200)")
    if version == "3.1":
        lines.append("!END-HEADER")
    return InivationFile(
        data=_header_lines(lines) + bytes(body),
        suffix=".aedat",
        version=version,
        events=_array(events, EVENTS_DTYPE),
        triggers=_array(triggers, TRIGGERS_DTYPE),
        imu=_array(imu, IMU_DTYPE),
        frames=tuple(frames),
        width=width if known else None,
        height=height if known else None,
        by_source={
            i: (_array(e, EVENTS_DTYPE), _array(g, TRIGGERS_DTYPE), _array(m, IMU_DTYPE))
            for i, (e, g, m) in by_source.items()
        },
    )


# --------------------------------------------------------------------------- #
# FlatBuffers, laid out at random                                             #
# --------------------------------------------------------------------------- #


@dataclass(eq=False)
class _Node:
    """One object of a FlatBuffer: a table, vtable, vector or string. It must start at a
    position ``p`` with ``p % align == phase`` (counted from the size prefix, as FlatBuffers
    readers check alignment). ``refs`` are uoffset32 slots (at byte ``offset``) that point at
    other nodes, which must therefore lie after this one; a table's ``vtable`` is reached
    through the signed offset at its byte 0, so it may lie anywhere."""

    data: bytearray
    align: int
    phase: int = 0
    refs: list[tuple[int, _Node]] = field(default_factory=list)
    vtable: _Node | None = None
    position: int = -1


@dataclass(frozen=True)
class _Layout:
    """How freely a buffer is laid out (drawn once per file)."""

    force_defaults: float  # chance that a scalar equal to its default is written anyway
    share_vtables: float  # chance that a table reuses an identical vtable
    padding: float  # chance of extra aligned padding before a node or between table fields
    junk: bool  # padding bytes random (True) or zero
    trailing: float  # chance that a vtable lists absent fields after the last present one


_SCALAR_SIZES = {"b": 1, "B": 1, "?": 1, "h": 2, "i": 4, "f": 4, "q": 8}


class _FlatBuffer:
    """A size-prefixed FlatBuffer built from nodes placed in a random valid order, with
    random padding, field order inside tables, vtable sharing and default elision: any of
    these choices gives a buffer every conforming reader decodes to the same values."""

    def __init__(self, rng: random.Random, identifier: bytes, layout: _Layout) -> None:
        self.rng = rng
        self.identifier = identifier
        self.layout = layout
        self.nodes: list[_Node] = []
        self._vtables: dict[bytes, _Node] = {}

    def pad(self, length: int) -> bytes:
        if self.layout.junk:
            return bytes(self.rng.randrange(256) for _ in range(length))
        return bytes(length)

    def node(self, data: bytes, align: int, phase: int = 0) -> _Node:
        created = _Node(bytearray(data), align, phase)
        self.nodes.append(created)
        return created

    def string(self, text: bytes) -> _Node:
        return self.node(struct.pack("<I", len(text)) + text + b"\0", 4)

    def vector(self, elements: bytes, count: int, element_align: int) -> _Node:
        """A vector of scalars or structs: the length sits just before element 0, which is
        aligned for its type."""
        align = max(4, element_align)
        return self.node(struct.pack("<I", count) + elements, align, (align - 4) % align)

    def vector_of_tables(self, tables: Sequence[_Node]) -> _Node:
        vector = self.node(struct.pack("<I", len(tables)) + bytes(4 * len(tables)), 4)
        vector.refs = [(4 + 4 * i, table) for i, table in enumerate(tables)]
        return vector

    def table(self, fields: Sequence[tuple[str, Any, Any] | None]) -> _Node:
        """A table whose field ``i`` is ``fields[i]``: None (absent), ("scalar", format,
        (value, default)), ("struct", bytes, align) or ("ref", node, None)."""
        rng, layout = self.rng, self.layout
        present: list[tuple[int, bytes, int, _Node | None]] = []
        for index, spec in enumerate(fields):
            if spec is None:
                continue
            kind, what, extra = spec
            if kind == "scalar":
                value, default = extra
                if value == default and rng.random() >= layout.force_defaults:
                    continue
                present.append((index, struct.pack("<" + what, value), _SCALAR_SIZES[what], None))
            elif kind == "struct":
                present.append((index, what, extra, None))
            else:
                present.append((index, bytes(4), 4, what))
        rng.shuffle(present)
        align = max([4] + [a for _, _, a, _ in present])
        data = bytearray(4)
        offsets: dict[int, int] = {}
        refs: list[tuple[int, _Node]] = []
        for index, payload, field_align, target in present:
            gap = -len(data) % field_align
            if rng.random() < layout.padding:
                gap += field_align * rng.randint(1, 2)
            data += self.pad(gap)
            offsets[index] = len(data)
            if target is not None:
                refs.append((len(data), target))
            data += payload
        slots = max(offsets, default=-1) + 1
        if rng.random() < layout.trailing:
            slots = max(slots, len(fields)) + rng.randint(0, 2)
        entries = [offsets.get(i, 0) for i in range(slots)]
        vtable_bytes = struct.pack(f"<HH{slots}H", 4 + 2 * slots, len(data), *entries)
        shared = self._vtables.get(vtable_bytes)
        if shared is None or rng.random() >= layout.share_vtables:
            shared = self.node(vtable_bytes, 2)
            self._vtables[vtable_bytes] = shared
        created = self.node(bytes(data), align)
        created.refs = refs
        created.vtable = shared
        return created

    def finish(self, root: _Node) -> bytes:
        rng = self.rng
        vtables = {id(n.vtable) for n in self.nodes if n.vtable is not None}
        movable = [n for n in self.nodes if id(n) not in vtables]
        waiting = {id(n): 0 for n in movable}
        for n in movable:
            for _, target in n.refs:
                waiting[id(target)] += 1
        ready = [root]
        order: list[_Node] = []
        while ready:
            chosen = ready.pop(rng.randrange(len(ready)))
            order.append(chosen)
            for _, target in chosen.refs:
                waiting[id(target)] -= 1
                if waiting[id(target)] == 0:
                    ready.append(target)
        assert len(order) == len(movable), "every node hangs off the root"
        for vtable in (n for n in self.nodes if id(n) in vtables):
            order.insert(rng.randint(0, len(order)), vtable)
        buffer = bytearray(12)
        for n in order:
            gap = (n.phase - len(buffer)) % n.align
            if rng.random() < self.layout.padding:
                gap += n.align * rng.randint(1, 2)
            buffer += self.pad(gap)
            n.position = len(buffer)
            buffer += n.data
        buffer += self.pad(-len(buffer) % 8)
        for n in order:
            for offset, target in n.refs:
                slot = n.position + offset
                assert target.position > slot
                struct.pack_into("<I", buffer, slot, target.position - slot)
            if n.vtable is not None:
                struct.pack_into("<i", buffer, n.position, n.position - n.vtable.position)
        struct.pack_into("<II4s", buffer, 0, len(buffer) - 4, root.position - 4, self.identifier)
        return bytes(buffer)


# --------------------------------------------------------------------------- #
# AEDAT 4.0 (DV)                                                              #
# --------------------------------------------------------------------------- #

_AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
_COMPRESSION_NAMES = ("NONE", "LZ4", "LZ4_HIGH", "ZSTD", "ZSTD_HIGH")
# DV trigger type -> (id, rising): aerflow's documented channels (0 external signal,
# 1 generator, 2 frame begin/end, 3 exposure begin/end, 4 pulse, 5 timestamp reset).
_DV_TRIGGERS = {
    0: (5, True),
    1: (0, True),
    2: (0, False),
    3: (4, True),
    4: (1, True),
    5: (1, False),
    6: (2, True),
    7: (2, False),
    8: (3, True),
    9: (3, False),
}
_DV_FRAME_CHANNELS = {0: 1, 16: 3, 24: 4}  # DV frame formats: OpenCV 8UC1, 8UC3, 8UC4
_DV_DESCRIPTIONS = {
    "EVTS": ("events", "Array of events (polarity ON/OFF)."),
    "TRIG": ("triggers", "External triggers and special signals."),
    "IMUS": ("imu", "Inertial Measurement Unit data samples."),
    "FRME": ("frames", "Standard frame (8-bit image)."),
}


@dataclass
class _Stream4:
    id: int
    kind: str
    width: int | None = None
    height: int | None = None
    elements: list[Any] = field(default_factory=list)  # per kind, see aedat4_files
    packets: list[list[Any]] = field(default_factory=list)


def _compress(rng: random.Random, code: int, payload: bytes, sizeless: bool = True) -> bytes:
    """One complete LZ4 or Zstd frame, with frame options drawn at random (block size and
    linking, checksums, whether the content size is stored unless ``sizeless`` is False,
    level)."""
    if code == 0:
        return payload
    if code in (1, 2):
        out: bytes = lz4.frame.compress(
            payload,
            compression_level=rng.choice([0, 3, 9, 12]),
            block_size=rng.choice(
                [
                    lz4.frame.BLOCKSIZE_DEFAULT,
                    lz4.frame.BLOCKSIZE_MAX64KB,
                    lz4.frame.BLOCKSIZE_MAX256KB,
                    lz4.frame.BLOCKSIZE_MAX1MB,
                ]
            ),
            block_linked=rng.random() < 0.5,
            content_checksum=rng.random() < 0.5,
            block_checksum=rng.random() < 0.5,
            store_size=rng.random() < 0.5,
        )
        return out
    compressor = zstandard.ZstdCompressor(
        level=rng.choice([1, 3, 9, 19]),
        write_checksum=rng.random() < 0.5,
        write_content_size=not sizeless or rng.random() < 0.5,
    )
    return compressor.compress(payload)


def _description(rng: random.Random, streams: Sequence[_Stream4], compression: int) -> bytes:
    """DV's XML description: ``outInfo`` holds one node per stream, named by its ID, with its
    attributes and an ``info`` node (sizes for events and frames, camera name, optionally the
    time offset). Streams and attributes come in random order, under DV's node paths or
    dv-processing's shorter ones, indented with spaces or tabs, one element per line as DV,
    dv-processing and faery all write it (other XML serialisations are left out: no writer
    is known to produce them, and the format says no more than "XML")."""
    indent = rng.choice(["    ", "  ", "\t"])
    root = rng.choice(["/mainloop/Recorder/outInfo/", "/outInfo/"])
    lines = ['<dv version="2.0">', f'{indent}<node name="outInfo" path="{root}">']
    chosen = list(streams)
    if rng.random() < 0.5:
        rng.shuffle(chosen)
    for stream in chosen:
        output, description = _DV_DESCRIPTIONS.get(stream.kind, ("other", "Other data."))
        # faery leaves out the module name and type description, faery and dv-processing
        # the time offset; dv-processing finds streams by output name and camera name.
        attributes = [
            ("originalModuleName", "string", "capture"),
            ("typeDescription", "string", description),
        ]
        attributes = [a for a in attributes if rng.random() < 0.8]
        attributes += [
            ("compression", "string", _COMPRESSION_NAMES[compression]),
            ("originalOutputName", "string", output),
            ("typeIdentifier", "string", stream.kind),
        ]
        info = [("source", "string", "DAVIS346_00000499")]
        if rng.random() < 0.8:
            info.append(("tsOffset", "long", str(rng.randrange(1 << 50))))
        if stream.width is not None:
            info += [("sizeX", "int", str(stream.width)), ("sizeY", "int", str(stream.height))]
        for attrs in (attributes, info):
            if rng.random() < 0.5:
                rng.shuffle(attrs)
            else:
                attrs.sort()
        path = f"{root}{stream.id}/"
        lines.append(f'{indent * 2}<node name="{stream.id}" path="{path}">')
        lines += [f'{indent * 3}<attr key="{k}" type="{t}">{v}</attr>' for k, t, v in attributes]
        lines.append(f'{indent * 3}<node name="info" path="{path}info/">')
        lines += [f'{indent * 4}<attr key="{k}" type="{t}">{v}</attr>' for k, t, v in info]
        lines.append(f"{indent * 3}</node>")
        lines.append(f"{indent * 2}</node>")
    lines += [f"{indent}</node>", "</dv>"]
    return ("\n".join(lines) + rng.choice(["", "\n"])).encode()


def _io_header(
    rng: random.Random, layout: _Layout, compression: int, table: int, text: bytes
) -> bytes:
    """The IOHeader table: compression (int32, default NONE), dataTablePosition (int64,
    default -1) and infoNode (string)."""
    buffer = _FlatBuffer(rng, b"IOHE", layout)
    node = buffer.string(text)
    root = buffer.table(
        [("scalar", "i", (compression, 0)), ("scalar", "q", (table, -1)), ("ref", node, None)]
    )
    return buffer.finish(root)


def _packet_payload(
    rng: random.Random, layout: _Layout, kind: str, content: Any, absent: bool
) -> bytes:
    buffer = _FlatBuffer(rng, kind.encode(), layout)
    if kind == "EVTS":
        # EventPacket {elements: [Event]}, Event a 16-byte struct {t: int64, x: int16,
        # y: int16, on: bool} with 3 bytes of padding.
        raw = b"".join(struct.pack("<qhh?", t, x, y, on) + buffer.pad(3) for t, x, y, on in content)
        if content or not absent or rng.random() < 0.5:
            vector: _Node | None = buffer.vector(raw, len(content), 8)
        else:
            vector = None
        root = buffer.table([None if vector is None else ("ref", vector, None)])
    elif kind == "TRIG":
        # TriggerPacket {elements: [Trigger]}, Trigger {t: int64, source: int8 = 0}.
        tables = [
            buffer.table([("scalar", "q", (t, 0)), ("scalar", "b", (code, 0))])
            for t, code in content
        ]
        root = buffer.table([("ref", buffer.vector_of_tables(tables), None)])
    elif kind == "XTRA":
        # A custom type (DV lets modules define their own): {elements: [{t: int64,
        # value: int32}]}, which readers of the four known types must pass over.
        tables = [
            buffer.table([("scalar", "q", (t, 0)), ("scalar", "i", (value, 0))])
            for t, value in content
        ]
        root = buffer.table([("ref", buffer.vector_of_tables(tables), None)])
    elif kind == "IMUS":
        # ImuPacket {elements: [Imu]}, Imu {t: int64, temperature, accelerometer x/y/z,
        # gyroscope x/y/z, magnetometer x/y/z: float32, all defaulting to 0}.
        tables = [
            buffer.table([("scalar", "q", (t, 0))] + [("scalar", "f", (v, 0.0)) for v in values])
            for t, values in content
        ]
        root = buffer.table([("ref", buffer.vector_of_tables(tables), None)])
    else:
        # Frame {t, begin_t, end_t, exposure_begin_t, exposure_end_t: int64, format: int8,
        # width, height, offset_x, offset_y: int16, pixels: [uint8]}.
        frame: ExpectedFrame = content
        pixels = frame.pixels.tobytes()
        fields: list[tuple[str, Any, Any] | None] = [
            ("scalar", "q", (frame.t, 0)),
            ("scalar", "q", (frame.begin_t, 0)),
            ("scalar", "q", (frame.end_t, 0)),
            ("scalar", "q", (frame.exposure_begin_t, 0)),
            ("scalar", "q", (frame.exposure_end_t, 0)),
            ("scalar", "b", (frame.format, 0)),
            ("scalar", "h", (frame.pixels.shape[1], 0)),
            ("scalar", "h", (frame.pixels.shape[0], 0)),
            ("scalar", "h", (frame.x, 0)),
            ("scalar", "h", (frame.y, 0)),
            ("ref", buffer.vector(pixels, len(pixels), 1), None),
        ]
        root = buffer.table(fields)
    return buffer.finish(root)


def _file_table(
    rng: random.Random, layout: _Layout, entries: Sequence[tuple[int, int, int, int, int, int]]
) -> bytes:
    """FileDataTable {Table: [FileDataDefinition]}, FileDataDefinition {ByteOffset: int64,
    PacketInfo: struct {streamID: int32, size: int32}, NumElements, TimestampStart,
    TimestampEnd: int64}; a writer may leave the last three unset (real files do)."""
    buffer = _FlatBuffer(rng, b"FTAB", layout)
    counted = rng.random() < 0.7
    timed = rng.random() < 0.7
    tables = []
    for offset, stream, size, count, first, last in entries:
        tables.append(
            buffer.table(
                [
                    ("scalar", "q", (offset, 0)),
                    ("struct", struct.pack("<ii", stream, size), 4),
                    ("scalar", "q", (count, 0)) if counted else None,
                    ("scalar", "q", (first, 0)) if timed else None,
                    ("scalar", "q", (last, 0)) if timed else None,
                ]
            )
        )
    return buffer.finish(buffer.table([("ref", buffer.vector_of_tables(tables), None)]))


def _times4(rng: random.Random, n: int, start: int, gap_max: int) -> list[int]:
    out = []
    t = start
    for _ in range(n):
        t += rng.randint(0, gap_max)
        out.append(t)
    return out


def _split(rng: random.Random, elements: list[Any], largest: int, empty: float) -> list[list[Any]]:
    """Cut a stream's elements into packets of random sizes, with an occasional empty one."""
    out: list[list[Any]] = []
    i = 0
    while i < len(elements):
        if rng.random() < empty:
            out.append([])
        size = rng.randint(1, largest)
        out.append(elements[i : i + size])
        i += size
    return out


def _merge_by_time(
    rng: random.Random, queues: list[list[tuple[_Stream4, list[Any]]]]
) -> list[tuple[_Stream4, list[Any]]]:
    """Interleave streams' packets by the time of their first element (ties and empty packets
    in random order), each stream keeping its own order."""

    def first(entry: tuple[_Stream4, list[Any]]) -> int:
        stream, packet = entry
        if not packet:
            return -1
        return int(packet[0].t if stream.kind == "FRME" else packet[0][0])

    queues = [list(q) for q in queues if q]
    out = []
    while queues:
        keys = [first(q[0]) for q in queues]
        earliest = [i for i, key in enumerate(keys) if key == min(keys)]
        index = rng.choice(earliest)
        out.append(queues[index].pop(0))
        if not queues[index]:
            queues.pop(index)
    return out


@st.composite
def aedat4_files(
    draw: st.DrawFn,
    compressions: Sequence[int] = (0, 1, 2, 3, 4),
    empty_packets: bool = True,
    absent_elements: bool = True,
    sizeless_zstd: bool = True,
    second_event_stream: bool = True,
    custom_stream: bool = True,
) -> InivationFile:
    """An AEDAT 4.0 file: version line, size-prefixed IOHeader, packets, optional table.

    Streams: one or two of events (the expected events are those of the lowest ID, which
    aerflow reads by default), zero to two of triggers, zero or one of IMU samples, of frames
    and of a custom type (``XTRA``, which decoders of events pass over), with random IDs.
    Each stream's elements are time-ordered and cut into packets of random sizes (empty
    event packets too, the elements vector then present or absent), and the packets of all
    streams are interleaved in any order that keeps each stream's own (the only order the
    format asks for), or by first time as DV writes them. Every payload is a FlatBuffer
    laid out by :class:`_FlatBuffer` with random node order, padding, field order and
    vtable sharing, then compressed as one LZ4 or Zstd frame with random frame options when
    the header says so. The file data table,
    when present, lists every packet with its payload offset, with or without the element
    counts and time ranges, and is compressed the same way; when absent the header says -1
    or leaves the field out (its default).

    Expected values: events as stored; triggers from every trigger stream with DV's types
    mapped as aerflow documents (see ``_DV_TRIGGERS``); IMU samples from the IMU stream;
    frames as stored (8-bit grey, BGR or BGRA).

    Left out: negative times (Unix µs), coordinates outside ``sizeX`` x ``sizeY``, trigger
    types outside DV's enumeration, 16-bit frame formats (not in DV's FrameFormat), packets
    of stream IDs the description does not list.

    The flags leave out valid encodings some peers refuse: ``empty_packets`` (event packets
    with no events), ``absent_elements`` (no elements vector at all), ``sizeless_zstd`` (Zstd
    frames without their content size), ``second_event_stream`` and ``custom_stream``.
    """
    rng = _seeded(draw)
    compression = draw(st.sampled_from(list(compressions)))
    layout = _Layout(
        force_defaults=draw(st.sampled_from([0.0, 0.5, 1.0])),
        share_vtables=draw(st.sampled_from([0.0, 0.9])),
        padding=draw(st.sampled_from([0.0, 0.0, 0.3])),
        junk=draw(st.booleans()),
        trailing=draw(st.sampled_from([0.0, 0.5])),
    )
    kinds = ["EVTS"]
    if second_event_stream and draw(st.integers(0, 4)) == 0:
        kinds.append("EVTS")
    kinds += ["TRIG"] * draw(st.sampled_from([0, 0, 1, 1, 2]))
    kinds += ["IMUS"] * draw(st.integers(0, 1))
    kinds += ["FRME"] * draw(st.integers(0, 1))
    if custom_stream:
        kinds += ["XTRA"] * draw(st.integers(0, 1))
    ids = draw(
        st.lists(
            st.one_of(st.integers(0, 7), st.integers(0, 2**31 - 1)),
            min_size=len(kinds),
            max_size=len(kinds),
            unique=True,
        )
    )
    base = draw(st.sampled_from([0, 1, 1_605_507_430_438_338, 2**62]))
    gap_max = draw(st.sampled_from([0, 10, 1000, 1 << 30]))
    largest = draw(st.sampled_from([1, 7, 300, 10_000]))
    empty = draw(st.sampled_from([0.0, 0.1])) if empty_packets else 0.0
    n_events = draw(st.integers(0, 2500))
    streams: list[_Stream4] = []
    for stream_id, kind in zip(ids, kinds, strict=True):
        stream = _Stream4(stream_id, kind)
        start = base + rng.randrange(1 << 20)
        if kind == "EVTS":
            stream.width = rng.choice([1, 2, 128, 346, 640, 1280, rng.randint(1, 32767)])
            stream.height = rng.choice([1, 3, 128, 260, 480, 720, rng.randint(1, 32767)])
            count = n_events if not streams else rng.randint(0, 200)
            times = _times4(rng, count, start, gap_max)
            stream.elements = [
                (t, rng.randrange(stream.width), rng.randrange(stream.height), rng.random() < 0.5)
                for t in times
            ]
        elif kind == "TRIG":
            times = _times4(rng, rng.randint(0, 40), start, gap_max)
            stream.elements = [(t, rng.randrange(10)) for t in times]
        elif kind == "IMUS":
            times = _times4(rng, rng.randint(0, 40), start, gap_max)
            stream.elements = [(t, [_float32(rng) for _ in range(10)]) for t in times]
        elif kind == "XTRA":
            times = _times4(rng, rng.randint(0, 20), start, gap_max)
            stream.elements = [(t, rng.randrange(-(1 << 31), 1 << 31)) for t in times]
        else:
            stream.width, stream.height = rng.choice([(346, 260), (640, 480)])
            times = _times4(rng, rng.randint(0, 4), max(start, 1), gap_max)
            for t in times:
                code = rng.choice(sorted(_DV_FRAME_CHANNELS))
                w, h = rng.randint(1, 6), rng.randint(1, 5)
                shape = (h, w) if code == 0 else (h, w, _DV_FRAME_CHANNELS[code])
                pixels = np.array(
                    [rng.randrange(256) for _ in range(int(np.prod(shape)))], np.uint8
                ).reshape(shape)
                stream.elements.append(
                    ExpectedFrame(
                        t=t,
                        begin_t=t + rng.randint(0, 10),
                        end_t=t + rng.randint(10, 100),
                        exposure_begin_t=t + rng.randint(1, 10),
                        exposure_end_t=t + rng.randint(10, 90),
                        format=code,
                        x=rng.randrange(stream.width - w + 1),
                        y=rng.randrange(stream.height - h + 1),
                        pixels=pixels,
                    )
                )
        if kind == "FRME":
            stream.packets = [[frame] for frame in stream.elements]
        else:
            stream.packets = _split(rng, stream.elements, largest, empty if kind == "EVTS" else 0.0)
        streams.append(stream)

    queues = [[(s, p) for p in s.packets] for s in streams]
    # Any interleaving, or as DV writes them: by the time of each packet's first element.
    merge = _merge if draw(st.booleans()) else _merge_by_time
    order = merge(rng, queues)

    text = _description(rng, streams, compression)
    with_table = draw(st.booleans())
    header_seed = rng.randrange(1 << 64)
    header = _io_header(
        random.Random(header_seed), layout, compression, 0 if with_table else -1, text
    )
    position = len(_AEDAT4_MAGIC) + len(header)
    body = bytearray()
    entries = []
    packets: list[tuple[int, int]] = []
    for stream, packet in order:
        content = packet[0] if stream.kind == "FRME" else packet
        payload = _packet_payload(rng, layout, stream.kind, content, absent_elements)
        payload = _compress(rng, compression, payload, sizeless_zstd)
        body += struct.pack("<ii", stream.id, len(payload)) + payload
        times = [e.t if stream.kind == "FRME" else e[0] for e in packet]
        entries.append(
            (
                position + 8,
                stream.id,
                len(payload),
                len(packet),
                min(times, default=0),
                max(times, default=0),
            )
        )
        packets.append((stream.id, len(packet)))
        position += 8 + len(payload)
    table = b""
    if with_table:
        table = _compress(rng, compression, _file_table(rng, layout, entries), sizeless_zstd)
        header = _io_header(random.Random(header_seed), layout, compression, position, text)
        assert len(_AEDAT4_MAGIC) + len(header) + len(body) == position

    event_stream = min(s.id for s in streams if s.kind == "EVTS")
    events: list[tuple[Any, ...]] = []
    triggers: list[tuple[Any, ...]] = []
    imu: list[tuple[Any, ...]] = []
    frames: list[ExpectedFrame] = []
    for stream, packet in order:
        if stream.kind == "EVTS" and stream.id == event_stream:
            events += packet
        elif stream.kind == "TRIG":
            triggers += [(t, *_DV_TRIGGERS[code]) for t, code in packet]
        elif stream.kind == "IMUS":
            imu += [(t, v[0], v[1:4], v[4:7], v[7:10]) for t, v in packet]
        elif stream.kind == "FRME":
            frames += packet
    main = next(s for s in streams if s.id == event_stream)
    return InivationFile(
        data=_AEDAT4_MAGIC + header + bytes(body) + table,
        suffix=".aedat4",
        version="4.0",
        events=_array(events, EVENTS_DTYPE),
        triggers=_array(triggers, TRIGGERS_DTYPE),
        imu=_array(imu, IMU_DTYPE),
        frames=tuple(frames),
        width=main.width,
        height=main.height,
        streams={s.id: s.kind for s in streams},
        event_stream=event_stream,
        packets=tuple(packets),
    )
