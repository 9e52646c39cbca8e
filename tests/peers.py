"""Peer libraries as independent oracles: one adapter per library, decoding files into
:data:`aerflow.EVENTS_DTYPE` (and triggers into :data:`aerflow.TRIGGERS_DTYPE`) and writing
files where the library writes, plus the measured ways each peer departs from the formats.

Format names are aerflow's (``evt2``, ``evt21``, ``evt3``, ``dat``, ``aedat4``, ``aedat2``,
``aedat3``, ``es``, ``csv``, ``npy``). Every peer is imported inside the function that uses
it, so this module imports without any of them; :func:`require` skips a test whose peer is
missing or is not the version the tables below were measured on.

Three tables record what was measured on the pinned versions (``pyproject.toml``, extra
``interop``):

* :data:`DEVIATIONS` - how a peer's decoding departs from the format's reference semantics
  (OpenEB for Prophesee formats). :func:`assert_peer_read` handles each one explicitly: it
  compares exactly what the deviation leaves intact and says so in its failure messages.
* :data:`WRITER_DEVIATIONS` - what a peer puts in the files it writes that differs from the
  events it was given (:func:`assert_peer_written`).
* :data:`EXCLUDED` - capabilities a peer advertises that are left out of ``reads``, ``writes``
  or ``triggers`` because they do not work on valid data, with the measurement.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import aerflow

__all__ = [
    "AERFLOW_OPTIONS",
    "DEVIATIONS",
    "EXCLUDED",
    "FORMATS",
    "PEERS",
    "WRITER_DEVIATIONS",
    "WRITER_TIME_LIMITS",
    "Peer",
    "assert_peer_read",
    "assert_peer_triggers",
    "assert_peer_written",
    "assert_same_events",
    "assert_same_triggers",
    "peer_read",
    "peer_read_triggers",
    "peer_write",
    "readers",
    "require",
    "suffix",
    "trigger_readers",
    "writers",
]

FORMATS = frozenset(
    {"evt2", "evt21", "evt3", "dat", "aedat4", "aedat2", "aedat3", "es", "csv", "npy", "hdf5"}
)


@dataclass(frozen=True)
class Peer:
    """A peer library: its import name, the pinned version the tables were measured on, and
    the aerflow formats it reads, writes and decodes triggers of."""

    name: str
    distribution: str
    module: str
    version: str
    reads: frozenset[str]
    writes: frozenset[str]
    triggers: frozenset[str] = frozenset()
    writes_triggers: frozenset[str] = frozenset()


def _peer(
    name: str,
    distribution: str,
    module: str,
    version: str,
    reads: str,
    writes: str = "",
    triggers: str = "",
    writes_triggers: str = "",
) -> Peer:
    return Peer(
        name,
        distribution,
        module,
        version,
        frozenset(reads.split()),
        frozenset(writes.split()),
        frozenset(triggers.split()),
        frozenset(writes_triggers.split()),
    )


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        _peer(
            "faery",
            "faery",
            "faery",
            "0.7.1",
            reads="evt2 evt3 dat aedat4 es csv",
            writes="evt2 evt3 dat aedat4 es csv",
            triggers="evt2 evt3",
        ),
        _peer(
            "evlib",
            "evlib",
            "evlib",
            "0.13.2",
            reads="evt2 evt21 evt3 aedat4 csv hdf5",
            writes="csv",
        ),
        _peer(
            "expelliarmus", "expelliarmus", "expelliarmus", "1.1.12", "evt2 evt3 dat", "evt2 dat"
        ),
        _peer(
            "evutils",
            "evutils",
            "evutils",
            "0.3.18",
            reads="evt2 evt21 evt3 dat aedat2 aedat3 aedat4 csv",
            writes="evt2 evt21 dat csv",
            triggers="evt2 evt3",
        ),
        _peer("evt3", "evt3", "evt3", "0.4.1", reads="evt3", triggers="evt3"),
        _peer("aedat", "aedat", "aedat", "2.3.0", reads="aedat4", triggers="aedat4"),
        _peer(
            "dv-processing",
            "dv-processing",
            "dv_processing",
            "2.0.4",
            reads="aedat4",
            writes="aedat4",
            triggers="aedat4",
            writes_triggers="aedat4",
        ),
        _peer("event_stream", "event_stream", "event_stream", "1.6.3", reads="es", writes="es"),
    )
}

# Options for aerflow's writer that give a file the peer's reader understands, where the
# format has variants and the peer reads only one of them.
AERFLOW_OPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    # evutils implements only the swapped-halves EVT 2.1 order and refuses "little".
    ("evutils", "evt21"): {"order": "legacy"},
    # evutils' CSV reader takes the polarity column only under the name "p".
    ("evutils", "csv"): {"columns": "t,x,y,p"},
    # evlib's text reader takes "t x y p" lines with t in seconds.
    ("evlib", "csv"): {"layout": "rpg"},
}

DEVIATIONS: dict[tuple[str, str], str] = {
    ("expelliarmus", "evt3"): (
        "adds 4096 µs to every later timestamp each time a TIME_LOW word is smaller than the "
        "previous one (expelliarmus issue #19): it counts TIME_LOW wraps on top of the TIME_HIGH "
        "words that already carry them, so times drift by 4096 µs per TIME_HIGH step. Measured "
        "on the Gen4.1 sample (11 TIME_HIGH steps, offsets 0..45056 µs, all multiples of 4096) "
        "and on hand-made words (TIME_LOW 100, 50, 200 -> +0, +4096, +4096). Compared: count, x, "
        "y, on exactly; t modulo 4096 exactly; the offset a non-negative, non-decreasing "
        "multiple of 4096"
    ),
    ("expelliarmus", "evt2"): (
        "never counts EVT 2.0's 34-bit time loop: past 2**34 µs times restart from 0 (events "
        "at 2**34 - 100 and 2**34 + 100 read as 2**34 - 100 and 100). Compared: exactly when "
        "all times are below 2**34, else count, x, y, on exactly and t modulo 2**34"
    ),
    ("evlib", "evt2"): (
        "counts EVT 2.0's 34-bit loop twice when time jumps over it (events at 2**34 - 50000 "
        "and 2**34 + 10048 read as 2**34 - 50000 and 2**35 + 10048; across 2**34 - 100 and "
        "2**34 + 100 it is right). Compared: exactly when all times are below 2**34, else "
        "count, x, y, on exactly and t modulo 2**34"
    ),
    ("evutils", "evt2"): (
        "keeps 4 of the 5 bits of an EXT_TRIGGER id (OpenEB's EVT2EventExtTrigger has id:5): "
        "ids 16..31 read as 0..15. Measured with ids 0..31. Compared: triggers with id & 15, "
        "events exactly"
    ),
    ("faery", "evt3"): (
        "follows TIME_HIGH only in camera-like streams: it takes a TIME_HIGH change only as a "
        "forward step of fewer than 4094 or as the wrap 4095 -> 0 (previous minus new > 4094), "
        "ignores any other change (a jump over a gap, a loop written as a drop of 2048..4094 as "
        "OpenEB counts it), and never lets time go back (a TIME_LOW below the previous one is "
        "ignored). Measured on hand-made words: TIME_HIGH 2441 -> 0 -> 786 leaves t at 10001664 "
        "where OpenEB gives 20000000; TIME_LOW 100, 50 gives 4196, 4196. Compared: exactly when "
        "the file's TIME_HIGH/TIME_LOW words stay inside that model, else count, x, y, on "
        "exactly and t non-decreasing (triggers: count, id, edge)"
    ),
    ("evt3", "evt3"): (
        "counts a 24-bit time loop only when TIME_HIGH drops by 4085 or more; OpenEB counts any "
        "drop of 2048 or more. Measured by sweeping hand-made TIME_HIGH pairs (P -> 0 counts a "
        "loop for P >= 4085 only; P -> 5 for P >= 4090). Compared: exactly when the file has no "
        "TIME_HIGH drop of 2048..4084, else count, x, y, on (triggers: id, edge) exactly and t "
        "modulo 2**24 exactly"
    ),
    ("evlib", "evt3"): (
        "counts a 24-bit time loop only when TIME_HIGH drops by 4085 or more, like evt3; OpenEB "
        "counts any drop of 2048 or more. Measured by the same sweep as for evt3. Compared: "
        "exactly when the file has no TIME_HIGH drop of 2048..4084, else count, x, y, on "
        "exactly and t modulo 2**24 exactly"
    ),
    ("evlib", "csv"): (
        "parses text times in seconds as floats and truncates to µs instead of rounding "
        "(0.000779999 s -> 779 µs, and 0.001231 s -> 1230 µs since 0.001231 * 1e6 is "
        "1230.9999...). Measured on txt/evlib_event.txt (16 of 17 times one µs low) and on "
        "aerflow's 'rpg' text. Compared: count, x, y, on exactly; t at most 1 µs below"
    ),
    ("faery", "es"): (
        "puts the origin at the top left: y = height - 1 - y on reading (and on writing). "
        "Measured on es/loris_test.es (every y flipped, t, x, on equal). Compared: y flipped "
        "back, then everything exactly"
    ),
    ("evutils", "evt3"): (
        "decodes vector words only as OpenEB's VECT_12, VECT_12, VECT_8 group: a lone VECT_8 "
        "or VECT_12 (faery's encoder writes them) is a 'malformed packet' dropped with the "
        "words after it up to a resynchronisation. Measured: VECT_BASE_X, VECT_8, VECT_12, "
        "VECT_12, ADDR_X gives no event of 4; faery's 20 M-event file gives 10,905,906. "
        "Compared: exactly when every vector word sits in such a group, else the events it "
        "returns must be, in order, a subsequence of the truth"
    ),
    ("evutils", "aedat2"): (
        "sorts AEDAT 2.0 words into events and external events by the DAVIS bits 11..10 "
        "before applying the address layout, so with layout='dvs128' every event whose y has "
        "bit 2 set (address bit 10) is returned as an external event instead. Measured on "
        "aedat2/dvs128_alex_walking_again.aedat (9349 of 19182 events). And it takes every "
        "line starting with '#' for header, ignoring '#End Of ASCII Header': a first record "
        "whose first byte is 0x23 (a DAVIS y of 140..143) is eaten with the records up to the "
        "next 0x0A byte, after which it reads records out of step (one event at y = 140 reads "
        "as none; four as one with wrong fields). Compared: for DVS128 files the events with "
        "y & 4 == 0; when the first record starts with '#' nothing is left to compare but the "
        "loss itself (fewer events than written); otherwise exactly"
    ),
}

WRITER_DEVIATIONS: dict[tuple[str, str], str] = {
    ("expelliarmus", "evt2"): (
        "its header always names a Gen3 EVK (system_ID 21, plugin hal_plugin_gen3_fx3, so "
        "640x480) and a 1970 date, whatever the events: a reader taking the sensor size from "
        "it drops the events beyond 640x480 (aerflow dropped 2406 of a 1280x720 recording's "
        "5000). And it keeps 32 bits of time: 2**34 - 100000 reads back as 2**32 - 100000. "
        "Compared: read with the true size given, then exactly; given times below 2**32 only"
    ),
    ("evutils", "evt21"): (
        "writes the 34-bit wrap as a plain TIME_HIGH drop (2**34 - 100 then 100 µs), which "
        "OpenEB's EVT 2.1 decoder counts as a loop only from the largest TIME_HIGH to 0, so "
        "the time after it reads 2**34 too early. Given times below 2**34 only"
    ),
    ("faery", "es"): (
        "writes y = height - 1 - y (its top-left origin turned into Event Stream's bottom-left "
        "one), and flips the caller's array in place while doing so (the adapter passes a "
        "copy). Measured by writing 100,000 events and reading them with aerflow and "
        "event_stream. Compared: y flipped back, then everything exactly"
    ),
}

EXCLUDED: dict[tuple[str, str, str], str] = {
    ("faery", "read", "evt21"): (
        "its EVT 2.1 decoder is a todo!() stub, and it refuses the header 'format EVT21' that "
        "OpenEB writes ('unknown version \"EVT21\"')"
    ),
    ("faery", "triggers", "aedat4"): "its Python decoder yields the event track only",
    ("faery", "write-triggers", "evt2 evt3"): (
        "its EVT encoder checks the 'triggers' array as events ('the array must have a field "
        '"x"\') and, past that, would write the events array again as triggers'
    ),
    ("evlib", "read", "dat"): (
        "takes .dat for text by its extension and fails on the header ('Invalid timestamp %')"
    ),
    ("evlib", "read", "aedat2"): (
        "reads a DAVIS AEDAT 2.0 file's addresses with another layout ('Coordinate out of "
        "bounds ... x=1349') and detects the jAER DVS128 sample as AEDAT 3.1, giving 0 events"
    ),
    ("evlib", "read", "aedat3"): "gives 0 events for an AEDAT 3.1 file of 3000 events",
    ("evlib", "read", "es"): "no Event Stream reader (it parses the file as UTF-8 text)",
    ("evlib", "read", "hdf5 chunks whose first time is 0 or below 2**18 modulo 2**32"): (
        "looks for the ECF block inside each chunk by heuristics (it takes the first 4 bytes "
        "for an HDF5 size header): a block whose first time t0 is 0 fails its check, and one "
        "whose t0 modulo 2**32 lies in 4..262143 passes it 4 bytes in, so evlib decodes from "
        "the wrong byte. Measured on files the official codec decodes exactly: t0 = 0 gives "
        "'No valid ECF header found' or events far outside the sensor, t0 = 1000 (2009 "
        "N-CARS events) 'Decoded event (1983, 143) outside declared sensor geometry'. The "
        "differential tests shift such streams by 2**20 µs. And it refuses a file written "
        "through the HDF5 filter pipeline, counting the padding of its edge chunk ('ECF "
        "decode incomplete: decoded 49152 of 40000 events')"
    ),
    ("evlib", "read", "aedat4 wider or taller than 1024"): (
        "refuses the file: 'Coordinate out of bounds at event 27: x=1024, y=269, max_x=1024, "
        "max_y=1024' for a 1280x720 recording aerflow, aedat, dv-processing and faery read"
    ),
    ("expelliarmus", "triggers", "evt3"): (
        "no triggers, and an EVT 3.0 file holding EXT_TRIGGER words stops it ('ERROR: event "
        "type not recognised: 0xa') with no events returned"
    ),
    ("expelliarmus", "write", "evt3"): (
        "Wizard.save to EVT 3.0 writes wrong timestamps (expelliarmus issue #20): of 2000 "
        "events, aerflow reads back 1999 and evt3 2000, neither with the times given"
    ),
    ("evutils", "read", "es"): "no Event Stream reader ('Could not determine the event format')",
    ("evutils", "triggers", "evt21"): (
        "takes the trigger id and edge from the 32 mask bits instead of OpenEB's id[12..8] and "
        "p[0] of the event half: every trigger reads id 0, falling (times are right)"
    ),
    ("evutils", "triggers", "aedat4"): (
        "returns 389 triggers for a file holding 40; and reading events only, it stops at the "
        "first trigger packet (a file whose first packet holds a trigger gives 0 events)"
    ),
    ("evutils", "write", "evt3"): (
        "omits TIME_LOW when only TIME_HIGH changes and the 12 low bits repeat, so OpenEB "
        "semantics (TIME_HIGH resets TIME_LOW) put the event up to 4095 µs early: aerflow, evt3 "
        "and faery read 4898816 for 4902662; evlib, which never resets TIME_LOW, reads it back"
    ),
    ("evutils", "write", "aedat4"): (
        "its description's root is <node name=\"info\"> instead of DV's <dv>: dv-processing "
        "('could not verify IOHeader contents'), aedat ('unexpected dv node tag') and faery "
        "('bad root node tag') refuse the file, aerflow finds no described event stream"
    ),
}

# Sensors larger than these are refused by the peer for that format.
_LARGEST: dict[tuple[str, str], tuple[int, int]] = {("evlib", "aedat4"): (1024, 1024)}


def reads_sensor(peer: str, fmt: str, width: int, height: int) -> bool:
    """Whether ``peer`` reads ``fmt`` files of a ``width`` x ``height`` sensor."""
    largest = _LARGEST.get((peer, fmt))
    return largest is None or (width <= largest[0] and height <= largest[1])


_MISSING = "interop peer {peer} not installed (pip install -e '.[interop]')"


def require(peer: str) -> None:
    """Skip the calling test unless ``peer`` is importable at the version measured here."""
    spec = PEERS[peer]
    try:
        installed = importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(_MISSING.format(peer=peer))
    if importlib.util.find_spec(spec.module) is None:
        pytest.skip(_MISSING.format(peer=peer))
    if installed != spec.version:
        pytest.skip(
            f"interop peer {peer} is {installed}, but tests/peers.py was measured on "
            f"{spec.version} (pip install -e '.[interop]')"
        )


_SUFFIXES = {
    "evt2": ".raw",
    "evt21": ".raw",
    "evt3": ".raw",
    "dat": ".dat",
    "aedat4": ".aedat4",
    "aedat2": ".aedat",
    "aedat3": ".aedat",
    "es": ".es",
    "csv": ".csv",
    "npy": ".npy",
    "hdf5": ".hdf5",
}


EVLIB_MISPARSED_BELOW = 1 << 18


def evlib_misparses_hdf5(events: npt.NDArray[Any], chunk: int = 16384) -> bool:
    """Whether a chunk of ``events`` written as Prophesee HDF5 starts at a time that evlib's
    block-finding heuristic misreads (:data:`EXCLUDED`)."""
    firsts = events["t"][::chunk].astype(np.uint64) % np.uint64(1 << 32)
    return bool(np.any(firsts < EVLIB_MISPARSED_BELOW))


def suffix(fmt: str, writer: str | None = None) -> str:
    """A file name suffix every peer accepts for ``fmt`` (expelliarmus insists on .raw,
    dv-processing on .aedat4); evutils chooses its encoder by suffix alone, so a file it
    writes in EVT 2.0 or 2.1 needs its own."""
    if writer == "evutils" and fmt in ("evt2", "evt21"):
        return f".{fmt}"
    return _SUFFIXES[fmt]


def readers(fmt: str) -> list[str]:
    """The peers that read ``fmt``, by name."""
    return [name for name, peer in PEERS.items() if fmt in peer.reads]


def writers(fmt: str) -> list[str]:
    """The peers that write ``fmt``, by name."""
    return [name for name, peer in PEERS.items() if fmt in peer.writes]


def trigger_readers(fmt: str) -> list[str]:
    """The peers that decode the triggers of ``fmt``, by name."""
    return [name for name, peer in PEERS.items() if fmt in peer.triggers]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _events(t: Any, x: Any, y: Any, on: Any) -> npt.NDArray[Any]:
    t = np.asarray(t)
    if t.dtype.kind == "m":  # evlib hands times over as µs durations
        t = t.astype("timedelta64[us]").astype(np.int64)
    out = np.empty(len(t), aerflow.EVENTS_DTYPE)
    if len(t) and int(np.min(t)) < 0:
        raise AssertionError(f"peer returned a negative timestamp: {int(np.min(t))}")
    out["t"] = t
    out["x"] = np.asarray(x)
    out["y"] = np.asarray(y)
    out["on"] = np.asarray(on) > 0  # evlib gives -1/+1, the others 0/1 or bools
    return out


def _triggers(t: Any, channel: Any, rising: Any) -> npt.NDArray[Any]:
    out = np.empty(len(t), aerflow.TRIGGERS_DTYPE)
    out["t"] = np.asarray(t)
    out["id"] = np.asarray(channel)
    out["rising"] = np.asarray(rising) > 0
    return out


def _concat(parts: list[npt.NDArray[Any]], dtype: Any) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else np.empty(0, dtype)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # evutils warns once per malformed word and evlib logs to stderr; neither changes results.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


_FAERY_EVT = {"evt2": "evt2", "evt3": "evt3"}


def _faery_evt(path: Path, fmt: str, width: int, height: int) -> tuple[Any, Any]:
    # faery's Python wrapper drops the triggers, so read through the decoder it wraps.
    from faery.extension import evt

    events: list[npt.NDArray[Any]] = []
    triggers: list[npt.NDArray[Any]] = []
    with evt.Decoder(path, (width, height), _FAERY_EVT[fmt]) as decoder:
        for packet in decoder:
            if "events" in packet:
                events.append(packet["events"])
            if "triggers" in packet:
                triggers.append(packet["triggers"])
    return events, triggers


def _read_faery(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    import faery

    if fmt in _FAERY_EVT:
        parts = _faery_evt(path, fmt, width, height)[0]
    elif fmt == "dat":
        # faery's wrapper refuses Event2d (type 0) files, which its decoder reads like CD ones.
        from faery.extension import dat

        with dat.Decoder(path, (width, height), None) as decoder:
            parts = [
                _events(chunk["t"], chunk["x"], chunk["y"], chunk["payload"]) for chunk in decoder
            ]
    elif fmt == "csv":
        parts = list(
            faery.events_stream_from_file(
                path,
                file_type="csv",
                dimensions_fallback=(width, height),
                csv_properties=_faery_csv_properties(path),
            )
        )
    else:
        parts = list(faery.events_stream_from_file(path))
    events = _concat([np.asarray(part) for part in parts], aerflow.EVENTS_DTYPE)
    return _events(events["t"], events["x"], events["y"], events["on"])


def _faery_csv_properties(path: Path) -> Any:
    # faery does not guess a CSV layout: describe the two this suite writes or reads, a
    # "t,x,y,on"-style header with integer µs, and headerless "t x y p" in seconds.
    from faery.file_decoder import CsvProperties

    with Path(path).open("rb") as handle:
        first = handle.readline().strip()
    properties = CsvProperties.default()
    if first[:1].isdigit():
        properties.has_header = False
        properties.separator = b"," if b"," in first else b" "
        if any(mark in first.split(properties.separator)[0] for mark in (b".", b"e", b"E")):
            properties.t_scale = 1e6
    elif b"," not in first:
        raise ValueError(f"{path}: no adapter for a CSV header line {first!r}")
    return properties


def _read_evlib(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    import evlib

    # sort=False keeps file order; evlib.load_events would sort by time.
    frame = evlib.formats.load_events(str(path), sort=False).collect()
    return _events(
        frame["t"].to_numpy(), frame["x"].to_numpy(), frame["y"].to_numpy(), frame["polarity"]
    )


def _read_expelliarmus(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    from expelliarmus import Wizard

    array = Wizard(encoding=fmt).read(path)
    if array is None:  # its C code prints the error and hands back nothing
        raise RuntimeError(f"expelliarmus could not read {path} as {fmt}")
    return _events(array["t"], array["x"], array["y"], array["p"])


def _evutils_reader(path: Path, fmt: str, width: int, height: int, triggers: bool) -> Any:
    from evutils.io import EventReader

    options: dict[str, Any] = {}
    if fmt == "aedat2":
        # evutils does not look at the header's AEChip line for the address layout.
        options["layout"] = "dvs128" if _aedat2_is_dvs128(path) else "davis"
    return EventReader(
        path, mode="all", width=width, height=height, ext_trigger=triggers, **options
    ).read_all()


def _aedat2_is_dvs128(path: Path) -> bool:
    with Path(path).open("rb") as handle:
        head = handle.read(1 << 16)
    chips = [line for line in head.split(b"\n") if line.startswith(b"# AEChip:")]
    return bool(chips) and chips[0].rstrip().endswith(b".DVS128")


def _read_evutils(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    events = _evutils_reader(path, fmt, width, height, triggers=False)
    return _events(events.t, events.x, events.y, events.p)


def _read_evt3(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    import evt3

    events = evt3.decode_file(str(path))
    return _events(events.t, events.x, events.y, events.p)


def _read_aedat(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    import aedat

    decoder = aedat.Decoder(path)
    streams = decoder.id_to_stream()
    first = min(key for key, value in streams.items() if value["type"] == "events")
    parts = [
        packet["events"]
        for packet in decoder
        if "events" in packet and packet["stream_id"] == first
    ]
    events = _concat(parts, aerflow.EVENTS_DTYPE)
    return _events(events["t"], events["x"], events["y"], events["on"])


def _read_dv(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    import dv_processing as dv

    recording = dv.io.MonoCameraRecording(str(path))
    parts = []
    while (batch := recording.getNextEventBatch()) is not None:
        parts.append(batch.numpy())
    if not parts:
        return np.empty(0, aerflow.EVENTS_DTYPE)
    events = np.concatenate(parts)
    return _events(events["timestamp"], events["x"], events["y"], events["polarity"])


def _read_event_stream(path: Path, fmt: str, width: int, height: int) -> npt.NDArray[Any]:
    import event_stream

    with event_stream.Decoder(path) as decoder:
        if decoder.type not in ("dvs", "atis"):
            raise ValueError(f"{path}: event_stream reads a {decoder.type} stream")
        atis = decoder.type == "atis"
        parts = []
        for chunk in decoder:
            if atis:
                # Change detections only, as aerflow's default atis_events="change".
                chunk = chunk[~chunk["exposure"]]
                parts.append(_events(chunk["t"], chunk["x"], chunk["y"], chunk["polarity"]))
            else:
                parts.append(_events(chunk["t"], chunk["x"], chunk["y"], chunk["on"]))
    return _concat(parts, aerflow.EVENTS_DTYPE)


_READERS: dict[str, Callable[[Path, str, int, int], npt.NDArray[Any]]] = {
    "faery": _read_faery,
    "evlib": _read_evlib,
    "expelliarmus": _read_expelliarmus,
    "evutils": _read_evutils,
    "evt3": _read_evt3,
    "aedat": _read_aedat,
    "dv-processing": _read_dv,
    "event_stream": _read_event_stream,
}


def peer_read(peer: str, path: Path, fmt: str, *, width: int, height: int) -> npt.NDArray[Any]:
    """``path`` decoded by ``peer`` as :data:`aerflow.EVENTS_DTYPE`, in file order.

    ``width``/``height`` are passed where the peer takes a sensor size (a fallback for files
    whose header has none)."""
    if fmt not in PEERS[peer].reads:
        raise ValueError(f"{peer} does not read {fmt} (reads {sorted(PEERS[peer].reads)})")
    with _quiet():
        return _READERS[peer](Path(path), fmt, width, height)


def peer_read_triggers(
    peer: str, path: Path, fmt: str, *, width: int, height: int
) -> npt.NDArray[Any] | None:
    """``path``'s external triggers decoded by ``peer`` as :data:`aerflow.TRIGGERS_DTYPE`, or
    None where the peer does not decode the triggers of ``fmt``."""
    if fmt not in PEERS[peer].triggers:
        return None
    path = Path(path)
    with _quiet():
        if peer == "faery":
            parts = _faery_evt(path, fmt, width, height)[1]
            raw = _concat(parts, [("t", "<u8"), ("source", "u1"), ("rising", "?")])
            return _triggers(raw["t"], raw["source"], raw["rising"])
        if peer == "evutils":
            _, found = _evutils_reader(path, fmt, width, height, triggers=True)
            return _triggers(found.t, found.id, found.p)
        if peer == "evt3":
            import evt3

            _, found = evt3.decode_file_with_triggers(str(path))
            return _triggers(found.timestamp, found.id, found.value)
        if peer == "aedat":
            import aedat

            parts = [packet["triggers"] for packet in aedat.Decoder(path) if "triggers" in packet]
            raw = _concat(parts, [("t", "<u8"), ("source", "u1")])
            codes = [int(code) for code in raw["source"]]
            return _dv_triggers(raw["t"], codes)
        if peer == "dv-processing":
            import dv_processing as dv

            recording = dv.io.MonoCameraRecording(str(path))
            times: list[int] = []
            codes = []
            while (
                recording.isTriggerStreamAvailable()
                and (batch := recording.getNextTriggerBatch()) is not None
            ):
                for trigger in batch:
                    times.append(trigger.timestamp)
                    codes.append(int(trigger.type))
            return _dv_triggers(np.asarray(times, np.uint64), codes)
    raise AssertionError(f"no trigger adapter for {peer}")


# DV trigger types (dv::TriggerType, the same codes aedat reports as "source") in aerflow's
# channel/edge vocabulary: channel 0 external signal, 1 external generator, 2 frame,
# 3 exposure, 4 external pulse (one edge, rising), 5 timestamp reset (rising).
_DV_TRIGGER_TYPES: dict[int, tuple[int, bool]] = {
    0: (5, True),  # TIMESTAMP_RESET
    1: (0, True),  # EXTERNAL_SIGNAL_RISING_EDGE
    2: (0, False),  # EXTERNAL_SIGNAL_FALLING_EDGE
    3: (4, True),  # EXTERNAL_SIGNAL_PULSE
    4: (1, True),  # EXTERNAL_GENERATOR_RISING_EDGE
    5: (1, False),  # EXTERNAL_GENERATOR_FALLING_EDGE
    6: (2, True),  # APS_FRAME_START
    7: (2, False),  # APS_FRAME_END
    8: (3, True),  # APS_EXPOSURE_START
    9: (3, False),  # APS_EXPOSURE_END
}


def _dv_triggers(times: Any, codes: list[int]) -> npt.NDArray[Any]:
    pairs = [_DV_TRIGGER_TYPES[code] for code in codes]
    return _triggers(
        np.asarray(times, np.uint64),
        np.asarray([channel for channel, _ in pairs], np.uint8),
        np.asarray([rising for _, rising in pairs], bool),
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def peer_write(
    peer: str,
    path: Path,
    fmt: str,
    events: npt.NDArray[Any],
    *,
    width: int,
    height: int,
    triggers: npt.NDArray[Any] | None = None,
) -> None:
    """Write ``events`` (and ``triggers`` where the peer writes those of ``fmt``) to ``path``
    with ``peer``, absolute times kept (no zeroing of t0)."""
    spec = PEERS[peer]
    if fmt not in spec.writes:
        raise ValueError(f"{peer} does not write {fmt} (writes {sorted(spec.writes)})")
    if triggers is not None and len(triggers) and fmt not in spec.writes_triggers:
        raise ValueError(f"{peer} does not write the triggers of {fmt}")
    path = Path(path)
    events = np.ascontiguousarray(events, aerflow.EVENTS_DTYPE)
    with _quiet():
        _WRITERS[peer](path, fmt, events, width, height, triggers)


def _write_faery(path: Path, fmt: str, events: Any, width: int, height: int, triggers: Any) -> None:
    import faery

    if fmt in ("evt2", "evt3"):
        # The encoder faery's to_file drives, without its per-chunk Python loop: the bytes are
        # the same (compared on 20 M events), 4x faster.
        from faery.extension import evt

        with evt.Encoder(path, fmt, False, (width, height), True) as encoder:
            encoder.write({"events": events})
        return
    # A copy: for Event Stream files faery flips y in the array it is given.
    stream = faery.events_stream_from_array(events.copy(), (width, height))
    version = "dat2" if fmt == "dat" else None
    file_type = "csv" if fmt == "csv" else None
    stream.to_file(path, version=version, zero_t0=False, file_type=file_type)


def _write_expelliarmus(
    path: Path, fmt: str, events: Any, width: int, height: int, triggers: Any
) -> None:
    from expelliarmus import Wizard

    layout = np.dtype(
        {
            "names": ["t", "x", "y", "p"],
            "formats": ["<i8", "<i2", "<i2", "u1"],
            "offsets": [0, 8, 10, 12],
            "itemsize": 16,
        }
    )
    array = np.zeros(len(events), layout)
    array["t"], array["x"], array["y"], array["p"] = (
        events["t"],
        events["x"],
        events["y"],
        events["on"],
    )
    Wizard(encoding=fmt).save(path, array)


def _write_evlib(path: Path, fmt: str, events: Any, width: int, height: int, triggers: Any) -> None:
    import evlib

    # evlib's text is "t x y p" with t in seconds (float) and p as -1/+1.
    evlib.save_events_to_text(
        events["x"].astype(np.int64),
        events["y"].astype(np.int64),
        events["t"].astype(np.float64) / 1e6,
        np.where(events["on"], 1, -1).astype(np.int64),
        str(path),
    )


def _write_evutils(
    path: Path, fmt: str, events: Any, width: int, height: int, triggers: Any
) -> None:
    from evutils.io import EventWriter
    from evutils.types import EventArray

    if path.suffix != suffix(fmt, "evutils"):
        raise ValueError(f"evutils needs the suffix {suffix(fmt, 'evutils')} to write {fmt}")
    # Its native encoders read the columns as dense buffers: strided views come out garbled.
    columns = EventArray(
        t=np.ascontiguousarray(events["t"], np.int64),
        x=np.ascontiguousarray(events["x"]),
        y=np.ascontiguousarray(events["y"]),
        p=np.ascontiguousarray(events["on"], np.uint8),
    )
    writer = EventWriter(path, width=width, height=height)
    try:
        writer.write(columns)
    finally:
        writer.close()


def _write_dv(path: Path, fmt: str, events: Any, width: int, height: int, triggers: Any) -> None:
    import dv_processing as dv

    config = dv.io.MonoCameraWriter.EventOnlyConfig("aerflow-interop", (width, height))
    if triggers is not None and len(triggers):
        config.addTriggerStream()
    writer = dv.io.MonoCameraWriter(str(path), config)
    store = dv.EventStore()
    for t, x, y, on in zip(
        events["t"].tolist(),
        events["x"].tolist(),
        events["y"].tolist(),
        events["on"].tolist(),
        strict=True,
    ):
        store.push_back(t, x, y, on)
    writer.writeEvents(store)
    if triggers is not None and len(triggers):
        codes = {value: code for code, value in _DV_TRIGGER_TYPES.items()}
        packet = dv.TriggerPacket()
        for t, channel, rising in zip(
            triggers["t"].tolist(),
            triggers["id"].tolist(),
            triggers["rising"].tolist(),
            strict=True,
        ):
            packet.elements.append(dv.Trigger(t, dv.TriggerType(codes[(channel, rising)])))
        writer.writeTriggerPacket(packet)
    del writer  # the file is completed when the writer is destroyed


def _write_event_stream(
    path: Path, fmt: str, events: Any, width: int, height: int, triggers: Any
) -> None:
    import event_stream

    chunk = np.zeros(len(events), event_stream.dvs_dtype)
    chunk["t"], chunk["x"], chunk["y"], chunk["on"] = (
        events["t"],
        events["x"],
        events["y"],
        events["on"],
    )
    with event_stream.Encoder(path, "dvs", width, height) as encoder:
        encoder.write(chunk)


_WRITERS: dict[str, Callable[[Path, str, Any, int, int, Any], None]] = {
    "faery": _write_faery,
    "expelliarmus": _write_expelliarmus,
    "evlib": _write_evlib,
    "evutils": _write_evutils,
    "dv-processing": _write_dv,
    "event_stream": _write_event_stream,
}


# --------------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------------

_FIELDS = ("t", "x", "y", "on")


def assert_same_events(
    got: npt.NDArray[Any], expected: npt.NDArray[Any], what: str, fields: tuple[str, ...] = _FIELDS
) -> None:
    """Same count and, field by field, the same values in the same order."""
    assert got.dtype == aerflow.EVENTS_DTYPE, f"{what}: dtype {got.dtype}"
    assert len(got) == len(expected), f"{what}: {len(got)} events, expected {len(expected)}"
    for name in fields:
        same = got[name] == expected[name]
        if not same.all():
            index = int(np.flatnonzero(~same)[0])
            lo = max(index - 2, 0)
            raise AssertionError(
                f"{what}: field {name} differs at {int((~same).sum())} of {len(got)} events, "
                f"first at {index}: got {got[lo : index + 3].tolist()}, "
                f"expected {expected[lo : index + 3].tolist()}"
            )


def assert_same_triggers(got: npt.NDArray[Any], expected: npt.NDArray[Any], what: str) -> None:
    assert got.dtype == aerflow.TRIGGERS_DTYPE, f"{what}: dtype {got.dtype}"
    assert got.tolist() == expected.tolist(), (
        f"{what}: got {got[:8].tolist()} ({len(got)}), expected {expected[:8].tolist()} "
        f"({len(expected)})"
    )


def _raw_words(path: Path, dtype: str) -> npt.NDArray[Any]:
    """The words after a Prophesee RAW header (lines starting with '%'), parsed here rather
    than by aerflow so the deviation checks do not lean on the code under test."""
    data = Path(path).read_bytes()
    offset = 0
    while data.startswith(b"%", offset):
        end = data.find(b"\n", offset)
        if end < 0:
            return np.empty(0, dtype)
        line = data[offset:end]
        offset = end + 1
        if line.rstrip() == b"% end":
            break
    size = np.dtype(dtype).itemsize
    count = (len(data) - offset) // size
    return np.frombuffer(data, dtype, count=count, offset=offset)


def _evt3_time_words(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    words = _raw_words(path, "<u2")
    kinds = words >> 12
    keep = (kinds == 0x8) | (kinds == 0x6)
    return kinds[keep].astype(np.int64), (words[keep] & 0xFFF).astype(np.int64)


def _time_high_steps(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Consecutive distinct TIME_HIGH values (previous, new) in file order."""
    kinds, values = _evt3_time_words(path)
    highs = values[kinds == 0x8]
    change = np.flatnonzero(highs[1:] != highs[:-1])
    return highs[change], highs[change + 1]


