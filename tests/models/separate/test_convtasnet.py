"""Conv-TasNet: loading an Asteroid package written here in the published layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avtool.errors import ModelError
from avtool.models.separate import convtasnet

ARGS = {
    "fb_name": "free",
    "n_filters": 16,
    "kernel_size": 32,
    "stride": 16,
    "sample_rate": 8000,
    "in_chan": 16,
    "out_chan": 16,
    "bn_chan": 8,
    "hid_chan": 16,
    "skip_chan": 8,
    "conv_kernel_size": 3,
    "n_blocks": 2,
    "n_repeats": 1,
    "n_src": 2,
    "norm_type": "gLN",
    "mask_act": "relu",
    "causal": False,
    "encoder_activation": None,
}


def asteroid_state(args: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under Asteroid's exact state-dict names for ``args``."""
    g = torch.Generator().manual_seed(seed)
    n, b, h, s = args["n_filters"], args["bn_chan"], args["hid_chan"], args["skip_chan"]
    k, src = args["kernel_size"], args["n_src"]

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.1

    state = {
        "encoder.filterbank._filters": r(n, 1, k),
        "decoder.filterbank._filters": r(n, 1, k),
        "masker.bottleneck.0.gamma": 1 + r(n),
        "masker.bottleneck.0.beta": r(n),
        "masker.bottleneck.1.weight": r(b, n, 1),
        "masker.bottleneck.1.bias": r(b),
        "masker.mask_net.0.weight": torch.full((1,), 0.25),
        "masker.mask_net.1.weight": r(src * n, s, 1),
        "masker.mask_net.1.bias": r(src * n),
    }
    for i in range(args["n_blocks"] * args["n_repeats"]):
        p = f"masker.TCN.{i}."
        state |= {
            p + "shared_block.0.weight": r(h, b, 1),
            p + "shared_block.0.bias": r(h),
            p + "shared_block.1.weight": torch.full((1,), 0.25),
            p + "shared_block.2.gamma": 1 + r(h),
            p + "shared_block.2.beta": r(h),
            p + "shared_block.3.weight": r(h, 1, args["conv_kernel_size"]),
            p + "shared_block.3.bias": r(h),
            p + "shared_block.4.weight": torch.full((1,), 0.25),
            p + "shared_block.5.gamma": 1 + r(h),
            p + "shared_block.5.beta": r(h),
            p + "res_conv.weight": r(b, h, 1),
            p + "res_conv.bias": r(b),
            p + "skip_conv.weight": r(s, h, 1),
            p + "skip_conv.bias": r(s),
        }
    return state


def write_package(path: Path, args: dict = ARGS, state: dict | None = None) -> Path:
    torch.save(
        {
            "model_name": "ConvTasNet",
            "state_dict": state or asteroid_state(args),
            "model_args": dict(args),
            "infos": {"software_versions": {}},
            "dataset": "Libri2Mix",
            "task": "sep_clean",
            "licenses": [],
        },
        path,
    )
    return path


def reference_forward(state: dict, args: dict, wav: torch.Tensor) -> torch.Tensor:
    """Conv-TasNet written directly on Asteroid's tensors (independent of our module)."""

    def gln(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m = x.mean((1, 2), keepdim=True)
        v = x.var((1, 2), keepdim=True, unbiased=False)
        return ((x - m) / (v + 1e-8).sqrt()).transpose(1, 2).mul(g).add(b).transpose(1, 2)

    w = F.conv1d(wav[:, None], state["encoder.filterbank._filters"], stride=args["stride"])
    x = F.conv1d(
        gln(w, state["masker.bottleneck.0.gamma"], state["masker.bottleneck.0.beta"]),
        state["masker.bottleneck.1.weight"],
        state["masker.bottleneck.1.bias"],
    )
    skip = 0
    for i in range(args["n_blocks"] * args["n_repeats"]):
        p, d = f"masker.TCN.{i}.", 2 ** (i % args["n_blocks"])
        y = F.conv1d(x, state[p + "shared_block.0.weight"], state[p + "shared_block.0.bias"])
        y = gln(
            F.prelu(y, state[p + "shared_block.1.weight"]),
            state[p + "shared_block.2.gamma"],
            state[p + "shared_block.2.beta"],
        )
        y = F.conv1d(
            y,
            state[p + "shared_block.3.weight"],
            state[p + "shared_block.3.bias"],
            padding=d,
            dilation=d,
            groups=y.shape[1],
        )
        y = gln(
            F.prelu(y, state[p + "shared_block.4.weight"]),
            state[p + "shared_block.5.gamma"],
            state[p + "shared_block.5.beta"],
        )
        x = x + F.conv1d(y, state[p + "res_conv.weight"], state[p + "res_conv.bias"])
        skip = skip + F.conv1d(y, state[p + "skip_conv.weight"], state[p + "skip_conv.bias"])
    score = F.conv1d(
        F.prelu(skip, state["masker.mask_net.0.weight"]),
        state["masker.mask_net.1.weight"],
        state["masker.mask_net.1.bias"],
    )
    masks = F.relu(score.view(wav.shape[0], args["n_src"], args["n_filters"], -1))
    out = F.conv_transpose1d(
        (masks * w[:, None]).flatten(0, 1),
        state["decoder.filterbank._filters"],
        stride=args["stride"],
    )
    out = out.view(wav.shape[0], args["n_src"], -1)
    return F.pad(out, (0, wav.shape[-1] - out.shape[-1]))


def test_loads_an_asteroid_package_and_matches_its_maths(tmp_path: Path) -> None:
    state = asteroid_state(ARGS)
    path = write_package(tmp_path / "pytorch_model.bin", state=state)
    model = convtasnet.load_asteroid(path, sample_rate=16000)
    assert model.config.sample_rate == 16000  # the published file says 8000
    wav = torch.randn(2, 1000)
    out = convtasnet.infer(model, wav)
    assert out.shape == (2, 2, 1000)
    assert torch.allclose(out, reference_forward(state, ARGS, wav), atol=1e-5)


def test_refuses_missing_extra_and_unsupported(tmp_path: Path) -> None:
    state = asteroid_state(ARGS)
    del state["masker.TCN.0.skip_conv.bias"]
    with pytest.raises(ModelError, match="missing"):
        convtasnet.load_asteroid(write_package(tmp_path / "a.bin", state=state))
    state = asteroid_state(ARGS) | {"masker.extra.weight": torch.zeros(1)}
    with pytest.raises(ModelError, match="unexpected"):
        convtasnet.load_asteroid(write_package(tmp_path / "b.bin", state=state))
    with pytest.raises(ModelError, match="gLN"):
        convtasnet.load_asteroid(write_package(tmp_path / "c.bin", ARGS | {"norm_type": "cLN"}))
    (tmp_path / "d.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="readable"):
        convtasnet.load_asteroid(tmp_path / "d.bin")


def test_published_layout_names_every_tensor() -> None:
    """The full published architecture maps one-to-one (24 blocks, last res_conv unused)."""
    args = ARGS | {
        "n_filters": 512,
        "in_chan": 512,
        "out_chan": 512,
        "bn_chan": 128,
        "hid_chan": 512,
        "skip_chan": 128,
        "n_blocks": 8,
        "n_repeats": 3,
    }
    config = convtasnet.ConvTasNetConfig.from_model_args(args)
    mapping = convtasnet.asteroid_key_map(config)
    assert len(mapping) == len(convtasnet.build(config).state_dict())
    assert len(set(mapping.values())) == len(mapping)
    assert "masker.TCN.23.skip_conv.weight" in mapping.values()
