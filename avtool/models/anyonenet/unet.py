"""The landmark-to-image UNet (pix2pix's UNet generator on a 6-channel input).

Input: ``(B, 6, S, S)`` = landmark sketch (3) + source image (3), both in [-1, 1]; output
``(B, 3, S, S)`` in [-1, 1] (tanh). Each level halves the size with a 4x4 stride-2 convolution
and the decoder mirrors it with transposed convolutions and skip connections.
"""

from __future__ import annotations

import torch
from torch import nn

from avtool.models.anyonenet.config import RendererConfig


class _Level(nn.Module):
    """One UNet level: down → (inner levels) → up, concatenated with its input (skip)."""

    def __init__(
        self, outer: int, inner: int, sub: nn.Module | None, *, norm: bool, dropout: bool
    ) -> None:
        super().__init__()
        self.down = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Conv2d(outer, inner, 4, stride=2, padding=1, bias=not norm),
            # The innermost level is 1x1 at full depth, where instance norm would zero it.
            nn.InstanceNorm2d(inner, affine=True) if norm else nn.Identity(),
        )
        self.sub = sub
        up_in = inner * 2 if sub is not None else inner
        self.up = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(outer, affine=True),
            nn.Dropout(0.5) if dropout else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.sub is not None:
            y = self.sub(y)
        return torch.cat([x, self.up(y)], dim=1)


class UNet(nn.Module):
    """pix2pix UNet with ``config.depth`` levels (8 for 256x256 frames)."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.config = config
        base = config.base_channels
        widths = [min(base * 2**i, base * 8) for i in range(config.depth)]
        # widths[i] is the output of down-sampling step i; build from the innermost out.
        level: nn.Module | None = None
        for i in range(config.depth - 1, 0, -1):
            level = _Level(
                widths[i - 1],
                widths[i],
                level,
                norm=i < config.depth - 1,
                # pix2pix's dropout on the three innermost up-steps after the bottleneck.
                dropout=0 < config.depth - 1 - i <= 3 and widths[i] == base * 8,
            )
        self.first = nn.Conv2d(config.in_channels, base, 4, stride=2, padding=1)
        self.inner = level
        last_in = base * 2 if level is not None else base
        self.last = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(last_in, config.out_channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 6, S, S)`` sketch + source → ``(B, 3, S, S)`` frame in [-1, 1]."""
        size = self.config.image_size
        if x.shape[1:] != (self.config.in_channels, size, size):
            raise ValueError(
                f"expected (B, {self.config.in_channels}, {size}, {size}), got {tuple(x.shape)}"
            )
        y = self.first(x)
        if self.inner is not None:
            y = self.inner(y)
        return self.last(y)


def build(config: RendererConfig) -> UNet:
    """A randomly initialised UNet (weights N(0, 0.02) as pix2pix; seed torch first)."""
    model = UNet(config)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
