"""Source separation models for ``avtool separate``: one package, one module per architecture.

- :mod:`~avtool.models.separate.masknet`: the T-F mask TCN trained here (blind two-speaker
  with uPIT, and audio-visual target extraction over the frozen lip reader's features);
- :mod:`~avtool.models.separate.convtasnet`: Conv-TasNet reading Asteroid checkpoints;
- :mod:`~avtool.models.separate.spleeter`: Spleeter's 2-stem U-Net reading Deezer's weights;
- :mod:`~avtool.models.separate.stft`, :mod:`~avtool.models.separate.visual`: shared pieces.

Every family exposes ``build(config)``, a loader and ``infer``; :func:`load` dispatches on the
registry entry's ``family``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avtool import registry
from avtool.errors import ModelError
from avtool.models import state_dict
from avtool.models.separate import convtasnet, masknet, spleeter

#: ``family`` values of the registry entries this package loads.
FAMILIES = ("masknet", "convtasnet", "spleeter")


@dataclass
class LoadedSeparator:
    """A loaded separation model and what sidecars report about it.

    Attributes:
        name: registry name (or the path given).
        family: one of :data:`FAMILIES`.
        sha256: checksum of the main weights file.
        license: licence text of the entry.
        model: the module (eval mode).
        sample_rate: the rate it runs at (Hz).
        stems: names of the outputs, in order.
        audio_visual: needs the target's face video.
        lip_reader: registry name of the frozen visual front-end (audio-visual models).
        config: the architecture, for sidecars.
        load_seconds: time to resolve and load.
    """

    name: str
    family: str
    sha256: str | None
    license: str
    model: torch.nn.Module
    sample_rate: int
    stems: tuple[str, ...]
    audio_visual: bool = False
    lip_reader: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0


def load_masknet(
    path: str | os.PathLike[str], config: dict | None = None, device: str = "cpu"
) -> masknet.MaskNet:
    """A :class:`~avtool.models.separate.masknet.MaskNet` from ``NAME.pt`` (+ ``NAME.pt.json``).

    Raises:
        ModelError: no config, unreadable, or weights that do not fit.
    """
    data = dict(config) if config else state_dict.read_config(path, "mask network")
    data.pop("lip_reader", None)
    try:
        cfg = masknet.MaskNetConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad mask network config ({exc})") from exc
    return state_dict.load_into(masknet.build(cfg), path, "mask network", device)


def load(
    name_or_path: str, device: str = "cpu", *, accept_license: bool = False
) -> LoadedSeparator:
    """Resolve a registry name (or a local weights path) and load the model.

    A local ``.pt`` is a mask network (config in ``.pt.json``); a local ``.bin``/``.pth`` an
    Asteroid Conv-TasNet.

    Raises:
        ModelError: unknown, unverifiable or unreadable model, or a family this task lacks.
    """
    start = time.perf_counter()
    resolved = registry.resolve(name_or_path, task="separate", accept_license=accept_license)
    entry = resolved.entry
    family = entry.family
    if family not in FAMILIES:  # a local path: tell the family from the file
        family = "masknet" if resolved.path.suffix == ".pt" else "convtasnet"
    extra = dict(entry.config or {})
    if family == "masknet":
        companion = state_dict.config_path(resolved.path).name
        config = None
        if companion in resolved.files:
            import json

            config = json.loads(resolved.files[companion].read_text(encoding="utf-8"))
        model: torch.nn.Module = load_masknet(resolved.path, config, device)
        cfg = model.config  # type: ignore[assignment]
        av = bool(cfg.visual_dim)
        stems = ("target", "residual") if av else ("spk1", "spk2")
        lip_reader = (config or {}).get("lip_reader") or extra.get("lip_reader")
        if av and not lip_reader:
            lip_reader = "lipread-grid-s1"
        out = LoadedSeparator(
            entry.name,
            family,
            entry.main.sha256,
            entry.license,
            model,
            cfg.sample_rate,
            stems,
            av,
            lip_reader,
            cfg.to_dict(),
        )
    elif family == "convtasnet":
        rate = extra.get("sample_rate") or entry.sample_rate
        model = convtasnet.load_asteroid(resolved.path, device, sample_rate=rate)
        cfg = model.config  # type: ignore[assignment]
        stems = tuple(f"spk{i + 1}" for i in range(cfg.n_src))
        out = LoadedSeparator(
            entry.name,
            family,
            entry.main.sha256,
            entry.license,
            model,
            cfg.sample_rate,
            stems,
            config=cfg.to_dict(),
        )
    else:
        others = [p for n, p in resolved.files.items() if p != resolved.path]
        if len(others) != 1:
            raise ModelError(f"{entry.name}: expected the vocals and accompaniment checkpoints")
        model = spleeter.load([resolved.path, others[0]], device)
        cfg = model.config  # type: ignore[assignment]
        out = LoadedSeparator(
            entry.name,
            family,
            entry.main.sha256,
            entry.license,
            model,
            cfg.sample_rate,
            cfg.stems,
            config=cfg.to_dict(),
        )
    out.load_seconds = time.perf_counter() - start
    return out


__all__ = [
    "FAMILIES",
    "LoadedSeparator",
    "Path",
    "convtasnet",
    "load",
    "load_masknet",
    "masknet",
    "spleeter",
]
