"""One checkpoint format: every torch family round-trips through it and the front door, and
each legacy layout the shipped files use still reads (on files the tests write)."""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from avtool.errors import ModelError
from avtool.models import checkpoint, state_dict
from avtool.models.loading import load


def _tiny(family: str) -> tuple[str, torch.nn.Module, dict[str, Any]]:
    """``(task, model, config dict)`` of a tiny random model of ``family``."""
    torch.manual_seed(0)
    if family == "lipnet":
        from avtool.models import lipnet

        config = lipnet.LipNetConfig.debug()
        return "lipread", lipnet.build(config), config.to_dict()
    if family == "lipread-resnet":
        from avtool.models import lipread_resnet

        config = lipread_resnet.LipReaderConfig.debug()
        return "lipread", lipread_resnet.build(config), config.to_dict()
    if family == "v2a":
        from avtool.models import v2a

        config = v2a.V2AConfig.debug()
        return "v2a", v2a.build(config), config.to_dict()
    if family == "masknet":
        from avtool.models.separate import masknet

        config = masknet.MaskNetConfig.debug()
        return "separate", masknet.build(config), config.to_dict()
    if family == "convtasnet":
        from avtool.models.separate import convtasnet

        config = convtasnet.ConvTasNetConfig.debug()
        return "separate", convtasnet.build(config), config.to_dict()
    if family == "spleeter":
        from avtool.models.separate import spleeter

        config = spleeter.SpleeterConfig.debug()
        return "separate", spleeter.build(config), config.to_dict()
    if family == "hifigan":
        from avtool.models import hifigan

        config = hifigan.HiFiGANConfig.debug()
        return "vocode", hifigan.build(config), config.to_dict()
    if family == "melgan":
        from avtool.models import melgan

        config = melgan.MelGANConfig.debug()
        return "vocode", melgan.build(config), config.to_dict()
    if family == "music_lstm":
        from avtool.models.music import lstm

        config = lstm.MusicLSTMConfig.debug()
        return "music", lstm.build(config), asdict(config)
    if family == "music_transformer":
        from avtool.models.music import transformer

        config = transformer.MusicTransformerConfig.debug()
        return "music", transformer.build(config), asdict(config)
    raise AssertionError(family)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Equal outputs' source: every tensor the same (weight norm folded or not)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].device)) for k in sa)


TORCH_FAMILIES = ("lipnet", "lipread-resnet", "v2a", "masknet", "convtasnet", "spleeter",
                  "music_lstm", "music_transformer")  # fmt: skip


@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_build_save_load_round_trip(family: str, tmp_path: Path) -> None:
    task, model, config = _tiny(family)
    extra = {"vocab": _vocabulary()} if family.startswith("music_") else {}
    path = checkpoint.save(tmp_path / "m.pt", family, config, model.state_dict(), extra)
    assert checkpoint.is_checkpoint(path)
    assert not path.with_name("m.pt.json").exists()  # the config travels inside
    loaded = load(str(path), task=task, detect=lambda resolved: family)
    assert loaded.family == family and not loaded.module.training
    assert _same_weights(model, loaded.module)


