"""Checkpoints as a state dict ``NAME.pt`` with its architecture in ``NAME.pt.json`` beside it.

The layout of the shipped lip readers and mask networks (and piper's voice + config JSON): the
weights file holds tensors only (``torch.load(weights_only=True)``), the JSON the config that
rebuilds the network. Every reader here also takes the one avtool format
(:mod:`avtool.models.checkpoint`: config and weights in one file), which :func:`save` writes
when told the family, with the JSON still beside it for people and registry companions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from avtool.errors import ModelError
from avtool.io.files import atomic_output
from avtool.models import checkpoint
from avtool.registry import ResolvedModel

Module = TypeVar("Module", bound=torch.nn.Module)


def config_path(path: str | os.PathLike[str]) -> Path:
    """``NAME.pt`` -> ``NAME.pt.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file renamed into place: a killed run never leaves a half
    checkpoint under the final name."""
    with atomic_output(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def save(
    state: Mapping[str, torch.Tensor],
    config_json: str,
    out: str | os.PathLike[str],
    family: str | None = None,
) -> Path:
    """Write the weights to ``out`` and ``config_json`` to ``out.json``, each atomically.

    Args:
        state: the state dict.
        config_json: the architecture as JSON (``config.to_json()``).
        out: the ``.pt`` file.
        family: the front door's family: ``out`` is then an avtool checkpoint carrying the
            config too (:func:`avtool.models.checkpoint.save`); None writes a bare state dict.
    """

    out = Path(out)
    if family is not None:
        checkpoint.save(out, family, json.loads(config_json), state)
    else:
        save_atomic(dict(state), out)
    with atomic_output(config_path(out), suffix=".json") as tmp:
        tmp.write_text(config_json + "\n", encoding="utf-8")
    return out


def read_config(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The config an avtool checkpoint ``path`` carries, else the JSON beside it.

    Raises:
        ModelError: missing or unreadable, naming the expected file.
    """
    if checkpoint.is_checkpoint(path):
        return checkpoint.read(path).config
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
    """Load the weights of ``path`` (a state dict, or an avtool checkpoint's) into ``model``;
    returned on ``device`` in eval mode.

    Raises:
        ModelError: an unreadable file, or weights that do not fit the model.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if isinstance(state, Mapping) and state.get("format") == checkpoint.FORMAT:
        state = checkpoint.from_dict(state, os.fspath(path)).state_dict
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"{path}: weights do not fit the {what} config ({exc})") from exc
    return model.to(device).eval()


def entry_config(resolved: ResolvedModel) -> Mapping | None:
    """The architecture config of a resolved entry: the one its avtool checkpoint carries,
    else its ``NAME.pt.json`` companion file, else its ``[config]`` table; None when it has
    none of them (a local ``.pt`` is read with the JSON beside it by the family's
    ``load_checkpoint``).

    Raises:
        ModelError: an unreadable checkpoint or companion file.
    """
    if checkpoint.is_checkpoint(resolved.path):
        return checkpoint.read(resolved.path).config
    companion = config_path(resolved.path).name
    if companion in resolved.files:
        try:
            return json.loads(resolved.files[companion].read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{resolved.files[companion]}: not a readable config ({exc})") from exc
    return dict(resolved.entry.config) or None
