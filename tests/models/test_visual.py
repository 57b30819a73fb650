"""The shared visual front-end: its config, and the encoders V2A and the lip reader build on."""

import pytest
import torch

from avtool.models.v2a.model import V2AConfig
from avtool.models.visual import LIP_DIM, LipEncoder, VideoEncoder, VisualConfig, prepare_crops


def test_config_presets_match_v2a_and_round_trip() -> None:
    for name in VisualConfig.presets:
        config = VisualConfig.preset(name)
        assert V2AConfig.preset(name).visual == config
        assert VisualConfig.from_dict(config.to_dict()) == config
    data = {**VisualConfig.debug().to_dict(), "stem_kernel": [3, 3, 3], "gru_layers": 1}
    with pytest.raises(ValueError, match="gru_layers"):
        VisualConfig.from_dict(data)
    assert VisualConfig.from_dict(data, ignore=frozenset({"gru_layers"})) == VisualConfig.debug()


def test_encoders_shapes_and_zero_started_lip_stream() -> None:
    torch.manual_seed(0)
    config = VisualConfig.debug()
    gray = torch.randint(0, 256, (2, 5, 88, 88), dtype=torch.uint8)
    feats = VideoEncoder(config)(prepare_crops(gray, config.crop_size))
    assert feats.shape == (2, 5, config.hidden)
    lips = LipEncoder(config.hidden)(torch.randn(2, 5, LIP_DIM))
    assert lips.shape == (2, 5, config.hidden) and not lips.any()  # added without effect
    with pytest.raises(ValueError, match="must divide"):
        prepare_crops(gray, 30)
