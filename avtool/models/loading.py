"""The front door: every registered model is loaded through :func:`load`.

``load(name_or_path, task=..., device=...)`` resolves the name (or a local weights file) in the
registry (:func:`avtool.registry.resolve`: checksums, cache, offline mode, licence gate), picks
the family from the entry's ``family`` field (for a local file, from the file itself), calls the
family's one loading hook and returns a :class:`Loaded`: the module plus everything a sidecar
says about it.

A family is registered in :data:`FAMILIES` by its import path; its module defines

    load_entry(resolved: ResolvedModel, device: str, **options) -> module

which turns the verified files of one entry into a ready (eval-mode) module (``options``: the
family's own keywords given to :func:`load`, such as Kokoro's ``threads``). The hook reads the
architecture the checkpoint carries (the config stored with the weights, as whisper stores its
dims; see :mod:`avtool.models.checkpoint`); ``build(config)`` and ``infer(...)`` stay the
family's own. Two optional hooks:

    entry_facts(resolved: ResolvedModel, module) -> dict

the family's own sidecar facts beyond name, family, sha256 and licence (a Kokoro blend's
voices, an AnyoneNet network's kind), kept in :attr:`Loaded.details`; and, for the families
of :data:`SPEC_FAMILIES`, whose models are named by a spec rather than one registry entry,

    claims(spec: str) -> bool
    resolve_spec(spec: str, accept_license: bool) -> ResolvedModel

(a Kokoro blend ``af_heart:0.6,am_adam:0.4`` resolves to the engine entry plus its voice packs).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from avtool.errors import ModelError
from avtool.registry import ResolvedModel, resolve

#: Family name (the registry's ``family`` field) -> the module holding its ``load_entry``.
FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "hifigan": "avtool.models.hifigan",
        "melgan": "avtool.models.melgan",
        "lipnet": "avtool.models.lipnet",
        "lipread-resnet": "avtool.models.lipread_resnet",
        "v2a": "avtool.models.v2a",
        "music_markov": "avtool.models.music.markov",
        "music_lstm": "avtool.models.music.lstm",
        "music_transformer": "avtool.models.music.transformer",
        "piper": "avtool.models.piper",
        "hibari": "avtool.models.hibari",
        "kokoro": "avtool.models.kokoro.entry",
        "anyonenet": "avtool.models.anyonenet.checkpoint",
        "facewarp": "avtool.models.facewarp.entry",
        "masknet": "avtool.models.separate.masknet",
        "convtasnet": "avtool.models.separate.convtasnet",
        "spleeter": "avtool.models.separate.spleeter",
    }
)

#: Task -> the families (keys of :data:`FAMILIES`) that may claim a name before the registry
#: looks it up, because their models are named by a spec (see the module docstring).
SPEC_FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType({"tts": ("kokoro",)})


@dataclass(frozen=True)
class Loaded:
    """A loaded model and what every sidecar reports about it.

    Attributes:
        name: registry name (the file name for a local path).
        task: the task it was loaded for (``vocode``, ``lipread``, ...).
        family: the family that loaded it (a key of :data:`FAMILIES`).
        sha256: digest of the main weights file.
        license: SPDX identifier (or the publisher's words).
        description: the registry's one-line description.
        module: the ready model (eval mode), as the family's ``infer`` takes it.
        path: the main weights file.
        files: every file of the entry by name (companions included).
        load_seconds: wall time of resolving, verifying and loading.
        details: the family's own sidecar facts (its ``entry_facts`` hook; empty without one).
    """

    name: str
    task: str
    family: str
    sha256: str | None
    license: str
    description: str
    module: Any
    path: Path
    files: Mapping[str, Path] = field(default_factory=dict)
    load_seconds: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Any:
        """The module's architecture config (None for a family without one)."""
        return getattr(self.module, "config", None)

    def facts(self) -> dict[str, Any]:
        """The sidecar's ``model`` object: name, family, sha256, licence, then the family's
        :attr:`details`."""
        return {
            "name": self.name,
            "family": self.family,
            "sha256": self.sha256,
            "license": self.license,
            **self.details,
        }


def family_module(family: str) -> ModuleType:
    """The module of a registered family.

    Raises:
        ModelError: an unknown family.
    """
    if family not in FAMILIES:
        raise ModelError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    return importlib.import_module(FAMILIES[family])


def load(
    name_or_path: str | os.PathLike[str],
    *,
    task: str,
    device: str = "cpu",
    accept_license: bool = False,
    detect: Callable[[ResolvedModel], str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Loaded:
    """Resolve, verify and load a model.

    Args:
        name_or_path: a registry name, a local weights file (with its ``<file>.json``), or
            a spec one of the task's :data:`SPEC_FAMILIES` claims.
        task: the task the caller runs; an entry of another task is refused.
        device: a resolved torch device (``cpu``, ``cuda``; see
            :func:`avtool.runtime.resolve_device`); the ONNX families (Piper, hibari, Kokoro)
            also take ``auto`` and resolve it for onnxruntime themselves.
        accept_license: allow non-commercial entries.
        detect: tells the family of a file that has no registry entry (a local path);
            None requires the entry's ``family``.
        options: keyword arguments for the family's ``load_entry`` beyond the device
            (Kokoro: ``threads``, onnxruntime's intra-op threads); None passes none.

    Returns:
        The loaded model and its facts.

    Raises:
        ModelError: unknown or unverifiable model, wrong task, licence not accepted, an
            unknown family, or a file the family cannot read.
    """
    start = time.perf_counter()
    resolved = _claimed(os.fspath(name_or_path), task, accept_license)
    if resolved is None:
        resolved = resolve(name_or_path, task=task, accept_license=accept_license)
    entry = resolved.entry
    family = entry.family or (detect(resolved) if detect is not None else "")
    if not family:
        raise ModelError(f"{resolved.path}: cannot tell which {task} family reads this file")
    hooks = family_module(family)
    module = hooks.load_entry(resolved, device, **(options or {}))
    entry_facts = getattr(hooks, "entry_facts", None)
    return Loaded(
        name=entry.name,
        task=task,
        family=family,
        sha256=entry.main.sha256,
        license=entry.license,
        description=entry.description,
        module=module,
        path=resolved.path,
        files=dict(resolved.files),
        load_seconds=time.perf_counter() - start,
        details=entry_facts(resolved, module) if entry_facts is not None else {},
    )


def _claimed(spec: str, task: str, accept_license: bool) -> ResolvedModel | None:
    """The resolution of a spec one of the task's :data:`SPEC_FAMILIES` claims, else None."""
    for family in SPEC_FAMILIES.get(task, ()):
        hooks = family_module(family)
        if hooks.claims(spec):
            return hooks.resolve_spec(spec, accept_license)
    return None
