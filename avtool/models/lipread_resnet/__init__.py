"""ResNet/BiGRU lip reader (3-D conv + 2-D ResNet front-end, BiGRU, CTC) for ``avtool lipread``.

    model = loading.load("lipread-grid-s1", task="lipread").module  # or a local .pt + .pt.json
    log_probs = infer(model, gray88)             # (T, 88, 88) uint8 -> (T, 28) log-probs
    decoded = ctc.decode(log_probs, "grid")      # avtool.models.lipnet.ctc, unchanged
    log_probs = infer(model, gray88, landmarks=landmarks)  # models with the lip stream

A checkpoint is an avtool checkpoint ``NAME.pt`` (:mod:`avtool.models.checkpoint`: weights and
:class:`LipReaderConfig` in one file) with the config also as JSON in ``NAME.pt.json`` beside it
(``save``); the shipped ``lipread-grid-s1.pt`` is the earlier layout (a plain state dict,
its config only in the JSON, with the encoder in V2A's config layout), read as well. The model
reads the ``gray88`` mouth crops of :func:`avtool.io.face.mouth_crops` (:data:`CROP_PRESET`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from avtool.models.chunked import stream_in_context
from avtool.models.lipnet.files import ReaderFamily
from avtool.models.lipnet.model import VOCAB_SIZE
from avtool.models.lipread_resnet.model import (
    GRID_VOCAB,
    N_WORD_CLASSES,
    LipReader,
    LipReaderConfig,
    build,
    transfer_encoder,
)
from avtool.models.visual import lip_features, prepare_crops

#: The :class:`avtool.io.face.MouthCrop` preset the model reads.
CROP_PRESET = "gray88"
#: Frames of context added on each side of a window in :func:`infer` (one second).
CONTEXT_FRAMES = 25
#: ``family`` of this model's registry entries.
FAMILY = "lipread-resnet"

__all__ = [
    "CONTEXT_FRAMES", "CROP_PRESET", "FAMILY", "GRID_VOCAB", "N_WORD_CLASSES", "LipReader",
    "LipReaderConfig", "build", "infer", "is_config", "load_checkpoint", "load_entry", "save",
    "transfer_encoder",
]  # fmt: skip


def is_config(data: Mapping) -> bool:
    """Whether a checkpoint's JSON config describes this family (it nests an ``encoder``)."""
    return "encoder" in data


#: The family's weights files: ``save(state, config, out)`` writes an avtool checkpoint and its
#: JSON, ``load_checkpoint(path, config=None, device)`` and the front door's ``load_entry``.
FILES: ReaderFamily[LipReaderConfig, LipReader] = ReaderFamily(
    LipReaderConfig, build, "lip reader", FAMILY
)
save = FILES.save
load_checkpoint = FILES.load_checkpoint
load_entry = FILES.load_entry


def infer(
    model: LipReader,
    crops: np.ndarray | Iterable[np.ndarray],
    chunk_frames: int | None = None,
    landmarks: np.ndarray | Iterable[np.ndarray] | None = None,
) -> np.ndarray:
    """Per-frame character log-probabilities of one clip's gray mouth crops.

    Args:
        model: a loaded lip reader (eval mode).
        crops: ``(T, 88, 88)`` uint8 ``gray88`` crops at 25 fps, or an iterable of ``(88, 88)``
            crops (streamed: only one window is held in memory).
        chunk_frames: run the network on windows of this many frames; None = the whole clip.
            Windows get :data:`CONTEXT_FRAMES` of context on each side, whose outputs are
            dropped, so frames near a seam see the same context as any other.
        landmarks: ``(T, 68, 2)`` face landmarks in pixels (or an iterable of ``(68, 2)``), the
            ones the crops were cut with; needed by models with the lip-landmark stream, ignored
            by others. They are windowed exactly as the crops.

    Returns:
        ``(T, VOCAB_SIZE)`` float32 log-probabilities (``(0, VOCAB_SIZE)`` for no frames).

    Raises:
        ValueError: a lip-stream model without landmarks, or landmarks for fewer or more
            frames than crops.
    """
    device = next(model.parameters()).device
    with_lips = model.lips is not None
    if with_lips and landmarks is None:
        raise ValueError("this lip reader needs the face landmarks (lip_landmarks)")

    def run(window: list) -> np.ndarray:
        crops_only = [frame[0] for frame in window] if with_lips else window
        gray = torch.from_numpy(np.ascontiguousarray(np.stack(crops_only)))[None].to(device)
        lips = None
        if with_lips:
            points = np.stack([np.asarray(frame[1]) for frame in window]).astype(np.float32)
            lips = lip_features(torch.from_numpy(points)[None]).to(device)  # (1, T, 40)
        with torch.no_grad():
            log_probs, _ = model(prepare_crops(gray, model.config.crop_size), lips)
        return log_probs[0].float().cpu().numpy()

    frames: Iterable = zip(crops, landmarks, strict=True) if with_lips else crops  # type: ignore[arg-type]
    try:
        return stream_in_context(
            frames, run, chunk_frames=chunk_frames, context_frames=CONTEXT_FRAMES, width=VOCAB_SIZE
        )
    except ValueError as exc:
        if "zip()" not in str(exc):
            raise
        raise ValueError("landmarks and crops cover different numbers of frames") from None
