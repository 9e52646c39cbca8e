"""ROS1 ``.bag`` and ROS2 bags (a folder with ``metadata.yaml``, or one ``.mcap`` / ``.db3``
file) of event messages, read and written without ROS through the pure-Python ``rosbags``.

Three message families: ``event_camera_msgs/EventPacket`` (``event_array_msgs/EventArray``
before 1.1.0) with the encodings ``evt3``, ``mono``, ``trigger``, ``libcaer`` and
``libcaer_cmp``, and ``dvs_msgs/EventArray`` / ``prophesee_event_msgs/EventArray``. The
container (chunks, sqlite, MCAP) is read by ``rosbags``; message fields are parsed by aerflow
and the events of many messages are decoded in one numba call (see docs/formats/ros.md).

One topic is read: ``topic=``, or the bag's only event topic. Its ``evt3`` payloads form one
EVT 3.0 stream decoded by :class:`~aerflow.formats.evt3.Evt3StreamDecoder`, state carried
across messages. Gaps in EventPacket ``seq`` are counted in :attr:`lost_messages`.

This module holds the public readers and writers, each opening its container (a ROS 1
``.bag``; a ROS 2 folder, ``.mcap`` or ``.db3``). What the readers share is in
``_rosbag_reader``, what the writers share in ``_rosbag_writer``, the encodings in
``_rosbag_encodings``, the ``rosbags`` library's side in ``_rosbag_library``, the message
fields in ``ros_messages`` and the numba kernels in ``ros_kernels``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import (
    FormatError,
    LostMessagesWarning,
    MissingDependencyError,
    NotThisFormatError,
)
from ._rosbag_encodings import ENCODINGS
from ._rosbag_encodings import MESSAGE_TYPES as MESSAGE_TYPES  # re-exported
from ._rosbag_encodings import WRITE_ENCODINGS as WRITE_ENCODINGS
from ._rosbag_library import _opened, _rosbags
from ._rosbag_reader import EventTopic, _RosBagReader
from ._rosbag_writer import _RosBagWriter
from .ros_detect import ROS1_MAGIC, is_ros2_folder, sniff_ros1, sniff_ros2
from .ros_messages import EVENT_ARRAY_TYPES, EVENT_PACKET_TYPES

__all__ = [
    "ENCODINGS",
    "EventTopic",
    "LostMessagesWarning",
    "MissingRosbagsError",
    "Ros1BagReader",
    "Ros1BagWriter",
    "Ros2BagReader",
    "Ros2BagWriter",
]

log = logging.getLogger(__name__)


MissingRosbagsError = MissingDependencyError
"""What a missing ``rosbags`` raises (the name this module has always exported)."""


class Ros1BagReader(_RosBagReader):
    """Reads event topics of ROS1 bags (v2.0, any chunk compression)."""

    format_name = "rosbag"
    ros2 = False

    def _open_bag(self) -> Any:
        if not os.path.isfile(self.path):
            if os.path.isdir(self.path):
                raise IsADirectoryError(f"{self.path} is a folder, not a ROS 1 .bag file")
            raise FileNotFoundError(f"{self.path}: no such file")
        with open(self.path, "rb") as file:
            if not sniff_ros1(file.read(len(ROS1_MAGIC))):
                raise NotThisFormatError("not a ROS 1 bag (#ROSBAG V2.0)", path=self.path)
        reader = _rosbags("rosbag1").Reader(Path(self.path))
        return _opened(reader)


class Ros2BagReader(_RosBagReader):
    """Reads event topics of ROS2 bags: a bag folder, or its ``.mcap`` or ``.db3`` file."""

    format_name = "rosbag2"
    ros2 = True

    def _open_bag(self) -> Any:
        if os.path.isdir(self.path) and not is_ros2_folder(self.path):
            raise FormatError(
                "a folder without a rosbag2 metadata.yaml: name the bag folder or its "
                ".mcap / .db3 file",
                path=self.path,
            )
        if os.path.isfile(self.path):
            with open(self.path, "rb") as file:
                head = file.read(1 << 16)
            if not sniff_ros2(head):
                raise NotThisFormatError(
                    "not a ROS 2 bag file (MCAP with the ros2 profile, or rosbag2 sqlite3)",
                    path=self.path,
                )
        rosbag2 = _rosbags("rosbag2")
        path = Path(self.path)
        if path.is_file() and path.suffix not in (".mcap", ".db3"):
            # rosbags picks the storage by suffix: give it a name with the right one.
            raise FormatError(
                "a ROS 2 bag file must be named *.mcap or *.db3 (its storage)", path=self.path
            )
        reader = _opened(rosbag2.Reader(path))
        for connection in reader.connections:
            fmt = getattr(connection.ext, "serialization_format", "cdr")
            if fmt != "cdr" and connection.msgtype in EVENT_PACKET_TYPES + EVENT_ARRAY_TYPES:
                raise FormatError(
                    f"topic {connection.topic} is serialised as {fmt!r}, not CDR",
                    path=self.path,
                )
        return reader


# -- writing ------------------------------------------------------------------------------


class Ros1BagWriter(_RosBagWriter):
    """Writes events to a ROS1 ``.bag`` (uncompressed chunks)."""

    format_name = "rosbag"
    ros2 = False

    def _open_bag(self, bag_path: str) -> Any:
        writer = _rosbags("rosbag1").Writer(Path(bag_path))
        writer.open()
        return writer


class Ros2BagWriter(_RosBagWriter):
    """Writes events to a ROS2 bag: a folder (MCAP storage), or one ``.mcap`` or ``.db3``
    file when the path ends so."""

    format_name = "rosbag2"
    ros2 = True

    def _open_bag(self, bag_path: str) -> Any:
        rosbag2 = _rosbags("rosbag2")
        sqlite = os.path.splitext(self.path)[1].lower() == ".db3"
        plugin = rosbag2.StoragePlugin.SQLITE3 if sqlite else rosbag2.StoragePlugin.MCAP
        writer = rosbag2.Writer(Path(bag_path), version=9, storage_plugin=plugin)
        writer.open()
        return writer

    def _produced_file(self) -> str:
        name = os.path.basename(self._bag_path)
        suffix = ".db3" if os.path.splitext(self.path)[1].lower() == ".db3" else ".mcap"
        return os.path.join(self._bag_path, name + suffix)
