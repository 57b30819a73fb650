"""Text handling shared by the text-to-speech families: sentence splitting and chunk types."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy as np
    from numpy.random import Generator

# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by whitespace and a
# character that can start a sentence; "e.g. this" and "Dr. Smith" stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?…])([\"”’)\]]*)\s+(?=[\"“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "fig",
        "approx",
        "dept",
        "est",
        "inc",
        "ltd",
        "co",
    ]
)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at paragraph breaks and sentence-final punctuation.

    Every non-space character of ``text`` is kept: joining the sentences with spaces gives
    the input back up to whitespace. Abbreviations and initials do not end a sentence.

    Args:
        text: any text.

    Returns:
        Non-empty sentences, stripped, in order.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\r?\n", text):
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            last_word = paragraph[start : match.start()].rsplit(None, 1)[-1].rstrip(".").lower()
            if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
                continue
            sentences.append(paragraph[start : match.end(1)])
            start = match.end()
        sentences.append(paragraph[start:])
    return [s.strip() for s in sentences if s.strip()]


def text_words(text: str) -> list[str]:
    """Words of ``text`` as a listener hears them, punctuation stripped."""
    return [w for w in (t.strip(".,;:!?\"'()[]“”‘’—–-…") for t in text.split()) if w]


@dataclass(frozen=True)
class SpeechChunk:
    """One unit of synthesis: a sentence, or a piece of an over-long one.

    Attributes:
        text: the sentence this chunk came from (shared by its pieces).
        sentence_index: index of that sentence within the input text.
        phonemes: the model's phoneme symbols for this chunk.
    """

    text: str
    sentence_index: int
    phonemes: tuple[str, ...]


@dataclass(frozen=True)
class ChunkAudio:
    """Audio for one chunk.

    Attributes:
        audio: (T,) float32 in [-1, 1] at the model's sample rate.
        phoneme_samples: (phoneme, number of samples) in order, covering all of ``audio``
            (leading/trailing silence appear as "^" and "$"); None when the model gives
            no alignment.
    """

    audio: np.ndarray
    phoneme_samples: tuple[tuple[str, int], ...] | None


@dataclass(frozen=True)
class Delivery:
    """How a chunk is spoken.

    Attributes:
        speed: speaking rate multiplier (2.0 = twice as fast).
        noise_scale: prior noise (the voice's default when None; Piper only).
        noise_w: duration noise (the voice's default when None; Piper only).
    """

    speed: float = 1.0
    noise_scale: float | None = None
    noise_w: float | None = None


class SpeechModel(abc.ABC):
    """What ``tts`` asks of a loaded voice (Piper, hibari, Kokoro): chunks, then audio.

    A subclass has a ``sample_rate`` (Hz), implements :meth:`chunks` and :meth:`_render`,
    and gets :meth:`synthesize`, the one call signature and seeding rule of every voice.
    """

    @abc.abstractmethod
    def chunks(self, text: str, sentence_index: int = 0) -> list[SpeechChunk]:
        """Phonemize one sentence of text into the chunks :meth:`synthesize` takes."""

    def synthesize(
        self,
        chunk: SpeechChunk,
        *,
        seed: int = 0,
        chunk_index: int = 0,
        speed: float = 1.0,
        noise_scale: float | None = None,
        noise_w: float | None = None,
    ) -> ChunkAudio:
        """Synthesize one chunk; the same (seed, chunk_index, chunk) gives the same samples.

        Args:
            chunk: phonemes from :meth:`chunks`.
            seed: non-negative seed of the item.
            chunk_index: position of the chunk in its item (gives each chunk its own noise).
            speed: speaking rate multiplier (2.0 = twice as fast).
            noise_scale: prior noise (the voice's default when None; Piper only).
            noise_w: duration noise (the voice's default when None; Piper only).

        Returns:
            ``(T,)`` float32 audio in [-1, 1] at the voice's ``sample_rate``, and samples per
            phoneme when the voice gives them.
        """
        rng = np.random.default_rng([seed, chunk_index])
        return self._render(chunk, rng, Delivery(speed, noise_scale, noise_w))

    @abc.abstractmethod
    def _render(self, chunk: SpeechChunk, rng: Generator, delivery: Delivery) -> ChunkAudio:
        """:meth:`synthesize` with the chunk's own generator (seeded ``[seed, chunk_index]``)."""
