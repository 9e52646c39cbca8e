"""A slow, plain-Python ECF block codec written from shared/specs/hdf5-ecf.md §3 alone.

It is the independent reference for aerflow's numba kernels (aerflow.formats._ecf): the
encoder follows §3.3-§3.6 step by step, so that with a fresh encoder per block it gives the
bytes the official codec gives; the decoder follows §3.3-§3.5 and checks every read against
the block's length (§2.3). Events are (t, x, y, p) tuples: t a signed 64-bit integer, x and y
unsigned 16-bit, p the signed 16-bit polarity of Metavision's EventCD.
"""

from __future__ import annotations

import math
import struct

__all__ = ["BlockError", "decode_block", "encode_block", "layout_of"]

Event = tuple[int, int, int, int]

_U64 = (1 << 64) - 1
MAX_COUNT = 65535
LAYOUT_A, LAYOUT_B, LAYOUT_C = "A", "B", "C"


class BlockError(ValueError):
    """The block is malformed (it ends early, or a run goes past the event count)."""


# -- encoding ---------------------------------------------------------------------------------


def _sample_size(count: int) -> int:
    return count if count < 16 else math.floor(0.25 * count + 0.5)


def choose_layout(x: list[int], y: list[int]) -> str:
    """§3.6: A when y rarely repeats in the sample, else B when x rarely continues a short
    ascending run, else C."""
    k = _sample_size(len(x))
    repeats = sum(1 for i in range(1, k) if y[i] == y[i - 1])
    if repeats <= math.floor(0.20 * k + 0.5):
        return LAYOUT_A
    hits = 0
    start = x[0]
    for i in range(1, k):
        if x[i - 1] < x[i] <= start + 5:
            hits += 1
        else:
            start = x[i]
    return LAYOUT_B if hits <= math.floor(0.08 * k + 0.5) else LAYOUT_C


def _encode_times(t: list[int]) -> bytes:
    out = bytearray(struct.pack("<Q", t[0] & _U64 if t else 0))
    count = len(t)
    cur = t[0] & _U64 if t else 0
    i = 0
    while i < count:
        ti = t[i] & _U64
        if ti >= (cur + 15) & _U64:
            dt = (ti - cur) & _U64
            while dt:
                out.append(0xF0 | (dt & 0xF))
                dt >>= 4
            cur = ti
        if ti >= cur:
            h = ti - cur
            cur = ti
        else:
            h = 0  # clamped: backward time is stored as the running time
        c = 1
        while i + c < count and t[i + c] & _U64 == cur:
            c += 1
        if c >= 15:
            out.append(h << 4 | 15)
            out += struct.pack("<H", c)
        else:
            out.append(h << 4 | c)
        i += c
    return bytes(out)


def _encode_y_runs(y: list[int]) -> bytes:
    out = bytearray()
    i = 0
    while i < len(y):
        c = 1
        while i + c < len(y) and y[i + c] == y[i]:
            c += 1
        if c >= 31:
            out += struct.pack("<HH", (y[i] << 5 | 31) & 0xFFFF, c)
        else:
            out += struct.pack("<H", (y[i] << 5 | c) & 0xFFFF)
        i += c
    return bytes(out)


def _groups(values: list[int]) -> list[list[int]]:
    padded = values + [0] * (-len(values) % 4)  # a fresh encoder's buffers hold zeros
    return [padded[i : i + 4] for i in range(0, len(padded), 4)]


def _encode_layout_a(x: list[int], y: list[int], p: list[int]) -> bytes:
    values = [(y[i] << 12 | x[i] << 1 | p[i]) & 0xFFFFFFFF for i in range(len(x))]
    out = bytearray()
    for v0, v1, v2, v3 in _groups(values):
        w0 = (v0 << 8 | (v1 & 0xFF)) & 0xFFFFFFFF
        w1 = ((v1 >> 8) << 16 | (v2 & 0xFFFF)) & 0xFFFFFFFF
        w2 = ((v2 >> 16) << 24 | (v3 & 0xFFFFFF)) & 0xFFFFFFFF
        out += struct.pack("<3I", w0, w1, w2)
    return bytes(out)


def _encode_layout_b(x: list[int], p: list[int]) -> bytes:
    values = [(x[i] << 1 | p[i]) & 0xFFFF for i in range(len(x))]
    out = bytearray()
    for v0, v1, v2, v3 in _groups(values):
        w0 = (v0 << 4 | (v1 & 0xF)) & 0xFFFF
        w1 = ((v1 >> 4) << 8 | (v2 & 0xFF)) & 0xFFFF
        w2 = ((v2 >> 8) << 12 | (v3 & 0xFFF)) & 0xFFFF
        out += struct.pack("<3H", w0, w1, w2)
    return bytes(out)


def _encode_masked_x(x: list[int]) -> bytes:
    out = bytearray()
    i = 0
    while i < len(x):
        base = x[i]
        mask = 0
        i += 1
        for j in range(5):
            if i < len(x) and x[i] == base + j + 1:
                mask |= 1 << (4 - j)
                i += 1
        out += struct.pack("<H", (base << 5 | mask) & 0xFFFF)
    return bytes(out)


