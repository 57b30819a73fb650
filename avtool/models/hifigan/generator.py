"""The HiFi-GAN generator (Kong et al., 2020) with the module names of jik876/hifi-gan.

``conv_pre`` lifts the mel to ``upsample_initial_channel`` channels; each ``ups[i]`` (a
transposed convolution) halves the channels and multiplies the time resolution by
``upsample_rates[i]``; after each, the multi-receptive-field fusion averages
``len(resblock_kernel_sizes)`` residual blocks (``resblocks[i * n + j]``); ``conv_post`` maps
to one channel and ``tanh`` bounds the waveform. Every convolution is weight-normalised, so the
state dict has ``weight_g``/``weight_v`` pairs exactly as the published generator files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from avtool.models.weightnorm import WNConv1d, WNConvTranspose1d, fold_weight_norm

if TYPE_CHECKING:
    from avtool.models.hifigan import HiFiGANConfig

#: Negative slope of the leaky ReLUs inside the network (the reference's LRELU_SLOPE).
LRELU_SLOPE = 0.1
#: The reference applies torch's default slope before ``conv_post``; trained weights expect it.
FINAL_LRELU_SLOPE = 0.01


def _dilated_convs(channels: int, kernel_size: int, dilations: tuple[int, ...]) -> nn.ModuleList:
    """One length-keeping (same-padded) ``channels -> channels`` convolution per dilation."""
    return nn.ModuleList(
        WNConv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size - 1) * d // 2)
        for d in dilations
    )


class ResBlock1(nn.Module):
    """Residual block type "1": per dilation, a dilated conv then an undilated one.

    Args:
        channels: input and output channels.
        kernel_size: odd kernel size of every convolution.
        dilations: one dilated convolution (``convs1[j]``) per entry, each followed by an
            undilated one (``convs2[j]``).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = _dilated_convs(channels, kernel_size, dilations)
        self.convs2 = _dilated_convs(channels, kernel_size, (1,) * len(dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, channels, T)`` -> ``(B, channels, T)``."""
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            residual = dilated(F.leaky_relu(x, LRELU_SLOPE))
            x = x + plain(F.leaky_relu(residual, LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """Residual block type "2" (the small V3 generator): one dilated conv per dilation.

    Args:
        channels: input and output channels.
        kernel_size: odd kernel size of every convolution.
        dilations: one convolution (``convs[j]``) per entry.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = _dilated_convs(channels, kernel_size, dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, channels, T)`` -> ``(B, channels, T)``."""
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """Mel spectrogram to waveform.

    Args:
        config: the architecture; its ``hop_length`` (product of ``upsample_rates``) is the
            number of samples per mel frame.

    Attributes:
        config: the architecture it was built from.
    """

    def __init__(self, config: HiFiGANConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.upsample_initial_channel
        self.conv_pre = WNConv1d(config.num_mels, channels, 7, padding=3)
        block = ResBlock1 if config.resblock == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
            # (kernel - rate) is even (checked by the config), so each stage gives exactly
            # rate samples per input step.
            self.ups.append(
                WNConvTranspose1d(
                    channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2
                )
            )
            channels //= 2
            for size, dilations in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(block(channels, size, dilations))
        self.conv_post = WNConv1d(channels, 1, 7, padding=3)

    @property
    def hop_length(self) -> int:
        """Output samples per input mel frame."""
        return self.config.hop_length

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Vocode a batch of mel spectrograms.

        Args:
            mel: ``(B, num_mels, frames)`` log-mel spectrogram (the config's mel preset).

        Returns:
            ``(B, 1, frames * hop_length)`` waveform in [-1, 1].
        """
        fusion = len(self.config.resblock_kernel_sizes)
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * fusion : (i + 1) * fusion]
            x = sum(block(x) for block in blocks) / fusion
        x = self.conv_post(F.leaky_relu(x, FINAL_LRELU_SLOPE))
        return torch.tanh(x)

    def remove_weight_norm(self) -> HiFiGANGenerator:
        """Fold every ``weight_g``/``weight_v`` pair into a plain ``weight`` (in place).

        Inference gets faster and outputs do not change; the state dict then has ``weight``
        keys instead. Returns the module itself.
        """
        fold_weight_norm(self)
        return self
