"""How each library decodes each format: one whole-file read and one chunked iteration.

Every library is imported lazily (inside the functions), so that a measuring process
imports only the tool it measures, and importing this module never fails because
a peer is missing.

Per tool:
    aerflow       aerflow.read(path)   (two threads on a multi-core machine)
                  aerflow.open(path[, chunk_size=N]) -> packets with .events
    aerflow-1thread  aerflow.read(path, threads=1)   (one core: the per-core cost)
    faery         numpy.concatenate(list(faery.events_stream_from_file(path,
                      dimensions_fallback=(W, H), version_fallback=...)))
                  (the stream yields numpy arrays packet by packet; stream.to_array()
                  does the same after an extra full decode for its progress bar);
                  faery 0.7.1 has no EVT2.1 decoder (it panics "not yet implemented")
    evlib         evlib.formats.load_events(path).collect()   (Rust decoder -> polars
                  DataFrame x, y: i16, t: duration[us], polarity: i8 -1/+1;
                  evlib.load_events adds a sort by t that we skip; no DAT reader,
                  no chunked API)
    evutils       evutils.io.EventReader(path, mode="all", width=W, height=H).read_all()
    evt3          evt3.decode_file(path)   (the Rust `evt3` crate's Python package)
    evio          evio.read(path)   (NumPy only; DAT files, 32-bit times not unwrapped)
    expelliarmus  expelliarmus.Wizard(encoding=...).read(path)
                  Wizard(encoding=..., fpath=path, chunk_size=N).read_chunk()
                  (buff_size raised to 65536 words: ~2 % faster than its default)
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Columns = tuple[
    npt.NDArray[np.generic], npt.NDArray[np.generic], npt.NDArray[np.generic], npt.NDArray[np.bool_]
]

FORMATS = ("evt3", "evt2", "evt21", "dat")
SUFFIXES = {"evt3": ".raw", "evt2": ".raw", "evt21": ".raw", "dat": ".dat"}

_FAERY_VERSIONS = {"evt3": "evt3", "evt2": "evt2", "evt21": "evt2.1", "dat": "dat2"}
_EXPELLIARMUS_ENCODINGS = {"evt3": "evt3", "evt2": "evt2", "dat": "dat"}
_EXPELLIARMUS_BUFF_SIZE = 1 << 16  # words per file read; its default (4096) is ~2 % slower
_EXPELLIARMUS_CHUNK_EVENTS = 1 << 20


@dataclass(frozen=True)
class Tool:
    """One library under test."""

    name: str
    distribution: str
    module: str
    formats: frozenset[str]
    read: Callable[[Path, str, int, int], Any]
    columns: Callable[[Any], Columns]
    chunks: Callable[[Path, str, int, int, int | None], Iterator[Any]] | None


def installed(tool: Tool) -> bool:
    try:
        importlib.metadata.version(tool.distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def version(tool: Tool) -> str:
    try:
        return importlib.metadata.version(tool.distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def import_tool(tool: Tool) -> None:
    """Import the tool's module (so that timing excludes import costs)."""
    importlib.import_module(tool.module)


# --- aerflow -------------------------------------------------------------------------


def _aerflow_read(path: Path, fmt: str, width: int, height: int) -> Any:
    import aerflow

    return aerflow.read(path)


def _aerflow_read_1thread(path: Path, fmt: str, width: int, height: int) -> Any:
    import aerflow

    return aerflow.read(path, threads=1)


def _aerflow_chunks(
    path: Path, fmt: str, width: int, height: int, chunk_size: int | None
) -> Iterator[Any]:
    import aerflow

    options: dict[str, Any] = {} if chunk_size is None else {"chunk_size": chunk_size}
    with aerflow.open(path, **options) as reader:
        for packet in reader:
            yield packet.events


def _packed_columns(events: Any) -> Columns:
    return events["t"], events["x"], events["y"], events["on"]


# --- faery ---------------------------------------------------------------------------


def _faery_stream(path: Path, fmt: str, width: int, height: int) -> Any:
    import faery

    return faery.events_stream_from_file(
        path,
        dimensions_fallback=(width, height),
        version_fallback=_FAERY_VERSIONS[fmt],
    )


def _faery_read(path: Path, fmt: str, width: int, height: int) -> Any:
    # What stream.to_array() does, minus its progress bookkeeping: to_array() first
    # calls stream.time_range(), which decodes the whole file once more.
    packets = list(_faery_stream(path, fmt, width, height))
    if not packets:
        import faery

        return np.empty(0, dtype=faery.EVENTS_DTYPE)
    return np.concatenate(packets)


def _faery_chunks(
    path: Path, fmt: str, width: int, height: int, chunk_size: int | None
) -> Iterator[Any]:
    # faery decides its own packet size; chunk_size does not apply.
    yield from _faery_stream(path, fmt, width, height)


