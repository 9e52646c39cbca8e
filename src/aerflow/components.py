"""The sources and the plain sinks of a pipeline, registered by name with their options.

Filters register themselves in :mod:`aerflow.filters`, the render sinks in
:mod:`aerflow.render.components`, all in the one table of :mod:`aerflow.registry`; the
command line is generated from that table (and from the format registry), so it offers
exactly what the library does. Each entry builds its object from keyword options; heavy
modules load only when an entry is built. ``SOURCES``, ``FILTERS`` and ``SINKS`` are that
table's views by kind, filled when first read.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from . import api, registry
from .errors import AerflowError
from .events import as_events
from .properties import Properties
from .registry import Component, Option, register_component
from .sinks import NullSink, Sink
from .stream import FilteredStream, Stream
from .synthetic import PATTERNS, SyntheticSensor

__all__ = [
    "FILTERS",
    "SINKS",
    "SOURCES",
    "Component",
    "file_read_options",
    "file_write_options",
    "open_file_stream",
]

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # module attributes read from the registry (see __getattr__ below)
    SOURCES: dict[str, Component]
    FILTERS: dict[str, Component]
    SINKS: dict[str, Component]


def _union(groups: list[tuple[Option, ...]]) -> tuple[Option, ...]:
    """Every option of the groups once. Where formats give one name different choices or
    meanings (AEDAT 2.0's --camera is a layout, AEDAT 4's a free name), the command line
    takes any value and the chosen format checks it."""
    seen: dict[str, Option] = {}
    for group in groups:
        for option in group:
            if not option.command_line:
                continue
            known = seen.get(option.name)
            if known is None:
                seen[option.name] = option
            elif known.choices != option.choices or known.help != option.help:
                helps = [known.help, option.help] if option.help not in known.help else [known.help]
                seen[option.name] = dataclasses.replace(
                    known,
                    choices=None if known.choices != option.choices else known.choices,
                    help="; ".join(helps),
                    default=None,
                )
    return tuple(seen.values())


def file_read_options() -> tuple[Option, ...]:
    """Every option some format's reader takes."""
    return _union([f.read_options for f in registry.list_formats() if f.reader])


def file_write_options() -> tuple[Option, ...]:
    """Every option some format's writer takes."""
    return _union([f.write_options for f in registry.list_formats() if f.writer])


def _format_option(purpose: str) -> Option:
    return Option("format", str, f"format name (default: from the {purpose})")


def _only_format_options(
    info: registry.FormatInfo, given: dict[str, Any], allowed: tuple[Option, ...]
) -> dict[str, Any]:
    names = {o.name for o in allowed if o.command_line}
    unknown = sorted(k for k, v in given.items() if v is not None and k not in names)
    if unknown:
        raise AerflowError(
            f"format {info.name} does not take {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(names)) or 'no options'})"
        )
    return {k: v for k, v in given.items() if v is not None}


# -- sources ------------------------------------------------------------------------------------
def surveyed_extent(stream: Stream) -> tuple[int, int] | None:
    """The smallest sensor holding every event of ``stream`` (read to its end, then closed),
    or None when it has no events."""
    from ._extent import event_extent  # numba: loaded when a file is surveyed, not for --help

    x_max = y_max = -1
    with stream:
        for packet in stream:
            if len(packet.events):
                _, _, x, y = event_extent(as_events(packet.events))
                x_max, y_max = max(x_max, x), max(y_max, y)
    return None if x_max < 0 else (x_max + 1, y_max + 1)


