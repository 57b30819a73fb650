"""Video in and out through ffmpeg pipes: frames are uint8 RGB arrays shaped ``(H, W, 3)``.

Frames stream one at a time through a rawvideo pipe, so memory stays bounded whatever the
video length. Sizes are given as ``(width, height)`` like ffmpeg's ``WxH``; arrays are
``(height, width, ...)`` like numpy images.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import tempfile
import weakref
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from avtool.errors import InputError
from avtool.io.ffmpeg import QUIET, ffmpeg_exe, read_media_info, run_ffmpeg, stderr_tail
from avtool.io.files import StreamingOutput, atomic_output
from avtool.io.formats import WRITER_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """Properties of a video file's first video stream (and first audio stream, if any).

    Attributes:
        path: the probed file.
        duration: container duration in seconds.
        fps: frame rate in frames/s.
        width, height: frame size in pixels as decoded (after display rotation).
        n_frames: frame count; estimated as ``duration * fps`` unless the duration is unknown,
            in which case the frames are counted.
        has_audio: whether there is an audio stream.
        audio_sample_rate: audio sample rate in Hz, None without audio.
        audio_channels: audio channel count, None without audio.
        video_codec: e.g. ``"h264"``.
        audio_codec: e.g. ``"aac"``, None without audio.
    """

    path: Path
    duration: float
    fps: float
    width: int
    height: int
    n_frames: int
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    video_codec: str
    audio_codec: str | None


def _count_frames(path: Path) -> int:
    # Stream copy only demuxes (no decoding), so this is fast even for long files.
    args = ["-i", path, "-map", "0:v:0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-"]
    counts = re.findall(rb"^frame=(\d+)", run_ffmpeg(args, path), re.MULTILINE)
    return int(counts[-1]) if counts else 0


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video file's stream properties from ffmpeg's header printout.

    Raises:
        InputError: the file is missing, unreadable by ffmpeg, or has no video stream.
        SetupError: ffmpeg is missing.
    """
    path = Path(path)
    media = read_media_info(path)
    if media.video_codec is None:
        raise InputError(f"{path}: has no video stream")
    if media.duration is None:
        n_frames = _count_frames(path)
        duration = n_frames / media.fps
    else:
        duration = media.duration
        # The header rounds the duration to 10 ms, so round half up to the nearest frame.
        n_frames = math.floor(duration * media.fps + 0.5 + 1e-6)
    has_audio = media.audio_codec is not None
    return VideoInfo(
        path=path,
        duration=duration,
        fps=media.fps,
        width=media.width,
        height=media.height,
        n_frames=n_frames,
        has_audio=has_audio,
        audio_sample_rate=media.sample_rate if has_audio else None,
        audio_channels=media.channels if has_audio else None,
        video_codec=media.video_codec,
        audio_codec=media.audio_codec,
    )


# ffmpeg's demuxer and parser warnings that mean bytes are missing or broken (a clean file
# prints none of these while demuxing: checked on 140 GRID clips, .mpg and .mkv).
_DAMAGE = re.compile(r"corrupt|partial file|truncat|invalid|error|missing|incomplete", re.I)
#: A container that holds less than this fraction of the frames its header's duration promises
#: is reported as truncated.
COMPLETE_FRACTION = 0.8


@dataclass(frozen=True)
class VideoScan:
    """What a video file holds, from its header and one demuxing pass (no decoding).

    Attributes:
        info: the header's :class:`VideoInfo` (duration, frame rate, ...).
        frames: video packets (frames) the container actually holds.
        damage: ffmpeg's complaint while demuxing (one line), None for a clean file.
    """

    info: VideoInfo
    frames: int
    damage: str | None = None

    @property
    def seconds(self) -> float:
        """Duration of the frames the file holds, in seconds."""
        return self.frames / self.info.fps if self.info.fps > 0 else 0.0

    def frames_at(self, fps: float) -> int:
        """Frames after resampling to ``fps`` (at least 1 when the file holds any)."""
        return max(round(self.seconds * fps), 1) if self.frames else 0

    @property
    def truncated(self) -> bool:
        """The file holds strongly fewer frames than its header's duration promises."""
        promised = self.info.n_frames
        return self.frames < COMPLETE_FRACTION * promised and promised - self.frames >= 3

    def warning(self) -> str | None:
        """A one-line warning naming the file when it looks truncated or damaged, else None."""
        path, info = self.info.path, self.info
        if self.truncated:
            return (
                f"{path}: truncated? its header says {info.duration:.2f} s ({info.n_frames} "
                f"frames) but it holds {self.frames} frames ({self.seconds:.2f} s); only those "
                "are read"
            )
        if self.damage:
            return (
                f"{path}: damaged or truncated (ffmpeg: {self.damage}); read as the "
                f"{self.frames} frames ({self.seconds:.2f} s) it holds"
            )
        return None

    def require(self, min_frames: int, fps: float, task: str) -> None:
        """Refuse a video too short for a model that needs ``min_frames`` frames at ``fps``.

        Raises:
            InputError: one line naming the file and its frame count.
        """
        if self.frames_at(fps) >= min_frames:
            return
        n = self.frames
        what = f"{n} video frame{'s' if n != 1 else ''} ({self.seconds:.2f} s)"
        if self.truncated:
            what += f" of the {self.info.n_frames} its header declares (truncated?)"
        raise InputError(
            f"{self.info.path}: {what}; {task} needs at least {min_frames} frames "
            f"({min_frames / fps:.2f} s at {fps:g} fps)"
        )


