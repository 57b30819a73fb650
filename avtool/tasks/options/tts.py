"""Options of ``avtool tts`` (and its ``--face`` video) and the default voice: the CLI builds its
flags from these, and :mod:`avtool.tasks.tts` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avtool.errors import InputError

DEFAULT_VOICE = "piper-joe-medium"
AUDIO_FORMATS = ("wav", "flac", "ogg", "mp3", "m4a", "opus")


@dataclass(frozen=True)
class TTSOptions:
    """Run-time options of ``avtool tts``; the CLI reads its defaults from here.

    Attributes:
        voice: registry name or path of a voice (``.onnx`` Piper voice).
        speed: speaking-rate multiplier (2.0 = twice as fast).
        sample_rate: output rate in Hz; None keeps the voice's own.
        format: "wav" or "flac"; None picks from the output suffix.
        sentence_pause: seconds of silence between sentences.
        noise_scale: Piper prior noise; None = the voice's default.
        noise_w: Piper duration noise; None = the voice's default.
        seed: noise seed; the same seed and text give the same bytes.
    """

    voice: str = DEFAULT_VOICE
    speed: float = 1.0
    sample_rate: int | None = None
    format: str | None = None
    sentence_pause: float = 0.1
    noise_scale: float | None = None
    noise_w: float | None = None
    seed: int = 0

    def validated(self) -> TTSOptions:
        """Self, after checking ranges.

        Raises:
            InputError: a value outside its range, naming the option.
        """
        if not 0.1 <= self.speed <= 10:
            raise InputError(f"--speed {self.speed}: must be between 0.1 and 10")
        if self.sample_rate is not None and not 4000 <= self.sample_rate <= 192000:
            raise InputError(f"--sample-rate {self.sample_rate}: must be 4000..192000 Hz")
        if self.format is not None and self.format not in AUDIO_FORMATS:
            raise InputError(f"--format {self.format}: must be one of {', '.join(AUDIO_FORMATS)}")
        if not 0 <= self.sentence_pause <= 10:
            raise InputError(f"--sentence-pause {self.sentence_pause}: must be 0..10 s")
        if self.seed < 0:
            raise InputError(f"--seed {self.seed}: must be >= 0")
        return self


@dataclass(frozen=True)
class FaceVideo:
    """``avtool tts --face``: render the speech as a talking-head video of this photo.

    Attributes:
        face: the photo.
        options: a :class:`avtool.tasks.options.talkinghead.TalkingHeadOptions`.
        accent: ``"us"`` or ``"gb"``: the accent of a voice chosen from the face.
        voice_from_face: choose a Kokoro voice that fits the face (no ``--voice`` given).
    """

    face: str
    options: Any
    accent: str = "us"
    voice_from_face: bool = False
