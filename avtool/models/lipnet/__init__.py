"""LipNet lip reading (Assael et al., 2016): model, CTC decoding, training, Keras conversion.

    model = loading.load("lipnet-grid-s1", task="lipread").module  # or a local .pt + .pt.json
    log_probs = infer(model, crops)                 # (T, 50, 100, 3) uint8 -> (T, 28) log-probs
    decoded = ctc.decode(log_probs, "grid")         # text + per-word timings and confidences

A checkpoint is a plain state dict ``NAME.pt`` with its :class:`LipNetConfig` as JSON in
``NAME.pt.json`` beside it (``save``: :class:`~avtool.models.lipnet.files.ReaderFamily`);
registry entries list that JSON as a companion file.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from avtool.models.chunked import stream_in_context
from avtool.models.lipnet.files import ReaderFamily
from avtool.models.lipnet.model import (
    ALPHABET,
    BLANK,
    VOCAB_SIZE,
    LipNet,
    LipNetConfig,
    build,
    prepare_input,
)

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
    "load_checkpoint",
    "load_entry",
    "prepare_input",
    "save",
]


#: The family's weights files: ``save(state, config, out)`` writes a plain state dict and its
#: JSON, ``load_checkpoint(path, config=None, device)`` and the front door's ``load_entry``.
FILES: ReaderFamily[LipNetConfig, LipNet] = ReaderFamily(LipNetConfig, build, "LipNet")
save = FILES.save
load_checkpoint = FILES.load_checkpoint
load_entry = FILES.load_entry


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
