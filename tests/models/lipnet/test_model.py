"""LipNet architecture: configs, shapes, input preparation, chunked inference, checkpoints."""

import json

import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.models.lipnet import infer, load_checkpoint, save
from avtool.models.lipnet.model import (
    VOCAB_SIZE,
    LipNetConfig,
    build,
    decode_ids,
    encode_text,
    prepare_input,
)


def _crops(frames: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 50, 100, 3), dtype=np.uint8)


def test_paper_config_matches_lipnet():
    config = LipNetConfig.paper()
    assert (config.in_channels, config.height, config.width) == (3, 50, 100)
    assert config.channels == (32, 64, 96)
    assert config.kernels == ((3, 5, 5), (3, 5, 5), (3, 3, 3))
    assert config.hidden == 256 and config.gru_layers == 2
    # 50x100 -> stride 2 -> 25x50 -> pools -> 3x6 with 96 channels, as the Keras model.
    assert config.feature_shape() == (96, 3, 6)


@pytest.mark.parametrize("name", ["paper", "reduced", "debug"])
def test_forward_gives_log_probs_per_frame(name: str):
    torch.manual_seed(0)
    config = LipNetConfig.preset(name)
    model = build(config).eval()
    video = prepare_input(_crops(9), config).unsqueeze(0)
    assert video.shape == (1, config.in_channels, 9, config.height, config.width)
    with torch.no_grad():
        out = model(video)
    assert out.shape == (1, 9, VOCAB_SIZE)
    assert torch.allclose(out.exp().sum(-1), torch.ones(1, 9), atol=1e-5)


def test_prepare_input_standardises_and_downsamples():
    config = LipNetConfig.reduced()
    x = prepare_input(_crops(), config)
    assert x.shape == (1, 20, 25, 50)
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    unit = LipNetConfig.from_dict({**LipNetConfig.paper().to_dict(), "normalize": "unit"})
    y = prepare_input(_crops(), unit)
    assert y.shape == (3, 20, 50, 100) and float(y.min()) >= 0 and float(y.max()) <= 1


def test_prepare_input_refuses_wrong_crop_size():
    with pytest.raises(ModelError, match="expects 25x50"):
        prepare_input(np.zeros((5, 40, 100, 3), np.uint8), LipNetConfig.reduced())


def test_config_round_trip_and_unknown_keys():
    config = LipNetConfig.reduced()
    assert LipNetConfig.from_dict(json.loads(config.to_json())) == config
    with pytest.raises(ModelError, match="unknown keys"):
        LipNetConfig.from_dict({"channel": 3})
    with pytest.raises(ModelError, match="unknown LipNet preset"):
        LipNetConfig.preset("huge")


def test_text_codes_round_trip():
    ids = encode_text("Lay blue at X 4 now")
    assert 0 not in ids
    assert decode_ids(ids) == "lay blue at x  now"


def test_chunked_inference_matches_whole_clip_away_from_seams():
    torch.manual_seed(0)
    config = LipNetConfig.from_dict({**LipNetConfig.debug().to_dict(), "normalize": "unit"})
    model = build(config).eval()
    crops = _crops(130)
    whole = infer(model, crops)
    streamed = infer(model, iter(list(crops)), chunk_frames=40)
    assert whole.shape == streamed.shape == (130, VOCAB_SIZE)
    # Each window sees 25 frames of context either side; the BiGRU state differs only slightly.
    assert np.abs(whole - streamed).max() < 1e-2
    assert infer(model, iter([]), chunk_frames=40).shape == (0, VOCAB_SIZE)


def test_save_and_load_checkpoint(tmp_path):
    torch.manual_seed(1)
    config = LipNetConfig.debug()
    model = build(config).eval()
    path = save(model.state_dict(), config, tmp_path / "m.pt")
    assert (tmp_path / "m.pt.json").is_file()
    loaded = load_checkpoint(path)
    assert loaded.config == config
    crops = _crops(12)
    assert np.array_equal(infer(model, crops), infer(loaded, crops))
    (tmp_path / "m.pt.json").write_text(LipNetConfig.reduced().to_json())
    with pytest.raises(ModelError, match="do not fit"):
        load_checkpoint(path)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="readable"):
        load_checkpoint(tmp_path / "bad.pt", config)
