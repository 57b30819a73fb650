"""Locating and running ffmpeg, and reading a media file's stream header.

imageio-ffmpeg ships a static ffmpeg but no ffprobe, so stream properties come from parsing
the banner that ``ffmpeg -hide_banner -i FILE`` prints on stderr.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from avtool.errors import InputError, SetupError

logger = logging.getLogger("avtool.io.ffmpeg")

# Base options for every run: never read the terminal, report errors only.
QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")

_LAYOUT_CHANNELS = MappingProxyType(
    {"mono": 1, "stereo": 2, "quad": 4, "hexagonal": 6, "octagonal": 8}
)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable: ``$AVTOOL_FFMPEG`` if set, else imageio-ffmpeg's binary.

    ``$AVTOOL_FFMPEG`` may be a path or a command name looked up on ``PATH``.

    Raises:
        SetupError: the executable is missing or not executable.
    """
    override = os.environ.get("AVTOOL_FFMPEG")
    if override:
        exe = override if os.sep in override else shutil.which(override) or override
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise SetupError(f"AVTOOL_FFMPEG={override}: no executable ffmpeg at that path")
        return exe
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise SetupError(
            f"ffmpeg not found ({exc}); install imageio-ffmpeg or set AVTOOL_FFMPEG"
        ) from exc
    if not os.access(exe, os.X_OK):
        raise SetupError(f"ffmpeg at {exe} is not executable; reinstall imageio-ffmpeg")
    return exe


