"""AEStream-style inputs: change ``from aestream import FileInput`` (or ``UDPInput``,
``USBInput``) to ``from aerflow.compat import FileInput`` and keep the
``with ... as stream: stream.read()`` loop. Each input is an aerflow stream (a file reader,
the UDP receiver, a camera) read on a background thread into a
:class:`aerflow.tensors.Accumulator`.

Differences from aestream, on purpose:
- ``read()`` returns ``(P, H, W)`` (P=2: OFF, ON), indexed ``[p, y, x]``, not a ``(W, H)``
  frame indexed ``[x, y]`` without polarity; ``merge_polarity=True`` gives ``(1, H, W)``.
- ``shape`` is (width, height) as in aestream; events outside it are dropped and counted
  (``stream.dropped``), never written out of bounds.
- Files play back in real time by their event time unless ``ignore_time=True``.
- The frame is a fresh tensor each call, on ``device``.
- ``USBInput`` drives the camera through aerflow's own drivers (Prophesee EVK4 family and
  EVK3 HD, iniVation DVXplorer and DAVIS346), the first one found unless ``serial`` names one.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from .api import open as open_file
from .stream import Stream
from .tensors import Accumulator

__all__ = ["FileInput", "UDPInput", "USBInput"]


class _Input:
    """A stream accumulated on a background thread; :meth:`read` takes what arrived."""

    def __init__(self, stream: Stream, shape: tuple[int, int], device: Any, **options: Any):
        self._stream = stream
        self._accumulator = Accumulator(shape, device=device, **options)
        self._thread = threading.Thread(target=self._pump, name="aerflow-input", daemon=True)
        self._error: BaseException | None = None
        self.done = threading.Event()
        """Set when the source has ended: a finite one read to its end, or any one failed
        (the error is raised by the next :meth:`read`)."""

    def _pump(self) -> None:
        try:
            for packet in self._stream:
                self._accumulator.add(packet)
        except BaseException as error:  # handed to the next read()
            self._error = error
        finally:
            self.done.set()

    def start(self) -> _Input:
        self._thread.start()
        return self

    def read(self) -> Any:
        """Everything accumulated since the last call, as a ``(P, H, W)`` tensor."""
        if self._error is not None:
            raise self._error
        return self._accumulator.read()

    @property
    def dropped(self) -> int:
        return int(self._accumulator.dropped)

    def close(self) -> None:
        self._stream.close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class FileInput(_Input):
    """A recording in any format aerflow reads, played back as if live."""

    def __init__(
        self,
        filename: str,
        shape: tuple[int, int] | None = None,
        device: Any = "cpu",
        ignore_time: bool = False,
        **options: Any,
    ) -> None:
        reader = open_file(filename)
        size = shape or reader.properties.sensor_size
        if size is None:
            reader.close()
            raise ValueError(f"{filename} does not give its sensor size: pass shape=(W, H)")
        stream: Stream = reader if ignore_time else reader.pace()
        super().__init__(stream, tuple(size), device, **options)  # type: ignore[arg-type]


class UDPInput(_Input):
    """Events arriving over UDP (aestream/SPIF words by default, as aestream sends them)."""

    def __init__(
        self,
        shape: tuple[int, int],
        device: Any = "cpu",
        port: int = 3333,
        *,
        host: str = "127.0.0.1",
        wire: str = "spif",
        **options: Any,
    ) -> None:
        from .net import UdpReceiver

        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        receiver = UdpReceiver(address, wire=wire, width=shape[0], height=shape[1])
        self.port: int = receiver.address.port
        """The port listened on (useful with ``port=0``: any free port)."""
        super().__init__(receiver, shape, device, **options)  # the receiver is a Stream


class USBInput(_Input):
    """A USB event camera, as aestream's ``USBInput``: ``shape`` defaults to the sensor's.

    ``serial`` picks a camera, ``configuration`` is its settings (a dataclass, a dict or a
    TOML/JSON file, as :func:`aerflow.devices.open` takes them) and ``backend`` another bus
    (:func:`aerflow.devices.emulate` plays a recording through the real driver)."""

    def __init__(
        self,
        shape: tuple[int, int] | None = None,
        device: Any = "cpu",
        serial: str | None = None,
        *,
        configuration: Any = None,
        backend: Any = None,
        **options: Any,
    ) -> None:
        from . import devices

        camera = devices.open(serial, configuration, backend=backend)
        stream: Stream = camera.stream()
        size = shape or stream.properties.sensor_size
        if size is None:
            stream.close()
            raise ValueError("the camera does not give its sensor size: pass shape=(W, H)")
        super().__init__(stream, tuple(size), device, **options)  # type: ignore[arg-type]