# --- evlib ---------------------------------------------------------------------------


def _evlib_read(path: Path, fmt: str, width: int, height: int) -> Any:
    import evlib.formats

    return evlib.formats.load_events(str(path)).collect()


def _evlib_columns(frame: Any) -> Columns:
    t = frame["t"].to_numpy()  # timedelta64[us]
    polarity = frame["polarity"].to_numpy()  # -1 / +1 for binary formats
    return t, frame["x"].to_numpy(), frame["y"].to_numpy(), polarity > 0


# --- expelliarmus --------------------------------------------------------------------


def _expelliarmus_read(path: Path, fmt: str, width: int, height: int) -> Any:
    from expelliarmus import Wizard

    wizard = Wizard(encoding=_EXPELLIARMUS_ENCODINGS[fmt], buff_size=_EXPELLIARMUS_BUFF_SIZE)
    return wizard.read(path)


def _expelliarmus_chunks(
    path: Path, fmt: str, width: int, height: int, chunk_size: int | None
) -> Iterator[Any]:
    from expelliarmus import Wizard

    # chunk_size is aerflow's (bytes); expelliarmus counts events per chunk.
    wizard = Wizard(
        encoding=_EXPELLIARMUS_ENCODINGS[fmt],
        fpath=path,
        chunk_size=_EXPELLIARMUS_CHUNK_EVENTS,
        buff_size=_EXPELLIARMUS_BUFF_SIZE,
    )
    yield from wizard.read_chunk()


def _expelliarmus_columns(events: Any) -> Columns:
    return events["t"], events["x"], events["y"], events["p"] > 0


# --- evutils -------------------------------------------------------------------------


def _evutils_read(path: Path, fmt: str, width: int, height: int) -> Any:
    from evutils.io import EventReader

    return EventReader(path, mode="all", width=width, height=height).read_all()


def _attribute_columns(events: Any) -> Columns:
    """Columns of a peer's result with attributes t, x, y and p (evutils, evt3)."""
    return events.t, events.x, events.y, np.asarray(events.p) > 0


# --- evt3 (Rust crate) ----------------------------------------------------------------


def _evt3_read(path: Path, fmt: str, width: int, height: int) -> Any:
    import evt3

    return evt3.decode_file(str(path))


# --- evio ------------------------------------------------------------------------------


def _evio_read(path: Path, fmt: str, width: int, height: int) -> Any:
    import evio

    return evio.read(path)


def _evio_columns(events: Any) -> Columns:
    return events["t"], events["x"], events["y"], events["p"] > 0


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            name="aerflow",
            distribution="aerflow",
            module="aerflow",
            formats=frozenset(FORMATS),
            read=_aerflow_read,
            columns=_packed_columns,
            chunks=_aerflow_chunks,
        ),
        Tool(
            name="aerflow-1thread",
            distribution="aerflow",
            module="aerflow",
            formats=frozenset(FORMATS),
            read=_aerflow_read_1thread,
            columns=_packed_columns,
            chunks=None,
        ),
        Tool(
            name="faery",
            distribution="faery",
            module="faery",
            formats=frozenset({"evt3", "evt2", "dat"}),
            read=_faery_read,
            columns=_packed_columns,
            chunks=_faery_chunks,
        ),
        Tool(
            name="evlib",
            distribution="evlib",
            module="evlib.formats",
            # evlib reads EVT2.1; it has no DAT reader (it takes .dat files for text).
            formats=frozenset({"evt3", "evt2", "evt21"}),
            read=_evlib_read,
            columns=_evlib_columns,
            chunks=None,
        ),
        Tool(
            name="expelliarmus",
            distribution="expelliarmus",
            module="expelliarmus",
            formats=frozenset(_EXPELLIARMUS_ENCODINGS),
            read=_expelliarmus_read,
            columns=_expelliarmus_columns,
            chunks=_expelliarmus_chunks,
        ),
        Tool(
            name="evutils",
            distribution="evutils",
            module="evutils.io",
            # evutils reads EVT 2.1 only in the swapped-halves ("legacy") word order.
            formats=frozenset({"evt3", "evt2", "dat"}),
            read=_evutils_read,
            columns=_attribute_columns,
            chunks=None,
        ),
        Tool(
            name="evt3",
            distribution="evt3",
            module="evt3",
            formats=frozenset({"evt3"}),
            read=_evt3_read,
            columns=_attribute_columns,
            chunks=None,
        ),
        Tool(
            name="evio",
            distribution="evio",
            module="evio",
            formats=frozenset({"dat"}),
            read=_evio_read,
            columns=_evio_columns,
            chunks=None,
        ),
    )
}
OURS = ("aerflow", "aerflow-1thread")
PEERS = tuple(name for name in TOOLS if name not in OURS)
