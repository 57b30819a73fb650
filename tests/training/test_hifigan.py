"""HiFi-GAN training: discriminator layouts and losses, then short runs on synthetic tones.

The published ``do_`` files cannot be downloaded here, so the discriminators' state dicts are
checked against the layout jik876/hifi-gan's ``models.py`` gives (legacy weight norm, and
legacy spectral norm on the first scale), built on the meta device. The training runs use the
``debug`` preset (16-channel generator, 8x narrower discriminators) for three steps each.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.errors import InputError, ModelError
from avtool.io.audio import save_audio
from avtool.models import checkpoint, hifigan, loading
from avtool.models.hifigan import HiFiGANConfig
from avtool.models.hifigan.discriminators import (
    PERIODS,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminator_loss,
    feature_loss,
    generator_loss,
)
from avtool.tasks.vocode import detect_family
from avtool.training.hifigan import (
    AudioCrops,
    TrainConfig,
    export_generator,
    find_audio_files,
    read_generator,
    train,
)

RATE = 22050
SEGMENT = 8192

# (in, out, kernel, groups) of each DiscriminatorS convolution, then conv_post.
SCALE_LAYERS = [
    (1, 128, 15, 1),
    (128, 128, 41, 4),
    (128, 256, 41, 16),
    (256, 512, 41, 16),
    (512, 1024, 41, 16),
    (1024, 1024, 41, 16),
    (1024, 1024, 5, 1),
    (1024, 1, 3, 1),
]
# (in, out, kernel) of each DiscriminatorP convolution, then conv_post; kernels are (k, 1).
PERIOD_LAYERS = [(1, 32, 5), (32, 128, 5), (128, 512, 5), (512, 1024, 5), (1024, 1024, 5)]
PERIOD_POST = (1024, 1, 3)
OFFICIAL_KEYS = {
    "resblock",
    "num_gpus",
    "batch_size",
    "learning_rate",
    "adam_b1",
    "adam_b2",
    "lr_decay",
    "seed",
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "segment_size",
    "num_mels",
    "num_freq",
    "n_fft",
    "hop_size",
    "win_size",
    "sampling_rate",
    "fmin",
    "fmax",
    "fmax_for_loss",
    "num_workers",
    "dist_config",
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run this module on one CPU thread (restored afterwards).

    The debug models are so small that a second intra-op thread costs more than it gains; on
    small shared VMs it made these steps 2-30x slower. Bit-exact determinism also holds only
    at a fixed thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference_mpd_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the reference MultiPeriodDiscriminator (weight_norm(dim=0) on Conv2d)."""
    layout = {}
    for d in range(len(PERIODS)):
        layers = [(f"convs.{i}", spec) for i, spec in enumerate(PERIOD_LAYERS)]
        for name, (c_in, c_out, k) in [*layers, ("conv_post", PERIOD_POST)]:
            prefix = f"discriminators.{d}.{name}"
            layout[f"{prefix}.bias"] = (c_out,)
            layout[f"{prefix}.weight_g"] = (c_out, 1, 1, 1)
            layout[f"{prefix}.weight_v"] = (c_out, c_in, k, 1)
    return layout


