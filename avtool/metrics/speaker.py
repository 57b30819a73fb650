"""Speaker measures: GE2E speaker embeddings (resemblyzer) and voice gender from median F0 (pYIN).

embedding = speaker_embedding(audio, 16000)       # (256,) unit vector
similarity = float(embedding @ other)              # cosine similarity
gender = voice_gender(median_f0(audio, 16000))     # "female" above 165 Hz
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from avtool.errors import InputError, SetupError

#: Rate of resemblyzer's speaker encoder (its ``hparams.sampling_rate``).
EMBEDDING_SAMPLE_RATE = 16000
EMBEDDING_DIM = 256
#: Median F0 above which a voice counts as female. Adult male speech centres near 120 Hz and
#: female near 210 Hz; 165 Hz is the usual split between the two distributions.
GENDER_F0_HZ = 165.0


@functools.lru_cache(maxsize=1)
def _encoder() -> Any:
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise SetupError(
            "resemblyzer is missing: pip install --no-deps resemblyzer==0.1.4 webrtcvad "
            "(or run make install)"
        ) from exc
    return VoiceEncoder(device="cpu", verbose=False)


def speaker_embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The GE2E speaker embedding of an utterance.

    Args:
        audio: ``(S,)`` float samples in [-1, 1] at ``sample_rate`` Hz (resampled to 16 kHz;
            long silences are trimmed by resemblyzer's VAD).
        sample_rate: its rate in Hz.

    Returns:
        ``(256,)`` float32, unit length.

    Raises:
        InputError: under about 0.2 s of speech after trimming.
    """
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(np.asarray(audio, dtype=np.float32), source_sr=sample_rate)
    if len(wav) < EMBEDDING_SAMPLE_RATE // 5:
        raise InputError("too little speech for a speaker embedding (under 0.2 s)")
    embedding = np.asarray(_encoder().embed_utterance(wav), dtype=np.float32)
    return embedding / max(float(np.linalg.norm(embedding)), 1e-8)


def mean_embedding(embeddings: list[np.ndarray]) -> np.ndarray:
    """The unit-length mean of several embeddings ``(256,)`` (a speaker's centroid)."""
    mean = np.mean(np.stack(embeddings), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)


def median_f0(audio: np.ndarray, sample_rate: int) -> float:
    """Median fundamental frequency in Hz over voiced frames (probabilistic YIN, librosa).

    Args:
        audio: ``(S,)`` float samples at ``sample_rate`` Hz (analysed at 16 kHz).

    Raises:
        InputError: no voiced frame.
    """
    import librosa

    from avtool.io.audio import resample

    x = (
        resample(np.asarray(audio, np.float32), sample_rate, 16000)
        if sample_rate != 16000
        else audio
    )
    f0, voiced, _ = librosa.pyin(
        np.asarray(x, np.float32), fmin=60.0, fmax=400.0, sr=16000, frame_length=1024
    )
    values = f0[voiced & np.isfinite(f0)]
    if values.size == 0:
        raise InputError("no voiced speech to measure F0 on")
    return float(np.median(values))


def voice_gender(f0_hz: float) -> str:
    """``"female"`` when the median F0 is above :data:`GENDER_F0_HZ`, else ``"male"``."""
    return "female" if f0_hz > GENDER_F0_HZ else "male"
