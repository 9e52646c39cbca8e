"""The ``rosbags`` library, loaded on first use: its modules, the message type names it
spells (``package/msg/Name`` in ROS 2 style), a typestore that knows the event messages, and
its bag readers opened safely."""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any

from .._optional import require
from .ros_messages import message_definitions


def _rosbags(module: str) -> ModuleType:
    return require(f"rosbags.{module}", extra="ros", purpose="ROS bags (read without ROS)")


def _short_type(msgtype: str) -> str:
    return msgtype.replace("/msg/", "/")


def _full_type(name: str) -> str:
    package, _, message = name.partition("/")
    return name if "/msg/" in name else f"{package}/msg/{message}"


def _opened(reader: Any) -> Any:
    """``reader`` opened, or closed again when opening fails half-way."""
    try:
        reader.open()
    except BaseException:
        with contextlib.suppress(Exception):
            reader.close()
        raise
    return reader


def _typestore(ros2: bool) -> Any:
    typesys = _rosbags("typesys")
    store = typesys.get_typestore(typesys.Stores.LATEST if ros2 else typesys.Stores.ROS1_NOETIC)
    types: dict[str, Any] = {}
    for name, text in message_definitions(ros2).items():
        types.update(typesys.get_types_from_msg(text, name))
    store.register(types)
    return store
