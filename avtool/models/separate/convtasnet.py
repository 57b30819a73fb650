"""Conv-TasNet (Luo & Mesgarani 2019), reading Asteroid's published checkpoints.

A learned 1-D conv encoder (``n_filters`` filters of ``kernel_size`` samples, hop ``stride``),
a temporal convolutional masker (global layer norm, 1x1 bottleneck, ``n_repeats`` x
``n_blocks`` dilated depthwise-separable blocks with residual and skip outputs, PReLU, a 1x1
conv to ``n_src`` masks, ReLU) and a transposed-conv decoder.

Asteroid saves a model as ``torch.save`` of a plain dict (``weights_only`` loadable)::

    {"model_name": "ConvTasNet", "state_dict": {...}, "model_args": {...}, "infos": {...},
     "dataset": ..., "task": ..., "licenses": ...}

with state-dict names ``encoder.filterbank._filters``, ``masker.bottleneck.{0,1}.*``,
``masker.TCN.{i}.shared_block.{0..5}.*``, ``masker.TCN.{i}.{res,skip}_conv.*``,
``masker.mask_net.{0,1}.*`` and ``decoder.filterbank._filters``. Our module uses its own names;
:func:`load_asteroid` maps them one by one and refuses any missing or extra tensor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.models import checkpoint
from avtool.models.presets import PresetConfig
from avtool.registry import ResolvedModel


@dataclass(frozen=True)
class ConvTasNetConfig(PresetConfig):
    """Architecture (Asteroid's ``model_args`` names)."""

    n_src: int = 2
    n_filters: int = 512
    kernel_size: int = 32
    stride: int = 16
    bn_chan: int = 128
    hid_chan: int = 512
    skip_chan: int = 128
    conv_kernel_size: int = 3
    n_blocks: int = 8
    n_repeats: int = 3
    mask_act: str = "relu"
    sample_rate: int = 16000

    presets: ClassVar[tuple[str, ...]] = ("debug",)
    family_name: ClassVar[str] = "Conv-TasNet"

    @classmethod
    def debug(cls) -> ConvTasNetConfig:
        """A tiny random-weight config for tests."""
        return cls(n_filters=16, bn_chan=8, hid_chan=16, skip_chan=8, n_blocks=2, n_repeats=1)

    @classmethod
    def from_model_args(
        cls, args: Mapping[str, Any], sample_rate: int | None = None
    ) -> ConvTasNetConfig:
        """Asteroid's ``model_args`` -> config.

        Raises:
            ModelError: a filterbank, norm or option this implementation does not have.
        """
        if args.get("fb_name", "free").lower() not in ("free", "freefb"):
            raise ModelError(
                f"Conv-TasNet filterbank {args.get('fb_name')!r} is not supported (free only)"
            )
        if args.get("norm_type", "gLN") != "gLN" or args.get("causal", False):
            raise ModelError("only non-causal Conv-TasNet with gLN is supported")
        if args.get("encoder_activation") not in (None, "linear"):
            raise ModelError(f"encoder_activation {args['encoder_activation']!r} is not supported")
        if args.get("mask_act", "relu") not in ("relu", "sigmoid", "softmax"):
            raise ModelError(f"mask_act {args['mask_act']!r} is not supported")
        names = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in args.items() if k in names})
        n_filters = args.get("in_chan") or config.n_filters
        if n_filters != config.n_filters or (args.get("out_chan") or n_filters) != config.n_filters:
            raise ModelError("Conv-TasNet in_chan/out_chan must equal n_filters")
        return replace(config, sample_rate=int(sample_rate or config.sample_rate))


