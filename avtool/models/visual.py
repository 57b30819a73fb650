"""The visual front-end shared by the V2A / AV2A models and the ResNet lip reader.

    config = VisualConfig.reduced()                # the shipped v2a-grid-s1 / lipread-grid-s1 one
    encoder = VideoEncoder(config)
    feats = encoder(prepare_crops(gray88, config.crop_size))   # (B, T, 88, 88) uint8 -> (B, T, 160)
    feats = feats + LipEncoder(config.hidden)(lip_features(landmarks))  # the lip-landmark stream

1. :class:`VideoEncoder`: a 3-D convolution stem over ``(T, H, W)`` gray mouth crops (so the
   first layer sees lip *motion*), then 2-D residual stages (:class:`ResBlock2d`) applied frame
   by frame and a global average pool: ``(B, T, S, S)`` -> ``(B, T, hidden)``.
2. :func:`lip_features` + :class:`LipEncoder`: the 20 dlib lip points per frame, normalised for
   position, in-plane rotation and scale, through a small temporal convolution whose output is
   added to the crop features (an explicit, cheap measure of mouth opening and shape that the
   44x44 crops only imply).

The parameter names (``stem.*``, ``blocks.*``, ``proj.*``; ``mean``, ``std``, ``conv1.*``,
``conv2.*``) are those of the shipped checkpoints, whose modules hold these encoders as
``video`` and ``lips``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import torch
import torch.nn.functional as F
from torch import nn

from avtool.models.presets import PresetConfig

__all__ = [
    "LIP_DIM", "LIP_MIRROR", "LIP_POINTS", "LipEncoder", "ResBlock2d", "VideoEncoder",
    "VisualConfig", "lip_features", "prepare_crops",
]  # fmt: skip

#: dlib 68-point indices of the lips (outer 48-59, inner 60-67) and of each one's mirror image.
LIP_POINTS = tuple(range(48, 68))
LIP_MIRROR = (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65)
LIP_DIM = 2 * len(LIP_POINTS)


@dataclass(frozen=True)
class VisualConfig(PresetConfig):
    """Architecture of a :class:`VideoEncoder`.

    Attributes:
        crop_size: side in pixels of the gray mouth crops the encoder sees; the 88x88 crops are
            average-pooled down to this (88 or a divisor: 44, 22).
        stem_channels: output channels of the 3-D convolution stem.
        stem_kernel: ``(t, h, w)`` kernel of the stem (stride 1 in time, 2 in space).
        stages: channels of the 2-D residual stages (each halves the spatial size).
        blocks_per_stage: residual blocks per stage.
        hidden: size of the per-frame feature (and of the lip stream's output).
    """

    crop_size: int = 88
    stem_channels: int = 64
    stem_kernel: tuple[int, int, int] = (5, 7, 7)
    stages: tuple[int, ...] = (64, 128, 256, 512)
    blocks_per_stage: int = 2
    hidden: int = 256

    presets: ClassVar[tuple[str, ...]] = ("paper", "reduced", "debug")
    family_name: ClassVar[str] = "visual front-end"

    @classmethod
    def paper(cls) -> VisualConfig:
        """The paper-sized front-end (ResNet-18-like; a GPU job)."""
        return cls()

    @classmethod
    def reduced(cls) -> VisualConfig:
        """The CPU front-end of the shipped v2a-grid-s1 and lipread-grid-s1 (44x44 crops)."""
        return cls(
            crop_size=44, stem_channels=24, stem_kernel=(5, 5, 5), stages=(32, 64, 128),
            blocks_per_stage=1, hidden=160,
        )  # fmt: skip

    @classmethod
    def debug(cls) -> VisualConfig:
        """A tiny random-weight front-end for tests."""
        return cls(
            crop_size=22, stem_channels=4, stem_kernel=(3, 3, 3), stages=(8,),
            blocks_per_stage=1, hidden=16,
        )  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> Self:
        """Inverse of :meth:`to_dict` (lists back to tuples); subclasses (``V2AConfig``) read
        theirs with it too.

        Args:
            data: the fields.
            ignore: other keys that may be present and are dropped (an older layout's; see
                :meth:`pick`).

        Raises:
            ValueError: a key that is neither a field nor in ``ignore``.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - ignore
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**fixed)

    @classmethod
    def pick(cls, config: Any) -> VisualConfig:
        """The front-end fields of a larger config (a ``V2AConfig``), as a :class:`VisualConfig`."""
        return VisualConfig(
            **{f.name: getattr(config, f.name) for f in dataclasses.fields(VisualConfig)}
        )


