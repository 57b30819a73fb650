"""The 2D-FAN landmark network (Bulat & Tzimiropoulos, ICCV 2017): stacked hourglasses.

    config = FanConfig()                    # 4 stacked hourglasses, 256 features: the 2DFAN4 layout
    network = build(config)
    heatmaps = network(crops)               # (B, 3, 256, 256) RGB in [0, 1] -> (B, 68, 64, 64)

The module and parameter names reproduce the published face-alignment checkpoints exactly
(``conv1``, ``m0.b1_4.conv1.weight``, ``top_m_3``, ``l3``, ...), so their state dict loads with
``load_state_dict`` unchanged; ``tests/models/fan`` pins that layout by a fingerprint of the
reference implementation. Only the last hourglass's heatmaps are returned: the earlier ones
exist for intermediate supervision during training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.models.presets import PresetConfig

#: Side of the square RGB crop the network reads, in pixels.
CROP_RESOLUTION = 256
#: Side of the heatmaps it writes (the crop downsampled 4x), in cells.
HEATMAP_RESOLUTION = 64


@dataclass(frozen=True)
class FanConfig(PresetConfig):
    """Architecture of a :class:`FAN`.

    Attributes:
        num_modules: stacked hourglasses (the published 2DFAN4 has 4).
        features: channels inside the hourglasses; the stem uses ``features / 4`` and
            ``features / 2`` (64 and 128 in the published network). A multiple of 16.
        depth: downsampling levels of each hourglass (64 -> 4 cells at depth 4).
        n_landmarks: heatmaps predicted (the 68 iBUG 300-W points).
        flip_input: also run the mirrored crop and add its mirrored heatmaps (face-alignment
            1.5.0's default; doubles the cost, steadies the points).
    """

    num_modules: int = 4
    features: int = 256
    depth: int = 4
    n_landmarks: int = 68
    flip_input: bool = True

    presets: ClassVar[tuple[str, ...]] = ("debug",)
    family_name: ClassVar[str] = "FAN"

    @classmethod
    def debug(cls) -> FanConfig:
        """A tiny random-weight network for tests (one hourglass, 16 features)."""
        return cls(num_modules=1, features=16)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> FanConfig:
        """Build from a registry ``[config]`` table.

        Raises:
            ModelError: unknown keys or values out of range, naming ``where``.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelError(
                f"{where}: unknown FAN config key(s) {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(names))})"
            )
        return cls(**dict(data)).validated(where)

    def validated(self, where: str = "config") -> FanConfig:
        """Self, after range checks.

        Raises:
            ModelError: a size the network cannot be built with.
        """
        for key in ("num_modules", "features", "depth", "n_landmarks"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"{where}: FAN {key} must be a positive integer, got {value!r}")
        if self.features % 16:
            raise ModelError(f"{where}: FAN features must be a multiple of 16, got {self.features}")
        if HEATMAP_RESOLUTION >> self.depth < 1:
            raise ModelError(f"{where}: FAN depth {self.depth} halves 64 cells below one")
        if not isinstance(self.flip_input, bool):
            raise ModelError(f"{where}: FAN flip_input must be true or false")
        return self


def _conv3x3(inputs: int, outputs: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel_size=3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation residual block whose output concatenates three 3x3 branches.

    The branches have ``outputs / 2``, ``/ 4`` and ``/ 4`` channels, each fed by the previous
    one (the hierarchical, parallel, multi-scale block of the FAN paper). When the channel
    count changes, the residual goes through BN-ReLU-1x1 conv (``downsample.0/.2``).
    """

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        half, quarter = outputs // 2, outputs // 4
        self.bn1 = nn.BatchNorm2d(inputs)
        self.conv1 = _conv3x3(inputs, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = _conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = _conv3x3(quarter, quarter)
        self.downsample: nn.Module | None = None
        if inputs != outputs:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(inputs),
                nn.ReLU(inplace=True),
                nn.Conv2d(inputs, outputs, kernel_size=1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, inputs, H, W)`` -> ``(B, outputs, H, W)``."""
        a = self.conv1(F.relu(self.bn1(x)))
        b = self.conv2(F.relu(self.bn2(a)))
        c = self.conv3(F.relu(self.bn3(b)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((a, b, c), dim=1) + residual


class HourGlass(nn.Module):
    """One hourglass: ``depth`` levels of (skip block | pool, block, ..., block, upsample).

    Level ``n`` owns ``b1_n`` (the skip branch at this resolution), ``b2_n`` (after 2x average
    pooling) and ``b3_n`` (before nearest upsampling); the innermost level also has
    ``b2_plus_1``. These names are those of the published checkpoints.
    """

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(features, features))
            self.add_module(f"b2_{level}", ConvBlock(features, features))
            if level == 1:
                self.add_module("b2_plus_1", ConvBlock(features, features))
            self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        skip = self.get_submodule(f"b1_{level}")(x)
        low = self.get_submodule(f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        inner = self._level if level > 1 else lambda _, y: self.get_submodule("b2_plus_1")(y)
        low = inner(level - 1, low)
        low = self.get_submodule(f"b3_{level}")(low)
        return skip + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``; H and W divisible by ``2 ** depth``."""
        return self._level(self.depth, x)


class FAN(nn.Module):
    """Face Alignment Network: a strided stem, then stacked hourglasses, each emitting heatmaps.

    Args:
        config: the architecture (:class:`FanConfig`).
    """

    def __init__(self, config: FanConfig) -> None:
        super().__init__()
        self.config = config
        f = config.features
        self.conv1 = nn.Conv2d(3, f // 4, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(f // 4)
        self.conv2 = ConvBlock(f // 4, f // 2)
        self.conv3 = ConvBlock(f // 2, f // 2)
        self.conv4 = ConvBlock(f // 2, f)
        n = config.n_landmarks
        for i in range(config.num_modules):
            self.add_module(f"m{i}", HourGlass(config.depth, f))
            self.add_module(f"top_m_{i}", ConvBlock(f, f))
            self.add_module(f"conv_last{i}", nn.Conv2d(f, f, kernel_size=1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(f))
            self.add_module(f"l{i}", nn.Conv2d(f, n, kernel_size=1))
            if i < config.num_modules - 1:
                # Feed this stack's features and heatmaps back into the next stack's input.
                self.add_module(f"bl{i}", nn.Conv2d(f, f, kernel_size=1))
                self.add_module(f"al{i}", nn.Conv2d(n, f, kernel_size=1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Heatmaps of the last hourglass.

        Args:
            crops: ``(B, 3, 256, 256)`` float RGB in [0, 1].

        Returns:
            ``(B, n_landmarks, 64, 64)`` heatmaps (a peak per landmark).
        """
        x = F.relu(self.bn1(self.conv1(crops)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        stack_input, heatmaps = x, x
        for i in range(self.config.num_modules):
            features = self.get_submodule(f"top_m_{i}")(self.get_submodule(f"m{i}")(stack_input))
            features = self.get_submodule(f"conv_last{i}")(features)
            features = F.relu(self.get_submodule(f"bn_end{i}")(features))
            heatmaps = self.get_submodule(f"l{i}")(features)
            if i < self.config.num_modules - 1:
                stack_input = (
                    stack_input
                    + self.get_submodule(f"bl{i}")(features)
                    + self.get_submodule(f"al{i}")(heatmaps)
                )
        return heatmaps


def build(config: FanConfig | None = None) -> FAN:
    """A randomly initialised :class:`FAN` (the published layout by default)."""
    return FAN((config or FanConfig()).validated())
