"""Exception hierarchy: every exception and warning class of aerflow is defined here.

Every error a user can meet derives from :class:`AerflowError` and also from the builtin
exception a user would naturally catch, so ``except ValueError`` works as well as
``except aerflow.FormatError``. The last section holds the parsers' internal errors
(plain ``ValueError`` subclasses that the readers turn into :class:`FormatError` with the
file's name and offset; they never reach the user as they are).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "AerflowError",
    "BatchError",
    "ConfigurationError",
    "DeviceBusyError",
    "DeviceDisconnectedError",
    "DeviceError",
    "DeviceNotFoundError",
    "DevicePermissionError",
    "DeviceProtocolError",
    "DeviceTimeoutError",
    "FlatBufferError",
    "FormatError",
    "HeaderError",
    "LostMessagesWarning",
    "MalformedMessageError",
    "MissingDependencyError",
    "NetworkError",
    "NetworkTimeoutError",
    "NonMonotonicTimeError",
    "NotThisFormatError",
    "OptionError",
    "OutOfRangeWarning",
    "OutputError",
    "PayloadError",
    "TextFormatError",
    "TruncatedDataWarning",
    "UnknownComponentError",
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


class TextFormatError(FormatError):
    """A malformed line of a text file; ``line`` is its 1-based number."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        offset: int | None = None,
        line: int | None = None,
    ) -> None:
        self.line = line
        text = f"line {line}: {message}" if line is not None else message
        super().__init__(text, path=path, offset=offset)


class NonMonotonicTimeError(AerflowError, ValueError):
    """Events handed to a writer go back in time (Event Stream stores time differences)."""

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index
        """The event's index among all events written to the file so far."""


class UnknownFormatError(AerflowError, LookupError):
    """No registered format matches the name, the file's contents or its extension."""


class UnknownComponentError(AerflowError, LookupError):
    """No source, filter or sink of that name."""


class OptionError(AerflowError, TypeError):
    """A keyword option that the chosen format's reader or writer does not take."""


class MissingDependencyError(AerflowError, ImportError):
    """An optional package that a feature needs is not installed; the message names the
    extra to install (``pip install 'aerflow[EXTRA]'``) and ``name`` the missing module."""


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


class BatchError(AerflowError):
    """Some files of :func:`aerflow.batch.map` failed: ``failures`` maps each path to its
    one-line error, ``results`` holds every file's result (None where it failed)."""

    def __init__(self, failures: dict[str, str], results: list[Any]) -> None:
        first = next(iter(failures.items()))
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(f"{len(failures)} file(s) failed: {first[0]}: {first[1]}{more}")
        self.failures = failures
        self.results = results


class TruncatedDataWarning(UserWarning):
    """A file ends in the middle of a record; every complete event before it was read."""


class OutOfRangeWarning(UserWarning):
    """Events with coordinates outside the sensor were dropped."""


class LostMessagesWarning(TruncatedDataWarning):
    """EventPacket ``seq`` numbers skipped some: messages were lost while recording."""


# -- the parsers' internal errors: caught by the readers (and the DV network client) and
# raised again as FormatError or NetworkError with the file or peer named ---------------------


class HeaderError(ValueError):
    """An AEDAT 4 description (XML header) that does not hold together; ``offset`` is a byte
    position in the file."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class PayloadError(ValueError):
    """An AEDAT 4 packet payload that cannot be decompressed or decoded; ``offset`` is a
    position inside the decompressed payload when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class FlatBufferError(ValueError):
    """A FlatBuffer that does not hold together; ``offset`` is the position found wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class MalformedMessageError(ValueError):
    """A ROS message's bytes do not hold the fields its type declares (the reader adds the
    topic and message index)."""
