"""Chorale statistics: parallel fifths/octaves on hand-made examples, distances, validity."""

from __future__ import annotations

import numpy as np
import pytest

from avtool.datasets.chorales import HOLD, REST
from avtool.metrics import music
from avtool.models.music import tokens as mt


def chords(*columns: tuple[int, int, int, int], hold: int = 3) -> np.ndarray:
    """One chord per quarter note: each column (S, A, T, B) then ``hold`` HOLD steps."""
    voices = []
    for column in columns:
        block = np.full((4, 1 + hold), HOLD)
        block[:, 0] = column
        voices.append(block)
    return np.concatenate(voices, axis=1)


def test_parallel_fifths_between_upper_voices():
    # S C5 -> D5 over A F4 -> G4: a fifth moving up to a fifth. T and B stay put.
    piece = chords((72, 65, 57, 48), (74, 67, 57, 48))
    assert music.parallel_motion(piece) == (1, 0)


def test_parallel_octaves_between_outer_voices():
    # S and B both up a tone, two octaves apart (compound octave); inner voices still.
    piece = chords((72, 64, 55, 48), (74, 64, 55, 50))
    assert music.parallel_motion(piece) == (0, 1)


def test_parallel_unison_counts_as_octave_and_fifths_downward_count():
    piece = chords((72, 67, 60, 48), (71, 67, 60, 47), (69, 62, 60, 45))
    # S-B octaves twice (72/48 -> 71/47 -> 69/45), S-A fifths down (71/67 is a third: no),
    # A-T 67/60 -> 62/60 (T still): no.
    assert music.parallel_motion(piece) == (0, 2)
    unison = chords((72, 72, 55, 48), (74, 74, 55, 48))
    assert music.parallel_motion(unison) == (0, 1)


@pytest.mark.parametrize(
    "second",
    [
        (74, 62, 57, 48),  # contrary motion into a fifth (antiparallel): S up, A down
        (74, 67, 57, 48),  # direct/hidden fifth from a sixth: 72/64 -> 74/67
        (72, 64, 57, 48),  # the chord repeated: no motion
    ],
)
def test_motion_that_is_not_parallel(second):
    first = (72, 64, 57, 48) if second[1] in (67, 64) else (72, 65, 57, 48)
    assert music.parallel_motion(chords(first, second)) == (0, 0)


def test_held_note_and_rest_break_parallels():
    # A holds F4 while S moves C5 -> D5: only one voice moves.
    held = chords((72, 65, 57, 48), (74, HOLD, 57, 48))
    assert music.parallel_motion(held) == (0, 0)
    # A rest between the two fifths: no consecutive pair.
    rest = chords((72, 65, 57, 48), (REST, REST, 57, 48), (74, 67, 57, 48))
    assert music.parallel_motion(rest) == (0, 0)


def test_histogram_distances():
    pieces = [chords((72, 65, 57, 48), (74, 67, 59, 43), (76, 69, 60, 45))]
    pc = music.pitch_class_histogram(pieces)
    assert pc.shape == (12,) and pc.sum() == pytest.approx(1.0)
    assert music.total_variation(pc, pc) == 0.0
    assert music.jensen_shannon(pc, pc) == pytest.approx(0.0, abs=1e-12)
    for voice in range(4):
        h = music.interval_histogram(pieces, voice)
        assert h.shape == (2 * music.MAX_INTERVAL + 1,)
        assert music.total_variation(h, h) == 0.0
    p, q = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert music.total_variation(p, q) == pytest.approx(1.0)
    assert music.jensen_shannon(p, q) == pytest.approx(1.0)
    # Counting relative to the tonic makes a transposed copy identical.
    up = [p + 2 * (p >= 0) for p in pieces]
    assert (
        music.total_variation(music.pitch_class_histogram(pieces), music.pitch_class_histogram(up))
        > 0
    )
    relative = music.pitch_class_histogram(pieces, [0]), music.pitch_class_histogram(up, [2])
    assert music.total_variation(*relative) == pytest.approx(0.0)
    # Soprano intervals +2, +2: the bins of +2 hold everything.
    assert music.interval_histogram(pieces, 0)[music.MAX_INTERVAL + 2] == 1.0


def test_range_violations_and_validity():
    piece = chords((84, 65, 57, 48), (74, 67, 57, 30))
    assert music.range_violations(piece) == (2, 8)
    assert music.is_valid(piece)
    assert not music.is_valid(np.full((4, 4), HOLD))  # nothing ever started
    orphan = chords((72, 65, 57, 48), (74, REST, 57, 48))
    orphan[1, -1] = HOLD  # a HOLD right after the rest
    assert not music.is_valid(orphan)
    silent = chords((72, 65, 57, 48))
    silent[3] = REST
    assert not music.is_valid(silent)
    assert not music.is_valid(np.array([[200, HOLD]] * 4))
    tokens, _ = mt.sequence(piece, np.arange(8) % 16, np.zeros(8, bool), 0, "major")
    assert music.is_valid(mt.decode(tokens))
    assert not music.is_valid(tokens)  # a token sequence is not a voice grid


def test_compare_identical_sets():
    pieces = [chords((72, 65, 57, 48), (74, 67, 59, 43), (76, 69, 60, 45))]
    stats = music.compare(pieces, pieces, generated_tonics=[0], reference_tonics=[0])
    assert stats["pitch_class"]["tv"] == 0.0 and stats["pitch_class"]["relative_to_tonic"]
    assert stats["interval"]["tv"] == 0.0 and stats["interval"]["js"] == 0.0
    assert stats["generated"] == stats["reference"]
    assert stats["generated"]["valid_fraction"] == 1.0
    # S-A and S-B in fifths twice and once, A-B in octaves once, over 12/16 of a bar.
    assert music.parallel_motion(pieces[0]) == (3, 1)
    per_bar = stats["generated"]["parallels_per_bar"]
    assert per_bar["fifths"] == pytest.approx(3 / 0.75) and per_bar["total"] == pytest.approx(
        4 / 0.75
    )
    invalid = np.full((4, 4), HOLD)
    mixed = music.compare([*pieces, invalid], pieces)
    assert mixed["generated"]["valid_fraction"] == 0.5 and mixed["interval"]["tv"] == 0.0
