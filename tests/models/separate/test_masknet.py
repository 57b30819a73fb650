"""The mask network: shapes, stems that sum to the mixture, the visual input contract."""

from __future__ import annotations

import pytest
import torch

from avtool.models.separate import masknet


def test_blind_stems_sum_to_the_mixture() -> None:
    torch.manual_seed(0)
    model = masknet.build(masknet.MaskNetConfig.debug()).eval()
    mix = torch.randn(2, 8000) * 0.1
    with torch.no_grad():
        stems = model.separate(mix)
    assert stems.shape == (2, 2, 8000)
    assert torch.allclose(stems.sum(1), mix, atol=1e-6)


def test_audio_visual_needs_lips_and_resamples_them() -> None:
    torch.manual_seed(0)
    model = masknet.build(masknet.MaskNetConfig.debug(visual_dim=6)).eval()
    mix = torch.randn(1, 16000) * 0.1
    with pytest.raises(ValueError, match="visual"):
        model.separate(mix)
    with torch.no_grad():
        a = model.separate(mix, torch.zeros(1, 25, 6))
        b = model.separate(mix, torch.ones(1, 25, 6))
    assert a.shape == (1, 2, 16000) and torch.allclose(a.sum(1), mix, atol=1e-6)
    assert not torch.allclose(a, b)  # the lips change the estimate


def test_scale_invariant_masks() -> None:
    torch.manual_seed(0)
    model = masknet.build(masknet.MaskNetConfig.debug()).eval()
    mix = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        assert torch.allclose(model.separate(mix * 10), model.separate(mix) * 10, atol=1e-4)


def test_config_round_trip() -> None:
    config = masknet.MaskNetConfig.audio_visual()
    assert masknet.MaskNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        masknet.MaskNetConfig.from_dict({"nope": 1})
