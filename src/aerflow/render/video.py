"""Video files (MP4, MKV, MOV through H.264; GIF) and folders of PNG frames.

Videos are encoded with PyAV (``pip install 'aerflow[video]'``), whose wheels bundle FFmpeg
and libx264; PNG frames need nothing beyond the standard library. Both sinks take packets
(``aerflow.pipeline.run(stream, VideoSink(...))``) and render them with
:class:`~aerflow.render.frames.Sequencer`: ``fps`` frames per second of video, ``speed``
times real time, so a recording of D seconds gives a video of D / speed seconds.

H.264 frames are converted to 4:2:0 YUV (BT.709, limited range, tagged so) straight from the
palette, without an RGB intermediate.
"""

from __future__ import annotations

import contextlib
import os
import re
import string
from fractions import Fraction
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from .._output import Output
from ..errors import OutputError
from ..events import Packet, as_events
from ..sinks import ClosedOnExit
from . import _kernels as kernels
from ._deps import require
from .frames import (
    Look,
    RenderedFrame,
    Renderer,
    Sequencer,
    Source,
    open_source,
    sensor_size,
    sequence_look,
)
from .png import write_png

__all__ = ["PRESETS", "VIDEO_EXTENSIONS", "FramesSink", "VideoSink", "write_frames", "write_video"]

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".gif": "gif"}
VIDEO_EXTENSIONS = tuple(_CONTAINERS)
"""File extensions :class:`VideoSink` writes."""

PRESETS = (
    "events",
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
"""H.264 presets: x264's, and ``"events"`` (the default), see :data:`_EVENTS_PRESET`."""

_EVENTS_PRESET = {"x264-params": "mbtree=1:rc-lookahead=10:cabac=1:deblock=1"}
"""x264's ultrafast with macroblock-tree rate control over a 10-frame lookahead, CABAC and
the deblocking filter back on. On rendered events (1280x720, 2 Mev/s, crf 23) it gives
veryfast's size and quality (1.1 MB/s, 39.4 dB Y-PSNR against 1.0 MB/s, 39.6 dB) in 40 %
of its encoding time; plain ultrafast is as quick but three times larger."""

DEFAULT_FPS = 60.0
GIF_FPS = 50.0
"""GIF delays count hundredths of a second, and viewers stretch delays below 2 of them."""
_GIF_TICKS = 100


def _events_of(packet: Packet | npt.ArrayLike) -> npt.NDArray[Any]:
    return packet.events if isinstance(packet, Packet) else as_events(packet)


def yuv_tables(palette: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], ...]:
    """Per palette entry, its BT.709 limited-range Y, U and V."""
    rgb = palette.astype(np.float64) / 255
    red, green, blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    kr, kb = 0.2126, 0.0722
    luma = kr * red + (1 - kr - kb) * green + kb * blue
    u = (blue - luma) / (2 * (1 - kb))
    v = (red - luma) / (2 * (1 - kr))
    return tuple(
        np.clip(np.round(values), 0, 255).astype(np.uint8)
        for values in (16 + 219 * luma, 128 + 224 * u, 128 + 224 * v)
    )


def _plane(plane: Any, width: int, height: int) -> npt.NDArray[np.uint8]:
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    view: npt.NDArray[np.uint8] = rows[:height, :width]
    return view


class _H264:
    """H.264 in an MP4/MKV/MOV container: frames of even size, 4:2:0."""

    def __init__(
        self,
        av: ModuleType,
        path: str,
        container: str,
        renderer: Renderer,
        fps: float,
        crf: int,
        preset: str,
    ) -> None:
        self._av = av
        self._width, self._height = renderer.frame_size
        self._luts = yuv_tables(renderer.palette)
        self._container = av.open(path, "w", format=container)
        try:
            stream = self._container.add_stream(
                "libx264", rate=Fraction(fps).limit_denominator(1001)
            )
            stream.width, stream.height = self._width, self._height
            stream.pix_fmt = "yuv420p"
            if preset == "events":
                stream.options = {"crf": str(crf), "preset": "ultrafast", **_EVENTS_PRESET}
            else:
                stream.options = {"crf": str(crf), "preset": preset}
            stream.thread_type = "FRAME"  # x264's frame threads beat its sliced ones
            context = stream.codec_context
            # Fading event pictures change everywhere at once: B-frames cost a third more
            # time for a sixth less size (measured at 1280x720), so none.
            context.max_b_frames = 0
            # BT.709, limited range: what yuv_tables computes, said so in the file.
            context.colorspace = context.color_primaries = context.color_trc = 1
            context.color_range = 1
        except BaseException:
            self._container.close()
            raise
        self._stream = stream

    def write(self, frame: RenderedFrame) -> None:
        width, height = self._width, self._height
        picture = self._av.VideoFrame(width, height, "yuv420p")
        y, u, v = (
            _plane(plane, width >> (k > 0), height >> (k > 0))
            for k, plane in enumerate(picture.planes)
        )
        lut_y, lut_u, lut_v = self._luts
        kernels.to_yuv420(frame.indices, lut_y, lut_u, lut_v, y, u, v)
        picture.pts = frame.index
        self._container.mux(self._stream.encode(picture))

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def abort(self) -> None:
        self._container.close()


