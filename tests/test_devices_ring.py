"""The ring of USB buffers: order, copies, drops and gaps, terminal statuses, waiting."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from aerflow.devices.ring import (
    DEFAULT_BUFFER_LENGTH,
    DEFAULT_IN_FLIGHT,
    DEFAULT_RING_LENGTH,
    Ring,
    RingEnded,
)
from aerflow.devices.usb import TransferStatus

OK = TransferStatus.COMPLETED


def chunk(value: int, length: int = 100) -> memoryview:
    return memoryview(bytes([value % 256]) * length)


def test_defaults_are_64_mib() -> None:
    assert DEFAULT_BUFFER_LENGTH == 128 * 1024
    assert DEFAULT_IN_FLIGHT == 32
    assert DEFAULT_BUFFER_LENGTH * DEFAULT_RING_LENGTH == 64 * 1024 * 1024


def test_buffers_come_out_in_order_as_copies() -> None:
    ring = Ring(256, 8)
    source = bytearray(b"abc" * 20)
    ring.push(memoryview(source), OK)
    source[:3] = b"XYZ"  # the transport reuses its buffer: the ring kept a copy
    ring.push(memoryview(b"second"), TransferStatus.TIMED_OUT)
    assert ring.backlog == 2
    first = ring.next(0)
    assert first is not None
    assert first.data.tobytes() == b"abc" * 20
    assert not first.first_after_gap
    second = ring.next(0)
    assert second is not None
    assert second.data.tobytes() == b"second"
    assert ring.next(0) is None
    assert ring.backlog == 0


def test_empty_transfers_are_skipped_and_long_ones_split() -> None:
    ring = Ring(512, 8)
    ring.push(memoryview(b""), OK)
    data = bytes(range(256)) * 5  # 1280 bytes: three slots
    ring.push(memoryview(data), OK)
    pieces = []
    while (buffer := ring.next(0)) is not None:
        pieces.append(buffer.data.tobytes())
    assert [len(p) for p in pieces] == [512, 512, 256]
    assert b"".join(pieces) == data


def test_views_of_other_formats_are_taken_as_bytes() -> None:
    ring = Ring(512, 4)
    words = np.arange(10, dtype="<u2")
    ring.push(memoryview(words), OK)
    buffer = ring.next(0)
    assert buffer is not None
    assert buffer.data.tobytes() == words.tobytes()


def test_a_full_ring_discards_counts_and_flags_the_gap() -> None:
    ring = Ring(128, 4)
    for i in range(4):
        ring.push(chunk(i), OK)
    assert not ring.clutch_engaged
    for i in range(4, 7):  # no room: discarded
        ring.push(chunk(i, 50), OK)
    assert ring.clutch_engaged
    assert ring.dropped_buffers == 3
    assert ring.dropped_bytes == 150
    assert ring.backlog == 4
    memory = ring.nbytes
    got = []
    for _ in range(2):
        buffer = ring.next(0)
        assert buffer is not None
        got.append(buffer.data[0])
    ring.push(chunk(7), OK)  # room again (one slot held by the reader, one free)
    assert not ring.clutch_engaged
    values = []
    flags = []
    while (buffer := ring.next(0)) is not None:
        values.append(int(buffer.data[0]))
        flags.append(buffer.first_after_gap)
    assert got == [0, 1]
    assert values == [2, 3, 7]
    assert flags == [False, False, True]
    assert ring.nbytes == memory == 4 * 128


def test_the_buffer_the_reader_holds_is_never_overwritten() -> None:
    ring = Ring(64, 2)
    ring.push(chunk(1, 64), OK)
    held = ring.next(0)
    assert held is not None
    ring.push(chunk(2, 64), OK)
    ring.push(chunk(3, 64), OK)  # the only other slot is taken: dropped
    assert held.data.tobytes() == bytes([1]) * 64
    assert ring.dropped_buffers == 1
    ring.release()
    ring.push(chunk(4, 64), OK)
    assert ring.dropped_buffers == 1


def test_waiting_buffers_come_as_one_view_of_the_ring() -> None:
    ring = Ring(64, 8)
    for i in range(3):
        ring.push(chunk(i, 64), OK)
    ring.push(chunk(3, 10), OK)  # a short slot ends a run: the next one does not follow it
    ring.push(chunk(4, 64), OK)
    run = ring.next(0, most=8)
    assert run is not None
    assert run.buffers == 4
    assert run.data.tobytes() == bytes([0] * 64 + [1] * 64 + [2] * 64 + [3] * 10)
    assert np.shares_memory(run.data, ring._data)  # nothing copied
    assert ring.backlog == 1
    last = ring.next(0, most=8)
    assert last is not None
    assert (last.buffers, last.data.tobytes()) == (1, bytes([4]) * 64)


def taken(ring: Ring, most: int) -> tuple[list[int], int, bool]:
    """The first byte of each slot in the next run, its buffer count and gap flag."""
    run = ring.next(0, most=most)
    assert run is not None
    return list(run.data[:: ring.buffer_length]), run.buffers, run.first_after_gap


def test_a_run_stops_at_most_at_the_ring_end() -> None:
    ring = Ring(32, 4)
    for i in range(3):
        ring.push(chunk(i, 32), OK)
    assert taken(ring, 1) == ([0], 1, False)
    assert taken(ring, 1) == ([1], 1, False)
    ring.push(chunk(3, 32), OK)
    ring.push(chunk(4, 32), OK)  # in the ring's first slot
    assert taken(ring, 8) == ([2, 3], 2, False)
    assert taken(ring, 8) == ([4], 1, False)


def test_a_run_stops_before_a_gap() -> None:
    ring = Ring(32, 4)
    ring.push(chunk(0, 32), OK)
    ring.push(chunk(1, 32), OK)
    assert taken(ring, 2) == ([0, 1], 2, False)
    ring.push(chunk(2, 32), OK)
    assert taken(ring, 1) == ([2], 1, False)
    for i in (3, 4, 5):  # slots 3, 0 and 1
        ring.push(chunk(i, 32), OK)
    ring.push(chunk(6, 32), OK)  # slot 2 is held: dropped
    assert taken(ring, 1) == ([3], 1, False)
    ring.push(chunk(7, 32), OK)  # slot 2, flagged: data was lost just before it
    assert taken(ring, 8) == ([4, 5], 2, False)
    assert taken(ring, 8) == ([7], 1, True)


def test_a_held_run_keeps_all_its_slots_from_the_writer() -> None:
    ring = Ring(16, 4)
    for i in range(4):
        ring.push(chunk(i, 16), OK)
    held = ring.next(0, most=3)
    assert held is not None
    ring.push(chunk(9, 16), OK)  # one slot waits and three are held: no room
    assert ring.dropped_buffers == 1
    assert held.data.tobytes() == bytes([0] * 16 + [1] * 16 + [2] * 16)
    ring.release()
    for i in range(3):
        ring.push(chunk(10 + i, 16), OK)
    assert ring.dropped_buffers == 1
    assert ring.backlog == 4


def test_a_terminal_status_comes_after_the_data_before_it() -> None:
    ring = Ring(128, 8)
    ring.push(chunk(1), OK)
    ring.push(chunk(2), TransferStatus.NO_DEVICE)  # the last transfer still carried data
    ring.push(chunk(3), OK)  # nothing after the end is kept
    assert ring.ended is TransferStatus.NO_DEVICE
    for expected in (1, 2):
        buffer = ring.next(None)
        assert buffer is not None
        assert buffer.data[0] == expected
    for _ in range(2):  # and again: the end stays
        with pytest.raises(RingEnded) as ended:
            ring.next(None)
        assert ended.value.status is TransferStatus.NO_DEVICE


def test_next_times_out_with_none() -> None:
    ring = Ring(128, 4)
    assert ring.next(0) is None
    assert ring.next(0.01) is None


def test_next_waits_for_a_push_from_another_thread() -> None:
    ring = Ring(128, 4)
    waiting = threading.Event()
    got: list[bytes] = []

    def reader() -> None:
        waiting.set()
        buffer = ring.next(None)
        assert buffer is not None
        got.append(buffer.data.tobytes())

    thread = threading.Thread(target=reader)
    thread.start()
    waiting.wait(5)
    ring.push(memoryview(b"hello"), OK)
    thread.join(5)
    assert not thread.is_alive()
    assert got == [b"hello"]


def test_close_wakes_a_waiting_reader() -> None:
    ring = Ring(128, 4)
    ring.push(chunk(1), OK)
    outcome: list[object] = []

    def reader() -> None:
        ring.next(None)
        try:
            ring.next(None)
        except RingEnded as end:
            outcome.append(end.status)

    thread = threading.Thread(target=reader)
    thread.start()
    ring.close()
    thread.join(5)
    assert outcome == [TransferStatus.CANCELLED]
    ring.push(chunk(2), OK)  # ignored after close
    assert ring.backlog == 0


def test_a_lossless_ring_makes_the_writer_wait() -> None:
    ring = Ring(64, 2, lossless=True)
    pushed = []

    def writer() -> None:
        for i in range(6):
            ring.push(chunk(i, 64), OK)
            pushed.append(i)
        ring.push(memoryview(b""), TransferStatus.END_OF_RECORDING)

    thread = threading.Thread(target=writer)
    thread.start()
    values: list[int] = []

    def read() -> None:
        while True:
            buffer = ring.next(5)
            assert buffer is not None
            assert len(pushed) <= len(values) + 2  # never more than the ring ahead
            values.append(int(buffer.data[0]))

    with pytest.raises(RingEnded) as end:
        read()
    assert end.value.status is TransferStatus.END_OF_RECORDING
    thread.join(5)
    assert values == list(range(6))
    assert ring.dropped_buffers == 0


def test_close_releases_a_waiting_lossless_writer() -> None:
    ring = Ring(64, 2, lossless=True)
    ring.push(chunk(1, 64), OK)
    ring.push(chunk(2, 64), OK)
    thread = threading.Thread(target=ring.push, args=(chunk(3, 64), OK))
    thread.start()
    ring.close()
    thread.join(5)
    assert not thread.is_alive()


@pytest.mark.parametrize(("buffer_length", "ring_length"), [(0, 4), (128, 1)])
def test_invalid_sizes(buffer_length: int, ring_length: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Ring(buffer_length, ring_length)
