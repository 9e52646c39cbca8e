"""The format registry: detection order, writing by extension, the listing, unknown names."""

from __future__ import annotations

import inspect
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow import registry
from aerflow.components import FILTERS, SINKS, SOURCES

EVT3_HEADER = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"
EVT2_HEADER = b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n"
EVT21_HEADER = b"% format EVT21;endianness=legacy;height=720;width=1280\n% end\n"
DAT_HEADER = b"% Data file containing CD events.\n% Version 2\n% Width 304\n% Height 240\n"

# One event each, t = 5 << 12 | 3 (EVT 3.0) or 5 << 6 | 3 (EVT 2.x) or 7 (DAT), x 9, y 4, ON.
EVT3_FILE = EVT3_HEADER + struct.pack("<4H", 0x8005, 0x0004, 0x6003, 0x2809)
EVT2_FILE = EVT2_HEADER + struct.pack("<2I", 0x8 << 28 | 5, 1 << 28 | 3 << 22 | 9 << 11 | 4)
EVT21_FILE = EVT21_HEADER + struct.pack(
    "<2Q",
    0x8 << 28 | 5,
    1 << 32 | (1 << 28 | 3 << 22 | 9 << 11 | 4),  # legacy: header low
)
DAT_FILE = DAT_HEADER + bytes([0x0C, 8]) + struct.pack("<II", 7, 9 | 4 << 14 | 1 << 28)

EXPECTED = {
    "evt3": [(5 << 12 | 3, 9, 4, True)],
    "evt2": [(5 << 6 | 3, 9, 4, True)],
    "evt21": [(5 << 6 | 3, 9, 4, True)],
    "dat": [(7, 9, 4, True)],
}
FILES = {"evt3": EVT3_FILE, "evt2": EVT2_FILE, "evt21": EVT21_FILE, "dat": DAT_FILE}


def save(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- #
# Detection                                                                   #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", list(FILES))
@pytest.mark.parametrize("suffix", [".raw", ".dat", ".bin", ""])
def test_detected_by_contents_whatever_the_extension(fmt: str, suffix: str, tmp_path: Path) -> None:
    path = save(tmp_path, f"recording{suffix}", FILES[fmt])
    assert registry.detect(path).name == fmt
    with aerflow.open(path) as reader:
        assert reader.properties.format == fmt
        assert reader.read().events.tolist() == EXPECTED[fmt]


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        (b"% evt 2.0\n", "evt2"),
        (b"% evt 3.0\n", "evt3"),
        (b"% evt 2.1\n", "evt21"),
        (b"% format EVT2\n% end\n", "evt2"),
        (b"% format EVT3;height=720;width=1280\n% end\n", "evt3"),
        (b"% format EVT21;endianness=little\n% end\n", "evt21"),
        (b"% format evt21\n% end\n", "evt21"),  # the name is not case-sensitive
        (b"% format EVT3\n% evt 2.0\n% end\n", "evt3"),  # 'format' wins over 'evt'
        (b"% Date 2020-09-14 14:18:29\n% system_ID 48\n", "evt3"),  # system_ID table
        (b"% system_ID 21\n", "evt2"),
    ],
)
def test_raw_files_detected_by_header(header: bytes, fmt: str, tmp_path: Path) -> None:
    path = save(tmp_path, "recording.raw", header)
    assert registry.detect(path).name == fmt
    with aerflow.open(path) as reader:
        assert reader.properties.format == fmt


def test_explicit_format_beats_contents(tmp_path: Path) -> None:
    path = save(tmp_path, "recording.raw", EVT3_FILE)
    assert registry.detect(path, "evt2").name == "evt2"
    assert registry.detect(path, "EVT3").name == "evt3"
    # The named reader is used even though the contents say otherwise: it refuses the file.
    with pytest.raises(aerflow.NotThisFormatError):
        aerflow.read(path, format="evt2")
    assert aerflow.read(path, format="evt3").tolist() == EXPECTED["evt3"]


