"""examples/edge_detection.py runs on the CPU and writes a PNG."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "edge_detection.py"


def test_edge_detection_example_writes_a_png(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("edge_detection", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output = tmp_path / "edges.png"
    assert (
        module.main(
            ["--size", "40", "--duration", "40ms", "--snapshots", "2", "--output", str(output)]
        )
        == 0
    )
    data = output.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert (width, height) == (3 * 40 + 4, 2 * 40 + 2)
