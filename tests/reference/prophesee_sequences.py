"""The register sequences of the Prophesee cameras, transcribed from the protocol notes
(usb-sequences §3 for the EVK4, §4 for the EVK3 HD; sources, section marks and word formulas
in ``docs/formats/usb-prophesee.md``), and the USB operation logs the emulated cameras must
record for them.

The tables below are the spec's rows as printed (step id, address, value, delay after in
seconds), neuromorphic-drivers' (ND) sequences. Nothing here comes from aerflow: the mask and
bias words are computed with the spec's own formulas (the byte-reversal recipe for the y
mask, the pixel codes for the pixel mask), and the builders at the bottom apply, each in one
visible place, the documented departures from ND that the driver makes where the spec
recommends them (usb-sequences §3.13 and §4.9, listed in docs/formats/usb-prophesee.md; all
[I], inferred, not hardware-checked).
``tests/test_devices_prophesee.py`` also checks these tables against the spec file itself
when it is present.
"""

from __future__ import annotations

from typing import Any

Rows = tuple[tuple[str, int, int, float], ...]
Log = list[tuple[Any, ...]]

EVK4_STOP: Rows = (
    ("A1", 0x0004, 0xF0005042, 0.0),
    ("A2", 0x002C, 0x0022C324, 0.0),
    ("A3", 0x9028, 0x00000002, 0.001),
    ("A4", 0x9008, 0x00000644, 0.0),
    ("A5", 0xB000, 0x000002F8, 0.0003),
)

EVK4_DESTROY: Rows = (
    ("B1", 0x0070, 0x00400008, 0.0),
    ("B2", 0x006C, 0x0EE47114, 0.0005),
    ("B3", 0xA00C, 0x00020400, 0.0005),
    ("B4", 0xA010, 0x00008068, 0.0002),
    ("B5", 0x1104, 0x00000000, 0.0002),
    ("B6", 0xA020, 0x00000050, 0.0002),
    ("B7", 0xA004, 0x000B0500, 0.0002),
    ("B8", 0xA008, 0x00002404, 0.0002),
    ("B9", 0xA000, 0x000B0500, 0.0),
    ("B10", 0xB044, 0x00000000, 0.0),
    ("B11", 0xB004, 0x0000000A, 0.0),
    ("B12", 0xB040, 0x0000000E, 0.0),
    ("B13", 0xB0C8, 0x00000000, 0.0),
    ("B14", 0xB040, 0x00000006, 0.0),
    ("B15", 0xB040, 0x00000004, 0.0),
    ("B16", 0x0000, 0x4F006442, 0.0),
    ("B17", 0x0000, 0x0F006442, 0.0),
    ("B18", 0x00B8, 0x00000401, 0.0),
    ("B19", 0x00B8, 0x00000400, 0.0),
    ("B20", 0xB07C, 0x00000000, 0.0),
)

