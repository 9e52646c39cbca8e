"""The expected request sequences of the iniVation drivers, transcribed by hand from the
tables of the protocol notes (usb-sequences §5 DVXplorer, §6 DAVIS346; sources and section
marks in ``docs/formats/usb-inivation.md``), row by row.

Each entry is what the emulated device logs: ``("SPI_READ", module, parameter)``,
``("SPI", module, parameter, value)``, ``("MULTI", [(module, parameter, value), ...])``,
``("sleep", seconds)`` or ``("clear_halt", endpoint)``. Comments give the table's row id.

The tables are neuromorphic-drivers' (ND) sequences. Where the notes' "where ND and LC
disagree" tables (§5.7, §6.8) recommend libcaer's (LC) choice, the row is changed as they say
and marked ``[LC §5.7 #n]`` / ``[LC §6.8 #n]``; the driver keeps each such choice behind a
named constant marked [I]. The bias rows use the default settings and the clock-dependent
rows the emulators' clocks (logic 104 MHz, USB 80 MHz, ADC 30 MHz, deviation 1000).

This module imports nothing from aerflow.
"""

from __future__ import annotations

from typing import Any

LOGIC_MHZ = 104
USB_MHZ = 80
ADC_MHZ = 30

Entry = tuple[Any, ...]


def _spi(module: int, parameter: int, value: int) -> Entry:
    return ("SPI", module, parameter, value)


def _read(module: int, parameter: int) -> Entry:
    return ("SPI_READ", module, parameter)


def _sleep(seconds: float) -> Entry:
    return ("sleep", seconds)


# ------------------------------------------------------------------------------- DVXplorer

DVXPLORER_CHECKS: list[Entry] = [
    _read(6, 0),  # V2 logic version
    _read(6, 7),  # V3 logic patch
    _read(1, 0),  # V4 DVS columns
    _read(1, 1),  # V4 DVS rows
    _read(3, 0),  # V4 IMU type
    _read(1, 2),  # V5 DVS orientation
    _read(3, 1),  # V6 IMU orientation
    _read(6, 3),  # V7 logic clock
    _read(6, 5),  # V7 USB clock
    _read(6, 6),  # V7 clock deviation
]

DVXPLORER_STOP: list[Entry] = [
    _spi(1, 3, 0),  # W1 DVS run
    _spi(5, 0x3000, 0x00),  # W2 sensor mode off
    _spi(3, 2, 0),  # W3
    _spi(3, 3, 0),  # W4
    _spi(3, 4, 0),  # W5
    _spi(4, 0, 0),  # W6
    _spi(4, 11, 0),  # W7
    _spi(0, 0, 0),  # W8
    _spi(0, 1, 0),  # W9
    _spi(9, 0, 0),  # W10
    _spi(0, 3, 0),  # W11 chip run
]


def dvxplorer_bias_rows(b0b: int, b0c: int, b12: int, amp: int, on: int, off: int) -> list[Entry]:
    """X8..X13 with the given register bytes."""
    return [
        _spi(5, 0x000B, b0b),  # X8
        _spi(5, 0x000C, b0c),  # X9
        _spi(5, 0x0012, b12),  # X10
        _spi(5, 0x0018, amp),  # X11
        _spi(5, 0x001C, on),  # X12
        _spi(5, 0x001E, off),  # X13
    ]


