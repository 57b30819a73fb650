"""MelGAN: descriptinc's key layout, plain state dict round trips, errors, lengths, determinism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from avtool.errors import ExitCode, InputError, ModelError
from avtool.io.features import MelSpec
from avtool.models.melgan import (
    MelGANConfig,
    build,
    detect_config,
    infer,
    load,
    to_checkpoint,
)


def reference_layout(config: MelGANConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of mel2wav.modules.Generator's state dict, from its layer list.

    ``model`` is one Sequential: ReflectionPad, WNConv1d(n_mel, 16 * ngf, 7); then per ratio
    LeakyReLU, WNConvTranspose1d(c, c / 2, 2r), n_residual_layers ResnetBlocks (``block``:
    LeakyReLU, ReflectionPad, WNConv1d k3, LeakyReLU, WNConv1d k1; ``shortcut``: WNConv1d
    k1); then LeakyReLU, ReflectionPad, WNConv1d(ngf, 1, 7), Tanh. Only the weight-normed
    convolutions have parameters: bias, weight_g (dim 0 kept) and weight_v.
    """
    layout: dict[str, tuple[int, ...]] = {}

    def conv(name: str, shape: tuple[int, int, int], bias: int) -> None:
        layout[f"{name}.bias"] = (bias,)
        layout[f"{name}.weight_g"] = (shape[0], 1, 1)
        layout[f"{name}.weight_v"] = shape

    channels = config.ngf * 2 ** len(config.ratios)
    conv("model.1", (channels, config.n_mel_channels, 7), channels)
    index = 2
    for ratio in config.ratios:
        conv(f"model.{index + 1}", (channels, channels // 2, 2 * ratio), channels // 2)
        channels //= 2
        index += 2
        for _ in range(config.n_residual_layers):
            conv(f"model.{index}.block.2", (channels, channels, 3), channels)
            conv(f"model.{index}.block.4", (channels, channels, 1), channels)
            conv(f"model.{index}.shortcut", (channels, channels, 1), channels)
            index += 1
    conv(f"model.{index + 2}", (1, config.ngf, 7), 1)
    return layout


@pytest.fixture(scope="module")
def debug_model():
    torch.manual_seed(0)
    return build(MelGANConfig.debug()).eval()


@pytest.fixture(scope="module")
def mel():
    return torch.randn(2, 80, 29, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("preset", ["ljspeech", "debug"])
def test_state_dict_matches_reference_layout(preset):
    config = MelGANConfig.preset(preset)
    with torch.device("meta"):
        state = build(config).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == reference_layout(config)


def test_ljspeech_known_keys_shapes_and_size():
    with torch.device("meta"):
        model = build(MelGANConfig.ljspeech())
    state = model.state_dict()
    expected = {
        "model.1.weight_v": (512, 80, 7),
        "model.1.weight_g": (512, 1, 1),
        "model.3.weight_v": (512, 256, 16),
        "model.4.block.2.weight_v": (256, 256, 3),
        "model.4.block.4.weight_v": (256, 256, 1),
        "model.4.shortcut.weight_g": (256, 1, 1),
        "model.6.block.2.weight_v": (256, 256, 3),
        "model.18.weight_v": (64, 32, 4),
        "model.24.weight_v": (1, 32, 7),
        "model.24.bias": (1,),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert model.model[6].block[1].padding == (9, 9)  # dilation 3**2
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(4.27e6, rel=0.01)


def test_config_round_trip_and_mel():
    config = MelGANConfig.ljspeech()
    assert config.mel == MelSpec.melgan_22k()
    assert config.mel.log == "log10"
    assert MelGANConfig.from_dict(config.to_dict()) == config
    # args.yml of the reference's training script: extra keys are training options.
    args = {"n_mel_channels": 80, "ngf": 32, "n_residual_layers": 3, "ndf": 16, "num_D": 3}
    assert MelGANConfig.from_dict(args) == config
    assert MelGANConfig.from_dict({"preset": "debug", "mel": "melgan-22k"}) == MelGANConfig.debug()
    with pytest.raises(ModelError, match="lacks ngf"):
        MelGANConfig.from_dict({"n_mel_channels": 80, "n_residual_layers": 3})
    with pytest.raises(ModelError, match="hop_length 256"):
        replace(config, ratios=(5, 5, 4, 2))


def test_published_layout_round_trip_is_exact(tmp_path: Path, debug_model, mel):
    path = tmp_path / "best_netG.pt"
    torch.save(to_checkpoint(debug_model), path)
    assert set(torch.load(path, weights_only=True)) == set(debug_model.state_dict())
    expected = infer(debug_model, mel)
    for config in (MelGANConfig.debug(), None):  # given, and read from the shapes
        model = load(path, config)
        assert not model.training
        assert model.config == MelGANConfig.debug()
        assert torch.equal(infer(model, mel), expected)


def test_folded_model_is_written_in_the_published_layout(debug_model, mel):
    folded = load(to_checkpoint(debug_model))
    assert "model.1.weight" in folded.state_dict()
    state = to_checkpoint(folded)
    assert {k: tuple(v.shape) for k, v in state.items()} == reference_layout(folded.config)
    torch.testing.assert_close(infer(load(state), mel), infer(debug_model, mel), atol=1e-5, rtol=0)


def test_architecture_is_read_from_the_shapes(mel):
    config = MelGANConfig(n_mel_channels=80, ngf=2, n_residual_layers=1, ratios=(4, 4, 4, 4))
    torch.manual_seed(5)
    original = build(config).eval()
    assert detect_config(original.state_dict()) == config
    model = load(dict(original.state_dict()))
    assert model.config == config
    assert torch.equal(infer(model, mel), infer(original, mel))


def test_parametrization_and_folded_names_are_accepted(debug_model, mel):
    renamed = {
        k.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1"
        ): v
        for k, v in debug_model.state_dict().items()
    }
    assert torch.equal(infer(load(renamed), mel), infer(debug_model, mel))
    folded = build(MelGANConfig.debug())
    folded.load_state_dict(debug_model.state_dict())
    folded.remove_weight_norm()
    model = load(folded.state_dict())
    torch.testing.assert_close(infer(model, mel), infer(debug_model, mel), atol=1e-5, rtol=0)


@pytest.mark.parametrize("frames", [1, 3, 4, 50])
def test_output_length_is_frames_times_hop(debug_model, frames):
    audio = infer(debug_model, torch.randn(1, 80, frames))
    assert audio.shape == (1, frames * 256)
    assert float(audio.abs().max()) <= 1.0
    assert infer(debug_model, torch.zeros(2, 80, 0)).shape == (2, 0)


def test_odd_ratios_keep_the_exact_length():
    config = MelGANConfig(n_mel_channels=80, ngf=1, n_residual_layers=1, ratios=(8, 8, 4))
    config = replace(config, mel=replace(MelSpec.melgan_22k(), hop_length=256))
    odd = replace(config, ratios=(5, 5, 3, 3), mel=replace(config.mel, hop_length=225))
    for cfg in (config, odd):
        assert infer(build(cfg).eval(), torch.randn(1, 80, 9)).shape == (1, 9 * cfg.hop_length)


def test_truncated_and_mismatched_checkpoints_name_the_file(tmp_path: Path, debug_model):
    path = tmp_path / "linda_johnson.pt"
    torch.save(to_checkpoint(debug_model), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"linda_johnson\.pt") as info:
        load(path)
    assert info.value.exit_code == ExitCode.MODEL

    state = to_checkpoint(debug_model)
    del state["model.20.bias"]
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"linda_johnson\.pt: .*missing keys: model\.20\.bias"):
        load(path, MelGANConfig.debug())
    with pytest.raises(ModelError, match=r"shape mismatches: model\.1\.bias"):
        load(to_checkpoint(debug_model), MelGANConfig.ljspeech())
    with pytest.raises(ModelError, match="HiFi-GAN"):
        load({"generator": to_checkpoint(debug_model)})
    with pytest.raises(ModelError, match="no config given"):
        load({"conv_pre.weight": torch.zeros(1)})


def test_bad_mel_shape_is_an_input_error(debug_model):
    with pytest.raises(InputError, match=r"\(batch, 80, frames\)"):
        infer(debug_model, torch.randn(1, 81, 10))


def test_build_and_infer_are_deterministic(mel):
    states = []
    for _ in range(2):
        torch.manual_seed(7)
        states.append(build(MelGANConfig.debug()).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    model = build(MelGANConfig.debug()).eval()
    assert torch.equal(infer(model, mel), infer(model, mel.numpy()))
