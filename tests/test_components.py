"""Components (sources, filters, sinks) declared once in the registry: imports that point one
way, one registration read by the stream shortcuts, the command line and its help, options
checked from the declaration, and sources that learn their properties late."""

from __future__ import annotations

import ast
import io
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
import aerflow.net
from aerflow import registry
from aerflow.cli.main import run as cli_run
from aerflow.errors import OptionError
from aerflow.events import EVENTS_DTYPE, Packet
from aerflow.filters import (
    ChunkByCount,
    ChunkByDuration,
    Crop,
    Decimate,
    Denoise,
    Flip,
    Pace,
    Polarity,
    Refractory,
    ShiftTime,
    TimeSlice,
    Transpose,
)
from aerflow.properties import Properties
from aerflow.stream import Filter, FilteredStream, IterableStream, Stream

from .helpers import assert_same_events
from .processes import PATIENCE, free_udp_port, udp_port_bound, wait_until

SOURCE = Path(__file__).resolve().parent.parent / "src"


# -- the import graph -----------------------------------------------------------------------------
def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in (SOURCE / "aerflow").rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the aerflow modules it imports, from every ``import`` statement in its
    source (module level, inside functions, under ``TYPE_CHECKING``), read with ``ast``
    without running anything. ``from . import x`` counts as importing ``x``; the importing
    module's own parent packages (which Python imports first anyway) are left out."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            edges.update(
                t for t in targets if t in modules and t != name and not name.startswith(t + ".")
            )
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# The layers this module's tests are about: none may sit on an import cycle.
LAYERS = (
    "aerflow.registry",
    "aerflow.properties",
    "aerflow.stream",
    "aerflow.filters",
    "aerflow.sinks",
    "aerflow.pipeline",
    "aerflow.components",
    "aerflow.render.components",
    "aerflow.cli",
)


def test_no_import_cycle_through_streams_filters_components_or_cli() -> None:
    graph = import_graph()
    assert "aerflow.stream" in graph
    assert "aerflow.render.components" in graph
    touching = [
        c for c in cycles(graph) if any(m == p or m.startswith(p + ".") for m in c for p in LAYERS)
    ]
    assert touching == []


def test_imports_point_one_way() -> None:
    """What issue 16 names: stream no longer imports filters (filters import stream), the
    components no longer import the render sinks (those register themselves), and the
    registry imports none of the modules that register."""
    graph = import_graph()
    assert "aerflow.filters" not in graph["aerflow.stream"]
    assert "aerflow.stream" in graph["aerflow.filters"]
    assert "aerflow.render.components" not in graph["aerflow.components"]
    assert "aerflow.components" not in graph["aerflow.render.components"]
    registering = {m for kind in registry.KINDS for m in registry.PROVIDERS[kind]}
    assert registering == {"aerflow.components", "aerflow.filters", "aerflow.render.components"}
    assert not graph["aerflow.registry"] & (registering | {"aerflow.stream", "aerflow.formats"})


# -- one registration -----------------------------------------------------------------------------
@pytest.fixture
def extra_filter() -> Iterator[type[Filter]]:
    """A filter declared the one way a new filter is: one decorated class."""

    @registry.declares(
        "filter",
        "odd-x",
        "keep events on odd (or even) columns",
        (registry.Option("even", bool, "keep the even columns instead", default=False),),
    )
    class OddX(Filter):
        def __init__(self, even: bool = False) -> None:
            self.even = even

        def apply(self, packet: Packet) -> Iterable[Packet]:
            keep = (packet.events["x"] % 2 == 1) != self.even
            return [Packet(packet.events[keep], packet.triggers, packet.imu, packet.frames)]

    yield OddX
    del registry.components("filter")["odd-x"]


def _events(count: int = 200, width: int = 16, height: int = 8) -> np.ndarray:
    rng = np.random.default_rng(5)
    events = np.zeros(count, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 100_000, count))
    events["x"] = rng.integers(0, width, count)
    events["y"] = rng.integers(0, height, count)
    events["on"] = rng.integers(0, 2, count).astype(bool)
    return events


