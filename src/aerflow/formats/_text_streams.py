"""Open binary streams of the text reader and writer (:meth:`TextReader.from_stream`,
:meth:`TextWriter.to_stream`): the name a stream goes by in messages, and a wait for a
non-blocking stream to have bytes to read."""

from __future__ import annotations

import io
import select
import time
from typing import Any


def _stream_name(stream: Any) -> str:
    name = getattr(stream, "name", None)
    if isinstance(name, int):
        return f"<fd {name}>"
    return "<stream>" if name is None else str(name)


def _wait_readable(stream: Any) -> None:
    try:
        select.select([stream], [], [], 1.0)
    except (TypeError, ValueError, OSError, io.UnsupportedOperation):
        time.sleep(0.001)