EVK4_INIT: Rows = (
    ("C1", 0x001C, 0x00000001, 0.0),
    ("C2", 0x400004, 0x00000001, 1.0),
    ("C3", 0x400004, 0x00000000, 0.5),
    ("C4", 0xB000, 0x00000158, 1.0),
    ("C5", 0xB044, 0x00000000, 0.0003),
    ("C6", 0xB004, 0x0000000A, 0.0),
    ("C7", 0xB040, 0x00000000, 0.0),
    ("C8", 0xB0C8, 0x00000000, 0.0),
    ("C9", 0xB040, 0x00000000, 0.0),
    ("C10", 0xB040, 0x00000000, 0.0),
    ("C11", 0x0000, 0x4F006442, 0.0),
    ("C12", 0x0000, 0x0F006442, 0.0),
    ("C13", 0x00B8, 0x00000400, 0.0),
    ("C14", 0x00B8, 0x00000400, 0.0),
    ("C15", 0xB07C, 0x00000000, 0.0),
    ("C16", 0xB074, 0x00000002, 0.0),
    ("C17", 0xB078, 0x000000A0, 0.0),
    ("C18", 0x00C0, 0x00000110, 0.0),
    ("C19", 0x00C0, 0x00000210, 0.0),
    ("C20", 0xB120, 0x00000001, 0.0),
    ("C21", 0xE120, 0x00000000, 0.0),
    ("C22", 0xB068, 0x00000004, 0.0),
    ("C23", 0xB07C, 0x00000001, 1e-05),
    ("C24", 0xB07C, 0x00000003, 0.001),
    ("C25", 0x00B8, 0x00000401, 0.0),
    ("C26", 0x00B8, 0x00000409, 0.0),
    ("C27", 0x0000, 0x4F006442, 0.0),
    ("C28", 0x0000, 0x4F00644A, 0.0),
    ("C29", 0xB080, 0x00000077, 0.0),
    ("C30", 0xB084, 0x0000000F, 0.0),
    ("C31", 0xB088, 0x00000037, 0.0),
    ("C32", 0xB08C, 0x00000037, 0.0),
    ("C33", 0xB090, 0x000000DF, 0.0),
    ("C34", 0xB094, 0x00000057, 0.0),
    ("C35", 0xB098, 0x00000037, 0.0),
    ("C36", 0xB09C, 0x00000067, 0.0),
    ("C37", 0xB0A0, 0x00000037, 0.0),
    ("C38", 0xB0A4, 0x0000002F, 0.0),
    ("C39", 0xB0AC, 0x00000028, 0.0),
    ("C40", 0xB0CC, 0x00000001, 0.0),
    ("C41", 0xB000, 0x000002F8, 0.0),
    ("C42", 0xB004, 0x0000008A, 0.0),
    ("C43", 0xB01C, 0x00000030, 0.0),
    ("C44", 0xB020, 0x00002000, 0.0),
    ("C45", 0xB02C, 0x000000FF, 0.0),
    ("C46", 0xB030, 0x00003E80, 0.0),
    ("C47", 0xB028, 0x00000FA0, 0.0),
    ("C48", 0xA000, 0x000B0501, 0.0002),
    ("C49", 0xA008, 0x00002405, 0.0002),
    ("C50", 0xA004, 0x000B0501, 0.0002),
    ("C51", 0xA020, 0x00000150, 0.0002),
    ("C52", 0xB040, 0x00000007, 0.0),
    ("C53", 0xB064, 0x00000006, 0.0),
    ("C54", 0xB040, 0x0000000F, 0.0001),
    ("C55", 0xB004, 0x0000008A, 0.0002),
    ("C56", 0xB0C8, 0x00000003, 0.0002),
    ("C57", 0xB044, 0x00000001, 0.0),
    ("C58", 0xB000, 0x000002F9, 0.0),
    ("C59", 0x7008, 0x00000001, 0.0),
    ("C60", 0x7000, 0x00070001, 0.0),
    ("C61", 0x8000, 0x0001E085, 0.0),
    ("C62", 0x9008, 0x00000644, 0.0),
    ("C63", 0x0004, 0xF0005042, 0.0),
    ("C64", 0x0018, 0x00000200, 0.0),
    ("C65", 0x1014, 0x11A1504D, 0.0),
    ("C66", 0x9004, 0x00000000, 0.001),
    ("C67", 0x9000, 0x00000200, 0.0),
)

EVK4_SENSORS: Rows = (
    ("D1", 0x004C, 0x00007641, 0.0),
    ("D2", 0x004C, 0x00007643, 0.0),
    ("D3", 0x0054, 0x00000042, 0.0001),
    ("D4", 0x005C, 0x00200082, 0.0),
    ("D5", 0x005C, 0x00200083, 0.0001),
    ("D6", 0x004C, 0x00007641, 0.0),
    ("D7", 0x004C, 0x00007643, 0.0),
    ("D8", 0x0054, 0x00001212, 0.0),
    ("D9", 0x0074, 0x00000002, 1e-05),
    ("D10", 0x0074, 0x00000003, 2e-05),
    ("D11", 0x000C, 0x00000001, 5e-06),
    ("D12", 0x000C, 0x00000003, 0.0),
    ("D13", 0x000C, 0x00000007, 0.0),
    ("D14", 0xC008, 0x00089C0F, 0.0),
    ("D15", 0xC000, 0x00000005, 0.0),
    ("D16", 0xD00C, 0x0000022D, 0.0),
    ("D17", 0xD004, 0x01000B90, 0.0),
    ("D18", 0xD008, 0x00030D40, 0.0),
    ("D19", 0xD0C0, 0x0A118004, 0.0),
    ("D20", 0xD0C4, 0x00000000, 0.0),
    ("D21", 0xD000, 0x00000005, 0.0),
)