@pytest.mark.parametrize("family", ("hifigan", "melgan"))
def test_vocoders_round_trip(family: str, tmp_path: Path) -> None:
    """Vocoders fold weight norm on load: the round trip is judged by the waveform."""
    task, model, config = _tiny(family)
    path = checkpoint.save(tmp_path / "g.pt", family, config, model.state_dict())
    loaded = load(str(path), task=task, detect=lambda resolved: family)
    bands = getattr(loaded.config, "num_mels", None) or loaded.config.n_mel_channels
    mel = torch.randn(1, bands, 9, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.eval()(mel)
        got = loaded.module(mel)
    assert torch.allclose(expected, got, atol=1e-5)


def test_anyonenet_saves_the_format_and_keeps_its_json(tmp_path: Path) -> None:
    from avtool.models.anyonenet import checkpoint as anyonenet_checkpoint
    from avtool.models.anyonenet import predictor
    from avtool.models.anyonenet.config import PredictorConfig

    torch.manual_seed(0)
    network = predictor.build(PredictorConfig.debug())
    path = anyonenet_checkpoint.save(tmp_path / "p.pt", network, PredictorConfig.debug(),
                                     {"steps": 7})  # fmt: skip
    assert checkpoint.read(path, "anyonenet").extra["kind"] == "predictor"
    path.with_suffix(".json").unlink()  # the checkpoint alone is enough
    loaded = load(str(path), task="talkinghead", detect=lambda resolved: "anyonenet")
    assert loaded.details["kind"] == "predictor" and loaded.details["steps"] == 7
    assert _same_weights(network, loaded.module)


def test_trainer_save_writes_the_format_with_the_json_beside(tmp_path: Path) -> None:
    from avtool.models import lipread_resnet

    _, model, config = _tiny("lipread-resnet")
    out = state_dict.save(model.state_dict(), json.dumps(config), tmp_path / "r.pt",
                          family="lipread-resnet")  # fmt: skip
    assert checkpoint.is_checkpoint(out) and json.loads(state_dict.config_path(out).read_text())
    reloaded = lipread_resnet.load_checkpoint(out)  # the family's own reader takes it too
    assert _same_weights(model, reloaded)


def test_another_familys_checkpoint_is_refused(tmp_path: Path) -> None:
    _, model, config = _tiny("lipnet")
    path = checkpoint.save(tmp_path / "m.pt", "lipnet", config, model.state_dict())
    with pytest.raises(ModelError, match="not 'v2a'"):
        load(str(path), task="v2a", detect=lambda resolved: "v2a")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert not checkpoint.is_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(ModelError, match=r"bad\.pt"):
        checkpoint.read(tmp_path / "bad.pt")


# --------------------------------------------------------------------------- legacy layouts


def test_legacy_state_dict_with_json_beside(tmp_path: Path) -> None:
    task, model, config = _tiny("lipread-resnet")
    path = state_dict.save(model.state_dict(), json.dumps(config), tmp_path / "r.pt")
    assert not checkpoint.is_checkpoint(path)
    stored = checkpoint.read_any(path, "lipread-resnet")
    assert stored.config == json.loads(json.dumps(config))
    assert stored.state_dict.keys() == model.state_dict().keys()
    loaded = load(str(path), task=task, detect=lambda resolved: "lipread-resnet")
    assert _same_weights(model, loaded.module)


def test_legacy_tagged_music_checkpoint(tmp_path: Path) -> None:
    from avtool.models.music import lstm

    _, model, config = _tiny("music_lstm")
    torch.save(lstm.to_checkpoint(model), tmp_path / "music_lstm.pt")
    stored = checkpoint.read_any(tmp_path / "music_lstm.pt", "music_lstm")
    assert stored.config == config and "vocab" in stored.extra
    loaded = load(str(tmp_path / "music_lstm.pt"), task="music",
                  detect=lambda resolved: "music_lstm")  # fmt: skip
    assert _same_weights(model, loaded.module)


def test_legacy_published_hifigan_with_config_json(tmp_path: Path) -> None:
    from avtool.models import hifigan

    _, model, config = _tiny("hifigan")
    torch.save({"generator": model.state_dict()}, tmp_path / "g_00000001")
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = _registered(tmp_path / "g_00000001", "vocode", "hifigan", tmp_path)
    assert loaded.config == hifigan.HiFiGANConfig.debug()


def test_legacy_published_melgan_state_dict(tmp_path: Path) -> None:
    from avtool.models import melgan

    _, model, _ = _tiny("melgan")
    torch.save(model.state_dict(), tmp_path / "melgan.pt")
    loaded = _registered(tmp_path / "melgan.pt", "vocode", "melgan", tmp_path)
    assert loaded.config == melgan.MelGANConfig.debug()


def test_legacy_asteroid_package(tmp_path: Path) -> None:
    from avtool.models.separate import convtasnet

    _, model, config = _tiny("convtasnet")
    ours = model.state_dict()
    theirs = {v: ours[k] for k, v in convtasnet.asteroid_key_map(model.config).items()}
    package = {"model_name": "ConvTasNet", "model_args": config, "state_dict": theirs}
    torch.save(package, tmp_path / "pytorch_model.bin")
    loaded = load(str(tmp_path / "pytorch_model.bin"), task="separate",
                  detect=lambda resolved: "convtasnet")  # fmt: skip
    assert _same_weights(model, loaded.module)


def test_legacy_spleeter_numpy_checkpoints(tmp_path: Path) -> None:
    from avtool.models.separate import spleeter

    _, model, _ = _tiny("spleeter")
    state = model.state_dict()
    for stem in range(len(model.nets)):
        mapping = spleeter._key_map(f"nets.{stem}.", len(model.config.channels))
        arrays = {theirs: state[ours].numpy() for ours, theirs in mapping.items()}
        with zipfile.ZipFile(tmp_path / f"{stem}.ckpt", "w") as archive:
            archive.writestr("ckpt/data.pkl", pickle.dumps(arrays, protocol=2))
    assert not checkpoint.is_checkpoint(tmp_path / "0.ckpt")
    files = [spleeter.read_numpy_checkpoint(tmp_path / f"{s}.ckpt") for s in range(2)]
    reread = spleeter.load_state(spleeter.build(model.config), files)
    assert _same_weights(model, reread)


def _registered(path: Path, task: str, family: str, folder: Path) -> Any:
    """Load ``path`` as a one-file registry entry of ``family`` (published layouts are told
    by the entry, not by the file)."""
    import hashlib
    import os

    toml = folder / "extra.toml"
    toml.write_text(
        f'[models.tiny]\ntask = "{task}"\nfamily = "{family}"\nlicense = "MIT"\n'
        f'commercial = true\nsource = "{path}"\n'
        f'sha256 = "{hashlib.sha256(path.read_bytes()).hexdigest()}"\n'
        f"size = {path.stat().st_size}\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AVTOOL_REGISTRY", os.fspath(toml))
        return load("tiny", task=task)


def _vocabulary() -> Any:
    from avtool.models.music.tokens import vocabulary

    return vocabulary()
