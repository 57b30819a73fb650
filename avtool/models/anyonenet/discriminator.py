"""The conditional patch discriminator (pix2pix's 70x70 PatchGAN at the paper size).

It scores ``(B, 6, S, S)`` = landmark sketch (3) + a real or generated frame (3), giving one
logit per overlapping patch, and also returns its intermediate features for the
feature-matching loss (the perceptual-loss fallback when no VGG-19 weights are given).
"""

from __future__ import annotations

import torch
from torch import nn

from avtool.models.anyonenet.config import RendererConfig


class PatchDiscriminator(nn.Module):
    """``disc_layers`` stride-2 4x4 convolutions, one stride-1, then a 1-channel logit map."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        base = config.disc_channels
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(6, base, 4, 2, 1), nn.LeakyReLU(0.2))]
        width = base
        for i in range(1, config.disc_layers + 1):
            out = min(base * 2**i, base * 8)
            stride = 2 if i < config.disc_layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(width, out, 4, stride, 1, bias=False),
                    nn.InstanceNorm2d(out, affine=True),
                    nn.LeakyReLU(0.2),
                )
            )
            width = out
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.blocks = nn.ModuleList(blocks)

    def forward(
        self, sketch: torch.Tensor, image: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Score patches.

        Args:
            sketch: ``(B, 3, S, S)`` landmark sketch in [-1, 1].
            image: ``(B, 3, S, S)`` frame in [-1, 1].

        Returns:
            ``(logits (B, 1, h, w), features)``: one logit per patch and the activations of
            every block but the last.
        """
        x = torch.cat([sketch, image], dim=1)
        features = []
        for block in self.blocks[:-1]:
            x = block(x)
            features.append(x)
        return self.blocks[-1](x), features


def build(config: RendererConfig) -> PatchDiscriminator:
    """A randomly initialised discriminator (weights N(0, 0.02); seed torch first)."""
    model = PatchDiscriminator(config)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