class ResBlock2d(nn.Module):
    """A basic ResNet block (two 3x3 convolutions), optionally halving the spatial size."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, cin, H, W)`` -> ``(N, cout, H / stride, W / stride)``."""
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class VideoEncoder(nn.Module):
    """Mouth crops ``(B, T, S, S)`` in [0, 1] → per-frame features ``(B, T, hidden)``.

    Args:
        config: the front-end.
    """

    def __init__(self, config: VisualConfig) -> None:
        super().__init__()
        kt, kh, kw = config.stem_kernel
        self.stem = nn.Sequential(
            nn.Conv3d(1, config.stem_channels, (kt, kh, kw), (1, 2, 2),
                      (kt // 2, kh // 2, kw // 2), bias=False),
            nn.BatchNorm3d(config.stem_channels),
            nn.ReLU(),
        )  # fmt: skip
        blocks: list[nn.Module] = []
        cin = config.stem_channels
        for cout in config.stages:
            blocks.append(ResBlock2d(cin, cout, 2))
            blocks.extend(ResBlock2d(cout, cout, 1) for _ in range(config.blocks_per_stage - 1))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Linear(cin, config.hidden)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``(B, T, S, S)`` float crops → ``(B, T, hidden)``."""
        b, t = crops.shape[:2]
        # Fixed normalisation (gray crops average ~0.4, spread ~0.2): no data statistics needed.
        x = self.stem(((crops - 0.4) / 0.2)[:, None])  # (B, C, T, H', W')
        x = x.transpose(1, 2).reshape(b * t, x.shape[1], x.shape[3], x.shape[4])
        x = self.blocks(x).mean(dim=(2, 3))  # (B*T, C)
        return self.proj(x).reshape(b, t, -1)


def lip_features(landmarks: torch.Tensor, mirror: bool = False) -> torch.Tensor:
    """68-point landmarks ``(..., T, 68, 2)`` pixels → lip shape ``(..., T, 40)``.

    The 20 lip points relative to their centroid, rotated so the eye line is horizontal and
    divided by the inter-ocular distance: head position, roll and distance to the camera drop
    out, mouth opening and shape remain. ``mirror`` gives the features of the left-right
    mirrored face (used with mirrored crops during training).
    """
    pts = landmarks.float()
    left, right = pts[..., 36:42, :].mean(-2), pts[..., 42:48, :].mean(-2)  # (..., T, 2)
    eye = right - left
    iod = eye.norm(dim=-1, keepdim=True).clamp_min(1e-3)
    cos, sin = (eye / iod).unbind(-1)
    lips = pts[..., list(LIP_POINTS), :]
    lips = lips - lips.mean(-2, keepdim=True)
    x, y = lips.unbind(-1)
    # Rotate by minus the eye-line angle: (x, y) -> (x cos + y sin, -x sin + y cos).
    rx = x * cos[..., None] + y * sin[..., None]
    ry = -x * sin[..., None] + y * cos[..., None]
    rot = torch.stack((rx, ry), -1) / iod[..., None]
    if mirror:
        order = [LIP_POINTS.index(i) for i in LIP_MIRROR]
        rot = rot[..., order, :] * torch.tensor([-1.0, 1.0])
    return rot.flatten(-2)


class LipEncoder(nn.Module):
    """Lip features ``(B, T, 40)`` → ``(B, T, hidden)``, added to the crop features.

    Buffers ``mean``/``std`` ``(40,)`` hold the training set's feature statistics (the shape
    changes of speech are small against the static lip outline, so each coordinate is
    standardised). The output convolution starts at zero, so adding the stream to a trained
    model leaves its predictions unchanged until training uses the new input.

    Args:
        hidden: the size of the crop features it is added to.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(LIP_DIM))
        self.register_buffer("std", torch.ones(LIP_DIM))
        self.conv1 = nn.Conv1d(LIP_DIM, hidden, 5, padding=2)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, lips: torch.Tensor) -> torch.Tensor:
        """``(B, T, 40)`` :func:`lip_features` → ``(B, T, hidden)``."""
        x = F.relu(self.conv1(((lips - self.mean) / self.std).transpose(1, 2)))
        return self.conv2(x).transpose(1, 2)


def prepare_crops(gray88: torch.Tensor, crop_size: int) -> torch.Tensor:
    """88x88 uint8 crops ``(B, T, 88, 88)`` → float ``(B, T, S, S)`` in [0, 1], average-pooled.

    Raises:
        ValueError: ``crop_size`` does not divide the crop side.
    """
    side = gray88.shape[-1]
    if side % crop_size:
        raise ValueError(f"crop_size {crop_size} must divide the crop side {side}")
    x = gray88.float() / 255.0
    factor = side // crop_size
    if factor > 1:
        b, t = x.shape[:2]
        x = F.avg_pool2d(x.reshape(b * t, 1, side, side), factor).reshape(b, t, crop_size, -1)
    return x
