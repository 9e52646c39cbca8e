"""A spiking edge detector: events -> frames -> oriented convolutions -> LIF neurons.

Frames of 1 ms (``aerflow.tensors.frames``) from any source feed two convolution kernels, one
tuned to horizontal edges and one to vertical edges, whose outputs drive two maps of leaky
integrate-and-fire neurons. The result is a PNG: at a few moments, the input events beside
the spikes of the horizontal (red) and vertical (cyan) edge neurons.

The LIF neurons are Norse's ``LIFCell`` when Norse is installed, else the same dynamics
written in plain torch (``lif_step`` below; Norse's PyPI release pulls torchvision and a
different torch, so it is optional here: ``pip install --no-deps norse nir nirtorch h5py``
installs it beside an existing torch).

    python examples/edge_detection.py                        # the synthetic spinning bar
    python examples/edge_detection.py --input recording.raw  # any file aerflow reads
    python examples/edge_detection.py --device cuda --output edges.png
"""

from __future__ import annotations

import argparse
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

import aerflow
from aerflow.tensors import frames

DT = 1e-3
"""Seconds per step: one step per 1 ms frame."""
TAU_SYN_INV = 200.0
TAU_MEM_INV = 100.0
V_TH = 1.0


def edge_kernels(size: int = 7) -> torch.Tensor:
    """Two (1, size, size) kernels: a bright horizontal line between dark flanks, and the
    same turned 90°. Each sums to zero, so a uniform patch of events excites neither."""
    line = torch.full((size, size), -0.5 / (size - 1))
    line[size // 2, :] = 1.0 / size
    line -= line.mean()
    return torch.stack([line, line.T]).unsqueeze(1)


def lif_step(
    current: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One Euler step of a current-based LIF neuron, as Norse's LIFCell takes it: the input
    jumps into the synaptic current, the membrane leaks towards 0 while integrating that
    current, the current decays; a neuron over threshold spikes and resets to 0."""
    if state is None:
        state = (torch.zeros_like(current), torch.zeros_like(current))
    voltage, synaptic = state
    synaptic = synaptic + current
    voltage = voltage + DT * TAU_MEM_INV * (synaptic - voltage)
    synaptic = synaptic - DT * TAU_SYN_INV * synaptic
    spikes = (voltage > V_TH).to(current.dtype)
    return spikes, (voltage * (1 - spikes), synaptic)


def make_neurons() -> tuple[Any, str]:
    """Norse's LIFCell if installed, else :func:`lif_step`."""
    try:
        from norse.torch import (  # type: ignore[import-not-found,unused-ignore]
            LIFCell,
            LIFParameters,
        )
    except ImportError:
        return lif_step, "plain-torch LIF (Norse not installed)"
    parameters = LIFParameters(
        tau_syn_inv=torch.tensor(TAU_SYN_INV),
        tau_mem_inv=torch.tensor(TAU_MEM_INV),
        v_th=torch.tensor(V_TH),
    )
    return LIFCell(parameters, dt=DT), "norse.torch.LIFCell"


def open_source(path: str | None, size: int, duration: str) -> Any:
    """A recording, or the synthetic sensor's spinning bar (``size`` pixels square)."""
    if path is not None:
        return aerflow.open(path)
    from aerflow import synthetic

    sensor = getattr(synthetic, "SyntheticSensor", None)
    if sensor is not None:
        return sensor(size, size, duration=duration, rate=150_000.0)
    return synthetic.rotating_bar(
        size, size, duration_us=aerflow.parse_time(duration)
    )  # an events array


def write_png(path: Path, rgb: np.ndarray) -> None:
    """A minimal 8-bit RGB PNG writer (zlib only)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def panel(values: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    scaled = values / values.max() if values.max() > 0 else values
    image: np.ndarray = (scaled[..., None] * np.array(colour)).astype(np.uint8)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=None, help="a recording (default: synthetic bar)")
    parser.add_argument("--size", type=int, default=128, help="synthetic sensor size")
    parser.add_argument("--duration", default="250ms", help="synthetic recording length")
    parser.add_argument("--sensor-size", type=int, nargs=2, default=None, metavar=("W", "H"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gain", type=float, default=8.0, help="input current per unit")
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--memory", default="4ms", help="span shown in each snapshot")
    parser.add_argument("--output", type=Path, default=Path("edges.png"))
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    source = open_source(args.input, args.size, args.duration)
    neurons, kind = make_neurons()
    kernels = edge_kernels().to(device)
    iterator = frames(
        source,
        window="1ms",
        device=device,
        merge_polarity=True,
        sensor_size=None if args.sensor_size is None else tuple(args.sensor_size),
    )
    height, width = iterator.shape[-2:]
    # Leaky traces of the input and of the spikes, for pictures of the last few ms.
    decay = float(np.exp(-1_000 / aerflow.parse_time(args.memory)))
    seen = torch.zeros(1, height, width, device=device)
    fired = torch.zeros(2, height, width, device=device)
    state = None
    steps: list[tuple[np.ndarray, np.ndarray]] = []
    spikes_total = 0.0
    with torch.no_grad():
        for frame in iterator:
            current = torch.nn.functional.conv2d(frame[None], kernels, padding="same")[0]
            spikes, state = neurons(args.gain * current.clamp(min=0), state)
            seen.mul_(decay).add_(frame)
            fired.mul_(decay).add_(spikes)
            spikes_total += float(spikes.sum())
            steps.append((seen[0].cpu().numpy().copy(), fired.cpu().numpy().copy()))
    if not steps:
        parser.error("the source holds no events")
    picks = np.linspace(len(steps) // args.snapshots, len(steps) - 1, args.snapshots).astype(int)
    rows = []
    for index in picks:
        events, edges = steps[index]
        gap = np.full((height, 2, 3), 255, np.uint8)
        rows.append(
            np.concatenate(
                [
                    panel(events, (255, 255, 255)),
                    gap,
                    panel(edges[0], (255, 64, 64)),
                    gap,
                    panel(edges[1], (64, 255, 255)),
                ],
                axis=1,
            )
        )
        rows.append(np.full((2, rows[-1].shape[1], 3), 255, np.uint8))
    write_png(args.output, np.concatenate(rows[:-1], axis=0))
    print(
        f"{len(steps)} frames of {width}x{height} on {device}, neurons: {kind}; "
        f"{int(spikes_total)} spikes; dropped {iterator.dropped} events; wrote {args.output} "
        "(rows: moments; columns: events, horizontal edges, vertical edges)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
