"""The SLURM recipes of docs/batch.md, run as written but for their sizes and paths.

The Python script and the two commands under "SLURM with dask-jobqueue" are taken from the
page itself and run with the real dask-jobqueue. Its ``sbatch`` and ``scancel`` are
stand-ins on PATH that do what SLURM does with a job script on a node: ``sbatch SCRIPT``
starts the script (the one dask-jobqueue wrote, ``#SBATCH`` lines and all) in a session of
its own and prints ``Submitted batch job ID``; ``scancel ID`` signals that session. The
batch's outputs must equal running each file alone, and no process of the jobs may outlive
the cluster.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import aerflow
from aerflow.cli.main import run as cli_run

from .helpers import assert_same_events, uniform_events
from .processes import PATIENCE, wait_until

pytest.importorskip("distributed", reason="dask.distributed not installed")
# Looked up, not imported: importing dask_jobqueue sets a SIGINT handler for the whole
# process (its runner module), which the Ctrl-C tests run later in this process would meet.
if importlib.util.find_spec("dask_jobqueue") is None:
    pytest.skip("dask-jobqueue not installed (the test extra)", allow_module_level=True)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "batch.md"

SBATCH = """#!/usr/bin/env bash
# sbatch SCRIPT: a copy of the job script (SLURM keeps one: the submitter may delete its
# file), started in a session of its own, as on a node
set -eu
cp "$1" "$FAKE_SLURM/job-$$.sh"
setsid bash "$FAKE_SLURM/job-$$.sh" > "$FAKE_SLURM/job-$$.log" 2>&1 < /dev/null &
echo $! > "$FAKE_SLURM/$$.job"
echo "Submitted batch job $$"
"""

SCANCEL = """#!/usr/bin/env bash
# scancel ID...: SIGTERM to each job's session
for id in "$@"; do kill -TERM -- "-$(cat "$FAKE_SLURM/$id.job")" 2> /dev/null || true; done
"""


def _slurm_block(language: str) -> str:
    """The page's first ``language`` block in its SLURM section."""
    section = DOCS.read_text().split("### SLURM with dask-jobqueue", 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no {language} block in the SLURM section of docs/batch.md"
    return match.group(1)


def _command_line_recipe() -> tuple[str, str]:
    """The page's two commands for the command line: the cluster kept open, the batch."""
    keep_open, submit = _slurm_block("sh").strip().splitlines()
    return keep_open, submit


def _replace_once(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each replacement made; each replaced text must be in it once (a page
    edited apart from this test fails here)."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"docs/batch.md's SLURM recipe no longer has {old}"
        text = text.replace(old, new)
    return text


def _sized_for_this_machine(recipe: str, recordings: Path, out: Path) -> str:
    """The recipe with two one-worker jobs instead of four of sixteen, and test paths."""
    replacements = {
        "cores=16,": "cores=1,",
        "processes=16,": "processes=1,",
        'memory="64GB",': 'memory="2GB",',
        "cluster.scale(jobs=4)": "cluster.scale(jobs=2)",
        "client.wait_for_workers(16)": "client.wait_for_workers(2)",
        '"/scratch/recordings/**/*.raw"': repr(f"{recordings}/**/*.raw"),
        'out="/scratch/converted"': f"out={str(out)!r}",
    }
    return _replace_once(recipe, replacements)


@dataclass
class StandInSlurm:
    """A tree of recordings, and the environment in which ``sbatch``/``scancel`` are the
    stand-ins, with the jobs' files under ``jobs``."""

    root: Path
    recordings: Path
    jobs: Path
    environment: dict[str, str]

    def job_processes(self) -> list[int]:
        """The processes still running in the jobs' sessions."""
        sessions = {int(p.read_text()) for p in self.jobs.glob("*.job")}
        alive = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) in sessions:
                        alive.append(int(entry.name))
                except OSError:
                    continue
        return alive

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.jobs.glob("job-*.log")))

    def run(self, argv: list[str]) -> str:
        """``argv`` run to its end where the recipe runs (the login node); its stdout."""
        finished = subprocess.run(
            argv,
            cwd=self.root,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=PATIENCE * 2,
        )
        assert finished.returncode == 0, finished.stderr + self.logs()
        return finished.stdout

    def assert_converted(self, out: Path) -> None:
        """Each recording's output equals running that file alone."""
        for name in NAMES:
            stem = str(Path(name).with_suffix(""))
            reference = self.root / "alone" / f"{stem}.aedat4"
            reference.parent.mkdir(parents=True, exist_ok=True)
            arguments = ["--quiet", "input", "file", str(self.recordings / name), "output"]
            assert cli_run([*arguments, "file", str(reference)]) == 0
            converted = out / f"{stem}.aedat4"
            assert_same_events(aerflow.read(converted), aerflow.read(reference))
            assert converted.read_bytes() == reference.read_bytes()


