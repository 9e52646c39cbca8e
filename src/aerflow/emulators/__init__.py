"""Emulated USB event cameras: each model speaks its camera's USB protocol from a register
table of its own (written from the protocol notes, not from the drivers) and plays a
recording, or synthetic events, on its data endpoint.

>>> import aerflow.devices
>>> backend = aerflow.devices.emulate("evk4", "recording.raw")      # doctest: +SKIP
>>> with aerflow.devices.open(backend=backend) as camera:            # doctest: +SKIP
...     for status, packet in camera:
...         ...

:class:`EmulatedBackend` is the bus the real drivers open them on; the models are
:class:`~aerflow.emulators.prophesee.EmulatedEvk4`,
:class:`~aerflow.emulators.prophesee.EmulatedEvk3Hd`,
:class:`~aerflow.emulators.inivation.EmulatedDvxplorer` and
:class:`~aerflow.emulators.inivation.EmulatedDavis346` (registered by driver name in
:data:`aerflow.devices.EMULATORS`).
"""

from __future__ import annotations

from .base import EmulatedDevice, EmulatedStall, StreamChunk
from .usb import EmulatedBackend, EmulatedHandle

__all__ = ["EmulatedBackend", "EmulatedDevice", "EmulatedHandle", "EmulatedStall", "StreamChunk"]
