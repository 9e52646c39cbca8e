"""The live viewer, headless (SDL's dummy video driver): screenshots of what it shows,
paced playback, closing the window, and the render sinks built as pipeline components."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import aerflow
from aerflow.events import Packet
from aerflow.pipeline import run
from aerflow.render import viewer as viewer_module
from aerflow.render.viewer import PANEL_HEIGHT, Viewer, ViewerClosed
from aerflow.stream import Properties
from aerflow.synthetic import SyntheticSensor

from .test_filters import FakeTime
from .test_render_frames import BACKGROUND, OFF, ON, make_events

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame greets on import
pygame = pytest.importorskip("pygame")


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_screenshot_shows_the_events_and_the_rate_panel(tmp_path: Path) -> None:
    viewer = Viewer(320, 240, live=True, tau="50ms", decay="window")
    rows = [(t, 10 + (t // 1000) % 5, 20, True) for t in range(0, 100_000, 1000)]
    rows += [(t, 200, 100 + (t // 1000) % 3, False) for t in range(0, 100_000, 2000)]
    viewer.write(Packet(make_events(sorted(rows))))
    shot = viewer.screenshot()
    assert shot.shape == (240 + PANEL_HEIGHT, 320, 3)
    picture = shot[:240]
    assert tuple(picture[20, 12]) == ON
    assert tuple(picture[101, 200]) == OFF
    lit = np.zeros((240, 320), bool)
    lit[20, 10:15] = True
    lit[100:103, 200] = True
    assert np.all(picture[~lit] == BACKGROUND)
    panel = shot[240:]
    assert len(np.unique(panel.reshape(-1, 3), axis=0)) > 2  # text and graph drawn

    path = tmp_path / "shot.png"
    viewer.save_screenshot(path)
    viewer.close()
    pil = pytest.importorskip("PIL.Image")
    with pil.open(path) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), shot)


def test_rate_panel_reads_the_event_rate() -> None:
    viewer = Viewer(64, 48, live=True, rate_window="100ms")
    for k in range(20):
        # 100 events per 10 ms: 10 kev/s ON, 0 OFF.
        start = k * 10_000
        viewer.write(make_events([(start + i * 100, i % 64, 0, True) for i in range(100)]))
    on, off = viewer._rates(viewer.renderer.time or 0)
    viewer.close()
    assert on == pytest.approx(10_000, rel=0.02)
    assert off == 0


def test_recordings_are_paced_by_event_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a clock that only sleeping moves, what is measured is the pacing, not how fast this
    # machine draws: a busy one runs late and rightly skips pictures in real time.
    clock = FakeTime()
    monkeypatch.setattr(viewer_module, "time", clock)
    sensor = SyntheticSensor(64, 48, duration="300ms", rate=20_000)
    viewer = Viewer(64, 48, live=False, fps=50, speed=2.0)
    started = clock.monotonic()
    run(sensor, viewer)
    elapsed = clock.monotonic() - started
    assert 0.13 <= elapsed < 2.0  # 0.3 s at twice real time: 0.15 s
    assert viewer.frames_shown >= 5


def test_closing_the_window_stops_the_run() -> None:
    viewer = Viewer(32, 32, live=True)
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    with pytest.raises(ViewerClosed):
        viewer.write(make_events([(0, 1, 1, True)]))
    assert issubclass(ViewerClosed, KeyboardInterrupt)
    viewer.close()  # closing again is harmless


def test_viewer_of_a_real_recording(shared_data: Path) -> None:
    path = shared_data / "evt3" / "expelliarmus_evt3_gen41_2020-09-14.raw"
    events = aerflow.read(path)
    with aerflow.open(path) as stream:
        viewer = Viewer(1280, 720, live=False, speed=None, scale=0.5, tau="100ms")
        run(stream, viewer)
    assert viewer.renderer.output_size == (640, 360)
    assert viewer.renderer.time == int(events["t"][-1])


def test_components_build_the_render_sinks(tmp_path: Path) -> None:
    from aerflow.render.components import sinks

    table = sinks()
    assert set(table) == {"video", "frames", "viewer"}
    properties = Properties("synthetic", 64, 48, live=False)
    names = {o.name for o in table["video"].all_options()}
    assert {"path", "fps", "speed", "style", "tau", "colormap", "scale", "crf"} <= names

    frames_sink = table["frames"].build(
        properties, directory=str(tmp_path / "png"), fps=20.0, style="counts", contrast=2.0
    )
    run(SyntheticSensor(64, 48, duration="100ms", rate=10_000), frames_sink)
    assert frames_sink.frames == 2
    assert len(list((tmp_path / "png").iterdir())) == 2

    pytest.importorskip("av")
    video = table["video"].build(properties, path=str(tmp_path / "v.mp4"), fps=30.0, tau=None)
    run(SyntheticSensor(64, 48, duration="100ms", rate=10_000), video)
    assert (tmp_path / "v.mp4").stat().st_size > 0

    viewer = table["viewer"].build(properties, unpaced=True, scale=2.0)
    assert viewer.speed is None
    assert viewer.renderer.output_size == (128, 96)
    viewer.close()

    with pytest.raises(aerflow.AerflowError, match="sensor size"):
        table["viewer"].build(Properties("stdin", None, None))