def ffmpeg_version() -> str:
    """First line of ``ffmpeg -version``, e.g. ``"ffmpeg version 7.0.2 Copyright ..."``.

    Raises:
        SetupError: ffmpeg is missing or does not run.
    """
    exe = ffmpeg_exe()
    try:
        proc = subprocess.run([exe, "-version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(f"{exe} -version failed: {exc}") from exc
    return proc.stdout.splitlines()[0] if proc.stdout else ""


def stderr_tail(text: str | bytes, lines: int = 5) -> str:
    """The last ``lines`` non-empty lines of ffmpeg's stderr, indented for an error message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in kept) or "  (ffmpeg printed nothing)"


def ffmpeg_reason(text: str | bytes) -> str:
    """ffmpeg's own reason in one line (its last message, without the ``[in#0 @ 0x..]`` tag),
    so that errors stay one line; the full tail goes to the debug log."""
    import re

    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    logger.debug("ffmpeg said:\n%s", stderr_tail(text, lines=20))
    kept = [re.sub(r"^\[[^\]]*\]\s*", "", line.strip()) for line in text.splitlines()]
    kept = [line for line in kept if line and not line.startswith("Error opening input file")]
    reason = kept[-1] if kept else "ffmpeg printed nothing"
    for line in kept:  # "Error opening input: Invalid data ..." says it best when present
        if line.startswith("Error opening input:"):
            reason = line.removeprefix("Error opening input:").strip()
    return reason


def _refuse_empty(path: Path) -> None:
    """A 0-byte file is refused before ffmpeg (or a model) is started on it."""
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")


def run_ffmpeg(args: Sequence[str | os.PathLike[str]], input_path: str | os.PathLike[str]) -> bytes:
    """Run ffmpeg with ``args`` (after the quiet base options) and return its stdout.

    Args:
        args: ffmpeg arguments, e.g. ``["-i", path, "-f", "f32le", "-"]``.
        input_path: the file being read, named in the error message.

    Raises:
        SetupError: ffmpeg is missing.
        InputError: ffmpeg exited non-zero; the message names ``input_path`` and quotes the
            last lines of ffmpeg's stderr.
    """
    _refuse_empty(Path(input_path))
    cmd = [ffmpeg_exe(), *QUIET, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise InputError(f"{input_path}: ffmpeg could not read it ({ffmpeg_reason(proc.stderr)})")
    if proc.stderr.strip():
        # Damaged but partly decodable input: ffmpeg recovers and exits 0, so only warn.
        logger.debug("%s: ffmpeg said:\n%s", input_path, stderr_tail(proc.stderr, lines=20))
        warning = recovered_warning(proc.stderr, input_path, seeked=_seeks_input(args))
        if warning is not None:
            logger.warning("%s", warning)
    return proc.stdout


def _seeks_input(args: Sequence[str | os.PathLike[str]]) -> bool:
    """True when ``-ss`` comes before the first ``-i`` (ffmpeg seeks the input)."""
    words = [str(a) for a in args]
    return "-ss" in words[: words.index("-i") if "-i" in words else 0]


# What a seek into the middle of an MPEG audio frame prints (GRID's .mpg read at an offset):
# the decoder drops the partial frame it landed in and goes on. Not damage.
_SEEK_NOISE = (
    "Header missing",
    "Error submitting packet to decoder: Invalid data found when processing input",
)


def recovered_warning(
    text: str | bytes, input_path: str | os.PathLike[str], *, seeked: bool = False
) -> str | None:
    """One line for what ffmpeg printed while it still decoded ``input_path`` (exit 0).

    ``"x.mp4: truncated (ffmpeg: partial file); reading what is there"`` when the file stops
    early, else ``"x: damaged; ffmpeg skipped what it could not decode (<first message>;
    N more messages)"``. None for nothing to say, or when the input was read from an offset
    (``seeked``) and the only messages are the one partial MPEG audio frame a seek lands in.

    Args:
        text: ffmpeg's stderr.
        input_path: the file read, named in the line.
        seeked: the run started with ``-ss`` before ``-i``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    messages = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip()) for line in text.splitlines()]
    messages = [line for line in messages if line]
    if not messages:
        return None
    if seeked and all(m in _SEEK_NOISE for m in messages) and messages.count(_SEEK_NOISE[0]) <= 1:
        return None
    if any(m.endswith("partial file") for m in messages):
        return f"{input_path}: truncated (ffmpeg: partial file); reading what is there"
    more = f"; {len(messages) - 1} more messages" if len(messages) > 1 else ""
    return f"{input_path}: damaged; ffmpeg skipped what it could not decode ({messages[0]}{more})"


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg's header printout says about a file's first video and audio streams.

    Attributes:
        duration: container duration in seconds, None when ffmpeg reports ``N/A``.
        video_codec: e.g. ``"h264"``; None when there is no video stream.
        width, height: coded frame size in pixels after rotation (0 without video).
        fps: frame rate in frames/s (``tbr`` when no ``fps`` is printed; 0.0 without video).
        rotation: display rotation in degrees from the stream's display matrix.
        audio_codec: e.g. ``"aac"``; None when there is no audio stream.
        sample_rate: audio sample rate in Hz (0 without audio).
        channels: audio channel count (0 without audio).
    """

    duration: float | None
    video_codec: str | None = None
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotation: float = 0.0
    audio_codec: str | None = None
    sample_rate: int = 0
    channels: int = 0


def _rate(text: str) -> float:
    # ffmpeg abbreviates large rates: "1k tbn", "90k tbn".
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def _layout_channels(layout: str) -> int:
    layout = layout.split("(")[0].strip()
    if layout in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[layout]
    if m := re.fullmatch(r"(\d+) channels", layout):
        return int(m[1])
    if m := re.fullmatch(r"(\d+)\.(\d+)", layout):  # "5.1" = 5 main + 1 LFE
        return int(m[1]) + int(m[2])
    raise ValueError(layout)


def parse_header(text: str, path: str | os.PathLike[str]) -> MediaInfo:
    """Parse ``ffmpeg -i`` stderr into :class:`MediaInfo` (first video and audio stream)."""
    fields: dict[str, object] = {}
    duration = None
    if m := re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text):
        duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    streams = re.split(r"\n\s*Stream #", text)[1:]
    for block in streams:
        head = block.splitlines()[0]
        if "Video:" in head and "video_codec" not in fields and "attached pic" not in head:
            video = head.split("Video:", 1)[1]
            fields["video_codec"] = video.split(",")[0].split()[0]
            size = re.search(r"[, ](\d{2,5})x(\d{2,5})[ ,\n]", video + "\n")
            rate = re.search(r"([\d.]+k?) fps", video) or re.search(r"([\d.]+k?) tbr", video)
            if size is None or rate is None:
                raise InputError(f"{path}: cannot read the video size or frame rate:\n{head}")
            width, height = int(size[1]), int(size[2])
            if rot := re.search(r"rotation of (-?[\d.]+) degrees", block):
                fields["rotation"] = float(rot[1])
                # ffmpeg auto-rotates decoded frames, so quarter turns swap the output size.
                if round(float(rot[1])) % 180 == 90:
                    width, height = height, width
            fields.update(width=width, height=height, fps=_rate(rate[1]))
        elif "Audio:" in head and "audio_codec" not in fields:
            parts = [p.strip() for p in head.split("Audio:", 1)[1].split(",")]
            hz = next((p for p in parts if p.endswith(" Hz")), None)
            if hz is None or len(parts) < 3:
                raise InputError(f"{path}: cannot read the audio format:\n{head}")
            layout = parts[parts.index(hz) + 1]
            try:
                channels = _layout_channels(layout)
            except ValueError:
                raise InputError(f"{path}: unknown audio channel layout {layout!r}") from None
            fields.update(
                audio_codec=parts[0].split()[0], sample_rate=int(hz.split()[0]), channels=channels
            )
    return MediaInfo(duration=duration, **fields)  # type: ignore[arg-type]


def read_media_info(path: str | os.PathLike[str]) -> MediaInfo:
    """Run ``ffmpeg -i path`` and parse the streams it reports.

    Raises:
        InputError: the file is missing or ffmpeg cannot open it.
        SetupError: ffmpeg is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    _refuse_empty(path)
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)]
    # Without an output ffmpeg always exits 1; only the printed header matters.
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    text = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in text:
        raise InputError(f"{path}: ffmpeg cannot open it ({ffmpeg_reason(text)})")
    return parse_header(text, path)
