"""HiFi-GAN: the published key layout, checkpoint round trips, errors, lengths, determinism.

The published weights cannot be downloaded here, so checkpoints are written in their
layout (``{"generator": state_dict}`` with ``weight_g``/``weight_v``) from the debug model,
and the big presets are checked for keys, shapes and sizes on the meta device only.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from avtool.errors import ExitCode, InputError, ModelError
from avtool.io.features import MelSpec
from avtool.models.hifigan import (
    HiFiGANConfig,
    build,
    detect_config,
    infer,
    load,
    to_checkpoint,
)
from avtool.models.weightnorm import WNConv1d, WNConvTranspose1d, to_model_keys

# Generator sizes in the HiFi-GAN paper (Kong et al., 2020, Table 1), in parameters.
PAPER_PARAMETERS = {"v1": 13.92e6, "v2": 0.92e6, "v3": 1.46e6}

# config_v1.json as published (training keys included, which from_dict must ignore).
OFFICIAL_V1_JSON = {
    "resblock": "1",
    "num_gpus": 0,
    "batch_size": 16,
    "learning_rate": 0.0002,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "lr_decay": 0.999,
    "seed": 1234,
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "segment_size": 8192,
    "num_mels": 80,
    "num_freq": 1025,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": 8000,
    "fmax_for_loss": None,
    "num_workers": 4,
    "dist_config": {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1},
}


def reference_layout(config: HiFiGANConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of jik876/hifi-gan's Generator state dict, from its models.py rules.

    Every convolution is wrapped in torch's legacy weight_norm(dim=0): bias, weight_g
    (dim 0 kept, the rest 1) and weight_v (the conv weight). Conv1d weights are
    (out, in, k); ConvTranspose1d weights are (in, out, k).
    """
    layout: dict[str, tuple[int, ...]] = {}

    def conv(name: str, shape: tuple[int, int, int], bias: int) -> None:
        layout[f"{name}.bias"] = (bias,)
        layout[f"{name}.weight_g"] = (shape[0], 1, 1)
        layout[f"{name}.weight_v"] = shape

    c0 = config.upsample_initial_channel
    conv("conv_pre", (c0, config.num_mels, 7), c0)
    for i, k in enumerate(config.upsample_kernel_sizes):
        conv(f"ups.{i}", (c0 // 2**i, c0 // 2 ** (i + 1), k), c0 // 2 ** (i + 1))
    block = 0
    for i in range(len(config.upsample_rates)):
        ch = c0 // 2 ** (i + 1)
        for k, dilations in zip(
            config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
        ):
            names = ("convs1", "convs2") if config.resblock == "1" else ("convs",)
            for name in names:
                for j in range(len(dilations)):
                    conv(f"resblocks.{block}.{name}.{j}", (ch, ch, k), ch)
            block += 1
    conv("conv_post", (1, c0 // 2 ** len(config.upsample_rates), 7), 1)
    return layout


def meta_state(config: HiFiGANConfig) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build(config).state_dict()


@pytest.fixture(scope="module")
def debug_model():
    torch.manual_seed(0)
    return build(HiFiGANConfig.debug()).eval()


@pytest.fixture(scope="module")
def mel():
    return torch.randn(2, 80, 37, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("preset", ["v1", "v2", "v3", "debug"])
def test_state_dict_matches_reference_layout(preset):
    config = HiFiGANConfig.preset(preset)
    state = meta_state(config)
    assert {k: tuple(v.shape) for k, v in state.items()} == reference_layout(config)


def test_v1_known_keys_and_shapes():
    state = meta_state(HiFiGANConfig.v1())
    expected = {
        "conv_pre.weight_v": (512, 80, 7),
        "conv_pre.weight_g": (512, 1, 1),
        "conv_pre.bias": (512,),
        "ups.0.weight_v": (512, 256, 16),
        "ups.0.weight_g": (512, 1, 1),
        "ups.3.weight_v": (64, 32, 4),
        "resblocks.0.convs1.0.weight_v": (256, 256, 3),
        "resblocks.2.convs2.2.weight_v": (256, 256, 11),
        "resblocks.11.convs1.2.weight_g": (32, 1, 1),
        "conv_post.weight_v": (1, 32, 7),
        "conv_post.bias": (1,),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert len(state) == 3 * (1 + 4 + 12 * 6 + 1)
    v3 = meta_state(HiFiGANConfig.v3())
    assert tuple(v3["resblocks.8.convs.1.weight_v"].shape) == (32, 32, 7)
    assert not any("convs1" in k for k in v3)


@pytest.mark.parametrize("preset", ["v1", "v2", "v3"])
def test_parameter_counts_match_the_paper(preset):
    with torch.device("meta"):
        model = build(HiFiGANConfig.preset(preset))
    stored = sum(p.numel() for p in model.parameters())
    model.remove_weight_norm()
    folded = sum(p.numel() for p in model.parameters())
    for count in (stored, folded):
        assert count == pytest.approx(PAPER_PARAMETERS[preset], rel=0.01)


def test_presets_follow_the_official_configs():
    assert HiFiGANConfig.from_dict(OFFICIAL_V1_JSON) == HiFiGANConfig.v1()
    assert HiFiGANConfig.v2() == replace(HiFiGANConfig.v1(), upsample_initial_channel=128)
    v3 = HiFiGANConfig.v3()
    assert (v3.resblock, v3.upsample_rates, v3.hop_length) == ("2", (8, 8, 4), 256)
    assert v3.resblock_dilation_sizes == ((1, 2), (2, 6), (3, 12))
    assert all(HiFiGANConfig.preset(p).hop_length == 256 for p in ("v1", "v2", "debug"))


def test_config_round_trip_and_validation():
    config = HiFiGANConfig.v3()
    assert HiFiGANConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert HiFiGANConfig.from_dict(
        {"preset": "v2", "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1]]}
    ).resblock_kernel_sizes == (3,)
    with pytest.raises(ModelError, match="k - r even"):
        replace(config, upsample_kernel_sizes=(16, 16, 7))
    with pytest.raises(ModelError, match="hop_length 200"):
        HiFiGANConfig.from_dict({**OFFICIAL_V1_JSON, "hop_size": 200})
    with pytest.raises(ModelError, match="lacks upsample_rates"):
        HiFiGANConfig.from_dict({"resblock": "1"})
    with pytest.raises(ModelError, match="unknown HiFi-GAN preset"):
        HiFiGANConfig.preset("v4")
    with pytest.raises(ModelError, match="unknown mel preset"):
        HiFiGANConfig.from_dict({"preset": "v1", "mel": "nope"})


def test_mel_contract_follows_the_config():
    assert HiFiGANConfig.v1().mel == MelSpec.hifigan_22k()
    assert HiFiGANConfig.from_dict({"preset": "v3", "mel": "hifigan-22k"}) == HiFiGANConfig.v3()
    # An official config for another rate (16 kHz, hop 200) gets that rate's contract.
    official_16k = {
        **OFFICIAL_V1_JSON,
        "upsample_rates": [5, 5, 4, 2],
        "upsample_kernel_sizes": [11, 11, 8, 4],
        "sampling_rate": 16000,
        "hop_size": 200,
        "win_size": 800,
        "fmax": None,
    }
    config = HiFiGANConfig.from_dict(official_16k)
    assert (config.sample_rate, config.mel.hop_length, config.mel.win_length) == (16000, 200, 800)
    assert config.mel.fmax is None
    assert HiFiGANConfig.from_dict(config.to_dict()) == config


def test_published_layout_round_trip_is_exact(tmp_path: Path, debug_model, mel):
    path = tmp_path / "g_02500000"
    torch.save({"generator": debug_model.state_dict()}, path)
    expected = infer(debug_model, mel)
    for config in (HiFiGANConfig.debug(), None):  # given, and detected from the shapes
        model = load(path, config)
        assert not model.training
        assert torch.equal(infer(model, mel), expected)
    kept = load(path, HiFiGANConfig.debug(), fold_weight_norm=False)
    assert "conv_pre.weight_g" in kept.state_dict()
    assert torch.equal(infer(kept, mel), expected)


def test_folded_model_is_written_in_the_published_layout(debug_model, mel):
    folded = load({"generator": debug_model.state_dict()}, HiFiGANConfig.debug())
    checkpoint = to_checkpoint(folded)
    layout = reference_layout(HiFiGANConfig.debug())
    assert {k: tuple(v.shape) for k, v in checkpoint["generator"].items()} == layout
    reloaded = load(checkpoint)
    torch.testing.assert_close(infer(reloaded, mel), infer(debug_model, mel), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("kind", ["conv", "transposed"])
def test_layers_compute_what_legacy_weight_norm_computes(kind):
    legacy_weight_norm = getattr(torch.nn.utils, "weight_norm", None)
    if legacy_weight_norm is None:
        pytest.skip("this torch no longer has the legacy weight_norm")
    torch.manual_seed(0)
    if kind == "conv":
        reference = legacy_weight_norm(torch.nn.Conv1d(6, 4, 5, dilation=3, padding=6))
        ours = WNConv1d(6, 4, 5, dilation=3, padding=6)
    else:
        reference = legacy_weight_norm(torch.nn.ConvTranspose1d(6, 4, 16, 8, padding=4))
        ours = WNConvTranspose1d(6, 4, 16, 8, padding=4)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 6, 30)
    assert torch.equal(ours(x), reference(x))
    ours.fold_weight_norm()
    assert torch.equal(ours(x), reference(x))
    # A folded target takes g/v tensors (and the reverse is covered by the loaders).
    converted = to_model_keys(reference.state_dict(), ours.state_dict())
    assert set(converted) == {"weight", "bias"}


def test_parametrization_key_names_are_accepted(debug_model, mel):
    # torch.nn.utils.parametrizations.weight_norm stores g as original0 and v as original1.
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(3, 5, 7))
    assert tuple(conv.state_dict()["parametrizations.weight.original0"].shape) == (5, 1, 1)
    renamed = {
        k.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1"
        ): v
        for k, v in debug_model.state_dict().items()
    }
    model = load({"generator": renamed}, HiFiGANConfig.debug())
    assert torch.equal(infer(model, mel), infer(debug_model, mel))


def test_folded_checkpoint_loads(debug_model, mel):
    folded = build(HiFiGANConfig.debug())
    folded.load_state_dict(debug_model.state_dict())
    folded.remove_weight_norm()
    assert "conv_pre.weight" in folded.state_dict()
    model = load({"generator": folded.state_dict()}, HiFiGANConfig.debug())
    torch.testing.assert_close(infer(model, mel), infer(debug_model, mel), atol=1e-5, rtol=0)


def test_custom_architecture_travels_inside_the_checkpoint(tmp_path: Path, mel):
    config = replace(
        HiFiGANConfig.debug(),
        resblock="2",
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        resblock_dilation_sizes=((1, 2), (2, 6)),
    )
    torch.manual_seed(3)
    original = build(config).eval()
    path = tmp_path / "custom.pt"
    torch.save(to_checkpoint(original), path)
    assert detect_config(original.state_dict()) is None
    model = load(path)
    assert model.config == config
    assert torch.equal(infer(model, mel), infer(original, mel))


@pytest.mark.parametrize("frames", [1, 2, 7, 100])
@pytest.mark.parametrize("resblock", ["1", "2"])
def test_output_length_is_frames_times_hop(frames, resblock):
    config = HiFiGANConfig.debug()
    if resblock == "2":
        config = replace(config, resblock="2", resblock_dilation_sizes=((1, 2), (2, 6)))
    model = build(config).eval()
    audio = infer(model, torch.randn(1, 80, frames))
    assert audio.shape == (1, frames * config.hop_length)
    assert audio.dtype == torch.float32
    assert float(audio.abs().max()) <= 1.0
    assert infer(model, torch.zeros(3, 80, 0)).shape == (3, 0)


def test_truncated_checkpoint_names_the_file(tmp_path: Path, debug_model):
    path = tmp_path / "g_truncated"
    torch.save({"generator": debug_model.state_dict()}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match="g_truncated") as info:
        load(path, HiFiGANConfig.debug())
    assert info.value.exit_code == ExitCode.MODEL
    with pytest.raises(ModelError, match="cannot read"):
        load(tmp_path / "absent", HiFiGANConfig.debug())


def test_mismatched_checkpoint_lists_the_first_keys(tmp_path: Path, debug_model):
    path = tmp_path / "g_other"
    state = dict(debug_model.state_dict())
    del state["conv_post.bias"]
    state["extra.weight"] = torch.zeros(1)
    torch.save({"generator": state}, path)
    with pytest.raises(ModelError) as info:
        load(path, HiFiGANConfig.debug())
    message = str(info.value)
    assert str(path) in message
    assert "missing keys: conv_post.bias" in message
    assert "unexpected keys: extra.weight" in message

    torch.save({"generator": debug_model.state_dict()}, path)
    with pytest.raises(
        ModelError, match=r"shape mismatches: conv_pre\.bias \(16,\) \(expected \(128,\)\)"
    ):
        load(path, HiFiGANConfig.v2())
    with pytest.raises(ModelError, match="not a known HiFi-GAN preset"):
        load({"generator": state})


def test_wrong_checkpoint_kinds_are_explained(tmp_path: Path):
    with pytest.raises(ModelError, match="discriminator"):
        load({"mpd": {}, "msd": {}, "steps": 1}, HiFiGANConfig.debug())
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(ModelError, match=r"list\.pt: expected a dict"):
        load(path, HiFiGANConfig.debug())


def test_bad_mel_shape_is_an_input_error(debug_model):
    with pytest.raises(InputError, match=r"\(batch, 80, frames\)"):
        infer(debug_model, torch.randn(80, 10))
    with pytest.raises(InputError):
        infer(debug_model, torch.randn(1, 64, 10))


def test_build_and_infer_are_deterministic(mel):
    states = []
    for _ in range(2):
        torch.manual_seed(123)
        states.append(build(HiFiGANConfig.debug()).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    model = build(HiFiGANConfig.debug()).eval()
    first = infer(model, mel)
    assert torch.equal(first, infer(model, mel.numpy()))
    assert math.isfinite(float(first.sum()))
