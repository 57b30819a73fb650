"""The student: dlib face descriptor ``(128,)`` → MLP → unit speaker embedding ``(256,)``."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.io.files import atomic_output


@dataclass(frozen=True)
class FaceVoiceConfig:
    """MLP sizes: ``descriptor_dim`` → ``layers`` x ``hidden`` (ReLU) → ``embedding_dim``."""

    descriptor_dim: int = 128
    hidden: int = 256
    layers: int = 2
    embedding_dim: int = 256

    @classmethod
    def tiny(cls) -> FaceVoiceConfig:
        """Debug size for tests."""
        return cls(hidden=16, layers=1)


class FaceVoice(nn.Module):
    """The student MLP; outputs are L2-normalised (GE2E embeddings are unit vectors)."""

    def __init__(self, config: FaceVoiceConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.descriptor_dim
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.ReLU()]
            width = config.hidden
        layers.append(nn.Linear(width, config.embedding_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, descriptor: torch.Tensor) -> torch.Tensor:
        """``(B, 128)`` face descriptors → ``(B, 256)`` unit speaker embeddings."""
        return F.normalize(self.net(descriptor), dim=-1)


def build(config: FaceVoiceConfig) -> FaceVoice:
    """A randomly initialised student (seed torch first)."""
    return FaceVoice(config)


def save(path: str | os.PathLike[str], model: FaceVoice, extra: dict[str, Any] | None = None):
    """Write ``path`` (state dict) and ``path.json`` (config + ``extra``) atomically."""
    path = Path(path)
    meta = {"kind": "face_voice", "config": dataclasses.asdict(model.config), **(extra or {})}
    with atomic_output(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        # A file object: torch would name the archive after the temporary file.
        torch.save(model.state_dict(), f)
    return path


def load(path: str | os.PathLike[str], device: str = "cpu") -> tuple[FaceVoice, dict[str, Any]]:
    """Load a student written by :func:`save` (eval mode); returns ``(model, meta)``.

    Raises:
        ModelError: missing or mismatched files.
    """
    path = Path(path)
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        model = build(FaceVoiceConfig(**meta["config"]))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a face-voice checkpoint ({exc})") from exc
    return model.to(device).eval(), meta


@torch.no_grad()
def infer(model: FaceVoice, descriptors: np.ndarray) -> np.ndarray:
    """Speaker embedding of a face from one or more descriptors of it.

    Args:
        descriptors: ``(128,)`` or ``(N, 128)`` dlib descriptors of the same face.

    Returns:
        ``(256,)`` float32 unit embedding (the normalised mean over the descriptors).
    """
    x = torch.as_tensor(np.atleast_2d(descriptors), dtype=torch.float32)
    mean = model(x.to(next(model.parameters()).device)).mean(dim=0)
    return F.normalize(mean, dim=0).cpu().numpy()
