"""LipNet (Assael et al., 2016): spatio-temporal convolutions, two BiGRUs, CTC over characters.

    config = LipNetConfig.paper()               # 3x50x100 RGB mouth crops, 32/64/96 channels
    model = build(config)
    log_probs = model(video)                    # (B, C, T, H, W) float -> (B, T, vocab) log-probs

The network sees mouth crops made by :func:`avtool.io.face.mouth_crops` with the ``lipnet``
preset (100x50 RGB); :func:`prepare_input` turns those uint8 crops into the model's input
(optionally grey and downsampled, as the reduced CPU configuration is), so training and
inference share one code path.

Vocabulary: index 0 is the CTC blank, 1 is the space, 2-27 are ``a``-``z``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from avtool.errors import ModelError
from avtool.models.presets import PresetConfig

BLANK = 0
ALPHABET = " abcdefghijklmnopqrstuvwxyz"
VOCAB_SIZE = len(ALPHABET) + 1  # + blank


def encode_text(text: str) -> list[int]:
    """Character ids (1..27) of ``text``; characters outside the alphabet are dropped."""
    return [ALPHABET.index(c) + 1 for c in text.lower() if c in ALPHABET]


def decode_ids(ids: list[int]) -> str:
    """Text of character ids (blanks ignored)."""
    return "".join(ALPHABET[i - 1] for i in ids if i != BLANK)


@dataclass(frozen=True)
class LipNetConfig(PresetConfig):
    """A LipNet architecture and the input preprocessing it was trained with.

    Attributes:
        in_channels: 3 (RGB crops, the paper) or 1 (luma).
        height, width: input size in pixels after ``downsample``.
        downsample: integer factor the 50x100 ``lipnet`` crops are average-pooled by.
        channels: output channels of the three spatio-temporal conv blocks.
        kernels: ``(t, h, w)`` kernel of each conv block (padding is half the kernel).
        first_stride: spatial stride of the first conv (2 in the paper).
        hidden: units of each GRU direction.
        gru_layers: stacked bidirectional GRU layers.
        dropout: spatial dropout after each conv block (training only).
        batch_norm: batch normalisation after each conv (as rizkiarm/LipNet's Keras model).
        normalize: input scaling: ``standardize`` (each clip to zero mean, unit deviation) or
            ``unit`` (pixels / 255, as the Keras LipNet).
        keras_gru: use Keras' GRU formulation (``reset_after=False``, reset gate applied before
            the recurrent matmul) so converted Keras weights run exactly; torch's cuDNN-style
            GRU otherwise.
    """

    in_channels: int = 3
    height: int = 50
    width: int = 100
    downsample: int = 1
    channels: tuple[int, int, int] = (32, 64, 96)
    kernels: tuple[tuple[int, int, int], ...] = ((3, 5, 5), (3, 5, 5), (3, 3, 3))
    first_stride: int = 2
    hidden: int = 256
    gru_layers: int = 2
    dropout: float = 0.5
    batch_norm: bool = True
    keras_gru: bool = False
    normalize: str = "standardize"

    presets: ClassVar[tuple[str, ...]] = ("paper", "reduced", "debug")
    family_name: ClassVar[str] = "LipNet"

    @classmethod
    def paper(cls) -> LipNetConfig:
        """LipNet as published: 3x50x100 RGB input, 32/64/96 channels, BiGRU 256."""
        return cls()

    @classmethod
    def reduced(cls) -> LipNetConfig:
        """The CPU-trainable configuration shipped as ``lipnet-grid-s1``.

        Grey 25x50 crops (the 50x100 crop pooled 2x), 16/32/48 channels, no first-conv
        stride (the input is already small), BiGRU 128: about 1/8 of the paper's compute.
        """
        return cls(
            in_channels=1, height=25, width=50, downsample=2, channels=(16, 32, 48),
            first_stride=1, hidden=128, dropout=0.2,
        )  # fmt: skip

    @classmethod
    def debug(cls) -> LipNetConfig:
        """A tiny random-weight model for tests."""
        return cls(
            in_channels=1, height=10, width=20, downsample=5, channels=(4, 4, 4),
            kernels=((3, 3, 3), (3, 3, 3), (3, 3, 3)), first_stride=1, hidden=8, dropout=0.0,
        )  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LipNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error.

        Raises:
            ModelError: unknown keys or a malformed value.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"LipNet config: unknown keys {sorted(unknown)}")
        values = dict(data)
        if "channels" in values:
            values["channels"] = tuple(int(v) for v in values["channels"])
        if "kernels" in values:
            values["kernels"] = tuple(tuple(int(k) for k in kern) for kern in values["kernels"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ModelError(f"LipNet config: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def feature_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` after the conv blocks (each pools space by 2)."""
        h, w = self.height, self.width
        for index, kernel in enumerate(self.kernels):
            stride = self.first_stride if index == 0 else 1
            pad_h, pad_w = kernel[1] // 2, kernel[2] // 2
            h = (h + 2 * pad_h - kernel[1]) // stride + 1
            w = (w + 2 * pad_w - kernel[2]) // stride + 1
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ModelError(f"LipNet config: input {self.height}x{self.width} is too small")
        return self.channels[-1], h, w


