"""Separation metrics: SI-SDR (torch, for training losses), SDR, their improvements, oracle masks.

PESQ and STOI are :mod:`avtool.metrics.speech`'s; this module adds what only separation needs.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.signal
import torch

from avtool.metrics.speech import si_sdr

#: Taps of the distortion filter SDR allows (BSS-eval's default, 32 ms at 16 kHz).
SDR_FILTER_TAPS = 512


def si_sdr_torch(
    estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Scale-invariant SDR in dB along the last axis (differentiable).

    Args:
        estimate: ``(..., T)`` samples.
        reference: ``(..., T)`` samples, same shape.

    Returns:
        ``(...)`` SI-SDR in dB.
    """
    est = estimate - estimate.mean(dim=-1, keepdim=True)
    ref = reference - reference.mean(dim=-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def sdr(reference: np.ndarray, estimate: np.ndarray, taps: int = SDR_FILTER_TAPS) -> float:
    """Signal-to-distortion ratio in dB with BSS-eval's time-invariant distortion filter.

    The estimate is projected onto ``taps`` delayed copies of the reference (least squares, as
    ``bss_eval_sources`` does for one source); what the projection misses counts as distortion.
    """
    ref = np.asarray(reference, np.float64).reshape(-1)
    est = np.asarray(estimate, np.float64).reshape(-1)
    n = min(ref.size, est.size)
    ref, est = ref[:n], est[:n]
    if not np.any(ref) or n <= taps:
        raise ValueError("SDR needs a non-silent reference longer than the filter")
    size = 1 << int(np.ceil(np.log2(n + taps)))
    ref_f = np.fft.rfft(ref, size)
    auto = np.fft.irfft(np.abs(ref_f) ** 2, size)[:taps]
    cross = np.fft.irfft(np.conj(ref_f) * np.fft.rfft(est, size), size)[:taps]
    auto[0] += 1e-10 * auto[0] + 1e-12
    coeffs = scipy.linalg.solve_toeplitz(auto, cross)
    target = scipy.signal.lfilter(coeffs, [1.0], ref)[:n]
    error = est - target
    return float(
        10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.dot(error, error), 1e-20))
    )


def improvements(
    reference: np.ndarray, estimate: np.ndarray, mixture: np.ndarray
) -> dict[str, float]:
    """SI-SDR and SDR of ``estimate`` and their improvement over the unprocessed ``mixture``."""
    out = {"si_sdr": si_sdr(reference, estimate), "sdr": sdr(reference, estimate)}
    out["si_sdri"] = out["si_sdr"] - si_sdr(reference, mixture)
    out["sdri"] = out["sdr"] - sdr(reference, mixture)
    return out


def mask_stft(x: np.ndarray, n_fft: int = 512, hop_length: int = 160) -> torch.Tensor:
    """The STFT the mask estimates here work in: periodic Hann, centred, as the mask networks.

    Args:
        x: ``(T,)`` audio.

    Returns:
        ``(n_fft // 2 + 1, frames)`` complex spectrum (invert with :func:`apply_mask`).
    """
    # eval sits below models in the import order, so it calls torch directly.
    window = torch.hann_window(n_fft, periodic=True)
    samples = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    return torch.stft(samples, n_fft, hop_length, window=window, center=True, return_complex=True)


def apply_mask(
    mask: torch.Tensor, mixture: torch.Tensor, length: int, n_fft: int = 512, hop_length: int = 160
) -> np.ndarray:
    """``mask * mixture`` (both :func:`mask_stft`-shaped) back to ``(length,)`` float32 audio."""
    window = torch.hann_window(n_fft, periodic=True)
    return torch.istft(mask * mixture, n_fft, hop_length, window=window, length=length).numpy()


def ideal_ratio_mask(
    target: np.ndarray, interferer: np.ndarray, n_fft: int = 512, hop_length: int = 160
) -> np.ndarray:
    """The oracle ideal ratio mask estimate of ``target`` from ``target + interferer``.

    ``|S| / (|S| + |N|)`` applied to the mixture's STFT and inverted with its phase: the
    ceiling of any mask-based separator with this STFT.

    Returns:
        ``(T,)`` float32 estimate of the target.
    """
    s, n = mask_stft(target, n_fft, hop_length), mask_stft(interferer, n_fft, hop_length)
    mask = s.abs() / (s.abs() + n.abs() + 1e-8)
    return apply_mask(mask, s + n, len(target), n_fft, hop_length).astype(np.float32)
