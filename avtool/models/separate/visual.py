"""The audio-visual model's visual front-end: the frozen lip reader's per-frame features."""

from __future__ import annotations

import numpy as np
import torch

from avtool.models.visual import lip_features, prepare_crops

#: Video frames per lip-reader window, and the context frames added on each side of it (their
#: outputs dropped), as :func:`avtool.models.lipread_resnet.infer` does.
WINDOW_FRAMES = 250
CONTEXT_FRAMES = 25


def lip_reader_features(
    model: torch.nn.Module,
    gray88: np.ndarray,
    landmarks: np.ndarray,
    window: int = WINDOW_FRAMES,
    context: int = CONTEXT_FRAMES,
) -> np.ndarray:
    """The lip reader's BiGRU output (what its heads read) for a clip.

    Args:
        model: a loaded :class:`~avtool.models.lipread_resnet.LipReader` (eval mode).
        gray88: ``(T, 88, 88)`` uint8 mouth crops at 25 fps.
        landmarks: ``(T, 68, 2)`` face landmarks (pixels) the crops were cut with.
        window: frames per forward pass (bounded memory on long videos).
        context: extra frames on each side of a window.

    Returns:
        ``(T, 2 * hidden)`` float32 (320 for ``lipread-grid-s1``).
    """
    n = len(gray88)
    out = []
    for start in range(0, n, window):
        a, b = max(0, start - context), min(n, start + window + context)
        with torch.no_grad():
            crops = prepare_crops(
                torch.from_numpy(np.ascontiguousarray(gray88[a:b]))[None], model.config.crop_size
            )
            lips = None
            if model.lips is not None:
                lips = lip_features(torch.from_numpy(np.asarray(landmarks[a:b], np.float32))[None])
            hidden = model.hidden(crops, lips)[0].numpy()
        out.append(hidden[start - a : min(n, start + window) - a])
    if not out:
        return np.zeros((0, 2 * model.config.hidden), np.float32)
    return np.concatenate(out).astype(np.float32)
