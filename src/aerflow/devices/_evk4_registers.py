"""The EVK4's (IMX636's) own registers and its register sequences: stop, destroy, init and
the thermometer/illuminance/filter block (``usb-sequences.md`` §3.2–3.5), with the [I] choices
of :mod:`.prophesee_evk4` where ND and OpenEB disagree."""

from __future__ import annotations

from collections.abc import Mapping

from ._prophesee import (
    MIPI_CONTROL,
    Row,
)

# -- registers --------------------------------------------------------------------------------
LIFO_CTRL = 0x000C
LIFO_STATUS = 0x0010
LIFO_STATUS_VALID = 1 << 29
LIFO_STATUS_COUNT = (1 << 29) - 1
"""ND keeps 29 bits of the illuminance count; OE 27 (§3.13 item 15)."""
DIG_PAD2_CTRL = 0x0044
DIG_PAD2_SYNC_OUTPUT = 0xCCFCFCCF
DIG_PAD2_SYNC_INPUT = 0xCCFFFCCF
ADC_CONTROL = 0x004C
ADC_CONTROL_OFF = 0x00007640
ADC_CONTROL_START = 0x00007647
"""adc_en, adc_clk_en and adc_start (reserved bits 3..31 = 0xEC8)."""
ADC_STATUS = 0x0050
ADC_STATUS_DONE = 1 << 11
ADC_STATUS_VALUE = 0x3FF
TEMP_CTRL = 0x005C
TEMP_CTRL_CLOSE = 0x00200083
IPH_MIRR_CTRL = 0x0074
TEMPERATURE_SCALE = 0.19
TEMPERATURE_OFFSET = -56.0
TEMPERATURE_POLLS = 5
"""[I] Reads of AdcStatus until its done bit (OE polls up to 5; ND reads once, §3.13 item 14)."""
ILLUMINANCE_POLLS = 10
"""[I] Reads of LifoStatus until its valid bit (OE polls up to 10; ND reads once)."""

MIPI_ON = 0x000002F9
TIME_BASE_INTERNAL = 0x00000645
"""Enabled, internal."""
TIME_BASE_PRIMARY_ARMED = 0x0000064E
"""External mode, primary, external mode enabled; not yet enabled."""
TIME_BASE_PRIMARY = 0x0000064F
TIME_BASE_SECONDARY = 0x0000064B
"""Enabled, external, secondary."""
PRIMARY_PAD_WAIT = 1e-3
TRIGGER_INPUT_ON = 0x0000C5FF
"""EDF 0x7004 with bit 10 (external trigger input) set."""
TRIGGER_INPUT_OFF = 0x0000C1FF
ERC_TABLE_CLOSED_READ_MODIFY_WRITE = None
"""[I] After the ERC table, read 0x602C and clear bit 0 (§3.13 item 4) instead of ND's 0x2."""

DIGITAL_MASK = 0x9100
PIXEL_MASK_SLOTS = 64
DIGITAL_MASK_ENABLE = 1 << 31

BIAS_ADDRESSES: Mapping[str, int] = {
    "pr": 0x1000,
    "fo": 0x1004,
    "hpf": 0x100C,
    "diff_on": 0x1010,
    "diff": 0x1014,
    "diff_off": 0x1018,
    "inv": 0x101C,
    "refr": 0x1020,
    "reqpuy": 0x1040,
    "reqpux": 0x1044,
    "sendreqpdy": 0x1048,
    "unknown_1": 0x104C,
    "unknown_2": 0x1050,
}
"""The 13 bias registers, in the order ND reads and writes them."""
BIASES_WRITTEN_WHOLE = frozenset({"fo", "hpf", "diff_on", "diff", "diff_off", "refr"})
"""[I] The six biases OE writes as 0x11A10000 + value (as ND writes all 13). The other seven
keep the word read from the camera at open with only bits 0..7 changed (§3.13 item 12); with
a camera whose words read 0x11A100VV both rules write ND's values."""

# -- sequences (usb-sequences.md §3.2–3.5) ----------------------------------------------------
STOP: tuple[Row, ...] = (
    (0x0004, 0xF0005042, 0.0),  # A1
    (0x002C, 0x0022C324, 0.0),  # A2
    (0x9028, 0x00000002, 1e-3),  # A3
    (0x9008, 0x00000644, 0.0),  # A4
    (0xB000, 0x000002F8, 300e-6),  # A5
)
"""Analog stop, output off, time base stopped, MIPI off (A1..A5; ND = OE)."""

