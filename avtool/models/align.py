"""Align text words to the phoneme words a synthesizer actually spoke.

espeak-ng merges some function words ("on the" -> one phoneme word) and expands others
("2000" -> two words), so text words and phoneme words do not pair one to one. We pair
them by dynamic programming over short edit distances between each text word's own
pronunciation and the spoken phoneme words, allowing 1-3 text words per phoneme word and
1-3 phoneme words per text word.
"""

from __future__ import annotations

from collections.abc import Sequence

_MARKS = str.maketrans("", "", "ˈˌːˑ")
# (text words, phoneme words) consumed by one step of the alignment.
_MOVES = ((1, 1), (2, 1), (3, 1), (1, 2), (1, 3), (1, 0), (0, 1))
_BAND = 6


def _distance(a: str, b: str) -> float:
    """Levenshtein distance normalised by the longer length (0 same, 1 nothing shared)."""
    if a == b:
        return 0.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(a), len(b), 1)


def align_words(
    word_phonemes: Sequence[str], spoken: Sequence[str]
) -> list[tuple[int, int, int, int]]:
    """Pair text words with spoken phoneme words.

    Args:
        word_phonemes: each text word's pronunciation on its own.
        spoken: the phoneme words in the synthesized stream.

    Returns:
        Groups ``(w0, w1, s0, s1)``: text words ``w0:w1`` were spoken as ``spoken[s0:s1]``
        (an empty range on either side marks a word not spoken or a span without a word).
    """
    words = [w.translate(_MARKS) for w in word_phonemes]
    spans = [s.translate(_MARKS) for s in spoken]
    n, m = len(words), len(spans)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(max(0, i - _BAND * 3), min(m, i + _BAND) + 1):
            if cost[i][j] == inf:
                continue
            for a, b in _MOVES:
                if i + a > n or j + b > m:
                    continue
                if a and b:
                    step = _distance("".join(words[i : i + a]), "".join(spans[j : j + b]))
                    step += 0.05 * (a + b - 2)  # prefer one-to-one when it fits as well
                else:
                    step = 1.0
                if cost[i][j] + step < cost[i + a][j + b]:
                    cost[i + a][j + b] = cost[i][j] + step
                    back[i + a][j + b] = (a, b)
    groups = []
    i, j = n, m
    while (i, j) != (0, 0):
        move = back[i][j]
        if move is None:  # outside the band: give up on the remainder as one group
            groups.append((0, i, 0, j))
            break
        a, b = move
        groups.append((i - a, i, j - b, j))
        i, j = i - a, j - b
    return groups[::-1]