def _encode_p_runs(p: list[int]) -> bytes:
    bits = [v & 1 for v in p]
    out = bytearray()
    i = 0
    while i < len(bits):
        c = 1
        while i + c < len(bits) and bits[i + c] == bits[i]:
            c += 1
        if c >= 127:
            out.append(bits[i] << 7 | 127)
            out += struct.pack("<H", c)
        else:
            out.append(bits[i] << 7 | c)
        i += c
    return bytes(out)


def encode_block(events: list[Event]) -> bytes:
    """One ECF block of ``events``, as a fresh official encoder writes it."""
    count = len(events)
    if count > MAX_COUNT:
        raise ValueError(f"an ECF block holds at most {MAX_COUNT} events")
    t = [e[0] for e in events]
    x = [e[1] & 0xFFFF for e in events]
    y = [e[2] & 0xFFFF for e in events]
    p = [e[3] & 0xFF for e in events]  # the low byte of the i16 polarity
    layout = choose_layout(x, y) if count else LAYOUT_A
    header = count << 2 | (2 if layout == LAYOUT_A else 1 if layout == LAYOUT_B else 0)
    out = struct.pack("<I", header) + _encode_times(t)
    if layout == LAYOUT_A:
        return out + _encode_layout_a(x, y, p)
    out += _encode_y_runs(y)
    if layout == LAYOUT_B:
        return out + _encode_layout_b(x, p)
    return out + _encode_masked_x(x) + _encode_p_runs(p)


# -- decoding ---------------------------------------------------------------------------------


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise BlockError(
                f"the block ends at byte {len(self.data)}, inside a field at {self.at}"
            )
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("<H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def peek(self) -> int | None:
        return self.data[self.at] if self.at < len(self.data) else None


def layout_of(block: bytes) -> str:
    """The layout letter a block's header names."""
    header = struct.unpack_from("<I", block)[0]
    return LAYOUT_A if header & 2 else LAYOUT_B if header & 1 else LAYOUT_C


def _decode_times(data: _Bytes, count: int) -> list[int]:
    cur = struct.unpack("<Q", data.take(8))[0]
    times: list[int] = []
    while len(times) < count:
        byte = data.u8()
        if byte >> 4 == 15:
            dt = byte & 0xF
            nibbles = 1
            while (nxt := data.peek()) is not None and nxt >> 4 == 15:
                if nibbles == 16:
                    raise BlockError("a time jump of more than 16 nibbles")
                dt |= (data.u8() & 0xF) << (4 * nibbles)
                nibbles += 1
            cur = (cur + dt) & _U64
            continue
        cur = (cur + (byte >> 4)) & _U64
        run = byte & 0xF
        if run == 15:
            run = data.u16()
        if len(times) + run > count:
            raise BlockError("a time run goes past the event count")
        times.extend([cur] * run)
    return [t - (1 << 64) if t >= 1 << 63 else t for t in times]


def _decode_y_runs(data: _Bytes, count: int) -> list[int]:
    ys: list[int] = []
    while len(ys) < count:
        word = data.u16()
        run = word & 31
        if run == 31:
            run = data.u16()
        if len(ys) + run > count:
            raise BlockError("a y run goes past the event count")
        ys.extend([word >> 5] * run)
    return ys


def decode_block(block: bytes) -> list[Event]:
    """The events of one ECF block (all ``count`` of them, padding included)."""
    data = _Bytes(block)
    header = data.u32()
    count = header >> 2
    if count > MAX_COUNT:
        raise BlockError(f"a block of {count} events (at most {MAX_COUNT})")
    times = _decode_times(data, count)
    groups = (count + 3) // 4
    xs: list[int] = []
    ys: list[int] = []
    ps: list[int] = []
    if header & 2:
        for _ in range(groups):
            w0, w1, w2 = data.u32(), data.u32(), data.u32()
            for v in (
                w0 >> 8,
                (w0 & 0xFF) | (w1 >> 16) << 8,
                (w1 & 0xFFFF) | (w2 >> 24) << 16,
                w2 & 0xFFFFFF,
            ):
                ys.append((v >> 12) & 0x7FF)
                xs.append((v >> 1) & 0x7FF)
                ps.append(v & 1)
    else:
        ys = _decode_y_runs(data, count)
        if header & 1:
            for _ in range(groups):
                w0, w1, w2 = data.u16(), data.u16(), data.u16()
                for v in (
                    w0 >> 4,
                    (w0 & 0xF) | (w1 >> 8) << 4,
                    (w1 & 0xFF) | (w2 >> 12) << 8,
                    w2 & 0xFFF,
                ):
                    xs.append(v >> 1)
                    ps.append(v & 1)
        else:
            while len(xs) < count:
                word = data.u16()
                base = word >> 5
                xs.append(base)
                xs.extend(base + j + 1 for j in range(5) if word >> (4 - j) & 1)
            while len(ps) < count:
                byte = data.u8()
                run = byte & 127
                if run == 127:
                    run = data.u16()
                if len(ps) + run > count:
                    raise BlockError("a polarity run goes past the event count")
                ps.extend([byte >> 7] * run)
    return [(times[i], xs[i], ys[i], ps[i]) for i in range(count)]
