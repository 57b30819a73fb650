"""One checkpoint format: the weights and the architecture that rebuilds them, in one file.

A checkpoint written by avtool's trainers is one ``torch.save`` of a plain dict (read back with
``torch.load(weights_only=True)``: tensors, strings, numbers, lists and dicts only)::

    {
        "format": "avtool-checkpoint-1",
        "family": "lipread-resnet",          # a key of avtool.models.loading.FAMILIES
        "config": {...},                     # the family's config.to_dict(): rebuilds the net
        "state_dict": {name: tensor, ...},
        "extra": {...},                      # training facts: steps, vocabulary, mel contract
    }

as whisper keeps its ``dims`` beside its ``model_state_dict``. Every family's front-door hook
(``load_entry``) reads it, and keeps reading the layouts of the files that already ship
(:data:`LEGACY_LAYOUTS`), so nothing is retrained and no shipped file changes:

- a state dict with its config JSON beside it (``NAME.pt.json``; AnyoneNet's ``NAME.json``):
  :func:`read_beside`;
- a tagged dict with ``config`` and ``state_dict`` (music, HiFi-GAN's own): :func:`read_tagged`;
- the published layouts, read by their families: HiFi-GAN (``{"generator": ...}`` with a
  ``config.json``), MelGAN (a bare state dict, architecture fixed), Spleeter (TensorFlow
  checkpoints as numpy), Asteroid (``model_args`` + ``state_dict``);
- ONNX graphs with a JSON config (Piper, hibari, Kokoro), read by onnxruntime.

:func:`read_any` turns the first three torch layouts into a :class:`Checkpoint`.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from avtool.errors import ModelError
from avtool.io.files import atomic_output

FORMAT = "avtool-checkpoint-1"
#: The file layouts of today's shipped weights, and what reads each.
LEGACY_LAYOUTS: Mapping[str, str] = {
    "state dict + NAME.pt.json": "read_beside (lip readers, V2A, mask networks, AnyoneNet)",
    "tagged dict with config": "read_tagged (music LSTM / Transformer, HiFi-GAN trained here)",
    "published HiFi-GAN / MelGAN": "avtool.models.hifigan.load, avtool.models.melgan.load_entry",
    "published Spleeter / Asteroid": "avtool.models.separate.spleeter / convtasnet.load_entry",
    "ONNX + JSON": "avtool.models.piper / hibari / kokoro load_entry",
}
Module = TypeVar("Module", bound=torch.nn.Module)
#: How much of a pickle :func:`is_checkpoint` reads: the tag comes first in :func:`pack`.
_TAG_BYTES = 256


@dataclass(frozen=True)
class Checkpoint:
    """The contents of one checkpoint, whatever layout it was read from.

    Attributes:
        family: the family that builds it (empty when a legacy file does not say).
        config: the architecture, as the family's ``config.to_dict()`` writes it.
        state_dict: parameter name -> tensor (on the CPU).
        extra: the rest (training steps, vocabulary, mel contract, kind).
    """

    family: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    extra: dict[str, Any] = field(default_factory=dict)


def pack(
    family: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict :func:`save` writes (tensors detached and moved to the CPU)."""
    return {
        "format": FORMAT,
        "family": family,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "extra": dict(extra or {}),
    }


def save(
    path: str | os.PathLike[str],
    family: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    extra: Mapping[str, Any] | None = None,
    *,
    config_json: bool = False,
) -> Path:
    """Write a checkpoint atomically (a temporary name renamed into place).

    Args:
        path: the ``.pt`` file.
        family: a key of :data:`avtool.models.loading.FAMILIES`.
        config: the architecture (JSON values only: ``config.to_dict()``).
        state_dict: the weights.
        extra: training facts (JSON values or tensors).
        config_json: also write ``config`` as ``NAME.pt.json`` beside it, for people and for
            registry entries that list it as a companion file.

    Returns:
        ``path``.
    """
    path = Path(path)
    with atomic_output(path, suffix=".pt") as tmp, open(tmp, "wb") as f:
        # A file object: torch would name the archive after the temporary file.
        torch.save(pack(family, config, state_dict, extra), f)
    if config_json:
        with atomic_output(path.with_name(path.name + ".json"), suffix=".json") as tmp:
            tmp.write_text(json.dumps(dict(config), indent=1) + "\n", encoding="utf-8")
    return path


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a :func:`save` file, telling from its pickle alone (no tensors are
    read), so a family can try this format first at no cost for its legacy files."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            if pickled is None:
                return False
            with archive.open(pickled) as f:  # the tag is the dict's first value
                return FORMAT.encode() in f.read(_TAG_BYTES)
    except (OSError, zipfile.BadZipFile):
        return False


