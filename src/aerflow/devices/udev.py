"""Linux udev rules giving the logged-in user access to the supported cameras.

The rules (``99-aerflow.rules``, shipped inside the package) tag each camera with
``TAG+="uaccess"``: systemd-logind then grants the user of the active local session access
to the device, without making it world-writable. ``73-seat-late.rules`` acts on that tag, so
the file is installed under a name that sorts before it: ``/etc/udev/rules.d/65-aerflow.rules``.

Users without a local session (ssh only, containers) need another rule, for instance
``GROUP="plugdev", MODE="0660"`` on the same lines with that user in the group.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .._output import Output
from ..errors import DeviceError, DevicePermissionError

__all__ = ["RULES_PATH", "SUPPORTED_IDS", "install_rules", "print_rules", "rules"]

log = logging.getLogger(__name__)

RULES_PATH = Path("/etc/udev/rules.d/65-aerflow.rules")
"""Where :func:`install_rules` writes the rules by default (before 73-seat-late.rules)."""

SUPPORTED_IDS: tuple[tuple[int, int], ...] = (
    (0x152A, 0x8419),  # iniVation DVXplorer
    (0x152A, 0x841A),  # iniVation DAVIS346
    (0x04B4, 0x00F4),  # Prophesee EVK4 / EVK3 HD
    (0x04B4, 0x00F5),
    (0x31F7, 0x0002),  # CenturyArks SilkyEvCam VGA
    (0x31F7, 0x0003),  # CenturyArks SilkyEvCam HD
    (0x31F7, 0x0004),  # CenturyArks SilkyEvCam HD Lite
    (0x03FD, 0x5832),  # CenturyArks SilkyEvCam VGA (other bridge)
    (0x1409, 0x8E00),  # IDS uEye XCP-E / XLS-E
)
"""(vendor id, product id) of every camera the rules cover."""

_RULES_FILE = "99-aerflow.rules"

Runner = Callable[[Sequence[str]], Any]


def rules() -> str:
    """The rules file's text."""
    return resources.files("aerflow.devices").joinpath(_RULES_FILE).read_text(encoding="utf-8")


def print_rules(file: Any = None) -> None:
    """Write the rules to ``file`` (default: standard output), e.g. to review them."""
    (file or sys.stdout).write(rules())


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def _run(command: Sequence[str]) -> Any:
    return subprocess.run(list(command), check=True, capture_output=True, text=True)


def install_rules(
    path: str | os.PathLike[str] = RULES_PATH,
    *,
    reload: bool = True,
    check_root: bool = True,
    runner: Runner | None = None,
) -> Path:
    """Install the rules at ``path`` and make udev apply them to cameras already plugged in.

    The file is written under a temporary name and renamed into place (never half
    written), then ``udevadm control --reload-rules`` and ``udevadm trigger
    --subsystem-match=usb`` run (unless ``reload`` is False; ``runner`` replaces
    :func:`subprocess.run` for them). Writing to ``/etc`` needs root: without it, raises
    DevicePermissionError with the command to run.
    Returns the path written.
    """
    target = Path(path)
    if not sys.platform.startswith("linux"):
        raise DeviceError("udev rules are for Linux; other systems need no rules for USB access")
    if check_root and not _is_root():
        raise DevicePermissionError(
            f"installing udev rules in {target.parent} needs root: run "
            f"`sudo {sys.executable} -m aerflow udev install`"
        )
    if not target.parent.is_dir():
        raise DeviceError(f"{target.parent} does not exist: is udev installed?")
    try:
        with Output(target) as output:
            output.file.write(rules().encode("utf-8"))
    except PermissionError as error:
        raise DevicePermissionError(
            f"cannot write {target} ({error.strerror}): run "
            f"`sudo {sys.executable} -m aerflow udev install`"
        ) from None
    log.info("wrote %s", target)
    if reload:
        run = runner or _run
        for command in (
            ["udevadm", "control", "--reload-rules"],
            ["udevadm", "trigger", "--subsystem-match=usb"],
        ):
            try:
                run(command)
            except (OSError, subprocess.CalledProcessError) as error:
                raise DeviceError(
                    f"wrote {target}, but `{' '.join(command)}` failed ({error}): run it "
                    "yourself, or unplug and replug the camera"
                ) from None
    return target
