"""Options of ``avtool separate`` and the default models' names: the CLI builds its flags from
these, and :mod:`avtool.tasks.separate` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

AV_MODEL = "masknet-av-grid-s1"
BLIND_MODEL = "masknet-blind-grid-s1"
MUSIC_MODEL = "spleeter-2stems"


@dataclass(frozen=True)
class SeparateOptions:
    """Run-time options of ``avtool separate``; the CLI reads its defaults from here.

    Attributes:
        model: registry name or weights path; None = :data:`AV_MODEL` with a video, else
            :data:`BLIND_MODEL`.
        chunk_seconds: audio per model call (bounded memory on long inputs).
        overlap_seconds: overlap of consecutive chunks (speaker alignment and cross-fade).
        max_offset_seconds: largest video/audio duration difference accepted.
        max_gap: longest run of video frames without a face that is interpolated.
        one_speaker_db: a blind stem this many dB below the other means one voice.
        one_speaker_pitch: share of the frames where both stems are voiced whose pitches agree
            (within 3.5%) at or above which the two stems are one voice split in two.
        silence_dbfs: mixture RMS below this is silence (written as silence).
        seed: recorded in the sidecar (the models are deterministic).
    """

    model: str | None = None
    chunk_seconds: float = 10.0
    overlap_seconds: float = 1.0
    max_offset_seconds: float = 1.0
    max_gap: int = 12
    one_speaker_db: float = 15.0
    one_speaker_pitch: float = 0.85
    silence_dbfs: float = -80.0
    seed: int = 0
