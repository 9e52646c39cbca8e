"""The decoders of the DVXplorer's and the DAVIS346's data endpoints: chunks of bytes, cut
anywhere, into packets of events, triggers, IMU samples and (DAVIS) frames. The decoding
choices are those of :mod:`._inivation`; the numba kernels are in :mod:`._inivation_kernels`."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..events import EVENTS_DTYPE, IMU_DTYPE, TRIGGERS_DTYPE, Frame, Packet
from ._inivation import (
    DAVIS346_HEIGHT,
    DAVIS346_WIDTH,
    DAVIS_ACCELEROMETER_G,
    DAVIS_GYROSCOPE_DPS,
    DAVIS_TEMPERATURE,
    DVXPLORER_ACCELEROMETER_G,
    DVXPLORER_GYROSCOPE_DPS,
    DVXPLORER_TEMPERATURE,
    INVERT_XY,
)
from ._inivation_kernels import (
    _AX,
    _AZ,
    _COLUMN,
    _DAVIS_STATE_SIZE,
    _DVX_STATE_SIZE,
    _F_EXPOSURE_END,
    _F_EXPOSURE_START,
    _F_RESET_COLUMN,
    _F_SIGNAL_COLUMN,
    _F_START,
    _GROUP0,
    _GROUP1,
    _GX,
    _GZ,
    _OUT_EXPOSURE_END,
    _OUT_EXPOSURE_START,
    _OUT_HEIGHT,
    _OUT_START,
    _OUT_WIDTH,
    _OUT_X,
    _OUT_Y,
    _ROW,
    _T,
    _TEMPERATURE,
    _WINDOW_HEIGHT,
    _WINDOW_WIDTH,
    _WINDOW_X,
    _WINDOW_Y,
    _decode_davis,
    _decode_dvxplorer,
)

__all__ = ["Davis346StreamDecoder", "DvxplorerStreamDecoder"]


class _Scratch:
    """Output arrays reused from chunk to chunk, grown to the largest chunk seen."""

    def __init__(self, events_per_word: int) -> None:
        self.events_per_word = events_per_word
        self.words = 0
        self.events = np.empty(0, EVENTS_DTYPE)
        self.triggers = np.empty(0, TRIGGERS_DTYPE)
        self.imu_t = np.empty(0, np.uint64)
        self.imu_values = np.empty((0, 7), np.float64)

    def reserve(self, words: int) -> None:
        if words <= self.words:
            return
        words = max(words, 2 * self.words)
        self.words = words
        self.events = np.empty(words * self.events_per_word, EVENTS_DTYPE)
        self.triggers = np.empty(words, TRIGGERS_DTYPE)
        # An IMU sample takes at least three words (start, config, end).
        self.imu_t = np.empty(words // 3 + 1, np.uint64)
        self.imu_values = np.empty((words // 3 + 1, 7), np.float64)

    def imu(self, k: int) -> npt.NDArray[Any]:
        out = np.empty(k, IMU_DTYPE)
        out["t"] = self.imu_t[:k]
        values = self.imu_values[:k]
        out["accelerometer"] = values[:, _AX : _AZ + 1]
        out["gyroscope"] = values[:, _GX : _GZ + 1]
        out["temperature"] = values[:, _TEMPERATURE]
        out["magnetometer"] = np.nan
        return out


def _as_bytes(data: Any) -> npt.NDArray[np.uint8]:
    array = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    if array.dtype != np.uint8 or array.ndim != 1:
        array = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return array


class _WordDecoder:
    """Carries the odd trailing byte of a chunk over to the next one."""

    def __init__(self, state_size: int, events_per_word: int) -> None:
        self._state = np.zeros(state_size, np.int64)
        self._pending: int | None = None
        self._scratch = _Scratch(events_per_word)

    @property
    def current_t(self) -> int:
        return int(self._state[_T])

    def _pieces(self, data: Any) -> list[npt.NDArray[np.uint8]]:
        array = _as_bytes(data)
        pieces = []
        if self._pending is not None and array.size > 0:
            pieces.append(np.array([self._pending, array[0]], np.uint8))
            self._pending = None
            array = array[1:]
        if array.size % 2:
            self._pending = int(array[-1])
            array = array[:-1]
        pieces.append(array)
        self._scratch.reserve(sum(piece.size for piece in pieces) // 2 + 1)
        return pieces


class DvxplorerStreamDecoder(_WordDecoder):
    """Decodes the DVXplorer's data endpoint into events, triggers and IMU samples.

    ``imu_orientation`` is the IMU orientation register (bit 0 flips z, bit 1 y, bit 2 x).
    The DVS orientation register is not applied: events come in the sensor's own x and y.
    """

    def __init__(self, imu_orientation: int = 0) -> None:
        super().__init__(_DVX_STATE_SIZE, 8)
        self._imu_flips = int(imu_orientation) & 7
        self._state[_COLUMN] = -1
        self._state[_GROUP0] = -1
        self._state[_GROUP1] = -1

    def decode(self, data: npt.NDArray[np.uint8]) -> Packet:
        scratch = self._scratch
        events, triggers, imu = [], [], []
        for piece in self._pieces(data):
            n, m, k = _decode_dvxplorer(
                piece,
                self._state,
                scratch.events,
                scratch.triggers,
                scratch.imu_t,
                scratch.imu_values,
                self._imu_flips,
                DVXPLORER_ACCELEROMETER_G,
                DVXPLORER_GYROSCOPE_DPS,
                *DVXPLORER_TEMPERATURE,
            )
            events.append(scratch.events[:n].copy())
            triggers.append(scratch.triggers[:m].copy())
            imu.append(scratch.imu(k))
        return _packet(events, triggers, imu, ())


def _packet(
    events: list[npt.NDArray[Any]],
    triggers: list[npt.NDArray[Any]],
    imu: list[npt.NDArray[Any]],
    frames: tuple[Frame, ...],
) -> Packet:
    def join(parts: list[npt.NDArray[Any]], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        if not parts:
            return np.empty(0, dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    return Packet(
        join(events, EVENTS_DTYPE), join(triggers, TRIGGERS_DTYPE), join(imu, IMU_DTYPE), frames
    )


class Davis346StreamDecoder(_WordDecoder):
    """Decodes the DAVIS346's data endpoint into events, triggers, IMU samples and frames.

    ``dvs_orientation`` and ``aps_orientation`` are the DVS and APS orientation registers
    (bit 0 flip y, bit 1 flip x, bit 2 swap x and y; the DVS applies only the swap),
    ``imu_orientation`` the IMU's (bit 0 flips z, bit 1 y, bit 2 x) and ``imu_type`` the IMU
    type register (it sets the temperature formula). Frames cover :attr:`aps_window`.
    """

    def __init__(
        self,
        *,
        dvs_orientation: int = 0,
        aps_orientation: int = 0,
        imu_orientation: int = 0,
        imu_type: int = 1,
        aps_window: tuple[int, int, int, int] = (0, 0, DAVIS346_WIDTH, DAVIS346_HEIGHT),
    ) -> None:
        super().__init__(_DAVIS_STATE_SIZE, 1)
        self._orientation = np.array(
            [(dvs_orientation & INVERT_XY) != 0, aps_orientation & 7, imu_orientation & 7],
            np.int64,
        )
        self._temperature = DAVIS_TEMPERATURE.get(int(imu_type), (0.0, 0.0))
        self._state[_ROW] = -1
        for slot in (_F_START, _F_EXPOSURE_START, _F_EXPOSURE_END):
            self._state[slot] = -1
        self._state[_F_RESET_COLUMN] = -1
        self._state[_F_SIGNAL_COLUMN] = -1
        size = DAVIS346_WIDTH * DAVIS346_HEIGHT
        self._reset = np.full(size, -1, np.int32)
        self._pixels = np.full(size, -1, np.int32)
        self.aps_window = aps_window

    @property
    def aps_window(self) -> tuple[int, int, int, int]:
        """(left, top, width, height) of the APS readout, taken at each frame start."""
        s = self._state
        return int(s[_WINDOW_X]), int(s[_WINDOW_Y]), int(s[_WINDOW_WIDTH]), int(s[_WINDOW_HEIGHT])

    @aps_window.setter
    def aps_window(self, window: tuple[int, int, int, int]) -> None:
        left, top, width, height = (int(v) for v in window)
        if not (
            left >= 0
            and top >= 0
            and width >= 1
            and height >= 1
            and left + width <= DAVIS346_WIDTH
            and top + height <= DAVIS346_HEIGHT
        ):
            raise ValueError(f"the APS window {window} does not fit the 346×260 sensor")
        self._state[_WINDOW_X : _WINDOW_HEIGHT + 1] = (left, top, width, height)

    def decode(self, data: npt.NDArray[np.uint8]) -> Packet:
        scratch = self._scratch
        state = self._state
        events, triggers, imu = [], [], []
        frames: list[Frame] = []
        for piece in self._pieces(data):
            position = 0
            n = m = k = 0
            while True:
                position, n, m, k, done = _decode_davis(
                    piece,
                    position,
                    state,
                    scratch.events,
                    n,
                    scratch.triggers,
                    m,
                    scratch.imu_t,
                    scratch.imu_values,
                    k,
                    self._reset,
                    self._pixels,
                    self._orientation,
                    DAVIS_ACCELEROMETER_G,
                    DAVIS_GYROSCOPE_DPS,
                    *self._temperature,
                )
                if not done:
                    break
                frames.append(self._frame())
            events.append(scratch.events[:n].copy())
            triggers.append(scratch.triggers[:m].copy())
            imu.append(scratch.imu(k))
        return _packet(events, triggers, imu, tuple(frames))

    def _frame(self) -> Frame:
        s = self._state
        width, height = int(s[_OUT_WIDTH]), int(s[_OUT_HEIGHT])
        values = self._pixels[: width * height].reshape(height, width)
        pixels = np.where(values < 0, 0, values).astype(np.uint16)
        exposure_start, exposure_end = int(s[_OUT_EXPOSURE_START]), int(s[_OUT_EXPOSURE_END])
        return Frame(
            t=int(s[_OUT_START]),
            pixels=pixels,
            exposure_start=exposure_start if exposure_start >= 0 else None,
            exposure_end=exposure_end if exposure_end >= 0 else None,
            x=int(s[_OUT_X]),
            y=int(s[_OUT_Y]),
        )
