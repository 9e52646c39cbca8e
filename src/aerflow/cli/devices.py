"""``aerflow devices`` (the cameras connected, or a model's configuration template) and
``aerflow udev print|install`` (Linux access rules)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["add_device_commands", "run_devices", "run_udev"]


def add_device_commands(commands: Any) -> None:
    devices = commands.add_parser(
        "devices",
        help="list the USB event cameras connected",
        description="List the supported USB event cameras connected, with their serials.",
    )
    devices.add_argument(
        "--config-template",
        metavar="MODEL",
        help="print MODEL's default configuration as TOML, for `input camera --config FILE` "
        "(models: evk4, evk3_hd, dvxplorer, davis346)",
    )
    udev = commands.add_parser(
        "udev",
        help="Linux udev rules giving the logged-in user access to the cameras",
        description='Print or install the udev rules (TAG+="uaccess") for the cameras.',
    )
    actions = udev.add_subparsers(dest="udev_action", required=True, metavar="ACTION")
    actions.add_parser("print", help="print the rules")
    install = actions.add_parser(
        "install", help="install the rules (as root) and apply them to cameras plugged in"
    )
    install.add_argument(
        "--path", help="where to write them (default: /etc/udev/rules.d/65-aerflow.rules)"
    )


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip() + "\n")


def run_devices(args: argparse.Namespace, out: TextIO) -> None:
    from .. import devices

    if args.config_template is not None:
        from ..devices.config_files import dump

        driver = devices.driver_class(args.config_template)
        out.write(
            dump(
                driver.configuration_type(),
                header=f"{driver.model} ({driver.name}) configuration: the defaults.\n"
                "Remove what you do not change; aerflow input camera --config FILE reads it.",
            )
        )
        return
    listed = devices.list()
    if not listed:
        out.write(
            "no camera found. Is it plugged in (USB 3 for Prophesee cameras)? On Linux, "
            "`sudo aerflow udev install` gives your user access to the cameras.\n"
        )
        return
    rows = [("NAME", "MODEL", "SERIAL", "BUS:ADDRESS", "SPEED", "ERROR")]
    for device in listed:
        rows.append(
            (
                device.name or "?",
                device.model,
                device.serial or "?",
                f"{device.bus:03d}:{device.address:03d}",
                device.speed,
                device.error or "",
            )
        )
    _table(rows, out)


def run_udev(args: argparse.Namespace, out: TextIO) -> None:
    from ..devices import udev

    if args.udev_action == "print":
        udev.print_rules(out)
        return
    path = udev.install_rules(args.path or udev.RULES_PATH)
    out.write(f"installed {path}; unplug and replug the cameras if they are not accessible\n")
