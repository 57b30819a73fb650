"""CTC decoding for LipNet: greedy, prefix beam search, and GRID-grammar-constrained search.

All decoders take ``(T, V)`` per-frame log-probabilities (index 0 = blank, see
:mod:`avtool.models.lipnet.model`). Word timings and confidences come from the best CTC
alignment of the decoded text (:func:`align_words`); the grammar decoder gets them from its own
search, which is the same Viterbi over a larger graph:

* :func:`greedy` — arg-max per frame, repeats merged, blanks dropped.
* :func:`beam_search` — CTC prefix beam search (Hannun et al., 2014), no language model.
* :func:`grammar_search` — token passing (Viterbi) over the six-slot GRID word graph
  (``command colour preposition letter digit adverb``): the output is always a GRID sentence.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avtool.metrics.grid import GRID_WORDS
from avtool.models.lipnet.model import ALPHABET, BLANK, decode_ids, encode_text

SPACE = ALPHABET.index(" ") + 1
NEG_INF = -1e30


@dataclass(frozen=True)
class WordTiming:
    """One decoded word.

    Attributes:
        word: the word.
        start, end: seconds from the start of the clip (``end`` exclusive).
        confidence: geometric mean, over the word's frames, of the probability the model gave
            the best alignment's label at each frame (0..1).
    """

    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Decoded:
    """A transcript with its words and the log-probability of its best alignment."""

    text: str
    words: tuple[WordTiming, ...]
    score: float


# --------------------------------------------------------------------------------------------
# Greedy and beam


def greedy_ids(log_probs: np.ndarray) -> list[int]:
    """Best path: arg-max per frame, repeats merged, blanks dropped.

    Args:
        log_probs: ``(T, V)`` per-frame log-probabilities.
    """
    best = np.asarray(log_probs).argmax(axis=-1)
    out, previous = [], BLANK
    for index in best.tolist():
        if index != previous and index != BLANK:
            out.append(index)
        previous = index
    return out


def greedy(log_probs: np.ndarray) -> str:
    """Greedy (best-path) transcript of ``(T, V)`` log-probabilities, spaces collapsed."""
    return " ".join(decode_ids(greedy_ids(log_probs)).split())


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b <= NEG_INF else a + math.log1p(math.exp(b - a))


def _add(
    beams: dict[tuple[int, ...], list[float]],
    prefix: tuple[int, ...],
    blank: float,
    nonblank: float,
) -> None:
    entry = beams.setdefault(prefix, [NEG_INF, NEG_INF])
    entry[0] = _logadd(entry[0], blank)
    entry[1] = _logadd(entry[1], nonblank)


def beam_search(log_probs: np.ndarray, beam: int = 16, prune: float = -12.0) -> str:
    """CTC prefix beam search without a language model.

    Sums over all alignments of each prefix (blank-ending and non-blank-ending mass kept
    apart), so it can beat greedy decoding where probability is spread over several paths.

    Args:
        log_probs: ``(T, V)`` log-probabilities.
        beam: prefixes kept per frame.
        prune: characters whose frame log-probability is below this are not tried.

    Returns:
        The most probable prefix as text, spaces collapsed.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    # prefix -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for t in range(lp.shape[0]):
        frame = lp[t]
        candidates = [c for c in np.flatnonzero(frame > prune).tolist() if c != BLANK]
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            _add(nxt, prefix, total + frame[BLANK], NEG_INF)
            last = prefix[-1] if prefix else None
            for c in candidates:
                if c == last:
                    # Repeat without a blank between merges; after a blank it is a new char.
                    _add(nxt, prefix, NEG_INF, p_nb + frame[c])
                    _add(nxt, (*prefix, c), NEG_INF, p_b + frame[c])
                else:
                    _add(nxt, (*prefix, c), NEG_INF, total + frame[c])
        ranked = sorted(nxt.items(), key=lambda kv: -_logadd(kv[1][0], kv[1][1]))[:beam]
        beams = {prefix: (v[0], v[1]) for prefix, v in ranked}
    best = max(beams.items(), key=lambda kv: _logadd(*kv[1]))[0]
    return " ".join(decode_ids(list(best)).split())


# --------------------------------------------------------------------------------------------
# Viterbi over label graphs (forced alignment and grammar search)


@dataclass
class _Graph:
    """A CTC label graph: per state its label, predecessors (besides itself) and word id."""

    labels: list[int]
    preds: list[list[int]]
    word_of: list[int]  # index into ``words``; -1 for blanks/spaces between words
    words: list[str]
    starts: list[int]
    finals: list[int]

    def add(self, label: int, preds: Sequence[int], word: int = -1) -> int:
        self.labels.append(label)
        self.preds.append(list(preds))
        self.word_of.append(word)
        return len(self.labels) - 1


