"""Plain-Python references for the payloads of ROS event messages, written from the public
codec sources (ros-event-camera/event_camera_codecs, libcaer_driver, event_camera_msgs), one
event at a time, for checking aerflow's bulk kernels and for building test bags with
``rosbags`` independently of aerflow's writer.

Times: the decoders return µs (floor of ns / 1000); the encoders take events in µs.
Events are (t, x, y, on) tuples; triggers are (t, id, rising) tuples.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

Event = tuple[int, int, int, bool]
Trigger = tuple[int, int, bool]

# .msg texts, as the packages publish them (ROS1 and ROS2 spellings of Header and time).
EVENT_PACKET_MSG = {
    1: "Header header\nuint32 height\nuint32 width\nuint64 seq\nuint64 time_base\n"
    "string encoding\nbool is_bigendian\nuint8[] events\n",
    2: "std_msgs/Header header\nuint32 height\nuint32 width\nuint64 seq\nuint64 time_base\n"
    "string encoding\nbool is_bigendian\nuint8[] events\n",
}
EVENT_MSG = {
    1: "uint16 x\nuint16 y\ntime ts\nbool polarity\n",
    2: "uint16 x\nuint16 y\nbuiltin_interfaces/Time ts\nbool polarity\n",
}
EVENT_ARRAY_MSG = {
    1: "Header header\nuint32 height\nuint32 width\n{package}/Event[] events\n",
    2: "std_msgs/Header header\nuint32 height\nuint32 width\n{package}/Event[] events\n",
}
DVS_EVENT_ARRAY_MD5 = "5e8beee5a6c107e504c2e78903c224b8"  # rpg_dvs_ros, ROS1


def typestore(ros_version: int) -> Any:
    """A rosbags type store with the event message types registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if ros_version == 1 else Stores.LATEST)
    types: dict[str, Any] = {}
    for package in ("event_camera_msgs",):
        types.update(
            get_types_from_msg(EVENT_PACKET_MSG[ros_version], f"{package}/msg/EventPacket")
        )
    for package in ("dvs_msgs", "prophesee_event_msgs"):
        types.update(get_types_from_msg(EVENT_MSG[ros_version], f"{package}/msg/Event"))
        types.update(
            get_types_from_msg(
                EVENT_ARRAY_MSG[ros_version].format(package=package), f"{package}/msg/EventArray"
            )
        )
    store.register(types)
    return store


# -- mono -------------------------------------------------------------------------------------


