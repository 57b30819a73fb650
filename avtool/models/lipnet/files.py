"""The weights files of the lip readers (LipNet and the ResNet/BiGRU reader), one way for both.

A reader's file is an avtool checkpoint (:mod:`avtool.models.checkpoint`) or a plain state dict,
with its config as JSON in ``NAME.pt.json`` beside it either way
(:mod:`avtool.models.state_dict`); the families differ only in their config class, their
``build``, the name their messages use and whether :meth:`ReaderFamily.save` writes the avtool
format. Each family's package exposes one :class:`ReaderFamily`'s ``save``,
``load_checkpoint`` and ``load_entry`` (the front door's hook).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from avtool.models import state_dict
from avtool.registry import ResolvedModel

ConfigT = TypeVar("ConfigT")
Module = TypeVar("Module", bound=torch.nn.Module)


@dataclass(frozen=True)
class ReaderFamily(Generic[ConfigT, Module]):
    """How one lip-reader family reads and writes its weights files.

    Attributes:
        config_type: the family's config class (``from_dict`` reads a dict, ``to_json``
            writes one).
        build: the family's ``build(config)``.
        what: the family as messages name it (``LipNet``, ``lip reader``).
        family: the front door's family, written into an avtool checkpoint by :meth:`save`;
            None writes a plain state dict (the shipped LipNet layout).
    """

    config_type: type[ConfigT]
    build: Callable[[ConfigT], Module]
    what: str
    family: str | None = None

    def save(
        self, state: Mapping[str, torch.Tensor], config: ConfigT, out: str | os.PathLike[str]
    ) -> Path:
        """Write ``state`` to ``out`` (an avtool checkpoint of :attr:`family`, or a plain state
        dict) and ``config.to_json()`` to ``out.json``, each atomically.

        Returns:
            ``out``.
        """
        return state_dict.save(state, config.to_json(), out, self.family)  # type: ignore[attr-defined]

    def load_checkpoint(
        self,
        path: str | os.PathLike[str],
        config: ConfigT | Mapping[str, Any] | None = None,
        device: str = "cpu",
    ) -> Module:
        """Build the reader from its weights file, in eval mode on ``device``.

        Args:
            path: the ``.pt`` file.
            config: its architecture (a config or its dict); None reads the one the
                checkpoint carries, else ``<path>.json``.
            device: torch device.

        Raises:
            ModelError: no config, an unreadable file, or weights that do not fit the config.
        """
        if config is None:
            config = state_dict.read_config(path, self.what)
        if not isinstance(config, self.config_type):
            config = self.config_type.from_dict(dict(config))  # type: ignore[attr-defined]
        return state_dict.load_into(self.build(config), path, self.what, device)

    def load_entry(self, resolved: ResolvedModel, device: str = "cpu") -> Module:
        """The front door's hook (:func:`avtool.models.loading.load`): a verified entry's
        weights, with the config its checkpoint carries, its companion JSON or its
        ``[config]`` table, in eval mode."""
        return self.load_checkpoint(resolved.path, state_dict.entry_config(resolved), device)