def open_file_stream(path: str, format: str | None = None, **options: Any) -> Stream:
    """A recording as a stream, with the options of ``input file`` (also those of ``info``,
    ``convert`` and ``plot``): the format's read options, and ``width``/``height`` for any
    format (a reader that takes them uses them, e.g. ATIS .bin to drop events outside; for
    the others they state the stream's sensor size)."""
    from .filters import SensorSize  # the kernels load with a file, not with the CLI's --help

    info = registry.detect(path, format)
    taken = {o.name for o in info.read_options}
    size = {k: options.pop(k) for k in ("width", "height") if k not in taken and k in options}
    reader = api.open(
        path, "r", format=info.name, **_only_format_options(info, options, info.read_options)
    )
    width, height = size.get("width"), size.get("height")
    if width is None and height is None:
        if reader.properties.sensor_size is not None or not os.path.isfile(path):
            return reader
        # A file without a size (a .npy, a CSV without %geometry): one pass over the events
        # gives their extent, so that outputs needing a size can be made.
        try:
            extent = surveyed_extent(
                api.open(
                    path,
                    "r",
                    format=info.name,
                    **_only_format_options(info, options, info.read_options),
                )
            )
        except BaseException:
            reader.close()
            raise
        if extent is None:
            return reader
        log.info("%s gives no sensor size: %dx%d, from its events' extent", path, *extent)
        return FilteredStream(reader, SensorSize(*extent, inferred=True))
    if width is None or height is None:
        reader.close()
        raise AerflowError("give both --width and --height, or neither")
    return FilteredStream(reader, SensorSize(width, height))


def _open_synthetic(duration: str = "1s", **options: Any) -> Stream:
    endless = duration.strip().lower() in ("inf", "forever", "none")
    return SyntheticSensor(duration=None if endless else duration, **options)


def _open_udp(address: str, port: int | None = None, **options: Any) -> Stream:
    from .net import UdpReceiver, parse_address

    if port is not None:  # aestream's `udp HOST PORT` word order
        address = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    parse_address(address)
    receiver: Stream = UdpReceiver(address, **options)  # a stream whose properties come late
    return receiver


def _open_dv(address: str, **options: Any) -> Stream:
    from .net import DvClient

    client: Stream = DvClient(address, **options)  # connects when its data is first asked for
    return client


def _open_camera(
    recording: str | None = None,
    serial: str | None = None,
    config: str | None = None,
    emulate: str | None = None,
    speed: float = 1.0,
    loop: bool = False,
    ring_length: int | None = None,
) -> Stream:
    from . import devices

    if recording is not None and emulate is None:
        raise AerflowError(
            f"{recording}: only an emulated camera plays a recording: add --emulate MODEL"
        )
    if not speed >= 0:
        raise AerflowError(f"--speed must be positive (0: as fast as possible), not {speed}")
    backend = None
    if emulate is not None:
        backend = devices.emulate(emulate, recording, speed=speed or None, serial=serial, loop=loop)
    camera = devices.open(
        serial,
        config,
        backend=backend,
        ring_length=devices.DEFAULT_RING_LENGTH if ring_length is None else ring_length,
    )
    return camera.stream()


def _open_stdin(**options: Any) -> Stream:
    from .formats.text import TextReader

    # The unbuffered file, not sys.stdin.buffer: a read-ahead thread left waiting on a silent
    # pipe after Ctrl-C then holds no buffer lock that the interpreter's exit would wait for
    # (a fatal error); the reader has a buffer of its own.
    stdin = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
    stream: Stream = TextReader.from_stream(stdin, **options)
    return stream


_TEXT_OPTIONS = (
    Option("columns", str, "column order, comma separated", default="t,x,y,on"),
    Option("separator", str, "column separator", default=","),
    Option("time_unit", str, "unit of the time column", default="us", choices=("us", "ms", "s")),
    Option("width", int, "sensor width"),
    Option("height", int, "sensor height"),
)

_WIRES = ("aerflow", "spif", "spif-t", "faery-t64", "faery-t32")
_PORT_AND_WIRE = (
    Option(
        "port", int, "PORT, when HOST and PORT are given apart (aestream style)", positional=True
    ),
    Option("wire", str, "datagram format", default="aerflow", choices=_WIRES),
)

