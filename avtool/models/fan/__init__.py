"""2D-FAN 68-point facial landmarks (face-alignment's 2DFAN4 weights) for the face stage.

    landmarker = load("fan-2d-68", accept_license=True)  # registry: downloaded once, sha256-checked
    points = landmarker(image, box)                      # (H, W, 3) uint8, Box -> (68, 2) float32
    heatmaps = infer(landmarker.network, crops)          # (B, 256, 256, 3) -> (B, 68, 64, 64)

The published checkpoint is a bare state dict of ``FAN(num_modules=4)`` (no config file), so
the architecture comes from the registry entry's ``[config]`` table (:class:`FanConfig`
defaults when empty). Detection stays with dlib (:mod:`avtool.io.face`); FAN only replaces the
68-point fit inside the detector's box, in the same iBUG 300-W point order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from avtool import registry
from avtool.errors import ModelError
from avtool.models.fan.landmarks import (
    MIRROR_ORDER,
    FaceCrop,
    decode_heatmaps,
    mirror_heatmaps,
)
from avtool.models.fan.model import (
    CROP_RESOLUTION,
    FAN,
    HEATMAP_RESOLUTION,
    FanConfig,
    build,
)

#: ``family`` of this model's registry entries.
FAMILY = "fan"
#: The registry entry of the published 2DFAN4 weights.
DEFAULT_MODEL = "fan-2d-68"

__all__ = [
    "CROP_RESOLUTION", "DEFAULT_MODEL", "FAMILY", "FAN", "HEATMAP_RESOLUTION", "MIRROR_ORDER",
    "FaceCrop", "FanConfig", "FanLandmarker", "build", "decode_heatmaps", "infer", "load",
    "load_checkpoint", "mirror_heatmaps",
]  # fmt: skip


class BoxLike(Protocol):
    """A face box: top-left corner ``x, y`` and size ``w, h`` in pixels (io.face.Box)."""

    x: int
    y: int
    w: int
    h: int


def _describe_mismatch(got: Mapping[str, Any], want: Mapping[str, Any]) -> str:
    """One line on how a state dict differs from the network's, or '' when it fits."""
    # Checkpoints saved before PyTorch 0.4.1 have no BatchNorm step counters; they are unused
    # at inference and load_state_dict fills them in, so their absence is no mismatch.
    missing = [k for k in want if k not in got and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in got if k not in want]
    reshaped = [
        f"{k} {tuple(got[k].shape)} (expected {tuple(want[k].shape)})"
        for k in want
        if k in got and tuple(got[k].shape) != tuple(want[k].shape)
    ]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("reshaped", reshaped)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            parts.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
    return "; ".join(parts)


def load_checkpoint(
    path: str | os.PathLike[str], config: FanConfig | None = None, device: str = "cpu"
) -> FAN:
    """Build a :class:`FAN` from a ``torch.save``d state dict (``weights_only`` loading).

    Args:
        path: the weights file (e.g. ``2DFAN4-11f355bf06.pth.tar``).
        config: its architecture; the published 2DFAN4 layout when None.
        device: torch device.

    Returns:
        The network in eval mode, float32.

    Raises:
        ModelError: an unreadable file, or tensors whose names or shapes do not fit the
            config (the message names the file and the first differences).
    """
    path = Path(path)
    config = config or FanConfig()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ModelError(f"{path}: expected a state dict of tensors (a 2D-FAN checkpoint)")
    network = build(config)
    want = network.state_dict()
    problem = _describe_mismatch(state, want)
    if problem:
        raise ModelError(f"{path}: not a 2D-FAN state dict for {config}: {problem}")
    state = dict(state)
    for key, value in want.items():
        state.setdefault(key, torch.zeros_like(value))  # the num_batches_tracked counters
    network.load_state_dict(state)
    return network.to(device=device, dtype=torch.float32).eval()


def infer(network: FAN, crops: np.ndarray) -> np.ndarray:
    """Heatmaps for face crops, with the mirrored crop added when ``config.flip_input``.

    Args:
        network: a :class:`FAN` (eval mode).
        crops: ``(B, 256, 256, 3)`` float32 RGB in [0, 1] (:meth:`FaceCrop.sample`).

    Returns:
        ``(B, n_landmarks, 64, 64)`` float32 heatmaps.
    """
    device = next(network.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).permute(0, 3, 1, 2)
    batch = batch.to(device)
    flip = network.config.flip_input
    with torch.no_grad():
        inputs = torch.cat([batch, batch.flip(-1)]) if flip else batch
        heatmaps = network(inputs).float().cpu().numpy()
    if not flip:
        return heatmaps
    n = len(crops)
    return heatmaps[:n] + mirror_heatmaps(heatmaps[n:])


class FanLandmarker:
    """A loaded FAN, called like dlib's shape predictor: an image and a face box in, 68 points out.

    Attributes:
        network: the :class:`FAN`.
        name: registry name (or the weights path for a local file).
        path: the weights file.
        sha256: its checksum.
        license: its licence, from the registry.
    """

    def __init__(
        self, network: FAN, *, name: str, path: Path, sha256: str = "", license: str = ""
    ) -> None:
        self.network = network
        self.name = name
        self.path = path
        self.sha256 = sha256
        self.license = license

    def __call__(self, image: np.ndarray, box: BoxLike) -> np.ndarray:
        """The 68 landmarks of the face in ``box``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            box: the detector's face box in pixels.

        Returns:
            ``(68, 2)`` float32 ``(x, y)`` image pixels, iBUG 300-W order.
        """
        crop = FaceCrop.from_box(box.x, box.y, box.w, box.h)
        heatmaps = infer(self.network, crop.sample(image)[None])
        points, _ = decode_heatmaps(heatmaps[0])
        return crop.to_image(points, heatmaps.shape[-1]).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """Facts for sidecars: name, path, sha256, licence, config."""
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "license": self.license,
            "config": self.network.config.to_dict(),
        }


def load(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    accept_license: bool = False,
    device: str = "cpu",
) -> FanLandmarker:
    """Resolve a registry entry (or a local weights file) and load it.

    Args:
        name_or_path: a ``task = "face"``, ``family = "fan"`` registry name, or a state dict path
            (published 2DFAN4 layout).
        accept_license: accept a non-commercial licence (the published weights are).
        device: torch device.

    Raises:
        ModelError: unknown name, licence not accepted, weights not downloaded while offline
            (the message gives the expected path, sha256 and URL), a failed download or
            checksum, another family, or weights that do not fit.
    """
    resolved = registry.resolve(name_or_path, task="face", accept_license=accept_license)
    entry = resolved.entry
    if entry.family not in ("", FAMILY):
        raise ModelError(f"model {entry.name} is a {entry.family!r} model, not a FAN")
    config = FanConfig.from_dict(entry.config, where=f"model {entry.name}")
    network = load_checkpoint(resolved.path, config, device)
    return FanLandmarker(
        network,
        name=entry.name,
        path=resolved.path,
        sha256=entry.main.sha256,
        license=entry.license,
    )