def reference_msd_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the reference MultiScaleDiscriminator (scale 0 spectrally normalised)."""
    layout = {}
    for d in range(3):
        for i, (c_in, c_out, k, groups) in enumerate(SCALE_LAYERS):
            name = "conv_post" if i == len(SCALE_LAYERS) - 1 else f"convs.{i}"
            prefix = f"discriminators.{d}.{name}"
            weight = (c_out, c_in // groups, k)
            layout[f"{prefix}.bias"] = (c_out,)
            if d == 0:  # torch's spectral_norm: the raw weight and the power-iteration vectors
                layout[f"{prefix}.weight_orig"] = weight
                layout[f"{prefix}.weight_u"] = (c_out,)
                layout[f"{prefix}.weight_v"] = (c_in // groups * k,)
            else:
                layout[f"{prefix}.weight_g"] = (c_out, 1, 1)
                layout[f"{prefix}.weight_v"] = weight
    return layout


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- discriminators


def test_discriminator_state_dicts_match_the_official_layout():
    with torch.device("meta"):
        mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    assert shapes(mpd) == reference_mpd_layout()
    assert shapes(msd) == reference_msd_layout()
    # The do_ file is {"mpd": ..., "msd": ...}, so full keys read mpd.discriminators.N...
    assert sum(p.numel() for p in mpd.parameters()) == pytest.approx(41.1e6, rel=0.01)
    assert sum(p.numel() for p in msd.parameters()) == pytest.approx(29.6e6, rel=0.01)


def test_narrow_discriminators_keep_the_key_names():
    with torch.device("meta"):
        mpd, msd = MultiPeriodDiscriminator(width_divisor=8), MultiScaleDiscriminator(8)
    assert list(mpd.state_dict()) == list(reference_mpd_layout())
    assert list(msd.state_dict()) == list(reference_msd_layout())
    assert shapes(mpd)["discriminators.0.convs.4.weight_v"] == (128, 128, 5, 1)
    with pytest.raises(ValueError, match="width_divisor"):
        MultiScaleDiscriminator(width_divisor=3)


@pytest.mark.parametrize("length", [SEGMENT, 4001])
def test_discriminator_outputs(length: int):
    torch.manual_seed(0)
    mpd, msd = MultiPeriodDiscriminator(width_divisor=8), MultiScaleDiscriminator(width_divisor=8)
    real, fake = torch.randn(2, 1, length) * 0.3, torch.randn(2, 1, length) * 0.3
    with torch.no_grad():
        real_logits, fake_logits, real_maps, fake_maps = mpd(real, fake)
    assert len(real_logits) == len(fake_logits) == len(real_maps) == len(PERIODS)
    for period, logits, maps in zip(PERIODS, real_logits, real_maps, strict=True):
        rows = math.ceil(length / period)
        assert logits.shape[0] == 2 and logits.ndim == 2
        assert len(maps) == 6  # five convolutions and conv_post
        assert maps[0].shape == (2, 4, math.ceil(rows / 3), period)  # 32 / 8 channels
        assert maps[-1].shape[1] == 1 and logits.shape[1] == maps[-1][0].numel()
    assert [t.shape for t in fake_logits] == [t.shape for t in real_logits]
    assert [[m.shape for m in maps] for maps in fake_maps] == [
        [m.shape for m in maps] for maps in real_maps
    ]
    with torch.no_grad():
        real_logits, fake_logits, real_maps, _ = msd(real, fake)
    assert len(real_logits) == 3 and all(len(maps) == 8 for maps in real_maps)
    # Scales 2 and 3 see the signal average-pooled by 2 and by 4.
    lengths = [maps[0].shape[-1] for maps in real_maps]
    assert lengths[0] == length and lengths[1] == length // 2 + 1
    assert [t.shape for t in fake_logits] == [t.shape for t in real_logits]
    assert all(torch.isfinite(t).all() for t in real_logits + fake_logits)


def test_losses_vanish_at_their_optimum_and_are_positive_elsewhere():
    ones, zeros = [torch.ones(2, 5), torch.ones(2, 7)], [torch.zeros(2, 5), torch.zeros(2, 7)]
    loss, real_terms, fake_terms = discriminator_loss(ones, zeros)
    assert loss.item() == 0 and [t.item() for t in real_terms + fake_terms] == [0.0] * 4
    assert discriminator_loss(zeros, ones)[0].item() == pytest.approx(4.0)  # 2 x (1 + 1)
    assert generator_loss(ones)[0].item() == 0
    assert generator_loss(zeros)[0].item() == pytest.approx(2.0)
    maps = [[torch.randn(2, 3, 8), torch.randn(2, 1, 4)], [torch.randn(2, 4, 6)]]
    assert feature_loss(maps, maps).item() == 0
    shifted = [[m + 0.5 for m in layer] for layer in maps]
    assert feature_loss(maps, shifted).item() == pytest.approx(2 * 3 * 0.5)  # 2 x sum of means
    random = [torch.randn(2, 5)]
    assert discriminator_loss(random, random)[0].item() > 0
    assert generator_loss(random)[0].item() > 0


# --------------------------------------------------------------------------- data


def write_tones(folder: Path, count: int = 3, seconds: float = 0.6) -> Path:
    """``count`` harmonic tones (f0 110, 165, 220 Hz, ...) with a slow vibrato, as WAV files."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * RATE)) / RATE
    for i in range(count):
        f0 = 110.0 * (1 + i / 2) * (1 + 0.02 * np.sin(2 * np.pi * 3 * t))
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        tone = sum(np.sin(h * phase) / h for h in range(1, 9)) * np.hanning(len(t))
        save_audio(folder / f"tone{i}.wav", (0.3 * tone).astype(np.float32), RATE)
    return folder


def test_crops_depend_only_on_seed_and_step(tmp_path: Path):
    files = find_audio_files(write_tones(tmp_path / "data", count=3, seconds=0.3))
    crops = AudioCrops(files, RATE, SEGMENT, seed=7)
    batch = crops.batch(5, 2)
    assert batch.shape == (2, 1, SEGMENT) and batch.dtype == torch.float32
    assert torch.equal(batch, AudioCrops(files, RATE, SEGMENT, seed=7).batch(5, 2))
    assert not torch.equal(batch, crops.batch(6, 2))
    assert batch.abs().amax(dim=-1).max() <= 0.95 + 1e-6  # peak-normalised to 0.95
    short = AudioCrops(files, RATE, 2 * RATE, seed=7).batch(0, 1)  # longer than every file
    assert short.shape == (1, 1, 2 * RATE) and short[0, 0, -100:].abs().max() == 0
    assert crops.epoch_of(3, 2) == 2  # 8 crops from 3 files: two full passes done