def dvxplorer_bring_up(bias_rows: list[Entry]) -> list[Entry]:
    rows = [
        _spi(0, 3, 1),  # X1 chip run
        _sleep(0.01),
        _spi(5, 0x000D, 0x24),  # X2
        _spi(5, 0x000F, 0x07),  # X3 [LC §5.7 #1] (ND 0x00)
        _spi(5, 0x0010, 0xFF),  # X4 [LC §5.7 #1] (ND 0x00)
        _spi(5, 0x0013, 0x03),  # X5
        _spi(5, 0x0014, 0x7F),  # X6
        _spi(5, 0x0015, 0x00),  # X7
        *bias_rows,  # X8..X13
        _spi(5, 0x3011, 0xA0),  # X14
        _spi(5, 0x3019, 0x00),  # X15
        _spi(5, 0x301E, 0x01),  # X16
        _spi(5, 0x3067, 0x80),  # X17
        _spi(5, 0x3255, 0x0C),  # X18
        _spi(5, 0x3266, 0x08),  # X19
        _spi(5, 0x3235, 0x03),  # X20
        _spi(5, 0x3236, 0xE7),  # X21
        _spi(5, 0x3234, 0x31),  # X22
        _spi(5, 0x323D, 0x32),  # X23
        _spi(5, 0x3243, 0x32),  # X24
        _spi(5, 0x3247, 0x32),  # X25
        _spi(5, 0x3259, 0x32),  # X26
        _spi(5, 0x3244, 0x00),  # X27
        _spi(5, 0x3245, 0x00),
        _spi(5, 0x3246, 0x00),
        _spi(5, 0x3256, 0x00),  # X28
        _spi(5, 0x3257, 0x00),
        _spi(5, 0x3258, 0x01),
        _spi(5, 0x323C, 0x04),  # X29
        _spi(5, 0x324C, 0x06),  # X30
        _spi(5, 0x324E, 0x04),  # X31
        _spi(5, 0x324F, 0x06),  # X32
        _spi(5, 0x3253, 0x08),  # X33
        _spi(5, 0x3254, 0x0A),  # X34
        _spi(5, 0x3261, 0x00),  # [LC §5.7 #4] LC25 next SELX start
        _spi(5, 0x3262, 0x0F),  # LC25
        _spi(5, 0x3251, 0x0A),  # LC25 max event number
        _spi(5, 0x324B, 0x04),  # X35
        # X36 becomes LC29 [LC §5.7 #5]: activity decision bypassed, with thresholds
        _spi(5, 0x3500, 0x01),
        _spi(5, 0x3501, 0x01),
        _spi(5, 0x3502, 0x2C),
        _spi(5, 0x3503, 0x00),
        _spi(5, 0x3504, 0x14),
        _spi(5, 0x3505, 0x01),
        _spi(5, 0x3506, 0x03),
        _spi(5, 0x3513, 0x01),
        _spi(5, 0x3514, 0x2C),
        _spi(5, 0x3600, 0x01),  # X37
        _spi(5, 0x3260, 0x00),  # X38
        _spi(5, 0x3248, 0x00),  # X39
        _spi(5, 0x3200, 0x06),  # X40 [LC §5.7 #6] bit 2 set (ND 0x02)
        _spi(5, 0x3202, 0x00),  # X41
        _spi(5, 0x3255, 0x0D),  # X42
        _spi(5, 0x3204, 0x00),  # X43
    ]
    # LC21 [LC §5.7 #5]: area blocking, 0x7F / 0xFF at 0x3205 + 2i / 0x3206 + 2i, i = 0..19
    for i in range(20):
        rows += [_spi(5, 0x3205 + 2 * i, 0x7F), _spi(5, 0x3206 + 2 * i, 0xFF)]
    rows += [
        _spi(5, 0x3201, 0x00),  # X44
        _spi(5, 0x325C, 0x00),  # X45
        _spi(5, 0x325D, 0xAF),  # X46
        _spi(5, 0x325E, 0xC8),
        _spi(5, 0x3240, 0x00),  # X47
        _spi(5, 0x3241, 0x00),  # X48
        _spi(5, 0x3242, 0x02),  # X48 [LC §5.7 #3] ED = 2 (ND 7)
        _spi(5, 0x3201, 0x01),  # X49
        _spi(5, 0x3300, 0x01),  # X50
        _spi(5, 0x3305, 0x00),  # X51
        _spi(5, 0x3306, 0x00),
        _spi(5, 0x3307, 0x02),  # X52
        _spi(5, 0x3308, 0x7F),
        _spi(5, 0x3301, 0x00),  # X53
        _spi(5, 0x3302, 0xFF),  # X54
        _spi(5, 0x3303, 0x3B),  # X55
        _spi(5, 0x3304, 0xFF),  # X56
        _spi(5, 0x3300, 0x00),  # X57
        _spi(5, 0x3201, 0x02),  # X58
    ]
    return rows


