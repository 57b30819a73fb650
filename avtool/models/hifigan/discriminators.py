"""HiFi-GAN's discriminators and GAN losses (Kong et al., 2020; jik876/hifi-gan ``models.py``).

Two discriminators judge real and generated waveforms ``(B, 1, T)``:

* :class:`MultiPeriodDiscriminator` (MPD): one :class:`PeriodDiscriminator` per period
  (2, 3, 5, 7, 11); each folds the waveform into a ``(T / p, p)`` image and convolves along
  time only, so it sees every ``p``-th sample: periodic structure the generator must get right.
* :class:`MultiScaleDiscriminator` (MSD): three :class:`ScaleDiscriminator` on the raw
  waveform and on 2x and 4x average-pooled copies; the first is spectrally normalised (the
  paper's choice for stability at full rate), the others weight-normalised.

Module names follow the reference, so ``{"mpd": mpd.state_dict(), "msd": msd.state_dict()}``
matches the official ``do_XXXXXXXX`` files key for key (``discriminators.N.convs.M.weight_g``,
``...weight_v``, ``bias``; ``weight_orig``/``weight_u``/``weight_v`` on the spectrally
normalised first scale). Both return, per sub-discriminator, the flattened logits and the
feature maps after each layer, which the losses below consume.

Losses are the least-squares GAN losses and the L1 feature matching of the paper; the
generator's total is ``adv + 2 * fm + 45 * mel L1`` (the factor 2 is inside
:func:`feature_loss`, as in the reference).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avtool.models.hifigan.generator import LRELU_SLOPE
from avtool.models.weightnorm import WNConv1d, _WeightNormed

__all__ = [
    "PERIODS",
    "DiscriminatorOutput",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "WNConv2d",
    "discriminator_loss",
    "feature_loss",
    "generator_loss",
]

#: Periods of the MPD's sub-discriminators (primes, so their views overlap little).
PERIODS = (2, 3, 5, 7, 11)

#: ``(real logits, fake logits, real feature maps, fake feature maps)``, one entry per
#: sub-discriminator; logits are ``(B, n)`` and each feature map list holds one tensor per layer.
DiscriminatorOutput = tuple[
    list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]
]


class WNConv2d(_WeightNormed, nn.Conv2d):
    """``nn.Conv2d`` with a weight-normalised weight (parameters ``weight_g``, ``weight_v``).

    Input ``(B, in_channels, H, W)``, output ``(B, out_channels, H', W')`` as for
    ``nn.Conv2d``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


def _narrow(channels: int, divisor: int) -> int:
    if divisor < 1 or channels % divisor:
        raise ValueError(f"width_divisor {divisor} must be a positive divisor of {channels}")
    return channels // divisor


def _spectral_conv1d(*args: Any, **kwargs: Any) -> nn.Conv1d:
    # torch's original spectral_norm (not the parametrization) stores weight_orig/weight_u/
    # weight_v, the names in the published do_ files.
    return nn.utils.spectral_norm(nn.Conv1d(*args, **kwargs))


