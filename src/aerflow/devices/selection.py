"""Finding and opening a camera: list the supported devices on a bus (each identified by its
driver), select one by serial, then open, configure and start it as a :class:`.Camera`."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from dataclasses import dataclass, is_dataclass
from typing import Any

from ..errors import (
    ConfigurationError,
    DeviceError,
    DeviceNotFoundError,
)
from .camera import (
    BUFFER_ALIGNMENT,
    DEFAULT_MAX_BUFFERS,
    Camera,
    resolve_configuration,
)
from .driver import CameraDriver
from .ring import DEFAULT_BUFFER_LENGTH, DEFAULT_IN_FLIGHT, DEFAULT_RING_LENGTH
from .usb import UsbBackend, UsbDeviceInfo, UsbHandle

__all__ = ["ListedDevice", "list_devices", "open_camera"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListedDevice:
    """A supported camera seen on the bus. ``error`` says why it could not be identified
    (busy, no permission, ...); ``name`` and ``serial`` are then None when unknown."""

    name: str | None
    """The driver's name, e.g. "prophesee_evk4"."""
    model: str
    """Human-readable model ("Prophesee EVK4"), or the candidates when unidentified."""
    serial: str | None
    bus: int
    address: int
    speed: str
    error: str | None = None


def _where(info: UsbDeviceInfo) -> str:
    return (
        f"the camera on bus {info.bus} address {info.address} "
        f"({info.vendor_id:04x}:{info.product_id:04x})"
    )


# -- selection ----------------------------------------------------------------------------------
def _candidates(
    info: UsbDeviceInfo, drivers: Sequence[type[CameraDriver]]
) -> builtins.list[type[CameraDriver]]:
    ids = (info.vendor_id, info.product_id)
    return [driver for driver in drivers if ids in driver.ids]


def _identify(
    handle: UsbHandle, drivers: Sequence[type[CameraDriver]]
) -> tuple[type[CameraDriver], str] | None:
    for driver in drivers:
        serial = driver.identify(handle)
        if serial is not None:
            return driver, serial
    return None


def _models(drivers: Sequence[type[CameraDriver]]) -> str:
    return " or ".join(driver.model for driver in drivers)


def list_devices(
    backend: UsbBackend, drivers: Sequence[type[CameraDriver]]
) -> builtins.list[ListedDevice]:
    """Every device whose ids some driver owns, identified; per-device failures (busy, no
    permission, an unexpected answer) are reported in ``error``, never raised."""
    listed: builtins.list[ListedDevice] = []
    for info in backend.devices():
        candidates = _candidates(info, drivers)
        if not candidates:
            continue
        unknown = ListedDevice(
            name=candidates[0].name if len(candidates) == 1 else None,
            model=_models(candidates),
            serial=None,
            bus=info.bus,
            address=info.address,
            speed=info.speed,
        )
        try:
            handle = backend.open(info)
        except DeviceError as error:
            listed.append(_with_error(unknown, error))
            continue
        try:
            match = _identify(handle, candidates)
        except DeviceError as error:
            listed.append(_with_error(unknown, error))
            continue
        finally:
            handle.close()
        if match is None:
            listed.append(_with_error(unknown, "not recognised: no driver identifies this device"))
            continue
        driver, serial = match
        listed.append(
            ListedDevice(driver.name, driver.model, serial, info.bus, info.address, info.speed)
        )
    return listed


def _with_error(device: ListedDevice, error: DeviceError | str) -> ListedDevice:
    message = error if isinstance(error, str) else error.reason
    return ListedDevice(
        device.name, device.model, device.serial, device.bus, device.address, device.speed, message
    )


