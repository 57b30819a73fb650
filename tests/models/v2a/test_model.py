"""The V2A/AV2A network: shapes, frame counts, per-modality batch norm, configs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avtool.errors import ModelError
from avtool.io.features import MelSpec
from avtool.models.v2a import (
    AUDIO,
    BOTH,
    VIDEO,
    ModalityBatchNorm1d,
    V2AConfig,
    advance,
    build,
    count_parameters,
    infer,
    lip_features,
    load,
    prepare_crops,
)
from avtool.models.visual import LIP_MIRROR


def _model(audio: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    config = dataclasses.replace(V2AConfig.debug(), audio_encoder=audio)
    return build(config).eval()


@pytest.mark.parametrize("n_video", [1, 7, 75])
def test_output_has_exactly_the_mel_contract_frame_count(n_video: int) -> None:
    spec = MelSpec.hifigan_22k()
    n_mel = spec.frames_for(round(n_video * spec.sample_rate / 25))
    crops = torch.randint(0, 256, (n_video, 88, 88), dtype=torch.uint8)
    mel = infer(_model(), crops, n_mel)
    assert mel.shape == (80, n_mel) and mel.dtype == torch.float32
    assert torch.isfinite(mel).all()


def test_av2a_uses_the_audio_and_each_mode_differs() -> None:
    model = _model(audio=True)
    x = prepare_crops(torch.randint(0, 256, (2, 10, 88, 88), dtype=torch.uint8), 22)
    noisy = torch.randn(2, 80, 35) - 5
    with torch.no_grad():
        outs = {m: model(x, 35, noisy if m != VIDEO else None, m) for m in (VIDEO, AUDIO, BOTH)}
        other_audio = model(x, 35, noisy + 3, BOTH)
    assert all(o.shape == (2, 80, 35) for o in outs.values())
    assert not torch.allclose(outs[VIDEO], outs[BOTH])
    assert not torch.allclose(outs[AUDIO], outs[BOTH])
    assert not torch.allclose(other_audio, outs[BOTH])  # the audio input matters


def test_audio_modes_need_an_av2a_model_and_audio() -> None:
    x = torch.rand(1, 5, 22, 22)
    with pytest.raises(ValueError, match="AV2A"):
        _model()(x, 17, torch.zeros(1, 80, 17), BOTH)
    with pytest.raises(ValueError, match="noisy_mel"):
        _model(audio=True)(x, 17, None, AUDIO)


def test_modality_batch_norm_keeps_separate_running_statistics() -> None:
    norm = ModalityBatchNorm1d(4).train()
    norm.mode = AUDIO
    norm(torch.randn(8, 4, 10) * 3 + 5)
    assert torch.allclose(norm.running_mean[VIDEO], torch.zeros(4))
    assert torch.allclose(norm.running_mean[BOTH], torch.zeros(4))
    assert (norm.running_mean[AUDIO] > 0.2).all()  # moved by momentum 0.1 towards 5
    norm.copy_stats(AUDIO, (VIDEO, BOTH))
    assert torch.equal(norm.running_mean[VIDEO], norm.running_mean[AUDIO])
    # In eval mode each mode normalises with its own statistics.
    norm.eval()
    x = torch.full((1, 4, 3), 5.0)
    norm.running_mean[BOTH].zero_()
    norm.mode = AUDIO
    a = norm(x)
    norm.mode = BOTH
    assert not torch.allclose(a, norm(x))


def test_prepare_crops_pools_and_scales() -> None:
    crops = torch.zeros(1, 2, 88, 88, dtype=torch.uint8)
    crops[..., :2, :2] = 255
    out = prepare_crops(crops, 44)
    assert out.shape == (1, 2, 44, 44)
    assert out[0, 0, 0, 0] == 1.0 and out[0, 0, 1, 1] == 0.0
    with pytest.raises(ValueError, match="divide"):
        prepare_crops(crops, 30)


def test_advance_moves_the_mel_earlier_and_repeats_the_last_frame() -> None:
    mel = torch.arange(10, dtype=torch.float32).reshape(2, 5)  # (n_mels, F)
    assert advance(mel, 0) is mel
    assert torch.equal(advance(mel, 2), torch.tensor([[2.0, 3, 4, 4, 4], [7, 8, 9, 9, 9]]))
    assert torch.equal(advance(mel, 9), mel[:, [4, 4, 4, 4, 4]])
    assert advance(torch.zeros(80, 0), 1).shape == (80, 0)


def test_infer_applies_the_configured_output_advance() -> None:
    model = _model()
    crops = torch.randint(0, 256, (9, 88, 88), dtype=torch.uint8)
    raw = infer(model, crops, 31)
    model.config = dataclasses.replace(model.config, output_advance=2)
    assert torch.equal(infer(model, crops, 31), advance(raw, 2))
    with pytest.raises(ValueError, match="output_advance"):
        dataclasses.replace(model.config, output_advance=-1)


def test_config_round_trip_and_names() -> None:
    for name in ("paper", "reduced", "debug"):
        config = V2AConfig.preset(name)
        assert V2AConfig.from_dict(config.to_dict()) == config
    shifted = dataclasses.replace(V2AConfig.reduced(), output_advance=1)
    assert V2AConfig.from_dict(shifted.to_dict()).output_advance == 1
    with pytest.raises(ModelError, match="unknown V2A preset"):
        V2AConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown V2AConfig fields"):
        V2AConfig.from_dict({"crop_size": 44, "bogus": 1})
    # The shipped CPU configuration stays small (weights well under 20 MB).
    assert count_parameters(build(V2AConfig.reduced())) * 4 < 20e6


def test_load_refuses_mismatched_weights_and_is_deterministic() -> None:
    from avtool.errors import ModelError

    model = _model(seed=1)
    state = model.state_dict()
    again = load(state, model.config)
    crops = torch.randint(0, 256, (9, 88, 88), dtype=torch.uint8, generator=torch.Generator())
    assert torch.equal(infer(model, crops, 31), infer(again, crops, 31))
    with pytest.raises(ModelError, match="do not match"):
        load(state, dataclasses.replace(model.config, hidden=8))


def _face_landmarks(t: int, seed: int = 0) -> torch.Tensor:
    """``(t, 68, 2)`` pixel landmarks: eyes 60 px apart, a moving mouth below them."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(t, 68, 2, generator=g) * 4 + torch.tensor([180.0, 140.0])
    pts[:, 36:42] += torch.tensor([-30.0, 0.0])
    pts[:, 42:48] += torch.tensor([30.0, 0.0])
    pts[:, 48:68] += torch.tensor([0.0, 50.0])
    return pts