def _add_word(graph: _Graph, word: str, entries: Sequence[int]) -> tuple[int, int]:
    """Append a word's CTC states (char, blank, char, blank, ...); returns (first, last) ids.

    The word's last two states (its last char and the blank after it) are its exits.
    """
    word_id = len(graph.words)
    graph.words.append(word)
    ids = encode_text(word)
    first = len(graph.labels)
    previous_char = previous_blank = -1
    for index, label in enumerate(ids):
        preds = list(entries) if index == 0 else [previous_blank]
        if index > 0 and label != ids[index - 1]:
            preds.append(previous_char)
        previous_char = graph.add(label, preds, word_id)
        previous_blank = graph.add(BLANK, [previous_char], word_id)
    return first, previous_blank


def _sentence_graph(slots: Sequence[Sequence[str]]) -> _Graph:
    """Graph of sentences with one word from each slot, words separated by a space.

    Between words: optional blanks, a space, optional blanks (the space may also be skipped,
    going through the blank that ends the previous word).
    """
    graph = _Graph([], [], [], [], [], [])
    lead = graph.add(BLANK, [])
    graph.starts.append(lead)
    entries = [lead]
    for slot_index, slot in enumerate(slots):
        exits: list[int] = []
        firsts = []
        for word in slot:
            first, last = _add_word(graph, word, entries)
            firsts.append(first)
            exits += [last - 1, last]  # last char, trailing blank
        if slot_index == 0:
            graph.starts += firsts
        if slot_index == len(slots) - 1:
            graph.finals += exits
            break
        space = graph.add(SPACE, exits)
        space_blank = graph.add(BLANK, [space])
        entries = [space, space_blank] + [e for e in exits[1::2]]
    return graph


def _viterbi(graph: _Graph, log_probs: np.ndarray) -> tuple[list[int], float]:
    """Best state sequence ``(T,)`` through ``graph`` and its log-probability."""
    lp = np.asarray(log_probs, dtype=np.float64)
    n_states, frames = len(graph.labels), lp.shape[0]
    width = 1 + max(len(p) for p in graph.preds)
    # Predecessor table (self first); padding points at an extra state fixed at -inf.
    table = np.full((n_states, width), n_states, dtype=np.int64)
    for state, preds in enumerate(graph.preds):
        table[state, : 1 + len(preds)] = [state, *preds]
    labels = np.array(graph.labels)
    score = np.full(n_states + 1, NEG_INF)
    score[graph.starts] = lp[0, labels[graph.starts]]
    back = np.zeros((frames, n_states), dtype=np.int64)
    for t in range(1, frames):
        candidates = score[table]  # (S, width)
        choice = candidates.argmax(axis=1)
        back[t] = table[np.arange(n_states), choice]
        score[:n_states] = candidates[np.arange(n_states), choice] + lp[t, labels]
    finals = np.array(graph.finals)
    end = int(finals[score[finals].argmax()])
    best = float(score[end])
    path = [end]
    for t in range(frames - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1], best


def _words_from_path(
    graph: _Graph, path: Sequence[int], log_probs: np.ndarray, fps: float
) -> tuple[WordTiming, ...]:
    lp = np.asarray(log_probs)
    spans: dict[int, list[int]] = {}
    for t, state in enumerate(path):
        word = graph.word_of[state]
        if word >= 0:
            spans.setdefault(word, []).append(t)
    out = []
    for word, frames in sorted(spans.items(), key=lambda kv: kv[1][0]):
        # The blanks after a word's last character are silence, not the word.
        while len(frames) > 1 and graph.labels[path[frames[-1]]] == BLANK:
            frames.pop()
        logp = [lp[t, graph.labels[path[t]]] for t in frames]
        out.append(
            WordTiming(
                graph.words[word], round(frames[0] / fps, 4), round((frames[-1] + 1) / fps, 4),
                round(float(np.exp(np.mean(logp))), 4),
            )
        )  # fmt: skip
    return tuple(out)