def test_options_another_format_takes_are_refused_with_the_format_named(tmp_path: Path) -> None:
    # A file meant as DAT, whose bytes say EVT 3.0: DAT's `layout` does not apply.
    path = save(tmp_path, "recording.dat", EVT3_FILE)
    with pytest.raises(aerflow.OptionError, match=r"evt3 reading takes no option layout") as caught:
        aerflow.open(path, layout="v2")
    assert "pass format= to choose another" in str(caught.value)
    assert "chunk_size, width, height" in str(caught.value)
    assert isinstance(caught.value, TypeError)
    with pytest.raises(
        aerflow.OptionError,
        match=r"npy writing takes no option layout; its options: width, height$",
    ):
        aerflow.open(tmp_path / "out.npy", "w", format="npy", layout="v2")


def test_contents_beat_extension(tmp_path: Path) -> None:
    raw_named_dat = save(tmp_path, "looks.dat", EVT2_FILE)
    assert registry.detect(raw_named_dat).name == "evt2"
    assert aerflow.read(raw_named_dat).tolist() == EXPECTED["evt2"]
    dat_named_raw = save(tmp_path, "looks.raw", DAT_FILE)
    assert registry.detect(dat_named_raw).name == "dat"
    assert aerflow.read(dat_named_raw).tolist() == EXPECTED["dat"]


def test_dat_renamed_to_bin_is_detected(tmp_path: Path) -> None:
    path = save(tmp_path, "renamed.bin", DAT_FILE)
    assert registry.detect(path).name == "dat"
    assert aerflow.read(path).tolist() == EXPECTED["dat"]


def test_real_file_renamed_is_detected(
    prophesee_file: str, shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / prophesee_file
    path = save(tmp_path, "renamed.bin", source.read_bytes())
    expected = registry.detect(source).name
    assert expected == ("dat" if source.suffix == ".dat" else prophesee_file.split("/")[0])
    assert registry.detect(path).name == expected


def test_extension_is_the_last_resort(tmp_path: Path) -> None:
    # No header at all: only the extension speaks, and .dat names one format.
    path = save(tmp_path, "headerless.dat", b"\x0c\x08" + b"\x00" * 16)
    assert registry.detect(path).name == "dat"
    with pytest.raises(aerflow.FormatError):
        aerflow.read(path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("mystery.xyz", b"\x00\x01\x02\x03" * 8),
        ("mystery", b"\x00\x01\x02\x03" * 8),
        ("empty.xyz", b""),
        ("ambiguous.raw", b"\x00\x80" * 8),  # .raw names three formats
        ("noencoding.raw", b"% date 2024-01-01\n% end\n" + b"\x00" * 8),
    ],
)
def test_unknown_without_magic(name: str, data: bytes, tmp_path: Path) -> None:
    path = save(tmp_path, name, data)
    with pytest.raises(aerflow.UnknownFormatError) as info:
        aerflow.read(path)
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, aerflow.AerflowError)
    with pytest.raises(aerflow.UnknownFormatError):
        registry.detect(path)


def test_unknown_format_name(tmp_path: Path) -> None:
    path = save(tmp_path, "recording.raw", EVT3_FILE)
    with pytest.raises(aerflow.UnknownFormatError, match="nope"):
        aerflow.read(path, format="nope")
    with pytest.raises(LookupError):
        aerflow.open(path, format="nope")
    with pytest.raises(LookupError):
        aerflow.write(tmp_path / "out.raw", np.zeros(1, aerflow.EVENTS_DTYPE), format="nope")
    assert not (tmp_path / "out.raw").exists()
    with pytest.raises(aerflow.UnknownFormatError):
        registry.get("nope")


def test_open_mode_must_be_r_or_w(tmp_path: Path) -> None:
    path = save(tmp_path, "recording.raw", EVT3_FILE)
    with pytest.raises(ValueError, match="mode"):
        aerflow.open(path, "a")  # type: ignore[call-overload]


# --------------------------------------------------------------------------- #
# Writing                                                                     #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("out.raw", "evt3"), ("OUT.RAW", "evt3"), ("out.dat", "dat"), ("dir.v2/out.dat", "dat")],
)
def test_for_writing_by_extension(name: str, fmt: str, tmp_path: Path) -> None:
    assert registry.for_writing(tmp_path / name).name == fmt


