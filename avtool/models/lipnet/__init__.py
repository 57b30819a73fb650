"""LipNet lip reading (Assael et al., 2016): model, CTC decoding, training, Keras conversion.

    model, config = load("lipnet-grid-s1")          # or a path to a .pt with its .pt.json
    log_probs = infer(model, crops)                 # (T, 50, 100, 3) uint8 -> (T, 28) log-probs
    decoded = ctc.decode(log_probs, "grid")         # text + per-word timings and confidences

A checkpoint is a plain state dict ``NAME.pt`` with its :class:`LipNetConfig` as JSON in
``NAME.pt.json`` beside it (:func:`save`); registry entries list that JSON as a companion file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from avtool.models import state_dict
from avtool.models.chunked import stream_in_context
from avtool.models.lipnet.files import load_reader, save_reader
from avtool.models.lipnet.model import (
    ALPHABET,
    BLANK,
    VOCAB_SIZE,
    LipNet,
    LipNetConfig,
    build,
    prepare_input,
)
from avtool.registry import ResolvedModel

#: Frames of context added on each side of a window in :func:`infer` (one second).
CONTEXT_FRAMES = 25

__all__ = [
    "ALPHABET",
    "BLANK",
    "VOCAB_SIZE",
    "LipNet",
    "LipNetConfig",
    "build",
    "infer",
    "load",
    "load_checkpoint",
    "prepare_input",
    "save",
]


def save(
    state: Mapping[str, torch.Tensor], config: LipNetConfig, out: str | os.PathLike[str]
) -> Path:
    """Write a plain state dict to ``out`` and its config to ``out.json``
    (:func:`avtool.models.lipnet.files.save_reader`)."""
    return save_reader(state, config, out)


def load_checkpoint(
    path: str | os.PathLike[str], config: LipNetConfig | Mapping | None = None,
    device: str = "cpu",
) -> LipNet:  # fmt: skip
    """A :class:`LipNet` in eval mode from its weights file and ``config`` (None: the stored
    one, else ``<path>.json``): :func:`avtool.models.lipnet.files.load_reader`.

    Raises:
        ModelError: no config, an unreadable file, or weights that do not fit the config.
    """
    return load_reader(path, config, LipNetConfig, build, "LipNet", device)


def load(
    name_or_path: str | os.PathLike[str], device: str = "cpu", *, accept_license: bool = False
) -> tuple[LipNet, dict]:
    """Resolve a registry name (or a local ``.pt``) and load it.

    Returns:
        The model (eval mode) and facts for sidecars: ``name``, ``sha256``, ``license``,
        ``description``, ``config``.

    Raises:
        ModelError: unknown, unverifiable or unreadable model.
    """
    return state_dict.load_registered(
        name_or_path, "lipread", load_checkpoint, device, accept_license=accept_license
    )


def infer(
    model: LipNet, crops: np.ndarray | Iterable[np.ndarray], chunk_frames: int | None = None
) -> np.ndarray:
    """Per-frame character log-probabilities of one clip's mouth crops.

    Args:
        model: a loaded LipNet.
        crops: ``(T, 50, 100, 3)`` uint8 ``lipnet``-preset crops at 25 fps, or an iterable of
            ``(50, 100, 3)`` crops (streamed: only one window is held in memory).
        chunk_frames: run the network on windows of this many frames (bounded memory for
            long videos); None runs the whole clip at once. Windows are extended by
            :data:`CONTEXT_FRAMES` on each side, whose outputs are dropped, so the frames
            near a seam see the same context as any other.

    Returns:
        ``(T, VOCAB_SIZE)`` float32 log-probabilities (``(0, VOCAB_SIZE)`` for no frames).
    """
    device = next(model.parameters()).device

    def run(window: list[np.ndarray]) -> np.ndarray:
        video = prepare_input(np.stack(window), model.config).unsqueeze(0).to(device)
        with torch.no_grad():
            return model(video)[0].float().cpu().numpy()

    return stream_in_context(
        crops, run, chunk_frames=chunk_frames, context_frames=CONTEXT_FRAMES, width=VOCAB_SIZE
    )


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> LipNet:
    """The front door's hook (:func:`avtool.models.loading.load`): a verified entry's state
    dict, with the config of its companion JSON or ``[config]`` table, in eval mode."""
    return load_checkpoint(resolved.path, state_dict.entry_config(resolved), device)
