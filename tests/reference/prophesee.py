"""Slow, plain-Python reference decoders for Prophesee RAW (EVT 2.0/2.1/3.0) and DAT.

These decoders exist only to cross-check the fast kernels of ``aerflow`` in the
test-suite. They deliberately:

* import nothing from ``aerflow`` (independence), only numpy and the stdlib;
* walk the payload one word at a time with ordinary Python integers, one
  ``if``/``elif`` branch per word type, so each branch can be read against
  the format notes (``docs/formats/prophesee-raw.md``, ``docs/formats/evt3.md``,
  ``docs/formats/dat.md``) and against OpenEB's HAL decoders, which define
  the correct behaviour here.

Every decoder returns ``(events, triggers)`` as numpy structured arrays of
dtype :data:`EVENTS` and :data:`TRIGGERS`, in file order. A trailing partial
word (payload length not a multiple of the word size) is ignored.

Timestamps are absolute sensor time in microseconds (OpenEB's non-shifted
mode, docs/formats/prophesee-raw.md "Payload and time"): no first-TIME_HIGH
offset is removed.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import os

__all__ = [
    "EVENTS",
    "TRIGGERS",
    "decode_dat",
    "decode_evt2",
    "decode_evt3",
    "decode_evt21",
    "decode_raw_file",
    "evt21_order",
    "parse_header",
    "raw_format_name",
    "raw_geometry",
]

EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TRIGGERS = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])

EventRow = tuple[int, int, int, bool]
TriggerRow = tuple[int, int, bool]

# --------------------------------------------------------------------------- #
# Small helpers                                                               #
# --------------------------------------------------------------------------- #

_LEADING_INT = re.compile(rb"\s*([+-]?[0-9]+)")


def _leading_int(text: str) -> int | None:
    """Parse an integer the way ``std::stol``/``std::stoi`` do (base 10).

    Leading whitespace is skipped and trailing garbage after the digits is
    ignored (``"48abc"`` -> 48); a string with no leading digits gives None.
    """
    match = _LEADING_INT.match(text.encode("utf-8", errors="replace"))
    if match is None:
        return None
    return int(match.group(1))


def _words(payload: bytes, fmt: str, size: int) -> list[int]:
    """Split ``payload`` into little-endian unsigned words of ``size`` bytes.

    docs/formats/prophesee-raw.md: raw little-endian words. A trailing partial
    word (``len(payload) % size`` bytes) is dropped, as the brief requires.
    """
    usable = (len(payload) // size) * size
    return [word for (word,) in struct.iter_unpack(fmt, bytes(payload[:usable]))]


def _inside(x: int, y: int, width: int | None, height: int | None) -> bool:
    """Out-of-sensor rule: False when x >= width or y >= height (if given)."""
    if width is not None and x >= width:
        return False
    return not (height is not None and y >= height)


def _events_array(rows: list[EventRow]) -> np.ndarray:
    """Pack ``(t, x, y, on)`` rows into an :data:`EVENTS` array."""
    return np.array(rows, dtype=EVENTS)


def _triggers_array(rows: list[TriggerRow]) -> np.ndarray:
    """Pack ``(t, id, rising)`` rows into a :data:`TRIGGERS` array."""
    return np.array(rows, dtype=TRIGGERS)


# --------------------------------------------------------------------------- #
# Header (docs/formats/prophesee-raw.md; DAT reuses it, docs/formats/dat.md)  #
# --------------------------------------------------------------------------- #


def parse_header(data: bytes) -> tuple[dict[str, str], int]:
    r"""Parse a Prophesee ``% key value`` header (RAW and DAT).

    Rules (docs/formats/prophesee-raw.md "Header", OpenEB
    ``GenericHeader::parse_header``):

    * A line is consumed only while the next byte is ``%`` AND the byte after
      it is a space; anything else (including ``%`` followed by another byte,
      or a lone ``%`` at EOF) ends the header before that byte.
    * The rest of the line is split on ASCII whitespace (C ``isspace``: space,
      ``\\t \\n \\r \\v \\f``, so a CRLF line ending is harmless); key = first
      token, value = remaining tokens joined by single spaces (internal runs
      of spaces collapse; a key without value maps to ``""``).
    * A line whose first token is ``end`` (``% end``) terminates the header;
      it is consumed but not stored.
    * A ``% `` line holding no token at all is consumed and ignored.
    * A line with no newline before EOF is consumed whole (offset = len).
    * A repeated key keeps its last value (``std::map`` assignment).

    Tokens are decoded as UTF-8 with replacement characters (the spec only
    says "ASCII lines").

    Returns ``(mapping, offset)``, ``offset`` being the index of the first
    byte of binary data.
    """
    header: dict[str, str] = {}
    pos = 0
    size = len(data)
    while pos + 1 < size and data[pos : pos + 1] == b"%" and data[pos + 1 : pos + 2] == b" ":
        newline = data.find(b"\n", pos + 2)
        if newline < 0:
            line = data[pos + 2 :]
            pos = size
        else:
            line = data[pos + 2 : newline]
            pos = newline + 1
        tokens = [tok.decode("utf-8", errors="replace") for tok in bytes(line).split()]
        if not tokens:
            continue
        if tokens[0] == "end":
            break
        header[tokens[0]] = " ".join(tokens[1:])
    return header, pos


# OpenEB `psee_raw_file_header.cpp` system_id_map (values from
# `device_system_id.h`), system_ID -> (width, height). Entries marked "spec"
# are the commonly cited excerpt (marked with a star in the whole table,
# docs/formats/prophesee-raw.md "Sensor size").
_SYSTEM_ID_GEOMETRY: dict[int, tuple[int, int]] = {
    0x15: (640, 480),  # spec: CCAM3_GEN3, EVT2
    0x1C: (640, 480),  # spec: CCAM3_GEN31, EVT2
    0x1A: (1280, 720),  # spec: CCAM3_GEN4, EVT2
    0x17: (640, 480),  # CCAM4_GEN3, EVT2
    0x97: (640, 480),  # CCAM4_GEN3_EVK, EVT2
    0x19: (640, 480),  # CCAM4_GEN3_REV_B, EVT2
    0x99: (640, 480),  # CCAM4_GEN3_REV_B_EVK, EVT2
    0x1D: (640, 480),  # CCAM4_GEN3_REV_B_EVK_BRIDGE, EVT2
    0x23: (640, 480),  # CCAM5_GEN31 (= EVK3_GEN31_EVT2), EVT2
    0x1E: (1280, 720),  # spec: CCAM5_GEN4, EVT3
    0x2E: (1280, 720),  # CCAM5_GEN4_FIXED_FRAME, EVT3
    0x21: (640, 480),  # spec: VISIONCAM_GEN3, EVT2
    0xA1: (640, 480),  # VISIONCAM_GEN3_EVK, EVT2
    0x22: (640, 480),  # spec: VISIONCAM_GEN31, EVT2
    0xA2: (640, 480),  # VISIONCAM_GEN31_EVK, EVT2
    0x29: (640, 480),  # EVK2_GEN31, EVT2
    0x1F: (1280, 720),  # spec: EVK2_GEN4, EVT2
    0x27: (1280, 720),  # spec: EVK2_GEN41, EVT2
    0x28: (640, 480),  # spec: EVK3_GEN31_EVT3, EVT3
    0x30: (1280, 720),  # spec: EVK3_GEN41, EVT3
    0x31: (1280, 720),  # spec: EVK3_IMX636, EVT3
    0x32: (1280, 720),  # spec: EVK2_IMX636, EVT3
}

#: OpenEB ``SYSTEM_EVK2_SAPHIR``: older Prophesee systems wrote legacy EVT 2.1.
_SYSTEM_EVK2_SAPHIR = 0x37


def _format_parts(header: dict[str, str]) -> tuple[str | None, dict[str, str]]:
    """Split the ``format`` value ``NAME;opt=val;...`` (docs/formats/prophesee-raw.md).

    Returns ``(name, options)``; ``(None, {})`` when there is no ``format``
    key. Options without ``=`` are ignored.
    """
    value = header.get("format")
    if value is None or not value.strip():
        return None, {}
    parts = value.split(";")
    options: dict[str, str] = {}
    for part in parts[1:]:
        if "=" in part:
            key, _, val = part.partition("=")
            options[key.strip()] = val.strip()
    return parts[0].strip(), options


def _system_id(header: dict[str, str]) -> int | None:
    """``system_ID`` parsed like OpenEB's ``std::stol`` (None if missing/bad)."""
    value = header.get("system_ID")
    return None if value is None else _leading_int(value)