DVXPLORER_START: list[Entry] = [
    _spi(0, 4, 1),  # Y1
    _spi(0, 5, 0),  # Y2
    _spi(3, 5, 6),  # Y3
    _spi(3, 6, 2),  # Y4
    _spi(3, 7, 1),  # Y5
    _spi(3, 8, 5),  # Y6
    _spi(3, 9, 2),  # Y7
    _spi(3, 10, 2),  # Y8
    _spi(4, 1, 0),  # Y9
    _spi(4, 2, 0),  # Y10
    _spi(4, 3, 1),  # [LC §5.7 #10] LC10 detect pulses
    _spi(4, 4, 1),  # LC10 pulse polarity high
    _spi(4, 5, 10 * LOGIC_MHZ),  # LC10 pulse length 10 µs
    _spi(4, 14, 5 * LOGIC_MHZ),  # Y11
    _spi(4, 13, 5 * LOGIC_MHZ),  # Y12
    _spi(4, 15, 0),  # Y13
    _spi(4, 16, 0),  # Y14
    _spi(9, 1, 1000 * USB_MHZ),  # Y15
    _spi(9, 0, 1),  # Y16
    _spi(0, 1, 1),  # Y17
    _spi(0, 0, 1),  # Y18
    _sleep(0.05),  # [LC §5.7 #9] (ND 10 ms)
    _spi(1, 3, 1),  # Y19
    _spi(5, 0x3238, 0x01),  # [LC §5.7 #8] LC35 sensor timestamp reset
    _spi(5, 0x3238, 0x00),
    _spi(5, 0x3000, 0x02),  # Y20
    _spi(3, 2, 1),  # Y21
    _spi(3, 3, 1),  # Y22
    _spi(3, 4, 1),  # Y23
    _spi(4, 0, 1),  # Y24
    # Y25 (generator run ← 1) not written [LC §5.7 #10]: the generator stays off
]

DVXPLORER_DEFAULT_BIASES = dvxplorer_bias_rows(0x06, 0x14, 0x7D, 0x04, 0x00, 0x08)
"""LC4's "DEFAULT" preset bytes [LC §5.7 #2], in ND's X8..X13 order."""

DVXPLORER_OPEN: list[Entry] = [
    *DVXPLORER_CHECKS,
    *DVXPLORER_STOP,
    _sleep(0.1),  # W11 delay
    ("clear_halt", 0x82),  # W12
    *dvxplorer_bring_up(DVXPLORER_DEFAULT_BIASES),
    *DVXPLORER_START,
]

DVXPLORER_CLOSE: list[Entry] = [
    _spi(1, 3, 0),  # Q1
    _spi(5, 0x3000, 0x00),  # Q2
    _spi(3, 2, 0),  # Q3
    _spi(3, 3, 0),  # Q4
    _spi(3, 4, 0),  # Q5
    _spi(4, 0, 0),  # Q6
    _spi(4, 11, 0),  # Q7
    _spi(0, 0, 0),  # Q8
    _spi(0, 1, 0),  # Q9
    _spi(9, 0, 0),  # Q10
    _spi(0, 3, 0),  # Q11
]

# -------------------------------------------------------------------------------- DAVIS346

DAVIS_CHECKS: list[Entry] = [
    _read(6, 0),  # D2
    _read(6, 7),  # D3
    _read(6, 3),  # D4 logic clock
    _read(6, 4),  # D4 ADC clock
    _read(6, 5),  # D4 USB clock
    _read(6, 6),  # D4 deviation
    _read(1, 10),  # D5 pixel filter
    _read(1, 30),  # D5 background-activity filter
    _read(1, 40),  # D5 ROI filter
    _read(1, 50),  # D5 skip filter
    _read(1, 60),  # D5 polarity filter
    _read(2, 6),  # D6 global shutter
    _read(1, 2),  # D7 DVS orientation
    _read(2, 2),  # D8 APS orientation
    _read(3, 1),  # D9 IMU orientation
    _read(3, 0),  # D10 IMU type
]

