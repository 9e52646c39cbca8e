"""ChunkedReader checkpoints: a reader taken anywhere between two packets, resumed in a fresh
reader of the same file, gives exactly the events that follow (what ``aerflow.read`` gives
past that point), and the checkpoint is a plain value that pickles."""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.formats import ChunkedReader, FileReader, FileWriter, ReaderCheckpoint

from .helpers import assert_same_events

CHUNK = 4096  # the smallest chunk_size: many packets from a small file
WIDTH, HEIGHT = 320, 240


def random_events(seed: int, count: int = 40_000) -> np.ndarray:
    """Random events, time-ordered, with runs of equal times and four gaps of 2000 s, so
    that times pass 2**32 µs: the decoders carry the wraps of their time counters in their
    state (DAT's 32-bit times, EVT 2.0's and 3.0's time-high words)."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([0, 0, 1, 3, 40], size=count).astype(np.uint64)
    steps[rng.choice(count, 4, replace=False)] = np.uint64(2_000_000_000)
    events = np.empty(count, aerflow.EVENTS_DTYPE)
    events["t"] = np.uint64(1_000) + np.cumsum(steps)
    events["x"] = rng.integers(0, WIDTH, count)
    events["y"] = rng.integers(0, HEIGHT, count)
    events["on"] = rng.integers(0, 2, count).astype(bool)
    return events


def packets_and_checkpoints(
    path: Path,
) -> tuple[list[np.ndarray], list[tuple[int, ReaderCheckpoint]]]:
    """Every packet's events, and (events before, checkpoint) before the first packet and
    after each one."""
    packets: list[np.ndarray] = []
    with aerflow.open(path, chunk_size=CHUNK) as reader:
        assert isinstance(reader, ChunkedReader)
        assert reader.resumable
        taken = [(0, reader.checkpoint())]
        count = 0
        for packet in reader:
            packets.append(packet.events)
            count += len(packet.events)
            taken.append((count, reader.checkpoint()))
    return packets, taken


def events_from(path: Path, checkpoint: ReaderCheckpoint, whole: bool) -> np.ndarray:
    """The events after ``checkpoint``, by a fresh reader: iterated, or in one read()."""
    with aerflow.open(path, chunk_size=CHUNK) as reader:
        assert isinstance(reader, ChunkedReader)
        reader.resume(checkpoint)
        if whole:
            return reader.read().events
        parts = [packet.events for packet in reader]
    return np.concatenate(parts) if parts else np.empty(0, aerflow.EVENTS_DTYPE)


def check_every_checkpoint(path: Path, expected: np.ndarray) -> int:
    """Resume from checkpoints across the file; each gives ``expected[count:]`` exactly."""
    packets, taken = packets_and_checkpoints(path)
    assert_same_events(np.concatenate(packets), expected)
    assert len(packets) >= 4, "too few packets to cut the file"
    assert taken[-1][1].position == path.stat().st_size
    # The start, the end, and a spread of packet boundaries between.
    chosen = sorted({0, 1, 2, len(taken) // 3, len(taken) // 2, len(taken) - 2, len(taken) - 1})
    for step, index in enumerate(chosen):
        count, checkpoint = taken[index]
        again = pickle.loads(pickle.dumps(checkpoint))
        assert again == checkpoint
        assert again is not checkpoint
        rest = events_from(path, again, whole=step % 2 == 1)
        assert_same_events(rest, expected[count:])
    return len(taken)


@pytest.mark.parametrize("format", ["evt2", "evt3", "dat"])
def test_resuming_gives_the_rest_of_a_written_file(tmp_path: Path, format: str) -> None:
    events = random_events(seed=len(format) * 7 + ord(format[-1]))
    path = tmp_path / f"events.{'dat' if format == 'dat' else 'raw'}"
    aerflow.write(path, events, format=format, width=WIDTH, height=HEIGHT)
    assert int(events["t"][-1]) > 1 << 32
    # The reference: the events written, which aerflow.read gives back as a whole.
    assert_same_events(aerflow.read(path), events)
    assert check_every_checkpoint(path, events) > 8


def test_resuming_gives_the_rest_of_a_recording(
    shared_data: Path, prophesee_file: str, manifest: dict[str, Any], digest: Any
) -> None:
    path = shared_data / prophesee_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some samples end inside a record
        whole = aerflow.read(path)
        assert len(whole) == manifest[prophesee_file]["events"]
        assert digest(whole) == manifest[prophesee_file]["sha256"]
        packets, taken = packets_and_checkpoints(path)
        assert_same_events(np.concatenate(packets), whole)
        for count, checkpoint in taken[:: max(len(taken) // 6, 1)] + taken[-1:]:
            again = pickle.loads(pickle.dumps(checkpoint))
            assert_same_events(events_from(path, again, whole=False), whole[count:])


def test_a_checkpoint_is_an_immutable_plain_value(tmp_path: Path) -> None:
    path = tmp_path / "events.raw"
    aerflow.write(
        path, random_events(seed=3, count=5_000), format="evt3", width=WIDTH, height=HEIGHT
    )
    _, taken = packets_and_checkpoints(path)
    checkpoint = taken[len(taken) // 2][1]
    assert checkpoint.format_name == "evt3"
    assert isinstance(checkpoint.position, int)
    assert isinstance(checkpoint.state, tuple)
    assert all(type(value) is int for value in checkpoint.state)
    with pytest.raises(dataclasses.FrozenInstanceError):
        checkpoint.position = 0  # type: ignore[misc]
    # Taken before reading: the first byte of the data, the decoder's starting state.
    with aerflow.open(path) as reader:
        assert isinstance(reader, ChunkedReader)
        assert reader.checkpoint() == taken[0][1]
        assert taken[0][1].position > 0  # past the header
        assert set(taken[0][1].state) == {0}


def test_resume_refuses_what_cannot_work(tmp_path: Path) -> None:
    evt3 = tmp_path / "events.raw"
    aerflow.write(
        evt3, random_events(seed=4, count=5_000), format="evt3", width=WIDTH, height=HEIGHT
    )
    dat = tmp_path / "events.dat"
    aerflow.write(dat, random_events(seed=4, count=5_000), format="dat", width=WIDTH, height=HEIGHT)
    _, taken = packets_and_checkpoints(evt3)
    checkpoint = taken[1][1]
    with aerflow.open(dat) as reader:
        assert isinstance(reader, ChunkedReader)
        with pytest.raises(ValueError, match="checkpoint of a evt3 reader"):
            reader.resume(checkpoint)
    with aerflow.open(evt3, chunk_size=CHUNK) as reader:
        assert isinstance(reader, ChunkedReader)
        beyond = dataclasses.replace(checkpoint, position=evt3.stat().st_size + 2)
        with pytest.raises(ValueError, match="outside the data"):
            reader.resume(beyond)
        with pytest.raises(ValueError, match="state slots"):
            reader.resume(dataclasses.replace(checkpoint, state=checkpoint.state[:-1]))
        for _ in reader:  # not in the middle of an iteration
            with pytest.raises(RuntimeError, match="already being read"):
                reader.resume(checkpoint)
            break
    with pytest.raises(ValueError, match="closed"):
        reader.checkpoint()
    with pytest.raises(ValueError, match="closed"):
        reader.resume(checkpoint)


def test_formats_with_their_own_loop_do_not_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "events.aedat"
    aerflow.write(
        path, random_events(seed=5, count=2_000), format="aedat3", width=WIDTH, height=HEIGHT
    )
    with aerflow.open(path, format="aedat3") as reader:
        assert isinstance(reader, ChunkedReader)
        assert not reader.resumable
        with pytest.raises(ValueError, match="cannot checkpoint"):
            reader.checkpoint()


def test_the_bases_have_a_public_home() -> None:
    from aerflow.formats import _base

    assert aerflow.FileReader is FileReader is _base.FileReader
    assert aerflow.FileWriter is FileWriter is _base.FileWriter
    assert ChunkedReader is _base.ChunkedReader
    assert ReaderCheckpoint is _base.ReaderCheckpoint
    assert {"FileReader", "FileWriter", "ChunkedReader", "ReaderCheckpoint"} <= set(
        dir(aerflow.formats)
    )
    with pytest.raises(AttributeError):
        _ = aerflow.formats.NoSuchName