def test_lip_features_ignore_head_position_roll_and_scale() -> None:
    pts = _face_landmarks(6)
    angle = torch.tensor(0.4)
    rot = torch.stack([torch.stack([angle.cos(), -angle.sin()]),
                       torch.stack([angle.sin(), angle.cos()])])  # fmt: skip
    moved = 1.7 * pts @ rot.T + torch.tensor([25.0, -40.0])
    feats = lip_features(pts)
    assert feats.shape == (6, 40)
    assert torch.allclose(lip_features(moved), feats, atol=1e-4)
    # Opening the mouth changes the features.
    opened = pts.clone()
    opened[:, 57, 1] += 10
    assert (lip_features(opened) - feats).abs().max() > 0.05


def test_lip_features_mirror_matches_a_mirrored_face() -> None:
    pts = _face_landmarks(4, seed=2)
    mirrored = pts.clone()
    mirrored[..., 0] = 360 - mirrored[..., 0]
    perm = list(range(68))
    perm[36:42], perm[42:48] = range(42, 48), range(36, 42)
    for a, b in zip(range(48, 68), LIP_MIRROR, strict=True):
        perm[a] = b
    assert torch.allclose(lip_features(mirrored[:, perm]), lip_features(pts, mirror=True),
                          atol=1e-5)  # fmt: skip


def test_lip_stream_starts_neutral_then_uses_the_landmarks() -> None:
    base = _model(seed=3)
    torch.manual_seed(4)
    lipped = build(dataclasses.replace(base.config, lip_landmarks=True)).eval()
    missing, unexpected = lipped.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("lips.") for k in missing)
    crops = torch.randint(0, 256, (9, 88, 88), dtype=torch.uint8, generator=torch.Generator())
    marks = _face_landmarks(9)
    # A zero output layer: a trained model gains the stream without changing its predictions.
    assert torch.equal(infer(base, crops, 31), infer(lipped, crops, 31, landmarks=marks))
    with torch.no_grad():
        lipped.lips.conv2.weight.normal_()
    opened = marks.clone()
    opened[:, 57, 1] += 12
    assert not torch.allclose(infer(lipped, crops, 31, landmarks=marks),
                              infer(lipped, crops, 31, landmarks=opened))  # fmt: skip
    with pytest.raises(ValueError, match="landmarks"):
        infer(lipped, crops, 31)
    with pytest.raises(ValueError, match="lips"):
        base(prepare_crops(crops[None], 22), 31, lips=lip_features(marks)[None])


def test_read_checkpoint_takes_the_calibrated_advance_from_the_json_beside(tmp_path) -> None:
    import json

    from avtool.models import checkpoint
    from avtool.models.v2a import read_checkpoint, save_checkpoint

    model = _model()
    path = save_checkpoint(tmp_path / "best.pt", model.state_dict(), model.config, {"epoch": 1})
    assert checkpoint.is_checkpoint(path)
    stored = read_checkpoint(path)
    assert V2AConfig.from_dict(stored.config) == model.config and stored.extra == {"epoch": 1}
    # tasks/calibrate_v2a writes output_advance into the run's config.json.
    (tmp_path / "config.json").write_text(json.dumps({**stored.config, "output_advance": 2}))
    assert read_checkpoint(path).config["output_advance"] == 2
    assert read_checkpoint(path, {"output_advance": 3}).config["output_advance"] == 3
    # An earlier trainer's bare state dict takes its whole config from the JSON.
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    legacy = read_checkpoint(tmp_path / "bare.pt")
    assert legacy.config["output_advance"] == 2
    assert all(torch.equal(legacy.state_dict[k], v) for k, v in model.state_dict().items())