NAMES = ["a/one.raw", "a/b/two.raw", "three.raw"]


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[StandInSlurm]:
    if sys.platform != "linux":
        pytest.skip("the stand-in SLURM needs Linux")
    recordings, jobs, bin_dir = (tmp_path / n for n in ("rec", "jobs", "bin"))
    for folder in (jobs, bin_dir):
        folder.mkdir()
    for number, name in enumerate(NAMES):
        (recordings / name).parent.mkdir(parents=True, exist_ok=True)
        count = 20_000 + 5_000 * number
        events = uniform_events(count, 10 * count, number, 320, 240)
        aerflow.write(recordings / name, events, width=320, height=240)
    for name, text in (("sbatch", SBATCH), ("scancel", SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    environment = dict(os.environ)
    path = [str(bin_dir), str(Path(sys.executable).parent), environment["PATH"]]
    environment["PATH"] = os.pathsep.join(path)
    environment["FAKE_SLURM"] = str(jobs)
    environment["TMPDIR"] = str(tmp_path)  # the recipe's local_directory="$TMPDIR"
    made = StandInSlurm(tmp_path, recordings, jobs, environment)
    try:
        yield made
    finally:
        for pid in made.job_processes():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_the_slurm_recipe_converts_a_tree(slurm: StandInSlurm) -> None:
    out = slurm.root / "out"
    script = slurm.root / "convert.py"
    script.write_text(_sized_for_this_machine(_slurm_block("python"), slurm.recordings, out))
    printed = slurm.run([sys.executable, str(script)])
    assert printed.splitlines()[-1] == f"{len(NAMES)} done, 0 failed"
    assert len(list(slurm.jobs.glob("*.job"))) == 2  # two jobs were submitted
    # the cluster cancels its jobs as it closes: nothing of them stays behind
    wait_until(lambda: not slurm.job_processes(), what="the jobs' processes to end")
    slurm.assert_converted(out)


def test_the_slurm_command_line_recipe(slurm: StandInSlurm) -> None:
    """The page's two commands: a cluster kept open (its address printed), and ``aerflow
    batch --scheduler`` submitting to it."""
    keep_open, submit = _command_line_recipe()
    keep_open = _replace_once(
        keep_open,
        {
            "cores=16,": "cores=1,",
            "processes=16,": "processes=1,",
            "memory='64GB',": "memory='2GB',",
            "c.scale(jobs=4)": "c.scale(jobs=2)",
        },
    )
    out = slurm.root / "out"
    cluster = subprocess.Popen(
        ["bash", "-c", keep_open],
        cwd=slurm.root,
        env=slurm.environment,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert cluster.stdout is not None
        address = cluster.stdout.readline().strip()
        assert address.startswith("tcp://"), address
        submit = _replace_once(
            submit,
            {
                "'/scratch/recordings/**/*.raw'": f"'{slurm.recordings}/**/*.raw'",
                "--out /scratch/converted": f"--out {out}",
                "tcp://LOGIN-NODE:PORT": address,
            },
        )
        slurm.run(["bash", "-c", submit])
        assert len(list(slurm.jobs.glob("*.job"))) == 2  # its workers were the jobs'
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
        if cluster.stdout is not None:
            cluster.stdout.close()
    slurm.assert_converted(out)