def raw_geometry(header: dict[str, str]) -> tuple[int, int] | None:
    """Sensor ``(width, height)`` of a RAW file from its parsed header.

    Precedence (docs/formats/prophesee-raw.md, "Sensor size"):

    1. ``format`` options ``width`` and ``height`` (both needed);
    2. ``geometry`` ``WxH`` (e.g. ``1280x720``; a zero side is invalid);
    3. the ``system_ID`` table (OpenEB's full table, a superset of the
       starred excerpt in docs/formats/prophesee-raw.md);
    4. otherwise None.

    Simplifications vs OpenEB (which would reject such files instead): a
    ``geometry`` that disagrees with the format options is ignored (format
    wins), and the system_ID table is used whatever the integrator names.
    """
    _, options = _format_parts(header)
    if "width" in options and "height" in options:
        width = _leading_int(options["width"])
        height = _leading_int(options["height"])
        if width is not None and height is not None and width > 0 and height > 0:
            return width, height
    geometry = header.get("geometry")
    if geometry is not None and "x" in geometry:
        w_text, _, h_text = geometry.partition("x")
        width = _leading_int(w_text)
        height = _leading_int(h_text)
        if width is not None and height is not None and width > 0 and height > 0:
            return width, height
    system_id = _system_id(header)
    if system_id is not None and system_id in _SYSTEM_ID_GEOMETRY:
        return _SYSTEM_ID_GEOMETRY[system_id]
    return None


