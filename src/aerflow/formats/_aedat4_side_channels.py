"""AEDAT 4.0 side-channel packets: triggers (``TRIG``), IMU samples (``IMUS``) and frames
(``FRME``), decoded into aerflow's arrays and :class:`~aerflow.Frame` and encoded back."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import PayloadError
from ..events import IMU_DTYPE, TRIGGERS_DTYPE, Frame
from ._aedat4_tables import _F32, _I8, _I16, _I64, _packet_of_tables, _root
from .aedat4_flatbuffers import Builder, FlatBufferError

__all__ = [
    "TRIGGER_TYPES",
    "UNKNOWN_TRIGGER_ID",
    "decode_frame",
    "decode_imu",
    "decode_triggers",
    "encode_frame",
    "encode_imu",
    "encode_triggers",
]

TRIGGER_TYPES: dict[int, tuple[int, bool]] = {
    0: (5, True),  # timestamp reset
    1: (0, True),  # external signal, rising edge
    2: (0, False),  # external signal, falling edge
    3: (4, True),  # external signal, pulse
    4: (1, True),  # external generator, rising edge
    5: (1, False),  # external generator, falling edge
    6: (2, True),  # frame begin
    7: (2, False),  # frame end
    8: (3, True),  # exposure begin
    9: (3, False),  # exposure end
}
"""DV trigger type -> (``id``, ``rising``): channel 0 external signal, 1 external generator,
2 frame begin/end, 3 exposure begin/end, 4 external pulse, 5 timestamp reset. Unknown types
read as id 255, rising."""
UNKNOWN_TRIGGER_ID = 255
_TRIGGER_CODES = {value: code for code, value in TRIGGER_TYPES.items()}

# -- triggers ----------------------------------------------------------------------------------

_TRIGGER_RECORD = np.dtype(
    {
        "names": ["soffset", "type", "t"],
        "formats": ["<i4", "i1", "<i8"],
        "offsets": [0, 4, 8],
        "itemsize": 16,
    }
)


def decode_triggers(buffer: Any) -> npt.NDArray[Any]:
    """A TriggerPacket payload as :data:`~aerflow.TRIGGERS_DTYPE`."""
    try:
        elements = _root(buffer, b"TRIG").tables(0)
        out = np.empty(len(elements), TRIGGERS_DTYPE)
        for i, element in enumerate(elements):
            t = element.scalar(0, _I64, 0)
            code = element.scalar(1, _I8, 0)
            if t < 0:
                raise PayloadError("a trigger has a negative timestamp", element.position)
            out[i] = (t, *TRIGGER_TYPES.get(code, (UNKNOWN_TRIGGER_ID, True)))
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    return out


def encode_triggers(triggers: npt.NDArray[Any]) -> bytes:
    """The TriggerPacket FlatBuffer of ``triggers`` (:data:`~aerflow.TRIGGERS_DTYPE`)."""
    records = np.zeros(len(triggers), _TRIGGER_RECORD)
    records["t"] = triggers["t"]
    codes = [
        _trigger_code(int(i), bool(r))
        for i, r in zip(triggers["id"].tolist(), triggers["rising"].tolist(), strict=True)
    ]
    records["type"] = codes
    return _packet_of_tables(b"TRIG", 16, (8, 4), records)


def _trigger_code(channel: int, rising: bool) -> int:
    if channel in (4, 5):
        return _TRIGGER_CODES[(channel, True)]
    code = _TRIGGER_CODES.get((channel, rising))
    if code is None:
        raise ValueError(
            f"AEDAT 4 triggers have channels 0-5 (external signal, generator, frame, exposure, "
            f"pulse, timestamp reset), not {channel}"
        )
    return code


# -- IMU ---------------------------------------------------------------------------------------

_IMU_RECORD = np.dtype(
    {
        "names": ["soffset", "values", "t"],
        "formats": ["<i4", ("<f4", (10,)), "<i8"],
        "offsets": [0, 4, 48],
        "itemsize": 56,
    }
)
_IMU_FIELDS = (48, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40)


def decode_imu(buffer: Any) -> npt.NDArray[Any]:
    """An IMUPacket payload as :data:`~aerflow.IMU_DTYPE` (absent fields read as 0, the
    schema's default)."""
    try:
        elements = _root(buffer, b"IMUS").tables(0)
        out = np.zeros(len(elements), IMU_DTYPE)
        values = np.zeros((len(elements), 10), np.float32)
        for i, element in enumerate(elements):
            t = element.scalar(0, _I64, 0)
            if t < 0:
                raise PayloadError("an IMU sample has a negative timestamp", element.position)
            out["t"][i] = t
            for j in range(10):
                values[i, j] = element.scalar(1 + j, _F32, 0.0)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    out["temperature"] = values[:, 0]
    out["accelerometer"] = values[:, 1:4]
    out["gyroscope"] = values[:, 4:7]
    out["magnetometer"] = values[:, 7:10]
    return out


def encode_imu(imu: npt.NDArray[Any]) -> bytes:
    """The IMUPacket FlatBuffer of ``imu`` (:data:`~aerflow.IMU_DTYPE`)."""
    records = np.zeros(len(imu), _IMU_RECORD)
    records["t"] = imu["t"]
    records["values"][:, 0] = imu["temperature"]
    records["values"][:, 1:4] = imu["accelerometer"]
    records["values"][:, 4:7] = imu["gyroscope"]
    records["values"][:, 7:10] = imu["magnetometer"]
    return _packet_of_tables(b"IMUS", 56, _IMU_FIELDS, records)


# -- frames ------------------------------------------------------------------------------------

_FRAME_DEPTHS: dict[int, np.dtype[Any]] = {0: np.dtype("u1"), 2: np.dtype("<u2")}
"""OpenCV depth codes (format & 7) that frames use: 8-bit and 16-bit unsigned."""


def decode_frame(buffer: Any) -> Frame:
    """A Frame payload as :class:`~aerflow.Frame`: pixels ``(H, W)`` grey or ``(H, W, C)``
    (BGR / BGRA, as stored), ``uint8`` or ``uint16``."""
    try:
        table = _root(buffer, b"FRME")
        t, _, _, exposure_start, exposure_end = (table.scalar(i, _I64, 0) for i in range(5))
        code = table.scalar(5, _I8, 0)
        width, height, x, y = (table.scalar(i, _I16, 0) for i in range(6, 10))
        found = table.vector(10, 1)
    except FlatBufferError as error:
        raise PayloadError(str(error), error.offset) from None
    depth = _FRAME_DEPTHS.get(code & 7)
    channels = (code >> 3) + 1
    if code < 0 or depth is None or channels not in (1, 3, 4):
        raise PayloadError(f"unsupported frame format {code}", table.position)
    if width < 0 or height < 0:
        raise PayloadError(f"a frame of {width}x{height} pixels", table.position)
    start, length = found if found is not None else (0, 0)
    expected = width * height * channels * depth.itemsize
    if length != expected:
        raise PayloadError(
            f"a {width}x{height} frame of format {code} needs {expected} bytes of pixels, "
            f"the packet has {length}",
            table.position,
        )
    pixels = np.frombuffer(buffer, depth, count=width * height * channels, offset=start).copy()
    shape = (height, width) if channels == 1 else (height, width, channels)
    return Frame(
        t=t,
        pixels=pixels.reshape(shape),
        exposure_start=exposure_start or None,
        exposure_end=exposure_end or None,
        x=x,
        y=y,
    )


def encode_frame(frame: Frame) -> bytes:
    """The Frame FlatBuffer of ``frame`` (frame start/end taken as its exposure, else ``t``)."""
    pixels = np.asarray(frame.pixels)
    depth = {np.dtype("u1"): 0, np.dtype("u2"): 2}.get(pixels.dtype.newbyteorder("<"))
    if depth is None or pixels.dtype.byteorder == ">":
        raise ValueError(f"AEDAT 4 frames hold uint8 or uint16 pixels, not {pixels.dtype}")
    if pixels.ndim == 2:
        channels = 1
    elif pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4):
        channels = pixels.shape[2]
    else:
        raise ValueError(f"frame pixels must be (H, W) or (H, W, 3|4), not {pixels.shape}")
    height, width = pixels.shape[:2]
    limit = (1 << 15) - 1
    if not (width <= limit and height <= limit and 0 <= frame.x <= limit and 0 <= frame.y <= limit):
        raise ValueError("AEDAT 4 frame sizes and positions are 16-bit (at most 32767)")
    code = depth | (channels - 1) << 3
    start = frame.t if frame.exposure_start is None else frame.exposure_start
    end = frame.t if frame.exposure_end is None else frame.exposure_end
    builder = Builder(b"FRME")
    vtable = builder.vtable(64, (24, 32, 40, 48, 56, 8, 10, 12, 14, 16, 4))
    table = builder.table(vtable, 64)
    builder.set_root(table)
    builder.pack("<b", table + 8, code)
    builder.pack("<4h", table + 10, width, height, frame.x, frame.y)
    builder.pack("<5q", table + 24, frame.t, start, end, start, end)
    data = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).tobytes()
    builder.refer(table + 4, builder.vector(data, len(data), 4))
    return builder.finish()
