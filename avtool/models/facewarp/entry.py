"""The mouth bank through the front door (:func:`avtool.models.loading.load`).

The warp renderer itself has no weights; the ``facewarp`` family's one registered file is the
bank of real mouth interiors (:mod:`avtool.models.facewarp.mouth_bank`) that ``--mouth bank``
pastes.
"""

from __future__ import annotations

from typing import Any

from avtool.models.facewarp.mouth_bank import MouthBank, load
from avtool.registry import ResolvedModel


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> MouthBank:
    """The front door's hook: the verified bank (numpy arrays, so ``device`` is unused).

    Raises:
        ModelError: a missing, unreadable or malformed bank (naming the file).
    """
    return load(resolved.path)


def entry_facts(resolved: ResolvedModel, bank: MouthBank) -> dict[str, Any]:
    """The sidecar's bank facts: how many exemplars it holds."""
    return {"exemplars": len(bank)}
