"""The content V2A model (frozen V2A + frozen lip reader + new decoder) and its trainer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from avtool.datasets.grid import s1_split
from avtool.io.features import MelSpec
from avtool.models import lipread_resnet, v2a
from avtool.models.lipread_resnet import LipReaderConfig
from avtool.models.v2a import V2AConfig, config_from_dict, infer, lip_features
from avtool.models.v2a.content import ContentV2A, ContentV2AConfig
from avtool.training.v2a_content import main as train_content
from tests.training.test_v2a import _write_cache


def _config(lips: bool = True) -> ContentV2AConfig:
    acoustic = dataclasses.replace(V2AConfig.debug(), lip_landmarks=lips)
    return ContentV2AConfig(acoustic, LipReaderConfig.debug(), decoder_channels=16,
                            decoder_layers=2)  # fmt: skip


def _inputs(t: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    crops = torch.rand(1, t, 22, 22, generator=g)
    marks = torch.randn(1, t, 68, 2, generator=g) * 2 + torch.tensor([100.0, 100.0])
    marks[..., 36:42, 0] -= 30
    marks[..., 42:48, 0] += 30
    return crops, lip_features(marks)


def test_output_follows_the_mel_contract_and_equals_decode_of_features() -> None:
    torch.manual_seed(0)
    model = ContentV2A(_config()).eval()
    spec = MelSpec.hifigan_22k()
    for t in (1, 7, 30):
        crops, lips = _inputs(t)
        n_mel = spec.frames_for(round(t * spec.sample_rate / 25))
        mel = model(crops, n_mel, lips=lips)
        assert mel.shape == (1, 80, n_mel) and torch.isfinite(mel).all()
        feats = model.features(crops, lips)
        assert feats.shape == (1, t, model.config.feature_size)
        norm = model.decode(feats, n_mel)
        assert torch.allclose(mel, norm * model.mel_std[:, None] + model.mel_mean[:, None])


def test_audio_input_is_refused() -> None:
    model = ContentV2A(_config()).eval()
    crops, lips = _inputs()
    with pytest.raises(ValueError, match="video-only"):
        model(crops, 20, noisy_mel=torch.zeros(1, 80, 20), lips=lips)
    assert model.audio is None and model.lips is not None


def test_decoder_training_leaves_both_trained_parts_untouched() -> None:
    torch.manual_seed(0)
    model = ContentV2A(_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    assert not model.acoustic.training and not model.reader.training
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    crops, lips = _inputs()
    for _ in range(2):
        loss = model(crops, 30, lips=lips).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("acoustic.", "reader."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # incl. BN stats
    assert not torch.equal(before["inp.weight"], after["inp.weight"])


def test_config_round_trip_dispatch_and_consistency() -> None:
    config = _config()
    data = json.loads(config.to_json())
    assert data["kind"] == "content"
    assert config_from_dict(data) == config
    assert isinstance(config_from_dict(V2AConfig.debug().to_dict()), V2AConfig)
    with pytest.raises(ValueError, match="same crops"):
        ContentV2AConfig(V2AConfig.reduced(), LipReaderConfig.debug())
    with pytest.raises(ValueError, match="unknown"):
        ContentV2AConfig.from_dict({**data, "extra": 1})


def test_load_builds_the_content_model_and_refuses_other_weights() -> None:
    from avtool.errors import ModelError

    torch.manual_seed(0)
    model = ContentV2A(_config())
    loaded = v2a.load(model.state_dict(), _config())
    assert isinstance(loaded, ContentV2A) and not loaded.training
    with pytest.raises(ModelError):
        v2a.load(model.state_dict(), _config(lips=False))


def _parts(folder: Path) -> tuple[Path, Path]:
    torch.manual_seed(1)
    acoustic_config = dataclasses.replace(V2AConfig.debug(), lip_landmarks=True)
    acoustic = v2a.build(acoustic_config)
    folder.mkdir(parents=True, exist_ok=True)
    acoustic_path = folder / "v2a.pt"
    torch.save(acoustic.state_dict(), acoustic_path)
    (folder / "v2a.pt.json").write_text(acoustic_config.to_json())
    reader = lipread_resnet.build(LipReaderConfig.debug())
    reader_path = lipread_resnet.save(reader.state_dict(), LipReaderConfig.debug(),
                                      folder / "reader.pt")  # fmt: skip
    return acoustic_path, reader_path


def test_trainer_learns_is_deterministic_and_its_model_runs(tmp_path: Path) -> None:
    split = s1_split()
    cache = tmp_path / "cache"
    _write_cache(cache, split["train"][:6] + split["val"])
    acoustic, reader = _parts(tmp_path / "parts")

    def run(out: Path) -> dict:
        argv = ["--cache", str(cache), "--out", str(out), "--acoustic", str(acoustic),
                "--reader", str(reader), "--channels", "16", "--layers", "2", "--epochs", "4",
                "--batch-size", "3", "--limit", "6"]  # fmt: skip
        assert train_content(argv) == 0
        return json.loads((out / "summary.json").read_text())

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert a["train_clips"] == 6 and a["val_clips"] == len(split["val"])
    assert a["history"] == b["history"]
    vals = [h["val_l1"] for h in a["history"]]
    assert min(vals[1:]) < vals[0]  # the decoder learns something on held-out clips
    from avtool.models import checkpoint

    assert checkpoint.is_checkpoint(tmp_path / "a" / "v2a.pt")  # config inside, JSON beside
    stored = checkpoint.read(tmp_path / "a" / "v2a.pt", "v2a")
    assert stored.config == json.loads((tmp_path / "a" / "v2a.pt.json").read_text())
    sa, sb = (checkpoint.read(tmp_path / r / "v2a.pt").state_dict for r in "ab")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # The trained parts went in unchanged.
    source = torch.load(acoustic, weights_only=True)
    assert all(torch.equal(sa[f"acoustic.{k}"], v) for k, v in source.items())

    from avtool.tasks.v2a import load_model

    loaded = load_model(str(tmp_path / "a" / "v2a.pt"), device="cpu")
    assert isinstance(loaded.module, ContentV2A) and loaded.module.config.mel_preset
    crops = torch.randint(0, 256, (12, 88, 88), dtype=torch.uint8)
    marks = torch.randn(12, 68, 2) + 100
    mel = infer(loaded.module, crops, 41, landmarks=marks)
    assert mel.shape == (80, 41) and torch.isfinite(mel).all()


def test_lip_features_reach_whichever_part_has_a_lip_stream() -> None:
    crops, lips = _inputs()
    for acoustic_lips, reader_lips in ((True, False), (False, True), (True, True)):
        acoustic = dataclasses.replace(V2AConfig.debug(), lip_landmarks=acoustic_lips)
        reader = dataclasses.replace(LipReaderConfig.debug(), lip_landmarks=reader_lips)
        torch.manual_seed(0)
        model = ContentV2A(ContentV2AConfig(acoustic, reader, 16, 1)).eval()
        assert model.lips is not None and model.config.lip_landmarks
        assert model(crops, 30, lips=lips).shape == (1, 80, 30)
    plain = ContentV2A(_config(lips=False)).eval()
    assert plain.lips is None and not plain.config.lip_landmarks


def test_envelope_correlation_loss_scores_shape_not_level() -> None:
    from avtool.training.v2a_content import envelope_correlation_loss

    model = ContentV2A(_config())
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 80, 96, generator=g)
    mask = torch.ones(2, 1, 96)
    same = envelope_correlation_loss(model, target, target, mask)
    assert abs(float(same)) < 1e-4
    # A louder copy (log amplitude + const in normalised units) has the same envelopes.
    louder = target + 0.5 / model.mel_std[:, None]
    assert abs(float(envelope_correlation_loss(model, louder, target, mask))) < 1e-4
    flat = torch.zeros_like(target)  # no envelope at all
    assert float(envelope_correlation_loss(model, flat, target, mask)) > 0.9
    shuffled = target[..., torch.randperm(96, generator=g)]
    assert float(envelope_correlation_loss(model, shuffled, target, mask)) > 0.5
    # Segments reaching into padding do not count.
    padded = mask.clone()
    padded[..., 40:] = 0
    garbage = torch.where(padded.bool(), target, -target)
    assert abs(float(envelope_correlation_loss(model, garbage, target, padded))) < 1e-4
