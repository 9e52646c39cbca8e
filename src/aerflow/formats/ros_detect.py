"""Recognising ROS bags from their first bytes or their folder (no heavy imports: the
registry calls these for every file it detects)."""

from __future__ import annotations

import os

__all__ = ["is_ros2_folder", "sniff_ros1", "sniff_ros2"]

ROS1_MAGIC = b"#ROSBAG V2.0\n"
MCAP_MAGIC = b"\x89MCAP0\r\n"
SQLITE_MAGIC = b"SQLite format 3\x00"


def sniff_ros1(head: bytes) -> bool:
    """A ROS1 bag, version 2.0."""
    return head.startswith(ROS1_MAGIC)


def sniff_ros2(head: bytes) -> bool:
    """An MCAP file of profile ``ros2``, or a rosbag2 sqlite3 database (which has a
    ``topics`` table)."""
    if head.startswith(MCAP_MAGIC):
        return b"ros2" in head[8:64]
    return head.startswith(SQLITE_MAGIC) and b"CREATE TABLE topics" in head


def is_ros2_folder(path: str) -> bool:
    """A ROS2 bag folder: one whose ``metadata.yaml`` describes rosbag2 storage."""
    try:
        with open(os.path.join(path, "metadata.yaml"), "rb") as file:
            return b"rosbag2_bagfile_information" in file.read(4096)
    except OSError:
        return False
