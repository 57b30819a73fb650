"""The separation trainer's losses: permutation invariance, one-voice examples."""

from __future__ import annotations

import torch

from avtool.training.separate import pit_loss, target_loss, thresholded_snr


def test_pit_loss_ignores_the_order() -> None:
    torch.manual_seed(0)
    src = torch.randn(3, 2, 800)
    est = src + 0.1 * torch.randn_like(src)
    assert torch.allclose(pit_loss(est, src), pit_loss(est.flip(1), src))
    assert pit_loss(est, src) < pit_loss(src.flip(1) * 0 + torch.randn_like(src), src)


def test_one_voice_examples_reward_an_empty_second_stem() -> None:
    torch.manual_seed(0)
    voice = torch.randn(1, 800)
    src = torch.stack([voice, torch.zeros_like(voice)], 1)
    empty = torch.stack([voice, torch.zeros_like(voice)], 1)
    split = torch.stack([voice * 0.5, voice * 0.5], 1)
    assert pit_loss(empty, src) < pit_loss(split, src)
    assert torch.isfinite(pit_loss(split, src))
    assert float(thresholded_snr(voice, voice)) <= 30.0 + 1e-3


def test_target_loss_is_negative_si_sdr() -> None:
    src = torch.randn(2, 2, 400)
    assert target_loss(src, src) < target_loss(src.flip(1), src)


def _fake_data(folder, rng):
    """audio.npz + visual.npz in the trainer's layout: 3 s1 train, 3 s1 val, 2 LibriSpeech."""
    import numpy as np

    from avtool.datasets.grid import s1_split

    split = s1_split()
    ids = split["train"][:3] + split["val"][:3]
    audio = {f"s1/{i}": (rng.standard_normal(16000) * 3000).astype(np.int16) for i in ids}
    audio.update(
        {f"train/u{k}": (rng.standard_normal(24000) * 3000).astype(np.int16) for k in (0, 1)}
    )
    np.savez(folder / "audio.npz", **audio)
    np.savez(
        folder / "visual.npz", **{i: rng.standard_normal((25, 8)).astype(np.float16) for i in ids}
    )
    return ids


def test_change_rate_scales_pitch_and_length() -> None:
    import numpy as np

    from avtool.training.separate import change_rate

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    fast = change_rate(tone, 1.25)
    assert len(fast) == 12800 and fast.dtype == np.float32
    peak = np.argmax(np.abs(np.fft.rfft(fast))) * 16000 / len(fast)
    assert abs(peak - 250) < 2
    assert change_rate(tone, 1.0) is tone


def test_warm_start_with_pseudo_speakers_and_grid_validation(tmp_path) -> None:
    import json

    import numpy as np

    from avtool.models import checkpoint, state_dict
    from avtool.models.separate.masknet import MaskNetConfig, build
    from avtool.training.separate import Mixer, train

    rng = np.random.default_rng(0)
    ids = _fake_data(tmp_path, rng)
    mixer = Mixer(tmp_path, True, 0, s1_interferer=1.0, pseudo_speakers=True)
    assert mixer.train_ids == ids[:3] and len(mixer.val_s1) == 3
    mix, src, vis = mixer.batch(2)
    assert mix.shape == (2, 32000) and vis.shape == (2, 50, 8)
    assert torch.allclose(mix, src.sum(1), atol=1e-6)
    s1_val = mixer.validation("s1")
    assert len(s1_val) == 3 and not torch.equal(s1_val[0][1][0, 1], s1_val[1][1][0, 1])
    torch.manual_seed(0)
    config = MaskNetConfig.debug(visual_dim=8)
    init = state_dict.save(build(config).state_dict(), config.to_json(), tmp_path / "init.pt")
    out = tmp_path / "warm.pt"
    record = train(
        "av", tmp_path, out, minutes=0.02, batch_size=2, lr=1e-4, eval_every=1, log_every=1,
        init=init, s1_interferer=0.5, pseudo_speakers=True, grid_val=True,
    )  # fmt: skip
    assert record["init"] == str(init) and record["validation"] == ["librispeech", "s1"]
    assert record["steps"] >= 1 and record["history"][0]["step"] == 0
    assert "val_s1" in record["history"][1]
    assert json.loads((tmp_path / "warm.pt.json").read_text())["bottleneck"] == 16
    written = checkpoint.read(out, "masknet")  # the one avtool format, config inside
    assert written.config["bottleneck"] == 16 and "mask.weight" in written.state_dict
    with np.testing.assert_raises(ValueError):
        train("blind", tmp_path, tmp_path / "b.pt", minutes=0.01, init=init)


def test_interpolate_keeps_the_best_on_validation(tmp_path) -> None:
    import json

    import numpy as np

    from avtool.models import checkpoint, state_dict
    from avtool.models.separate.masknet import MaskNetConfig, build
    from avtool.training.separate import interpolate

    _fake_data(tmp_path, np.random.default_rng(0))
    config = MaskNetConfig.debug(visual_dim=8)
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(
            state_dict.save(build(config).state_dict(), config.to_json(), tmp_path / f"{seed}.pt")
        )
    record = interpolate(tmp_path, *paths, tmp_path / "mid.pt", alphas=(0.5,))
    assert [s["alpha"] for s in record["scores"]] == [0.0, 0.5, 1.0]
    assert record["best"]["val_si_sdri"] == max(s["val_si_sdri"] for s in record["scores"])
    saved = checkpoint.read(tmp_path / "mid.pt", "masknet").state_dict  # legacy ends read too
    ends = [torch.load(p, weights_only=True) for p in paths]
    alpha = record["best"]["alpha"]
    key = "mask.weight"
    assert torch.allclose(saved[key], (1 - alpha) * ends[0][key] + alpha * ends[1][key])
    assert json.loads((tmp_path / "mid.pt.interpolate.json").read_text())["best"] == record["best"]
