"""Kernels run as plain Python (``aerflow._jit.interpreted``, what ``aerflow info`` does on a
small file so that it never loads numba) decode exactly what the files hold.

NumPy's scalars do not behave like numba's integers (a ``uint8`` shifted left stays 8 bits
wide in NumPy 2, numba widens it to 64), so the plain-Python run of a kernel is checked on its
own: on files drawn from the whole format notes by ``tests/strategies`` (expected content built
without aerflow), on the small shared recordings against MANIFEST.json, and through the
command line against the same command with every kernel compiled.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import aerflow
from aerflow._jit import Kernel, interpreted, is_interpreted, njit
from tests.helpers import assert_same_events, assert_same_triggers
from tests.strategies import prophesee as prophesee_spec
from tests.strategies.event_stream import EventStreamFile, event_stream_files
from tests.strategies.inivation import InivationFile, aedat2_files, aedat3_files, aedat4_files

cli_main = importlib.import_module("aerflow.cli.main")  # aerflow.cli.main is also a function

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------- #
# The mechanism                                                                                 #
# --------------------------------------------------------------------------------------------- #


@njit(nogil=True)
def _weighted(value: Any, weight: int) -> Any:
    return np.int64(value) << weight


@njit(nogil=True)
def _weighted_sum(values: Any) -> Any:
    total = 0
    for i in range(values.size):
        total += _weighted(values[i], i % 4)
    return total


@njit(nogil=True)
def _stamp(out: Any, times: Any) -> int:
    n = 0
    for i in range(times.size):
        if times[i] % 3 != 0:
            event = out[n]
            event.t = np.uint64(times[i])
            event.x = np.uint16(i)
            event.on = times[i] % 2 == 1
            n += 1
    return n


def test_a_kernel_runs_as_python_inside_interpreted_and_compiles_outside() -> None:
    values = np.arange(200, 256, dtype=np.uint8)  # widened before the shift, as numba does
    expected = sum(int(v) << (i % 4) for i, v in enumerate(values))
    fresh = Kernel(_weighted_sum.py_func, {"nogil": True})
    with interpreted():
        assert is_interpreted()
        assert fresh(values) == expected
    assert not is_interpreted()
    assert fresh._dispatcher is None  # nothing compiled, numba untouched
    assert fresh(values) == expected
    assert fresh.dispatcher().signatures  # compiled, with the callee
    assert isinstance(globals()["_weighted"], Kernel)  # the module keeps its kernels
    assert pickle.loads(pickle.dumps(_weighted_sum)) is _weighted_sum  # as functions are


def test_records_of_a_structured_array_are_written_field_by_field() -> None:
    times = np.arange(1, 40, dtype=np.uint64)
    compiled = np.zeros(len(times), aerflow.EVENTS_DTYPE)
    plain = np.zeros(len(times), aerflow.EVENTS_DTYPE)
    n_compiled = _stamp(compiled, times)
    with interpreted():
        n_plain = _stamp(plain, times)
    kept = times[times % 3 != 0]
    assert n_plain == n_compiled == len(kept)
    assert plain.tolist() == compiled.tolist()
    assert plain["t"][: len(kept)].tolist() == kept.tolist()
    assert plain["on"][: len(kept)].tolist() == (kept % 2 == 1).tolist()


# --------------------------------------------------------------------------------------------- #
# Files drawn from the format notes                                                             #
# --------------------------------------------------------------------------------------------- #


@contextmanager
def written(data: bytes, suffix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"drawn{suffix}"
        path.write_bytes(data)
        yield path


def read_interpreted(path: Path, **options: Any) -> aerflow.Packet:
    with interpreted():
        return aerflow.read(path, triggers=True, **options)


def assert_holds(packet: aerflow.Packet, events: np.ndarray, triggers: np.ndarray) -> None:
    assert_same_events(packet.events, events)
    assert_same_triggers(packet.triggers, triggers.astype(aerflow.TRIGGERS_DTYPE))


@pytest.mark.parametrize(
    "streams",
    [
        prophesee_spec.evt3_streams,
        prophesee_spec.evt2_streams,
        prophesee_spec.evt21_streams,
        prophesee_spec.dat_streams,
    ],
    ids=["evt3", "evt2", "evt21", "dat"],
)
def test_prophesee_streams_decode_alike_as_plain_python(streams: Any) -> None:
    @SETTINGS
    @given(stream=streams())
    def check(stream: prophesee_spec.Stream) -> None:
        with written(stream.data, stream.suffix) as path:
            assert_holds(read_interpreted(path), stream.events, stream.triggers)
            with interpreted(), aerflow.open(path) as reader:
                reader.parallel_min_bytes = 0  # the two-thread split of large files
                if hasattr(reader, "warm_up_words"):
                    reader.warm_up_words = 16
                assert_holds(reader.read(), stream.events, stream.triggers)

    check()


@SETTINGS
@given(f=aedat2_files())
def test_aedat2_files_decode_alike_as_plain_python(f: InivationFile) -> None:
    with written(f.data, f.suffix) as path:
        packet = read_interpreted(path, format="aedat2", **f.options)
    assert_holds(packet, f.events, f.triggers)


@SETTINGS
@given(f=aedat3_files())
def test_aedat3_files_decode_alike_as_plain_python(f: InivationFile) -> None:
    with written(f.data, f.suffix) as path:
        packet = read_interpreted(path, format="aedat3")
    assert_holds(packet, f.events, f.triggers)


@SETTINGS
@given(f=aedat4_files())
def test_aedat4_files_decode_alike_as_plain_python(f: InivationFile) -> None:
    with written(f.data, f.suffix) as path:
        packet = read_interpreted(path)
    assert_holds(packet, f.events, f.triggers)


@SETTINGS
@given(f=event_stream_files())
def test_event_stream_files_decode_alike_as_plain_python(f: EventStreamFile) -> None:
    with written(f.data, ".es") as path, interpreted():
        events = aerflow.read(path, format="es")
    assert_same_events(events, f.events())


# --------------------------------------------------------------------------------------------- #
# Small shared recordings and the command line                                                  #
# --------------------------------------------------------------------------------------------- #

SMALL = cli_main.INTERPRETED_BYTES


def small_recordings(manifest: dict[str, Any]) -> list[str]:
    names = [name for name, entry in manifest.items() if entry["bytes"] <= SMALL]
    assert len(names) >= 5, names  # DAT, EVT 3.0, ATIS .bin, Event Stream, text at least
    return names


def test_small_recordings_decode_to_the_manifest_as_plain_python(
    shared_data: Path, manifest: dict[str, Any], digest: Any
) -> None:
    for name in small_recordings(manifest):
        entry = manifest[name]
        with interpreted():
            events = aerflow.read(shared_data / name)
        compiled = aerflow.read(shared_data / name)
        assert events.tolist() == compiled.tolist(), name
        if len(events):  # generic Event Stream records are counted there, but hold no events
            assert len(events) == entry["events"], name
            assert digest(events) == entry["sha256"], name


def test_info_on_small_recordings_prints_what_the_compiled_kernels_give(
    shared_data: Path,
    manifest: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in small_recordings(manifest):
        printed = []
        for threshold in (SMALL, -1):  # interpreted, then compiled
            monkeypatch.setattr(cli_main, "INTERPRETED_BYTES", threshold)
            assert cli_main.run(["info", str(shared_data / name)]) == 0
            printed.append(capsys.readouterr().out)
        assert printed[0] == printed[1], name
        if manifest[name]["format"] != "es":
            assert f"events          {manifest[name]['events']:,}\n" in printed[0], name


def _run_without_numba(argv: list[str]) -> str:
    """The command line's ``argv`` run in a fresh process, which must not load numba; its
    standard output."""
    script = (
        "import sys\n"
        "from aerflow.cli.main import run\n"
        f"status = run({argv!r})\n"
        "sys.exit(3 if 'numba' in sys.modules else status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    return result.stdout


def test_info_on_a_small_file_never_loads_numba(shared_data: Path) -> None:
    path = shared_data / "dat" / "tonic_sample_ncars.dat"
    assert path.stat().st_size <= SMALL
    assert "events          2,009\n" in _run_without_numba(["info", str(path)])


@pytest.mark.parametrize("suffix", [".aedat4", ".es"])
def test_convert_of_small_recordings_writes_what_the_compiled_kernels_write(
    shared_data: Path,
    manifest: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    suffix: str,
) -> None:
    """``convert`` of each small recording, its kernels in plain Python, writes the same
    bytes as with compiled kernels (or fails with the same message)."""
    for name in small_recordings(manifest):
        outcomes = []
        for threshold in (SMALL, -1):  # interpreted, then compiled
            monkeypatch.setattr(cli_main, "INTERPRETED_BYTES", threshold)
            target = tmp_path / f"{threshold}{suffix}"
            status = cli_main.run(["convert", str(shared_data / name), str(target)])
            written = target.read_bytes() if target.exists() else None
            outcomes.append((status, capsys.readouterr().err, written))
            target.unlink(missing_ok=True)
        assert outcomes[0] == outcomes[1], name
        assert outcomes[0][2] is not None or outcomes[0][0] != 0, name


def test_convert_of_a_small_file_never_loads_numba(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "dat" / "tonic_sample_ncars.dat"
    assert path.stat().st_size <= SMALL
    target = tmp_path / "converted.aedat4"
    _run_without_numba(["convert", str(path), str(target)])
    assert aerflow.read(target).tolist() == aerflow.read(path).tolist()


WRITABLE = [info for info in aerflow.list_formats() if info.writer]


@pytest.mark.parametrize("info", WRITABLE, ids=[info.name for info in WRITABLE])
def test_every_writable_format_reads_back_alike_as_plain_python(info: Any) -> None:
    """A small recording of every format aerflow writes (encoders run as plain Python too)
    reads back the same with every kernel in plain Python as with every kernel compiled."""
    rng = np.random.default_rng(7)
    events = np.zeros(3000, aerflow.EVENTS_DTYPE)
    events["t"] = np.cumsum(rng.integers(0, 900, len(events))) + 1_234_567
    events["x"] = rng.integers(0, 640, len(events))
    events["y"] = rng.integers(0, 480, len(events))
    events["on"] = rng.integers(0, 2, len(events)).astype(bool)
    with tempfile.TemporaryDirectory() as folder:
        compiled_path = Path(folder) / f"compiled{info.extensions[0]}"
        plain_path = Path(folder) / f"plain{info.extensions[0]}"
        aerflow.write(compiled_path, events, format=info.name, width=640, height=480)
        with interpreted():
            aerflow.write(plain_path, events, format=info.name, width=640, height=480)
        compiled = aerflow.read(compiled_path, format=info.name)
        with interpreted():
            plain = aerflow.read(plain_path, format=info.name)
            plain_of_compiled = aerflow.read(compiled_path, format=info.name)
    assert len(compiled) == len(events)
    assert compiled.tolist() == plain.tolist() == plain_of_compiled.tolist()
