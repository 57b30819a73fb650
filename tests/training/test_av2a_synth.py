"""AV2A on synthesised audio: the frozen-feature forward equals the model's own forward."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avtool.models.v2a.model import AUDIO, BOTH, VIDEO, V2AConfig, build
from avtool.models.visual import lip_features
from avtool.training.av2a_synth import _batch, base_l1, forward_features


@pytest.mark.parametrize("mode", [VIDEO, AUDIO, BOTH])
def test_forward_from_features_matches_the_model(mode: int):
    torch.manual_seed(0)
    config = dataclasses.replace(V2AConfig.debug(), audio_encoder=True, lip_landmarks=True)
    model = build(config).eval()
    crops = torch.rand(2, 10, config.crop_size, config.crop_size)
    landmarks = torch.rand(2, 10, 68, 2) * 50 + 20
    lips = lip_features(landmarks)
    mel = torch.randn(2, config.n_mels, 35)
    audio = None if mode == VIDEO else mel
    with torch.no_grad():
        expected = model(crops, 35, audio, mode, lips)
        feats = model.video(crops) + model.lips(lips)
        got = forward_features(model, feats, 35, audio, mode)
    torch.testing.assert_close(got, expected)


def test_batch_pads_inputs_with_the_log_floor_and_masks():
    items = [
        {"feats": torch.ones(3, 4), "mel": torch.zeros(2, 5), "synth": torch.ones(2, 5)},
        {"feats": torch.ones(2, 4), "mel": torch.zeros(2, 3), "synth": torch.ones(2, 3)},
    ]
    feats, mels, synth, mask, f_max = _batch(items, "synth")
    assert feats.shape == (2, 3, 4) and mels.shape == (2, 2, 5) and int(f_max) == 5
    assert float(synth[1, 0, 4]) == pytest.approx(-11.5129, abs=1e-3) and mask[1, 0].sum() == 3
    # The synthesised mels' own error: mean |1 - 0| over the real frames.
    assert base_l1(items) == pytest.approx(1.0)