EVK3_HD_DIGITAL_INIT: Rows = (
    ("H1", 0x7008, 0x00000001, 0.0),
    ("H2", 0x7000, 0xFFFF0001, 0.0),
    ("H3", 0x8000, 0x0001E085, 0.0),
    ("H4", 0x9008, 0x00000644, 0.0),
    ("H5", 0x0064, 0x00000001, 0.0),
    ("H6", 0xB074, 0x00000002, 0.0),
    ("H7", 0xB078, 0x000000A0, 0.0),
    ("H8", 0x0000, 0x10006442, 0.0),
    ("H9", 0x0000, 0x10001442, 0.0),
    ("H10", 0x0000, 0x10001442, 0.0),
    ("H11", 0xB068, 0x00000004, 0.0),
    ("H12", 0xB07C, 0x00000003, 0.0),
    ("H13", 0x0000, 0x50001442, 0.0),
    ("H14", 0x0000, 0x5000144A, 0.0),
    ("H15", 0x0000, 0x5000140A, 0.0),
    ("H16", 0x0000, 0x5000640A, 0.0),
    ("H17", 0x0000, 0x5000644A, 0.0),
    ("H18", 0xB080, 0x00000077, 0.0),
    ("H19", 0xB084, 0x0000000F, 0.0),
    ("H20", 0xB088, 0x00000037, 0.0),
    ("H21", 0xB08C, 0x00000037, 0.0),
    ("H22", 0xB090, 0x000000DF, 0.0),
    ("H23", 0xB094, 0x00000057, 0.0),
    ("H24", 0xB098, 0x00000037, 0.0),
    ("H25", 0xB09C, 0x00000067, 0.0),
    ("H26", 0xB0A0, 0x00000037, 0.0),
    ("H27", 0xB0A4, 0x0000002F, 0.0),
    ("H28", 0xB0AC, 0x00000028, 0.0),
    ("H29", 0xB0CC, 0x00000001, 0.0),
    ("H30", 0xB000, 0x000002D8, 0.0),
    ("H31", 0xB004, 0x0000008A, 0.0),
    ("H32", 0xB01C, 0x00000030, 0.0),
    ("H33", 0xB020, 0x00002000, 0.0),
    ("H34", 0xB02C, 0x000000FF, 0.0),
    ("H35", 0xB030, 0x00003E80, 0.0),
    ("H36", 0xB028, 0x00000FA0, 0.0),
    ("H37", 0xB040, 0x00000007, 0.0),
    ("H38", 0xA000, 0x000000A1, 0.0),
    ("H39", 0xA008, 0x00002401, 0.0),
    ("H40", 0xA004, 0x000000A1, 0.0),
    ("H41", 0xA020, 0x00000160, 0.0),
    ("H42", 0xB040, 0x0000000F, 0.0),
    ("H43", 0xB004, 0x0000008A, 0.0),
    ("H44", 0xB0C8, 0x00000003, 0.0),
    ("H45", 0xB044, 0x00000001, 0.0),
    ("H46", 0xB000, 0x000002DD, 0.0),
    ("H47", 0x9008, 0x00000640, 0.0),
    ("H48", 0x8000, 0x0001E085, 0.0),
    ("H49", 0x7008, 0x00000001, 0.0),
    ("H50", 0x7000, 0x00070001, 0.0),
    ("H51", 0x6000, 0x00155403, 0.0),
    ("H52", 0xD000, 0x00000005, 0.0),
    ("H53", 0xC000, 0x00000005, 0.0),
)