def test_find_audio_files_needs_two(tmp_path: Path):
    write_tones(tmp_path / "one", count=1, seconds=0.1)
    with pytest.raises(InputError, match="at least two"):
        find_audio_files(tmp_path / "one")


# --------------------------------------------------------------------------- training


def generator_weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.read(path, "hifigan").state_dict


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """Three debug steps on three tones; checkpoints after steps 2 and 3."""
    root = tmp_path_factory.mktemp("hifigan-train")
    data = write_tones(root / "data")
    out = root / "run"
    result = train(data, out, "debug", steps=3, seed=3, device="cpu", log_every=1,
                   checkpoint_every=2)  # fmt: skip
    return data, out, result


def test_training_writes_avtool_checkpoints_and_the_official_files(run):
    _, out, result = run
    assert result.step == 3
    assert result.generator == out / "g_00000003" and result.discriminators == out / "do_00000003"
    names = {p.name for p in out.iterdir()}
    assert {"g_00000002", "do_00000002", "g_00000003", "do_00000003"} <= names
    assert {"config.json", "train_log.jsonl", "run.json"} <= names
    assert not any(n.startswith(".") for n in names)  # no temporary file left behind
    assert checkpoint.is_checkpoint(result.generator)
    g = checkpoint.read(result.generator, "hifigan")
    assert HiFiGANConfig.from_dict(g.config) == HiFiGANConfig.debug()
    assert g.extra == {"steps": 3, "epoch": 2}  # step 3 took crops 4-5 of 2 training files
    assert "conv_pre.weight_g" in g.state_dict and "conv_pre.weight_v" in g.state_dict
    do = torch.load(result.discriminators, map_location="cpu", weights_only=True)
    assert set(do) == {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}
    assert do["steps"] == 3
    assert list(do["mpd"]) == list(reference_mpd_layout())
    assert list(do["msd"]) == list(reference_msd_layout())
    config = json.loads((out / "config.json").read_text())
    assert set(config) >= OFFICIAL_KEYS and "mel" not in config
    assert config["segment_size"] == SEGMENT and config["fmax_for_loss"] is None
    assert HiFiGANConfig.from_dict(config) == HiFiGANConfig.debug()
    assert json.loads((out / "run.json").read_text())["heldout"][0].endswith("tone2.wav")


def test_trained_generator_loads_through_the_front_door_and_vocodes(run):
    _, out, result = run
    loaded = loading.load(result.generator, task="vocode", detect=detect_family)
    assert loaded.family == "hifigan" and loaded.module.config == HiFiGANConfig.debug()
    model = hifigan.load(result.generator)
    assert model.config == HiFiGANConfig.debug()
    mel = torch.randn(1, 80, 12, generator=torch.Generator().manual_seed(1)) - 5
    assert torch.equal(hifigan.infer(loaded.module, mel), hifigan.infer(model, mel))
    # The official layout: config.json beside a g_ file holding only the generator.
    bare = {"generator": generator_weights(result.generator)}
    config = HiFiGANConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert hifigan.load(bare, config).config == model.config
    audio = hifigan.infer(model, torch.randn(1, 80, 12) - 5)
    assert audio.shape == (1, 12 * 256) and torch.isfinite(audio).all()


def test_training_log_has_finite_losses(run):
    _, out, result = run
    records = read_log(out)
    assert [r["step"] for r in records] == [1, 2, 3]
    for record in records:
        for key in ("loss_disc", "loss_gen", "loss_adv", "loss_fm", "loss_mel", "heldout_mel_l1"):
            assert math.isfinite(record[key]) and record[key] > 0, key
        assert record["seconds"] > 0 and record["lr"] > 0
    assert result.last == records[-1]


def test_training_is_deterministic_and_resumes_exactly(run, tmp_path: Path):
    data, _, result = run
    again = train(data, tmp_path / "again", "debug", steps=3, seed=3, device="cpu",
                  checkpoint_every=100)  # fmt: skip
    expected = generator_weights(result.generator)
    got = generator_weights(again.generator)
    assert all(torch.equal(expected[k], got[k]) for k in expected)

    resumed = tmp_path / "resumed"
    train(data, resumed, "debug", steps=2, seed=3, device="cpu", log_every=1)
    with pytest.raises(InputError, match="--resume"):
        train(data, resumed, "debug", steps=3, seed=3, device="cpu")
    finished = train(data, resumed, None, steps=3, seed=3, device="cpu", log_every=1,
                     resume=True)  # fmt: skip
    assert finished.step == 3 and finished.generator == resumed / "g_00000003"
    assert [r["step"] for r in read_log(resumed)] == [1, 2, 3]
    got = generator_weights(finished.generator)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_resume_refuses_another_architecture(run, tmp_path: Path):
    data, out, _ = run
    with pytest.raises(InputError, match="another generator"):
        train(data, out, "v3", steps=4, device="cpu", resume=True)


