"""CTC decoding: greedy, prefix beam search, GRID-grammar search, word timings."""

import itertools
import math

import numpy as np
import pytest

from avtool.metrics.grid import GRID_WORDS
from avtool.models.lipnet.ctc import (
    align_words,
    beam_search,
    decode,
    grammar_search,
    greedy,
)
from avtool.models.lipnet.model import VOCAB_SIZE, encode_text


def _peaky(text: str, frames: int = 75, start: int = 5, noise: float = 0.3, seed: int = 0):
    """Log-probs that spell ``text`` from frame ``start``: each char 1-2 frames, then a blank."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, noise, (frames, VOCAB_SIZE))
    labels = np.zeros(frames, int)
    t = start
    for i, c in enumerate(encode_text(text)):
        labels[t] = c
        if i % 3 == 0:
            labels[t + 1] = c
            t += 1
        t += 2  # a blank between characters
    logits[np.arange(frames), labels] += 6.0
    return logits - np.log(np.exp(logits).sum(1, keepdims=True)), labels


def test_greedy_and_beam_recover_the_spelled_text():
    log_probs, _ = _peaky("bin blue at f two now")
    assert greedy(log_probs) == "bin blue at f two now"
    assert beam_search(log_probs, beam=8) == "bin blue at f two now"


def test_beam_sums_alignments_where_greedy_cannot():
    # Two frames: best path is blank-blank (0.36) but "a" has a-a, a-blank, blank-a = 0.64.
    p = np.full((2, VOCAB_SIZE), 1e-9)
    a = encode_text("a")[0]
    p[:, 0], p[:, a] = 0.6, 0.4
    log_probs = np.log(p / p.sum(1, keepdims=True))
    assert greedy(log_probs) == ""
    assert beam_search(log_probs) == "a"


def test_grammar_search_always_returns_a_grid_sentence():
    # Spell an off-grammar sentence: "w" is not a GRID letter and "bim" is not a command.
    log_probs, _ = _peaky("bim blue at w two now", seed=1)
    free = greedy(log_probs)
    assert free == "bim blue at w two now"
    decoded = grammar_search(log_probs)
    words = decoded.text.split()
    assert len(words) == 6
    for word, slot in zip(words, GRID_WORDS.values(), strict=True):
        assert word in slot
    assert words[0] == "bin" and words[1:3] == ["blue", "at"] and words[4:] == ["two", "now"]
    assert math.isfinite(decoded.score)


def test_grammar_search_finds_the_spelled_grid_sentence_with_timings():
    log_probs, labels = _peaky("place green with q seven soon", seed=2)
    decoded = grammar_search(log_probs, fps=25.0)
    assert decoded.text == "place green with q seven soon"
    assert [w.word for w in decoded.words] == decoded.text.split()
    first_char = int(np.flatnonzero(labels)[0])
    assert decoded.words[0].start == pytest.approx(first_char / 25.0)
    ends = [w.end for w in decoded.words]
    assert ends == sorted(ends) and ends[-1] <= 75 / 25.0
    for word in decoded.words:
        assert word.start < word.end
        assert 0.5 < word.confidence <= 1.0


def test_align_words_timings_follow_the_frames():
    log_probs, labels = _peaky("set red by a one again", seed=3)
    aligned = align_words(log_probs, "set red by a one again")
    nonblank = np.flatnonzero(labels)
    assert aligned.words[0].start == pytest.approx(nonblank[0] / 25.0)
    assert aligned.words[-1].end == pytest.approx((nonblank[-1] + 1) / 25.0)
    # An impossible alignment (more characters than frames) gives no words.
    assert align_words(log_probs[:5], "set red by a one again").words == ()


def test_low_confidence_for_a_forced_wrong_text():
    log_probs, _ = _peaky("bin blue at f two now", seed=4)
    right = align_words(log_probs, "bin blue at f two now")
    wrong = align_words(log_probs, "lay green by z zero soon")
    assert right.score > wrong.score
    assert min(w.confidence for w in right.words) > max(w.confidence for w in wrong.words)


def test_decode_dispatch_and_too_short_input():
    log_probs, _ = _peaky("bin blue at f two now")
    for method in ("greedy", "beam", "grid"):
        assert decode(log_probs, method).text == "bin blue at f two now"
    with pytest.raises(ValueError, match="unknown CTC decoding"):
        decode(log_probs, "lm")
    assert grammar_search(log_probs[:3]).text == ""


def test_long_inputs_are_decoded_in_pieces_with_absolute_timings():
    from avtool.models.lipnet.ctc import SEGMENT_FRAMES, split_points

    sentence = "bin blue at f two now"
    piece, _ = _peaky(sentence + " ", frames=100, start=20)  # 100 frames: words, then a pause
    long = np.concatenate([piece] * 20)  # 2000 frames = 80 s
    cuts = split_points(long)
    bounds = [0, *cuts, len(long)]
    assert cuts and all(0 < b - a <= 2 * SEGMENT_FRAMES for a, b in itertools.pairwise(bounds))
    for method in ("greedy", "beam"):
        decoded = decode(long, method)
        assert decoded.text == " ".join([sentence] * 20)
        assert len(decoded.words) == 120
        starts = [w.start for w in decoded.words]
        assert starts == sorted(starts)
        assert decoded.words[6].start == pytest.approx(decoded.words[0].start + 4.0)
