"""Long inputs, chunk by chunk: cross-faded seams for vocoders, context windows for sequence models.

A convolutional vocoder's activations grow with the input (HiFi-GAN V1 holds tens of MB per
second of audio at its last stage), so minutes of mel do not fit on a small GPU in one pass.
:func:`apply_chunked` runs any mel -> waveform function on overlapping windows of frames and
joins the pieces in the waveform domain; it serves every vocoder family:

    audio = apply_chunked(lambda m: hifigan.infer(model, m), mel, hop_length=model.hop_length)

How a seam is made: consecutive chunks share ``overlap_frames`` frames. Near its own edge a
chunk's output is wrong (the convolutions see padding instead of the neighbouring frames), so
within the shared span each chunk is trusted only away from its edge: the outer quarter on
each side is taken from the chunk that has real context there, and the central half is
cross-faded. When a quarter of the overlap covers the model's receptive field (about 14 frames
for HiFi-GAN V1, 7 for MelGAN), the result equals a single pass up to float rounding.

Sequence models (lip readers, V2A) need context instead: :func:`context_windows` tiles the
frames into cores, each run inside a window widened by ``context`` frames on both sides and
kept on its core only, and :func:`stream_in_context` does the same over a stream of frames,
holding one window at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

import numpy as np
import torch

from avtool.errors import InputError, ModelError

#: Frames per chunk (about 12 s at 22.05 kHz with a 256-sample hop).
CHUNK_FRAMES = 1024
#: Frames shared by consecutive chunks; a quarter of it (16) exceeds HiFi-GAN V1's
#: receptive field of about 14 frames, so seams match a single pass.
OVERLAP_FRAMES = 64
Crossfade = Literal["linear", "equal_power"]
Item = TypeVar("Item")
#: How the central half of each overlap is blended (see :func:`fade_curves`).
CROSSFADE: Crossfade = "linear"


def fade_curves(length: int, kind: Crossfade = CROSSFADE) -> tuple[torch.Tensor, torch.Tensor]:
    """Fade-in and fade-out gains for a cross-fade of ``length`` samples.

    Args:
        length: samples in the fade.
        kind: ``"linear"`` (gains sum to 1: constant amplitude for correlated signals, such
            as two vocodings of the same frames) or ``"equal_power"`` (squared gains sum to 1:
            constant loudness for uncorrelated signals, up to +3 dB for identical ones).

    Returns:
        ``(fade_in, fade_out)``, each ``(length,)`` float32, rising from 0 / falling to 0.

    Raises:
        InputError: unknown ``kind``.
    """
    t = (torch.arange(length, dtype=torch.float64) + 0.5) / max(length, 1)
    if kind == "linear":
        fade_in, fade_out = t, 1.0 - t
    elif kind == "equal_power":
        fade_in, fade_out = torch.sin(t * math.pi / 2), torch.cos(t * math.pi / 2)
    else:
        raise InputError(f"crossfade must be 'linear' or 'equal_power', not {kind!r}")
    return fade_in.float(), fade_out.float()


def chunk_bounds(frames: int, chunk_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame spans covering ``frames``; neighbours share ``overlap_frames``.

    Every chunk but the last has ``chunk_frames`` frames; the last is shorter but always
    longer than the overlap.
    """
    if frames <= chunk_frames:
        return [(0, frames)]
    stride = chunk_frames - overlap_frames
    count = math.ceil((frames - overlap_frames) / stride)
    return [(i * stride, min(i * stride + chunk_frames, frames)) for i in range(count)]