def _run_layers(
    x: torch.Tensor, convs: nn.ModuleList, post: nn.Module
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv stack; returns the flattened logits and every layer's output."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return torch.flatten(x, 1), features


class PeriodDiscriminator(nn.Module):
    """One MPD branch: the waveform folded by ``period`` and judged by 2-D convolutions.

    Args:
        period: samples per row of the folded waveform.
        kernel_size: kernel length along time (rows); the period axis is never mixed.
        stride: time stride of the first four convolutions.
        width_divisor: divides every hidden width (1: the paper's 32-128-512-1024-1024).
    """

    def __init__(
        self, period: int, kernel_size: int = 5, stride: int = 3, width_divisor: int = 1
    ) -> None:
        super().__init__()
        self.period = period
        # The reference pads as for kernel 5 whatever kernel_size is; kept for identical shapes.
        pad = (2, 0)
        widths = [1, *(_narrow(c, width_divisor) for c in (32, 128, 512, 1024))]
        self.convs = nn.ModuleList(
            WNConv2d(c_in, c_out, (kernel_size, 1), (stride, 1), padding=pad)
            for c_in, c_out in itertools.pairwise(widths)
        )
        top = widths[-1]
        self.convs.append(WNConv2d(top, top, (kernel_size, 1), 1, padding=pad))
        self.conv_post = WNConv2d(top, 1, (3, 1), 1, padding=(1, 0))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Judge ``(B, 1, T)`` audio.

        Returns:
            ``(logits, features)``: logits ``(B, rows * period)`` and the six feature maps,
            each ``(B, C, rows_k, period)``.
        """
        batch, channels, length = audio.shape
        if length % self.period:
            # Reflect-pad to whole rows (the reference's rule; it needs length > pad).
            pad = self.period - length % self.period
            audio = F.pad(audio, (0, pad), mode="reflect")
            length += pad
        x = audio.view(batch, channels, length // self.period, self.period)
        return _run_layers(x, self.convs, self.conv_post)


class ScaleDiscriminator(nn.Module):
    """One MSD branch: strided, grouped 1-D convolutions over the waveform.

    Args:
        spectral_norm: spectrally normalise every layer instead of weight-normalising.
        width_divisor: divides every hidden width (1: the paper's 128 ... 1024 channels).
    """

    def __init__(self, spectral_norm: bool = False, width_divisor: int = 1) -> None:
        super().__init__()
        conv = _spectral_conv1d if spectral_norm else WNConv1d
        # (in, out, kernel, stride, groups); padding keeps "same" length before the stride.
        layers = (
            (1, 128, 15, 1, 1),
            (128, 128, 41, 2, 4),
            (128, 256, 41, 2, 16),
            (256, 512, 41, 4, 16),
            (512, 1024, 41, 4, 16),
            (1024, 1024, 41, 1, 16),
            (1024, 1024, 5, 1, 1),
        )
        self.convs = nn.ModuleList()
        for c_in, c_out, k, stride, groups in layers:
            c_in = c_in if c_in == 1 else _narrow(c_in, width_divisor)
            c_out = _narrow(c_out, width_divisor)
            # Narrowed layers keep at least one channel per group.
            groups = min(groups, c_in, c_out)
            self.convs.append(conv(c_in, c_out, k, stride, groups=groups, padding=(k - 1) // 2))
        self.conv_post = conv(_narrow(1024, width_divisor), 1, 3, 1, padding=1)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Judge ``(B, 1, T)`` audio.

        Returns:
            ``(logits, features)``: logits ``(B, ~T / 64)`` and the eight feature maps.
        """
        return _run_layers(audio, self.convs, self.conv_post)


class MultiPeriodDiscriminator(nn.Module):
    """The MPD: a :class:`PeriodDiscriminator` per entry of ``periods``.

    Args:
        periods: the periods in samples.
        width_divisor: narrows every branch (see :class:`PeriodDiscriminator`); the published
            ``do_`` files hold the defaults.
    """

    def __init__(self, periods: Sequence[int] = PERIODS, width_divisor: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, width_divisor=width_divisor) for p in periods
        )

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> DiscriminatorOutput:
        """Judge real and generated ``(B, 1, T)`` waveforms (see :data:`DiscriminatorOutput`)."""
        count = len(self.discriminators)
        return _judge(self.discriminators, [real] * count, [fake] * count)


class MultiScaleDiscriminator(nn.Module):
    """The MSD: three :class:`ScaleDiscriminator` at 1x, 1/2x and 1/4x the sample rate.

    Args:
        width_divisor: narrows every branch (see :class:`ScaleDiscriminator`); the published
            ``do_`` files hold the default.
    """

    def __init__(self, width_divisor: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(spectral_norm=i == 0, width_divisor=width_divisor) for i in range(3)
        )
        # No parameters, so these names never appear in the state dict.
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2) for _ in range(2)])

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> DiscriminatorOutput:
        """Judge real and generated ``(B, 1, T)`` waveforms (see :data:`DiscriminatorOutput`)."""
        reals, fakes = [real], [fake]
        # Each scale pools the previous scale's signal: 1/2x, then 1/4x.
        for pool in self.meanpools:
            reals.append(pool(reals[-1]))
            fakes.append(pool(fakes[-1]))
        return _judge(self.discriminators, reals, fakes)


def _judge(
    discriminators: nn.ModuleList, reals: Sequence[torch.Tensor], fakes: Sequence[torch.Tensor]
) -> DiscriminatorOutput:
    """Run discriminator ``i`` on ``reals[i]`` and on ``fakes[i]``."""
    real_logits, fake_logits, real_maps, fake_maps = [], [], [], []
    for disc, real, fake in zip(discriminators, reals, fakes, strict=True):
        logits, maps = disc(real)
        real_logits.append(logits)
        real_maps.append(maps)
        logits, maps = disc(fake)
        fake_logits.append(logits)
        fake_maps.append(maps)
    return real_logits, fake_logits, real_maps, fake_maps


def feature_loss(
    real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Feature matching: ``2 * sum`` over discriminators and layers of ``mean |real - fake|``.

    Args:
        real_features: per discriminator, its feature maps (one per layer) on real audio.
        fake_features: the same maps on generated audio.

    Returns:
        Scalar loss, 0 when the maps are equal.
    """
    total = sum(
        torch.mean(torch.abs(r - g))
        for maps_r, maps_g in zip(real_features, fake_features, strict=True)
        for r, g in zip(maps_r, maps_g, strict=True)
    )
    return 2 * torch.as_tensor(total)


def discriminator_loss(
    real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Least-squares discriminator loss: real logits pushed to 1, generated ones to 0.

    Args:
        real_logits: per discriminator, its ``(B, n)`` logits on real audio.
        fake_logits: the same on generated audio.

    Returns:
        ``(loss, real_terms, fake_terms)``: the scalar ``sum mean((1 - r)²) + mean(g²)`` and
        each discriminator's two terms (scalars, for logging; no ``.item()`` here, so a GPU
        is not made to wait).
    """
    real_terms = [torch.mean((1 - r) ** 2) for r in real_logits]
    fake_terms = [torch.mean(g**2) for g in fake_logits]
    loss = torch.stack(real_terms).sum() + torch.stack(fake_terms).sum()
    return loss, real_terms, fake_terms


def generator_loss(fake_logits: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Least-squares adversarial loss of the generator: ``sum mean((1 - g)²)``.

    Args:
        fake_logits: per discriminator, its ``(B, n)`` logits on generated audio.

    Returns:
        ``(loss, terms)``: the scalar and each discriminator's term.
    """
    terms = [torch.mean((1 - g) ** 2) for g in fake_logits]
    return torch.stack(terms).sum(), terms