class GlobLN(nn.Module):
    """Global layer norm over (channels, time), per-channel gain and bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-8) * self.gamma[:, None] + self.beta[:, None]


class Block(nn.Module):
    """1x1 conv, PReLU, gLN, dilated depthwise conv, PReLU, gLN; residual and skip 1x1 convs."""

    def __init__(self, c: ConvTasNetConfig, dilation: int) -> None:
        super().__init__()
        self.inp = nn.Conv1d(c.bn_chan, c.hid_chan, 1)
        self.act1, self.norm1 = nn.PReLU(), GlobLN(c.hid_chan)
        pad = (c.conv_kernel_size - 1) * dilation // 2
        self.depth = nn.Conv1d(
            c.hid_chan,
            c.hid_chan,
            c.conv_kernel_size,
            padding=pad,
            dilation=dilation,
            groups=c.hid_chan,
        )
        self.act2, self.norm2 = nn.PReLU(), GlobLN(c.hid_chan)
        self.res = nn.Conv1d(c.hid_chan, c.bn_chan, 1)
        self.skip = nn.Conv1d(c.hid_chan, c.skip_chan, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.norm1(self.act1(self.inp(x)))
        y = self.norm2(self.act2(self.depth(y)))
        return self.res(y), self.skip(y)


class ConvTasNet(nn.Module):
    """Waveform ``(B, T)`` -> ``(B, n_src, T)`` separated waveforms."""

    def __init__(self, config: ConvTasNetConfig) -> None:
        super().__init__()
        c = self.config = config
        self.encoder = nn.Parameter(torch.zeros(c.n_filters, 1, c.kernel_size))
        self.decoder = nn.Parameter(torch.zeros(c.n_filters, 1, c.kernel_size))
        nn.init.xavier_normal_(self.encoder)
        nn.init.xavier_normal_(self.decoder)
        self.in_norm = GlobLN(c.n_filters)
        self.bottleneck = nn.Conv1d(c.n_filters, c.bn_chan, 1)
        self.blocks = nn.ModuleList(
            Block(c, 2**b) for _ in range(c.n_repeats) for b in range(c.n_blocks)
        )
        self.mask_act_in = nn.PReLU()
        self.mask = nn.Conv1d(c.skip_chan, c.n_src * c.n_filters, 1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        c = self.config
        w = F.conv1d(audio[:, None], self.encoder, stride=c.stride)  # (B, N, L)
        x = self.bottleneck(self.in_norm(w))
        skip = torch.zeros((), device=audio.device)
        for block in self.blocks:
            res, s = block(x)
            x, skip = x + res, skip + s
        score = self.mask(self.mask_act_in(skip)).view(w.shape[0], c.n_src, c.n_filters, -1)
        if c.mask_act == "relu":
            masks = F.relu(score)
        elif c.mask_act == "sigmoid":
            masks = torch.sigmoid(score)
        else:
            masks = torch.softmax(score, dim=1)
        masked = (masks * w[:, None]).flatten(0, 1)
        out = F.conv_transpose1d(masked, self.decoder, stride=c.stride).view(
            w.shape[0], c.n_src, -1
        )
        # Asteroid pads (or trims) the decoder output on the right to the input length.
        return F.pad(out, (0, audio.shape[-1] - out.shape[-1]))


def build(config: ConvTasNetConfig) -> ConvTasNet:
    """A randomly initialised model."""
    return ConvTasNet(config)


def asteroid_key_map(config: ConvTasNetConfig) -> dict[str, str]:
    """Our parameter names -> Asteroid's."""
    m = {
        "encoder": "encoder.filterbank._filters",
        "decoder": "decoder.filterbank._filters",
        "in_norm.gamma": "masker.bottleneck.0.gamma",
        "in_norm.beta": "masker.bottleneck.0.beta",
        "bottleneck.weight": "masker.bottleneck.1.weight",
        "bottleneck.bias": "masker.bottleneck.1.bias",
        "mask_act_in.weight": "masker.mask_net.0.weight",
        "mask.weight": "masker.mask_net.1.weight",
        "mask.bias": "masker.mask_net.1.bias",
    }
    layers = {"inp": 0, "act1": 1, "norm1": 2, "depth": 3, "act2": 4, "norm2": 5}
    for i in range(config.n_blocks * config.n_repeats):
        for ours, idx in layers.items():
            params = {
                "norm1": ("gamma", "beta"),
                "norm2": ("gamma", "beta"),
                "act1": ("weight",),
                "act2": ("weight",),
            }.get(ours, ("weight", "bias"))
            for p in params:
                m[f"blocks.{i}.{ours}.{p}"] = f"masker.TCN.{i}.shared_block.{idx}.{p}"
        for ours, theirs in (("res", "res_conv"), ("skip", "skip_conv")):
            for p in ("weight", "bias"):
                m[f"blocks.{i}.{ours}.{p}"] = f"masker.TCN.{i}.{theirs}.{p}"
    return m


