"""Child processes for the tests (started ready for Ctrl-C, always killed and reaped) and
waits for what tells that something is ready.

A test waits on events (a file appearing, a port bound, the child ending), never on the
clock; the time limits here only turn a hang into a failure, so they are generous enough
for a machine whose cores are all busy with other work.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

PATIENCE = 120.0
"""Seconds before a wait that should end gives up and fails the test."""


def _prepare_child() -> None:
    # A parent that ignores SIGINT (nohup, `trap '' INT`, a background job of a script) passes
    # the ignored disposition through exec, and Python then installs no KeyboardInterrupt
    # handler: with the default back, the child's Python installs its own as usual.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # A group of its own, so that killing the group also ends whatever the child started.
    os.setpgid(0, 0)


@contextmanager
def child(args: Sequence[str | os.PathLike[str]], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """Run ``args`` (with ``subprocess.Popen`` options ``popen``) for the ``with`` block.

    On leaving the block, however the test ended, the child's process group is killed, its
    pipes are closed and the child is reaped, so nothing outlives the test and no unclosed
    pipe or running child turns into a ResourceWarning in a later test.
    """
    process = subprocess.Popen(args, preexec_fn=_prepare_child, **popen)
    with process:  # closes the pipes, then waits for the (killed) child
        try:
            yield process
        finally:
            with suppress(ProcessLookupError):  # the child and its group are already gone
                os.killpg(process.pid, signal.SIGKILL)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    process: subprocess.Popen[Any] | None = None,
    timeout: float = PATIENCE,
) -> None:
    """Return once ``condition()`` holds; fail if ``process`` ends first or after ``timeout``."""
    limit = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the child ended (status {process.returncode}) while waiting for {what}"
            )
        if time.monotonic() > limit:
            raise AssertionError(f"still waiting for {what} after {timeout} s")
        time.sleep(0.01)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def udp_port_bound(port: int) -> bool:
    """Whether a socket on this machine is bound to UDP ``port``, as Linux's /proc/net lists.

    Without /proc/net/udp, True: there is then no way to tell short of binding the port,
    which would race the receiver it waits for.
    """
    tables = [Path("/proc/net/udp"), Path("/proc/net/udp6")]
    if not tables[0].exists():
        return True
    local = f":{port:04X}"
    for table in tables:
        with suppress(FileNotFoundError):  # no IPv6
            for row in table.read_text().splitlines()[1:]:
                if row.split()[1].endswith(local):  # local_address is ADDRESS:PORT in hex
                    return True
    return False


def interrupt(process: subprocess.Popen[Any], timeout: float = PATIENCE) -> tuple[Any, Any]:
    """Send the child SIGINT (Ctrl-C) and collect its output once it has ended."""
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=timeout)
