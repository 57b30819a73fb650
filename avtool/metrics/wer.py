"""Word and character error rates (Levenshtein edits over normalised text)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Anything but letters, digits, whitespace and apostrophes is punctuation; `_` counts as `\w`.
_PUNCT = re.compile(r"[^\w\s']|_")
# Apostrophes that are quotes rather than part of a word ("'hello'", not "don't").
_QUOTE = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize_text(text: str) -> str:
    """Normalises text before scoring so that only the words count.

    Case-folds, turns punctuation (and quotes, but not in-word apostrophes as in "don't") into
    spaces, and collapses whitespace to single spaces.

    Args:
        text: Any text.

    Returns:
        The normalised text, e.g. ``"Lay blue, at X-4!"`` -> ``"lay blue at x 4"``.
    """
    text = _QUOTE.sub(" ", _PUNCT.sub(" ", text.casefold()))
    return " ".join(text.split())


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance: substitutions, insertions and deletions all cost 1."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diag, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (r != h))
    return row[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Counts word edits between two texts after `normalize_text`.

    Args:
        reference: The true transcript.
        hypothesis: The recognised transcript.

    Returns:
        ``(edits, reference_words)``: the minimum number of word substitutions, insertions and
        deletions turning the reference into the hypothesis, and the reference length in words.
    """
    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()
    return _edit_distance(ref, hyp), len(ref)


def character_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Counts character edits after `normalize_text` (single spaces between words count).

    Returns:
        ``(edits, reference_characters)``.
    """
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    return _edit_distance(ref, hyp), len(ref)


def _corpus_rate(references, hypotheses, count) -> float:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    edits = length = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        e, n = count(ref, hyp)
        edits, length = edits + e, length + n
    if length == 0:
        raise ValueError("the references are empty: the error rate is undefined")
    return edits / length


def word_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus-level word error rate: total word edits / total reference words.

    Long references weigh more than short ones (this is not a mean of per-sentence rates). An
    empty reference inside a corpus is allowed: its hypothesis words all count as insertions.

    Args:
        references: True transcripts, or one transcript.
        hypotheses: Recognised transcripts, paired with ``references``.

    Returns:
        The rate, >= 0 (it can exceed 1 when the hypotheses insert many words).

    Raises:
        ValueError: The two sequences differ in length, or all references are empty.
    """
    return _corpus_rate(references, hypotheses, word_errors)


def character_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus-level character error rate: as `word_error_rate`, over characters."""
    return _corpus_rate(references, hypotheses, character_errors)