EVK3_HD_READOUT_INIT: Rows = (
    ("K1", 0x9000, 0x00000208, 0.0),
    ("K2", 0x7008, 0x00000001, 0.0),
    ("K3", 0x7000, 0x00070001, 0.0),
    ("K4", 0x8000, 0x0001E085, 0.0),
    ("K5", 0x9008, 0x00000644, 0.0),
    ("K6", 0x0004, 0xF0005042, 0.0),
    ("K7", 0x002C, 0x0022C324, 0.0),
    ("K8", 0xA000, 0x000002A1, 0.0),
    ("K9", 0xA000, 0x000002A1, 0.0),
    ("K10", 0xA008, 0x00082401, 0.0),
    ("K11", 0xA004, 0x000002A1, 0.0),
    ("K12", 0xA004, 0x000002A1, 0.0),
    ("K13", 0xA020, 0x00000160, 0.0),
    ("K14", 0xA020, 0x00000160, 0.0),
    ("K15", 0xA008, 0x00082401, 0.0),
    ("K16", 0x004C, 0x00007141, 0.0),
    ("K17", 0x0054, 0x00000210, 0.0),
    ("K18", 0x0008, 0x60000000, 0.0),
    ("K19", 0x1104, 0x00000001, 0.0),
    ("K20", 0xA010, 0x0000A06B, 0.0),
    ("K21", 0x1100, 0x00000004, 0.0),
    ("K22", 0xA010, 0x0180A063, 0.0),
    ("K23", 0xA00C, 0x00000400, 0.0),
    ("K24", 0xA00C, 0x00000401, 0.0),
    ("K25", 0xA00C, 0x00020401, 0.0),
    ("K26", 0x0070, 0x00400000, 0.0),
    ("K27", 0x006C, 0x0EE47117, 0.0),
    ("K28", 0x006C, 0x0EE4711F, 0.0),
    ("K29", 0x0070, 0x00480000, 0.0),
)

EVK3_HD_CLOSE: Rows = (
    ("Z1", 0x0004, 0xF0005042, 0.0),
    ("Z2", 0x002C, 0x0022C324, 0.0),
    ("Z3", 0xC000, 0x00000002, 0.0),
    ("Z4", 0x9028, 0x00000002, 0.0),
    ("Z5", 0xC000, 0x00000005, 0.001),
    ("Z6", 0x9008, 0x00000644, 0.0),
    ("Z7", 0xB000, 0x000002D8, 0.0003),
    ("Z8", 0x0070, 0x00400000, 0.0),
    ("Z9", 0x006C, 0x0EE47114, 0.0005),
    ("Z10", 0xA00C, 0x00000400, 0.0005),
    ("Z11", 0xA010, 0x00008068, 0.0002),
    ("Z12", 0x1104, 0x00000000, 0.0002),
    ("Z13", 0xA020, 0x00000060, 0.0002),
    ("Z14", 0xA004, 0x000002A0, 0.0002),
    ("Z15", 0xA008, 0x00002400, 0.0002),
    ("Z16", 0xA000, 0x000002A0, 0.0),
    ("Z17", 0xB044, 0x00000002, 0.0),
    ("Z18", 0xB004, 0x0000000A, 0.0),
    ("Z19", 0xB040, 0x0000000E, 0.0),
    ("Z20", 0xB0C8, 0x00000000, 0.0),
    ("Z21", 0xB040, 0x00000006, 0.0),
    ("Z22", 0xB040, 0x00000004, 0.0),
    ("Z23", 0x0000, 0x50006442, 0.0),
    ("Z24", 0x0000, 0x10006442, 0.0),
    ("Z25", 0xB07C, 0x00000000, 0.0),
)