class _Gif:
    """An animated GIF: the renderer's palette is the GIF's, frames are its indices."""

    def __init__(self, av: ModuleType, path: str, renderer: Renderer, fps: float) -> None:
        if fps > GIF_FPS:
            raise ValueError(
                f"GIF frame delays are hundredths of a second and viewers slow down delays "
                f"below 2 of them: use fps <= {GIF_FPS:g} (got {fps:g})"
            )
        self._av = av
        self._fps = fps
        width, height = renderer.frame_size
        self._palette = np.full((256, 4), 255, np.uint8)  # A, R, G, B
        self._palette[:, 1:] = renderer.palette
        self._container = av.open(path, "w", format="gif")
        try:
            stream = self._container.add_stream("gif", rate=Fraction(fps).limit_denominator(100))
            stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
        except BaseException:
            self._container.close()
            raise
        self._stream = stream

    def write(self, frame: RenderedFrame) -> None:
        picture = self._av.VideoFrame.from_ndarray((frame.indices, self._palette), format="pal8")
        picture.pts = round(frame.index * _GIF_TICKS / self._fps)
        picture.time_base = Fraction(1, _GIF_TICKS)
        self._container.mux(self._stream.encode(picture))

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def abort(self) -> None:
        self._container.close()


class VideoSink(ClosedOnExit):
    """Renders packets into a video file (``.mp4``, ``.mkv``, ``.mov``: H.264; ``.gif``).

    ``width`` x ``height`` is the sensor size; ``fps`` defaults to 60 (50 for GIF, whose
    delays count hundredths of a second); ``crf`` (0 lossless .. 51, lower is better) and
    ``preset`` (``"events"``, tuned for event pictures, or one of x264's, ``"ultrafast"`` ..
    ``"veryslow"``) tune H.264; there are no B-frames. ``look`` holds
    :class:`~aerflow.render.frames.Look`'s fields. The file is written beside ``path`` and
    moved into place by :meth:`close`; :meth:`abort` leaves ``path`` as it was. A stream
    without events gives one background frame."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        *,
        fps: float | None = None,
        speed: float = 1.0,
        start: int | str | None = None,
        crf: int = 23,
        preset: str = "events",
        **look: Any,
    ) -> None:
        self.path = os.fspath(path)
        extension = os.path.splitext(self.path)[1].lower()
        container = _CONTAINERS.get(extension)
        if container is None:
            raise ValueError(
                f"cannot tell the video format of {self.path!r}: "
                f"use one of {', '.join(VIDEO_EXTENSIONS)}"
            )
        gif = container == "gif"
        self.fps = float(fps if fps is not None else GIF_FPS if gif else DEFAULT_FPS)
        if not 0 <= crf <= 51:
            raise ValueError("crf must lie in 0..51")
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        av = require("av", "writing videos")
        self.renderer = Renderer(
            width, height, sequence_look(Look(**look), self.fps, speed), even=not gif
        )
        # The encoder writes by name and seeks: a stream target gets a spooled copy.
        self._output = Output(self.path, needs_seek=True, suffix=f".part{extension}")
        self._output.file.close()
        working = self._output.working_path
        assert working is not None
        try:
            self._encoder: _H264 | _Gif = (
                _Gif(av, working, self.renderer, self.fps)
                if gif
                else _H264(av, working, container, self.renderer, self.fps, crf, preset)
            )
        except BaseException:
            self._output.discard()
            raise
        self._sequencer = Sequencer(self.renderer, self.fps, speed, self._encoder.write, start)
        self._sequencer.reuse_buffer()
        self._closed = False

    @property
    def frames(self) -> int:
        """Frames encoded so far."""
        return self._sequencer.frames

    def write(self, packet: Packet | npt.ArrayLike) -> None:
        """Add a packet's events (or an events array); finished frames are encoded."""
        self._sequencer.write(_events_of(packet))

    def close(self) -> None:
        """Encode the last frame, finish the file and move it into place."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sequencer.finish()
            if self._sequencer.frames == 0:
                background = self.renderer.new_frame()
                self._encoder.write(RenderedFrame(0, 0, background, self.renderer.palette))
            self._encoder.close()
            self._output.commit()
        except BaseException:
            self._output.discard()
            raise

    def abort(self) -> None:
        """Stop without touching ``path``."""
        if self._closed:
            return
        self._closed = True
        try:
            self._encoder.abort()
        finally:
            self._output.discard()


class FramesSink(ClosedOnExit):
    """Renders packets into numbered PNG files in ``directory`` (created when missing):
    ``000000.png``, ``000001.png``... (``pattern`` formats the frame index). Arguments as
    :class:`VideoSink`'s; ``compression`` is zlib's level (0..9).

    Each PNG is written whole under a temporary name, then renamed. A folder already holding
    files the pattern names is refused, so that old frames never mix with new ones, unless
    ``overwrite`` (they are then removed first). :meth:`abort` removes only the frames this
    sink wrote."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        width: int,
        height: int,
        *,
        fps: float = DEFAULT_FPS,
        speed: float = 1.0,
        start: int | str | None = None,
        pattern: str = "{:06d}.png",
        compression: int = 6,
        overwrite: bool = False,
        **look: Any,
    ) -> None:
        self.directory = os.fspath(directory)
        pattern.format(0)  # a bad pattern fails here, not after the first frame
        self.pattern = pattern
        if os.path.isdir(self.directory):
            self._clear_old_frames(overwrite)
        self.compression = compression
        self.renderer = Renderer(width, height, sequence_look(Look(**look), fps, speed))
        self.paths: list[str] = []
        """The files written so far."""
        os.makedirs(self.directory, exist_ok=True)
        self._sequencer = Sequencer(self.renderer, fps, speed, self._write_frame, start)
        self._sequencer.reuse_buffer()
        self._closed = False

    @property
    def frames(self) -> int:
        return self._sequencer.frames

    def _clear_old_frames(self, overwrite: bool) -> None:
        parts = [
            re.escape(literal) + (r"\d+" if field is not None else "")
            for literal, field, _, _ in string.Formatter().parse(self.pattern)
        ]
        named = re.compile("".join(parts) + r"\Z")
        old = sorted(name for name in os.listdir(self.directory) if named.match(name))
        if not old:
            return
        if not overwrite:
            raise OutputError(
                f"{self.directory} already holds {len(old)} frame(s) ({old[0]}...): "
                "choose another folder, or overwrite them (--overwrite, overwrite=True)"
            )
        for name in old:
            os.unlink(os.path.join(self.directory, name))

    def _write_frame(self, frame: RenderedFrame) -> None:
        path = os.path.join(self.directory, self.pattern.format(frame.index))
        width, height = self.renderer.output_size
        write_png(path, frame.indices[:height, :width], frame.palette, self.compression)
        self.paths.append(path)

    def write(self, packet: Packet | npt.ArrayLike) -> None:
        self._sequencer.write(_events_of(packet))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sequencer.finish()

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            for path in self.paths:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