def raw_format_name(header: dict[str, str]) -> str:
    """Event format of a RAW file: ``"evt2"``, ``"evt21"`` or ``"evt3"``.

    docs/formats/prophesee-raw.md: the ``format`` name (``EVT2``, ``EVT21``, ``EVT3``) wins;
    without a ``format`` key the legacy ``evt`` key (``2.0``, ``2.1``,
    ``3.0``) is used. Anything else raises ``ValueError``.
    """
    name, _ = _format_parts(header)
    by_name = {"EVT2": "evt2", "EVT21": "evt21", "EVT3": "evt3"}
    if name is not None:
        if name in by_name:
            return by_name[name]
        msg = f"unsupported RAW format {name!r}"
        raise ValueError(msg)
    legacy = {"2.0": "evt2", "2.1": "evt21", "3.0": "evt3"}
    evt = header.get("evt")
    if evt is not None and evt in legacy:
        return legacy[evt]
    msg = f"cannot tell the RAW event format (no format key, evt = {evt!r})"
    raise ValueError(msg)


def evt21_order(header: dict[str, str]) -> str:
    """Bit order of an EVT 2.1 file: ``"little"`` or ``"legacy"``.

    docs/formats/prophesee-raw.md, "Which order": the ``format`` option ``endianness``; else
    the header key ``endianness``; else ``legacy`` when ``system_ID`` is
    present, non-zero and below SYSTEM_EVK2_SAPHIR (0x37); else ``little``
    (OpenEB's default decoder). Any value other than ``legacy`` means
    ``little``.
    """
    _, options = _format_parts(header)
    endianness = options.get("endianness")
    if endianness is None:
        endianness = header.get("endianness")
    if endianness is not None and endianness.strip():
        return "legacy" if endianness.strip() == "legacy" else "little"
    system_id = _system_id(header)
    if system_id is not None and 0 < system_id < _SYSTEM_EVK2_SAPHIR:
        return "legacy"
    return "little"


# --------------------------------------------------------------------------- #
# EVT 2.0 (docs/formats/prophesee-raw.md; OpenEB evt2_decoder.h)              #
# --------------------------------------------------------------------------- #

EVT2_CD_OFF = 0x0
EVT2_CD_ON = 0x1
EVT2_TIME_HIGH = 0x8
EVT2_EXT_TRIGGER = 0xA
#: MaxTimestamp = (2^28 - 1) << 6, LoopThreshold = 10000, TimeLoop = 2^34.
EVT2_MAX_TIMESTAMP = ((1 << 28) - 1) << 6
EVT2_LOOP_THRESHOLD = 10_000
EVT2_TIME_LOOP = EVT2_MAX_TIMESTAMP + (1 << 6)