def _select(
    backend: UsbBackend, drivers: Sequence[type[CameraDriver]], serial: str | None
) -> tuple[UsbHandle, type[CameraDriver], str]:
    """Open the first camera (or the one with ``serial``) a driver identifies."""
    failures: builtins.list[tuple[UsbDeviceInfo, DeviceError]] = []
    others: builtins.list[str] = []
    for info in backend.devices():
        candidates = _candidates(info, drivers)
        if not candidates:
            continue
        try:
            handle = backend.open(info)
        except DeviceNotFoundError:
            continue  # unplugged since the enumeration
        except DeviceError as error:
            log.debug("%s: %s", _where(info), error)
            failures.append((info, error))
            continue
        try:
            match = _identify(handle, candidates)
        except DeviceError as error:
            handle.close()
            failures.append((info, error))
            continue
        except BaseException:
            handle.close()
            raise
        if match is None:
            handle.close()
            continue
        driver, device_serial = match
        if serial is not None and device_serial != serial:
            handle.close()
            others.append(device_serial)
            continue
        return handle, driver, device_serial
    raise _selection_error(serial, failures, others)


def _selection_error(
    serial: str | None,
    failures: Sequence[tuple[UsbDeviceInfo, DeviceError]],
    others: Sequence[str],
) -> DeviceError:
    wanted = "no camera" if serial is None else f"no camera with serial {serial}"
    if failures:
        # The first failure's kind (busy, no permission...) says what to do about it.
        reasons = "; ".join(f"{_where(info)}: {error.reason}" for info, error in failures)
        prefix = "" if serial is None and not others else f"{wanted} among those opened; "
        return type(failures[0][1])(f"{prefix}{reasons}")
    if serial is not None and others:
        return DeviceNotFoundError(f"{wanted} (found: {', '.join(others)})")
    return DeviceNotFoundError(
        f"{wanted} found: is it plugged in? `aerflow devices` lists the cameras aerflow can "
        "see (on Linux, `sudo aerflow udev install` gives access to them)"
    )


def open_camera(
    backend: UsbBackend,
    drivers: Sequence[type[CameraDriver]],
    *,
    serial: str | None = None,
    configuration: Any = None,
    raw: bool = False,
    timeout: float | None = None,
    buffer_length: int = DEFAULT_BUFFER_LENGTH,
    ring_length: int = DEFAULT_RING_LENGTH,
    in_flight: int = DEFAULT_IN_FLIGHT,
    max_buffers: int = DEFAULT_MAX_BUFFERS,
    lossless: bool = False,
) -> Camera[Any]:
    """Select, open, configure and start a camera (see :func:`aerflow.devices.open`)."""
    if buffer_length < BUFFER_ALIGNMENT or buffer_length % BUFFER_ALIGNMENT:
        raise ValueError(
            f"buffer_length must be a positive multiple of {BUFFER_ALIGNMENT}, not {buffer_length}"
        )
    if ring_length < 2:
        raise ValueError(f"ring_length must be at least 2, not {ring_length}")
    if in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, not {in_flight}")
    if max_buffers < 1:
        raise ValueError(f"max_buffers must be at least 1, not {max_buffers}")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout must be None or >= 0, not {timeout}")
    if configuration is not None and is_dataclass(configuration):
        matching = [d for d in drivers if isinstance(configuration, d.configuration_type)]
        if not matching:
            raise ConfigurationError(
                f"no camera driver takes a {type(configuration).__qualname__} configuration"
            )
        drivers = matching
    handle, driver_type, device_serial = _select(backend, drivers, serial)
    try:
        resolved = resolve_configuration(driver_type, configuration)
        driver = driver_type(handle, device_serial)
        with driver.lock:
            driver.open(resolved)
    except BaseException:
        handle.close()
        raise
    try:
        camera: Camera[Any] = Camera(
            handle,
            driver,
            resolved,
            raw=raw,
            timeout=timeout,
            buffer_length=buffer_length,
            ring_length=ring_length,
            in_flight=in_flight,
            max_buffers=max_buffers,
            lossless=lossless,
        )
    except BaseException:
        try:
            with driver.lock:
                driver.close()
        finally:
            handle.close()
        raise
    info = handle.info
    log.info(
        "%s: opened %s on bus %d address %d (%s)",
        device_serial,
        driver_type.model,
        info.bus,
        info.address,
        info.speed,
    )
    return camera