class KerasGRU(nn.Module):
    """One direction of a Keras ``GRU(reset_after=False)``: ``h~ = tanh(W x + U (r * h) + b)``.

    torch's :class:`nn.GRU` applies the reset gate after the recurrent matmul
    (``r * (U h + b_u)``), which gives different outputs for the same weights, so converted
    Keras weights need this loop. Gate order of the stacked weights is Keras' ``(z, r, h)``.
    """

    def __init__(self, input_size: int, hidden: int, reverse: bool = False) -> None:
        super().__init__()
        self.hidden = hidden
        self.reverse = reverse
        self.kernel = nn.Parameter(torch.zeros(input_size, 3 * hidden))
        self.recurrent = nn.Parameter(torch.zeros(hidden, 3 * hidden))
        self.bias = nn.Parameter(torch.zeros(3 * hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, input)`` -> ``(B, T, hidden)``."""
        n = self.hidden
        projected = x @ self.kernel + self.bias  # (B, T, 3n)
        h = x.new_zeros(x.shape[0], n)
        steps = range(x.shape[1] - 1, -1, -1) if self.reverse else range(x.shape[1])
        outputs: list[torch.Tensor] = [h] * x.shape[1]
        u_zr, u_h = self.recurrent[:, : 2 * n], self.recurrent[:, 2 * n :]
        for t in steps:
            zr = torch.sigmoid(projected[:, t, : 2 * n] + h @ u_zr)
            z, r = zr[:, :n], zr[:, n:]
            candidate = torch.tanh(projected[:, t, 2 * n :] + (r * h) @ u_h)
            h = z * h + (1 - z) * candidate
            outputs[t] = h
        return torch.stack(outputs, dim=1)


class KerasBiGRU(nn.Module):
    """Stacked bidirectional :class:`KerasGRU` layers with concatenated outputs."""

    def __init__(self, input_size: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for index in range(layers):
            size = input_size if index == 0 else 2 * hidden
            self.forward_layers.append(KerasGRU(size, hidden))
            self.backward_layers.append(KerasGRU(size, hidden, reverse=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fwd, bwd in zip(self.forward_layers, self.backward_layers, strict=True):
            x = torch.cat([fwd(x), bwd(x)], dim=-1)
        return x


class LipNet(nn.Module):
    """LipNet: 3 x (Conv3d -> [BN] -> ReLU -> spatial dropout -> max-pool 1x2x2), BiGRUs, linear.

    Args:
        config: the architecture.
    """

    def __init__(self, config: LipNetConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        in_ch = config.in_channels
        for index, (out_ch, kernel) in enumerate(zip(config.channels, config.kernels, strict=True)):
            stride = (1, config.first_stride, config.first_stride) if index == 0 else (1, 1, 1)
            padding = tuple(k // 2 for k in kernel)
            layers: list[nn.Module] = [nn.Conv3d(in_ch, out_ch, kernel, stride, padding)]
            if config.batch_norm:
                layers.append(nn.BatchNorm3d(out_ch, eps=1e-3, momentum=0.01))
            layers += [nn.ReLU(), nn.Dropout3d(config.dropout), nn.MaxPool3d((1, 2, 2))]
            blocks.append(nn.Sequential(*layers))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        feat_c, feat_h, feat_w = config.feature_shape()
        features = feat_c * feat_h * feat_w
        self.gru: nn.Module
        if config.keras_gru:
            self.gru = KerasBiGRU(features, config.hidden, config.gru_layers)
        else:
            self.gru = nn.GRU(
                features, config.hidden, num_layers=config.gru_layers, batch_first=True,
                bidirectional=True,
            )  # fmt: skip
        self.out = nn.Linear(2 * config.hidden, VOCAB_SIZE)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Character log-probabilities per frame.

        Args:
            video: ``(B, C, T, H, W)`` float, as made by :func:`prepare_input`.

        Returns:
            ``(B, T, VOCAB_SIZE)`` log-softmax over blank + 27 characters, one row per frame.
        """
        x = self.blocks(video)  # (B, C', T, H', W')
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(b, t, c * h * w)
        x = self.gru(x)
        if isinstance(x, tuple):
            x = x[0]
        return torch.log_softmax(self.out(x), dim=-1)


def build(config: LipNetConfig) -> LipNet:
    """A randomly initialised LipNet (seed torch first for reproducible weights)."""
    return LipNet(config)


def prepare_input(crops: np.ndarray, config: LipNetConfig) -> torch.Tensor:
    """Mouth crops to the network's input for one clip.

    With ``normalize="standardize"`` each clip is scaled to zero mean and unit deviation, which
    removes lighting and skin tone differences between recordings.

    Args:
        crops: ``(T, 50, 100, 3)`` uint8 ``lipnet``-preset crops.
        config: the model's preprocessing (channels, downsample factor, size).

    Returns:
        ``(C, T, H, W)`` float32.

    Raises:
        ModelError: the crops do not have the size the config expects after downsampling.
    """
    x = torch.from_numpy(np.ascontiguousarray(crops)).float()  # (T, H, W, 3)
    if config.in_channels == 1:
        x = (x @ torch.tensor([0.299, 0.587, 0.114])).unsqueeze(-1)
    x = x.permute(3, 0, 1, 2)  # (C, T, H, W)
    if config.downsample > 1:
        x = torch.nn.functional.avg_pool2d(x, config.downsample)
    if tuple(x.shape[-2:]) != (config.height, config.width):
        raise ModelError(
            f"LipNet expects {config.height}x{config.width} input after /{config.downsample}, "
            f"got {tuple(x.shape[-2:])} from crops of shape {tuple(crops.shape)}"
        )
    if config.normalize == "unit":
        return x / 255.0
    if config.normalize != "standardize":
        raise ModelError(f"LipNet config: unknown normalize {config.normalize!r}")
    return (x - x.mean()) / (x.std() + 1e-5)