def _faery_follows(path: Path) -> bool:
    kinds, values = _evt3_time_words(path)
    highs = values[kinds == 0x8]
    # faery starts from TIME_HIGH 0, so the first value is a step from 0 too.
    previous = np.concatenate(([0], highs[:-1]))
    changed = highs != previous
    step_ok = ((highs > previous) & (highs - previous < 4094)) | (previous - highs > 4094)
    if not step_ok[changed].all():
        return False
    # TIME_LOW going back under the same TIME_HIGH: faery keeps the earlier time.
    high_index = np.cumsum(kinds == 0x8)
    lows = kinds == 0x6
    low_values, low_block = values[lows], high_index[lows]
    same_block = low_block[1:] == low_block[:-1]
    return not (same_block & (low_values[1:] < low_values[:-1])).any()


def _has_openeb_only_loops(path: Path) -> bool:
    previous, new = _time_high_steps(path)
    drop = previous - new
    return bool(((drop >= 2048) & (drop < 4085)).any())


def _check_partial(got: Any, truth: Any, what: str, reason: str) -> None:
    assert_same_events(got, truth, f"{what} [{reason}; t not compared]", ("x", "y", "on"))


def _crosses(truth: Any, bits: int) -> bool:
    return bool(len(truth)) and int(truth["t"].max()) >> bits > 0


