"""The udev rules: which devices they cover, how, and their installation."""

from __future__ import annotations

import fnmatch
import io
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import aerflow.devices as devices
from aerflow.devices import udev
from aerflow.errors import DeviceError, DevicePermissionError

RULE = re.compile(
    r'^SUBSYSTEM=="usb", ATTRS\{idVendor\}=="(?P<vendor>[^"]+)", '
    r'ATTRS\{idProduct\}=="(?P<product>[^"]+)", TAG\+="uaccess"$'
)


def rule_lines() -> list[str]:
    return [line for line in udev.rules().splitlines() if line and not line.startswith("#")]


def covered(vendor: int, product: int) -> bool:
    for line in rule_lines():
        match = RULE.match(line)
        assert match, line
        # udev matches ATTRS values with shell-style globs, as fnmatch does.
        if fnmatch.fnmatchcase(f"{vendor:04x}", match["vendor"]) and fnmatch.fnmatchcase(
            f"{product:04x}", match["product"]
        ):
            return True
    return False


def test_the_rules_tag_every_camera_for_uaccess_and_nothing_else() -> None:
    lines = rule_lines()
    assert len(lines) == 5
    assert all(RULE.match(line) for line in lines)
    assert "MODE" not in udev.rules()  # nothing world-writable
    for vendor, product in udev.SUPPORTED_IDS:
        assert covered(vendor, product), f"{vendor:04x}:{product:04x}"
    assert not covered(0x04B4, 0x00F3)
    assert not covered(0x152A, 0x8420)
    assert not covered(0x31F7, 0x0005)


def test_the_rules_cover_every_registered_driver() -> None:
    assert devices.DRIVERS
    for name in devices.DRIVERS:
        for vendor, product in devices.driver_class(name).ids:
            assert covered(vendor, product), f"{name}: {vendor:04x}:{product:04x}"


def test_the_installed_name_sorts_before_seat_late() -> None:
    assert udev.RULES_PATH.parent == Path("/etc/udev/rules.d")
    assert udev.RULES_PATH.name < "73-seat-late.rules"
    assert udev.RULES_PATH.suffix == ".rules"


def test_the_rules_ship_inside_the_package() -> None:
    shipped = Path(devices.__file__).with_name("99-aerflow.rules")
    assert shipped.read_text(encoding="utf-8") == udev.rules()


def test_print_rules() -> None:
    out = io.StringIO()
    udev.print_rules(out)
    assert out.getvalue() == udev.rules()


def test_install_writes_then_reloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    commands: list[Sequence[str]] = []
    target = tmp_path / "65-aerflow.rules"
    target.write_text("old rules", encoding="utf-8")
    written = udev.install_rules(target, check_root=False, runner=commands.append)
    assert written == target
    assert target.read_text(encoding="utf-8") == udev.rules()
    assert target.stat().st_mode & 0o777 == 0o644
    assert list(tmp_path.iterdir()) == [target]  # the temporary file was renamed
    assert [list(c) for c in commands] == [
        ["udevadm", "control", "--reload-rules"],
        ["udevadm", "trigger", "--subsystem-match=usb"],
    ]


def test_install_without_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")

    def refuse(command: Sequence[str]) -> Any:
        raise AssertionError("udevadm must not run")

    udev.install_rules(tmp_path / "r.rules", check_root=False, reload=False, runner=refuse)
    assert (tmp_path / "r.rules").exists()


def test_a_failing_udevadm_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")

    def fail(command: Sequence[str]) -> Any:
        raise subprocess.CalledProcessError(1, list(command))

    with pytest.raises(DeviceError, match="udevadm control --reload-rules` failed"):
        udev.install_rules(tmp_path / "r.rules", check_root=False, runner=fail)
    assert (tmp_path / "r.rules").exists()


def test_install_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 1000, raising=False)
    with pytest.raises(DevicePermissionError, match=r"needs root: run `sudo .* -m aerflow udev"):
        udev.install_rules(tmp_path / "r.rules")
    assert not (tmp_path / "r.rules").exists()


def test_install_into_a_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(DeviceError, match="does not exist"):
        udev.install_rules(tmp_path / "nowhere" / "r.rules", check_root=False)


def test_install_elsewhere_than_linux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(DeviceError, match="Linux"):
        udev.install_rules(tmp_path / "r.rules", check_root=False)