def apply_chunked(
    fn: Callable[[torch.Tensor], torch.Tensor],
    mel: torch.Tensor,
    *,
    hop_length: int,
    chunk_frames: int = CHUNK_FRAMES,
    overlap_frames: int = OVERLAP_FRAMES,
    crossfade: Crossfade = CROSSFADE,
) -> torch.Tensor:
    """Run a mel -> waveform function over overlapping chunks and cross-fade the seams.

    Each call of ``fn`` runs under ``torch.inference_mode()`` on a contiguous slice of at
    most ``chunk_frames`` frames, so peak memory is one chunk's activations plus the output.

    Args:
        fn: maps ``(B, n_mels, n)`` mel frames to ``(B, n * hop_length)`` samples, e.g.
            ``lambda m: hifigan.infer(model, m)``.
        mel: ``(B, n_mels, frames)`` mel spectrogram.
        hop_length: samples per frame produced by ``fn``.
        chunk_frames: frames per call of ``fn``.
        overlap_frames: frames shared by consecutive chunks (see the module docstring), at
            most half of ``chunk_frames``; 0 butts the chunks together.
        crossfade: blend of the overlap's central half, see :func:`fade_curves`.

    Returns:
        ``(B, frames * hop_length)`` waveform on ``mel``'s device, in ``fn``'s dtype (``mel``'s
        for zero frames, where ``fn`` is not called).

    Raises:
        InputError: ``mel`` is not 3-D, or the chunk sizes are inconsistent.
        ModelError: ``fn`` returned a wrong shape for a chunk.
    """
    if mel.ndim != 3:
        raise InputError(f"expected a (batch, n_mels, frames) mel, got {tuple(mel.shape)}")
    # Seams at both ends of a chunk must not meet, so no sample is shared by three chunks.
    if hop_length < 1 or chunk_frames < 1 or not 0 <= 2 * overlap_frames <= chunk_frames:
        raise InputError(
            f"need hop_length >= 1 and 0 <= overlap_frames ({overlap_frames}) <= half of "
            f"chunk_frames ({chunk_frames})"
        )
    fade_curves(0, crossfade)  # reject an unknown kind before any work
    batch, frames = mel.shape[0], mel.shape[-1]
    if frames == 0:
        return torch.zeros(batch, 0, dtype=mel.dtype, device=mel.device)
    bounds = chunk_bounds(frames, chunk_frames, overlap_frames)
    out: torch.Tensor | None = None
    for index, (start, end) in enumerate(bounds):
        with torch.inference_mode():
            piece = fn(mel[..., start:end].contiguous())
        expected = (batch, (end - start) * hop_length)
        if tuple(piece.shape) != expected:
            raise ModelError(
                f"the vocoder returned {tuple(piece.shape)} for frames {start}-{end}, "
                f"expected {expected} ({hop_length} samples per frame)"
            )
        if out is None:
            out = torch.zeros(batch, frames * hop_length, dtype=piece.dtype, device=mel.device)
        gain = torch.ones(piece.shape[-1], dtype=piece.dtype)
        if index > 0:  # the seam with the previous chunk starts at this chunk's first frame
            fade_in, _ = _seam(bounds[index - 1][1] - start, hop_length, crossfade)
            gain[: fade_in.numel()] = fade_in
        if index < len(bounds) - 1:
            _, fade_out = _seam(end - bounds[index + 1][0], hop_length, crossfade)
            gain[gain.numel() - fade_out.numel() :] = fade_out
        out[:, start * hop_length : end * hop_length] += piece.to(mel.device) * gain.to(mel.device)
    assert out is not None  # frames > 0, so at least one chunk ran
    return out


def _seam(
    shared_frames: int, hop_length: int, kind: Crossfade
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gains of the incoming and outgoing chunk over their shared span, in samples.

    The outer quarters go wholly to the chunk that is far from its own edge there (0 for
    the incoming chunk at the start, 0 for the outgoing one at the end); the central half
    fades between them.
    """
    total = shared_frames * hop_length
    margin = (shared_frames // 4) * hop_length
    fade_in, fade_out = fade_curves(total - 2 * margin, kind)
    zeros, ones = torch.zeros(margin), torch.ones(margin)
    return torch.cat([zeros, fade_in, ones]), torch.cat([ones, fade_out, zeros])


# --------------------------------------------------------------------------------------------
# Context windows: sequence models over long inputs


def context_windows(frames: int, chunk: int, context: int) -> list[tuple[int, int, int, int]]:
    """``(core_start, core_end, window_start, window_end)`` per chunk of ``frames`` frames.

    The cores tile ``[0, frames)`` exactly once; each window extends its core by ``context``
    frames on both sides (clipped at the ends). A sequence model run on the window and kept
    only on the core sees, near a seam, the same context as anywhere else.
    """
    if chunk < 1 or context < 0:
        raise InputError(f"need chunk >= 1 and context >= 0, got {chunk} and {context}")
    out = []
    for start in range(0, frames, chunk):
        end = min(start + chunk, frames)
        out.append((start, end, max(0, start - context), min(frames, end + context)))
    return out


def stream_in_context(
    items: Iterable[Item],
    fn: Callable[[list[Item]], np.ndarray],
    *,
    chunk_frames: int | None,
    context_frames: int,
    width: int,
) -> np.ndarray:
    """Run a per-frame sequence model over a stream of frames in context windows.

    Frames are consumed one by one and only the current window is held, so a video of any
    length is read in bounded memory. The windows are :func:`context_windows`' (the output of
    each is kept on its core only); None runs the whole stream as one window.

    Args:
        items: per-frame inputs (a mouth crop, or a crop with its landmarks).
        fn: maps a window's frames (a list of ``n`` items) to ``(n, width)`` outputs.
        chunk_frames: core frames per window; None for one window.
        context_frames: frames of context on each side of a core.
        width: features per frame (for the ``(0, width)`` result of an empty stream).

    Returns:
        ``(T, width)`` float32, one row per input frame.
    """
    chunk = chunk_frames or (1 << 62)
    out: list[np.ndarray] = []
    buffer: list[Item] = []  # frames from ``offset`` on
    offset = emitted = 0  # absolute index of buffer[0]; frames whose outputs are final

    def run(stop: int) -> None:
        nonlocal buffer, offset, emitted
        values = fn(buffer)
        out.append(values[emitted - offset : stop - offset])
        emitted = stop
        drop = max(0, emitted - context_frames - offset)  # the next window's left context
        buffer, offset = buffer[drop:], offset + drop

    for item in items:
        buffer.append(item)
        # A core [emitted, emitted + chunk) is ready once its right context has arrived.
        if offset + len(buffer) >= emitted + chunk + context_frames:
            run(emitted + chunk)
    if offset + len(buffer) > emitted:
        run(offset + len(buffer))
    if not out:
        return np.zeros((0, width), np.float32)
    return np.concatenate(out).astype(np.float32)
