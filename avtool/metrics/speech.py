"""Objective speech quality measures, as the vocoder, video-to-speech and separation
literature report them.

All functions take mono float audio ``(T,)`` at ``sample_rate`` Hz, reference first. PESQ
and STOI resample to their own rates (16 kHz wide-band PESQ, 10 kHz STOI internally).
The two signals are trimmed to the shorter length; they must already be time-aligned
(resynthesis and separation outputs are, by construction).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from avtool.errors import SetupError

PESQ_RATE = 16000
#: Mel-cepstral distortion constant: 10 / ln(10) * sqrt(2), the usual dB scaling.
_MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)
_MCD_MELS = 40
#: (n_fft, hop) pairs of the multi-resolution STFT distance (Parallel WaveGAN's choice).
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, np.float64).reshape(-1)
    est = np.asarray(estimate, np.float64).reshape(-1)
    n = min(ref.size, est.size)
    if n == 0:
        raise ValueError("empty signal")
    return ref[:n], est[:n]


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio
    import soxr

    return soxr.resample(audio, rate, target, "VHQ")


def _needs(package: str, name: str, what: str) -> Any:
    """``package.name``, imported on first use.

    Raises:
        SetupError: ``package`` is not installed (naming the pip command).
    """
    try:
        return getattr(importlib.import_module(package), name)
    except ImportError as exc:
        raise SetupError(f"{what} needs the {package!r} package (pip install {package})") from exc


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO from 1.0 to 4.64.

    Raises:
        SetupError: the ``pesq`` package is not installed.
    """
    pesq = _needs("pesq", "pesq", "PESQ")
    ref, est = _pair(reference, estimate)
    ref, est = _resample(ref, sample_rate, PESQ_RATE), _resample(est, sample_rate, PESQ_RATE)
    return float(pesq(PESQ_RATE, ref, est, "wb"))


def stoi(
    reference: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool = False
) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), or ESTOI when ``extended``.

    Raises:
        SetupError: the ``pystoi`` package is not installed.
    """
    _stoi = _needs("pystoi", "stoi", "STOI")
    ref, est = _pair(reference, estimate)
    return float(_stoi(ref, est, sample_rate, extended=extended))


def mel_cepstral_distortion(
    reference: np.ndarray, estimate: np.ndarray, sample_rate: int, n_cepstra: int = 13
) -> float:
    """Mel-cepstral distortion in dB over frames where the reference is not silent.

    Cepstra are the DCT-II of a 40-band log-mel spectrum (25 ms windows, 10 ms hop), scaled
    to the SPTK convention the MCD formula assumes; c0 (energy) is excluded, as is usual,
    so loudness alone does not count. White noise at 30 dB SNR scores about 1.2 dB.
    """
    import librosa

    ref, est = _pair(reference, estimate)
    n_fft = 2 ** math.ceil(math.log2(0.025 * sample_rate))
    hop = round(0.010 * sample_rate)
    kwargs = {"sr": sample_rate, "n_fft": n_fft, "hop_length": hop, "n_mels": _MCD_MELS}
    c_ref = librosa.feature.mfcc(y=ref, n_mfcc=n_cepstra + 1, **kwargs)[1:]
    c_est = librosa.feature.mfcc(y=est, n_mfcc=n_cepstra + 1, **kwargs)[1:]
    energy = librosa.feature.rms(y=ref, frame_length=n_fft, hop_length=hop)[0]
    voiced = energy > 0.05 * energy.max() if energy.max() > 0 else np.ones_like(energy, bool)
    # MCD assumes SPTK-style cepstra: ln|X(w)| = c0 + 2 * sum_k c_k cos(k w). librosa's are
    # an orthonormal DCT-II (sqrt(2M) times larger over M bands) of 10*log10(power), and
    # 10*log10(P) = (20 / ln 10) * ln|X|: undo both.
    to_sptk = (math.log(10.0) / 20.0) / math.sqrt(2.0 * _MCD_MELS)
    diff = (c_ref - c_est)[:, voiced] * to_sptk
    return float(_MCD_SCALE * np.mean(np.sqrt(np.sum(diff**2, axis=0))))


def multi_resolution_stft_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean over :data:`STFT_RESOLUTIONS` of spectral convergence + log-magnitude L1.

    0 for identical signals; the loss HiFi-GAN-style vocoders are trained against.
    """
    ref, est = _pair(reference, estimate)
    total = 0.0
    for n_fft, hop in STFT_RESOLUTIONS:
        window = np.hanning(n_fft + 1)[:-1]
        frames = 1 + max(0, ref.size - n_fft) // hop
        idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
        pad = max(0, n_fft - ref.size)
        r = np.abs(np.fft.rfft(np.pad(ref, (0, pad))[idx] * window, axis=1))
        e = np.abs(np.fft.rfft(np.pad(est, (0, pad))[idx] * window, axis=1))
        convergence = np.linalg.norm(r - e) / max(np.linalg.norm(r), 1e-12)
        log_l1 = np.mean(np.abs(np.log(np.maximum(r, 1e-7)) - np.log(np.maximum(e, 1e-7))))
        total += convergence + log_l1
    return total / len(STFT_RESOLUTIONS)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019)."""
    ref, est = _pair(reference, estimate)
    ref, est = ref - ref.mean(), est - est.mean()
    scale = np.dot(est, ref) / max(np.dot(ref, ref), 1e-12)
    target = scale * ref
    noise = est - target
    return float(
        10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.dot(noise, noise), 1e-20))
    )