# -- EP0 and informational frames (usb-devices.md §2.2.2, usb-sequences.md §2.1, §3.1) ---------
TYPE_REQUEST = ("C", 0xC0, 0x72, 0, 0, 2)  # P1
SERIAL_FRAME = bytes.fromhex("7200000000000000")  # P2, P10, G2
# P3..P5: GET_DESCRIPTOR read whole (255 bytes), compared as decoded strings (§2.2.2
# recommendation) instead of ND's truncated buffers.
DESCRIPTORS = [
    ("C", 0x80, 0x06, 0x0300, 0x0000, 255),
    ("C", 0x80, 0x06, 0x0301, 0x0409, 255),
    ("C", 0x80, 0x06, 0x0302, 0x0409, 255),
]
INFORMATION = [  # P6..P13
    bytes.fromhex("7900000000000000"),
    bytes.fromhex("7a00000000000000"),
    bytes.fromhex("0000010000000000"),
    bytes.fromhex("030001000400000000000000"),
    bytes.fromhex("7200000000000000"),
    bytes.fromhex("0000010000000000"),
    bytes.fromhex("010001000400000000000000"),
    bytes.fromhex("030001000400000000000000"),
]
# P14 / H1 / X0, in this order: pr, fo, hpf, diff_on, diff, diff_off, inv, refr, reqpuy,
# reqpux, sendreqpdy, unknown_1, unknown_2.
EVK4_BIAS_ADDRESSES = (
    0x1000, 0x1004, 0x100C, 0x1010, 0x1014, 0x1018, 0x101C, 0x1020,
    0x1040, 0x1044, 0x1048, 0x104C, 0x1050,
)  # fmt: skip
EVK4_BIAS_DEFAULTS_016 = (
    0x7C, 0x53, 0x00, 0x66, 0x4D, 0x49, 0x5B, 0x14, 0x8C, 0x7C, 0x94, 0x74, 0x51,
)  # fmt: skip
"""usb-devices.md §2.2.6, ND 0.16's absolute defaults (the emulated camera's factory values)."""
# §3.13 item 12 [I]: OE writes only fo, hpf, diff_on, diff, diff_off and refr as
# 0x11A10000 + v; the other seven keep the word read at P14, bits 0..7 replaced.
EVK4_OE_BIASES = (0x1004, 0x100C, 0x1010, 0x1014, 0x1018, 0x1020)


def writes(rows: Rows, changes: dict[str, tuple[int | None, float | None]] | None = None) -> Log:
    """The log of a table: ("W", address, value) then ("sleep", s) when s > 0. ``changes``
    maps a step id to (new value or None, new delay or None)."""
    changes = changes or {}
    log: Log = []
    for step, address, value, delay in rows:
        new_value, new_delay = changes.get(step, (None, None))
        value = value if new_value is None else new_value
        delay = delay if new_delay is None else new_delay
        log.append(("W", address, value))
        if delay:
            log.append(("sleep", delay))
    return log


def write_list(pairs: list[tuple[int, int]]) -> Log:
    return [("W", address, value) for address, value in pairs]


