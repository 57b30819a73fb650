"""What drives the mouth from a sound file: phone timings and per-frame loudness.

Phones come from pocketsphinx's phone recogniser (its bundled en-US acoustic model decoded with
the bundled phone language model, ``Decoder(allphone=...)``) for arbitrary speech, or from the
phoneme timings that ``avtool tts`` records (:func:`phones_from_timings`). Both passes stream the
audio in blocks, so an hour of audio keeps a flat memory profile: only the phone list and one
loudness value per video frame are kept.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avtool.errors import ModelError, SetupError
from avtool.io.audio import iter_audio_blocks
from avtool.models.facewarp.visemes import SILENCE, Phone

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""The rate pocketsphinx's bundled acoustic model expects, Hz."""
PHONE_FRAME_RATE = 100
"""pocketsphinx frames per second (10 ms hop)."""
SILENCE_DBFS = -50.0
"""Frames quieter than this (RMS, dB re full scale) count as silence."""
DYNAMIC_RANGE_DB = 30.0
"""Loudness maps the ``DYNAMIC_RANGE_DB`` below a recording's loud end onto ``[0, 1]``."""
BAND_EDGES_HZ = (80.0, 300.0, 700.0, 1200.0, 2000.0, 3000.0, 5000.0, 8000.0)
"""Edges of the spectral bands measured per video frame (Hz): low, F1-ish, F2-ish and frication
regions, read by the audio-refined jaw opening (:mod:`.opening`)."""
_NON_SPEECH = frozenset({"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+", "+UM+"})


@dataclass
class AudioDrive:
    """Everything the renderer needs from the sound track.

    Attributes:
        phones: timed phones (seconds).
        loudness: ``(T,)`` float32 in ``[0, 1]`` per video frame.
        voiced: ``(T,)`` bool per video frame: louder than the silence floor.
        duration: audio duration in seconds.
        n_frames: video frames, ``round(duration * fps)`` (at least 1).
        source: "pocketsphinx" or "tts".
        bands: ``(T, len(BAND_EDGES_HZ) - 1)`` float32 band levels per video frame in dB
            (:func:`band_levels`), or None when not measured.
    """

    phones: list[Phone]
    loudness: np.ndarray
    voiced: np.ndarray
    duration: float
    n_frames: int
    source: str
    bands: np.ndarray | None = None

    @property
    def speech_fraction(self) -> float:
        """Share of the frames that are voiced."""
        return float(self.voiced.mean()) if len(self.voiced) else 0.0


def frame_count(duration: float, fps: float) -> int:
    """Video frames covering ``duration`` seconds: the nearest whole frame, at least one.

    Rounding to the nearest frame keeps audio and video within half a frame of each other.
    """
    return max(1, int(np.floor(duration * fps + 0.5)))


