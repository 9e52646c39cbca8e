"""The README's command-line examples, run as written (stdout and stderr are pipes).

Commands run in order in one folder, so later ones read what earlier ones wrote; a line
ending in ``&`` runs in the background until the commands after it are done.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

import aerflow
from aerflow.synthetic import rotating_bar

from .processes import PATIENCE, child, free_udp_port, udp_port_bound, wait_until

README = Path(__file__).resolve().parents[1] / "README.md"
README_UDP = "127.0.0.1:3333"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


CLI_SECTIONS = (
    "Command line",
    "Pictures: videos, frames, plots and a live viewer",
    "USB cameras",
)
PYTHON_SECTIONS = (
    "Python",
    "Events to tensors (PyTorch on any device, or NumPy)",
    "USB cameras",
)


def python_blocks() -> list[str]:
    return [block for title in PYTHON_SECTIONS for block in code_blocks(section(title), "python")]


def cli_lines() -> list[str]:
    lines = []
    for block in (b for title in CLI_SECTIONS for b in code_blocks(section(title), "sh")):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("aerflow "):
                lines.append(line)
    return lines


def command(line: str) -> list[str]:
    words = shlex.split(line.rstrip("&").strip())
    return [sys.executable, "-m", "aerflow", *words[1:]]


def test_readme_has_command_examples() -> None:
    assert len(cli_lines()) >= 8


def test_every_command_line_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # the viewer draws without a screen
    # A free port for the README's 3333, which another test run on this machine may hold.
    port = free_udp_port()
    with contextlib.ExitStack() as stack:
        background: list[subprocess.Popen[bytes]] = []
        for line in cli_lines():
            line = line.replace(README_UDP, f"127.0.0.1:{port}")
            if line.endswith("&"):
                process = child(command(line), cwd=tmp_path, stdout=PIPE, stderr=PIPE)
                background.append(stack.enter_context(process))
                if " input udp " in line:  # a receiver: it listens before anything is sent
                    wait_until(lambda: udp_port_bound(port), f"a UDP receiver at port {port}")
                continue
            result = subprocess.run(command(line), cwd=tmp_path, capture_output=True, timeout=300)
            assert result.returncode == 0, (line, result.stderr.decode())
        for process in background:
            _, stderr = process.communicate(timeout=PATIENCE)
            assert process.returncode == 0, stderr.decode()
    # What the examples promise: the UDP copy equals the recording it was sent from.
    sent = aerflow.read(tmp_path / "recording.raw")
    received = aerflow.read(tmp_path / "received.aedat4")
    assert len(sent) > 100_000
    assert (received == sent).all()
    assert (aerflow.read(tmp_path / "recording.aedat4") == sent).all()
    assert (tmp_path / "recording.mp4").stat().st_size > 10_000
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 60  # 2 s at 30 fps
    assert (tmp_path / "rate.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_examples_run(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    aerflow.write(tmp_path / "recording.raw", rotating_bar(), width=640, height=480)
    block = python_blocks()[index]
    exec(compile(block, f"README python block {index}", "exec"), {})
