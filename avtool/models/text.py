"""Text handling shared by the text-to-speech families: sentence splitting and chunk types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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
