#!/usr/bin/env python3
"""Set up a virtual environment in .venv and run the demo, the tests or the benchmarks.

    python3 dev.py demo    # synthetic sensor -> RAW + MP4, denoised AEDAT 4, rate plot, info
    python3 dev.py test    # ruff, mypy and the whole test suite

Needs only python3. Where the system Python has no ensurepip (Debian and Ubuntu keep it in
python3-venv), it is installed with apt-get when this runs as root; otherwise the one command
to run is printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def run(*command: str | Path) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, cwd=ROOT)


VENV_PACKAGE = "python3-venv"  # Debian's and Ubuntu's ensurepip


def has_pip() -> bool:
    return (
        PYTHON.exists()
        and not subprocess.run(
            [str(PYTHON), "-m", "pip", "--version"], capture_output=True
        ).returncode
    )


def create_environment() -> None:
    try:
        venv.create(VENV, with_pip=True, clear=True)
        return
    except subprocess.CalledProcessError:  # no ensurepip in this Python
        shutil.rmtree(VENV, ignore_errors=True)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if root and shutil.which("apt-get"):
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", VENV_PACKAGE)
        venv.create(VENV, with_pip=True, clear=True)
        return
    raise SystemExit(
        f"{sys.executable} cannot make a virtual environment with pip (no ensurepip): "
        f"run `sudo apt-get install {VENV_PACKAGE}` (Debian, Ubuntu), then this command again"
    )


def ensure_environment(extras: str) -> None:
    if not has_pip():
        create_environment()
    run(
        PYTHON,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-e",
        f".[{extras}]",
    )


def demo() -> None:
    ensure_environment("test")
    out = ROOT / "aerflow-demo"
    out.mkdir(exist_ok=True)
    aerflow = BIN / "aerflow"
    run(aerflow, "input", "synthetic", "--duration", "2s", "--seed", "1",
        "output", "file", out / "bar.raw", "output", "video", out / "bar.mp4")  # fmt: skip
    run(aerflow, "input", "file", out / "bar.raw", "filter", "denoise", "output", "file",
        out / "bar.aedat4")  # fmt: skip
    run(aerflow, "plot", "rate", out / "bar.raw", "-o", out / "rate.png")
    run(aerflow, "info", out / "bar.aedat4")


TORCH = "torch==2.13.0"  # the CPU build; a bare "torch" pulls a multi-GB CUDA build


def test() -> None:
    ensure_environment("dev,interop")
    has_torch = subprocess.run([str(PYTHON), "-c", "import torch"], capture_output=True)
    if has_torch.returncode:
        run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TORCH)
    run(PYTHON, "-m", "ruff", "check", "src", "tests", "benchmarks", "dev.py")
    run(PYTHON, "-m", "mypy")
    run(PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q")


def main() -> int:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print(f"usage: python3 dev.py {{{','.join(commands)}}}", file=sys.stderr)
        return 2
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as error:
        return error.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
