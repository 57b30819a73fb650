"""STFT / ISTFT shared by the separation models (torch.stft with a periodic Hann window).

Masks are applied to the mixture's complex STFT and inverted with the mixture's phase, so the
ISTFT of (mask * X) summed over stems gives back the mixture exactly when the masks sum to one.
"""

from __future__ import annotations

import torch


def hann(n_fft: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Periodic Hann window of ``n_fft`` samples (the one librosa and Spleeter use)."""
    return torch.hann_window(n_fft, periodic=True, device=device)


def stft(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT, centred (reflect padding).

    Args:
        audio: ``(B, T)`` samples.
        n_fft: window and FFT size in samples.
        hop_length: hop in samples.

    Returns:
        ``(B, n_fft // 2 + 1, F)`` complex64, ``F = T // hop_length + 1``.
    """
    return torch.stft(
        audio,
        n_fft,
        hop_length,
        window=hann(n_fft, audio.device),
        center=True,
        pad_mode="reflect" if audio.shape[-1] > n_fft // 2 else "constant",
        return_complex=True,
    )


def istft(spec: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: ``(B, n_fft // 2 + 1, F)`` complex -> ``(B, length)``."""
    return torch.istft(
        spec, n_fft, hop_length, window=hann(n_fft, spec.device), center=True, length=length
    )
