"""Audio files in and out: float32 arrays shaped ``(T,)`` (mono) or ``(C, T)``.

wav/flac/ogg go through soundfile; everything else (mp3, m4a, video containers, ...) is
decoded by ffmpeg into a raw f32le pipe at its native rate and channel count, so downmixing
and resampling (soxr, "VHQ") are the same whatever the source format.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import soundfile as sf
import soxr

from avtool.errors import InputError
from avtool.io.ffmpeg import (
    QUIET,
    MediaInfo,
    ffmpeg_exe,
    read_media_info,
    run_ffmpeg,
    stderr_tail,
)
from avtool.io.files import StreamingOutput, atomic_output

logger = logging.getLogger("avtool.io.audio")

SOUNDFILE_FORMATS = MappingProxyType({".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"})
MAX_CHANNELS = 64  # anything wider is almost surely a (T, C) array passed by mistake
#: Sample rates a real recording can have; a header outside them is broken (a 1 Hz WAV would
#: be "resampled" into tens of GB).
SAMPLE_RATE_RANGE = (1000, 768_000)
#: Compressed outputs written through the bundled ffmpeg (suffix -> encoder arguments).
FFMPEG_ENCODERS = MappingProxyType({
    ".mp3": ("-c:a", "libmp3lame", "-q:a", "2"),
    ".m4a": ("-c:a", "aac", "-b:a", "192k"),
    ".opus": ("-c:a", "libopus", "-b:a", "96k"),
})  # fmt: skip


@dataclass(frozen=True)
class AudioInfo:
    """Basic properties of an audio file (or of a video file's first audio stream).

    Attributes:
        sample_rate: samples per second per channel, Hz.
        channels: channel count.
        frames: samples per channel (estimated from the duration for ffmpeg-decoded files).
        duration: length in seconds.
    """

    sample_rate: int
    channels: int
    frames: int
    duration: float


def _check_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


def _uses_soundfile(path: Path) -> bool:
    return path.suffix.lower() in SOUNDFILE_FORMATS


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the sample rate, channel count and length of ``path`` without decoding it.

    Raises:
        InputError: the file is missing, unreadable, or has no audio stream.
    """
    path = _check_file(path)
    if _uses_soundfile(path):
        try:
            info = sf.info(str(path))
        except sf.SoundFileError as exc:
            raise InputError(f"{path}: cannot read audio ({exc})") from exc
        _check_rate(path, info.samplerate)
        return AudioInfo(info.samplerate, info.channels, info.frames, info.duration)
    media = _media_audio(path)
    _check_rate(path, media.sample_rate)
    duration = media.duration or 0.0
    return AudioInfo(
        media.sample_rate, media.channels, round(duration * media.sample_rate), duration
    )


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(C, T)`` array into ``(T,)``; ``(T,)`` is returned as is."""
    return audio if audio.ndim == 1 else audio.mean(axis=0, dtype=np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample along the last axis with soxr's very-high-quality filter.

    Args:
        audio: ``(T,)`` or ``(C, T)`` samples at ``from_rate`` Hz.
        from_rate: input sample rate in Hz.
        to_rate: output sample rate in Hz.

    Returns:
        ``(T',)`` or ``(C, T')`` float32 at ``to_rate`` Hz, ``T' ≈ T * to_rate / from_rate``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if from_rate == to_rate:
        return audio
    # soxr wants time on the first axis.
    out = soxr.resample(audio.T, from_rate, to_rate, quality="VHQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def _convert(
    audio: np.ndarray, rate: int, sample_rate: int | None, mono: bool, name: Path
) -> tuple[np.ndarray, int]:
    """``(C, T)`` at ``rate`` -> the requested channel layout and rate, logging what changed."""
    if mono:
        if audio.shape[0] > 1:
            logger.debug("%s: downmixed %d channels to mono", name.name, audio.shape[0])
        audio = to_mono(audio)
    if sample_rate and sample_rate != rate:
        # debug, not info: the file is often one avtool made (a temp WAV, stdin), and resampling
        # is routine; --verbose shows it.
        logger.debug("%s: resampled %d Hz -> %d Hz", name.name, rate, sample_rate)
        return resample(audio, rate, sample_rate), sample_rate
    return audio, rate


def _ffmpeg_decode_args(
    path: Path, channels: int, start: float = 0.0, duration: float | None = None
) -> list[str]:
    # -ss before -i seeks the input; -t after it cuts the output exactly.
    seek = ["-ss", f"{start:.6f}"] if start else []
    cut = ["-t", f"{duration:.6f}"] if duration is not None else []
    output = ["-map", "0:a:0", "-vn", "-sn", "-dn", "-f", "f32le", "-c:a", "pcm_f32le"]
    return [*seek, "-i", str(path), *cut, *output, "-ac", str(channels), "-"]


def _check_rate(path: Path, rate: int) -> None:
    """Refuse a header whose sample rate no recording has.

    Raises:
        InputError: ``rate`` outside :data:`SAMPLE_RATE_RANGE` (naming the file).
    """
    low, high = SAMPLE_RATE_RANGE
    if not low <= rate <= high:
        raise InputError(
            f"{path}: implausible sample rate {rate} Hz in the header (expected {low}-{high} Hz);"
            " the file is broken"
        )


def _truncated_wav(path: Path) -> float | None:
    """The fraction of a WAV's declared data that the file holds, when it holds less."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        size = path.stat().st_size
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(head):
        chunk, length = head[offset : offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk == b"data":
            held = size - offset - 8
            if length in (0, 0xFFFFFFFF) or held >= length:
                return None
            return held / length
        offset += 8 + length + (length & 1)
    return None


def _media_audio(path: Path) -> MediaInfo:
    """Header of an ffmpeg-decoded file that must have an audio stream."""
    media = read_media_info(path)
    if media.audio_codec is None:
        raise InputError(f"{path}: has no audio stream")
    return media


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    mono: bool = True,
    start: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file, or the first audio stream of a video file.

    Args:
        path: wav/flac/ogg (soundfile) or anything ffmpeg reads (mp3, m4a, mp4, mkv, ...).
        sample_rate: resample to this rate in Hz; None keeps the file's rate.
        mono: average all channels into one.
        start: offset in seconds to start reading from.
        duration: seconds to read; None reads to the end.

    Returns:
        ``(audio, rate)``: ``(T,)`` float32 if ``mono`` else ``(C, T)`` float32, at ``rate`` Hz.

    Raises:
        InputError: the file is missing, undecodable, or has no audio stream.
    """
    path = _check_file(path)
    if start < 0 or (duration is not None and duration < 0):
        raise ValueError(f"start and duration must be >= 0, got {start} and {duration}")
    if _uses_soundfile(path):
        held = _truncated_wav(path) if path.suffix.lower() == ".wav" else None
        if held is not None:
            logger.warning("%s: truncated: the file holds %.0f%% of the audio its header "
                           "declares; reading what is there", path, 100 * held)  # fmt: skip
        try:
            with sf.SoundFile(str(path)) as f:
                rate = f.samplerate
                _check_rate(path, rate)
                f.seek(min(round(start * rate), f.frames))
                frames = -1 if duration is None else round(duration * rate)
                audio = f.read(frames, dtype="float32", always_2d=True).T
        except sf.SoundFileError as exc:
            raise InputError(f"{path}: cannot decode audio ({exc})") from exc
    else:
        media = _media_audio(path)
        rate, channels = media.sample_rate, media.channels
        _check_rate(path, rate)
        raw = run_ffmpeg(_ffmpeg_decode_args(path, channels, start, duration), path)
        audio = np.frombuffer(raw, np.float32).reshape(-1, channels).T
    if not np.isfinite(audio).all():
        bad = int(np.size(audio) - np.isfinite(audio).sum())
        raise InputError(f"{path}: {bad} NaN or infinite samples (a broken float WAV?)")
    return _convert(np.ascontiguousarray(audio), rate, sample_rate, mono, path)


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and audio.shape[0] > MAX_CHANNELS):
        raise ValueError(f"audio must be shaped (T,) or (C, T) with C <= 64, got {audio.shape}")
    if audio.dtype.kind == "i":
        # Scale to [-1, 1) so every subtype sees the same values; exact for int16 -> PCM_16.
        return audio.astype(np.float32) / np.float32(-np.iinfo(audio.dtype).min)
    if audio.dtype.kind != "f":
        raise ValueError(f"audio must be float or signed integer samples, got {audio.dtype}")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or infinite samples")
    return audio


def _format_and_subtype(path: Path, format: str | None, subtype: str) -> tuple[str, str]:
    fmt = (format or SOUNDFILE_FORMATS.get(path.suffix.lower(), "")).upper()
    if not fmt:
        known = ", ".join(SOUNDFILE_FORMATS)
        raise ValueError(f"{path}: cannot tell the audio format from the suffix (use {known})")
    if fmt == "OGG" and subtype not in ("VORBIS", "OPUS"):
        subtype = "VORBIS"  # Ogg holds compressed audio only; PCM/float requests mean "default"
    if not sf.check_format(fmt, subtype):
        raise ValueError(f"{path}: {fmt} cannot store {subtype} samples")
    return fmt, subtype


def save_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
    format: str | None = None,
) -> Path:
    """Write ``audio`` to ``path`` atomically (temporary file renamed on success).

    Args:
        path: output file; the suffix (.wav, .flac, .ogg) picks the format unless ``format``.
        audio: ``(T,)`` or ``(C, T)`` samples, float in [-1, 1] (clipped) or int16.
        sample_rate: sample rate in Hz.
        subtype: ``"PCM_16"`` (int16), ``"FLOAT"`` (float32, wav only) or any soundfile
            subtype; Ogg always stores Vorbis.
        format: soundfile format name (``"WAV"``, ``"FLAC"``, ``"OGG"``) overriding the suffix.

    Returns:
        The output path.

    Raises:
        ValueError: bad shape, NaN/inf samples, or a format/subtype that cannot go together.
        SetupError: the output folder is not writable.
    """
    path = Path(path)
    audio = _check_audio(audio)
    if format is None and path.suffix.lower() in FFMPEG_ENCODERS:
        return _save_with_ffmpeg(path, audio, sample_rate)
    fmt, subtype = _format_and_subtype(path, format, subtype)
    with atomic_output(path) as tmp:
        sf.write(str(tmp), audio.T, sample_rate, subtype=subtype, format=fmt)
    return path


def _save_with_ffmpeg(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Encode through the bundled ffmpeg (mp3, m4a, opus); bit-exact flags and no metadata, so
    the same samples give the same bytes."""
    with tempfile.TemporaryDirectory(prefix="avtool-encode-") as folder:
        wav = Path(folder) / "audio.wav"
        sf.write(str(wav), audio.T, sample_rate, subtype="PCM_16", format="WAV")
        with atomic_output(path) as tmp:
            run_ffmpeg(["-i", wav, "-map_metadata", "-1", "-fflags", "+bitexact",
                        "-flags:a", "+bitexact", *FFMPEG_ENCODERS[path.suffix.lower()],
                        "-y", tmp], wav)  # fmt: skip
    return path


def wav_bytes(audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """A complete WAV file in memory, e.g. for writing to stdout.

    Args:
        audio: ``(T,)`` or ``(C, T)`` samples, float in [-1, 1] or int16.
        sample_rate: sample rate in Hz.
        subtype: ``"PCM_16"`` or ``"FLOAT"``.
    """
    buf = io.BytesIO()
    sf.write(buf, _check_audio(audio).T, sample_rate, subtype=subtype, format="WAV")
    return buf.getvalue()


class AudioWriter(StreamingOutput):
    """Write a long output block by block; the file appears under its name only on success.

    Example::

        with AudioWriter("out.flac", 16000) as w:
            for block in blocks:
                w.write(block)

    An exception inside the ``with`` block removes the temporary file and leaves any existing
    ``path`` untouched.

    Args:
        path: output file; the suffix (.wav, .flac, .ogg) picks the format unless ``format``.
        sample_rate: sample rate in Hz.
        channels: channel count C; blocks are ``(T,)`` when C is 1, else ``(C, T)``.
        subtype: ``"PCM_16"``, ``"FLOAT"`` (wav) or any soundfile subtype.
        format: soundfile format name overriding the suffix.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        channels: int = 1,
        subtype: str = "PCM_16",
        format: str | None = None,
    ) -> None:
        super().__init__(path)
        self.sample_rate = sample_rate
        self.channels = channels
        # mp3/m4a/opus: blocks go to a temporary WAV, encoded by ffmpeg when the block ends.
        wanted = f".{format.lower()}" if format else self.path.suffix.lower()
        self._encoder = FFMPEG_ENCODERS.get(wanted)
        if self._encoder is not None:
            self._format, self._subtype = "WAV", "PCM_16"
        else:
            self._format, self._subtype = _format_and_subtype(self.path, format, subtype)
        self._file: sf.SoundFile | None = None

    def _open(self, stack: contextlib.ExitStack) -> None:
        if self._encoder is not None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="avtool-encode-"))
            tmp = Path(folder) / "audio.wav"
        else:
            tmp = stack.enter_context(atomic_output(self.path))
        self._wav = tmp
        self._file = stack.enter_context(
            sf.SoundFile(
                str(tmp),
                "w",
                samplerate=self.sample_rate,
                channels=self.channels,
                subtype=self._subtype,
                format=self._format,
            )
        )
        stack.callback(setattr, self, "_file", None)

    def write(self, block: np.ndarray) -> None:
        """Append ``block``: ``(T,)`` for mono or ``(C, T)`` with C = ``channels``."""
        if self._file is None:
            raise RuntimeError("AudioWriter.write() outside its `with` block")
        block = _check_audio(block)
        channels = 1 if block.ndim == 1 else block.shape[0]
        if channels != self.channels:
            raise ValueError(f"block has {channels} channels, writer has {self.channels}")
        self._file.write(block.T)
        self._frames += block.shape[-1]

    def _finish(self) -> None:
        if self._encoder is None or self._file is None:
            return
        self._file.close()
        with atomic_output(self.path) as out:
            run_ffmpeg(["-i", self._wav, "-map_metadata", "-1", "-fflags", "+bitexact",
                        "-flags:a", "+bitexact", *self._encoder, "-y", out],
                       self._wav)  # fmt: skip


def _rebuffer(chunks: Iterator[np.ndarray], block_frames: int) -> Iterator[np.ndarray]:
    """Regroup ``(..., T)`` chunks of any length into blocks of exactly ``block_frames``."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += chunk.shape[-1]
        if held < block_frames:
            continue
        joined = np.concatenate(pending, axis=-1)
        full = held - held % block_frames
        for i in range(0, full, block_frames):
            yield joined[..., i : i + block_frames]
        pending, held = [joined[..., full:]], held - full
    if held:
        yield np.concatenate(pending, axis=-1)


def _ffmpeg_chunks(path: Path, channels: int, chunk_frames: int) -> Iterator[np.ndarray]:
    """Stream ``(T, C)`` float32 chunks from an ffmpeg f32le pipe."""
    chunk_bytes = chunk_frames * channels * 4
    # stderr goes to a file: an unread pipe could fill up and stall ffmpeg.
    with tempfile.TemporaryFile() as err:
        cmd = [ffmpeg_exe(), *QUIET, *_ffmpeg_decode_args(path, channels)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            assert proc.stdout is not None
            while raw := proc.stdout.read(chunk_bytes):
                usable = len(raw) - len(raw) % (channels * 4)
                yield np.frombuffer(raw[:usable], np.float32).reshape(-1, channels)
            if proc.wait() != 0:
                err.seek(0)
                raise InputError(f"{path}: ffmpeg could not read it:\n{stderr_tail(err.read())}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.wait()


def iter_audio_blocks(
    path: str | os.PathLike[str],
    block_frames: int,
    sample_rate: int | None = None,
    mono: bool = True,
) -> Iterator[np.ndarray]:
    """Stream a file in blocks with bounded memory (fit for hour-long recordings).

    The file is checked when this is called; decoding happens as blocks are consumed.

    Args:
        path: any file :func:`load_audio` reads.
        block_frames: samples per channel in each block, at the output rate.
        sample_rate: resample to this rate in Hz (streaming soxr "VHQ"); None keeps the file's.
        mono: average all channels into one.

    Yields:
        ``(block_frames,)`` float32 if ``mono`` else ``(C, block_frames)`` float32; the last
        block may be shorter.

    Raises:
        InputError: the file is missing, undecodable, or has no audio stream.
    """
    if block_frames <= 0:
        raise ValueError(f"block_frames must be positive, got {block_frames}")
    info = audio_info(path)
    path = Path(path)
    rate, channels = info.sample_rate, info.channels
    if _uses_soundfile(path):
        chunks = sf.blocks(str(path), blocksize=block_frames, dtype="float32", always_2d=True)
    else:
        chunks = _ffmpeg_chunks(path, channels, block_frames)
    out_channels = 1 if mono else channels
    stream = None
    if mono and channels > 1:
        logger.info("%s: downmixed %d channels to mono", path.name, channels)
    if sample_rate and sample_rate != rate:
        logger.debug("%s: resampled %d Hz -> %d Hz", path.name, rate, sample_rate)
        stream = soxr.ResampleStream(rate, sample_rate, out_channels, quality="VHQ")

    def converted() -> Iterator[np.ndarray]:
        try:
            for chunk in chunks:  # (T, C)
                x = chunk.mean(axis=1, keepdims=True, dtype=np.float32) if mono else chunk
                if stream is not None:
                    x = stream.resample_chunk(x)
                yield np.ascontiguousarray(x[:, 0] if mono else x.T, dtype=np.float32)
        except sf.SoundFileError as exc:
            raise InputError(f"{path}: cannot decode audio ({exc})") from exc
        if stream is not None:
            tail = stream.resample_chunk(np.zeros((0, out_channels), np.float32), last=True)
            yield np.ascontiguousarray(tail[:, 0] if mono else tail.T, dtype=np.float32)

    return _rebuffer(converted(), block_frames)


STDIN = Path("-")


@contextlib.contextmanager
def stdin_to_file(path: str | os.PathLike[str] | None) -> Iterator[Path | None]:
    """``path`` itself, or for ``-`` the audio bytes of stdin in a temporary file (removed on
    exit), so that ``avtool tts ... -o - | avtool talkinghead --audio - ...`` works.

    A streamed WAV (``RIFF``/``data`` sizes 0xFFFFFFFF or 0, as tts, sox and ffmpeg write to
    a pipe) gets its real sizes; other bytes are left for ffmpeg to recognise.

    Raises:
        InputError: stdin is empty.
    """
    if path is None or Path(path) != STDIN:
        yield None if path is None else Path(path)
        return
    import sys

    data = sys.stdin.buffer.read()
    if not data:
        raise InputError("-: no audio on standard input")
    suffix = ".wav" if data[:4] == b"RIFF" and data[8:12] == b"WAVE" else ".audio"
    if suffix == ".wav":
        data = _fix_streamed_wav(data)
    with tempfile.TemporaryDirectory(prefix="avtool-stdin-") as folder:
        target = Path(folder) / f"stdin{suffix}"
        target.write_bytes(data)
        yield target


def _fix_streamed_wav(data: bytes) -> bytes:
    """Replace unknown RIFF/data chunk sizes of a piped WAV with the real ones."""
    import struct

    out = bytearray(data)
    struct.pack_into("<I", out, 4, len(out) - 8)
    offset = 12
    while offset + 8 <= len(out):
        chunk, size = bytes(out[offset : offset + 4]), struct.unpack_from("<I", out, offset + 4)[0]
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF) or offset + 8 + size > len(out):
                struct.pack_into("<I", out, offset + 4, len(out) - offset - 8)
            break
        offset += 8 + size + (size & 1)
    return bytes(out)