for _source in (
    Component(
        "file",
        "a recording in any registered format (`aerflow formats` lists them)",
        lambda: (
            Option("path", str, "the recording", positional=True, required=True),
            _format_option("file's contents, then its extension"),
            *file_read_options(),
        ),
        open_file_stream,
    ),
    Component(
        "synthetic",
        "the built-in synthetic sensor: a spinning bar or circling dots, plus noise",
        (
            Option("width", int, "sensor width", default=640),
            Option("height", int, "sensor height", default=480),
            Option("pattern", str, "scene", default="bar", choices=PATTERNS),
            Option("rate", float, "events per second", default=2_000_000.0),
            Option("noise", float, "fraction of the events that are noise", default=0.05),
            Option("duration", str, "event time to generate ('inf': endless)", default="1s"),
            Option("packet_duration", str, "event time per packet", default="10ms"),
            Option("seed", int, "noise seed", default=0),
        ),
        _open_synthetic,
    ),
    Component(
        "udp",
        "events arriving over UDP",
        (
            Option(
                "address",
                str,
                "HOST:PORT to listen on ([::1]:PORT for IPv6; a bare PORT listens on 127.0.0.1)",
                positional=True,
                required=True,
            ),
            *_PORT_AND_WIRE,
            Option("width", int, "sensor width (the aerflow wire format carries it)"),
            Option("height", int, "sensor height"),
            Option("idle_timeout", float, "end after this many seconds without data"),
            Option("timeout", float, "give up when nothing arrives within this many seconds"),
        ),
        _open_udp,
    ),
    Component(
        "dv",
        "a DV network stream (DV's network output, dv-processing NetworkWriter)",
        (
            Option(
                "address",
                str,
                "tcp://HOST:PORT (a bare PORT: 127.0.0.1), tls://HOST:PORT or unix:///PATH",
                positional=True,
                required=True,
            ),
            Option("timeout", float, "give up when no data comes for this many seconds"),
            Option(
                "retry",
                float,
                "keep trying to connect, and to connect again when the connection breaks, "
                "for this many seconds",
            ),
            Option("stream", int, "id of the event stream, when the server sends several"),
            Option("width", int, "sensor width (default: the server's description)"),
            Option("height", int, "sensor height"),
            Option("tls_ca", str, "TLS: CA file (PEM) that signed the server's certificate"),
            Option("tls_cert", str, "TLS: client certificate (PEM), for servers that ask"),
            Option("tls_key", str, "TLS: private key of --tls-cert (PEM)"),
        ),
        _open_dv,
    ),
    Component("stdin", "CSV text on standard input", _TEXT_OPTIONS, _open_stdin),
    Component(
        "camera",
        "a USB event camera (see `aerflow devices`), or an emulated one",
        (
            Option(
                "recording",
                str,
                "recording the emulated camera plays (with --emulate; default: synthetic)",
                positional=True,
            ),
            Option("serial", str, "the camera's serial (default: the first camera found)"),
            Option(
                "config",
                str,
                "TOML or JSON configuration file "
                "(`aerflow devices --config-template MODEL` prints one)",
            ),
            Option(
                "emulate",
                str,
                "emulate a camera of this model: evk4, evk3_hd, dvxplorer or davis346",
            ),
            Option(
                "speed",
                float,
                "emulated playback speed, times real time (0: as fast as the pipeline takes it)",
                default=1.0,
            ),
            Option("loop", bool, "emulated: replay the recording for ever", default=False),
            Option(
                "ring_length",
                int,
                "USB buffers (128 KiB each) held while the pipeline falls behind (default: 512)",
            ),
        ),
        _open_camera,
    ),
):
    register_component("source", _source)


# -- sinks --------------------------------------------------------------------------------------
def _file_sink(
    properties: Properties, path: str, format: str | None = None, **options: Any
) -> Sink:
    info = registry.for_writing(path, format)
    given = _only_format_options(info, options, info.write_options)
    names = {o.name for o in info.write_options}
    for name, value in (("width", properties.width), ("height", properties.height)):
        if name in names and given.get(name) is None and value is not None:
            given[name] = value
    writer_class = info.writer_class()
    needed = api.required_options(writer_class)
    if {"width", "height"} & needed and (given.get("width") is None or given.get("height") is None):
        raise AerflowError(
            f"{path}: {info.name} stores the sensor size, and the source does not give it: "
            "pass --width and --height (to the input or this output)"
        )
    writer: Sink = api.open(path, "w", format=info.name, **given)
    return writer