@pytest.mark.parametrize("fmt", list(FILES))
def test_for_writing_explicit_name(fmt: str, tmp_path: Path) -> None:
    assert registry.for_writing(tmp_path / "out.whatever", fmt).name == fmt


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.csv.gz"])
def test_for_writing_unknown_extension(name: str, tmp_path: Path) -> None:
    with pytest.raises(aerflow.UnknownFormatError):
        registry.for_writing(tmp_path / name)
    with pytest.raises(aerflow.UnknownFormatError):
        aerflow.write(tmp_path / name, np.zeros(1, aerflow.EVENTS_DTYPE))
    assert not (tmp_path / name).exists()


def test_write_raw_by_extension_gives_evt3(tmp_path: Path) -> None:
    events = np.zeros(3, aerflow.EVENTS_DTYPE)
    events["t"] = [1, 2, 3]
    events["x"] = [0, 5, 9]
    events["y"] = [1, 1, 2]
    events["on"] = [True, False, True]
    path = tmp_path / "out.raw"
    aerflow.write(path, events)
    assert b"% format EVT3;" in path.read_bytes()
    assert registry.detect(path).name == "evt3"
    assert aerflow.read(path).tolist() == events.tolist()

    dat_path = tmp_path / "out.dat"
    aerflow.write(dat_path, events)
    assert dat_path.read_bytes().startswith(b"% ")
    assert registry.detect(dat_path).name == "dat"
    assert aerflow.read(dat_path).tolist() == events.tolist()


# --------------------------------------------------------------------------- #
# The listing                                                                 #
# --------------------------------------------------------------------------- #


def test_list_formats() -> None:
    listed = {info.name: info for info in aerflow.list_formats()}
    assert {"evt3", "evt2", "evt21", "dat"} <= set(listed)
    for name in ("evt3", "evt2", "evt21"):
        assert listed[name].extensions == (".raw",)
    assert listed["dat"].extensions == (".dat",)
    assert [
        i.name for i in aerflow.list_formats() if ".raw" in i.extensions and i.default_for_extension
    ] == ["evt3"]
    for name in ("evt3", "evt2", "evt21", "dat"):
        info = listed[name]
        assert isinstance(info, aerflow.FormatInfo)
        assert info.description
        assert info.reader is not None
        assert info.writer is not None
        read_options = {option.name: option for option in info.read_options}
        write_options = {option.name: option for option in info.write_options}
        assert {"chunk_size", "width", "height"} <= set(read_options)
        assert {"width", "height", "time_origin"} <= set(write_options)
        assert read_options["chunk_size"].type is int
    evt21_read = {option.name: option for option in listed["evt21"].read_options}
    evt21_write = {option.name: option for option in listed["evt21"].write_options}
    assert evt21_read["order"].choices == ("little", "legacy")
    assert evt21_write["order"].choices == ("little", "legacy")
    assert evt21_write["order"].default == "little"
    dat_write = {option.name: option for option in listed["dat"].write_options}
    assert dat_write["kind"].choices == ("cd", "trigger")
    assert dat_write["kind"].default == "cd"
    dat_read = {option.name: option for option in listed["dat"].read_options}
    assert dat_read["layout"].choices == ("v1", "v2")


def test_listed_options_are_accepted(tmp_path: Path) -> None:
    """Every listed option name is a keyword the reader or writer takes."""
    events = np.zeros(1, aerflow.EVENTS_DTYPE)
    for info in aerflow.list_formats():
        if info.name not in FILES:
            continue
        path = save(tmp_path, f"in-{info.name}", FILES[info.name])
        values: dict[str, Any] = {
            "chunk_size": 8192,
            "threads": 2,
            "width": 1280,
            "height": 720,
            "order": "legacy",
            "layout": "v2",
        }
        read_options = {option.name: values[option.name] for option in info.read_options}
        with aerflow.open(path, format=info.name, **read_options) as reader:
            assert reader.properties.sensor_size == (1280, 720)
        write_values: dict[str, Any] = {
            "width": 4,
            "height": 4,
            "time_origin": 0,
            "order": "little",
            "kind": "cd",
            "metadata": {"serial": "x"},
        }
        write_options = {option.name: write_values[option.name] for option in info.write_options}
        out = tmp_path / f"out-{info.name}"
        aerflow.write(out, events, format=info.name, **write_options)
        assert aerflow.read(out, format=info.name).tolist() == events.tolist()


