"""What the ROS 1 and ROS 2 bag writers share: options checked against what the message type
and encoding hold, events and triggers gathered into one message per ``message_duration``
window, each message serialised and written by ``rosbags`` to a scratch bag that becomes the
output on closing (a ROS 2 bag folder built under a temporary name and renamed into place)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from .._output import Output
from ..errors import OutputError
from ..events import empty_events, empty_triggers, parse_time
from ._base import FileWriter, TimeOrigin
from ._rosbag_encodings import (
    _ARRAY_LIMIT,
    _EVT3_MAX_SPAN_US,
    _WRITTEN,
    MESSAGE_TYPES,
    WRITE_ENCODINGS,
    _packet_payload,
)
from ._rosbag_library import _full_type, _typestore
from .evt3 import Evt3StreamEncoder
from .ros_detect import is_ros2_folder
from .ros_messages import event_array_bytes, event_packet_bytes


class _FolderOutput(Output):
    """A ROS2 bag folder, built under a temporary name beside it and renamed into place on
    success; an existing bag folder is replaced only then, anything else is refused."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.streaming = False
        self.file = io.BytesIO()  # nothing is written through it: the bag writes files
        target = os.path.realpath(self.path)
        if os.path.lexists(target):
            if not os.path.isdir(target):
                raise OutputError(f"{self.path} exists and is not a folder: name a new folder")
            if os.listdir(target) and not is_ros2_folder(target):
                raise OutputError(f"{self.path} is a folder but not a ROS 2 bag: name a new folder")
        self._target = target
        parent = os.path.dirname(target) or "."
        self._root = tempfile.mkdtemp(
            prefix=f".{os.path.basename(target)}.", suffix=".part", dir=parent
        )
        self.working_path = os.path.join(self._root, os.path.basename(target))

    def commit(self) -> None:
        old = None
        if os.path.lexists(self._target):
            old = os.path.join(self._root, ".replaced")
            os.rename(self._target, old)
        assert self.working_path is not None
        os.rename(self.working_path, self._target)
        shutil.rmtree(self._root, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


class _RosBagWriter(FileWriter, TimeOrigin):
    """Events (and triggers) to one topic of ``event_camera_msgs/EventPacket`` (``evt3``
    by default, or ``mono``, ``trigger``, ``libcaer``, ``libcaer_cmp``) or EventArray
    messages, each covering ``message_duration`` of event time.

    What an encoding cannot hold: ``mono``, ``libcaer``, ``libcaer_cmp`` and the EventArrays
    hold no triggers, ``evt3`` trigger ids 0-15 only (dropped and counted in
    :attr:`unwritten`); ``trigger`` holds no events (a ValueError at the first write that
    has some)."""

    ros2: ClassVar[bool]
    single_loop_us = 1 << 34

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        topic: str = "/events",
        message_type: str = "event_camera_msgs/EventPacket",
        encoding: str = "evt3",
        message_duration: str | int = "1ms",
        frame_id: str = "",
        time_origin: int | None = None,
    ) -> None:
        width, height = check_int(width, "width"), check_int(height, "height")
        if message_type not in MESSAGE_TYPES:
            raise ValueError(
                f"message_type must be one of {', '.join(MESSAGE_TYPES)}, got {message_type!r}"
            )
        self._packets = message_type == MESSAGE_TYPES[0]
        if encoding not in WRITE_ENCODINGS:
            raise ValueError(
                f"encoding must be one of {', '.join(WRITE_ENCODINGS)}, got {encoding!r}"
            )
        if not self._packets and encoding != "evt3":
            raise ValueError(
                f"encoding= is for event_camera_msgs/EventPacket, not {message_type} "
                f"(got {encoding!r})"
            )
        spec = _WRITTEN[encoding] if self._packets else _ARRAY_LIMIT
        held = f"{message_type} ({encoding})" if self._packets else message_type
        if not (0 < width <= spec.width and 0 < height <= spec.height):
            raise ValueError(
                f"{held} holds a sensor of at most {spec.width}x{spec.height}, got {width}x{height}"
            )
        if not topic.startswith("/"):
            raise ValueError(f"a ROS topic name starts with '/', got {topic!r}")
        self._duration = parse_time(message_duration)
        if self._duration <= 0:
            raise ValueError("message_duration must be positive")
        if spec.longest_message_us is not None and self._duration > spec.longest_message_us:
            raise ValueError(
                f"{held} messages hold at most {spec.longest_message_us} µs of event time, "
                f"got message_duration {self._duration} µs"
            )
        if time_origin is not None and time_origin < 0:
            raise ValueError(f"time_origin must not be negative, got {time_origin}")
        self._folder = self.ros2 and self._writes_folder(os.fspath(path))
        self._scratch: str | None
        if self._folder:
            self.path = os.fspath(path)
            self._output = _FolderOutput(path)
            self._file = self._output.file
            self._closed = False
            self.unwritten = {}
            bag_path = self._output.working_path
            self._scratch = None
        else:
            super().__init__(path)
            beside = os.path.dirname(os.path.realpath(self.path)) or "."
            # Beside the output, so that the finished file is renamed, not copied, into place.
            self._scratch = tempfile.mkdtemp(
                prefix=".aerflow-bag.", dir=None if self._output.streaming else beside
            )
            stem = Path(self.path).stem or "bag"
            bag_path = os.path.join(self._scratch, stem if self.ros2 else f"{stem}.bag")
        assert bag_path is not None
        self._bag_path = bag_path
        self.width, self.height = width, height
        self.topic = topic
        self.message_type = message_type
        self.encoding = encoding if self._packets else None
        """The EventPacket encoding written; None for EventArray messages."""
        self._holds_events = spec.holds_events
        self.frame_id = frame_id
        self._time_origin = time_origin
        self._origin = 0
        self._header_written = False
        self._encoder = Evt3StreamEncoder(width)
        self._seq = 0
        self._window: int | None = None  # index of the message being gathered
        self._pending_events: list[npt.NDArray[Any]] = []
        self._pending_triggers: list[npt.NDArray[Any]] = []
        self.stores = spec.stores
        self.most_trigger_id = spec.most_trigger_id
        self._bag: Any = None
        try:
            self._bag = self._open_bag(bag_path)
            store = _typestore(self.ros2)
            self._connection = self._bag.add_connection(
                topic, _full_type(message_type), typestore=store
            )
        except BaseException:
            self._discard()
            raise

    @staticmethod
    def _writes_folder(path: str) -> bool:
        """A bag folder, unless the path names one storage file: ``-``, ``*.mcap``,
        ``*.db3``, or something already there that is not a folder (a FIFO, a device, a
        file), which gets one MCAP file."""
        if path == "-" or os.path.splitext(path)[1].lower() in (".mcap", ".db3"):
            return False
        target = os.path.realpath(path)
        return os.path.isdir(target) or not os.path.lexists(target)

    def _open_bag(self, bag_path: str) -> Any:
        raise NotImplementedError

    def _why_unwritten(self, channel: str) -> str:
        if channel == "triggers" and "triggers" in self.stores:
            return f"{self.encoding} trigger ids are 0-{self.most_trigger_id}"
        if self.encoding is not None:
            return f"the EventPacket {self.encoding} encoding holds no {channel}"
        return f"{self.message_type} holds no {channel}"

    # -- packets into messages ------------------------------------------------------------
    def _write(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        if len(events) == 0 and len(triggers) == 0:
            return
        if len(events) and not self._holds_events:
            raise ValueError(
                f"the EventPacket {self.encoding} encoding holds trigger edges only, not the "
                f"{len(events)} events given: write them with another encoding "
                f"({', '.join(e for e in WRITE_ENCODINGS if _WRITTEN[e].holds_events)})"
            )
        if len(events):
            x_max, y_max = int(events["x"].max()), int(events["y"].max())
            if x_max >= self.width or y_max >= self.height:
                raise ValueError(
                    f"events lie outside the {self.width}x{self.height} sensor "
                    f"(max x {x_max}, max y {y_max})"
                )
        first = min(int(a["t"].min()) for a in (events, triggers) if len(a))
        last = max(int(a["t"].max()) for a in (events, triggers) if len(a))
        origin = self._origin_for(first)
        self._check_times(first, last, origin)
        self._origin = origin
        self._header_written = True
        self._gather(events, triggers)

    def _check_times(self, first: int, last: int, origin: int) -> None:
        """Refuse, before anything is sent, times the messages cannot hold."""
        seconds = 1 << (31 if self.ros2 else 32)
        if last >= seconds * 1_000_000:
            raise ValueError(
                f"t={last} µs is past the last ROS {2 if self.ros2 else 1} time "
                f"({seconds} s), where message stamps end"
            )
        if first < origin:
            raise ValueError(f"t={first} µs is before the bag's time origin {origin} µs")
        if self.encoding == "evt3" and last - origin > _EVT3_MAX_SPAN_US:
            raise ValueError(
                f"EVT 3.0 cannot store t={last} µs: it lies more than 2**46 µs (~2.2 years) "
                f"after the time origin {origin} µs, and every counter loop between would be "
                "written out"
            )

    def _gather(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        """Send every whole message before the window of the latest item."""
        last = max(int(a["t"][-1]) for a in (events, triggers) if len(a))
        window = (last - self._origin) // self._duration
        boundary = self._origin + window * self._duration
        if self._window is not None and window > self._window:
            ev = np.concatenate([*self._pending_events, events])
            tr = np.concatenate([*self._pending_triggers, triggers])
            cut_e = int(np.searchsorted(ev["t"], np.uint64(boundary), "left"))
            cut_t = int(np.searchsorted(tr["t"], np.uint64(boundary), "left"))
            self._send_windows(ev[:cut_e], tr[:cut_t])
            self._pending_events = [ev[cut_e:].copy()]
            self._pending_triggers = [tr[cut_t:].copy()]
        else:
            self._pending_events.append(events.copy())
            self._pending_triggers.append(triggers.copy())
        self._window = window if self._window is None else max(window, self._window)

    def _send_windows(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        """One message per non-empty window of ``message_duration`` among these items."""
        if len(events) == 0 and len(triggers) == 0:
            return
        duration = np.uint64(self._duration)
        origin = np.uint64(self._origin)
        windows = np.unique(
            np.concatenate(
                [(events["t"] - origin) // duration, (triggers["t"] - origin) // duration]
            )
        )
        bounds = origin + (windows + np.uint64(1)) * duration
        event_ends = np.searchsorted(events["t"], bounds, "left")
        trigger_ends = np.searchsorted(triggers["t"], bounds, "left")
        e0 = t0 = 0
        for e1, t1 in zip(event_ends.tolist(), trigger_ends.tolist(), strict=False):
            if e1 > e0 or t1 > t0:
                self._send(events[e0:e1], triggers[t0:t1])
            e0, t0 = e1, t1

    def _send(self, events: npt.NDArray[Any], triggers: npt.NDArray[Any]) -> None:
        firsts = [int(a["t"][0]) for a in (events, triggers) if len(a)]
        first = min(firsts)
        stamp_ns = first * 1000
        if self.encoding == "evt3":
            self._encoder.origin = self._origin  # fixed once the first message is sent
            words = self._encoder.encode(events, triggers)
            time_base = self._origin * 1000
        elif self.encoding is not None:
            for items, what in ((events, "events"), (triggers, "triggers")):
                _check_time_order(items, what)
            # Each message counts from its first item, so every offset is small.
            words = _packet_payload(self.encoding, events, triggers, first)
            time_base = stamp_ns
        if self.encoding is not None:
            raw = event_packet_bytes(
                cdr=self.ros2,
                seq=self._seq,
                stamp_ns=stamp_ns,
                frame_id=self.frame_id,
                width=self.width,
                height=self.height,
                time_base=time_base,
                encoding=self.encoding,
                payload=np.ascontiguousarray(words).view(np.uint8).data,
            )
        else:
            _check_time_order(events, "events")
            raw = event_array_bytes(
                events,
                cdr=self.ros2,
                seq=self._seq,
                stamp_ns=stamp_ns,
                frame_id=self.frame_id,
                width=self.width,
                height=self.height,
            )
        self._bag.write(self._connection, stamp_ns, raw)
        self._seq += 1

    def _finalize(self) -> None:
        if self._pending_events or self._pending_triggers:
            events = np.concatenate(self._pending_events or [empty_events()])
            triggers = np.concatenate(self._pending_triggers or [empty_triggers()])
            self._pending_events, self._pending_triggers = [], []
            self._send_windows(events, triggers)
        self._bag.close()
        self._bag = None
        if self._folder:
            return
        produced = self._produced_file()
        if self._output.streaming:
            with open(produced, "rb") as source:
                shutil.copyfileobj(source, self._output.file, 1 << 20)
        else:
            assert self._output.working_path is not None
            self._output.file.close()
            os.replace(produced, self._output.working_path)
        shutil.rmtree(self._scratch or "", ignore_errors=True)

    def _produced_file(self) -> str:
        return self._bag_path

    def _discard(self) -> None:
        if self._bag is not None:
            with contextlib.suppress(Exception):
                self._bag.close()
            self._bag = None
        if getattr(self, "_scratch", None):
            shutil.rmtree(self._scratch or "", ignore_errors=True)
        super()._discard()


def _check_time_order(items: npt.NDArray[Any], what: str) -> None:
    if len(items) > 1 and bool(np.any(np.diff(items["t"].astype(np.int64)) < 0)):
        raise ValueError(f"{what} must be in time order")
