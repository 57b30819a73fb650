"""AnyoneNet checkpoints: ``NAME.pt`` with its config JSON beside it (``NAME.json``).

The JSON carries ``kind`` (predictor/renderer), the architecture ``config``, the mel contract of a
predictor and how many steps it was trained, so a checkpoint is usable without the trainer.
:func:`save` writes ``NAME.pt`` in the one avtool format (:mod:`avtool.models.checkpoint`:
the config inside, the other JSON keys as its ``extra``); the shipped files are the earlier
layout, a bare state dict, which :func:`load` still reads with the JSON beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avtool.errors import ModelError
from avtool.io.features import MelSpec
from avtool.io.files import atomic_output
from avtool.models import checkpoint
from avtool.models.anyonenet import predictor, unet
from avtool.models.anyonenet.config import (
    PREDICTOR_MEL,
    PredictorConfig,
    RendererConfig,
    config_dict,
    config_from_dict,
)
from avtool.registry import ResolvedModel, resolve


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
    # The JSON first (for people and registry companions; the .pt carries the same facts).
    with atomic_output(config_path(path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    rest = {k: v for k, v in meta.items() if k != "config"}
    checkpoint.save(path, "anyonenet", described, model.state_dict(), rest)
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

    weights = resolve_weights(path, accept_license=accept_license)
    meta_path = config_path(weights)
    cls = PredictorConfig if kind == "predictor" else RendererConfig
    stored = checkpoint.read(weights, "anyonenet") if checkpoint.is_checkpoint(weights) else None
    try:
        if stored is not None:
            meta = {**stored.extra, "config": stored.config}
        else:
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
        if stored is not None:
            state = stored.state_dict
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{weights}: not a {kind} checkpoint matching its config ({first})"
        ) from exc
    return model.to(device).eval(), config, meta


def read_meta(weights: str | os.PathLike[str]) -> dict[str, Any]:
    """An AnyoneNet weights file's facts (``kind``, ``config``, ``steps``...): an avtool
    checkpoint's own, else the JSON beside it.

    Raises:
        ModelError: missing or unreadable, or a ``kind`` other than predictor / renderer.
    """
    beside = config_path(weights)
    try:
        if checkpoint.is_checkpoint(weights):
            stored = checkpoint.read(weights, "anyonenet")
            meta = {**stored.extra, "config": stored.config}
        else:
            meta = json.loads(beside.read_text(encoding="utf-8"))
        kind = meta["kind"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"{weights}: not an AnyoneNet checkpoint (no readable {beside.name} beside it: {exc})"
        ) from exc
    if kind not in ("predictor", "renderer"):
        raise ModelError(f"{weights}: unknown AnyoneNet checkpoint kind {kind!r}")
    return meta


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> nn.Module:
    """The front door's hook (:func:`avtool.models.loading.load`): the predictor or renderer
    the JSON beside the weights describes, in eval mode on ``device``.

    Raises:
        ModelError: no readable JSON, an unknown kind, or weights that do not fit.
    """
    network, _, _ = load(resolved.path, read_meta(resolved.path)["kind"], device)
    return network


def entry_facts(resolved: ResolvedModel, network: nn.Module) -> dict[str, Any]:
    """The sidecar's AnyoneNet facts: ``kind``, the weights ``path``, training ``steps``."""
    meta = read_meta(resolved.path)
    return {"kind": meta["kind"], "path": str(resolved.path), "steps": meta.get("steps")}
