"""MelGAN vocoders (Kumar et al., 2019; descriptinc/melgan-neurips): mel to 22.05 kHz audio.

The published generators (``linda_johnson.pt``, ``multi_speaker.pt``, a training run's
``best_netG.pt``) are plain state dicts of ``mel2wav.modules.Generator``: one
``nn.Sequential`` called ``model`` whose weight-normalised convolutions give keys such as
``model.1.weight_g`` and ``model.4.block.2.weight_v``. :class:`MelGANGenerator` rebuilds that
layout index for index; every architecture value can be read back from the tensor shapes, so
:func:`load` needs no config.

    model = load("linda_johnson.pt")
    audio = infer(model, mel)                       # (B, 80, frames) -> (B, frames * 256)

MelGAN's mel is the log10 magnitude mel (preset ``melgan_22k``), not HiFi-GAN's natural log.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.io.features import MelSpec, vocoder_mismatch
from avtool.models import checkpoint as avtool_checkpoint
from avtool.models.presets import PresetConfig
from avtool.models.weightnorm import (
    WNConv1d,
    WNConvTranspose1d,
    fold_weight_norm,
    load_generator,
    mel_input,
    open_checkpoint,
    to_model_keys,
)
from avtool.registry import ResolvedModel

__all__ = [
    "MelGANConfig",
    "MelGANGenerator",
    "build",
    "detect_config",
    "infer",
    "load",
    "to_checkpoint",
]

#: Preset names accepted by :meth:`MelGANConfig.preset`.
PRESETS = ("ljspeech", "debug")
#: Negative slope of every leaky ReLU in the reference generator.
LRELU_SLOPE = 0.2
# Top-level convolutions of the Sequential: model.<index>.weight_v (or folded .weight).
_TOP_LEVEL = re.compile(r"model\.(\d+)\.weight(?:_v)?")
_SHORTCUT = re.compile(r"model\.(\d+)\.shortcut\.weight(?:_v)?")


@dataclass(frozen=True)
class MelGANConfig(PresetConfig):
    """A MelGAN generator architecture (the reference ``Generator``'s arguments).

    Attributes:
        n_mel_channels: mel bands of the input.
        ngf: channels of the last stage; the first has ``ngf * 2 ** len(ratios)``.
        n_residual_layers: residual blocks after each upsampling, dilations 1, 3, 9, ...
        ratios: time upsampling factor of each stage (hard-coded to 8, 8, 2, 2 in the
            reference); their product is the hop length in samples.
        mel: the mel contract the model was trained on; its ``n_mels`` and ``hop_length``
            must agree with ``n_mel_channels`` and ``ratios``.
    """

    presets: ClassVar[tuple[str, ...]] = PRESETS
    family_name: ClassVar[str] = "MelGAN"

    n_mel_channels: int
    ngf: int
    n_residual_layers: int
    ratios: tuple[int, ...] = (8, 8, 2, 2)
    mel: MelSpec = field(default_factory=MelSpec.melgan_22k)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratios", tuple(int(r) for r in self.ratios))
        problems = []
        if self.n_mel_channels < 1 or self.ngf < 1:
            problems.append("n_mel_channels and ngf must be positive")
        if self.n_residual_layers < 0:
            problems.append("n_residual_layers must be >= 0")
        if not self.ratios or min(self.ratios) < 1:
            problems.append("ratios must be a non-empty list of positive integers")
        elif mismatch := vocoder_mismatch(
            self.mel, self.n_mel_channels, self.hop_length, f"product of ratios {list(self.ratios)}"
        ):
            problems.append(mismatch)
        if problems:
            raise ModelError("invalid MelGAN config: " + "; ".join(problems))

    @classmethod
    def ljspeech(cls) -> MelGANConfig:
        """The published generators (``linda_johnson.pt``, ``multi_speaker.pt``): 4.3 M params."""
        return cls(n_mel_channels=80, ngf=32, n_residual_layers=3)

    @classmethod
    def debug(cls) -> MelGANConfig:
        """Tiny random-weight look-alike (ngf 2): same hop, mel and key pattern."""
        return cls(n_mel_channels=80, ngf=2, n_residual_layers=2)

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame: the product of ``ratios``."""
        return math.prod(self.ratios)

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (the mel contract's)."""
        return self.mel.sample_rate

    @property
    def min_frames(self) -> int:
        """Fewest frames the reflection paddings accept (:func:`infer` pads shorter input)."""
        widest = 3 ** max(self.n_residual_layers - 1, 0)
        return max(4, -(-(widest + 1) // self.ratios[0]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the reference's argument names, ``ratios`` and the ``mel`` contract."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "ratios": list(self.ratios), "mel": self.mel.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MelGANConfig:
        """A config from :meth:`to_dict` output, the reference's ``args.yml`` values or a preset.

        ``{"preset": "ljspeech"}`` selects a preset (other keys override it); ``mel`` may be a
        :meth:`MelSpec.preset` name or a :meth:`MelSpec.to_dict` dict (MelGAN's 22.05 kHz
        contract when absent); keys that are not fields (the training arguments of
        ``args.yml``) are ignored.

        Raises:
            ModelError: a required field is missing or a value is invalid.
        """
        try:
            chosen = cls._fields_from(data)
            mel = chosen.get("mel")
            if isinstance(mel, str):
                chosen["mel"] = MelSpec.preset(mel)
            elif isinstance(mel, Mapping):
                chosen["mel"] = MelSpec.from_dict(dict(mel))
            return cls._complete(chosen)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"invalid MelGAN config: {exc}") from exc


class ResnetBlock(nn.Module):
    """``shortcut(x) + block(x)``, where ``block`` is a dilated 3-tap conv then a 1x1 conv.

    Args:
        dim: input and output channels.
        dilation: dilation of the 3-tap convolution (reflection-padded to keep the length).
    """

    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d(dilation),
            WNConv1d(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(LRELU_SLOPE),
            WNConv1d(dim, dim, kernel_size=1),
        )
        self.shortcut = WNConv1d(dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, dim, T)`` -> ``(B, dim, T)``."""
        return self.shortcut(x) + self.block(x)


class MelGANGenerator(nn.Module):
    """Mel spectrogram to waveform, with the reference's ``model.<index>`` layout.

    Args:
        config: the architecture.

    Attributes:
        config: the architecture it was built from.
        model: the layer stack (indices match the published state dicts).
    """

    def __init__(self, config: MelGANConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.ngf * 2 ** len(config.ratios)
        layers: list[nn.Module] = [
            nn.ReflectionPad1d(3),
            WNConv1d(config.n_mel_channels, channels, kernel_size=7),
        ]
        for ratio in config.ratios:
            # kernel 2r with this padding/output_padding gives exactly r samples per step,
            # odd ratios included.
            layers += [
                nn.LeakyReLU(LRELU_SLOPE),
                WNConvTranspose1d(
                    channels,
                    channels // 2,
                    kernel_size=2 * ratio,
                    stride=ratio,
                    padding=ratio // 2 + ratio % 2,
                    output_padding=ratio % 2,
                ),
            ]
            channels //= 2
            layers += [ResnetBlock(channels, 3**j) for j in range(config.n_residual_layers)]
        layers += [
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d(3),
            WNConv1d(channels, 1, kernel_size=7),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    @property
    def hop_length(self) -> int:
        """Output samples per input mel frame."""
        return self.config.hop_length

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Vocode a batch of mel spectrograms.

        Args:
            mel: ``(B, n_mel_channels, frames)`` log10-mel, ``frames >= config.min_frames``.

        Returns:
            ``(B, 1, frames * hop_length)`` waveform in [-1, 1].
        """
        return self.model(mel)

    def remove_weight_norm(self) -> MelGANGenerator:
        """Fold every ``weight_g``/``weight_v`` pair into a plain ``weight`` (in place).

        Outputs do not change; returns the module itself.
        """
        fold_weight_norm(self)
        return self


def build(config: MelGANConfig) -> MelGANGenerator:
    """A randomly initialised generator (weight-normalised, training mode).

    Uses torch's global RNG; call ``torch.manual_seed`` first for reproducible weights.
    """
    return MelGANGenerator(config)


def to_checkpoint(model: MelGANGenerator) -> dict[str, torch.Tensor]:
    """The published file layout: the generator's plain state dict (save with ``torch.save``).

    The layout leaves no room for a config; :func:`load` reads the architecture from the
    shapes, and :meth:`MelGANConfig.to_dict` can go in a JSON file beside the weights. A
    folded model is written as ``weight_g``/``weight_v`` too, so the reference code can
    read it.
    """
    with torch.device("meta"):
        layout = build(model.config).state_dict()
    return to_model_keys(model.state_dict(), layout)


def detect_config(state: Mapping[str, Any]) -> MelGANConfig | None:
    """Read the architecture back from a generator state dict's keys and shapes.

    The first and last top-level convolutions give ``n_mel_channels`` and ``ngf``; the
    transposed convolutions between them (kernel ``2 * ratio``) give ``ratios``; the
    ``shortcut`` convolutions per stage give ``n_residual_layers``. Returns None when the
    keys do not follow the MelGAN pattern (:func:`load_weights` then names what is off).
    """
    state = to_model_keys(state, {})
    top = sorted(
        (int(m.group(1)), v)
        for k, v in state.items()
        if (m := _TOP_LEVEL.fullmatch(k)) and isinstance(v, torch.Tensor) and v.ndim == 3
    )
    blocks = sum(1 for k in state if _SHORTCUT.fullmatch(k))
    stages = top[1:-1]
    if len(top) < 3 or blocks % len(stages):
        return None
    try:
        return MelGANConfig(
            n_mel_channels=int(top[0][1].shape[1]),
            ngf=int(top[-1][1].shape[1]),
            n_residual_layers=blocks // len(stages),
            ratios=tuple(max(int(v.shape[2]) // 2, 1) for _, v in stages),
        )
    except ModelError:
        return None


def load(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    config: MelGANConfig | None = None,
    device: str | torch.device = "cpu",
    *,
    fold_weight_norm: bool = True,
) -> MelGANGenerator:
    """Load a generator from a published state dict file (or an already loaded dict).

    Args:
        checkpoint: path of a plain generator state dict (read with ``weights_only=True``),
            or the dict. The parametrization key names of newer torch are accepted too.
        config: the architecture; read from the shapes when None.
        device: where the model goes.
        fold_weight_norm: fold weight norm for faster inference (outputs are unchanged).

    Returns:
        The generator in eval mode.

    Raises:
        ModelError: unreadable or truncated file, not a state dict, or missing/unexpected
            keys or shape mismatches (naming the file and the first few keys).
    """
    state, source = open_checkpoint(checkpoint, "MelGAN checkpoint")
    if not isinstance(state, Mapping):
        raise ModelError(f"{source}: expected a state dict, got a {type(state).__name__}")
    if "generator" in state and isinstance(state["generator"], Mapping):
        raise ModelError(f"{source}: a HiFi-GAN style checkpoint; load it as a HiFi-GAN model")
    guess = ""
    if config is None:
        config = detect_config(state)
    if config is None:
        # Nothing readable from the shapes: compare with the published layout so the error
        # lists what differs from it.
        config, guess = MelGANConfig.ljspeech(), "; no config given, so the published one"
    what = (
        f"MelGAN generator (ngf {config.ngf}, {config.n_residual_layers} residual layers, "
        f"ratios {list(config.ratios)}{guess})"
    )
    return load_generator(
        build, config, state, source=source, what=what, device=device, fold=fold_weight_norm
    )


def infer(model: MelGANGenerator, mel: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Vocode mel spectrograms in one pass (no gradients).

    Args:
        model: a generator from :func:`load` or :func:`build`.
        mel: ``(B, n_mel_channels, frames)`` log10-mel spectrogram in the model's mel contract.
            Inputs shorter than ``config.min_frames`` are padded by repeating the last frame
            and the output trimmed back.

    Returns:
        ``(B, frames * hop_length)`` float waveform in [-1, 1] on the model's device.

    Raises:
        InputError: ``mel`` is not 3-D with ``n_mel_channels`` bands.
    """
    mel = mel_input(model, mel, model.config.n_mel_channels, "MelGAN")
    frames = mel.shape[-1]
    if frames == 0:
        return mel.new_zeros(mel.shape[0], 0)
    short = model.config.min_frames - frames
    if short > 0:
        # Reflection padding needs more samples than it reflects; repeat the last frame.
        mel = F.pad(mel, (0, short), mode="replicate")
    with torch.inference_mode():
        return model(mel).squeeze(1)[:, : frames * model.hop_length]


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> MelGANGenerator:
    """The front door's hook (:func:`avtool.models.loading.load`): the published state dict
    of a verified entry, architecture told from its keys and shapes (an avtool checkpoint,
    :mod:`avtool.models.checkpoint`, carries its config)."""
    if avtool_checkpoint.is_checkpoint(resolved.path):
        stored = avtool_checkpoint.read(resolved.path, "melgan")
        return load(stored.state_dict, MelGANConfig.from_dict(stored.config), device)
    return load(resolved.path, None, device)
