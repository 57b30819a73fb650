"""Video-to-speech (V2A-MelSpec style) and audio-visual speech (AV2A) models.

``build(config)``, ``load(state, config, device)`` and ``infer(...)`` with no file I/O;
:mod:`avtool.tasks.v2a` connects them to videos and audio files. The architecture and the
AV2A additions are described in :mod:`avtool.models.v2a.model`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.errors import ModelError
from avtool.models import checkpoint
from avtool.models.v2a import content
from avtool.models.v2a.model import (
    AUDIO,
    BOTH,
    MODES,
    VIDEO,
    ModalityBatchNorm1d,
    V2AConfig,
    V2AModel,
    build,
    count_parameters,
)
from avtool.models.visual import lip_features, prepare_crops
from avtool.registry import ResolvedModel

__all__ = [
    "AUDIO", "BOTH", "MODES", "VIDEO", "ModalityBatchNorm1d", "V2AConfig", "V2AModel", "advance",
    "build", "checkpoint_config", "config_from_dict", "count_parameters", "infer", "lip_features",
    "load", "prepare_crops", "read_checkpoint", "save_checkpoint",
]  # fmt: skip


def config_from_dict(data: dict[str, Any]) -> Any:
    """A checkpoint's config JSON → :class:`V2AConfig`, or a
    :class:`~avtool.models.v2a.content.ContentV2AConfig` when tagged ``kind = "content"``.

    Raises:
        ValueError: unknown fields or inconsistent values.
    """
    if content.is_content_config(data):
        return content.ContentV2AConfig.from_dict(data)
    return V2AConfig.from_dict(data)


def load(state: dict[str, Any], config: Any, device: str = "cpu") -> Any:
    """A model in eval mode from a state dict: a :class:`V2AModel` for a :class:`V2AConfig`,
    a :class:`~avtool.models.v2a.content.ContentV2A` for its config.

    Raises:
        ModelError: the state dict does not fit the config.
    """

    if isinstance(config, content.ContentV2AConfig):
        model = content.ContentV2A(config)
    else:
        model = build(config)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"V2A weights do not match the config: {exc}") from exc
    return model.to(device).eval()


def advance(mel: Any, frames: int) -> Any:
    """Move a mel ``frames`` frames earlier, repeating its last frame at the end.

    Args:
        mel: ``(n_mels, F)`` tensor.
        frames: frames to advance (0 returns ``mel`` itself).

    Returns:
        ``(n_mels, F)`` tensor: column ``j`` is ``mel[:, min(j + frames, F - 1)]``.
    """
    if frames <= 0 or mel.shape[-1] == 0:
        return mel
    index = torch.clamp(torch.arange(mel.shape[-1]) + frames, max=mel.shape[-1] - 1)
    return mel[:, index]


def infer(
    model: V2AModel, crops: Any, n_frames: int, noisy_mel: Any = None, landmarks: Any = None
) -> Any:
    """Predict a log mel from mouth crops.

    Args:
        model: a loaded :class:`V2AModel` or content model.
        crops: ``(T, 88, 88)`` uint8 gray mouth crops (tensor or array) at ``config.fps``.
        n_frames: mel frames to produce (``MelSpec.frames_for(samples)``).
        noisy_mel: ``(n_mels, F)`` log mel of noisy speech (AV2A models), or None.
        landmarks: ``(T, 68, 2)`` face landmarks in pixels, the ones the crops were cut with
            (models with ``lip_landmarks``; ignored by others).

    Returns:
        ``(n_mels, n_frames)`` float32 log-mel tensor on the CPU, moved earlier by the
        model's calibrated ``config.output_advance`` frames (:func:`advance`).
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        x = prepare_crops(torch.as_tensor(crops)[None].to(device), model.config.crop_size)
        noisy = None if noisy_mel is None else torch.as_tensor(noisy_mel)[None].float().to(device)
        lips = None
        if model.lips is not None:
            if landmarks is None:
                raise ValueError("this V2A model needs the face landmarks (lip_landmarks)")
            if not isinstance(landmarks, torch.Tensor):
                # A copy: views such as reversed arrays have strides torch cannot take.
                landmarks = torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32))
            lips = lip_features(landmarks[None]).to(device)
        mel = model(x, n_frames, noisy, lips=lips)[0].float().cpu()
    return advance(mel, model.config.output_advance)


def checkpoint_config(path: Path) -> dict[str, Any] | None:
    """The config JSON beside a V2A weights file: ``<file>.json``, else the run's
    ``config.json`` (what the trainers write); None without either.

    Raises:
        ModelError: an unreadable JSON.
    """
    for candidate in (path.with_name(path.name + ".json"), path.parent / "config.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ModelError(f"{candidate}: not a readable V2A config ({exc})") from exc
    return None


def read_checkpoint(
    path: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> checkpoint.Checkpoint:
    """A V2A / AV2A / content weights file in any of its layouts.

    - an avtool checkpoint (:mod:`avtool.models.checkpoint`, what the trainers write): its
      stored config, except ``output_advance``, which comes from ``config`` or the JSON beside
      it when they set one (:mod:`avtool.tasks.calibrate_v2a` writes the calibrated advance
      there, and the registry's ``[config]`` table may pin it);
    - a bare state dict (the shipped ``v2a-grid-s1.pt`` / ``av2a-grid-s1.pt`` and
      ``v2a-content-grid-s1.pt``, and runs of earlier trainers): ``config`` (a registry
      entry's ``[config]`` table), else the JSON beside it (:func:`checkpoint_config`), else
      an empty config.

    Args:
        path: the ``.pt`` file.
        config: the registry's config for it, when there is one.

    Raises:
        ModelError: unreadable, not a state dict of tensors, or another family's checkpoint.
    """
    path = Path(path)
    if checkpoint.is_checkpoint(path):
        stored = checkpoint.read(path, "v2a")
        outside = dict(config) if config else checkpoint_config(path) or {}
        if "output_advance" not in outside:
            return stored
        return dataclasses.replace(
            stored, config={**stored.config, "output_advance": outside["output_advance"]}
        )
    found = dict(config) if config else checkpoint_config(path) or {}
    return checkpoint.read_beside(path, "v2a", config=found)


def save_checkpoint(
    path: str | os.PathLike[str],
    state: Mapping[str, torch.Tensor],
    config: Any,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a V2A / AV2A / content model as an avtool checkpoint (atomically).

    Args:
        path: the ``.pt`` file.
        state: the model's state dict.
        config: its :class:`V2AConfig` or content config.
        extra: training facts (stage, epoch, validation loss).
    """
    # Through JSON, so the stored config equals the config.json the trainers write beside it.
    return checkpoint.save(path, "v2a", json.loads(json.dumps(config.to_dict())), state, extra)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> Any:
    """The front door's hook (:func:`avtool.models.loading.load`): a verified entry's weights
    (:func:`read_checkpoint`: an avtool checkpoint's own config, a state dict's from the
    entry's ``[config]`` table, else ``<file>.json`` or ``config.json`` beside it).

    Raises:
        ModelError: no or a bad config, an unreadable file, or weights not matching it.
    """
    path = resolved.path
    stored = read_checkpoint(path, dict(resolved.entry.config) or None)
    if not stored.config:
        raise ModelError(f"{path}: no V2A config (put it in {path.name}.json)")
    try:
        config = config_from_dict(stored.config)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: bad V2A config ({exc})") from exc
    return load(stored.state_dict, config, device)