DAVIS_STOP: list[Entry] = [
    _spi(1, 3, 0),  # E1
    _spi(2, 4, 0),  # E2
    _spi(3, 2, 0),  # E3
    _spi(3, 3, 0),  # E4
    _spi(3, 4, 0),  # E5
    _spi(4, 0, 0),  # E6
    _spi(4, 11, 0),  # E7
    _spi(0, 0, 0),  # E8
    _spi(0, 1, 0),  # E9
    _spi(9, 0, 0),  # E10
    _spi(0, 3, 0),  # E11
]

DAVIS_VDACS: list[Entry] = [
    _spi(5, 0, 0x019B),  # F1
    _spi(5, 1, 0x0195),  # F2
    _spi(5, 2, 0x01E0),  # F3
    _spi(5, 3, 0x01C1),  # F4
    _spi(5, 4, 0x01D5),  # F5
]

DAVIS_DEFAULT_BIASES: list[Entry] = [
    _spi(5, 8, 0x5A4F),  # F6 LocalBufBn
    _spi(5, 9, 0x7D7E),  # F7 PadFollBn
    _spi(5, 10, 0x427F),  # F8 DiffBn
    _spi(5, 11, 0x5FFF),  # F9 OnBn
    _spi(5, 12, 0x401F),  # F10 OffBn
    _spi(5, 13, 0x690F),  # F11 PixInvBn
    _spi(5, 14, 0x23AD),  # F12 PrBp
    _spi(5, 15, 0x110D),  # F13 PrSFBp
    _spi(5, 16, 0x419D),  # F14 RefrBp
    _spi(5, 17, 0x614D),  # F15 ReadoutBufBp
    _spi(5, 18, 0x6DBF),  # F16 ApsROSFBn
    _spi(5, 19, 0x514D),  # F17 AdcCompBp
    _spi(5, 20, 0x001F),  # F18 ColSelLowBn
    _spi(5, 21, 0x63CD),  # F19 DACBufBp
    _spi(5, 22, 0x531F),  # F20 LcolTimeoutBn
    _spi(5, 23, 0x65BF),  # F21 AEPdBn
    _spi(5, 24, 0x450D),  # F22 AEPuXBp
    _spi(5, 25, 0x798D),  # F23 AEPuYBp
    _spi(5, 26, 0x5FFF),  # F24 IFRefrBn
    _spi(5, 27, 0x5FFF),  # F25 IFThrBn
    _spi(5, 34, 0x5FEF),  # F26 BiasBuffer
]


def davis_pixel_filter(pixels: list[tuple[int, int]]) -> list[Entry]:
    """G1: row, column of slots 0..7; an unused slot is row 260, column 346."""
    rows = []
    for i in range(8):
        x, y = pixels[i] if i < len(pixels) else (346, 260)
        rows += [_spi(1, 11 + 2 * i, y), _spi(1, 12 + 2 * i, x)]
    return rows


def davis_dvs_roi(left: int, top: int, width: int, height: int) -> list[Entry]:
    """G3 with inclusive ends [LC §6.8 #5] (ND: left + width, top + height)."""
    return [
        _spi(1, 41, left),
        _spi(1, 42, top),
        _spi(1, 43, left + width - 1),
        _spi(1, 44, top + height - 1),
    ]


def davis_aps_window(left: int, top: int, width: int, height: int, running: int) -> Entry:
    """G6, the 0xC2 multi-write; its last entry restores APS run [LC §6.8 #4]."""
    return (
        "MULTI",
        [
            (2, 4, 0),
            (2, 8, left),
            (2, 9, top),
            (2, 10, left + width - 1),
            (2, 11, top + height - 1),
            (2, 4, running),
        ],
    )


