"""One policy for opening every output aerflow writes, so that nothing the user had is lost.

- ``-`` is standard output, written as a stream.
- A new path or a regular file is written to a temporary file in the same folder, renamed
  into place on success (the old file stays whole until then, and is untouched on failure).
  An existing file keeps its mode (and its owner, where the process may set it). A file with
  other hard links is refused unless ``break_hard_links`` is set: a rename would leave the
  other names on the old data.
- A symbolic link is followed: its target is replaced the same way, the link stays.
- A character or block device, a FIFO or a UNIX socket is written to directly, as a stream;
  it is never replaced. Formats that go back to patch what they wrote (``needs_seek``) are
  spooled to an anonymous temporary file and copied to the stream on success.
- A directory is an :class:`~aerflow.OutputError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import IO, Any

from .errors import OutputError

__all__ = ["Output", "breaking_hard_links"]

_BREAK_HARD_LINKS = contextvars.ContextVar("aerflow_break_hard_links", default=False)


@contextlib.contextmanager
def breaking_hard_links(allowed: bool = True) -> Iterator[None]:
    """Outputs opened inside replace hard-linked files (for ``aerflow.open(...,
    break_hard_links=True)``, whose writers open their output in their constructors)."""
    token = _BREAK_HARD_LINKS.set(allowed)
    try:
        yield
    finally:
        _BREAK_HARD_LINKS.reset(token)


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """A Ctrl-C (SIGINT) that comes inside is delivered on leaving, to the handler there was
    (only the main thread handles signals; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # set outside Python: left alone
        yield
        return
    signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


def _remove_leftover(file: IO[bytes], temporary: str) -> None:
    with contextlib.suppress(OSError):
        file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)


def _create_beside(target: str, suffix: str) -> tuple[int, str]:
    """A new file beside ``target``, made with mode 0o666 less the process umask, applied by
    the system as it creates the file: the umask is never read by setting it, which would
    change it for every thread meanwhile."""
    directory = os.path.dirname(target) or "."
    for _ in range(100):
        name = os.path.join(
            directory, f".{os.path.basename(target)}.{secrets.token_hex(4)}{suffix}"
        )
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


class Output:
    """An opened output: write to :attr:`file` (or, for libraries that want a name, to
    :attr:`working_path` after closing :attr:`file`), then :meth:`commit` or :meth:`discard`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        needs_seek: bool = False,
        suffix: str = ".part",
        break_hard_links: bool | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self._stream: IO[bytes] | None = None
        self._temporary: str | None = None
        self._leftover: weakref.finalize[Any, Any] | None = None
        self._target = ""
        self._mode: int | None = None
        self._owner: tuple[int, int] | None = None
        if self.path == "-":
            self._stream = sys.stdout.buffer
            self._keep_stream_open = True
        else:
            if break_hard_links is None:
                break_hard_links = _BREAK_HARD_LINKS.get()
            self._open_path(break_hard_links)
        self.streaming = self._stream is not None
        """True when bytes go straight to a stream (nothing to rename, nothing to take back)."""
        if self._stream is not None and not needs_seek:
            self.file: IO[bytes] = self._stream
            self.working_path: str | None = None
            return
        # An output dropped without commit() or discard() (say, its writer interrupted while
        # being made) still takes its temporary file away, once collected or at exit; a
        # Ctrl-C between the file's creation and that promise waits until it is made.
        with _interrupt_deferred():
            if self._stream is not None:
                spool_fd, temporary = tempfile.mkstemp(prefix=".aerflow-spool.", suffix=suffix)
            else:
                spool_fd, temporary = _create_beside(self._target, suffix)
            self.file = os.fdopen(spool_fd, "w+b")
            self._temporary = temporary
            self._leftover = weakref.finalize(self, _remove_leftover, self.file, temporary)
        self.working_path = self._temporary

    def _open_path(self, break_hard_links: bool) -> None:
        self._target = os.path.realpath(self.path)
        self._keep_stream_open = False
        try:
            info = os.stat(self._target)
        except FileNotFoundError:
            return
        except OSError as error:
            raise OutputError(f"{self.path}: cannot write here ({error.strerror})") from None
        if stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{self.path} is a directory: name a file to write")
        if stat.S_ISREG(info.st_mode):
            if info.st_nlink > 1 and not break_hard_links:
                raise OutputError(
                    f"{self.path} has {info.st_nlink - 1} other hard link(s): writing it would "
                    "leave them on the old data. Remove it first or write to a new name "
                    "(in Python, break_hard_links=True replaces it anyway)"
                )
            self._mode = stat.S_IMODE(info.st_mode)
            self._owner = (info.st_uid, info.st_gid)
            return
        if stat.S_ISSOCK(info.st_mode):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(self._target)
            except OSError as error:
                connection.close()
                raise OutputError(f"{self.path}: cannot connect ({error.strerror})") from None
            self._stream = connection.makefile("wb")
            connection.close()  # the file object keeps the connection open
            return
        # A device or a FIFO: opened as it is, never truncated, created or replaced.
        self._stream = os.fdopen(os.open(self._target, os.O_WRONLY), "wb")

    def commit(self) -> None:
        """Finish: flush a stream, or move the temporary file into place."""
        if self._temporary is None:
            self._finish_stream()
            return
        self.file.close()
        if self._stream is not None:
            try:
                with open(self._temporary, "rb") as spool:
                    shutil.copyfileobj(spool, self._stream, 1 << 20)
            finally:
                os.unlink(self._temporary)
                self._done_with_temporary()
            self._finish_stream()
            return
        if self._mode is not None:  # replacing a file: it keeps its mode
            os.chmod(self._temporary, self._mode)
        if self._owner is not None and hasattr(os, "chown"):
            with contextlib.suppress(OSError):  # only where the process may
                os.chown(self._temporary, *self._owner)
        os.replace(self._temporary, self._target)
        self._done_with_temporary()

    def discard(self) -> None:
        """Give up: remove the temporary file; a stream keeps what was already sent."""
        with contextlib.suppress(OSError):
            self.file.close()
        if self._temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temporary)
            self._done_with_temporary()
        if self._stream is not None and not self._keep_stream_open:
            with contextlib.suppress(OSError):
                self._stream.close()

    def _done_with_temporary(self) -> None:
        self._temporary = None
        if self._leftover is not None:
            self._leftover.detach()

    def _finish_stream(self) -> None:
        assert self._stream is not None
        self._stream.flush()
        if not self._keep_stream_open:
            self._stream.close()

    def __enter__(self) -> Output:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
