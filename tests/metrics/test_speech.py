"""Speech quality measures behave as the literature says: identity is best, noise hurts."""

import numpy as np
import pytest

from avtool.metrics.speech import (
    mel_cepstral_distortion,
    multi_resolution_stft_distance,
    pesq_wb,
    si_sdr,
    stoi,
)


@pytest.fixture(scope="module")
def speech(grid_dir):
    from avtool.io.audio import load_audio

    audio, rate = load_audio(grid_dir / "bbaf2n.mpg", sample_rate=16000)
    return audio, rate


def _noisy(audio: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(audio.size)
    noise *= np.sqrt(np.mean(audio**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def test_si_sdr_matches_the_snr_of_added_noise():
    clean = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    assert si_sdr(clean, _noisy(clean, 10.0)) == pytest.approx(10.0, abs=0.3)
    assert si_sdr(clean, 3.0 * clean) > 100  # scale does not count
    assert si_sdr(clean, clean[::-1].copy()) < 0


def test_stft_distance_zero_for_identity_and_grows_with_noise():
    clean = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    assert multi_resolution_stft_distance(clean, clean) == pytest.approx(0.0, abs=1e-9)
    assert multi_resolution_stft_distance(clean, _noisy(clean, 20)) < (
        multi_resolution_stft_distance(clean, _noisy(clean, 0))
    )


def test_measures_rank_noise_levels_on_real_speech(speech):
    audio, rate = speech
    mild, harsh = _noisy(audio, 20), _noisy(audio, 0)
    assert pesq_wb(audio, audio, rate) > 4.4
    assert pesq_wb(audio, mild, rate) > pesq_wb(audio, harsh, rate)
    assert stoi(audio, audio, rate) > 0.99
    assert stoi(audio, mild, rate) > stoi(audio, harsh, rate) > 0.3
    assert stoi(audio, mild, rate, extended=True) > stoi(audio, harsh, rate, extended=True)
    assert mel_cepstral_distortion(audio, audio, rate) == pytest.approx(0.0, abs=1e-6)
    assert (
        0 < mel_cepstral_distortion(audio, mild, rate) < mel_cepstral_distortion(audio, harsh, rate)
    )


def test_empty_signal_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        si_sdr(np.zeros(0), np.zeros(0))