def _check_t_modulo(got: Any, truth: Any, bits: int, what: str) -> None:
    low = np.uint64((1 << bits) - 1)
    same = (got["t"] & low) == (truth["t"] & low)
    assert same.all(), (
        f"{what}: t differs below bit {bits} at {int((~same).sum())} of {len(got)}, first at "
        f"{int(np.flatnonzero(~same)[0])}: {got[~same][:3].tolist()} vs {truth[~same][:3].tolist()}"
    )


def _fields_but_t(got: Any, truth: Any, what: str) -> None:
    """Triggers: count, id and edge exactly."""
    assert len(got) == len(truth), f"{what}: {len(got)} triggers, expected {len(truth)}"
    same = (got["id"] == truth["id"]) & (got["rising"] == truth["rising"])
    assert same.all(), f"{what}: {got[~same][:4].tolist()} vs {truth[~same][:4].tolist()}"


def _check_expelliarmus_evt3(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    _check_partial(got, truth, what, "expelliarmus evt3 deviation")
    offset = got["t"].astype(np.int64) - truth["t"].astype(np.int64)
    assert (offset % 4096 == 0).all(), (
        f"{what}: expelliarmus' t differs from the truth by other than multiples of 4096 µs "
        f"(the deviation leaves t modulo 4096 intact): {np.unique(offset % 4096)[:8]}"
    )
    grows = bool((offset >= 0).all()) and bool((np.diff(offset) >= 0).all())
    assert grows, f"{what}: expelliarmus' extra time should only grow: {np.unique(offset)[:8]}"


def _check_faery_evt3(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    if _faery_follows(ctx["path"]):
        same = assert_same_triggers if ctx["triggers"] else assert_same_events
        same(got, truth, f"{what} [camera-like TIME_HIGH: exact]")
        return
    reason = "faery evt3 deviation: TIME_HIGH changes it ignores; t not compared"
    if ctx["triggers"]:
        _fields_but_t(got, truth, f"{what} [{reason}]")
    else:
        _check_partial(got, truth, what, "faery evt3 deviation: TIME_HIGH changes it ignores")
    assert (np.diff(got["t"].astype(np.int64)) >= 0).all(), f"{what}: faery's t goes back"


def _check_loop_threshold(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    if not _has_openeb_only_loops(ctx["path"]):
        same = assert_same_triggers if ctx["triggers"] else assert_same_events
        same(got, truth, f"{what} [no TIME_HIGH drop of 2048..4084: exact]")
        return
    what = f"{what} [loops counted only on drops >= 4085: t modulo 2**24]"
    if ctx["triggers"]:
        _fields_but_t(got, truth, what)
    else:
        assert_same_events(got, truth, what, ("x", "y", "on"))
    _check_t_modulo(got, truth, 24, what)


def _check_evt2_loop(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    if not _crosses(truth, 34):
        assert_same_events(got, truth, f"{what} [all times below 2**34: exact]")
        return
    what = f"{what} [34-bit loop deviation: t modulo 2**34]"
    assert_same_events(got, truth, what, ("x", "y", "on"))
    _check_t_modulo(got, truth, 34, what)


def _check_evutils_evt2(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    if not ctx["triggers"]:
        assert_same_events(got, truth, f"{what} [events: exact]")
        return
    narrowed = truth.copy()
    narrowed["id"] &= 0xF
    assert_same_triggers(got, narrowed, f"{what} [evutils keeps 4 of the 5 id bits]")


def _openeb_vector_groups(path: Path) -> bool:
    kinds = _raw_words(path, "<u2") >> 12
    twelve = np.flatnonzero(kinds == 0x4)
    eight = np.flatnonzero(kinds == 0x5)
    heads = twelve[np.isin(twelve + 1, twelve) & np.isin(twelve + 2, eight)]
    covered = np.concatenate((heads, heads + 1, heads + 2))
    return bool(np.isin(twelve, covered).all() and np.isin(eight, covered).all())


def _check_evutils_evt3(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    if ctx["triggers"] or _openeb_vector_groups(ctx["path"]):
        same = assert_same_triggers if ctx["triggers"] else assert_same_events
        same(got, truth, f"{what} [OpenEB vector groups only: exact]")
        return
    reason = "evutils drops lone vector words: its events must be a subsequence of the truth"
    assert len(got) <= len(truth), f"{what} [{reason}]: {len(got)} > {len(truth)} events"
    wanted = truth.tolist()
    position = 0
    for index, event in enumerate(got.tolist()):
        while position < len(wanted) and wanted[position] != event:
            position += 1
        assert position < len(wanted), f"{what} [{reason}]: event {index} {event} out of order"
        position += 1


def _check_evlib_csv(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    _check_partial(got, truth, what, "evlib truncates seconds to µs")
    short = truth["t"].astype(np.int64) - got["t"].astype(np.int64)
    bad = (short < 0) | (short > 1)
    assert not bad.any(), f"{what}: t off by more than the truncated µs: {np.unique(short)[:8]}"


def _flip_y(events: Any, height: int) -> Any:
    flipped = events.copy()
    flipped["y"] = height - 1 - flipped["y"].astype(np.int64)
    return flipped


def _check_faery_es(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    assert_same_events(_flip_y(got, ctx["height"]), truth, f"{what} [faery's y flipped back]")


def _first_aedat2_record_byte(path: Path) -> int | None:
    data = Path(path).read_bytes()
    marker = data.find(b"#End Of ASCII Header")
    if marker >= 0:
        start = data.find(b"\n", marker) + 1
    else:  # older jAER files end the header with its last '#' line
        start = 0
        while data.startswith(b"#", start) and (end := data.find(b"\n", start)) >= 0:
            start = end + 1
    return data[start] if 0 < start < len(data) else None


def _check_evutils_aedat2(got: Any, truth: Any, what: str, ctx: dict[str, Any]) -> None:
    if _aedat2_is_dvs128(ctx["path"]):
        truth = truth[(truth["y"] & 4) == 0]
        what = f"{what} [DVS128: evutils keeps only y & 4 == 0]"
    if _first_aedat2_record_byte(ctx["path"]) == ord("#"):
        # Past the eaten bytes evutils reads records out of step: no field is comparable.
        reason = "first record starts with '#': evutils loses events, no field compared"
        assert len(got) < len(truth), f"{what} [{reason}]: {len(got)} of {len(truth)} events"
        return
    assert_same_events(got, truth, f"{what} [exact]")


_Check = Callable[[Any, Any, str, dict[str, Any]], None]
_CHECKS: dict[tuple[str, str], _Check] = {
    ("expelliarmus", "evt3"): _check_expelliarmus_evt3,
    ("expelliarmus", "evt2"): _check_evt2_loop,
    ("evlib", "evt2"): _check_evt2_loop,
    ("faery", "evt3"): _check_faery_evt3,
    ("evt3", "evt3"): _check_loop_threshold,
    ("evlib", "evt3"): _check_loop_threshold,
    ("evlib", "csv"): _check_evlib_csv,
    ("faery", "es"): _check_faery_es,
    ("evutils", "evt2"): _check_evutils_evt2,
    ("evutils", "evt3"): _check_evutils_evt3,
    ("evutils", "aedat2"): _check_evutils_aedat2,
}
assert _CHECKS.keys() == DEVIATIONS.keys()


def assert_peer_read(
    peer: str,
    fmt: str,
    got: npt.NDArray[Any],
    truth: npt.NDArray[Any],
    *,
    path: Path,
    width: int,
    height: int,
    what: str = "",
) -> None:
    """``got`` (``peer``'s decode of ``path``) equals ``truth`` exactly, or, for a listed
    deviation, in everything the deviation leaves intact."""
    what = what or f"{peer} reading {Path(path).name} ({fmt})"
    check = _CHECKS.get((peer, fmt))
    if check is None:
        assert_same_events(got, truth, what)
    else:
        context = {"path": Path(path), "width": width, "height": height, "triggers": False}
        check(got, truth, what, context)


# The deviations that reach triggers; the others leave them exact.
_TRIGGER_CHECKS = {("faery", "evt3"), ("evt3", "evt3"), ("evutils", "evt2"), ("evutils", "evt3")}


def assert_peer_triggers(
    peer: str, fmt: str, got: npt.NDArray[Any], truth: npt.NDArray[Any], *, path: Path
) -> None:
    """Like :func:`assert_peer_read`, for the triggers ``peer`` decoded from ``path``."""
    what = f"{peer} reading the triggers of {Path(path).name} ({fmt})"
    if (peer, fmt) in _TRIGGER_CHECKS:
        _CHECKS[peer, fmt](got, truth, what, {"path": Path(path), "triggers": True})
    else:
        assert_same_triggers(got, truth, what)


# Times a peer's writer cannot store (WRITER_DEVIATIONS says how it fails): streams given to
# it stay below.
WRITER_TIME_LIMITS: dict[tuple[str, str], int] = {
    ("expelliarmus", "evt2"): 1 << 32,
    ("evutils", "evt21"): 1 << 34,
}


def read_written(peer: str, fmt: str, path: Path, *, width: int, height: int) -> aerflow.Packet:
    """aerflow's decode (events and triggers) of the file ``peer`` wrote, given the sensor
    size only where the peer's header states a wrong one."""
    size = {"width": width, "height": height} if (peer, fmt) == ("expelliarmus", "evt2") else {}
    return aerflow.read(path, format=fmt, triggers=True, **size)


def assert_peer_written(
    peer: str,
    fmt: str,
    got: npt.NDArray[Any],
    written: npt.NDArray[Any],
    *,
    height: int,
    what: str = "",
) -> None:
    """``got`` (a decode of the file ``peer`` wrote from ``written``) holds ``written``, up to
    the peer's listed writer deviation."""
    what = what or f"aerflow reading {peer}'s {fmt}"
    if (peer, fmt) == ("faery", "es"):
        assert_same_events(_flip_y(got, height), written, f"{what} [faery's y flip undone]")
    elif (peer, fmt) == ("expelliarmus", "evt2"):
        assert_same_events(got, written, f"{what} [read with the true size]")
    elif (peer, fmt) == ("evutils", "evt21"):
        below = int(written["t"].max()) < 1 << 34 if len(written) else True
        assert below, f"{what}: evutils' EVT 2.1 writer was given times past 2**34"
        assert_same_events(got, written, f"{what} [times below 2**34: exact]")
    else:
        assert (peer, fmt) not in WRITER_DEVIATIONS, f"no check for {(peer, fmt)}"
        assert_same_events(got, written, what)
