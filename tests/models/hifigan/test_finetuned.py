"""The shipped HiFi-GAN V1 fine-tuned on GRID s1 (``hifigan-v1-grid-s1``), on a held-out s1 clip."""

from __future__ import annotations

from pathlib import Path

import torch

from avtool import registry
from avtool.io.audio import load_audio
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.models import hifigan

NAME = "hifigan-v1-grid-s1"


def test_shipped_generator_is_float16_v1_and_resynthesises_a_held_out_s1_clip(grid_s1_dir: Path):
    from avtool.datasets.grid import s1_split
    from avtool.metrics.speech import stoi

    resolved = registry.resolve(NAME, task="vocode")
    assert resolved.entry.sample_rate == 22050 and resolved.entry.commercial
    data = torch.load(resolved.path, map_location="cpu", weights_only=True)
    assert {v.dtype for v in data["generator"].values()} == {torch.float16}
    assert hifigan.detect_config(data["generator"]) == hifigan.HiFiGANConfig.v1()
    spec = MelSpec.hifigan_22k()
    assert hifigan.HiFiGANConfig.from_dict(resolved.entry.config).mel == spec
    model = hifigan.load(data)
    assert next(model.parameters()).dtype == torch.float32  # widened when loaded
    clip = grid_s1_dir / "clips" / f"{s1_split()['test'][0]}.mkv"  # never trained on
    audio, rate = load_audio(clip, sample_rate=spec.sample_rate)
    audio = audio[rate : 2 * rate]  # one second of speech keeps the test fast
    mel = mel_spectrogram(audio, spec)
    wave = hifigan.infer(model, mel)[0].numpy()
    assert wave.size == mel.shape[-1] * spec.hop_length
    assert stoi(audio, wave[: audio.size], rate) > 0.85