def _stream(events: np.ndarray, width: int = 16, height: int = 8) -> Stream:
    return IterableStream([Packet(events)], Properties("test", width, height))


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """The command line run here: exit status (``--help`` exits through SystemExit), what
    it wrote to stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    try:
        code = cli_run(args)
    except SystemExit as ended:
        code = int(ended.code or 0)
    return code, stdout.getvalue(), stderr.getvalue()


def test_a_new_filter_is_one_class(
    extra_filter: type[Filter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared once, it is a stream step by name, a command-line block with its --help,
    and in the listing of filters."""
    events = _events()
    odd = events[events["x"] % 2 == 1]
    assert_same_events(_stream(events).apply("odd-x").read().events, odd)
    even = _stream(events).apply("odd-x", even=True).read().events
    assert_same_events(even, events[events["x"] % 2 == 0])

    code, listing, _ = _cli(["filter", "--help"], monkeypatch)
    assert code == 0
    assert re.search(r"\n  odd-x +keep events on odd \(or even\) columns\n", listing)
    code, help_text, _ = _cli(["input", "synthetic", "filter", "odd-x", "--help"], monkeypatch)
    assert code == 0
    assert "--even" in help_text
    source = tmp_path / "in.npy"
    out = tmp_path / "out.npy"
    aerflow.write(source, events, width=16, height=8)
    code, _, stderr = _cli(
        ["--quiet", "input", "file", str(source), "filter", "odd-x", "output", "file", str(out)],
        monkeypatch,
    )
    assert code == 0, stderr
    assert_same_events(aerflow.read(out), odd)