class PhoneRecognizer:
    """pocketsphinx phone recognition with its bundled en-US model and phone LM.

    Each :meth:`recognize` call is one utterance (feature normalisation restarts), so the
    result of a block does not depend on what was decoded before.

    Raises:
        SetupError: pocketsphinx is not installed.
        ModelError: its bundled model files are missing or unreadable.
    """

    def __init__(self) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise SetupError(
                "phone alignment needs pocketsphinx: pip install 'pocketsphinx>=5'"
            ) from exc
        model = os.path.join(pocketsphinx.get_model_path(), "en-us")
        try:
            self._decoder = pocketsphinx.Decoder(
                hmm=os.path.join(model, "en-us"),
                allphone=os.path.join(model, "en-us-phone.lm.bin"),
                lm=None,
                dict=None,
                samprate=SAMPLE_RATE,
                # Wider beams than the defaults: phone decoding has no word LM to prune with.
                beam=1e-20,
                pbeam=1e-20,
                lw=2.0,
                loglevel="FATAL",
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load pocketsphinx's phone model from {model}: {exc}") from exc

    def recognize(self, pcm: np.ndarray, offset: float = 0.0) -> list[Phone]:
        """Phones of one block of 16 kHz audio.

        Args:
            pcm: ``(N,)`` float32 in ``[-1, 1]`` at 16 kHz.
            offset: start time of the block in seconds (added to every phone).

        Returns:
            Timed phones in seconds; silence and fillers are labelled ``sil``.
        """
        if pcm.size < SAMPLE_RATE // 10:  # under 100 ms: nothing to recognise
            return []
        data = (np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(data, full_utt=True)
        self._decoder.end_utt()
        phones = []
        for seg in self._decoder.seg():
            label = SILENCE if seg.word in _NON_SPEECH else seg.word
            start = offset + seg.start_frame / PHONE_FRAME_RATE
            end = offset + (seg.end_frame + 1) / PHONE_FRAME_RATE
            phones.append(Phone(label, round(start, 4), round(end, 4)))
        return phones


def band_levels(segment: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Power in each :data:`BAND_EDGES_HZ` band of one video frame's audio, in dB.

    Args:
        segment: ``(N,)`` float samples of the frame (any N >= 1; Hann-windowed here).
        rate: sample rate in Hz.

    Returns:
        ``(len(BAND_EDGES_HZ) - 1,)`` float32, ``10 log10(power + 1e-10)``.
    """
    samples = np.asarray(segment, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    edges = BAND_EDGES_HZ
    power = [spectrum[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in itertools.pairwise(edges)]
    return (10.0 * np.log10(np.asarray(power) + 1e-10)).astype(np.float32)


def _frame_rms(
    block: np.ndarray, hop: float, first: int, carry: np.ndarray, bands: list | None = None
) -> tuple:
    """RMS per video frame of a stream block; returns ``(values, next_first, carry)``.

    When ``bands`` is a list, each frame's :func:`band_levels` are appended to it.
    """
    joined = np.concatenate([carry, block]) if carry.size else block
    values = []
    index = first
    while True:
        lo = round(index * hop) - round(first * hop)
        hi = round((index + 1) * hop) - round(first * hop)
        if hi > joined.size:
            break
        values.append(float(np.sqrt(np.mean(np.square(joined[lo:hi], dtype=np.float64)))))
        if bands is not None:
            bands.append(band_levels(joined[lo:hi]))
        index += 1
    used = round(index * hop) - round(first * hop)
    return values, index, joined[used:]


def analyse_audio(
    path: str | os.PathLike[str],
    fps: float,
    *,
    recognize: bool = True,
    block_seconds: float = 30.0,
    recognizer: PhoneRecognizer | None = None,
) -> AudioDrive:
    """Stream an audio (or video) file once: phones (optional) and per-frame loudness.

    Args:
        path: anything :func:`avtool.io.audio.iter_audio_blocks` reads.
        fps: video frame rate in frames/s.
        recognize: run the phone recogniser (False when TTS timings will supply the phones).
        block_seconds: pocketsphinx utterance length; blocks are cut at the quietest 10 ms
            near their end so that words are rarely split.
        recognizer: a loaded :class:`PhoneRecognizer` (one is made when needed).

    Returns:
        The :class:`AudioDrive`; ``n_frames`` is ``round(duration * fps)``.
    """
    if recognize and recognizer is None:
        recognizer = PhoneRecognizer()
    hop = SAMPLE_RATE / fps
    rms: list[float] = []
    bands: list[np.ndarray] = []
    phones: list[Phone] = []
    carry = np.zeros(0, np.float32)
    next_frame = 0
    pending = np.zeros(0, np.float32)  # audio not yet given to the recogniser
    pending_start = 0  # its first sample's index in the stream
    total = 0
    block_len = max(SAMPLE_RATE, int(block_seconds * SAMPLE_RATE))
    for block in iter_audio_blocks(path, SAMPLE_RATE, sample_rate=SAMPLE_RATE):
        total += block.size
        values, next_frame, carry = _frame_rms(block, hop, next_frame, carry, bands)
        rms.extend(values)
        if not recognize:
            continue
        pending = np.concatenate([pending, block])
        if pending.size >= block_len:
            cut = _quiet_cut(pending, block_len)
            phones.extend(recognizer.recognize(pending[:cut], pending_start / SAMPLE_RATE))
            pending, pending_start = pending[cut:], pending_start + cut
    if recognize and pending.size:
        phones.extend(recognizer.recognize(pending, pending_start / SAMPLE_RATE))
    duration = total / SAMPLE_RATE
    n_frames = frame_count(duration, fps)
    if carry.size:  # the partial last frame
        rms.append(float(np.sqrt(np.mean(np.square(carry, dtype=np.float64)))))
        bands.append(band_levels(carry))
    levels = np.array(rms[:n_frames] + [0.0] * max(0, n_frames - len(rms)), dtype=np.float64)
    loudness, voiced = loudness_from_rms(levels)
    floor = band_levels(np.zeros(1))  # missing frames: digital silence
    spectrum = np.stack((bands + [floor] * max(0, n_frames - len(bands)))[:n_frames])
    return AudioDrive(
        quiet_to_silence(phones, voiced, fps), loudness, voiced, duration, n_frames,
        "pocketsphinx", spectrum.astype(np.float32),
    )  # fmt: skip


def quiet_to_silence(phones: list[Phone], voiced: np.ndarray, fps: float) -> list[Phone]:
    """Relabel as silence the phones with no voiced frame (the recogniser hears phones in
    digital silence and hum; the mouth must not move there)."""
    out = []
    for phone in phones:
        lo = int(phone.start * fps)
        hi = max(lo + 1, int(np.ceil(phone.end * fps)))
        if phone.label != SILENCE and not voiced[lo:hi].any():
            phone = Phone(SILENCE, phone.start, phone.end)
        out.append(phone)
    return out


def _quiet_cut(pcm: np.ndarray, length: int) -> int:
    """Where to end a recogniser block: the quietest 10 ms in its last 2 s (or ``length``)."""
    step = SAMPLE_RATE // 100
    lo = max(step, length - 2 * SAMPLE_RATE)
    if length - lo < 2 * step:
        return length
    frames = pcm[lo:length][: (length - lo) // step * step].reshape(-1, step)
    return lo + int(np.argmin(np.square(frames).sum(axis=1))) * step + step // 2


def loudness_from_rms(rms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame loudness in ``[0, 1]`` and a voiced mask from RMS levels.

    The loud end is the 95th percentile of the voiced frames (robust to a single click), so a
    quiet recording still opens the mouth fully; frames under ``SILENCE_DBFS`` are unvoiced.

    Args:
        rms: ``(T,)`` RMS of each video frame's audio (full scale = 1).

    Returns:
        ``(loudness (T,) float32, voiced (T,) bool)``.
    """
    db = 20.0 * np.log10(np.maximum(rms, 1e-8))
    voiced = db > SILENCE_DBFS
    if not voiced.any():
        return np.zeros(len(rms), np.float32), voiced
    top = float(np.percentile(db[voiced], 95))
    loudness = np.clip((db - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0)
    return np.where(voiced, loudness, 0.0).astype(np.float32), voiced


def phones_from_timings(timings: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[Phone]:
    """Phones from ``avtool tts`` timings (``{"phonemes": [{"phoneme", "start", "end"}]}``).

    Spaces and punctuation become silence; a list of phoneme dicts is accepted as well.
    """
    items = timings.get("phonemes", []) if isinstance(timings, Mapping) else timings
    phones = []
    for item in items:
        label = str(item.get("phoneme", item.get("label", "")))
        if not label.strip() or not any(ch.isalpha() or ch in "ˈˌː" for ch in label):
            label = SILENCE
        phones.append(Phone(label, float(item["start"]), float(item["end"])))
    return phones


def speech_phones(phones: Iterable[Phone]) -> Iterator[Phone]:
    """The phones that are not silence or fillers."""
    return (p for p in phones if p.label != SILENCE)


def describe(drive: AudioDrive, path: str | Path) -> dict[str, Any]:
    """A JSON-able summary of the drive for sidecars."""
    return {
        "source": drive.source,
        "path": str(path),
        "duration": round(drive.duration, 4),
        "phones": len(drive.phones),
        "speech_phones": sum(1 for _ in speech_phones(drive.phones)),
        "voiced_fraction": round(drive.speech_fraction, 4),
    }