# -- mask and bias words, from the spec's formulas (§3.8) -----------------------------------
def x_words(columns: set[int] | list[int] | tuple[int, ...]) -> list[int]:
    """H2: word k = bytes 4k..4k+3 (little-endian) of the 1280-bit column mask."""
    mask = bytearray(160)
    for column in columns:
        mask[column // 8] |= 1 << (column % 8)
    return [int.from_bytes(mask[4 * k : 4 * k + 4], "little") for k in range(40)]


def y_words(rows: set[int] | list[int] | tuple[int, ...]) -> list[int]:
    """H3: R = the first 90 bytes of the 768-bit row mask; S[i] = R[89 - i] bit-reversed;
    words 0..21 = S[4k..4k+3] little-endian; word 22 = S[88], S[89], 0xFF, 0x00."""
    mask = bytearray(96)
    for row in rows:
        mask[row // 8] |= 1 << (row % 8)
    r = mask[:90]
    s = bytes(int(f"{r[89 - i]:08b}"[::-1], 2) for i in range(90))
    words = [int.from_bytes(s[4 * k : 4 * k + 4], "little") for k in range(22)]
    words.append(int.from_bytes(bytes((s[88], s[89], 0xFF, 0x00)), "little"))
    return words


def pixel_words(pixels: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> list[int]:
    """H5: code = x + y * 1280 + 1 per used slot (0: unused); the word is
    x + (719 - y) * 0x10000 + 0x80000000 with x = (code - 1) % 1280 and
    719 - y = 719 - (code - 1) // 1280."""
    codes = [x + y * 1280 + 1 for x, y in pixels] + [0] * (64 - len(pixels))
    words = []
    for code in codes:
        if code == 0:
            words.append(0)
        else:
            x = (code - 1) % 1280
            y = 719 - (code - 1) // 1280
            words.append(x + y * 0x10000 + 0x80000000)
    return words


def evk4_bias_word(address: int, value: int, factory_word: int) -> int:
    if address in EVK4_OE_BIASES:
        return 0x11A10000 + value
    return (factory_word & 0xFFFFFF00) | value


# -- EVK4 ------------------------------------------------------------------------------------
# §3.13 item 1 [I]: the larger of ND's and OE's delays after C1..C5.
EVK4_INIT_CHANGES: dict[str, tuple[int | None, float | None]] = {
    "C1": (None, 1.0),
    "C2": (None, 1.0),
    "C3": (None, 1.0),
    "C4": (None, 1.0),
    "C5": (None, 0.0003),
}
# §3.13 item 6 [I]: D3 = 0x212 (reserved bits 2..9 at their reset value 0x84);
# item 8 [I]: OE's longer illuminance bring-up waits (iph 20 µs, then 20 µs + 1 ms; lifo 1 ms
# and 1 ms).
EVK4_SENSORS_CHANGES: dict[str, tuple[int | None, float | None]] = {
    "D3": (0x212, None),
    "D9": (None, 0.00002),
    "D10": (None, 0.00102),
    "D11": (None, 0.001),
    "D12": (None, 0.001),
}


def erc(limiter: tuple[int, int] | None, table_closed: Log) -> Log:
    """E1..E13 (§3.6); ``table_closed`` is the E8 step's log."""
    log: Log = [("W", 0x6000, 0x00155400), ("W", 0x6004, 1 if limiter else 0)]
    if limiter:
        log += [("W", 0x6008, limiter[0] & 0x3FF), ("W", 0x600C, limiter[1] & 0x3FFFFF)]
    log += [("W", 0x6028, 0x3 if limiter else 0x2), ("W", 0x602C, 0x1)]
    log += [("W", 0x6800 + 4 * k, 0x08080808) for k in range(230)]
    log += table_closed
    log += [("W", 0x6400 + 4 * k, (2 * k + 1) * 0x10000 + 2 * k) for k in range(256)]
    log += [
        ("W", 0x6050, 1 if limiter else 0),
        ("W", 0x6060, 0),
        ("W", 0x6070, 0),
        ("W", 0x6000, 0x00155401),
    ]
    return log


# §3.13 item 4 [I]: E8 reads 0x602C and clears bit 0; the emulated camera models bit 1
# reading back as 1 (what ND's 0x2 suggests), so the write is ND's 0x2.
EVK4_E8 = [("R", 0x602C), ("W", 0x602C, 0x2)]


def evk4_identify() -> Log:
    return [TYPE_REQUEST, ("B", SERIAL_FRAME)]


def evk4_configuration(
    *,
    factory_words: tuple[int, ...],
    offsets: tuple[int, ...] = (0,) * 13,
    columns: tuple[int, ...] = (),
    rows: tuple[int, ...] = (),
    pixels: tuple[tuple[int, int], ...] = (),
    intersection: bool = False,
) -> Log:
    """H1..H5, the first configuration at open."""
    log: Log = [
        ("W", address, evk4_bias_word(address, (word & 0xFF) + offset, word))
        for address, word, offset in zip(EVK4_BIAS_ADDRESSES, factory_words, offsets, strict=True)
    ]
    log += [("W", 0x2000 + 4 * k, word) for k, word in enumerate(x_words(columns))]
    log += [("W", 0x4000 + 4 * k, word) for k, word in enumerate(y_words(rows))]
    log.append(("W", 0x0004, 0xF0005022 if intersection else 0xF0005062))  # H4
    log += [("W", 0x9100 + 4 * j, word) for j, word in enumerate(pixel_words(pixels))]
    return log


def evk4_start(
    clock: str = "internal", *, enable_output: bool = True, intersection: bool = False
) -> Log:
    """I1..I5 (§3.9) with the clock table."""
    log: Log = [("W", 0xB000, 0x000002F9)]
    if enable_output:
        log.append(("W", 0x9028, 0x00000000))
    if clock == "internal":
        log.append(("W", 0x9008, 0x00000645))
    elif clock == "primary":
        log += [
            ("W", 0x9008, 0x0000064E),
            ("W", 0x0044, 0xCCFCFCCF),
            ("sleep", 0.001),
            ("W", 0x9008, 0x0000064F),
        ]
    elif clock == "secondary":
        log += [("W", 0x9008, 0x0000064B), ("W", 0x0044, 0xCCFFFCCF)]
    else:
        raise ValueError(clock)
    log.append(("W", 0x002C, 0x0022C724))
    log.append(("W", 0x0004, 0xF0005402 if intersection else 0xF0005442))
    return log


def evk4_open(
    *,
    factory_words: tuple[int, ...] | None = None,
    offsets: tuple[int, ...] = (0,) * 13,
    columns: tuple[int, ...] = (),
    rows: tuple[int, ...] = (),
    pixels: tuple[tuple[int, int], ...] = (),
    intersection: bool = False,
    trigger: bool = True,
    clock: str = "internal",
    limiter: tuple[int, int] | None = None,
    enable_output: bool = True,
    drained: tuple[int, ...] = (0,),
) -> Log:
    """§3.0's order: P3..P14, stop, destroy, init, sensors, ERC, trigger, drain, serial,
    configuration, start."""
    if factory_words is None:
        factory_words = tuple(0x11A10000 + value for value in EVK4_BIAS_DEFAULTS_016)
    log: Log = list(DESCRIPTORS)
    log += [("B", frame) for frame in INFORMATION]
    log += [("R", address) for address in EVK4_BIAS_ADDRESSES]  # P14
    log += writes(EVK4_STOP)
    log += writes(EVK4_DESTROY)
    log += writes(EVK4_INIT, EVK4_INIT_CHANGES)
    log += writes(EVK4_SENSORS, EVK4_SENSORS_CHANGES)
    log += erc(limiter, EVK4_E8)
    log.append(("W", 0x7004, 0x0000C5FF if trigger else 0x0000C1FF))  # F1
    log += [("drain", n) for n in drained]  # G1
    log.append(("B", SERIAL_FRAME))  # G2
    log += evk4_configuration(
        factory_words=factory_words,
        offsets=offsets,
        columns=columns,
        rows=rows,
        pixels=pixels,
        intersection=intersection,
    )
    log += evk4_start(clock, enable_output=enable_output, intersection=intersection)
    return log


def evk4_close(factory_words: tuple[int, ...] | None = None) -> Log:
    """X0..X6 (§3.10; X0 is ND-0.18's bias restore)."""
    if factory_words is None:
        factory_words = tuple(0x11A10000 + value for value in EVK4_BIAS_DEFAULTS_016)
    log: Log = [
        ("W", address, evk4_bias_word(address, word & 0xFF, word))
        for address, word in zip(EVK4_BIAS_ADDRESSES, factory_words, strict=True)
    ]
    log += [
        ("W", 0x000C, 0x00000000),
        ("W", 0x0074, 0x00000000),
        ("W", 0x005C, 0x00200083),
        ("W", 0x004C, 0x00007640),
    ]
    log += writes(EVK4_STOP)
    log += writes(EVK4_DESTROY)
    return log


# -- EVK3 HD ---------------------------------------------------------------------------------
# §4.9 item 8 [I]: OE's waits after the PLL and analog writes, on ND's legacy path.
EVK3_HD_DIGITAL_CHANGES: dict[str, tuple[int | None, float | None]] = {
    "H12": (None, 0.001),
    "H38": (None, 0.0002),
    "H39": (None, 0.0002),
    "H40": (None, 0.0002),
    "H41": (None, 0.0002),
    "H43": (None, 0.0002),
    "H44": (None, 0.0002),
}
EVK3_HD_READOUT_CHANGES: dict[str, tuple[int | None, float | None]] = {
    "K9": (None, 0.0002),
    "K10": (None, 0.0002),
    "K12": (None, 0.0002),
    "K14": (None, 0.0002),
    "K20": (None, 0.0003),
    "K21": (None, 0.0002),
    "K24": (None, 0.001),
    "K25": (None, 0.0003),
    "K27": (None, 0.0001),
    "K28": (None, 0.0001),
    "K29": (None, 0.001),
}
# §4.9 item 10 [I]: Z17 writes 0 (OE) instead of ND's 0x2.
EVK3_HD_CLOSE_CHANGES: dict[str, tuple[int | None, float | None]] = {"Z17": (0x0, None)}
# §4.9 item 9 [I]: the four bias registers OE writes and ND does not, before J1.
EVK3_HD_EXTRA_BIASES = [
    ("W", 0x1044, 0x01A98A7C),
    ("W", 0x1048, 0x01A98B94),
    ("W", 0x101C, 0x01A1575B),
    ("W", 0x1050, 0x01A1B251),
]
# §4.5: (address, base word) of J1..J10; the value adds v.
EVK3_HD_BIASES = (
    (0x1000, 0x01A1C400),
    (0x1004, 0x01A1E800),
    (0x1008, 0x01210000),
    (0x100C, 0x01A1FF00),
    (0x1010, 0x01A16300),
    (0x1014, 0x01A15000),
    (0x1018, 0x01A13700),
    (0x1020, 0x01A9CD00),
    (0x1040, 0x01A98A00),
    (0x104C, 0x01A19200),
)
EVK3_HD_BIAS_DEFAULTS = (0x69, 0x4A, 0x00, 0x00, 0x73, 0x50, 0x34, 0x44, 0x94, 0x78)
LEGACY_READ_FRAME = bytes.fromhex("5500000000080000")  # P5
FPGA_STATE_FRAME = bytes.fromhex("7100000000000000")  # P4, M4


def evk3_hd_identify() -> Log:
    return [TYPE_REQUEST, ("B", SERIAL_FRAME)]


def evk3_hd_open(
    *,
    biases: tuple[int, ...] = EVK3_HD_BIAS_DEFAULTS,
    columns: tuple[int, ...] = (),
    rows: tuple[int, ...] = (),
    intersection: bool = False,
    limiter: tuple[int, int] | None = None,
) -> Log:
    """§4.0's order: preamble, digital init, ERC (E8 = 0), readout init, configuration,
    bias burst and start."""
    log: Log = [
        ("sleep", 0.15),  # P3
        ("B", FPGA_STATE_FRAME),  # P4
        ("B", LEGACY_READ_FRAME),  # P5
        ("sleep", 0.005),
    ]
    log += writes(EVK3_HD_DIGITAL_INIT, EVK3_HD_DIGITAL_CHANGES)
    log += erc(limiter, [("W", 0x602C, 0x0)])  # §4.3
    log += writes(EVK3_HD_READOUT_INIT, EVK3_HD_READOUT_CHANGES)
    log += EVK3_HD_EXTRA_BIASES
    log += [("W", a, base + v) for (a, base), v in zip(EVK3_HD_BIASES, biases, strict=True)]
    log += [("W", 0x2000 + 4 * k, word) for k, word in enumerate(x_words(columns))]  # J11
    log += [("W", 0x4000 + 4 * k, word) for k, word in enumerate(y_words(rows))]  # J12
    log.append(("W", 0x0004, 0xF0005022 if intersection else 0xF0005062))  # J13
    log += [
        ("W", 0x1100, 0x00000005),  # M1
        ("W", 0x002C, 0x0022C724),  # M2
        ("W", 0x0018, 0x00000200),  # M3
        ("B", FPGA_STATE_FRAME),  # M4
        ("W", 0xB000, 0x000002DD),  # M5
        ("W", 0x9028, 0x00000000),  # M6
        ("W", 0x9008, 0x00000645),  # M7
        ("W", 0x002C, 0x0022C724),  # M8
        ("W", 0x0004, 0xF0005402 if intersection else 0xF0005442),  # M9
    ]
    return log


def evk3_hd_close() -> Log:
    return writes(EVK3_HD_CLOSE, EVK3_HD_CLOSE_CHANGES)
