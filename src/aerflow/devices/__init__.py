"""USB event cameras: list them, open one, iterate ``(status, packet)``.

>>> import aerflow.devices
>>> aerflow.devices.list()                                   # doctest: +SKIP
>>> with aerflow.devices.open() as camera:                   # doctest: +SKIP
...     for status, packet in camera:
...         print(len(packet.events), status.ring.backlog)

Real cameras go through libusb (the ``usb`` extra: ``pip install 'aerflow[usb]'``). Every
model also has an emulated device (:mod:`aerflow.emulators`) that speaks its USB protocol and
plays a recording (or synthetic events):
``aerflow.devices.open(backend=aerflow.devices.emulate("evk4", "rec.raw"))`` runs the real
driver without hardware.

Drivers and emulators are registered by name in :data:`DRIVERS` and :data:`EMULATORS` as
``"module:Class"`` strings and imported on first use. Imports go one way: the emulators use
this package's USB interface (:mod:`aerflow.devices.usb`); this package reaches them only
through those strings (``EmulatedBackend`` and ``EmulatedDevice`` here are loaded on first
use too).
"""

from __future__ import annotations

import builtins
import importlib
import logging
import os
from typing import TYPE_CHECKING, Any, Literal, overload

from .._optional import load_reference
from ..errors import DeviceNotFoundError

if TYPE_CHECKING:
    from ..events import Packet
    from .camera import DECODED_AHEAD, DEFAULT_MAX_BUFFERS, Camera, CameraStream
    from .driver import CameraDriver
    from .ring import DEFAULT_BUFFER_LENGTH, DEFAULT_IN_FLIGHT, DEFAULT_RING_LENGTH
    from .selection import ListedDevice
    from .status import RingStatus, Status
    from .usb import UsbBackend

__all__ = [
    "DECODED_AHEAD",
    "DEFAULT_BUFFER_LENGTH",
    "DEFAULT_IN_FLIGHT",
    "DEFAULT_MAX_BUFFERS",
    "DEFAULT_RING_LENGTH",
    "DRIVERS",
    "EMULATORS",
    "Camera",
    "CameraStream",
    "EmulatedBackend",
    "ListedDevice",
    "RingStatus",
    "Status",
    "driver_class",
    "emulate",
    "emulator_class",
    "list",
    "open",
]

log = logging.getLogger(__name__)

DRIVERS: dict[str, str] = {
    "inivation_davis346": "aerflow.devices.inivation_davis346:Davis346Driver",
    "inivation_dvxplorer": "aerflow.devices.inivation_dvxplorer:DvxplorerDriver",
    "prophesee_evk3_hd": "aerflow.devices.prophesee_evk3_hd:Evk3HdDriver",
    "prophesee_evk4": "aerflow.devices.prophesee_evk4:Evk4Driver",
}
"""Camera drivers by name, in the order :func:`open` tries them (the EVK3 HD before the EVK4:
they share USB ids and each driver's ``identify`` tells its own)."""

EMULATORS: dict[str, str] = {
    "inivation_davis346": "aerflow.emulators.inivation:EmulatedDavis346",
    "inivation_dvxplorer": "aerflow.emulators.inivation:EmulatedDvxplorer",
    "prophesee_evk3_hd": "aerflow.emulators.prophesee:EmulatedEvk3Hd",
    "prophesee_evk4": "aerflow.emulators.prophesee:EmulatedEvk4",
}
"""Emulated devices by driver name. Each class is built as ``Class(recording=None, *,
serial=None, loop=False, **model_options)``."""

_ALIASES = {
    "davis346": "inivation_davis346",
    "davis": "inivation_davis346",
    "dvxplorer": "inivation_dvxplorer",
    "evk3_hd": "prophesee_evk3_hd",
    "evk3hd": "prophesee_evk3_hd",
    "evk4": "prophesee_evk4",
}


_load = load_reference