def align_words(log_probs: np.ndarray, text: str, fps: float = 25.0) -> Decoded:
    """Best CTC alignment of ``text``: per-word timings and confidences.

    Args:
        log_probs: ``(T, V)`` log-probabilities at ``fps`` frames per second.
        text: the transcript (characters outside the alphabet are dropped).
        fps: frame rate of ``log_probs``.

    Returns:
        The text with its words; an empty text, or one too long for the frames, gives no
        words and score ``-inf``.
    """
    words = [w for w in text.split() if encode_text(w)]
    frames = np.asarray(log_probs).shape[0]
    needed = sum(len(w) for w in words) + len(words) - 1
    if not words or frames < needed:
        return Decoded(" ".join(words), (), -math.inf)
    graph = _sentence_graph([[w] for w in words])
    path, score = _viterbi(graph, log_probs)
    if score <= NEG_INF / 2:  # repeated letters can need more frames than characters
        return Decoded(" ".join(words), (), -math.inf)
    return Decoded(" ".join(words), _words_from_path(graph, path, log_probs, fps), score)


def grammar_search(
    log_probs: np.ndarray, slots: Sequence[Sequence[str]] | None = None, fps: float = 25.0
) -> Decoded:
    """The best sentence of a slot grammar (default: GRID) by token passing over CTC.

    Every path through the graph spells one word per slot; the Viterbi search keeps, per
    state and frame, only the best token, so the result is the sentence with the most probable
    single alignment.

    Args:
        log_probs: ``(T, V)`` log-probabilities.
        slots: the words allowed in each position; None = :data:`avtool.metrics.grid.GRID_WORDS`.
        fps: frame rate of ``log_probs`` (for timings).

    Returns:
        The sentence, its words with timings/confidences, and its alignment log-probability
        (``-inf`` when the clip has too few frames for any sentence).
    """
    if slots is None:
        slots = list(GRID_WORDS.values())
    graph = _sentence_graph(slots)
    path, score = _viterbi(graph, log_probs)
    if score <= NEG_INF / 2:
        return Decoded("", (), -math.inf)
    words = _words_from_path(graph, path, log_probs, fps)
    return Decoded(" ".join(w.word for w in words), words, score)


#: Longest input decoded in one piece; longer ones are cut at silences (bounded memory).
SEGMENT_FRAMES = 750


def split_points(log_probs: np.ndarray, segment: int = SEGMENT_FRAMES) -> list[int]:
    """Frames where a long input is cut: the middle of the longest pause near every ``segment``.

    A pause is a run of frames whose best label is the blank or the space; the longest run in a
    window of half a segment around each target is a gap between words, not the blank between
    two letters of one word.

    Returns:
        Increasing cut frames (excluding 0 and T); empty when ``T <= 2 * segment``.
    """
    lp = np.asarray(log_probs)
    frames = lp.shape[0]
    pause = np.isin(lp.argmax(axis=-1), (BLANK, SPACE))
    cuts: list[int] = []
    target = segment
    while frames - target > segment:
        lo, hi = target - segment // 4, target + segment // 4
        best, best_len, run_start = target, 0, None
        for t in range(lo, hi + 1):
            if t < hi and pause[t]:
                run_start = t if run_start is None else run_start
            elif run_start is not None:
                if t - run_start > best_len:
                    best, best_len = (run_start + t) // 2, t - run_start
                run_start = None
        cuts.append(best)
        target = best + segment
    return cuts


def decode(
    log_probs: np.ndarray, method: str = "beam", *, beam: int = 16, fps: float = 25.0
) -> Decoded:
    """Decode with ``greedy``, ``beam`` or ``grid`` (grammar) and attach word timings.

    Inputs longer than ``2 * SEGMENT_FRAMES`` (free decoding only) are cut at confident blanks
    (:func:`split_points`) and the pieces decoded one after another, so memory stays bounded
    for hour-long videos; timings stay relative to the start of the input.

    Raises:
        ValueError: unknown method.
    """
    if method not in ("greedy", "beam", "grid"):
        raise ValueError(f"unknown CTC decoding {method!r}; use greedy, beam or grid")
    if method == "grid":
        return grammar_search(log_probs, fps=fps)
    cuts = split_points(log_probs)
    if cuts:
        bounds = [0, *cuts, len(log_probs)]
        parts = [
            decode(log_probs[a:b], method, beam=beam, fps=fps)
            for a, b in itertools.pairwise(bounds)
        ]
        words = tuple(
            WordTiming(w.word, round(w.start + a / fps, 4), round(w.end + a / fps, 4),
                       w.confidence)
            for a, part in zip(bounds, parts, strict=False)
            for w in part.words
        )  # fmt: skip
        text = " ".join(p.text for p in parts if p.text)
        return Decoded(text, words, sum(p.score for p in parts))
    text = greedy(log_probs) if method == "greedy" else beam_search(log_probs, beam=beam)
    aligned = align_words(log_probs, text, fps)
    return Decoded(text, aligned.words, aligned.score)
