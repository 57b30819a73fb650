"""The separation trainer's losses: permutation invariance, one-voice examples."""

from __future__ import annotations

import torch

from avtool.training.separate import pit_loss, target_loss, thresholded_snr


def test_pit_loss_ignores_the_order() -> None:
    torch.manual_seed(0)
    src = torch.randn(3, 2, 800)
    est = src + 0.1 * torch.randn_like(src)
    assert torch.allclose(pit_loss(est, src), pit_loss(est.flip(1), src))
    assert pit_loss(est, src) < pit_loss(src.flip(1) * 0 + torch.randn_like(src), src)


def test_one_voice_examples_reward_an_empty_second_stem() -> None:
    torch.manual_seed(0)
    voice = torch.randn(1, 800)
    src = torch.stack([voice, torch.zeros_like(voice)], 1)
    empty = torch.stack([voice, torch.zeros_like(voice)], 1)
    split = torch.stack([voice * 0.5, voice * 0.5], 1)
    assert pit_loss(empty, src) < pit_loss(split, src)
    assert torch.isfinite(pit_loss(split, src))
    assert float(thresholded_snr(voice, voice)) <= 30.0 + 1e-3


def test_target_loss_is_negative_si_sdr() -> None:
    src = torch.randn(2, 2, 400)
    assert target_loss(src, src) < target_loss(src.flip(1), src)
