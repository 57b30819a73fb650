"""Time-frequency mask network: a dilated TCN over the mixture's STFT log-magnitude.

Two uses, one architecture (:class:`MaskNetConfig`):

- **blind** (``visual_dim == 0``, ``n_sources == 2``): two masks through a softmax over the
  sources, trained with utterance-level permutation-invariant training (uPIT);
- **audio-visual target extraction** (``visual_dim > 0``, ``n_sources == 1``): one sigmoid mask
  for the speaker whose lips are given; the frozen lip reader's per-frame features (25 fps) are
  projected, repeated up to the STFT frame rate and fused after the first TCN repeat.

Either way the stems are ``mask * X`` inverted with the mixture's phase, and the masks sum to one
(softmax, or ``m`` and ``1 - m``), so the stems add up to the mixture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.io.formats import DEFAULT_LIP_READER
from avtool.models import checkpoint, state_dict
from avtool.models.presets import PresetConfig
from avtool.models.separate.stft import istft, stft
from avtool.models.state_dict import config_path
from avtool.registry import ResolvedModel

#: Floor of the magnitude before the log (the input is RMS-normalised first).
LOG_FLOOR = 1e-4


@dataclass(frozen=True)
class MaskNetConfig(PresetConfig):
    """Architecture of a :class:`MaskNet`.

    Attributes:
        sample_rate: audio rate in Hz the model runs at.
        n_fft: STFT size in samples.
        hop_length: STFT hop in samples (160 at 16 kHz = 100 frames/s = 4 per video frame).
        n_sources: masks predicted: 2 (blind) or 1 (target extraction).
        bottleneck: TCN residual channels.
        hidden: channels inside a TCN block.
        kernel: depthwise kernel size.
        blocks: blocks per repeat (dilations 1, 2, 4, ... 2**(blocks-1)).
        repeats: repeats of the dilated stack.
        visual_dim: size of the visual features (0 = audio only).
        fps: video frame rate of the visual features.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_sources: int = 2
    bottleneck: int = 128
    hidden: int = 256
    kernel: int = 3
    blocks: int = 6
    repeats: int = 2
    visual_dim: int = 0
    fps: float = 25.0

    presets: ClassVar[tuple[str, ...]] = ("blind", "audio_visual", "debug")
    family_name: ClassVar[str] = "mask network"

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    @classmethod
    def blind(cls) -> MaskNetConfig:
        """The shipped blind two-speaker model's architecture."""
        return cls()

    @classmethod
    def audio_visual(cls, visual_dim: int = 320) -> MaskNetConfig:
        """The shipped audio-visual model's architecture (lip-reader features of 320)."""
        return cls(n_sources=1, visual_dim=visual_dim)

    @classmethod
    def debug(cls, visual_dim: int = 0) -> MaskNetConfig:
        """A tiny random-weight config for tests."""
        return cls(
            n_sources=1 if visual_dim else 2,
            bottleneck=16,
            hidden=32,
            blocks=2,
            repeats=2,
            visual_dim=visual_dim,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MaskNetConfig fields: {', '.join(unknown)}")
        return cls(**data)


class GlobalLayerNorm(nn.Module):
    """Layer norm over channels and time of each utterance (Conv-TasNet's gLN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, C, T)``."""
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return self.weight * (x - mean) / torch.sqrt(var + 1e-8) + self.bias


class TCNBlock(nn.Module):
    """1x1 conv up, PReLU, gLN, dilated depthwise conv, PReLU, gLN, 1x1 conv down, residual."""

    def __init__(self, channels: int, hidden: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.up = nn.Conv1d(channels, hidden, 1)
        self.act1 = nn.PReLU()
        self.norm1 = GlobalLayerNorm(hidden)
        self.depthwise = nn.Conv1d(
            hidden,
            hidden,
            kernel,
            padding=dilation * (kernel - 1) // 2,
            dilation=dilation,
            groups=hidden,
        )
        self.act2 = nn.PReLU()
        self.norm2 = GlobalLayerNorm(hidden)
        self.down = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, C, T)``."""
        y = self.norm1(self.act1(self.up(x)))
        y = self.norm2(self.act2(self.depthwise(y)))
        return x + self.down(y)


class MaskNet(nn.Module):
    """Mixture STFT magnitude (and optional lip features) -> ``n_sources`` T-F masks."""

    def __init__(self, config: MaskNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.input_norm = GlobalLayerNorm(c.n_freq)
        self.encode = nn.Conv1d(c.n_freq, c.bottleneck, 1)
        self.stacks = nn.ModuleList(
            nn.Sequential(
                *(TCNBlock(c.bottleneck, c.hidden, c.kernel, 2**i) for i in range(c.blocks))
            )
            for _ in range(c.repeats)
        )
        if c.visual_dim:
            self.visual = nn.Sequential(
                nn.Conv1d(c.visual_dim, c.bottleneck, 1),
                nn.PReLU(),
                nn.Conv1d(c.bottleneck, c.bottleneck, 3, padding=1),
            )
            self.fuse = nn.Conv1d(2 * c.bottleneck, c.bottleneck, 1)
        self.out_act = nn.PReLU()
        self.mask = nn.Conv1d(c.bottleneck, c.n_sources * c.n_freq, 1)

    def forward(self, magnitude: torch.Tensor, visual: torch.Tensor | None = None) -> torch.Tensor:
        """Predict masks.

        Args:
            magnitude: ``(B, n_freq, F)`` STFT magnitude of the RMS-normalised mixture.
            visual: ``(B, V, visual_dim)`` lip features at ``fps`` (models with a visual
                front-end only); resampled here to the ``F`` STFT frames.

        Returns:
            ``(B, n_sources, n_freq, F)`` masks in [0, 1]; over sources they sum to one
            (softmax for two or more, sigmoid for one, whose complement is the residual).
        """
        c = self.config
        if (visual is None) != (not c.visual_dim):
            raise ValueError("visual features must be given exactly when visual_dim > 0")
        x = self.encode(self.input_norm(torch.log(magnitude + LOG_FLOOR)))
        for i, stack in enumerate(self.stacks):
            x = stack(x)
            if i == 0 and visual is not None:
                v = self.visual(visual.transpose(1, 2))  # (B, C, V)
                v = F.interpolate(v, size=x.shape[-1], mode="nearest")
                x = self.fuse(torch.cat([x, v], dim=1))
        logits = self.mask(self.out_act(x))
        logits = logits.view(x.shape[0], c.n_sources, c.n_freq, -1)
        if c.n_sources == 1:
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=1)

    def separate(self, audio: torch.Tensor, visual: torch.Tensor | None = None) -> torch.Tensor:
        """Waveform in, stems out (differentiable; used in training and inference).

        Args:
            audio: ``(B, T)`` mixture at ``sample_rate``.
            visual: ``(B, V, visual_dim)`` lip features (audio-visual models).

        Returns:
            ``(B, S, T)`` stems that sum to ``audio``: ``S = 2`` (two speakers, or target
            and residual for an audio-visual model).
        """
        c = self.config
        rms = audio.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-5)
        spec = stft(audio / rms, c.n_fft, c.hop_length)  # (B, K, F)
        masks = self.forward(spec.abs(), visual)
        if c.n_sources == 1:
            masks = torch.cat([masks, 1.0 - masks], dim=1)
        b, s = masks.shape[:2]
        stems = istft(
            (masks * spec[:, None]).reshape(b * s, c.n_freq, -1),
            c.n_fft,
            c.hop_length,
            audio.shape[-1],
        ).view(b, s, -1)
        # Put the ISTFT's tiny reconstruction error into the last stem so the sum is exact.
        stems = stems * rms[:, None]
        stems[:, -1] = audio - stems[:, :-1].sum(dim=1)
        return stems


def build(config: MaskNetConfig) -> MaskNet:
    """A randomly initialised model (seed torch first for reproducible weights)."""
    return MaskNet(config)


def _companion(resolved: ResolvedModel) -> dict[str, Any] | None:
    """The stored config (architecture plus ``lip_reader``): an avtool checkpoint's own, else
    the entry's ``NAME.pt.json``; None without either."""

    if checkpoint.is_checkpoint(resolved.path):
        return checkpoint.read(resolved.path, "masknet").config
    companion = resolved.files.get(config_path(resolved.path).name)
    if companion is None:
        return None
    try:
        return json.loads(companion.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{companion}: not a readable mask network config ({exc})") from exc


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> MaskNet:
    """The front door's hook (:func:`avtool.models.loading.load`): an avtool checkpoint, or a
    state dict with its ``NAME.pt.json`` (the entry's companion, else the file beside a local
    ``.pt``).

    Raises:
        ModelError: no config, unreadable, or weights that do not fit.
    """
    path = resolved.path
    data = _companion(resolved) or state_dict.read_config(path, "mask network")
    data = {k: v for k, v in data.items() if k != "lip_reader"}
    try:
        config = MaskNetConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad mask network config ({exc})") from exc
    return state_dict.load_into(build(config), path, "mask network", device)


def entry_facts(resolved: ResolvedModel, model: MaskNet) -> dict[str, Any]:
    """The sidecar's facts: the architecture and, for an audio-visual model, the registry name
    of its frozen lip reader (``lipread-grid-s1`` unless the config or entry names another)."""
    lip_reader = None
    if model.config.visual_dim:
        lip_reader = (
            (_companion(resolved) or {}).get("lip_reader")
            or resolved.entry.config.get("lip_reader")
            or DEFAULT_LIP_READER
        )
    return {"config": model.config.to_dict(), "lip_reader": lip_reader}