def _stdout_sink(properties: Properties, **options: Any) -> Sink:
    from .formats.text import TextWriter

    options = {k: v for k, v in options.items() if v is not None}
    options.setdefault("width", properties.width)
    options.setdefault("height", properties.height)
    sink: Sink = TextWriter.to_stream(sys.stdout.buffer, **options)
    return sink


def _udp_sink(
    properties: Properties, address: str, port: int | None = None, **options: Any
) -> Sink:
    from .net import UdpSender

    if port is not None:
        address = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    options = {k: v for k, v in options.items() if v is not None}
    options.setdefault("width", properties.width)
    options.setdefault("height", properties.height)
    sink: Sink = UdpSender(address, **options)
    return sink


def _dv_sink(properties: Properties, address: str, **options: Any) -> Sink:
    from .net import DvServer

    options = {k: v for k, v in options.items() if v is not None}
    options.setdefault("width", properties.width)
    options.setdefault("height", properties.height)
    sink: Sink = DvServer(address, **options)
    return sink


for _sink in (
    Component(
        "file",
        "a recording in any writable format (from --format or the extension)",
        lambda: (
            Option("path", str, "file to write", positional=True, required=True),
            _format_option("extension"),
            *file_write_options(),
        ),
        _file_sink,
    ),
    Component("stdout", "CSV text on standard output", _TEXT_OPTIONS[:3], _stdout_sink),
    Component(
        "udp",
        "send events over UDP",
        (
            Option(
                "address",
                str,
                "HOST:PORT to send to ([::1]:PORT for IPv6)",
                positional=True,
                required=True,
            ),
            *_PORT_AND_WIRE,
            Option("datagram_bytes", int, "largest datagram payload"),
            Option("rate_limit", float, "at most this many events per second"),
        ),
        _udp_sink,
    ),
    Component(
        "dv",
        "serve DV clients (DV, dv-processing NetworkReader) over TCP or a UNIX socket",
        (
            Option(
                "address",
                str,
                "tcp://HOST:PORT to listen on (a bare PORT: 127.0.0.1 only; "
                "tcp://0.0.0.0:PORT: every interface) or unix:///PATH",
                positional=True,
                required=True,
            ),
            Option(
                "streams",
                str,
                "what to serve, comma separated: events, triggers, imu, frames "
                "(DV and dv-processing clients take one)",
                default="events",
            ),
            Option(
                "compression",
                str,
                "packet compression",
                default="none",
                choices=("none", "lz4", "lz4_high", "zstd", "zstd_high"),
            ),
            Option("clients", int, "wait for this many clients before sending", default=0),
            Option("queue_bytes", int, "bytes a client may fall behind before it is dropped"),
            Option("camera", str, "source name in the stream description"),
            Option("linger", float, "seconds to finish sending at the end", default=1.0),
            Option("tls_cert", str, "TLS: the server's certificate chain (PEM)"),
            Option("tls_key", str, "TLS: private key of --tls-cert (PEM)"),
            Option("tls_ca", str, "TLS: accept only clients with a certificate this CA signed"),
        ),
        _dv_sink,
    ),
    Component("null", "count events and discard them", (), lambda properties: NullSink()),
):
    register_component("sink", _sink)


def __getattr__(name: str) -> dict[str, Component]:
    """``SOURCES``, ``FILTERS``, ``SINKS``: the registry's tables (reading one imports the
    modules that register its kind)."""
    kind = {"SOURCES": "source", "FILTERS": "filter", "SINKS": "sink"}.get(name)
    if kind is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return registry.components(kind)
