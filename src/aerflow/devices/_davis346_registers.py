"""The DAVIS346's ids and register map: its FPGA parameters (DVS filters, APS, IMU) and its
chip configuration (module 5), as the driver and its configuration write them."""

from __future__ import annotations

from . import _inivation as ini
from ._inivation import APS, DEVICE, DVS, Write

PRODUCT_ID = 0x841A
WIDTH, HEIGHT = ini.DAVIS346_WIDTH, ini.DAVIS346_HEIGHT
MINIMUM_FIRMWARE = 0x06
"""Lowest firmware version (low byte of bcdDevice) accepted."""
MINIMUM_LOGIC_PATCH = 1
"""[I] Logic patch 1 or later (libcaer's minimum; neuromorphic-drivers requires exactly 1)."""

# DVS filters (DAVIS only).
DVS_HAS_PIXEL_FILTER = (DVS, 10)
DVS_PIXEL_FILTER_ROW = 11
"""Row of pixel-filter slot i is parameter 11 + 2i, its column 12 + 2i (i = 0..7)."""
PIXEL_FILTER_SLOTS = 8
DVS_HAS_BACKGROUND_ACTIVITY_FILTER = (DVS, 30)
DVS_BACKGROUND_ACTIVITY = (DVS, 31)
DVS_BACKGROUND_ACTIVITY_TIME = (DVS, 32)
DVS_REFRACTORY_PERIOD = (DVS, 33)
DVS_REFRACTORY_PERIOD_TIME = (DVS, 34)
DVS_HAS_ROI_FILTER = (DVS, 40)
DVS_ROI_START_COLUMN = (DVS, 41)
DVS_ROI_START_ROW = (DVS, 42)
DVS_ROI_END_COLUMN = (DVS, 43)
DVS_ROI_END_ROW = (DVS, 44)
DVS_HAS_SKIP_FILTER = (DVS, 50)
DVS_SKIP_EVENTS = (DVS, 51)
DVS_SKIP_EVENTS_EVERY = (DVS, 52)
DVS_HAS_POLARITY_FILTER = (DVS, 60)
DVS_POLARITY_FLATTEN = (DVS, 61)
DVS_POLARITY_SUPPRESS = (DVS, 62)
DVS_POLARITY_SUPPRESS_TYPE = (DVS, 63)
FILTER_TIME_UNIT_US = 250
"""The activity and refractory filters count time in 250 µs units."""

# APS.
APS_ORIENTATION = (APS, 2)
APS_RUN = (APS, 4)
APS_WAIT_ON_STALL = (APS, 5)
APS_HAS_GLOBAL_SHUTTER = (APS, 6)
APS_GLOBAL_SHUTTER = (APS, 7)
APS_START_COLUMN = (APS, 8)
APS_START_ROW = (APS, 9)
APS_END_COLUMN = (APS, 10)
APS_END_ROW = (APS, 11)
APS_EXPOSURE = (APS, 12)
APS_FRAME_INTERVAL = (APS, 13)

# IMU (InvenSense).
IMU_SAMPLE_RATE_DIVIDER = (ini.IMU, 5)
IMU_ACCELEROMETER_FILTER = (ini.IMU, 6)
IMU_ACCELEROMETER_FULL_SCALE = (ini.IMU, 7)
IMU_GYROSCOPE_FILTER = (ini.IMU, 9)
IMU_GYROSCOPE_FULL_SCALE = (ini.IMU, 10)
IMU_TYPE_6050_6150, IMU_TYPE_9250 = 1, 2

# Chip configuration (module 5).
CHIP_VDACS: tuple[Write, ...] = (
    (DEVICE, 0, 27 | 6 << 6),  # ApsOverflowLevel
    (DEVICE, 1, 21 | 6 << 6),  # ApsCas
    (DEVICE, 2, 32 | 7 << 6),  # AdcRefHigh
    (DEVICE, 3, 1 | 7 << 6),  # AdcRefLow
    (DEVICE, 4, 21 | 7 << 6),  # AdcTestVoltage
)
"""The voltage DACs: voltage (bits 0..5) + current × 0x40, fixed values."""
SHIFTED_SOURCE = 1 << 4 | 33 << 10
"""SSP and SSN: shifted-source mode, split gate, ref 1, reg 33."""
CHIP_SSP, CHIP_SSN = 35, 36
CHIP_GLOBAL_SHUTTER = (DEVICE, 142)
CHIP_CONFIGURATION: tuple[Write, ...] = (
    (DEVICE, 128, 0),  # DigitalMux0..3
    (DEVICE, 129, 0),
    (DEVICE, 130, 0),
    (DEVICE, 131, 0),
    (DEVICE, 132, 0),  # AnalogMux0..2
    (DEVICE, 133, 0),
    (DEVICE, 134, 0),
    (DEVICE, 135, 0),  # BiasMux0
    (DEVICE, 136, 1),  # ResetCalibNeuron
    (DEVICE, 137, 0),  # TypeNCalibNeuron
    (DEVICE, 138, 1),  # ResetTestPixel
    (DEVICE, 140, 0),  # AERnArow
    (DEVICE, 141, 0),  # UseAOut
    (DEVICE, 143, 1),  # SelectGrayCounter
    (DEVICE, 144, 0),  # TestADC
)