def test_listing_does_not_need_the_kernels() -> None:
    """Format information is plain data: its reader and writer are named, not imported."""
    for info in aerflow.list_formats():
        for reference in (info.reader, info.writer):
            if reference is not None:
                module, _, attribute = reference.partition(":")
                assert module.startswith("aerflow.")
                assert attribute


# Constructor keywords that only Python callers pass (a dict has no command-line form).
PYTHON_ONLY = {"metadata"}
# Accepted so that any writer takes a sensor size, and not stored (a .npy has no place).
IGNORED = {("npy", "write"): {"width", "height"}}


def _keywords(function: Any) -> tuple[set[str], bool]:
    signature = inspect.signature(function)
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = {n for n, p in signature.parameters.items() if p.kind in kinds}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    return names - {"self", "path", "properties"}, takes_any


@pytest.mark.parametrize("info", aerflow.list_formats(), ids=lambda info: info.name)
def test_declared_format_options_are_what_the_classes_take(info: Any) -> None:
    """The registry's options (from which the CLI, its help and `aerflow formats` are made)
    and the constructors agree: no declared option the class refuses, no keyword the
    declaration forgets."""
    for mode, declared in (("read", info.read_options), ("write", info.write_options)):
        if not (info.reader if mode == "read" else info.writer):
            continue
        cls = info.reader_class() if mode == "read" else info.writer_class()
        taken, takes_any = _keywords(cls.__init__)
        names = {o.name for o in declared}
        assert takes_any or names <= taken, (mode, sorted(names - taken))
        assert taken - names <= PYTHON_ONLY | IGNORED.get((info.name, mode), set()), (
            mode,
            sorted(taken - names),
        )


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (k, n)
        for k, table in (("source", SOURCES), ("filter", FILTERS), ("sink", SINKS))
        for n in table
    ],
)
def test_declared_component_options_are_what_the_builders_take(kind: str, name: str) -> None:
    table = {"source": SOURCES, "filter": FILTERS, "sink": SINKS}[kind]
    component = table[name]
    taken, takes_any = _keywords(component.build)
    names = {o.name for o in component.all_options()}
    assert takes_any or names <= taken, sorted(names - taken)
    required = {
        n
        for n, p in inspect.signature(component.build).parameters.items()
        if n in taken and p.default is inspect.Parameter.empty
    }
    assert required <= names, sorted(required - names)


WRITABLE = [info for info in aerflow.list_formats() if info.writer]


@pytest.mark.parametrize("info", WRITABLE, ids=lambda info: info.name)
def test_declared_options_refuse_as_open_does(info: Any, tmp_path: Path) -> None:
    """``FormatInfo.check_options`` (the declaration) refuses an option with the very words
    ``aerflow.open`` (the constructors) uses: writing, reading a named format and reading a
    format found from the file."""
    path = tmp_path / f"x{info.extensions[0]}"

    def refusal(call: Any, *args: Any, **options: Any) -> str:
        with pytest.raises(aerflow.OptionError) as caught:
            call(*args, **options)
        return str(caught.value)

    assert refusal(aerflow.open, path, "w", format=info.name, bogus=1) == refusal(
        info.check_options, "w", {"bogus": 1}, path
    )
    events = np.zeros(2, aerflow.EVENTS_DTYPE)
    events["t"] = [1, 2]
    aerflow.write(path, events, format=info.name, width=4, height=4)
    for named in (info.name, None):
        found = registry.detect(path, named)
        message = refusal(found.check_options, "r", {"bogus": 1}, path, named is None)
        assert refusal(aerflow.open, path, format=named, bogus=1) == message
        assert message.startswith(f"{path}: {found.name} reading takes no option bogus; ")
    declared = [o.name for o in info.write_options]
    assert declared  # every writer declares what it takes
    info.check_options("w", dict.fromkeys(declared))  # every declared option passes


def test_python_only_options_are_declared_but_not_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from aerflow.cli.main import run

    evt3 = registry.get("evt3")
    metadata = {o.name: o for o in evt3.write_options}["metadata"]
    assert not metadata.command_line
    evt3.check_options("w", {"metadata": {"serial": "1"}})
    with pytest.raises(SystemExit):
        run(["input", "synthetic", "output", "file", "x.raw", "--help"])
    text = capsys.readouterr().out
    assert "--time-origin" in text
    assert "--metadata" not in text