def _load(path: str | os.PathLike[str]) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc})") from exc


def from_dict(data: Any, source: str, family: str | None = None) -> Checkpoint:
    """A :class:`Checkpoint` from a loaded :func:`pack` dict.

    Raises:
        ModelError: not this format, or another family's checkpoint.
    """
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise ModelError(f"{source}: not an {FORMAT} file (format {found!r})")
    if family is not None and data.get("family") != family:
        raise ModelError(f"{source}: a {data.get('family')!r} checkpoint, not {family!r}")
    if not isinstance(data.get("config"), Mapping) or not isinstance(
        data.get("state_dict"), Mapping
    ):
        raise ModelError(f"{source}: checkpoint without a config or state_dict")
    return Checkpoint(
        family=str(data["family"]),
        config=dict(data["config"]),
        state_dict=dict(data["state_dict"]),
        extra=dict(data.get("extra") or {}),
    )


def read(path: str | os.PathLike[str], family: str | None = None) -> Checkpoint:
    """Read a :func:`save` file (``weights_only=True``).

    Args:
        path: the file.
        family: the family the caller builds; another family's file is refused.

    Raises:
        ModelError: unreadable, not this format, or another family's.
    """
    return from_dict(_load(path), os.fspath(path), family)


def read_beside(
    path: str | os.PathLike[str],
    family: str,
    config: Mapping[str, Any] | None = None,
    beside: str | os.PathLike[str] | None = None,
) -> Checkpoint:
    """A legacy state dict file with its config JSON beside it (or given).

    Args:
        path: the state dict (``NAME.pt``).
        family: the family it belongs to (legacy files do not say).
        config: the architecture when known already (a registry companion or ``[config]``).
        beside: the JSON; default ``NAME.pt.json``.

    Raises:
        ModelError: no readable JSON, or the file is not a state dict.
    """
    path = Path(path)
    if config is None:
        beside = Path(beside) if beside is not None else path.with_name(path.name + ".json")
        try:
            config = json.loads(beside.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: no readable config {beside.name} beside it ({exc})") from exc
    state = _load(path)
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ModelError(f"{path}: not a state dict of tensors")
    return Checkpoint(family=family, config=dict(config), state_dict=dict(state))


def read_tagged(path: str | os.PathLike[str], family: str) -> Checkpoint:
    """A legacy tagged dict (``{"format": <family tag>, "config", "state_dict", ...}``): the
    music models' and the HiFi-GAN trainer's layout; the other keys go to ``extra``.

    Raises:
        ModelError: unreadable, or no ``config`` / ``state_dict``.
    """
    data = _load(path)
    if not isinstance(data, Mapping) or not {"config", "state_dict"} <= set(data):
        raise ModelError(f"{path}: not a tagged checkpoint (no config and state_dict)")
    rest = {k: v for k, v in data.items() if k not in ("config", "state_dict")}
    return Checkpoint(
        family=family,
        config=dict(data["config"] or {}),
        state_dict=dict(data["state_dict"]),
        extra=rest,
    )


def read_any(path: str | os.PathLike[str], family: str) -> Checkpoint:
    """This format, else a tagged dict, else a state dict with ``NAME.pt.json`` beside it.

    Raises:
        ModelError: none of them (naming the file), or another family's checkpoint.
    """
    if is_checkpoint(path):
        return read(path, family)
    data = _load(path)
    if isinstance(data, Mapping) and {"config", "state_dict"} <= set(data):
        return read_tagged(path, family)
    return read_beside(path, family)


def build_from(
    checkpoint: Checkpoint,
    config_from_dict: Callable[[dict[str, Any]], Any],
    build: Callable[[Any], Module],
    device: str | torch.device = "cpu",
    *,
    source: str = "checkpoint",
) -> Module:
    """The family's module from a checkpoint, in eval mode on ``device``.

    Args:
        checkpoint: what :func:`read` (or a legacy reader) returned.
        config_from_dict: the family's ``Config.from_dict``.
        build: the family's ``build(config)``.
        device: where the module goes.
        source: the file named in errors.

    Raises:
        ModelError: a bad config, or weights that do not fit it.
    """
    try:
        config = config_from_dict(dict(checkpoint.config))
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(f"{source}: bad {checkpoint.family} config ({exc})") from exc
    model = build(config)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(
            f"{source}: weights do not fit the {checkpoint.family} config ({exc})"
        ) from exc
    return model.to(device).eval()