DESTROY: tuple[Row, ...] = (
    (0x0070, 0x00400008, 0.0),  # B1
    (0x006C, 0x0EE47114, 500e-6),  # B2
    (0xA00C, 0x00020400, 500e-6),  # B3
    (0xA010, 0x00008068, 200e-6),  # B4
    (0x1104, 0x00000000, 200e-6),  # B5
    (0xA020, 0x00000050, 200e-6),  # B6
    (0xA004, 0x000B0500, 200e-6),  # B7
    (0xA008, 0x00002404, 200e-6),  # B8
    (0xA000, 0x000B0500, 0.0),  # B9
    (0xB044, 0x00000000, 0.0),  # B10
    (0xB004, 0x0000000A, 0.0),  # B11
    (0xB040, 0x0000000E, 0.0),  # B12
    (0xB0C8, 0x00000000, 0.0),  # B13
    (0xB040, 0x00000006, 0.0),  # B14
    (0xB040, 0x00000004, 0.0),  # B15
    (0x0000, 0x4F006442, 0.0),  # B16
    (0x0000, 0x0F006442, 0.0),  # B17
    (0x00B8, 0x00000401, 0.0),  # B18
    (0x00B8, 0x00000400, 0.0),  # B19
    (0xB07C, 0x00000000, 0.0),  # B20
)
"""Analog and digital power-down (B1..B20; ND = OE)."""

RESET = 0x400004
"""Board reset register [I]: 1 asserts, 0 releases."""
POWER_ON_WAIT = 1.0
"""[I] After C1: OE waits 1 s here, ND not at all; the larger is kept (§3.13 item 1)."""
RESET_ASSERT_WAIT = 1.0
"""After asserting the reset (C2): 1 s in ND, 500 ms in OE."""
RESET_RELEASE_WAIT = 1.0
"""[I] After releasing the reset (C3): 500 ms in ND, 1 s in OE; the larger is kept."""
MIPI_CONFIGURED_WAIT = 1.0
"""After MipiControl ← 0x158 (C4): 1 s in ND, none in OE."""
MIPI_PHY_WAIT = 300e-6
"""After C5: 300 µs in ND, none in OE."""

INIT: tuple[Row, ...] = (
    (0x001C, 0x00000001, POWER_ON_WAIT),  # C1
    (RESET, 0x00000001, RESET_ASSERT_WAIT),  # C2
    (RESET, 0x00000000, RESET_RELEASE_WAIT),  # C3
    (MIPI_CONTROL, 0x00000158, MIPI_CONFIGURED_WAIT),  # C4
    (0xB044, 0x00000000, MIPI_PHY_WAIT),  # C5
    (0xB004, 0x0000000A, 0.0),  # C6
    (0xB040, 0x00000000, 0.0),  # C7
    (0xB0C8, 0x00000000, 0.0),  # C8
    (0xB040, 0x00000000, 0.0),  # C9
    (0xB040, 0x00000000, 0.0),  # C10
    (0x0000, 0x4F006442, 0.0),  # C11
    (0x0000, 0x0F006442, 0.0),  # C12
    (0x00B8, 0x00000400, 0.0),  # C13
    (0x00B8, 0x00000400, 0.0),  # C14
    (0xB07C, 0x00000000, 0.0),  # C15
    (0xB074, 0x00000002, 0.0),  # C16
    (0xB078, 0x000000A0, 0.0),  # C17
    (0x00C0, 0x00000110, 0.0),  # C18
    (0x00C0, 0x00000210, 0.0),  # C19
    (0xB120, 0x00000001, 0.0),  # C20
    (0xE120, 0x00000000, 0.0),  # C21
    (0xB068, 0x00000004, 0.0),  # C22
    (0xB07C, 0x00000001, 10e-6),  # C23
    (0xB07C, 0x00000003, 1e-3),  # C24
    (0x00B8, 0x00000401, 0.0),  # C25
    (0x00B8, 0x00000409, 0.0),  # C26
    (0x0000, 0x4F006442, 0.0),  # C27
    (0x0000, 0x4F00644A, 0.0),  # C28
    (0xB080, 0x00000077, 0.0),  # C29
    (0xB084, 0x0000000F, 0.0),  # C30
    (0xB088, 0x00000037, 0.0),  # C31
    (0xB08C, 0x00000037, 0.0),  # C32
    (0xB090, 0x000000DF, 0.0),  # C33
    (0xB094, 0x00000057, 0.0),  # C34
    (0xB098, 0x00000037, 0.0),  # C35
    (0xB09C, 0x00000067, 0.0),  # C36
    (0xB0A0, 0x00000037, 0.0),  # C37
    (0xB0A4, 0x0000002F, 0.0),  # C38
    (0xB0AC, 0x00000028, 0.0),  # C39
    (0xB0CC, 0x00000001, 0.0),  # C40
    (0xB000, 0x000002F8, 0.0),  # C41
    (0xB004, 0x0000008A, 0.0),  # C42
    (0xB01C, 0x00000030, 0.0),  # C43
    (0xB020, 0x00002000, 0.0),  # C44
    (0xB02C, 0x000000FF, 0.0),  # C45
    (0xB030, 0x00003E80, 0.0),  # C46
    (0xB028, 0x00000FA0, 0.0),  # C47
    (0xA000, 0x000B0501, 200e-6),  # C48
    (0xA008, 0x00002405, 200e-6),  # C49
    (0xA004, 0x000B0501, 200e-6),  # C50
    (0xA020, 0x00000150, 200e-6),  # C51
    (0xB040, 0x00000007, 0.0),  # C52
    (0xB064, 0x00000006, 0.0),  # C53
    (0xB040, 0x0000000F, 100e-6),  # C54
    (0xB004, 0x0000008A, 200e-6),  # C55
    (0xB0C8, 0x00000003, 200e-6),  # C56
    (0xB044, 0x00000001, 0.0),  # C57
    (0xB000, 0x000002F9, 0.0),  # C58
    (0x7008, 0x00000001, 0.0),  # C59
    (0x7000, 0x00070001, 0.0),  # C60
    (0x8000, 0x0001E085, 0.0),  # C61
    (0x9008, 0x00000644, 0.0),  # C62
    (0x0004, 0xF0005042, 0.0),  # C63
    (0x0018, 0x00000200, 0.0),  # C64
    (0x1014, 0x11A1504D, 0.0),  # C65
    (0x9004, 0x00000000, 1e-3),  # C66
    (0x9000, 0x00000200, 0.0),  # C67
)
"""Reset, MIPI and readout set-up (C1..C67; the first five delays per §3.13 item 1)."""

