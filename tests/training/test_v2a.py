"""The V2A/AV2A trainer: checkpoints, resume, determinism, the AV2A stage (tiny configs).

The trainer is exercised on a small cache of clips whose mel is a function of the crops (so the
loss can fall); the real s1 cache is used instead when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.datasets.grid import s1_split
from avtool.models import checkpoint
from avtool.models.v2a import read_checkpoint
from avtool.training import v2a as train


def _weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a trainer's ``best.pt`` (an avtool checkpoint)."""
    assert checkpoint.is_checkpoint(path)
    return read_checkpoint(path).state_dict


def _write_cache(folder: Path, ids: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for clip_id in ids:
        t = 12
        gray = rng.integers(0, 256, (t, 88, 88), dtype=np.uint8)
        brightness = gray.reshape(t, -1).mean(axis=1) / 255.0
        n_mel = 41  # frames_for(12 * 882) with the hifigan-22k contract
        per_frame = np.interp(np.linspace(0, t - 1, n_mel), np.arange(t), brightness)
        mel = (np.log(1e-3) + 4 * per_frame)[None].repeat(80, 0).astype(np.float32)
        audio = (rng.standard_normal(12 * 882) * 3000).astype(np.int16)
        # Eyes 60 px apart, the lips below them moving with the brightness.
        marks = rng.normal(0, 3, (t, 68, 2)) + np.array([180.0, 140.0])
        marks[:, 36:42, 0] -= 30
        marks[:, 42:48, 0] += 30
        marks[:, 48:68, 1] += 50
        marks[:, 57, 1] += 20 * brightness
        np.savez(folder / f"{clip_id}.npz", gray88=gray, mel=mel, audio=audio,
                 landmarks=marks.astype(np.float32))  # fmt: skip


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    split = s1_split()
    folder = tmp_path / "cache"
    _write_cache(folder, split["train"][:6] + split["val"])
    return folder


def _run(cache: Path, out: Path, *extra: str) -> dict:
    argv = ["--cache", str(cache), "--out", str(out), "--config", "debug", "--limit", "6",
            "--batch-size", "3", *extra]  # fmt: skip
    assert train.main(argv) == 0
    return json.loads((out / "summary.json").read_text())


def test_trains_checkpoints_and_is_deterministic(cache: Path, tmp_path: Path) -> None:
    a = _run(cache, tmp_path / "a", "--epochs", "2")
    b = _run(cache, tmp_path / "b", "--epochs", "2")
    assert a["epochs"] == 2 and a["train_clips"] == 6 and a["val_clips"] == len(s1_split()["val"])
    assert a["best_val_l1"] == b["best_val_l1"]
    sa, sb = _weights(tmp_path / "a" / "best.pt"), _weights(tmp_path / "b" / "best.pt")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    stored = checkpoint.read(tmp_path / "a" / "best.pt", "v2a")
    assert stored.config == config and stored.extra["stage"] == "v2a"
    assert config["crop_size"] == 22 and config["audio_encoder"] is False
    # Per-band mel statistics were taken from the training clips.
    assert float(sa["mel_mean"].mean()) < -4


def test_resume_continues_where_it_stopped(cache: Path, tmp_path: Path) -> None:
    full = _run(cache, tmp_path / "full", "--epochs", "2")
    part = tmp_path / "part"
    first = _run(cache, part, "--epochs", "2", "--stop-after", "1")
    assert first["epochs"] == 1
    assert torch.load(part / "last.pt", weights_only=False)["epoch"] == 1
    resumed = _run(cache, part, "--epochs", "2")
    assert resumed["epochs"] == 2
    assert resumed["best_val_l1"] == full["best_val_l1"]
    assert "resumed from" in (part / "train.log").read_text()


def test_av2a_stage_starts_from_v2a_weights(cache: Path, tmp_path: Path) -> None:
    _run(cache, tmp_path / "v2a", "--epochs", "1")
    v2a = _weights(tmp_path / "v2a" / "best.pt")
    # An earlier run's layout (a bare state dict with config.json beside it) still starts it.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save(v2a, legacy / "best.pt")
    (legacy / "config.json").write_text((tmp_path / "v2a" / "config.json").read_text())
    summary = _run(cache, tmp_path / "av", "--stage", "av2a", "--init",
                   str(legacy / "best.pt"), "--epochs", "1")  # fmt: skip
    assert summary["config"]["audio_encoder"] is True
    av = _weights(tmp_path / "av" / "best.pt")
    assert any(k.startswith("audio.") for k in av)
    assert torch.equal(av["mel_mean"], v2a["mel_mean"])  # statistics carried over
    # Separate statistics per modality combination were trained (rows differ).
    stats = av["fuse_norm.running_mean"]
    assert stats.shape[0] == 3 and not torch.allclose(stats[0], stats[2])


def test_add_noise_hits_the_snr() -> None:
    audio = torch.sin(torch.arange(22050) * 0.05)
    noisy = train.add_noise(audio, 5.0, torch.Generator().manual_seed(0))
    noise = noisy - audio
    snr = 10 * torch.log10(audio.pow(2).mean() / noise.pow(2).mean())
    assert abs(float(snr) - 5.0) < 0.01


def test_warm_restart_adds_the_lip_stream_to_trained_weights(cache: Path, tmp_path: Path) -> None:
    _run(cache, tmp_path / "v2a", "--epochs", "1")
    start = _weights(tmp_path / "v2a" / "best.pt")
    summary = _run(cache, tmp_path / "lips", "--init", str(tmp_path / "v2a" / "best.pt"),
                   "--lip-landmarks", "--delta-weight", "0.5", "--epochs", "1")  # fmt: skip
    assert summary["config"]["lip_landmarks"] is True and summary["delta_weight"] == 0.5
    log = (tmp_path / "lips" / "train.log").read_text()
    assert "initialised from" in log and "lips.conv1.weight" in log
    out = _weights(tmp_path / "lips" / "best.pt")
    assert torch.equal(out["mel_mean"], start["mel_mean"])  # statistics came with the weights
    # The lip statistics were taken from the training clips' landmarks (features ~±0.5).
    assert float(out["lips.std"].min()) > 1e-3 and float(out["lips.mean"].abs().max()) < 1.0
    assert float(out["lips.conv2.weight"].abs().sum()) > 0  # the zero layer was trained
    # A checkpoint with the stream cannot start a model without it.
    with pytest.raises(SystemExit, match="does not match"):
        _run(cache, tmp_path / "back", "--init", str(tmp_path / "lips" / "best.pt"))


def test_delta_loss_penalises_a_smoothed_mel() -> None:
    from avtool.models.v2a import V2AConfig, build

    model = build(V2AConfig.debug())
    target = torch.zeros(1, 80, 40)
    target[..., 10:20] = 3.0  # a sharp onset and offset
    mask = torch.ones(1, 1, 40)
    smooth = torch.nn.functional.avg_pool1d(target, 7, 1, 3, count_include_pad=False)
    assert train.loss_fn(model, target, target, mask, 0.0, 1.0) == 0
    plain = train.loss_fn(model, smooth, target, mask, 0.0, 0.0)
    assert train.loss_fn(model, smooth, target, mask, 0.0, 1.0) > plain > 0
