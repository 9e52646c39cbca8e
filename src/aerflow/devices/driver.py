"""What a camera model provides to the generic camera machinery (``camera.py``).

One subclass of :class:`CameraDriver` per model (``prophesee_evk4.py``, ``inivation_davis346.py``,
...). The driver knows the model's requests, registers and sequences; the camera object owns
the threads, the ring of USB buffers and the iteration. Drivers never start threads.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..events import Packet
from .usb import UsbHandle

__all__ = ["CameraDriver", "StreamDecoder"]


class StreamDecoder(Protocol):
    """Turns the bytes of the camera's data endpoint into packets, in order.

    Chunks may split a word or a multi-word group anywhere: the decoder keeps what it could
    not finish and prepends it to the next chunk (as a copy: ``data`` is a view into buffers the
    camera reuses, so nothing returned or kept may refer to it). Decoding runs on the camera's
    decode thread, in numba kernels that release the GIL."""

    def decode(self, data: npt.NDArray[np.uint8]) -> Packet:
        """Every event, trigger, IMU sample and frame completed by ``data``."""
        ...

    @property
    def current_t(self) -> int:
        """The decoder's time in µs (the device's clock) after the last chunk."""
        ...


class CameraDriver(ABC):
    """One camera model: identification, open/start/stop sequences, configuration, decoding.

    Every request goes through ``self.handle``. ``self.lock`` serialises register access
    between the caller's thread (configuration updates, readouts such as temperature) and
    the camera's own calls; hold it around each multi-request operation.
    """

    name: ClassVar[str]
    """Identifier used by the API and the CLI, e.g. "prophesee_evk4"."""
    model: ClassVar[str]
    """Human-readable model name, e.g. "Prophesee EVK4"."""
    ids: ClassVar[tuple[tuple[int, int], ...]]
    """The (vendor id, product id) pairs this driver may own; identify() decides."""
    width: ClassVar[int]
    height: ClassVar[int]
    data_endpoint: ClassVar[int]
    """The bulk IN endpoint that streams events."""
    raw_format: ClassVar[str | None]
    """The aerflow format name of the data endpoint's bytes when it is a file format
    ("evt3": raw mode can be written to a .raw file), None otherwise."""
    configuration_type: ClassVar[type]
    """The model's frozen configuration dataclass; ``configuration_type()`` is the default."""

    def __init__(self, handle: UsbHandle, serial: str) -> None:
        self.handle = handle
        self.serial = serial
        self.lock = threading.RLock()

    @classmethod
    def checked_configuration(cls, configuration: Any) -> Any:
        """``configuration``, or the model's default for None; ConfigurationError for a
        configuration of another model."""
        expected = cls.configuration_type
        if configuration is None:
            return expected()
        if not isinstance(configuration, expected):
            raise ConfigurationError(
                f"the {cls.model} takes a {expected.__module__}.{expected.__qualname__}, not a "
                f"{type(configuration).__module__}.{type(configuration).__qualname__}"
            )
        return configuration

    @classmethod
    @abstractmethod
    def identify(cls, handle: UsbHandle) -> str | None:
        """The device's serial if ``handle`` is this model, None if it is another model.

        Called on every device whose ids match, before open(); only requests that do not
        change the device's state are allowed here."""

    @abstractmethod
    def open(self, configuration: Any) -> None:
        """Everything from checks to start, leaving the device streaming on
        ``data_endpoint``; the camera submits its transfers right after. Raises
        DeviceProtocolError when the device answers unexpectedly."""

    @abstractmethod
    def update_configuration(self, previous: Any, configuration: Any) -> None:
        """Write only the settings that differ, while streaming. Raises ConfigurationError
        (before writing anything) for a change the hardware cannot make live."""

    @abstractmethod
    def close(self) -> None:
        """The stop and power-down sequence; the camera cancels its streaming transfers
        right after (the reference drivers' order). Best effort: the device may already be
        gone; never raises DeviceError."""

    @abstractmethod
    def decoder(self) -> StreamDecoder:
        """A fresh decoder for the data endpoint, its time starting at the device's reset."""
