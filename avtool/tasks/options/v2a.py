"""Options of ``avtool v2a`` and the default models' names: the CLI builds its flags from these,
and :mod:`avtool.tasks.v2a` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The default video-only model: V2A plus the lip reader's content stream.
V2A_MODEL = "v2a-content-grid-s1"
AV2A_MODEL = "av2a-grid-s1"
#: The vocoder of a V2A mel when none is named and the contracts match.
DEFAULT_VOCODER = "hifigan-v1-grid-s1"


@dataclass(frozen=True)
class V2AOptions:
    """Run-time options of ``avtool v2a``; the CLI reads its defaults from here.

    Attributes:
        model: registry name or weights path; None = :data:`V2A_MODEL` for video only,
            :data:`AV2A_MODEL` when audio is given.
        vocoder: ``griffin-lim``, a registered vocoder name or a checkpoint path; None =
            :data:`DEFAULT_VOCODER` if the model's mel contract is its own, else Griffin-Lim.
        iters: Griffin-Lim iterations (None = its default).
        seed: Griffin-Lim initial-phase seed.
        chunk_frames: video frames per model window (30 s at 25 fps).
        context_frames: extra frames of context on each side of a window.
        max_gap: longest run of frames without a usable (detected, near-frontal) face that is
            interpolated; longer runs are an error.
        max_yaw: head yaw in degrees beyond which a frame counts as a profile view.
        audio_from_video: use the input video's own audio track as the noisy audio (AV mode).
    """

    model: str | None = None
    vocoder: str | None = None
    iters: int | None = None
    seed: int = 0
    chunk_frames: int = 750
    context_frames: int = 25
    max_gap: int = 12
    max_yaw: float = 50.0
    audio_from_video: bool = False
