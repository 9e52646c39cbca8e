"""The iniVation USB protocol as the emulated DVXplorer and DAVIS346 answer it: ids, requests,
the (module, parameter) addresses the emulators hold or act on, and the stream's scales.

Written from the protocol notes (``usb-devices.md`` §1.1, §2.5 and §3.3–3.4,
``usb-sequences.md`` §2.4, §5 and §6), not taken from the drivers, so that the emulators check
the drivers instead of echoing them.
"""

from __future__ import annotations

import numpy as np

# -- ids and geometry (usb-devices.md §1.1) ----------------------------------------------------
VENDOR_ID = 0x152A
DVXPLORER_PRODUCT_ID = 0x8419
DVXPLORER_WIDTH, DVXPLORER_HEIGHT = 640, 480
DAVIS346_PRODUCT_ID = 0x841A
DAVIS346_WIDTH, DAVIS346_HEIGHT = 346, 260

# -- requests (usb-sequences.md §2.4) ----------------------------------------------------------
DATA_ENDPOINT = 0x82
"""Bulk IN: the 16-bit word stream."""
REQUEST_CONFIG = 0xBF
"""Vendor request: one parameter, wValue = module, wIndex = parameter, 4 bytes big-endian."""
REQUEST_MULTI_WRITE = 0xC2
"""Vendor request (DAVIS): wValue = N entries of module u8, parameter u8, value u32 BE."""
PARAMETER_BYTES = 4
MULTI_WRITE_ENTRY_BYTES = 6

# -- modules (usb-devices.md §2.5.1) -----------------------------------------------------------
MULTIPLEXER, DVS, APS, IMU, EXTERNAL_INPUT, DEVICE, SYSTEM_INFORMATION, USB = 0, 1, 2, 3, 4, 5, 6, 9
MODULES = frozenset((MULTIPLEXER, DVS, APS, IMU, EXTERNAL_INPUT, DEVICE, SYSTEM_INFORMATION, USB))

MUX_RUN = (MULTIPLEXER, 0)
MUX_TIMESTAMP_RUN = (MULTIPLEXER, 1)
USB_RUN = (USB, 0)

DVS_SIZE_COLUMNS = (DVS, 0)
DVS_SIZE_ROWS = (DVS, 1)
DVS_ORIENTATION = (DVS, 2)
DVS_RUN = (DVS, 3)
# DAVIS only: which FPGA filters the logic has.
DVS_HAS_PIXEL_FILTER = (DVS, 10)
DVS_HAS_BACKGROUND_ACTIVITY_FILTER = (DVS, 30)
DVS_HAS_ROI_FILTER = (DVS, 40)
DVS_HAS_SKIP_FILTER = (DVS, 50)
DVS_HAS_POLARITY_FILTER = (DVS, 60)

# APS (DAVIS).
APS_ORIENTATION = (APS, 2)
APS_RUN = (APS, 4)
APS_HAS_GLOBAL_SHUTTER = (APS, 6)
APS_GLOBAL_SHUTTER = (APS, 7)
APS_START_COLUMN = (APS, 8)
APS_START_ROW = (APS, 9)
APS_END_COLUMN = (APS, 10)
APS_END_ROW = (APS, 11)
APS_EXPOSURE = (APS, 12)
"""In ADC-clock cycles."""
APS_FRAME_INTERVAL = (APS, 13)
"""In ADC-clock cycles."""

IMU_TYPE = (IMU, 0)
"""DAVIS: 1 InvenSense MPU-6050/6150, 2 MPU-9250."""
IMU_ORIENTATION = (IMU, 1)
IMU_ACCELEROMETER_RUN = (IMU, 2)
IMU_GYROSCOPE_RUN = (IMU, 3)
IMU_TEMPERATURE_RUN = (IMU, 4)
IMU_ACCELEROMETER_SCALE = (IMU, 7)
"""DVXplorer: the accelerometer range (Bosch code, 1 = ±4 g); DAVIS: its full scale (1 = ±4 g)."""
IMU_GYROSCOPE_SCALE = (IMU, 10)
"""DVXplorer: the gyroscope range (Bosch code, 2 = ±500 °/s); DAVIS: its full scale (1 =
±500 °/s)."""

EXTERNAL_INPUT_DETECTOR_RUN = (EXTERNAL_INPUT, 0)
EXTERNAL_INPUT_DETECT_RISING = (EXTERNAL_INPUT, 1)
EXTERNAL_INPUT_DETECT_FALLING = (EXTERNAL_INPUT, 2)
EXTERNAL_INPUT_DETECT_PULSES = (EXTERNAL_INPUT, 3)

LOGIC_VERSION = (SYSTEM_INFORMATION, 0)
LOGIC_CLOCK = (SYSTEM_INFORMATION, 3)
ADC_CLOCK = (SYSTEM_INFORMATION, 4)
USB_CLOCK = (SYSTEM_INFORMATION, 5)
CLOCK_DEVIATION = (SYSTEM_INFORMATION, 6)
"""A clock in MHz is its register × this / 1000."""
LOGIC_PATCH = (SYSTEM_INFORMATION, 7)

LOGIC_VERSION_VALUE = 18
DVXPLORER_LOGIC_PATCH = 4
DAVIS346_LOGIC_PATCH = 1
"""The logic patches the reference drivers expect (usb-sequences.md §5.1 V3, §6.1 D3)."""

# -- orientation bits --------------------------------------------------------------------------
FLIP_Y, FLIP_X, INVERT_XY = 1, 2, 4
"""DVS and APS orientation registers."""
IMU_FLIP_Z, IMU_FLIP_Y, IMU_FLIP_X = 1, 2, 4
"""IMU orientation register."""

# -- the stream (usb-devices.md §3.3–3.4) ------------------------------------------------------
CODE_FALLING, CODE_RISING, CODE_PULSE = 2, 3, 4
"""Special codes (type 0) of the external input."""
DVXPLORER_ACCELEROMETER_G = np.array([2.0, 4.0, 8.0, 16.0])
"""Full scale (g) by the DVXplorer IMU config byte's accelerometer scale (bits 3..4)."""
DVXPLORER_GYROSCOPE_DPS = np.array([2000.0, 1000.0, 500.0, 250.0, 125.0, 125.0, 125.0, 125.0])
"""Full scale (°/s) by its gyroscope scale (bits 0..2; the codes past 4 read as 125)."""
DAVIS_ACCELEROMETER_G = np.array([2.0, 4.0, 8.0, 16.0])
"""Full scale (g) by the DAVIS IMU config byte's accelerometer scale (bits 2..3)."""
DAVIS_GYROSCOPE_DPS = np.array([250.0, 500.0, 1000.0, 2000.0])
"""Full scale (°/s) by its gyroscope scale (bits 0..1)."""
DVXPLORER_TEMPERATURE = (512.0, 23.0)
"""(divisor, offset): °C = raw / 512 + 23."""
DAVIS_TEMPERATURE = {1: (340.0, 35.0), 2: (333.87, 21.0)}
"""(divisor, offset) by IMU type."""