def test_train_config_checks():
    assert TrainConfig.for_preset("v1") == TrainConfig()
    assert TrainConfig.for_preset("debug").discriminator_width_divisor == 8
    with pytest.raises(InputError, match="divisor"):
        TrainConfig(discriminator_width_divisor=3)


def test_find_audio_files_reads_a_list_in_its_order(tmp_path: Path):
    data = write_tones(tmp_path / "data", count=3, seconds=0.1)
    listed = tmp_path / "files.txt"
    listed.write_text(f"# train, then the held-out file\ndata/tone2.wav\n\n{data / 'tone0.wav'}\n")
    assert find_audio_files(listed) == [tmp_path / "data/tone2.wav", data / "tone0.wav"]
    listed.write_text("data/tone2.wav\ndata/missing.wav\n")
    with pytest.raises(InputError, match=r"files\.txt:2: .*missing\.wav does not exist"):
        find_audio_files(listed)
    with pytest.raises(InputError, match=r"not a folder or a \.txt list"):
        find_audio_files(tmp_path / "nothing")


def test_init_starts_from_given_weights_and_time_bound_stops(run, tmp_path: Path):
    data, _, result = run
    start = generator_weights(result.generator)
    # max_seconds=0: the first step passes the bound, so the run stops (and saves) after it.
    tuned = train(data, tmp_path / "tuned", "debug", steps=50, seed=5, device="cpu",
                  init=result.generator, max_seconds=0.0)  # fmt: skip
    assert tuned.step == 1 and tuned.generator == tmp_path / "tuned" / "g_00000001"
    assert json.loads((tmp_path / "tuned" / "run.json").read_text())["init"] == str(
        result.generator
    )
    got = generator_weights(tuned.generator)
    # One AdamW step (lr 2e-4) from the given weights stays within a fraction of a percent of
    # them; a fresh random start would differ by about their whole size.
    moved = sum((got[k] - start[k]).abs().sum() for k in start)
    assert 0 < moved < 0.02 * sum(start[k].abs().sum() for k in start)
    with pytest.raises(ModelError, match="does not fit"):
        train(data, tmp_path / "bad", "v3", steps=1, device="cpu", init=result.generator,
              training=TrainConfig.for_preset("debug"))  # fmt: skip


def test_exported_float16_generator_loads_and_sounds_the_same(run, tmp_path: Path):
    _, _, result = run
    shipped = export_generator(result.generator, tmp_path / "g16.pt")
    stored = checkpoint.read(shipped, "hifigan")
    assert {v.dtype for v in stored.state_dict.values()} == {torch.float16}
    assert stored.extra == {"steps": 3, "epoch": 2}
    full = hifigan.load(result.generator)
    half = loading.load(shipped, task="vocode", detect=detect_family).module
    assert next(half.parameters()).dtype == torch.float32  # widened again when loaded
    mel = torch.randn(1, 80, 20, generator=torch.Generator().manual_seed(0)) - 5
    a, b = hifigan.infer(full, mel), hifigan.infer(half, mel)
    assert (a - b).abs().max() <= 0.01 * a.abs().max() + 1e-6


def test_generators_of_earlier_runs_still_resume_warm_start_and_export(run, tmp_path: Path):
    """A ``g_`` file in the layout the trainer wrote before (``{"generator", "config"}``)."""
    data, out, result = run
    weights = generator_weights(result.generator)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("config.json", "do_00000003"):
        (earlier / name).write_bytes((out / name).read_bytes())
    legacy = {"generator": weights, "config": HiFiGANConfig.debug().to_dict()}
    torch.save(legacy, earlier / "g_00000003")
    stored = read_generator(earlier / "g_00000003")
    assert stored.family == "hifigan" and stored.config == legacy["config"]
    assert all(torch.equal(stored.state_dict[k], weights[k]) for k in weights)
    assert hifigan.load(earlier / "g_00000003").config == HiFiGANConfig.debug()
    resumed = train(data, earlier, None, steps=4, seed=3, device="cpu", resume=True)
    assert resumed.step == 4 and checkpoint.is_checkpoint(resumed.generator)
    exported = export_generator(earlier / "g_00000003", tmp_path / "g16.pt", half=False)
    got = checkpoint.read(exported, "hifigan").state_dict
    assert all(torch.equal(got[k], weights[k]) for k in weights)
    with pytest.raises(ModelError, match="no 'generator'"):
        read_generator(earlier / "do_00000003")
