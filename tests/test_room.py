"""OutputRoom: decoder outputs sized by the density of the chunk before."""

from __future__ import annotations

from aerflow._room import MARGIN, OutputRoom


def test_room_follows_the_last_chunk_with_a_margin() -> None:
    room = OutputRoom(density=0.5, floor=0.1)
    assert room.events(1000) == int(1000 * 0.5 * MARGIN)
    room.observe(4000, 1200)
    assert room.events(1000) == int(1000 * 0.3 * MARGIN)


def test_a_quiet_chunk_lowers_the_room_only_to_the_floor() -> None:
    room = OutputRoom(density=0.5, floor=0.1)
    room.observe(4000, 0)
    assert room.events(1000) == int(1000 * 0.1 * MARGIN)
    room.observe(0, 0)  # nothing consumed: nothing learned
    assert room.events(1000) == int(1000 * 0.1 * MARGIN)
