"""The four-voice sixteenth-note grid: how chorales, MIDI files and the synthesiser meet.

A piece is a ``(4, T)`` integer grid, voices soprano, alto, tenor, bass, one column per
sixteenth note: a MIDI pitch starts a note, :data:`HOLD` continues the voice's previous note,
:data:`REST` is silence. The corpus (:mod:`avtool.datasets.chorales`), MIDI files
(:mod:`avtool.io.midi`) and the synthesiser (:mod:`avtool.io.synth`) all read this layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

import numpy as np

HOLD = -1  # the voice continues its previous note
REST = -2
VOICES = ("soprano", "alto", "tenor", "bass")
#: Inclusive MIDI ranges used by :meth:`Chorale.in_ranges` and :func:`augment`. Every kept
#: chorale fits them except one soprano line that dips to A3 (57).
VOICE_RANGES = MappingProxyType(
    {"soprano": (60, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (36, 64)}
)
STEPS_PER_QUARTER = 4  # sixteenth-note grid


def notes_to_row(notes: Iterable[tuple[int, int, int]], steps: int) -> np.ndarray:
    """Lay monophonic notes on a grid row.

    Args:
        notes: ``(onset, end, pitch)`` in steps (end exclusive) and MIDI numbers. Where two
            notes start on the same step the higher wins; a note is cut short by the next
            onset; notes of zero length or starting at/after ``steps`` are ignored.
        steps: row length T.

    Returns:
        ``(T,)`` int16: pitch at onsets, :data:`HOLD` while held, :data:`REST` elsewhere.
    """
    row = np.full(steps, REST, dtype=np.int16)
    by_onset: dict[int, tuple[int, int]] = {}
    for onset, end, pitch in notes:
        if end > onset and 0 <= onset < steps:
            kept = by_onset.get(onset)
            if kept is None or pitch > kept[1]:
                by_onset[onset] = (end, pitch)
    onsets = sorted(by_onset)
    for i, onset in enumerate(onsets):
        end, pitch = by_onset[onset]
        stop = min(end, steps, onsets[i + 1] if i + 1 < len(onsets) else steps)
        row[onset] = pitch
        row[onset + 1 : stop] = HOLD
    return row


def row_to_notes(row: np.ndarray) -> list[tuple[int, int, int]]:
    """The notes of a grid row, the inverse of :func:`notes_to_row`.

    Args:
        row: ``(T,)`` pitches / :data:`HOLD` / :data:`REST`. A :data:`HOLD` with no note to
            continue (at the start or after a rest) is read as a rest.

    Returns:
        ``(onset, end, pitch)`` tuples in steps (end exclusive), ordered by onset.
    """
    row = np.asarray(row)
    onsets = np.flatnonzero(row >= 0)
    # A note ends at the first column after its onset that is not a HOLD, or at the end.
    breaks = np.append(np.flatnonzero(row != HOLD), len(row))
    ends = breaks[np.searchsorted(breaks, onsets, side="right")]
    return [(int(o), int(e), int(row[o])) for o, e in zip(onsets, ends, strict=True)]
