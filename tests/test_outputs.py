"""Never destroy what is not ours: every writer and sink opens its output by one policy.

Targets are made inside the test's own folder: a FIFO, a symbolic link, a file with mode
640, a hard-linked file, a directory, a UNIX socket and a character device made with
``os.mknod`` (the null device's numbers, so writes go nowhere; never the real /dev/null).
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.render.video import FramesSink
from aerflow.synthetic import SyntheticSensor

from .helpers import assert_same_events

WRITERS = [f.name for f in aerflow.list_formats() if f.writer]
SIZE = (64, 48)


def events() -> np.ndarray:
    return SyntheticSensor(*SIZE, rate=100_000, duration="20ms", seed=3).read().events


def write(path: Path | str, fmt: str, **options: object) -> None:
    taken = {o.name for o in aerflow.registry.get(fmt).write_options}
    sizes = {"width": SIZE[0], "height": SIZE[1]} if "width" in taken else {}
    aerflow.write(path, events(), format=fmt, **sizes, **options)  # type: ignore[arg-type]


def suffix(fmt: str) -> str:
    info = aerflow.registry.get(fmt)
    return info.extensions[0] if info.extensions else ".bin"


def listing(folder: Path) -> dict[str, str]:
    """Each entry of the folder and what kind of thing it is."""
    kinds = {stat.S_ISREG: "file", stat.S_ISFIFO: "fifo", stat.S_ISCHR: "chr"}
    out = {}
    for entry in folder.iterdir():
        mode = entry.lstat().st_mode
        kind = "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "other"
        for test, name in kinds.items():
            if test(mode):
                kind = name
        out[entry.name] = kind
    return out


@contextmanager
def drained(reader: Callable[[], bytes]) -> Iterator[list[bytes]]:
    """Run ``reader`` on a thread while the body writes; its bytes land in the list."""
    received: list[bytes] = []
    thread = threading.Thread(target=lambda: received.append(reader()), daemon=True)
    thread.start()
    try:
        yield received
    finally:
        thread.join(30)
    assert not thread.is_alive(), "the reader never saw the end of the data"


@pytest.mark.parametrize("fmt", WRITERS)
def test_fifo_reader_gets_the_data_and_the_fifo_stays(fmt: str, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def read_all() -> bytes:
        with open(fifo, "rb") as handle:
            return handle.read()

    with drained(read_all) as received:
        write(fifo, fmt)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    copy = tmp_path / f"copy{suffix(fmt)}"
    copy.write_bytes(received[0])
    assert_same_events(aerflow.read(copy, format=fmt), events())
    assert listing(tmp_path) == {"pipe": "fifo", copy.name: "file"}


@pytest.mark.parametrize("fmt", ["evt3", "aedat4", "npy"])
def test_unix_socket_gets_the_data(fmt: str, tmp_path: Path) -> None:
    address = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(address))
    server.listen(1)

    def read_all() -> bytes:
        connection, _ = server.accept()
        with connection, connection.makefile("rb") as handle:
            return handle.read()

    try:
        with drained(read_all) as received:
            write(address, fmt)
    finally:
        server.close()
    assert stat.S_ISSOCK(address.lstat().st_mode)
    copy = tmp_path / f"copy{suffix(fmt)}"
    copy.write_bytes(received[0])
    assert_same_events(aerflow.read(copy, format=fmt), events())


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
@pytest.mark.parametrize("fmt", ["csv", "evt2", "aedat4"])
def test_character_device_is_written_not_replaced(fmt: str, tmp_path: Path) -> None:
    device = tmp_path / f"null{suffix(fmt)}"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    before = device.lstat()
    write(device, fmt)
    after = device.lstat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert listing(tmp_path) == {device.name: "chr"}


@pytest.mark.parametrize("fmt", ["evt3", "csv", "npy", "aedat4"])
def test_symlink_target_is_replaced_and_the_link_stays(fmt: str, tmp_path: Path) -> None:
    target = tmp_path / f"target{suffix(fmt)}"
    target.write_bytes(b"old")
    link = tmp_path / f"link{suffix(fmt)}"
    link.symlink_to(target.name)
    write(link, fmt)
    assert link.is_symlink()
    assert os.readlink(link) == target.name
    assert_same_events(aerflow.read(target, format=fmt), events())
    assert listing(tmp_path) == {target.name: "file", link.name: "link"}


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.raw"
    link.symlink_to("made.raw")
    write(link, "evt2")
    assert link.is_symlink()
    assert_same_events(aerflow.read(tmp_path / "made.raw"), events())


@pytest.mark.parametrize("fmt", ["evt2", "dat", "csv", "npz"])
def test_mode_of_an_existing_file_survives(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"kept{suffix(fmt)}"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write(path, fmt)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert_same_events(aerflow.read(path, format=fmt), events())


def test_new_file_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write(tmp_path / "new.raw", "evt3")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.raw").stat().st_mode) == 0o640


def test_hard_link_is_refused_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "shared.raw"
    path.write_bytes(b"old")
    other = tmp_path / "other.raw"
    os.link(path, other)
    with pytest.raises(aerflow.OutputError, match="hard link"):
        write(path, "evt2")
    assert path.read_bytes() == other.read_bytes() == b"old"
    assert listing(tmp_path) == {"shared.raw": "file", "other.raw": "file"}
    write(path, "evt2", break_hard_links=True)
    assert_same_events(aerflow.read(path), events())
    assert other.read_bytes() == b"old"


@pytest.mark.parametrize("fmt", ["evt3", "csv"])
def test_directory_is_a_clear_error(fmt: str, tmp_path: Path) -> None:
    folder = tmp_path / f"folder{suffix(fmt)}"
    folder.mkdir()
    with pytest.raises(aerflow.OutputError, match="is a directory"):
        write(folder, fmt)
    assert list(folder.iterdir()) == []


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "keep.raw"
    path.write_bytes(b"old")
    writer = aerflow.open(path, "w", width=64, height=48)
    writer.write(events())
    writer.__exit__(RuntimeError, RuntimeError("stop"), None)
    assert path.read_bytes() == b"old"
    assert listing(tmp_path) == {"keep.raw": "file"}


@pytest.mark.parametrize("fmt", ["csv", "evt2", "npy"])
def test_dash_is_standard_output(fmt: str, tmp_path: Path) -> None:
    code = (
        "import aerflow; from aerflow.synthetic import SyntheticSensor; "
        f"e = SyntheticSensor({SIZE[0]}, {SIZE[1]}, rate=100_000, duration='20ms', seed=3)"
        f".read().events; aerflow.write('-', e, format={fmt!r}, width={SIZE[0]}, "
        f"height={SIZE[1]})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=120, check=True, cwd=tmp_path
    )
    copy = tmp_path / f"copy{suffix(fmt)}"
    copy.write_bytes(result.stdout)
    assert_same_events(aerflow.read(copy, format=fmt), events())
    assert listing(tmp_path) == {copy.name: "file"}


def test_cli_convert_through_a_symlink_to_a_pipe(tmp_path: Path) -> None:
    """`convert rec.raw LINK --to csv` where LINK points at a FIFO (as /dev/stdout points at
    a pipe): the reader gets the CSV, the link and the FIFO stay."""
    source = tmp_path / "rec.raw"
    write(source, "evt3")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out"
    link.symlink_to(fifo)

    def read_all() -> bytes:
        with open(fifo, "rb") as handle:
            return handle.read()

    with drained(read_all) as received:
        subprocess.run(
            [sys.executable, "-m", "aerflow", "convert", str(source), str(link), "--to", "csv"],
            check=True,
            timeout=120,
            capture_output=True,
        )
    assert received[0].startswith(b"t,x,y,on\n")
    assert received[0].count(b"\n") == len(events()) + 1
    assert listing(tmp_path) == {"rec.raw": "file", "pipe": "fifo", "out": "link"}


# -- the frames sink --------------------------------------------------------------------------


def frames(directory: Path, **options: object) -> FramesSink:
    return FramesSink(directory, *SIZE, fps=200, **options)  # type: ignore[arg-type]


def test_frames_are_whole_pngs_and_abort_removes_only_ours(tmp_path: Path) -> None:
    mine = tmp_path / "notes.png"
    mine.write_bytes(b"the user's picture")
    sink = frames(tmp_path)
    sink.write(events())
    sink.abort()
    assert listing(tmp_path) == {"notes.png": "file"}
    assert mine.read_bytes() == b"the user's picture"


def test_frames_folder_with_old_frames_is_refused_or_overwritten(tmp_path: Path) -> None:
    with frames(tmp_path) as sink:
        sink.write(events())
    first = sorted(p.name for p in tmp_path.iterdir())
    assert len(first) >= 3
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in tmp_path.iterdir())
    with pytest.raises(aerflow.OutputError, match="already holds"):
        frames(tmp_path)
    (tmp_path / "notes.txt").write_text("kept")
    with frames(tmp_path, overwrite=True) as sink:
        sink.write(events()[: len(events()) // 2])
    second = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png")
    assert len(second) < len(first)
    assert (tmp_path / "notes.txt").read_text() == "kept"


@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize("how", ["close", "abort", "with"])
def test_every_writer_refuses_writes_after_closing(fmt: str, how: str, tmp_path: Path) -> None:
    path = tmp_path / f"out{suffix(fmt)}"
    taken = {o.name for o in aerflow.registry.get(fmt).write_options}
    sizes = {"width": SIZE[0], "height": SIZE[1]} if "width" in taken else {}
    with aerflow.open(path, "w", format=fmt, **sizes) as writer:
        writer.write(events())
        if how == "close":
            writer.close()
        elif how == "abort":
            writer.abort()
    with pytest.raises(ValueError, match="closed writer"):
        writer.write(events())
    if how == "abort":
        assert list(tmp_path.iterdir()) == []
    else:
        assert_same_events(aerflow.read(path, format=fmt), events())


@pytest.mark.parametrize("fmt", WRITERS)
def test_writing_never_changes_the_process_umask(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting the umask to read it would, for a moment, give files other threads create
    the mode 0o666: a writer never calls os.umask, and its file still follows the umask."""
    calls: list[int] = []
    real_umask = os.umask
    previous = real_umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o027)
        path = tmp_path / f"new{suffix(fmt)}"
        write(path, fmt)
    finally:
        monkeypatch.undo()
        real_umask(previous)
    assert calls == []
    if path.is_file():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_writer_interrupted_while_it_opens_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or any error) after the temporary file exists but before the writer is made:
    the temporary file goes, an existing destination stays as it was."""
    from aerflow.formats.aedat4_writer import Aedat4Writer

    def interrupted(self: object, full: bool = False) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(Aedat4Writer, "_description", interrupted)
    target = tmp_path / "keep.aedat4"
    target.write_bytes(b"the user's data")
    with pytest.raises(KeyboardInterrupt):
        aerflow.open(target, "w", width=8, height=8)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.aedat4"]
    assert target.read_bytes() == b"the user's data"


def test_an_output_dropped_unfinished_takes_its_temporary_file_away(tmp_path: Path) -> None:
    """Neither committed nor discarded (its owner lost on an error): the temporary file goes
    when the output is collected, and at exit when it is still referenced then."""
    from aerflow._output import Output

    output = Output(tmp_path / "dropped.bin")
    output.file.write(b"half")
    assert len(list(tmp_path.iterdir())) == 1
    del output
    gc.collect()
    assert list(tmp_path.iterdir()) == []
    script = (
        "import sys\n"
        "from aerflow._output import Output\n"
        "kept = [Output(sys.argv[1])]\n"
        "kept.append(kept)  # still referenced at exit\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "at-exit.bin")], check=True)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_as_the_temporary_file_appears_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C that lands just after the temporary file is created (where a script that
    waits for the file to appear sends it) waits until the output can take the file away."""
    from aerflow import _output

    create = _output._create_beside

    def create_then_interrupt(target: str, suffix: str) -> tuple[int, str]:
        made = create(target, suffix)
        signal.raise_signal(signal.SIGINT)
        return made

    monkeypatch.setattr(_output, "_create_beside", create_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _output.Output(tmp_path / "interrupted.bin")
    gc.collect()
    assert list(tmp_path.iterdir()) == []
