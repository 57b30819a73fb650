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


def test_two_speaker_mixtures_order_ratio_and_no_clipping() -> None:
    rng = np.random.default_rng(2)
    target = (rng.standard_normal(800) * 0.4).astype(np.float32)
    voices = {g: [ev.Voice(f"{g}{i}", rng.standard_normal(500).astype(np.float32) * 3, "x", "F", g)
                  for i in range(3)] for g in ev.GROUPS}  # fmt: skip
    made = list(ev.two_speaker_mixtures(target, "clip", voices, (0.0, -5.0)))
    assert [(g, snr) for g, _, snr, *_ in made] == [(g, s) for g in ev.GROUPS for s in (0.0, -5.0)]
    for group, voice, snr, mix, tgt, oth in made:
        assert voice in voices[group] and mix.shape == tgt.shape == oth.shape == target.shape
        assert np.abs(mix).max() <= 0.99 + 1e-6  # scaled together, never clipped
        np.testing.assert_allclose(mix, tgt + oth, atol=1e-5)
        assert abs(10 * np.log10(np.mean(tgt**2) / np.mean(oth**2)) - snr) < 1e-3
    again = list(ev.two_speaker_mixtures(target, "clip", voices, (0.0, -5.0)))
    assert all(np.array_equal(a[3], b[3]) for a, b in zip(made, again, strict=True))


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