def scan(path: str | os.PathLike[str]) -> VideoScan:
    """Probe a video and count the frames it holds by demuxing it (fast: no decoding), so a
    truncated or damaged file is known before any model loads.

    Raises:
        InputError: missing, empty (0 bytes), unreadable, or without a video stream.
        SetupError: ffmpeg is missing.
    """
    from avtool.io.ffmpeg import ffmpeg_reason

    info = probe(path)
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "warning", "-i", str(info.path),
        "-map", "0:v:0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise InputError(f"{info.path}: ffmpeg could not read it ({ffmpeg_reason(proc.stderr)})")
    counts = re.findall(rb"^frame=(\d+)", proc.stdout, re.MULTILINE)
    complaints = [line for line in proc.stderr.decode("utf-8", "replace").splitlines()
                  if _DAMAGE.search(line)]  # fmt: skip
    damage = ffmpeg_reason("\n".join(complaints)).rstrip(".") if complaints else None
    return VideoScan(info, int(counts[-1]) if counts else 0, damage)


def _rational(fps: float) -> str:
    # 29.97... given as a float becomes 30000/1001 rather than a rounded decimal.
    return str(Fraction(fps).limit_denominator(1001000))


class VideoReader:
    """Iterate over a video's frames, decoded by ffmpeg one frame at a time.

    Example::

        with VideoReader("talk.mp4", fps=25, size=(224, 224)) as reader:
            for frame in reader:  # (224, 224, 3) uint8 RGB
                ...

    Args:
        path: any video file ffmpeg reads.
        fps: resample to this frame rate (ffmpeg's ``fps`` filter drops/duplicates frames);
            None yields every decoded frame.
        size: ``(width, height)`` to scale frames to; None keeps the decoded size.
        gray: yield ``(H, W)`` luma frames instead of ``(H, W, 3)`` RGB.

    Attributes:
        info: the :class:`VideoInfo` of ``path``.
        fps: output frame rate in frames/s.
        frame_shape: ``(H, W, 3)`` or ``(H, W)``.
        index: index of the last frame yielded (-1 before the first).

    Raises:
        InputError: the file is missing or has no video stream (on construction), or ffmpeg
            fails mid-stream (while iterating; the message names the frame).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | None = None,
        size: tuple[int, int] | None = None,
        gray: bool = False,
    ) -> None:
        self.info = probe(path)
        self.path = self.info.path
        self.fps = float(fps or self.info.fps)
        self.gray = gray
        self._size = size
        width, height = size or (self.info.width, self.info.height)
        self.frame_shape: tuple[int, ...] = (height, width) if gray else (height, width, 3)
        self.index = -1
        self._frames: weakref.ref[Generator[np.ndarray, None, None]] | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._frames is not None:
            raise RuntimeError(f"{self.path}: a VideoReader can be iterated only once")
        frames = self._decode()
        # A weak reference avoids a reader <-> generator cycle, so an abandoned loop frees the
        # generator (and stops ffmpeg) at once instead of at the next garbage collection.
        self._frames = weakref.ref(frames)
        return frames

    def _decode(self) -> Generator[np.ndarray, None, None]:
        filters = []
        if self.fps != self.info.fps:
            filters.append(f"fps={_rational(self.fps)}")
        if self._size is not None:
            filters.append(f"scale={self._size[0]}:{self._size[1]}")
        # Without a rate change, pass every decoded frame through: no duplicates or drops.
        timing = ["-vf", ",".join(filters)] if filters else ["-fps_mode", "passthrough"]
        cmd = [
            ffmpeg_exe(), *QUIET, "-i", str(self.path), "-map", "0:v:0", "-an", "-sn", "-dn",
            *timing, "-f", "rawvideo", "-pix_fmt", "gray" if self.gray else "rgb24", "-",
        ]  # fmt: skip
        size = math.prod(self.frame_shape)
        # stderr goes to a file: an unread pipe could fill up and stall ffmpeg.
        with (
            tempfile.TemporaryFile() as err,
            subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            ) as proc,
        ):
            assert proc.stdout is not None
            try:
                while True:
                    buf = bytearray(size)
                    view, got = memoryview(buf), 0
                    while got < size and (n := proc.stdout.readinto(view[got:])):
                        got += n
                    if got == 0:
                        break
                    if got < size:
                        raise self._fail(err, "ffmpeg stopped in the middle of a frame")
                    self.index += 1
                    yield np.frombuffer(buf, np.uint8).reshape(self.frame_shape)
                if proc.wait() != 0:
                    raise self._fail(err, "ffmpeg failed while decoding")
            finally:
                # Stopped early (break, exception, close()): don't wait for ffmpeg to finish.
                if proc.poll() is None:
                    proc.kill()

    def _fail(self, err: IO[bytes], what: str) -> InputError:
        err.seek(0)
        tail = stderr_tail(err.read())
        return InputError(f"{self.path}: {what} at frame {self.index + 1}:\n{tail}")

    def close(self) -> None:
        """Stop ffmpeg if it is still running and release its pipes."""
        frames = self._frames() if self._frames is not None else None
        if frames is not None:
            frames.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class VideoWriter(StreamingOutput):
    """Encode RGB frames to H.264 (yuv420p, libx264) and mux an optional AAC audio track.

    The output appears under ``path`` only when the ``with`` block ends cleanly; an exception
    removes the temporary file and leaves any existing ``path`` untouched. MP4/MOV outputs get
    ``+faststart`` so players can start before the whole file arrives.

    Durations are not trimmed to each other (no ``-shortest``): the caller must pass audio as
    long as ``n_frames / fps``, or the file's duration becomes the longer of the two.

    Example::

        with VideoWriter("out.mp4", 25, (360, 288), audio="speech.wav") as writer:
            for frame in frames:  # (288, 360, 3) uint8
                writer.write(frame)

    Args:
        path: output file (.mp4, .m4v, .mov or .mkv).
        fps: frame rate in frames/s.
        size: ``(width, height)`` in pixels; both must be even (yuv420p halves chroma).
        audio: an audio file to mux in (re-encoded to AAC).
        audio_array: ``(T,)`` or ``(C, T)`` float samples to mux in instead of ``audio``.
        sample_rate: sample rate of ``audio_array`` in Hz.
        crf: x264 constant rate factor (0 lossless, 18 visually lossless, 23 default).
        preset: x264 speed/size trade-off, ``"ultrafast"`` ... ``"veryslow"``.

    Raises:
        InputError: odd frame size, missing audio file, or ffmpeg failing to encode.
        ValueError: bad arguments (both audio sources, no sample rate, bad suffix).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        size: tuple[int, int],
        *,
        audio: str | os.PathLike[str] | None = None,
        audio_array: np.ndarray | None = None,
        sample_rate: int | None = None,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        super().__init__(path)
        if self.path.suffix.lower() not in WRITER_SUFFIXES:
            raise ValueError(f"{self.path}: video output must be one of {WRITER_SUFFIXES}")
        width, height = size
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise InputError(
                f"{self.path}: H.264 (yuv420p) needs an even width and height, got "
                f"{width}x{height}; crop or pad the frames"
            )
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if audio is not None and audio_array is not None:
            raise ValueError("give either audio or audio_array, not both")
        if audio_array is not None and not sample_rate:
            raise ValueError("audio_array needs its sample_rate")
        if audio is not None and read_media_info(audio).audio_codec is None:
            raise InputError(f"{audio}: has no audio stream")
        self.fps = fps
        self.size = (width, height)
        self.audio = Path(audio) if audio is not None else None
        self._audio_array = audio_array
        self._sample_rate = sample_rate
        self._crf = crf
        self._preset = preset
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def _open(self, stack: contextlib.ExitStack) -> None:
        tmp = stack.enter_context(atomic_output(self.path))
        audio = self.audio
        if self._audio_array is not None:
            from avtool.io.audio import save_audio

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            audio = save_audio(
                folder / "audio.wav", self._audio_array, self._sample_rate, subtype="FLOAT"
            )
        width, height = self.size
        video_in = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
        video_in += ["-framerate", _rational(self.fps), "-i", "-"]
        audio_in = ["-i", str(audio), "-map", "1:a:0", "-c:a", "aac", "-b:a", "192k"]
        video_out = ["-map", "0:v:0", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
        video_out += ["-crf", str(self._crf), "-preset", self._preset]
        faststart = ["-movflags", "+faststart"] if tmp.suffix.lower() != ".mkv" else []
        cmd = [
            ffmpeg_exe(), *QUIET, "-y", *video_in, *(audio_in if audio else []),
            *video_out, *faststart, str(tmp),
        ]  # fmt: skip
        self._stderr = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (on the stack)
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        stack.callback(self._kill)

    def _fail(self, what: str) -> InputError:
        assert self._stderr is not None
        self._stderr.seek(0)
        source = f" with audio {self.audio}" if self.audio else ""
        tail = stderr_tail(self._stderr.read())
        return InputError(f"{self.path}: {what}{source}:\n{tail}")

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame, with ``(W, H)`` equal to ``size``."""
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("VideoWriter.write() outside its `with` block")
        width, height = self.size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be ({height}, {width}, 3) uint8, got {frame.shape} {frame.dtype}"
            )
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._proc.wait()
            raise self._fail(f"ffmpeg stopped at frame {self._frames}") from None
        self._frames += 1

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(BrokenPipeError):
                if proc.stdin is not None:
                    proc.stdin.close()
            proc.wait()

    def _finish(self) -> None:
        if self._frames == 0:
            raise ValueError(f"{self.path}: no frames were written")
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        if proc.wait() != 0:
            raise self._fail("ffmpeg failed to encode the video")
