"""Source separation models for ``avtool separate``: one package, one module per architecture.

- :mod:`~avtool.models.separate.masknet`: the T-F mask TCN trained here (blind two-speaker
  with uPIT, and audio-visual target extraction over the frozen lip reader's features);
- :mod:`~avtool.models.separate.convtasnet`: Conv-TasNet reading Asteroid checkpoints;
- :mod:`~avtool.models.separate.spleeter`: Spleeter's 2-stem U-Net reading Deezer's weights;
- :mod:`~avtool.models.separate.stft`, :mod:`~avtool.models.separate.visual`: shared pieces.

Every architecture is a family of the front door (:func:`avtool.models.loading.load`): it
exposes ``build(config)``, ``load_entry(resolved, device)``, ``entry_facts`` (its sidecar's
``config`` and ``lip_reader``) and ``infer``; the registry entry's ``family`` picks it, and
:func:`detect_family` tells the family of a local weights file.
"""

from __future__ import annotations

from avtool.registry import ResolvedModel

#: ``family`` values of the registry entries this package loads.
FAMILIES = ("masknet", "convtasnet", "spleeter")


def detect_family(resolved: ResolvedModel) -> str:
    """The family of a local weights file: a ``.pt`` is a mask network (config in
    ``.pt.json``), anything else (``.bin``, ``.pth``) an Asteroid Conv-TasNet."""
    return "masknet" if resolved.path.suffix == ".pt" else "convtasnet"


__all__ = ["FAMILIES", "detect_family"]
