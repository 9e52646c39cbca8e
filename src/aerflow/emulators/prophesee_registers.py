"""The Prophesee USB protocol as the emulated EVK4 and EVK3 HD answer it: endpoints, EP0
requests, command frames and the registers the emulators act on.

Written from the protocol notes (``usb-devices.md`` §2.2–2.3, ``usb-sequences.md`` §2.1–2.3),
not taken from the drivers, so that the emulators check the drivers instead of echoing them.
"""

from __future__ import annotations

import struct

# -- endpoints (usb-devices.md §2.2.1) ----------------------------------------------------------
COMMAND_OUT_ENDPOINT = 0x02
"""Bulk OUT: command frames, host to device."""
COMMAND_IN_ENDPOINT = 0x82
"""Bulk IN: one reply per command frame."""
DATA_ENDPOINT = 0x81
"""Bulk IN: the EVT 3.0 stream."""

SENSOR_WIDTH, SENSOR_HEIGHT = 1280, 720
"""The IMX636's and the Gen4.1's pixel array (usb-devices.md §1.1)."""

# -- EP0 (usb-sequences.md §2.3) ----------------------------------------------------------------
TYPE_REQUEST = 0x72
"""Vendor control IN request (wValue 0, wIndex 0, 2 bytes): the board/sensor type byte."""
TYPE_EVK3_HD = 0x30
TYPE_IMX636 = 0x31
TYPE_IMX646 = 0x35

# -- command frames (usb-sequences.md §2.1) -----------------------------------------------------
FRAME_HEADER = struct.Struct("<II")
"""property, payload length: every frame starts with these two little-endian u32."""
WRITE_FLAG = 0x40000000
"""Bit 30 of a property: a write request."""
ERROR_FLAG = 0x80000000
"""Set in a reply's property when the command failed; alone, "unknown command"."""
PROPERTY_REGISTER = 0x00010102
"""Device register read (with WRITE_FLAG: write): device id, address, count or values."""
PROPERTY_SERIAL = 0x00000072
PROPERTY_RELEASE_VERSION = 0x00000079
PROPERTY_BUILD_DATE = 0x0000007A
PROPERTY_FPGA_STATE = 0x00000071
PROPERTY_DEVICE_COUNT = 0x00010000
PROPERTY_DEVICE_NAME = 0x00010001
PROPERTY_DEVICE_COMPATIBLE = 0x00010003
SENSOR_DEVICE_ID = 0
"""The device id of the sensor (the EVK4's only device)."""

# Legacy commands (usb-sequences.md §2.2): 12 bytes, no length field.
LEGACY_WRITE = 0x56
LEGACY_READ = 0x55
LEGACY_WRITE_FRAME = struct.Struct("<III")
"""0x56, address, value."""

# -- registers the emulators act on (usb-devices.md §2.2.4, §2.2.10) ----------------------------
LIFO_CTRL = 0x000C
LIFO_CTRL_COUNTING = 1 << 2
"""cnt_en: the illuminance counter runs."""
LIFO_STATUS = 0x0010
LIFO_STATUS_VALID = 1 << 29
"""Bits 0..28 hold the count, bit 29 says it is valid."""
ADC_CONTROL = 0x004C
ADC_CONTROL_RUN = 0x7
"""adc_en, adc_clk_en and adc_start: a conversion starts."""
ADC_STATUS = 0x0050
ADC_STATUS_DONE = 1 << 11
"""Bits 0..9 hold the value, bit 11 says the conversion is done."""
TEMPERATURE_OFFSET, TEMPERATURE_STEP = -56.0, 0.19
"""°C = value × 0.19 − 56."""
TIME_BASE_CTRL = 0x9008
TIME_BASE_ENABLE = 1 << 0
RO_CTRL = 0x9028
RO_CTRL_OUTPUT_DISABLE = 1 << 1
MIPI_CONTROL = 0xB000
MIPI_ON = 1 << 0
"""Bit 0 of MipiControl enables MIPI CSI (EVK4 0x2F8 off, 0x2F9 on; EVK3 HD 0x2D8, 0x2DD)."""
ERC_602C = 0x602C
ERC_602C_READS_AS_ONE = 0x2
"""[I] Bit 1 of 0x602C reads back as 1, the hardware behaviour that ND's literal 0x2 after the
ERC table suggests (usb-sequences.md §3.13 item 4)."""
BIAS_ADDRESSES = (
    0x1000,
    0x1004,
    0x100C,
    0x1010,
    0x1014,
    0x1018,
    0x101C,
    0x1020,
    0x1040,
    0x1044,
    0x1048,
    0x104C,
    0x1050,
)
"""The EVK4's thirteen bias registers (usb-devices.md §2.2.6)."""
FACTORY_BIAS_VALUES = (0x7C, 0x53, 0x00, 0x66, 0x4D, 0x49, 0x5B, 0x14, 0x8C, 0x7C, 0x94, 0x74, 0x51)
"""Their values in ND 0.16 (absolute defaults), in the order of BIAS_ADDRESSES."""
BIAS_WORD = 0x11A10000
"""A bias register with buf_stg 1, mux_en, buf_en, idac_en and single set, value 0."""


def frame(property: int, *payload: int) -> bytes:
    """A command frame: property, payload length, then the payload's u32 words."""
    return FRAME_HEADER.pack(property, 4 * len(payload)) + struct.pack(
        f"<{len(payload)}I", *payload
    )
