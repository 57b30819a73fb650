"""The teacher: resemblyzer's GE2E speaker encoder (weights inside the installed package)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from avtool.errors import InputError, SetupError

#: Sample rate the speaker encoder works at (resemblyzer's ``hparams.sampling_rate``).
TEACHER_SAMPLE_RATE = 16000
EMBEDDING_DIM = 256


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
    if len(wav) < TEACHER_SAMPLE_RATE // 5:
        raise InputError("too little speech for a speaker embedding (under 0.2 s)")
    embedding = np.asarray(_encoder().embed_utterance(wav), dtype=np.float32)
    return embedding / max(float(np.linalg.norm(embedding)), 1e-8)