DAVIS_DEFAULT_FPGA: list[Entry] = [
    *davis_pixel_filter([]),  # G1
    _spi(1, 31, 1),  # G2
    _spi(1, 32, 8),
    _spi(1, 33, 0),
    _spi(1, 34, 1),
    *davis_dvs_roi(0, 0, 346, 260),  # G3: 0, 0, 345, 259
    _spi(1, 51, 0),  # G4
    _spi(1, 52, 0),
    _spi(1, 61, 0),  # G5
    _spi(1, 62, 0),
    _spi(1, 63, 0),
    davis_aps_window(0, 0, 346, 260, 0),  # G6 (the APS is not running yet)
    _spi(2, 12, 4000 * ADC_MHZ),  # G7
    _spi(2, 13, 40000 * ADC_MHZ),  # G8
]

DAVIS_CHIP_AND_START: list[Entry] = [
    _spi(5, 35, 0x8410),  # F28 SSP
    _spi(5, 36, 0x8410),  # F29 SSN
    _spi(5, 128, 0),  # F30
    _spi(5, 129, 0),
    _spi(5, 130, 0),
    _spi(5, 131, 0),
    _spi(5, 132, 0),  # F31
    _spi(5, 133, 0),
    _spi(5, 134, 0),
    _spi(5, 135, 0),  # F32
    _spi(5, 136, 1),  # F33
    _spi(5, 137, 0),  # F34
    _spi(5, 138, 1),  # F35
    _spi(5, 140, 0),  # F36
    _spi(5, 141, 0),  # F37
    _spi(5, 143, 1),  # F38
    _spi(5, 144, 0),  # F39
    _sleep(0.01),
    _spi(0, 3, 1),  # H1
    _spi(9, 1, 1000 * USB_MHZ),  # H2
    _sleep(0.2),
    _spi(9, 0, 1),  # H3
    _spi(0, 5, 1),  # H4
    _spi(0, 4, 1),  # H5
    _spi(0, 1, 1),  # H6
    _spi(0, 0, 1),  # H7
    _sleep(0.05),
    _spi(1, 4, 0),  # H8
    _spi(1, 5, 0),  # H9
    _spi(1, 3, 1),  # H10
    _spi(2, 5, 1),  # H11
    _spi(2, 7, 1),  # H12 (the emulator has a global shutter)
    _spi(5, 142, 1),  # H13
    _spi(2, 4, 1),  # H14
    _spi(3, 5, 0),  # H15
    _spi(3, 6, 1),  # H16
    _spi(3, 7, 1),  # H17
    _spi(3, 9, 1),  # H18 [LC §6.8 #3] always
    _spi(3, 10, 1),  # H19
    _spi(3, 2, 1),  # H20
    _spi(3, 3, 1),
    _spi(3, 4, 1),
    _spi(4, 1, 0),  # H21
    _spi(4, 2, 0),
    _spi(4, 14, 5 * LOGIC_MHZ),  # H22
    _spi(4, 13, 5 * LOGIC_MHZ),
    _spi(4, 15, 0),  # H23
    _spi(4, 16, 0),
    _spi(4, 3, 1),  # H24 [LC §6.8 #2] pulse detection on (ND 0)
    _spi(4, 4, 1),
    _spi(4, 5, 10 * LOGIC_MHZ),
    _spi(4, 0, 1),  # H25 [LC §6.8 #2] detector on (ND 0)
]

DAVIS_OPEN: list[Entry] = [
    *DAVIS_CHECKS,
    *DAVIS_STOP,
    _sleep(0.1),  # E11 delay
    ("clear_halt", 0x82),  # E12
    *DAVIS_VDACS,
    *DAVIS_DEFAULT_BIASES,
    *DAVIS_DEFAULT_FPGA,  # F27
    *DAVIS_CHIP_AND_START,
]

DAVIS_CLOSE: list[Entry] = [
    _spi(1, 3, 0),  # K1
    _spi(2, 4, 0),  # K2
    _spi(3, 2, 0),  # K3
    _spi(3, 3, 0),
    _spi(3, 4, 0),
    _spi(4, 0, 0),  # K4
    _spi(0, 0, 0),  # K5
    _spi(0, 1, 0),  # K6
    _spi(9, 0, 0),  # K7
    _spi(0, 3, 0),  # K8
]