def _run(source: Source, width: int | None, height: int | None, make: Any) -> int:
    from ..pipeline import run

    stream = open_source(source, width, height)
    try:
        sink = make(*sensor_size(stream))
    except BaseException:
        stream.close()
        raise
    run(stream, sink)
    frames: int = sink.frames
    return frames


def write_video(
    source: Source,
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    speed: float = 1.0,
    start: int | str | None = None,
    crf: int = 23,
    preset: str = "events",
    width: int | None = None,
    height: int | None = None,
    **look: Any,
) -> int:
    """Render ``source`` (a stream, a recording's path or events) into a video file; returns
    the number of frames. See :class:`VideoSink` for the arguments; ``width``/``height``
    give the sensor size of bare events."""
    return _run(
        source,
        width,
        height,
        lambda w, h: VideoSink(
            path, w, h, fps=fps, speed=speed, start=start, crf=crf, preset=preset, **look
        ),
    )


def write_frames(
    source: Source,
    directory: str | os.PathLike[str],
    *,
    fps: float = DEFAULT_FPS,
    speed: float = 1.0,
    start: int | str | None = None,
    pattern: str = "{:06d}.png",
    width: int | None = None,
    height: int | None = None,
    **look: Any,
) -> int:
    """Render ``source`` into numbered PNG files; returns the number of frames."""
    return _run(
        source,
        width,
        height,
        lambda w, h: FramesSink(
            directory, w, h, fps=fps, speed=speed, start=start, pattern=pattern, **look
        ),
    )
