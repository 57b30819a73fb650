"""A face's voice: a deterministic rule from face attributes to a blend of Kokoro voices.

The rule (``face-voice-rule-v1``):

1. **Gender** from the face: female when P(female) >= 0.7, male when <= 0.3; in between the
   face is *uncertain* and gets the neutral blend (the most typical female and male voices of
   the accent, half and half), and the caller says so.
2. **Candidates**: the :data:`CANDIDATES` voices of that gender and the accent the user chose
   (``--accent us|gb``; never inferred from a face) that are most *typical*: highest mean
   speaker-embedding similarity to real speakers of that gender. Typicality is fitted once on
   LibriSpeech speakers (not on any evaluation face) by :mod:`avtool.training.voice_rule` and
   shipped as a table (registry entry ``face-voice-rule-v1``).
3. **Identity**: the face's unit dlib descriptor (128-d) is projected on one fixed random
   direction per candidate (seeded by the voice's name, so it never changes); a softmax at
   temperature :data:`TEMPERATURE` gives weights; the top two are kept, renormalised and
   rounded to 0.05. The same face always gets the same blend and different faces of one
   gender get different ones. This step carries identity only: no claim is made that the
   descriptor predicts the person's real voice.

Age is measured and recorded but does not move the choice (nothing here shows that it should).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from avtool.errors import InputError
from avtool.models.kokoro.voices import blend_label, voice_info

RULE_NAME = "face-voice-rule-v1"
ACCENTS = ("us", "gb")
#: P(female) at or above which a face is female, at or below 1 - it male.
CERTAIN = 0.7
CANDIDATES = 3
TEMPERATURE = 0.05
WEIGHT_STEP = 0.05


@dataclass(frozen=True)
class VoiceChoice:
    """The voice chosen for a face.

    Attributes:
        blend: ``((voice, weight), ...)``, weights summing to 1.
        gender: ``"female"``, ``"male"`` or ``"uncertain"``.
        accent: ``"us"`` or ``"gb"``.
        candidates: the voices the blend was drawn from.
    """

    blend: tuple[tuple[str, float], ...]
    gender: str
    accent: str
    candidates: tuple[str, ...]

    @property
    def voice(self) -> str:
        """As a ``--voice`` string."""
        return blend_label(self.blend)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": RULE_NAME,
            "voice": self.voice,
            "gender": self.gender,
            "accent": self.accent,
            "candidates": list(self.candidates),
        }


def face_gender(p_female: float) -> str:
    """``"female"``, ``"male"`` or ``"uncertain"`` (0.3 < P(female) < 0.7)."""
    if p_female >= CERTAIN:
        return "female"
    if p_female <= 1 - CERTAIN:
        return "male"
    return "uncertain"


def ranked(typicality: Mapping[str, float], gender: str, accent: str) -> list[str]:
    """Voices of ``gender`` and ``accent``, most typical first (ties by name)."""
    voices = [
        v for v in typicality if voice_info(v).gender == gender and voice_info(v).accent == accent
    ]
    return sorted(voices, key=lambda v: (-typicality[v], v))


def _direction(name: str, dim: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    direction = rng.standard_normal(dim)
    return direction / np.linalg.norm(direction)


def identity_weights(descriptor: np.ndarray, voices: list[str]) -> np.ndarray:
    """Softmax weights over ``voices`` from the face descriptor ``(128,)`` (see step 3)."""
    d = np.asarray(descriptor, np.float64).reshape(-1)
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    scores = np.array([float(d @ _direction(v, d.size)) for v in voices]) / TEMPERATURE
    scores -= scores.max()
    weights = np.exp(scores)
    return weights / weights.sum()


def choose_voice(
    p_female: float,
    descriptor: np.ndarray,
    typicality: Mapping[str, float],
    accent: str = "us",
) -> VoiceChoice:
    """Apply the rule.

    Args:
        p_female: from :func:`avtool.models.face_attributes.infer`.
        descriptor: the face's dlib descriptor ``(128,)`` (mean over frames).
        typicality: voice -> mean similarity to real speakers of its gender (the fitted table).
        accent: ``"us"`` or ``"gb"``.

    Raises:
        InputError: an unknown accent, or no voice of that gender and accent in the table.
    """
    if accent not in ACCENTS:
        raise InputError(f"--accent {accent!r}: choose one of {', '.join(ACCENTS)}")
    gender = face_gender(p_female)
    if gender == "uncertain":
        female, male = ranked(typicality, "female", accent), ranked(typicality, "male", accent)
        if not female or not male:
            raise InputError(f"no {accent} voices of both genders for a neutral blend")
        blend = ((female[0], 0.5), (male[0], 0.5))
        return VoiceChoice(blend, gender, accent, (female[0], male[0]))
    candidates = ranked(typicality, gender, accent)[:CANDIDATES]
    if not candidates:
        raise InputError(f"no {gender} {accent} voice in the face-voice table")
    weights = identity_weights(descriptor, candidates)
    top = np.argsort(-weights, kind="stable")[:2]
    kept = weights[top] / weights[top].sum()
    steps = np.round(kept / WEIGHT_STEP).astype(int)
    steps[0] = round(1 / WEIGHT_STEP) - steps[1:].sum()  # exact sum of 1 after rounding
    blend = tuple(
        (candidates[i], round(s * WEIGHT_STEP, 2)) for i, s in zip(top, steps, strict=True) if s
    )
    return VoiceChoice(blend, gender, accent, tuple(candidates))
