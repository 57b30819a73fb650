"""Output-timing calibration: finds a known lag, ignores the model's own advance, writes the
config JSON that inference then applies."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.datasets.grid import s1_split
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.models.v2a import V2AConfig, advance, build, infer
from avtool.tasks import calibrate_v2a as calibrate
from avtool.tasks.eval.v2a import Clip


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    """A voiced harmonic complex under a syllable-rate (~4 Hz) envelope with pauses."""
    sr = 22050
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 15 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    n = int(seconds * 4) + 1
    levels = rng.uniform(0.5, 1.0, n) * (np.arange(n) % 3 != 2)  # every third syllable a pause
    envelope = np.convolve(np.repeat(levels, sr // 4)[: len(t)], np.hanning(800), "same")
    return (0.3 * voice * envelope / envelope.max()).astype(np.float32)


def test_finds_a_known_lag_of_two_frames() -> None:
    spec = MelSpec.hifigan_22k()
    references = [_speech_like(2.0, 0)]
    lagged = []
    for audio in references:
        mel = mel_spectrogram(audio, spec)[0]
        lagged.append(torch.cat([mel[:, :1].repeat(1, 2), mel[:, :-2]], dim=1))  # 2 frames late
    means = calibrate.stoi_by_advance(lagged, references, spec, max_advance=3, iters=8)
    assert set(means) == {0, 1, 2, 3}
    assert calibrate.best_advance(means) == 2
    assert means[2] > means[0] + 0.02


def test_best_advance_prefers_the_smaller_on_a_tie() -> None:
    assert calibrate.best_advance({0: 0.50001, 1: 0.50004, 2: 0.4}) == 0
    assert calibrate.best_advance({0: 0.5, 1: 0.53, 2: 0.52}) == 1


def _debug_model(seed: int = 0):
    torch.manual_seed(seed)
    return build(V2AConfig.debug()).eval()


def test_raw_mels_ignore_and_keep_the_models_own_advance() -> None:
    model = _debug_model()
    crops = np.random.default_rng(0).integers(0, 256, (10, 88, 88), dtype=np.uint8)
    clip = Clip("x", crops, np.zeros(8820, np.float32), "bin blue at a one now")
    model.config = dataclasses.replace(model.config, output_advance=2)
    (raw,) = calibrate.raw_mels(model, [clip])
    assert model.config.output_advance == 2
    assert torch.equal(advance(raw, 2), infer(model, crops, raw.shape[1]))


#: The first few validation clips (main's --limit): the whole split would make a minutes-long test.
VAL_CLIPS = 3


@pytest.fixture
def val_cache(tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for n, clip_id in enumerate(s1_split()["val"][:VAL_CLIPS]):
        audio = _speech_like(1.0, n)
        np.savez(folder / f"{clip_id}.npz", gray88=rng.integers(0, 256, (25, 88, 88), np.uint8),
                 audio=(audio * 32767).astype(np.int16), text="bin blue at a one now",
                 landmarks=np.zeros((25, 68, 2), np.float32))  # fmt: skip
    return folder


def test_main_writes_the_measured_advance_into_the_config(
    val_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from avtool.tasks.v2a import load_model

    weights = tmp_path / "run" / "best.pt"
    weights.parent.mkdir()
    torch.save(_debug_model().state_dict(), weights)
    (weights.parent / "config.json").write_text(json.dumps(V2AConfig.debug().to_dict()))
    argv = ["--cache", str(val_cache), "--model", str(weights), "--max-advance", "2",
            "--iters", "4", "--limit", str(VAL_CLIPS)]  # fmt: skip
    assert calibrate.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips"] == VAL_CLIPS
    by_advance = {int(k): v for k, v in report["stoi_by_advance"].items()}
    assert set(by_advance) == {0, 1, 2}
    assert report["output_advance"] == calibrate.best_advance(by_advance)
    assert report["config"] == str(weights.parent / "config.json")
    loaded = load_model(str(weights), device="cpu")
    assert loaded.module.config.output_advance == report["output_advance"]