def _canonical(name: str, table: dict[str, str], what: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in table:
        known = ", ".join([*table, *(a for a, n in _ALIASES.items() if n in table)])
        raise DeviceNotFoundError(f"unknown {what} {name!r} (known: {known})")
    return key


def driver_class(name: str) -> type[CameraDriver]:
    """The driver registered as ``name`` (a short alias such as "evk4" works too); raises
    DeviceNotFoundError for an unknown name."""
    cls: type[CameraDriver] = _load(DRIVERS[_canonical(name, DRIVERS, "camera model")])
    return cls


_EMULATION = {
    "EmulatedBackend": "aerflow.emulators.usb:EmulatedBackend",
    "EmulatedDevice": "aerflow.emulators.base:EmulatedDevice",
}
"""Names this package offers from :mod:`aerflow.emulators`, loaded on first use."""

_LAZY = {
    **dict.fromkeys(("DECODED_AHEAD", "DEFAULT_MAX_BUFFERS", "Camera", "CameraStream"), "camera"),
    "CameraDriver": "driver",
    **dict.fromkeys(("DEFAULT_BUFFER_LENGTH", "DEFAULT_IN_FLIGHT", "DEFAULT_RING_LENGTH"), "ring"),
    "ListedDevice": "selection",
    **dict.fromkeys(("RingStatus", "Status"), "status"),
    "UsbBackend": "usb",
}
"""Public names of this package's modules, imported on first use (so ``aerflow udev print``
and the command line's help load none of the USB machinery), and the module of each."""

_SUBMODULES = frozenset({"camera", "driver", "ring", "selection", "status", "usb"})
"""The modules that ``aerflow.devices.NAME`` reaches without importing them first."""


def __getattr__(name: str) -> Any:
    if name in _EMULATION:
        return _load(_EMULATION[name])
    if name in _LAZY:
        value = _load(f"{__name__}.{_LAZY[name]}:{name}")
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> builtins.list[str]:
    return sorted({*globals(), *_EMULATION, *_LAZY, *_SUBMODULES})


def emulator_class(name: str) -> type[Any]:
    """The emulated device class (an :class:`aerflow.emulators.EmulatedDevice`) registered as
    ``name`` (or a short alias such as "evk4")."""
    cls: type[Any] = _load(EMULATORS[_canonical(name, EMULATORS, "emulated model")])
    return cls


def _drivers() -> builtins.list[type[CameraDriver]]:
    """Every registered driver that imports, in registration order."""
    classes: builtins.list[type[CameraDriver]] = []
    for name, reference in DRIVERS.items():
        module = reference.partition(":")[0]
        try:
            classes.append(_load(reference))
        except ModuleNotFoundError as error:
            if error.name is None or not module.startswith(error.name):
                raise
            log.debug("the %s driver is not available (%s)", name, error)
    return classes


def _backend(backend: UsbBackend | None) -> UsbBackend:
    if backend is not None:
        return backend
    from ._libusb import LibusbBackend

    return LibusbBackend()


def _given(**options: int | None) -> dict[str, int]:
    """The options given (not None): the others keep the defaults of
    :func:`aerflow.devices.selection.open_camera`, the ring's and the camera's."""
    return {name: value for name, value in options.items() if value is not None}


def list(
    backend: UsbBackend | None = None,
    *,
    drivers: builtins.list[type[CameraDriver]] | None = None,
) -> builtins.list[ListedDevice]:
    """Every supported camera connected (or on ``backend``), identified by its driver.

    A camera that cannot be opened (busy, no permission) is listed with the reason in
    ``error``; nothing is raised for one device. ``drivers`` replaces the registered ones.
    """
    from .selection import list_devices

    return list_devices(_backend(backend), _drivers() if drivers is None else drivers)


@overload
def open(
    serial: str | None = ...,
    configuration: Any = ...,
    raw: Literal[False] = ...,
    timeout: float | None = ...,
    *,
    backend: UsbBackend | None = ...,
    buffer_length: int | None = ...,
    ring_length: int | None = ...,
    in_flight: int | None = ...,
    max_buffers: int | None = ...,
    lossless: bool | None = ...,
    drivers: builtins.list[type[CameraDriver]] | None = ...,
) -> Camera[Packet]: ...


@overload
def open(
    serial: str | None = ...,
    configuration: Any = ...,
    *,
    raw: Literal[True],
    timeout: float | None = ...,
    backend: UsbBackend | None = ...,
    buffer_length: int | None = ...,
    ring_length: int | None = ...,
    in_flight: int | None = ...,
    max_buffers: int | None = ...,
    lossless: bool | None = ...,
    drivers: builtins.list[type[CameraDriver]] | None = ...,
) -> Camera[bytes | None]: ...


@overload
def open(
    serial: str | None = ...,
    configuration: Any = ...,
    raw: bool = ...,
    timeout: float | None = ...,
    *,
    backend: UsbBackend | None = ...,
    buffer_length: int | None = ...,
    ring_length: int | None = ...,
    in_flight: int | None = ...,
    max_buffers: int | None = ...,
    lossless: bool | None = ...,
    drivers: builtins.list[type[CameraDriver]] | None = ...,
) -> Camera[Any]: ...


def open(
    serial: str | None = None,
    configuration: Any = None,
    raw: bool = False,
    timeout: float | None = None,
    *,
    backend: UsbBackend | None = None,
    buffer_length: int | None = None,
    ring_length: int | None = None,
    in_flight: int | None = None,
    max_buffers: int | None = None,
    lossless: bool | None = None,
    drivers: builtins.list[type[CameraDriver]] | None = None,
) -> Camera[Any]:
    """Open a camera and start streaming; iterate the result for ``(status, packet)``.

    - ``serial``: the camera to open (default: the first one found). Drivers are tried in
      the order of :data:`DRIVERS`.
    - ``configuration``: the model's configuration dataclass, or the path of a TOML/JSON
      file holding one (default: the model's defaults). A dataclass restricts the search to
      that model.
    - ``raw``: yield the data endpoint's undecoded bytes (for instance EVT 3.0 words of a
      Prophesee camera, ready for a .raw file) instead of packets.
    - ``timeout``: seconds an iteration waits for data before returning an empty packet
      (None in raw mode); None waits for ever.
    - ``backend``: where devices are found: libusb by default, or :func:`emulate`'s
      emulated bus.
    - ``buffer_length`` (bytes per USB transfer, a multiple of 512; 1024 for USB 3),
      ``in_flight`` (transfers queued) and ``ring_length`` (buffers held for a consumer
      that falls behind: 512 × 128 KiB = 64 MiB by default; when it is full, data is
      discarded and counted in the status).
    - ``max_buffers``: USB buffers merged at most into one iteration.
    - None for any of these four: its default (:data:`DEFAULT_BUFFER_LENGTH`,
      :data:`DEFAULT_IN_FLIGHT`, :data:`DEFAULT_RING_LENGTH`, :data:`DEFAULT_MAX_BUFFERS`).
    - ``lossless``: make the transport wait when the ring is full instead of discarding.
      None (the default) means True only for an emulated bus playing as fast as possible
      (``speed=None``), so that emulated recordings arrive whole; never for real cameras.
    - ``drivers``: driver classes to try instead of the registered ones.

    Raises DeviceNotFoundError when no camera matches, DeviceBusyError when the camera is
    used by another program, DevicePermissionError when the system denies access (run
    ``sudo aerflow udev install`` on Linux), ConfigurationError for a configuration of
    another model or an invalid file.
    """
    if lossless is None:
        # An emulated bus playing as fast as it is read says so (EmulatedBackend).
        lossless = bool(getattr(backend, "lossless_by_default", False))
    from .selection import open_camera

    return open_camera(
        _backend(backend),
        _drivers() if drivers is None else drivers,
        serial=serial,
        configuration=configuration,
        raw=raw,
        timeout=timeout,
        lossless=lossless,
        **_given(
            buffer_length=buffer_length,
            ring_length=ring_length,
            in_flight=in_flight,
            max_buffers=max_buffers,
        ),
    )


def emulate(
    name: str,
    recording: str | os.PathLike[str] | None = None,
    *,
    speed: float | None = None,
    serial: str | None = None,
    loop: bool = False,
    **options: Any,
) -> Any:
    """An emulated bus (an :class:`aerflow.emulators.EmulatedBackend`) holding one emulated
    camera of model ``name`` ("evk4", "evk3_hd", "dvxplorer", "davis346" or a full driver
    name) playing ``recording`` (any file aerflow reads; None: synthetic events). Pass it as
    ``open(backend=...)``.

    ``speed`` paces playback by the recording's time (1.0: real time); None plays as fast
    as the consumer takes it. ``loop`` replays the recording for ever; ``options`` go to the
    model's emulator.
    """
    cls: Any = emulator_class(name)
    device = cls(
        None if recording is None else os.fspath(recording), serial=serial, loop=loop, **options
    )
    return _load(_EMULATION["EmulatedBackend"])([device], speed=speed)
