"""Exception hierarchy.

Every class derives from :class:`AerflowError` and also from the builtin exception a user would
naturally catch, so ``except ValueError`` works as well as ``except aerflow.FormatError``.
"""

from __future__ import annotations

import os

__all__ = [
    "AerflowError",
    "ConfigurationError",
    "DeviceBusyError",
    "DeviceDisconnectedError",
    "DeviceError",
    "DeviceNotFoundError",
    "DevicePermissionError",
    "DeviceProtocolError",
    "DeviceTimeoutError",
    "FormatError",
    "NetworkError",
    "NetworkTimeoutError",
    "NotThisFormatError",
    "OptionError",
    "OutOfRangeWarning",
    "OutputError",
    "TruncatedDataWarning",
    "UnknownFormatError",
]


class AerflowError(Exception):
    """Base class of every error aerflow raises."""


class FormatError(AerflowError, ValueError):
    """A file's bytes do not follow its format.

    ``path`` and ``offset`` (a byte offset in the file) locate the problem when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.offset = offset
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path)
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class NotThisFormatError(FormatError):
    """A reader was handed a file of another format."""


class UnknownFormatError(AerflowError, LookupError):
    """No registered format matches the name, the file's contents or its extension."""


class OptionError(AerflowError, TypeError):
    """A keyword option that the chosen format's reader or writer does not take."""


class OutputError(AerflowError, OSError):
    """An output path aerflow will not write: a directory, or a file whose hard links a
    rename would break."""


class NetworkError(AerflowError, OSError):
    """A network transport failed (socket set-up, sending, receiving)."""


class NetworkTimeoutError(NetworkError, TimeoutError):
    """Nothing arrived from the network within the time allowed."""


class DeviceError(AerflowError, OSError):
    """A camera or its USB link failed. ``serial`` names the device when known."""

    def __init__(self, message: str, *, serial: str | None = None) -> None:
        self.serial = serial
        self.reason = message
        super().__init__(f"{serial}: {message}" if serial else message)


class DeviceNotFoundError(DeviceError, LookupError):
    """No connected (or emulated) camera matches the request."""


class DeviceBusyError(DeviceError):
    """The camera is claimed by another program or another open device."""


class DevicePermissionError(DeviceError, PermissionError):
    """The operating system refused access to the camera (see ``aerflow udev install``)."""


class DeviceDisconnectedError(DeviceError, ConnectionError):
    """The camera went away (unplugged, powered off, reset) while it was open."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A USB transfer to or from the camera did not complete in time."""


class DeviceProtocolError(DeviceError):
    """The camera answered something its protocol does not allow (a short or mismatched reply)."""


class ConfigurationError(AerflowError, ValueError):
    """A camera setting is out of range, of the wrong device, or cannot change while streaming."""


class TruncatedDataWarning(UserWarning):
    """A file ends in the middle of a record; every complete event before it was read."""


class OutOfRangeWarning(UserWarning):
    """Events with coordinates outside the sensor were dropped."""
