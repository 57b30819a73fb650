"""The four-voice sixteenth-note grid: how chorales, MIDI files and the synthesiser meet.

A piece is a ``(4, T)`` integer grid, voices soprano, alto, tenor, bass, one column per
sixteenth note: a MIDI pitch starts a note, :data:`HOLD` continues the voice's previous note,
:data:`REST` is silence. The corpus (:mod:`avtool.datasets.chorales`), MIDI files
(:mod:`avtool.io.midi`) and the synthesiser (:mod:`avtool.io.synth`) all read this layout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from types import MappingProxyType

import numpy as np

logger = logging.getLogger(__name__)

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


def split_by_pitch(
    notes: Sequence[tuple[int, int, int]], steps: int, voices: int = len(VOICES)
) -> np.ndarray:
    """Pooled (polyphonic) notes -> a ``(V, T)`` grid by pitch order at each step.

    ``k <= V`` sounding notes fill the top ``k - 1`` voices and the lowest (four voices:
    S; S B; S A B; S A T B); with more, the top ``V - 1`` and the lowest are kept (one voice
    keeps the highest). A voice holds while the same note stays in its slot, and restarts
    the pitch when another note moves in.

    Args:
        notes: ``(onset, end, pitch)`` in steps (end exclusive) and MIDI numbers.
        steps: grid length T.
        voices: grid rows V, 1-4.

    Returns:
        ``(V, T)`` int16: pitch at onsets, :data:`HOLD` while held, :data:`REST` elsewhere.
    """
    grid = np.full((voices, steps), REST, np.int16)
    starts: dict[int, list[int]] = {}
    for i, (onset, _, _) in enumerate(notes):
        starts.setdefault(onset, []).append(i)
    active: list[int] = []
    previous = [-1] * voices  # note index each voice had at the previous step
    dropped: set[int] = set()
    for t in range(steps):
        active = [i for i in active if notes[i][1] > t] + starts.get(t, [])
        order = sorted(active, key=lambda i: (-notes[i][2], i))
        if len(order) > voices:
            keep = order[:1] if voices == 1 else [*order[: voices - 1], order[-1]]
            dropped.update(set(order) - set(keep))
            order = keep
        slots = [*range(len(order) - 1), voices - 1] if len(order) > 1 else [0] * len(order)
        current = [-1] * voices
        for slot, i in zip(slots, order, strict=True):
            current[slot] = i
        for v, i in enumerate(current):
            if i >= 0:
                grid[v, t] = HOLD if previous[v] == i else notes[i][2]
        previous = current
    if dropped:
        logger.info("more than %d notes at once: %d notes (partly) dropped", voices, len(dropped))
    return grid
