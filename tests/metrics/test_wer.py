"""Word and character error rates: edit counting, normalisation and corpus-level averaging."""

from __future__ import annotations

import pytest

from avtool.metrics.wer import (
    character_error_rate,
    character_errors,
    normalize_text,
    word_error_rate,
    word_errors,
)


def test_identical_strings_have_no_errors() -> None:
    assert word_errors("lay blue at x four now", "lay blue at x four now") == (0, 6)
    assert word_error_rate(["bin red"], ["bin red"]) == 0.0
    assert character_error_rate("bin red", "bin red") == 0.0


@pytest.mark.parametrize(
    ("hyp", "edits"),
    [
        ("lay blue at x four now", 0),
        ("lay green at x four now", 1),  # substitution
        ("lay blue at x four now please", 1),  # insertion
        ("lay blue x four now", 1),  # deletion
        ("blue at x four now lay", 2),  # a moved word is a deletion plus an insertion
        ("", 6),
        ("set white with p two soon", 6),
    ],
)
def test_word_edits(hyp: str, edits: int) -> None:
    assert word_errors("lay blue at x four now", hyp) == (edits, 6)


def test_normalisation_ignores_case_punctuation_and_spacing() -> None:
    assert normalize_text('  Lay BLUE, at X-4!\n"Now" ') == "lay blue at x 4 now"
    assert normalize_text("Don't 'quote' me_here") == "don't quote me here"
    assert word_errors("Lay blue, at X four now.", "lay  blue at x four NOW") == (0, 6)


def test_character_edits_count_single_spaces() -> None:
    assert character_errors("bin red", "bin bed") == (1, 7)
    assert character_errors("bin red", "binred") == (1, 7)
    assert character_errors("ab", "") == (2, 2)


def test_empty_reference() -> None:
    assert word_errors("", "") == (0, 0)
    assert word_errors("", "two words") == (2, 0)
    # Inside a corpus an empty reference contributes insertions only.
    assert word_error_rate(["", "a b"], ["x", "a b"]) == 0.5
    with pytest.raises(ValueError, match="empty"):
        word_error_rate([""], ["x"])
    with pytest.raises(ValueError, match="empty"):
        character_error_rate([], [])


def test_corpus_rate_weights_by_reference_length() -> None:
    refs = ["a b c d e f g h", "x y"]
    hyps = ["a b c d e f g h", "q"]  # 0/8 and 2/2: mean of rates would be 0.5
    assert word_error_rate(refs, hyps) == pytest.approx(2 / 10)
    assert character_error_rate(["abcd", "ef"], ["abcd", "xf"]) == pytest.approx(1 / 6)


def test_single_strings_and_mismatched_lengths() -> None:
    assert word_error_rate("a b c d", "a b c") == 0.25
    assert word_error_rate("a", "a b c") == 2.0  # insertions can push the rate above 1
    with pytest.raises(ValueError, match="2 references but 1"):
        word_error_rate(["a", "b"], ["a"])
