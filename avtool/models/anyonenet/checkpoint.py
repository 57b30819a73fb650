"""AnyoneNet checkpoints: a state dict (``NAME.pt``) with its config JSON beside it (``NAME.json``).

The JSON carries ``kind`` (predictor/renderer), the architecture ``config``, the mel contract of a
predictor and how many steps it was trained, so a checkpoint is usable without the trainer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avtool.errors import ModelError
from avtool.io.files import atomic_output
from avtool.models.anyonenet.config import (
    PREDICTOR_MEL,
    PredictorConfig,
    RendererConfig,
    config_dict,
    config_from_dict,
)


def config_path(weights: str | os.PathLike[str]) -> Path:
    """The config JSON beside a weights file: ``x.pt`` → ``x.json``."""
    return Path(weights).with_suffix(".json")


def save(
    path: str | os.PathLike[str],
    model: nn.Module,
    config: PredictorConfig | RendererConfig,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s state dict to ``path`` and its config to ``path.json``, atomically.

    Args:
        path: the ``.pt`` file.
        model: the network.
        config: its architecture config.
        extra: more JSON keys (``steps``, ``data``...).
    """
    path = Path(path)
    described = config_dict(config)
    meta: dict[str, Any] = {"kind": described.pop("kind"), "config": described}
    if isinstance(config, PredictorConfig):
        meta["melspec"] = PREDICTOR_MEL.to_dict()
    meta.update(extra or {})
    # The JSON first, so a present .pt always has its config.
    with atomic_output(config_path(path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        # A file object: torch would name the archive after the temporary file.
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, f)
    return path


def resolve_weights(
    name_or_path: str | os.PathLike[str], task: str = "talkinghead", accept_license: bool = False
) -> Path:
    """A local ``.pt`` path, or a registry name resolved (and verified) to its file.

    ``accept_license`` accepts a non-commercial entry's licence (the registered GRID s1
    predictor's targets are dlib iBUG 300-W landmarks).

    Raises:
        ModelError: unknown name, missing file or failed checksum.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == ".pt" or os.sep in str(name_or_path):
        raise ModelError(f"{path}: no such checkpoint file")
    from avtool.registry import resolve

    return resolve(str(name_or_path), task=task, accept_license=accept_license).path


def load(
    path: str | os.PathLike[str],
    kind: str,
    device: str | torch.device = "cpu",
    *,
    accept_license: bool = False,
) -> tuple[nn.Module, PredictorConfig | RendererConfig, dict[str, Any]]:
    """Load a checkpoint written by :func:`save` (in eval mode).

    Args:
        path: the ``.pt`` file or a registry name.
        kind: ``"predictor"`` or ``"renderer"`` (the JSON's ``kind`` must match).
        device: where to put the model.
        accept_license: for a non-commercial registry entry (see :func:`resolve_weights`).

    Returns:
        ``(model, config, meta)`` with ``meta`` the whole JSON.

    Raises:
        ModelError: missing/unreadable files, another kind, or weights that do not fit.
    """
    from avtool.io.features import MelSpec
    from avtool.models.anyonenet import predictor, unet

    weights = resolve_weights(path, accept_license=accept_license)
    meta_path = config_path(weights)
    cls = PredictorConfig if kind == "predictor" else RendererConfig
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("kind") != kind:
            raise ValueError(f"not a {kind} config")
        config = config_from_dict(cls, meta["config"], str(meta_path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{weights}: bad or missing config {meta_path.name} ({exc})") from exc
    if (
        kind == "predictor"
        and "melspec" in meta
        and MelSpec.from_dict(meta["melspec"]) != PREDICTOR_MEL
    ):
        raise ModelError(f"{meta_path}: trained on another mel contract than this code's")
    model = predictor.build(config) if kind == "predictor" else unet.build(config)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{weights}: not a {kind} checkpoint matching its config ({first})"
        ) from exc
    return model.to(device).eval(), config, meta
