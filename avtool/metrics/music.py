"""Statistics of generated four-voice chorales against held-out ones.

Pieces are ``(4, T)`` voice grids as in :mod:`avtool.datasets.chorales` (rows S, A, T, B; MIDI pitch
at an onset, HOLD while held, REST while silent; one column per sixteenth note).

* **Pitch-class histogram distance**: note onsets counted by pitch class (relative to each
  piece's tonic when tonics are given), normalised; total variation and Jensen-Shannon
  divergence (base 2, so both lie in [0, 1]) between the generated and reference histograms.
* **Interval histogram distance**: melodic intervals between successive notes of each voice
  (a rest does not break the line), -12..+12 semitones with larger leaps in the end bins;
  one histogram per voice, distances averaged over the voices.
* **Voice-range violations**: notes outside the voice's inclusive range, per note.
* **Parallel fifths and octaves per bar**: for every pair of voices, consecutive moments at
  which either voice starts a note while both sound (a rest in either breaks the chain);
  both voices move in the same direction and the pair's interval is a perfect fifth before
  and after (modulo octaves), or an octave/unison before and after.
* **Valid fraction**: pieces that decode, have four voices with at least one note each, hold
  no note that was never started (HOLD at the start or after a rest), stay in MIDI 0..127
  and make a MIDI file (:func:`avtool.io.midi.build_midi`).

    stats = compare(generated, reference)      # lists of (4, T) arrays
    print(stats["pitch_class"]["js"], stats["parallels_per_bar"]["generated"]["total"])
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avtool.datasets.chorales import HOLD, REST, VOICE_RANGES, VOICES
from avtool.errors import InputError

__all__ = [
    "MAX_INTERVAL",
    "compare",
    "interval_histogram",
    "is_valid",
    "jensen_shannon",
    "parallel_motion",
    "perfect_parallel",
    "pitch_class_histogram",
    "range_violations",
    "sounding",
    "total_variation",
]

#: Melodic intervals beyond this many semitones share the end bins of the histogram.
MAX_INTERVAL = 12


def _grid(piece: Any) -> np.ndarray:
    voices = np.asarray(piece)
    if voices.ndim != 2 or voices.shape[0] != len(VOICES):
        raise InputError(f"expected a (4, steps) voice grid, got shape {voices.shape}")
    return voices.astype(np.int64)


def sounding(row: np.ndarray) -> np.ndarray:
    """``(T,)`` the pitch a voice sounds at each step, -1 where silent (HOLDs resolved)."""
    row = np.asarray(row, dtype=np.int64)
    index = np.where(row != HOLD, np.arange(row.size), -1)
    index = np.maximum.accumulate(index) if row.size else index
    held = np.where(index >= 0, row[np.maximum(index, 0)], REST)
    return np.where(held >= 0, held, -1)


def _onset_pitches(row: np.ndarray) -> np.ndarray:
    return row[row >= 0]


def pitch_class_histogram(pieces: Sequence[Any], tonics: Sequence[int] | None = None) -> np.ndarray:
    """``(12,)`` share of note onsets per pitch class, over all voices of all pieces.

    Args:
        pieces: ``(4, T)`` voice grids.
        tonics: each piece's tonic pitch class; counts are then relative to it (0 = tonic).
    """
    counts = np.zeros(12)
    for index, piece in enumerate(pieces):
        pitches = _onset_pitches(_grid(piece).reshape(-1))
        shift = tonics[index] if tonics is not None else 0
        counts += np.bincount((pitches - shift) % 12, minlength=12)
    return counts / max(counts.sum(), 1.0)


def interval_histogram(pieces: Sequence[Any], voice: int) -> np.ndarray:
    """``(2 * MAX_INTERVAL + 1,)`` share of each melodic interval (-12..+12) of one voice."""
    counts = np.zeros(2 * MAX_INTERVAL + 1)
    for piece in pieces:
        pitches = _onset_pitches(_grid(piece)[voice])
        steps = np.clip(np.diff(pitches), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
        counts += np.bincount(steps, minlength=counts.size)
    return counts / max(counts.sum(), 1.0)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Half the L1 distance of two distributions, in [0, 1]."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits, in [0, 1] (0 for identical distributions)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        used = a > 0
        return float(np.sum(a[used] * np.log2(a[used] / m[used])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def range_violations(
    piece: Any, ranges: Mapping[str, tuple[int, int]] = VOICE_RANGES
) -> tuple[int, int]:
    """``(notes outside their voice's inclusive range, notes)`` of one piece."""
    voices = _grid(piece)
    outside = total = 0
    for row, name in zip(voices, VOICES, strict=True):
        low, high = ranges[name]
        pitches = _onset_pitches(row)
        outside += int(np.sum((pitches < low) | (pitches > high)))
        total += pitches.size
    return outside, total


def perfect_parallel(upper_before: Any, lower_before: Any, upper: Any, lower: Any) -> Any:
    """Whether two voices move in parallel fifths or octaves (elementwise).

    Works on numbers, numpy arrays and torch tensors alike (broadcasting), so the sampler
    (:func:`avtool.models.music.generate.generate` with ``avoid_parallels``) uses the same
    rule as :func:`parallel_motion`.

    Args:
        upper_before: MIDI pitch of one voice at the earlier moment.
        lower_before: MIDI pitch of the other voice at the earlier moment.
        upper: the first voice's pitch at the later moment.
        lower: the second voice's pitch at the later moment.

    Returns:
        True where both voices move in the same direction and their interval is a perfect
        fifth before and after, or an octave/unison before and after (compound intervals
        count as simple ones).
    """
    before = abs(upper_before - lower_before) % 12
    after = abs(upper - lower) % 12
    same_direction = (upper - upper_before) * (lower - lower_before) > 0
    return same_direction & (before == after) & ((before == 0) | (before == 7))


def parallel_motion(piece: Any) -> tuple[int, int]:
    """``(parallel fifths, parallel octaves and unisons)`` between all voice pairs.

    See the module docstring for the rule.
    """
    voices = _grid(piece)
    sound = np.stack([sounding(row) for row in voices])
    onset = voices >= 0
    fifths = octaves = 0
    for a, b in itertools.combinations(range(voices.shape[0]), 2):
        both = (sound[a] >= 0) & (sound[b] >= 0)
        previous: tuple[int, int] | None = None
        for step in range(voices.shape[1]):
            if not both[step]:
                previous = None
                continue
            if not (onset[a, step] or onset[b, step]):
                continue
            current = (int(sound[a, step]), int(sound[b, step]))
            if previous is not None and perfect_parallel(*previous, *current):
                fifths += abs(current[0] - current[1]) % 12 == 7
                octaves += abs(current[0] - current[1]) % 12 == 0
            previous = current
    return fifths, octaves


def is_valid(piece: Any) -> bool:
    """Whether a piece is playable as four-voice MIDI (see the module docstring).

    Args:
        piece: a ``(4, T)`` voice grid (token sequences are decoded by the caller, with
            :func:`avtool.models.music.tokens.decode`: metrics sit below the models).
    """
    try:
        voices = _grid(np.asarray(piece))
    except InputError:
        return False
    if voices.shape[1] == 0:
        return False
    known = (voices == HOLD) | (voices == REST) | ((voices >= 0) & (voices <= 127))
    if not known.all() or not (voices >= 0).any(axis=1).all():
        return False
    previous = np.concatenate([np.full((voices.shape[0], 1), REST), voices[:, :-1]], axis=1)
    # HOLD continues a pitch or a HOLD; chained HOLDs then trace back to an onset.
    orphan = (voices == HOLD) & (previous == REST)
    if orphan.any():
        return False
    from avtool.io.midi import build_midi

    try:
        build_midi(voices, 90.0)
    except ValueError:
        return False
    return True


def _summary(
    pieces: Sequence[Any], ranges: Mapping[str, tuple[int, int]], steps_per_bar: int
) -> dict[str, Any]:
    valid = [is_valid(p) for p in pieces]
    usable = [_grid(p) for p, ok in zip(pieces, valid, strict=True) if ok]
    outside = notes = fifths = octaves = steps = 0
    for piece in usable:
        bad, total = range_violations(piece, ranges)
        outside, notes = outside + bad, notes + total
        f, o = parallel_motion(piece)
        fifths, octaves, steps = fifths + f, octaves + o, steps + piece.shape[1]
    bars = max(steps / steps_per_bar, 1e-9)
    return {
        "pieces": len(pieces),
        "valid_fraction": float(np.mean(valid)) if pieces else 0.0,
        "notes_per_bar": notes / bars if steps else 0.0,
        "range_violations_per_note": outside / max(notes, 1),
        "parallels_per_bar": {
            "fifths": fifths / bars if steps else 0.0,
            "octaves": octaves / bars if steps else 0.0,
            "total": (fifths + octaves) / bars if steps else 0.0,
        },
    }


def compare(
    generated: Sequence[Any],
    reference: Sequence[Any],
    *,
    generated_tonics: Sequence[int] | None = None,
    reference_tonics: Sequence[int] | None = None,
    ranges: Mapping[str, tuple[int, int]] = VOICE_RANGES,
    steps_per_bar: int = 16,
) -> dict[str, Any]:
    """All statistics of a set of generated pieces against a reference set.

    Args:
        generated: ``(4, T)`` voice grids; invalid ones (:func:`is_valid`) count only
            towards ``valid_fraction``.
        reference: ``(4, T)`` voice grids, e.g. the held-out chorales.
        generated_tonics: tonic pitch class per generated piece; with ``reference_tonics``,
            pitch classes are counted relative to the tonic (key-independent histograms).
        reference_tonics: tonic pitch class per reference piece.
        ranges: inclusive MIDI range per voice name.
        steps_per_bar: sixteenths per bar, for the per-bar rates.

    Returns:
        ``{"pitch_class": {"tv", "js"}, "interval": {"tv", "js", "per_voice"},
        "generated": summary, "reference": summary}``; a summary holds ``pieces``,
        ``valid_fraction``, ``notes_per_bar``, ``range_violations_per_note`` and
        ``parallels_per_bar`` (``fifths``, ``octaves``, ``total``).
    """
    relative = generated_tonics is not None and reference_tonics is not None
    valid = [is_valid(p) for p in generated]
    grids = [_grid(p) for p, ok in zip(generated, valid, strict=True) if ok]
    kept_tonics = None
    if relative:
        kept_tonics = [t for t, ok in zip(generated_tonics, valid, strict=True) if ok]
    pc_gen = pitch_class_histogram(grids, kept_tonics)
    pc_ref = pitch_class_histogram(reference, reference_tonics if relative else None)
    per_voice = {}
    for voice, name in enumerate(VOICES):
        p, q = interval_histogram(grids, voice), interval_histogram(reference, voice)
        per_voice[name] = {"tv": total_variation(p, q), "js": jensen_shannon(p, q)}
    return {
        "pitch_class": {
            "relative_to_tonic": relative,
            "tv": total_variation(pc_gen, pc_ref),
            "js": jensen_shannon(pc_gen, pc_ref),
        },
        "interval": {
            "tv": float(np.mean([v["tv"] for v in per_voice.values()])),
            "js": float(np.mean([v["js"] for v in per_voice.values()])),
            "per_voice": per_voice,
        },
        "generated": _summary(generated, ranges, steps_per_bar),
        "reference": _summary(list(reference), ranges, steps_per_bar),
    }