def decode_evt2(
    payload: bytes, width: int | None = None, height: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode an EVT 2.0 payload (32-bit little-endian words, no header).

    Word type = bits 31..28 (docs/formats/prophesee-raw.md, EVT 2.0 table). Rules per branch:

    * Start-up: every word before the first TIME_HIGH is skipped; the base
      time is that TIME_HIGH's 28-bit value << 6, the loop offset L = 0.
    * TIME_HIGH (0x8): ``new = (value << 6) + L``; a drop of at least
      MaxTimestamp - LoopThreshold below the current base is a time loop:
      ``L += 2**34`` and ``new += 2**34`` (OpenEB ``has_time_loop``). In all
      cases ``base = new`` (smaller drops are applied as they are).
    * CD_OFF (0x0) / CD_ON (0x1): ``t = base + ts`` (bits 27..22),
      x = bits 21..11, y = bits 10..0, ON iff type == 1.
    * EXT_TRIGGER (0xA): ``t = base + ts``, id = bits 12..8, rising = bit 0.
    * Any other type (IMU 0xD, OTHER 0xE, CONTINUED 0xF, 0xB, 0xC, padding,
      ...) is skipped one word at a time.

    Out-of-sensor rule: when ``width``/``height`` are given, CD events with
    ``x >= width`` or ``y >= height`` are dropped (triggers are kept).
    """
    words = _words(payload, "<I", 4)
    events: list[EventRow] = []
    triggers: list[TriggerRow] = []

    start = 0
    while start < len(words) and (words[start] >> 28) != EVT2_TIME_HIGH:
        start += 1  # start-up: drop words before the first TIME_HIGH
    if start == len(words):
        return _events_array(events), _triggers_array(triggers)
    base = (words[start] & 0x0FFFFFFF) << 6
    loop_offset = 0

    for word in words[start:]:
        kind = word >> 28
        if kind == EVT2_TIME_HIGH:
            # TIME_HIGH with 34-bit loop detection (docs/formats/prophesee-raw.md, EVT 2.0).
            new = ((word & 0x0FFFFFFF) << 6) + loop_offset
            if new < base and base - new >= EVT2_MAX_TIMESTAMP - EVT2_LOOP_THRESHOLD:
                loop_offset += EVT2_TIME_LOOP
                new += EVT2_TIME_LOOP
            base = new
        elif kind in (EVT2_CD_OFF, EVT2_CD_ON):
            # CD event: ts[27..22], x[21..11], y[10..0], polarity = type.
            t = base + ((word >> 22) & 0x3F)
            x = (word >> 11) & 0x7FF
            y = word & 0x7FF
            if _inside(x, y, width, height):
                events.append((t, x, y, kind == EVT2_CD_ON))
        elif kind == EVT2_EXT_TRIGGER:
            # EXT_TRIGGER: ts[27..22], id[12..8], value[0].
            t = base + ((word >> 22) & 0x3F)
            triggers.append((t, (word >> 8) & 0x1F, bool(word & 1)))
        # else: IMU / OTHER / CONTINUED / unused types: skipped, one word.
    return _events_array(events), _triggers_array(triggers)


# --------------------------------------------------------------------------- #
# EVT 2.1 (docs/formats/prophesee-raw.md; OpenEB evt21_decoder.h)             #
# --------------------------------------------------------------------------- #

EVT21_NEG = 0x0
EVT21_POS = 0x1
EVT21_TIME_HIGH = 0x8
EVT21_EXT_TRIGGER = 0xA
EVT21_OTHERS = 0xE
EVT21_ERC_SUBTYPES = (0x0014, 0x0016)
EVT21_TIME_HIGH_MASK = ((1 << 28) - 1) << 6
EVT21_MAX_TIME_HIGH = ((1 << 28) - 1) << 6


def _evt21_set_time_high(last: int, t: int) -> int:
    """OpenEB ``set_last_high_timestamp`` (docs/formats/prophesee-raw.md, EVT 2.1).

    ``last_high = last & (((2**28)-1) << 6)``, ``loop = last >> 34``. A new
    TIME_HIGH below ``last_high`` by at least the full 28-bit range
    increments the loop; a smaller decrease ("TimeHigh discrepancy") is
    applied as it is, without a loop. ``last`` is only rewritten when ``t``
    differs from ``last_high`` (which also clears the 6 low bits).
    """
    last_high = last & EVT21_TIME_HIGH_MASK
    loop = last >> 34
    if t < last_high and last_high - t >= EVT21_MAX_TIME_HIGH:
        loop += 1
    if t != last_high:
        last = (t & EVT21_TIME_HIGH_MASK) | (loop << 34)
    return last


def decode_evt21(
    payload: bytes,
    order: str = "little",
    width: int | None = None,
    height: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode an EVT 2.1 payload (64-bit little-endian words, no header).

    Each word is split into a 32-bit ``hdr`` and a 32-bit ``mask``
    (docs/formats/prophesee-raw.md): ``order="little"``: hdr = high half, mask = low half;
    ``order="legacy"``: hdr = low half, mask = high half. In ``hdr``:
    type = bits 31..28, ts = bits 27..22, x = bits 21..11, y = bits 10..0.

    * Start-up: words before the first TIME_HIGH are dropped; ``last`` = 0.
    * TIME_HIGH (0x8): :func:`_evt21_set_time_high` with
      ``t = (hdr & 0x0FFFFFFF) << 6`` (the first TIME_HIGH too).
    * EVT_NEG (0x0) / EVT_POS (0x1): ``last = (last & ~63) + ts``; one event
      per set bit k of ``mask``, increasing k, at ``x_base + k``, same y and
      t, ON iff type == 1.
    * EXT_TRIGGER (0xA): ``last = (last & ~63) + ts``; id = hdr bits 12..8,
      rising = hdr bit 0.
    * OTHERS (0xE): ERC subtypes 0x0014 / 0x0016 (hdr bits 15..0) update
      ``last = (last & ~63) + ts`` and output nothing; others do nothing.
    * Any other type (CONTINUED 0xF, ...) is skipped.

    Out-of-sensor rule: with ``width``/``height`` given, events with
    ``x >= width`` or ``y >= height`` are dropped.
    """
    if order not in ("little", "legacy"):
        msg = f"order must be 'little' or 'legacy', not {order!r}"
        raise ValueError(msg)
    words = _words(payload, "<Q", 8)
    events: list[EventRow] = []
    triggers: list[TriggerRow] = []

    def split(word: int) -> tuple[int, int]:
        if order == "little":
            return word >> 32, word & 0xFFFFFFFF
        return word & 0xFFFFFFFF, word >> 32

    start = 0
    while start < len(words) and (split(words[start])[0] >> 28) != EVT21_TIME_HIGH:
        start += 1  # start-up: drop words before the first TIME_HIGH
    last = 0

    for word in words[start:]:
        hdr, mask = split(word)
        kind = hdr >> 28
        ts = (hdr >> 22) & 0x3F
        if kind == EVT21_TIME_HIGH:
            last = _evt21_set_time_high(last, (hdr & 0x0FFFFFFF) << 6)
        elif kind in (EVT21_NEG, EVT21_POS):
            last = (last & ~0x3F) + ts
            x_base = (hdr >> 11) & 0x7FF
            y = hdr & 0x7FF
            for k in range(32):
                if (mask >> k) & 1:
                    x = x_base + k
                    if _inside(x, y, width, height):
                        events.append((last, x, y, kind == EVT21_POS))
        elif kind == EVT21_EXT_TRIGGER:
            last = (last & ~0x3F) + ts
            triggers.append((last, (hdr >> 8) & 0x1F, bool(hdr & 1)))
        elif kind == EVT21_OTHERS and (hdr & 0xFFFF) in EVT21_ERC_SUBTYPES:
            last = (last & ~0x3F) + ts  # ERC count: time update only
        # else: CONTINUED and unknown types are skipped.
    return _events_array(events), _triggers_array(triggers)


# --------------------------------------------------------------------------- #
# EVT 3.0 (docs/formats/evt3.md)                                              #
# --------------------------------------------------------------------------- #

EVT3_ADDR_Y = 0x0
EVT3_ADDR_Y_EM = 0x1
EVT3_ADDR_X = 0x2
EVT3_VECT_BASE_X = 0x3
EVT3_VECT_12 = 0x4
EVT3_VECT_8 = 0x5
EVT3_TIME_LOW = 0x6
EVT3_TIME_HIGH = 0x8
EVT3_EXT_TRIGGER = 0xA


def decode_evt3(payload: bytes, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode an EVT 3.0 payload (16-bit little-endian words, no header).

    Word type = bits 15..12, content = bits 11..0 (docs/formats/evt3.md). State:
    ``y`` (content of the last type-0 ADDR_Y, bit 11 included), ``is_cd``,
    ``base_x`` and ``base_on`` (the last VECT_BASE_X, advanced by each vector
    word) and the time ``loop * 2**24 + high * 2**12 + low``.

    * Start-up: words before the first TIME_HIGH are dropped; then
      ``high = max(value - 1, 0)``, ``loop = low = 0`` and that TIME_HIGH is
      processed normally.
    * TIME_HIGH (0x8): ``high >= value + 2048`` -> ``loop += 1``; a value
      different from ``high`` resets ``low`` to 0; then ``high = value``.
    * TIME_LOW (0x6): ``low = content``, backward steps applied as they are.
    * ADDR_Y (0x0): ``y = content``, ``is_cd = True``. EM ADDR_Y (0x1):
      ``is_cd = False``.
    * ADDR_X (0x2): when the row is valid (``is_cd and y < height``), one
      event at x = bits 10..0, ON = bit 11, current time.
    * VECT_BASE_X (0x3): ``base_x`` = bits 10..0, ``base_on`` = bit 11.
    * VECT_12 (0x4) / VECT_8 (0x5): when the row is valid, one event per set
      bit k of the low 12 / 8 bits at ``base_x + k``; valid row or not,
      ``base_x`` then grows by 12 / 8. Each word stands alone, in any number
      and order.
    * EXT_TRIGGER (0xA): trigger at the current time, id = bits 11..8,
      rising = bit 0.
    * Everything else (OTHERS 0xE, CONTINUED 0x7 / 0xF, unused types) is
      skipped.

    Out-of-sensor rule: any event with ``x >= width`` or ``y >= height`` is
    dropped.
    """
    words = _words(payload, "<H", 2)
    events: list[EventRow] = []
    triggers: list[TriggerRow] = []

    started = False
    loop = high = low = 0
    y = 0
    is_cd = False
    base_x = 0
    base_on = False
    for word in words:
        kind = word >> 12
        content = word & 0xFFF
        if not started:
            if kind != EVT3_TIME_HIGH:
                continue
            started = True
            high = max(content - 1, 0)
        now = (loop << 24) + (high << 12) + low
        valid = is_cd and y < height
        if kind == EVT3_TIME_HIGH:
            if high >= content + 2048:
                loop += 1
            if high != content:
                low = 0
            high = content
        elif kind == EVT3_TIME_LOW:
            low = content
        elif kind == EVT3_ADDR_Y:
            y = content
            is_cd = True
        elif kind == EVT3_ADDR_Y_EM:
            is_cd = False
        elif kind == EVT3_ADDR_X:
            x = content & 0x7FF
            if valid and _inside(x, y, width, height):
                events.append((now, x, y, bool(content & 0x800)))
        elif kind == EVT3_VECT_BASE_X:
            base_x = content & 0x7FF
            base_on = bool(content & 0x800)
        elif kind in (EVT3_VECT_12, EVT3_VECT_8):
            bits = 12 if kind == EVT3_VECT_12 else 8
            for k in range(bits):
                x = base_x + k
                if valid and (content >> k) & 1 and _inside(x, y, width, height):
                    events.append((now, x, y, base_on))
            base_x += bits
        elif kind == EVT3_EXT_TRIGGER:
            triggers.append((now, (content >> 8) & 0xF, bool(content & 1)))
    return _events_array(events), _triggers_array(triggers)


# --------------------------------------------------------------------------- #
# DAT (docs/formats/dat.md; OpenEB DAT_helper.h, event2d.h, dat_tools.py)     #
# --------------------------------------------------------------------------- #

DAT_EVENT_2D = 0x00
DAT_EVENT_CD = 0x0C
DAT_EVENT_EXT_TRIGGER = 0x0E
DAT_RECORD_SIZE = 8
#: Bytes after the header before the records: event type, event size.
DAT_PREAMBLE_SIZE = 2


def decode_dat(data: bytes) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Decode a whole Prophesee DAT file (header included).

    * Header: :func:`parse_header` (same ``% `` rule as RAW; a ``% end`` line
      is accepted and consumed). Then 2 bytes: event type, event size (must
      be 8, else ``ValueError``). Fewer than 2 bytes after the header: empty.
    * Records: 8 bytes little-endian, ``uint32 t`` then ``uint32 w``; a
      trailing partial record is ignored.
    * Type 0x00 (Event2d) / 0x0C (EventCD), v2 layout (default):
      x = w bits 0..13, y = bits 14..27, ON = bit 28 only. OpenEB's C++
      struct has a 4-bit ``p`` (bits 28..31) but Metavision's ``dat_tools.py``
      masks only bit 28; we follow the Python tool (``p = 2`` -> OFF).
    * v1 layout, used only when the header ``Version`` is exactly ``"1"``:
      x = bits 0..8, y = bits 9..16, ON = bit 17.
    * Type 0x0E (EventExtTrigger): records are triggers, rising =
      ``w & 0xF != 0`` (p:4), id = bits 26..31 (``id:6``).
    * Other types raise ``ValueError``.
    * 32-bit time unwrap: a record whose 32-bit ``t`` is below the previous
      record's by more than 2**31 adds 2**32 to the offset for it and all
      following records; small decreases are kept as they are.
    * ``Width``/``Height`` keys are only returned in the header mapping (no
      event is dropped).
    """
    header, offset = parse_header(data)
    events: list[EventRow] = []
    triggers: list[TriggerRow] = []
    if len(data) - offset < DAT_PREAMBLE_SIZE:
        return _events_array(events), _triggers_array(triggers), header
    ev_type = data[offset]
    ev_size = data[offset + 1]
    if ev_size != DAT_RECORD_SIZE:
        msg = f"DAT event size {ev_size} != {DAT_RECORD_SIZE}"
        raise ValueError(msg)
    if ev_type not in (DAT_EVENT_2D, DAT_EVENT_CD, DAT_EVENT_EXT_TRIGGER):
        msg = f"unsupported DAT event type 0x{ev_type:02X}"
        raise ValueError(msg)
    body = data[offset + DAT_PREAMBLE_SIZE :]
    usable = (len(body) // DAT_RECORD_SIZE) * DAT_RECORD_SIZE
    is_v1 = header.get("Version") == "1"

    wrap_offset = 0
    previous: int | None = None
    for t32, w in struct.iter_unpack("<II", bytes(body[:usable])):
        if previous is not None and previous - t32 > 1 << 31:
            wrap_offset += 1 << 32  # 32-bit timestamp wrap
        previous = t32
        t = t32 + wrap_offset
        if ev_type == DAT_EVENT_EXT_TRIGGER:
            triggers.append((t, (w >> 26) & 0x3F, bool(w & 0xF)))
        elif is_v1:
            events.append((t, w & 0x1FF, (w >> 9) & 0xFF, bool((w >> 17) & 1)))
        else:
            events.append((t, w & 0x3FFF, (w >> 14) & 0x3FFF, bool((w >> 28) & 1)))
    return _events_array(events), _triggers_array(triggers), header


# --------------------------------------------------------------------------- #
# RAW file front-end                                                          #
# --------------------------------------------------------------------------- #


def decode_raw_file(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray, dict[str, str], tuple[int, int] | None]:
    """Decode a whole Prophesee RAW file.

    Parses the header (:func:`parse_header`), picks the decoder from the
    ``format`` name or the legacy ``evt`` key (:func:`raw_format_name`),
    resolves the geometry (:func:`raw_geometry`) and, for EVT 2.1, the bit
    order (:func:`evt21_order`). The geometry is passed to the decoder so
    out-of-sensor events are dropped; EVT 3.0 needs it (``ValueError`` when
    it cannot be resolved).

    Returns ``(events, triggers, header, (width, height) or None)``.
    """
    data = Path(path).read_bytes()
    header, offset = parse_header(data)
    payload = data[offset:]
    geometry = raw_geometry(header)
    width, height = geometry if geometry is not None else (None, None)
    kind = raw_format_name(header)
    if kind == "evt2":
        events, triggers = decode_evt2(payload, width=width, height=height)
    elif kind == "evt21":
        events, triggers = decode_evt21(
            payload, order=evt21_order(header), width=width, height=height
        )
    else:
        if width is None or height is None:
            msg = "EVT 3.0 needs the sensor geometry, none in the header"
            raise ValueError(msg)
        events, triggers = decode_evt3(payload, width, height)
    return events, triggers, header, geometry