def load_asteroid(
    path: str | os.PathLike[str], device: str = "cpu", sample_rate: int | None = None
) -> ConvTasNet:
    """Build a :class:`ConvTasNet` from an Asteroid checkpoint (``torch.load`` weights only).

    Args:
        path: the ``pytorch_model.bin`` / ``.pth`` Asteroid wrote.
        device: torch device.
        sample_rate: override of ``model_args["sample_rate"]`` (the published 16 kHz Libri2Mix
            model's file says 8000, its model card and training data 16000).

    Raises:
        ModelError: not an Asteroid Conv-TasNet package, or tensors missing, extra or misshapen.
    """
    try:
        package = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(package, dict) or not {"state_dict", "model_args"} <= set(package):
        raise ModelError(f"{path}: not an Asteroid model package (no state_dict/model_args)")
    if package.get("model_name", "ConvTasNet") != "ConvTasNet":
        raise ModelError(f"{path}: an Asteroid {package.get('model_name')}, not a ConvTasNet")
    config = ConvTasNetConfig.from_model_args(package["model_args"], sample_rate)
    model = build(config)
    state = package["state_dict"]
    mapping = asteroid_key_map(config)
    # The last block's residual output feeds nothing; Asteroid still stores it.
    last = config.n_blocks * config.n_repeats - 1
    unused = {f"masker.TCN.{last}.res_conv.weight", f"masker.TCN.{last}.res_conv.bias"}
    missing = sorted(set(mapping.values()) - set(state))
    extra = sorted(set(state) - set(mapping.values()) - unused)
    if missing or extra:
        raise ModelError(
            f"{path}: Conv-TasNet tensors missing {missing[:3]} / unexpected {extra[:3]}"
        )
    ours = model.state_dict()
    for key, theirs in mapping.items():
        if tuple(state[theirs].shape) != tuple(ours[key].shape):
            raise ModelError(
                f"{path}: {theirs} is {tuple(state[theirs].shape)}, "
                f"expected {tuple(ours[key].shape)}"
            )
    model.load_state_dict({k: state[v] for k, v in mapping.items()})
    return model.to(device).eval()


def infer(model: ConvTasNet, audio: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` at ``config.sample_rate`` -> ``(B, n_src, T)`` (no gradient)."""
    with torch.no_grad():
        return model(audio)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> ConvTasNet:
    """The front door's hook (:func:`avtool.models.loading.load`): an Asteroid package, at the
    sample rate of the entry's ``[config]`` (else its ``sample_rate``, else the file's); an
    avtool checkpoint (:mod:`avtool.models.checkpoint`) carries its config."""
    if checkpoint.is_checkpoint(resolved.path):
        stored = checkpoint.read(resolved.path, "convtasnet")
        return checkpoint.build_from(
            stored, lambda data: ConvTasNetConfig(**data), build, device, source=str(resolved.path)
        )
    entry = resolved.entry
    rate = entry.config.get("sample_rate") or entry.sample_rate
    return load_asteroid(resolved.path, device, sample_rate=rate)


def entry_facts(resolved: ResolvedModel, model: ConvTasNet) -> dict[str, Any]:
    """The sidecar's facts: the architecture (no lip reader)."""
    return {"config": model.config.to_dict(), "lip_reader": None}