def decode_mono(payload: bytes, time_base: int) -> list[Event]:
    """One little-endian 64-bit word per event: bit 63 polarity, bits 48-62 y, 32-47 x,
    0-31 ns after ``time_base`` (ns)."""
    out = []
    for (word,) in struct.iter_unpack("<Q", payload):
        t_ns = time_base + (word & 0xFFFFFFFF)
        out.append((t_ns // 1000, (word >> 32) & 0xFFFF, (word >> 48) & 0x7FFF, bool(word >> 63)))
    return out


def encode_mono(events: Sequence[Event], time_base: int) -> bytes:
    words = []
    for t, x, y, on in events:
        dt = t * 1000 - time_base
        assert 0 <= dt < 1 << 32
        words.append((int(on) << 63) | (y << 48) | (x << 32) | dt)
    return struct.pack(f"<{len(words)}Q", *words)


# -- trigger ----------------------------------------------------------------------------------


def decode_trigger(payload: bytes, time_base: int) -> list[Trigger]:
    """One 64-bit word per edge: bit 63 the edge (1 rising), the id in bits 48-55 (the
    decoder's 8-bit cast of bits 48-62), ns after ``time_base`` in bits 0-31."""
    out = []
    for (word,) in struct.iter_unpack("<Q", payload):
        t_ns = time_base + (word & 0xFFFFFFFF)
        out.append((t_ns // 1000, (word >> 48) & 0xFF, bool(word >> 63)))
    return out


def encode_trigger(triggers: Sequence[Trigger], time_base: int) -> bytes:
    words = []
    for t, identifier, rising in triggers:
        dt = t * 1000 - time_base
        assert 0 <= dt < 1 << 32
        words.append((int(rising) << 63) | (identifier << 48) | dt)
    return struct.pack(f"<{len(words)}Q", *words)


# -- libcaer ----------------------------------------------------------------------------------


def decode_libcaer(payload: bytes, time_base: int) -> list[Event]:
    """libcaer polarity events: uint32 data (x bits 17-31, y bits 2-16, polarity bit 1,
    valid bit 0), int32 µs timestamp. t = time_base + stamp * 1000 ns, plus 2**31 µs each
    time the stamp drops inside the message."""
    out = []
    high = time_base
    last = 0
    for data, stamp in struct.iter_unpack("<Ii", payload):
        assert stamp >= 0
        if stamp < last:
            high += (1 << 31) * 1000
        last = stamp
        t_ns = high + stamp * 1000
        out.append((t_ns // 1000, (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, bool(data >> 1 & 1)))
    return out


def encode_libcaer(events: Sequence[Event], time_base: int) -> bytes:
    """As the driver sends them: time_base holds the high bits, stamps their low 31 bits."""
    parts = []
    for t, x, y, on in events:
        stamp = (t * 1000 - time_base) // 1000
        assert stamp >= 0
        stamp %= 1 << 31
        parts.append(struct.pack("<Ii", (x << 17) | (y << 2) | (int(on) << 1) | 1, stamp))
    return b"".join(parts)


# -- libcaer_cmp ------------------------------------------------------------------------------

TIME_HIGH, TIME_LOW, ADDR_X, ADDR_Y, VECT_BASE_Y, VECT_8 = range(6)


class LibcaerCmpDecoder:
    """16-bit words, code in the top 4 bits. x, the vector polarity and base y carry over
    from message to message; time restarts at 0 (plus the message's time_base) in each."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.x = 0
        self.polarity = 0
        self.base_y = 0

    def decode(self, payload: bytes, time_base: int) -> list[Event]:
        out: list[Event] = []
        high = low = 0
        for (word,) in struct.iter_unpack("<H", payload):
            code = word >> 12
            if code == ADDR_Y:
                y = word & 0x7FF
                if self.x < self.width and y < self.height:
                    t_ns = time_base + ((high << 12) | low) * 1000
                    out.append((t_ns // 1000, self.x, y, bool(word >> 11 & 1)))
            elif code == ADDR_X:
                self.x = word & 0x7FF
            elif code == TIME_LOW:
                low = word & 0xFFF
            elif code == TIME_HIGH:
                high = word & 0xFFF
            elif code == VECT_BASE_Y:
                self.base_y = word & 0x7FF
                self.polarity = word >> 11 & 1
            elif code == VECT_8:
                for bit in range(8):
                    if word >> bit & 1:
                        y = self.base_y + bit
                        if self.x < self.width and y < self.height:
                            t_ns = time_base + ((high << 12) | low) * 1000
                            out.append((t_ns // 1000, self.x, y, bool(self.polarity)))
                self.base_y += 8
        return out


def encode_libcaer_cmp(events: Sequence[Event], time_base: int) -> bytes:
    """libcaer_driver's compression of one packet (events sorted by t, then x), times µs
    after ``time_base`` (ns): ADDR_X first, a TIME_HIGH / TIME_LOW / ADDR_X / polarity
    change or a new group of 8 rows ends the current mask, which goes out as ADDR_Y (one
    row) or VECT_BASE_Y + VECT_8."""
    words: list[int] = []
    base_us = time_base // 1000
    assert base_us * 1000 == time_base
    high = low = 0
    x = events[0][1]
    words.append((ADDR_X << 12) | x)
    y_current = 0xFFFF
    y_group = y_current & ~7
    mask = 0
    polarity = 2

    def flush() -> None:
        nonlocal mask
        if mask:
            if bin(mask).count("1") == 1:
                words.append((ADDR_Y << 12) | (polarity << 11) | y_current)
            else:
                words.append((VECT_BASE_Y << 12) | (polarity << 11) | y_group)
                words.append((VECT_8 << 12) | mask)
            mask = 0

    for t, ex, ey, on in events:
        dt = t - base_us
        assert 0 <= dt < 1 << 24
        if (dt >> 12) != high:
            high = dt >> 12
            flush()
            words.append((TIME_HIGH << 12) | high)
        if (dt & 0xFFF) != low:
            low = dt & 0xFFF
            flush()
            words.append((TIME_LOW << 12) | low)
        if ex != x:
            flush()
            x = ex
            words.append((ADDR_X << 12) | x)
        if int(on) != polarity:
            flush()
            polarity = int(on)
        if (ey & ~7) != y_group:
            flush()
            y_group = ey & ~7
            y_current = ey
        mask |= 1 << (ey & 7)
        # A single event in a group is sent as ADDR_Y with its own row.
        y_current = ey if bin(mask).count("1") == 1 else y_current
    flush()
    return struct.pack(f"<{len(words)}H", *words)


def encode_libcaer_cmp_in_order(events: Sequence[Event], time_base: int) -> bytes:
    """The same words, except that an event joins the open row group only when it has the
    group's time, x and polarity and a larger y than the group's last: decoding then gives
    the events back in their order, duplicates included (what aerflow's writer sends)."""
    base_us = time_base // 1000
    assert base_us * 1000 == time_base
    words = [(ADDR_X << 12) | events[0][1]]
    high = low = 0
    x = events[0][1]
    rows: list[int] = []  # the open group's y values, increasing
    group_key: tuple[int, int, int, int, int] | None = None  # high, low, x, polarity, group

    def flush() -> None:
        if len(rows) == 1:
            words.append((ADDR_Y << 12) | (group_key[3] << 11) | rows[0])  # type: ignore[index]
        elif rows:
            mask = sum(1 << (y & 7) for y in rows)
            words.append((VECT_BASE_Y << 12) | (group_key[3] << 11) | group_key[4])  # type: ignore[index]
            words.append((VECT_8 << 12) | mask)
        rows.clear()

    for t, ex, ey, on in events:
        dt = t - base_us
        assert 0 <= dt < 1 << 24
        assert ex < 2048
        assert ey < 2048
        key = (dt >> 12, dt & 0xFFF, ex, int(on), ey & ~7)
        if rows and key == group_key and ey > rows[-1]:
            rows.append(ey)
            continue
        flush()
        if key[0] != high:
            high = key[0]
            words.append((TIME_HIGH << 12) | high)
        if key[1] != low:
            low = key[1]
            words.append((TIME_LOW << 12) | low)
        if ex != x:
            x = ex
            words.append((ADDR_X << 12) | x)
        group_key = key
        rows.append(ey)
    flush()
    return struct.pack(f"<{len(words)}H", *words)


# -- evt3 (a plain encoder; decoding is checked against tests/reference/prophesee.py) --------


def encode_evt3(events: Sequence[Event], triggers: Sequence[Trigger]) -> bytes:
    """TIME_HIGH / TIME_LOW / ADDR_Y / ADDR_X / EXT_TRIGGER words, no vectors, for times
    below 2**24 µs, items merged in time order (triggers first at equal times)."""
    items = [(t, 0, 0, identifier, rising) for t, identifier, rising in triggers]
    items += [(t, 1, x, y, on) for t, x, y, on in events]
    items.sort(key=lambda item: (item[0], item[1]))
    words: list[int] = []
    high = low = row = -1
    for t, kind, a, b, c in items:
        assert t < 1 << 24
        if (t >> 12) != high:
            high = t >> 12
            words.append(0x8000 | high)
            low = -1
        if (t & 0xFFF) != low:
            low = t & 0xFFF
            words.append(0x6000 | low)
        if kind == 0:
            words.append(0xA000 | ((b & 0xF) << 8) | int(c))
            continue
        if b != row:
            row = b
            words.append(0x0000 | row)
        words.append(0x2000 | (int(c) << 11) | a)
    return struct.pack(f"<{len(words)}H", *words)


# -- dvs_msgs / prophesee_event_msgs, one struct per event ------------------------------------


def decode_event_array(data: bytes, count: int, cdr: bool) -> list[Event]:
    """The events of a serialised EventArray's sequence, starting at its first event."""
    out = []
    at = 0
    for _k in range(count):
        x, y = struct.unpack_from("<HH", data, at)
        at += 4
        if cdr:
            at += -at % 4  # relative to a 4-aligned sequence start
        seconds, nanoseconds = struct.unpack_from("<iI" if cdr else "<II", data, at)
        at += 8
        on = data[at] != 0
        at += 1
        if cdr:
            at += at % 2
        out.append((seconds * 1_000_000 + nanoseconds // 1000, x, y, on))
    return out


def as_events(rows: Sequence[Event]) -> np.ndarray:
    from aerflow import EVENTS_DTYPE

    return np.array([tuple(r) for r in rows], EVENTS_DTYPE)


def as_triggers(rows: Sequence[Trigger]) -> np.ndarray:
    from aerflow import TRIGGERS_DTYPE

    return np.array([tuple(r) for r in rows], TRIGGERS_DTYPE)
