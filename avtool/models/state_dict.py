"""Checkpoints as a state dict ``NAME.pt`` with its architecture in ``NAME.pt.json`` beside it.

The layout of the lip readers (and piper's voice + config JSON): the weights file holds tensors
only (``torch.load(weights_only=True)``), the JSON the config that rebuilds the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from avtool.errors import ModelError
from avtool.registry import ResolvedModel, resolve

Module = TypeVar("Module", bound=torch.nn.Module)


def config_path(path: str | os.PathLike[str]) -> Path:
    """``NAME.pt`` -> ``NAME.pt.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file renamed into place: a killed run never leaves a half
    checkpoint under the final name."""
    from avtool.io.files import atomic_output

    with atomic_output(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def save(state: Mapping[str, torch.Tensor], config_json: str, out: str | os.PathLike[str]) -> Path:
    """Write a state dict to ``out`` and ``config_json`` to ``out.json``, each atomically."""
    from avtool.io.files import atomic_output

    out = Path(out)
    save_atomic(dict(state), out)
    with atomic_output(config_path(out), suffix=".json") as tmp:
        tmp.write_text(config_json + "\n", encoding="utf-8")
    return out


def read_config(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The JSON config beside the weights file ``path``.

    Raises:
        ModelError: missing or unreadable, naming the expected file.
    """
    beside = config_path(path)
    if not beside.is_file():
        raise ModelError(f"{path}: no {what} config; expected {beside} beside it")
    try:
        return json.loads(beside.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{beside}: not a readable JSON config ({exc})") from exc


def load_into(
    model: Module, path: str | os.PathLike[str], what: str, device: str = "cpu"
) -> Module:
    """Load the state dict file ``path`` into ``model``; returned on ``device`` in eval mode.

    Raises:
        ModelError: an unreadable file, or weights that do not fit the model.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"{path}: weights do not fit the {what} config ({exc})") from exc
    return model.to(device).eval()


def entry_config(resolved: ResolvedModel) -> Mapping | None:
    """The architecture config of a resolved entry: its ``NAME.pt.json`` companion file, else
    its ``[config]`` table; None when it has neither (a local ``.pt`` is read with the JSON
    beside it by the family's ``load_checkpoint``).

    Raises:
        ModelError: an unreadable companion file.
    """
    companion = config_path(resolved.path).name
    if companion in resolved.files:
        try:
            return json.loads(resolved.files[companion].read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{resolved.files[companion]}: not a readable config ({exc})") from exc
    return dict(resolved.entry.config) or None


def load_registered(
    name_or_path: str | os.PathLike[str],
    task: str,
    load_checkpoint: Callable[[Path, Mapping | None, str], Module],
    device: str = "cpu",
    *,
    accept_license: bool = False,
) -> tuple[Module, dict[str, Any]]:
    """Resolve a registry name (or a local ``.pt``) and build its model with ``load_checkpoint``.

    The config comes from :func:`entry_config`, else (for a local path) ``load_checkpoint``
    reads the JSON beside the weights.

    Returns:
        The model (eval mode) and facts for sidecars: ``name``, ``sha256``, ``license``,
        ``description``, ``config``.

    Raises:
        ModelError: unknown, unverifiable or unreadable model.
    """
    resolved = resolve(name_or_path, task=task, accept_license=accept_license)
    entry = resolved.entry
    model = load_checkpoint(resolved.path, entry_config(resolved), device)
    return model, {
        "name": entry.name,
        "sha256": entry.main.sha256,
        "license": entry.license,
        "description": entry.description,
        "config": model.config.to_dict(),
    }
