"""The weights files of the lip readers (LipNet and the ResNet/BiGRU reader), one way for both.

A reader's file is an avtool checkpoint (:mod:`avtool.models.checkpoint`) or a plain state dict,
with its config as JSON in ``NAME.pt.json`` beside it either way
(:mod:`avtool.models.state_dict`); the families differ only in their config class, their
``build`` and the name their messages use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from avtool.models import state_dict

Module = TypeVar("Module", bound=torch.nn.Module)


def save_reader(
    state: Mapping[str, torch.Tensor],
    config: Any,
    out: str | os.PathLike[str],
    family: str | None = None,
) -> Path:
    """Write ``state`` to ``out`` (an avtool checkpoint of ``family``; a plain state dict when
    None) and ``config.to_json()`` to ``out.json``, each atomically."""
    return state_dict.save(state, config.to_json(), out, family)


def load_reader(
    path: str | os.PathLike[str],
    config: Any,
    config_type: type,
    build: Callable[[Any], Module],
    what: str,
    device: str = "cpu",
) -> Module:
    """Build a lip reader from its weights file, in eval mode.

    Args:
        path: the ``.pt`` file.
        config: its architecture (a ``config_type`` or its dict); None reads the one the
            checkpoint carries, else ``<path>.json``.
        config_type: the family's config class (its ``from_dict`` reads a dict).
        build: the family's ``build(config)``.
        what: the family as messages name it.
        device: torch device.

    Raises:
        ModelError: no config, an unreadable file, or weights that do not fit the config.
    """
    if config is None:
        config = state_dict.read_config(path, what)
    if not isinstance(config, config_type):
        config = config_type.from_dict(dict(config))
    return state_dict.load_into(build(config), path, what, device)
