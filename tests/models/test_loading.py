"""The front door: registry entries and local files load through one call, with their facts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from avtool.errors import ModelError
from avtool.models import hifigan, lipread_resnet
from avtool.models.loading import FAMILIES, family_module, load


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = lipread_resnet.LipReaderConfig.debug()
    model = lipread_resnet.build(config)
    return lipread_resnet.save(model.state_dict(), config, tmp_path_factory.mktemp("r") / "r.pt")


@pytest.fixture
def tiny_vocoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A debug HiFi-GAN in the published layout, registered through $AVTOOL_REGISTRY."""
    torch.manual_seed(0)
    model = hifigan.build(hifigan.HiFiGANConfig.debug())
    path = tmp_path / "g_debug.pt"
    torch.save(hifigan.to_checkpoint(model), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    registry = tmp_path / "extra.toml"
    registry.write_text(
        "[models.tiny-hifigan]\n"
        'task = "vocode"\nfamily = "hifigan"\nlicense = "MIT"\ncommercial = true\n'
        f'source = "{path}"\nsha256 = "{digest}"\nsize = {path.stat().st_size}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("AVTOOL_REGISTRY", str(registry))
    return path


def test_every_family_has_the_one_loading_hook():
    for family in FAMILIES:
        assert callable(family_module(family).load_entry), family


def test_a_registered_entry_loads_with_its_facts(tiny_vocoder: Path):
    loaded = load("tiny-hifigan", task="vocode")
    assert loaded.family == "hifigan" and loaded.name == "tiny-hifigan"
    assert loaded.sha256 == hashlib.sha256(tiny_vocoder.read_bytes()).hexdigest()
    assert loaded.facts() == {
        "name": "tiny-hifigan",
        "family": "hifigan",
        "sha256": loaded.sha256,
        "license": "MIT",
    }
    assert loaded.config == hifigan.HiFiGANConfig.debug()
    mel = torch.zeros(1, loaded.config.num_mels, 7)
    wave = hifigan.infer(loaded.module, mel)
    assert wave.shape == (1, 7 * loaded.module.hop_length)
    assert loaded.load_seconds >= 0


def test_a_local_file_needs_its_family_told(tiny_reader: Path):
    with pytest.raises(ModelError, match="cannot tell"):
        load(str(tiny_reader), task="lipread")
    loaded = load(str(tiny_reader), task="lipread", detect=lambda resolved: "lipread-resnet")
    assert isinstance(loaded.module, lipread_resnet.LipReader)
    assert not loaded.module.training
    assert loaded.files[tiny_reader.name + ".json"].is_file()  # the config travels with it


def test_wrong_task_and_unknown_family_are_refused(tiny_vocoder: Path, tiny_reader: Path):
    with pytest.raises(ModelError, match="not 'lipread'"):
        load("tiny-hifigan", task="lipread")
    with pytest.raises(ModelError, match="unknown model family"):
        load(str(tiny_reader), task="lipread", detect=lambda resolved: "no-such-family")


def test_family_facts_join_the_sidecar_record():
    """The mouth bank (numpy, fast): the facewarp family adds its exemplar count."""
    loaded = load("mouth-bank-grid-s1", task="talkinghead")
    assert loaded.family == "facewarp" and loaded.details["exemplars"] == len(loaded.module)
    facts = loaded.facts()
    assert facts["exemplars"] == len(loaded.module) and facts["sha256"] == loaded.sha256


def test_a_spec_family_claims_its_names_before_the_registry():
    """A Kokoro voice is not a registry name: the kokoro family resolves it (and says which
    voices exist), the registry never sees it; other tasks do not consult it."""
    from avtool.errors import InputError

    with pytest.raises(InputError, match="af_heart"):
        load("af_hearth", task="tts")  # a near miss of a real voice
    with pytest.raises(ModelError, match="unknown model"):
        load("af_hearth", task="vocode")
