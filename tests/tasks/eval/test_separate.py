"""eval separate's building blocks: mixing at a ratio, the v2a-mask baseline, summaries, F0."""

from __future__ import annotations

import numpy as np

from avtool.metrics.separation import ideal_ratio_mask, improvements, sdr
from avtool.metrics.speech import si_sdr
from avtool.tasks.eval import separate as ev


def test_scale_to_snr_and_fit() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(1000), rng.standard_normal(300) * 5
    other = ev.scale_to_snr(a, ev.fit(b, 1000, 7), -5.0)
    assert len(other) == 1000
    assert abs(10 * np.log10(np.mean(a**2) / np.mean(other**2)) + 5.0) < 1e-3


def test_baseline_mask_with_a_perfect_prediction_beats_the_mixture() -> None:
    rng = np.random.default_rng(1)
    t = np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000).astype(np.float32)
    n = (rng.standard_normal(16000) * 0.5).astype(np.float32)
    est = ev.v2a_mask_estimate(t + n, t)
    assert si_sdr(t, est) > si_sdr(t, t + n) + 3
    irm = ideal_ratio_mask(t, n)
    scores = improvements(t, irm, t + n)
    assert scores["si_sdri"] > 5 and sdr(t, t) > 50


def test_summarise_pools_wer() -> None:
    rows = [
        {
            "group": "grid",
            "gender": "same",
            "snr": 0.0,
            "systems": {"av": {"si_sdri": 2.0, "wer_errors": 1, "wer_words": 6}},
        },
        {
            "group": "s4",
            "gender": "cross",
            "snr": 0.0,
            "systems": {"av": {"si_sdri": 4.0, "wer_errors": 3, "wer_words": 6}},
        },
    ]
    out = ev.summarise(rows)
    assert out["all/+0dB"]["av"]["si_sdri"] == 3.0 and out["all/+0dB"]["av"]["wer"] == round(
        4 / 12, 4
    )
    assert out["grid/same/+0dB"]["n"]["mixtures"] == 1


def test_median_f0_of_a_tone() -> None:
    tone = np.sin(np.arange(16000) * 2 * np.pi * 200 / 16000)
    assert abs(ev.median_f0(tone) - 200) < 10