def test_filter_help_shows_the_declared_options(
    extra_filter: type[Filter], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text, _ = _cli(["input", "synthetic", "filter", "odd-x", "--help"], monkeypatch)
    assert code == 0
    assert "usage: aerflow filter odd-x" in text
    assert "--even" in text
    assert "keep the even columns instead" in text


# Each shortcut, and the filter class the registered entry of its name builds.
SHORTCUTS: list[tuple[str, Any, type[Filter]]] = [
    ("chunk", lambda s: s.chunks(events=10), ChunkByCount),
    ("chunk", lambda s: s.chunks(duration="1ms"), ChunkByDuration),
    ("time-slice", lambda s: s.time_slice("1ms", "5ms"), TimeSlice),
    ("crop", lambda s: s.crop(1, 1, 4, 4), Crop),
    ("polarity", lambda s: s.polarity("on"), Polarity),
    ("flip", lambda s: s.flip("x"), Flip),
    ("transpose", lambda s: s.transpose(), Transpose),
    ("shift-time", lambda s: s.shift_time(5), ShiftTime),
    ("refractory", lambda s: s.refractory("1ms"), Refractory),
    ("denoise", lambda s: s.denoise(), Denoise),
    ("decimate", lambda s: s.decimate(2), Decimate),
    ("pace", lambda s: s.pace(1000.0), Pace),
]


@pytest.mark.parametrize(("name", "shortcut", "cls"), SHORTCUTS, ids=lambda v: str(v))
def test_shortcuts_are_the_registered_filters(name: str, shortcut: Any, cls: type) -> None:
    assert name in registry.components("filter")
    stream = shortcut(_stream(_events()))
    assert isinstance(stream, FilteredStream)
    assert type(stream._filter) is cls


def test_every_filter_has_a_command_line_block_and_every_shortcut_an_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    filters = registry.components("filter")
    assert {name for name, _, _ in SHORTCUTS} <= set(filters)
    code, listing, _ = _cli(["filter", "--help"], monkeypatch)
    assert code == 0
    for name, item in filters.items():
        assert f"  {name}" in listing
        assert item.help in listing


def test_shortcut_and_command_line_give_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _events()
    source, out = tmp_path / "in.npy", tmp_path / "out.npy"
    aerflow.write(source, events, width=16, height=8)
    code, _, stderr = _cli(
        ["--quiet", "input", "file", str(source), "filter", "crop", "2", "1", "8", "5",
         "--keep-coordinates", "output", "file", str(out)],
        monkeypatch,
    )  # fmt: skip
    assert code == 0, stderr
    expected = _stream(events).crop(2, 1, 8, 5, shift=False).read().events
    inside = (
        (events["x"] >= 2) & (events["x"] < 10) & (events["y"] >= 1) & (events["y"] < 6)
    )  # by hand
    assert_same_events(expected, events[inside])
    assert_same_events(aerflow.read(out), expected)


# -- options checked from the declaration ---------------------------------------------------------
def test_unknown_filter_option_is_an_option_error_naming_the_filter() -> None:
    with pytest.raises(
        OptionError, match=r"filter denoise takes no option windw; its options: window"
    ):
        _stream(_events()).apply("denoise", windw="5ms")
    with pytest.raises(OptionError, match=r"filter pace takes no option rate; its options: speed"):
        _stream(_events()).apply("pace", rate=2.0)


def test_unknown_source_and_sink_options_name_the_component() -> None:
    source = registry.component("source", "synthetic")
    with pytest.raises(
        OptionError, match=r"source synthetic takes no option colour; its options: width, height"
    ):
        source.make(colour="red")
    sink = registry.component("sink", "null")
    with pytest.raises(OptionError, match=r"sink null takes no option path; its options: none"):
        sink.make(Properties("x", 4, 4), path="x")


def test_unknown_component_names_the_known_ones() -> None:
    with pytest.raises(LookupError, match=r"unknown filter 'blur' \(known: chunk, .*crop"):
        _stream(_events()).apply("blur")


def _every_option() -> list[tuple[str, registry.Option]]:
    where: list[tuple[str, registry.Option]] = []
    for info in registry.list_formats():
        where += [(f"format {info.name} read", o) for o in info.read_options]
        where += [(f"format {info.name} write", o) for o in info.write_options]
    for kind in registry.KINDS:
        for item in registry.components(kind).values():
            where += [(f"{kind} {item.name}", o) for o in item.all_options()]
    return where


def test_one_name_has_one_type_everywhere() -> None:
    types: dict[str, dict[type, list[str]]] = {}
    for owner, option in _every_option():
        types.setdefault(option.name, {}).setdefault(option.type, []).append(owner)
    mixed = {name: found for name, found in types.items() if len(found) > 1}
    assert mixed == {}


def test_chunk_size_is_bytes_and_event_counts_say_events() -> None:
    """``chunk_size`` is a number of bytes wherever it is declared; a count of events has
    its own name (``chunk_events``, ``packet_events``, ``chunk --events``)."""
    sizes = [(owner, o) for owner, o in _every_option() if o.name == "chunk_size"]
    assert len(sizes) >= 10
    for owner, option in sizes:
        assert option.type is int, owner
        assert "bytes" in option.help, (owner, option.help)
    for owner, option in _every_option():
        if "events per packet" in option.help:
            assert "events" in option.name, (owner, option.name)


# -- sources that learn their properties late -----------------------------------------------------
class LateSource(Stream):
    """Knows its sensor size only once its first data is in, like a network stream."""

    def __init__(self, events: np.ndarray, size: tuple[int, int]) -> None:
        self.properties = Properties("late", None, None, live=True)
        self._events, self._size = events, size
        self.waited = 0

    def wait_for_data(self) -> Properties:
        self.waited += 1
        self.properties = self.properties.derived(width=self._size[0], height=self._size[1])
        return self.properties

    def __iter__(self) -> Iterator[Packet]:
        yield Packet(self._events)


def test_wait_for_data_passes_through_filters_and_read_ahead() -> None:
    plain = _stream(_events())
    assert plain.wait_for_data() is plain.properties  # a source that knows: at once
    late = LateSource(_events(), (16, 8))
    stream = late.transpose().ahead(2)
    assert stream.properties.sensor_size is None
    assert stream.wait_for_data().sensor_size == (8, 16)
    assert stream.properties.sensor_size == (8, 16)
    assert late.waited == 1
    expected = _events()
    expected["x"], expected["y"] = _events()["y"], _events()["x"]  # transposed by hand
    assert_same_events(stream.read().events, expected)


def test_cli_dv_source_into_a_raw_file_takes_the_announced_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`aerflow input dv ... output file x.raw`: EVT 3.0 stores a sensor size, the DV client
    learns it from the server's stream description (346x260 here, larger than the events'
    extent), and the file gets exactly that size and the events sent."""
    events = _events(500, width=100, height=50)
    out = tmp_path / "received.raw"
    clients: list[aerflow.net.DvClient] = []

    class Watched(aerflow.net.DvClient):
        """The command line's client, kept so that the server ends once it has every event
        (a DV client's stream ends when the server closes the connection)."""

        def __init__(self, *args: Any, **options: Any) -> None:
            super().__init__(*args, **options)
            clients.append(self)

    monkeypatch.setattr(aerflow.net, "DvClient", Watched)
    with aerflow.net.DvServer(0, width=346, height=260, linger=0.5) as server:

        def serve() -> None:
            assert server.wait_for_clients(1, PATIENCE)
            server.write(events)
            wait_until(lambda: clients[0].stats.events >= len(events), "the events received")
            server.close()

        serving = threading.Thread(target=serve, daemon=True)
        serving.start()
        code, _, stderr = _cli(
            ["--quiet", "input", "dv", str(server.address), "--timeout", str(PATIENCE),
             "output", "file", str(out)],
            monkeypatch,
        )  # fmt: skip
        serving.join(PATIENCE)
    assert code == 0, stderr
    with aerflow.open(out) as reader:
        assert reader.properties.sensor_size == (346, 260)
        assert_same_events(reader.read().events, events)


@pytest.mark.parametrize("output", [["file", "x.raw"], ["video", "x.mp4"], ["frames", "pictures"]])
def test_a_size_nobody_gives_fails_before_data_moves(
    output: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UDP stream whose wire format carries no sensor size, into an output that needs one
    (a format that stores it, pictures): one line naming --width/--height, exit 1, no file."""
    port = free_udp_port()
    out = tmp_path / output[1]

    def send() -> None:
        wait_until(lambda: udp_port_bound(port), "the receiver")
        with aerflow.net.UdpSender(f"127.0.0.1:{port}", wire="spif", width=64, height=64) as sender:
            sender.write(_events())

    sending = threading.Thread(target=send, daemon=True)
    sending.start()
    code, _, stderr = _cli(
        ["--quiet", "input", "udp", f"127.0.0.1:{port}", "--wire", "spif", "--timeout",
         str(PATIENCE), "output", output[0], str(out)],
        monkeypatch,
    )  # fmt: skip
    sending.join(PATIENCE)
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("aerflow: error:")]
    assert len(errors) == 1, stderr
    assert "--width and --height" in errors[0]
    assert "Traceback" not in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


@pytest.mark.parametrize(("model", "size"), [("davis346", (346, 260)), ("evk4", (1280, 720))])
def test_cli_emulated_camera_into_a_raw_file_takes_the_camera_size(
    model: str, size: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A camera states its sensor (the model's, not the played recording's extent) before
    any data moves, and the file that stores a size gets it."""
    events = _events(300, width=40, height=30)
    recording, out = tmp_path / "played.aedat4", tmp_path / "camera.raw"
    aerflow.write(recording, events, width=40, height=30)
    code, _, stderr = _cli(
        ["--quiet", "input", "camera", str(recording), "--emulate", model, "--speed", "0",
         "output", "file", str(out)],
        monkeypatch,
    )  # fmt: skip
    assert code == 0, stderr
    with aerflow.open(out) as reader:
        assert reader.properties.sensor_size == size
        assert len(reader.read().events) == len(events)