ADC_MISC_CTRL_CALIBRATE = 0x00000212
"""[I] D3: ND writes 0x42 (0x210 put into an 8-bit field); the register's reserved bits
2..9 reset to 0x84, which gives 0x212 (§3.13 item 6)."""
IPH_MIRROR_WAIT = 20e-6
"""[I] After D9: ND 10 µs, OE 20 µs; OE's longer waits are kept (§3.13 item 8)."""
IPH_MIRROR_SETTLE = 1.02e-3
"""[I] After D10: OE's 20 µs then 1 ms (ND: 20 µs)."""
LIFO_WAIT = 1e-3
"""[I] After D11 and D12: OE's 1 ms each (ND: 5 µs, then none)."""

SENSORS: tuple[Row, ...] = (
    (0x004C, 0x00007641, 0.0),  # D1
    (0x004C, 0x00007643, 0.0),  # D2
    (0x0054, ADC_MISC_CTRL_CALIBRATE, 100e-6),  # D3
    (0x005C, 0x00200082, 0.0),  # D4
    (0x005C, 0x00200083, 100e-6),  # D5
    (0x004C, 0x00007641, 0.0),  # D6
    (0x004C, 0x00007643, 0.0),  # D7
    (0x0054, 0x00001212, 0.0),  # D8
    (0x0074, 0x00000002, IPH_MIRROR_WAIT),  # D9
    (0x0074, 0x00000003, IPH_MIRROR_SETTLE),  # D10
    (0x000C, 0x00000001, LIFO_WAIT),  # D11
    (0x000C, 0x00000003, LIFO_WAIT),  # D12
    (0x000C, 0x00000007, 0.0),  # D13
    (0xC008, 0x00089C0F, 0.0),  # D14
    (0xC000, 0x00000005, 0.0),  # D15
    (0xD00C, 0x0000022D, 0.0),  # D16
    (0xD004, 0x01000B90, 0.0),  # D17
    (0xD008, 0x00030D40, 0.0),  # D18
    (0xD0C0, 0x0A118004, 0.0),  # D19
    (0xD0C4, 0x00000000, 0.0),  # D20
    (0xD000, 0x00000005, 0.0),  # D21
)
"""Thermometer, illuminance counter, anti-flicker and STC/trail filters (bypassed), D1..D21."""
