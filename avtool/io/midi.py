"""Standard MIDI files to and from the four-voice sixteenth-note grid (:mod:`.voice_grid`).

Writing: a type-1 file at 480 ticks per quarter, a conductor track (tempo, time signature)
and one track per voice on its own channel (soprano on channel 1, ...). Writing is atomic.

Reading quantises any MIDI file to the sixteenth grid (onsets and ends rounded half up;
a note that rounds to nothing keeps one sixteenth) and assigns its notes to the four
voices:

* exactly four note-bearing streams (tracks, or channels of one track) map directly,
  ordered by mean pitch, highest first, so an SATB file comes back as S, A, T, B;
* a single monophonic stream (overlaps of up to one sixteenth, legato playing, allowed)
  becomes the soprano, the other voices rest;
* anything else (one polyphonic track, a piano's two hands, an orchestra) is pooled and
  split by pitch order at every step: one sounding note is the soprano, two are soprano
  and bass, three soprano, alto and bass, four or more the top three and the lowest.

The percussion channel (10) is ignored. Pickups cannot be told from a MIDI file, so the
grid starts at tick 0 and leading silence is kept as rests.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypedDict, Unpack

import numpy as np

from avtool.errors import InputError
from avtool.io.files import atomic_output
from avtool.io.voice_grid import (
    REST,
    STEPS_PER_QUARTER,
    VOICES,
    notes_to_row,
    row_to_notes,
    split_by_pitch,
)

if TYPE_CHECKING:  # mido is imported where it is used: `avtool --help` stays light
    import mido

logger = logging.getLogger("avtool.io.midi")

TICKS_PER_QUARTER = 480
TICKS_PER_STEP = TICKS_PER_QUARTER // STEPS_PER_QUARTER
DEFAULT_TEMPO_BPM = 120.0  # what the MIDI standard assumes without a tempo event
#: Longest grid :func:`read_midi` accepts (4096 bars of 4/4), so that one stray event at
#: a huge tick cannot allocate gigabytes.
MAX_STEPS = 1 << 16
#: Fermatas stretch the steps under them by this factor (a tempo change, so the notated
#: rhythm and bar lines in the file stay as they are).
FERMATA_STRETCH = 1.5
_DRUM_CHANNEL = 9

#: ``--instrument`` names -> General MIDI program numbers (0-based, as sent on the wire).
GM_PROGRAMS = MappingProxyType(
    {
        "piano": 0,
        "bright-piano": 1,
        "harpsichord": 6,
        "celesta": 8,
        "glockenspiel": 9,
        "music-box": 10,
        "vibraphone": 11,
        "marimba": 12,
        "drawbar-organ": 16,
        "organ": 19,  # GM "Church Organ": the chorales' own instrument
        "church-organ": 19,
        "reed-organ": 20,
        "accordion": 21,
        "harmonica": 22,
        "guitar": 24,
        "acoustic-bass": 32,
        "violin": 40,
        "viola": 41,
        "cello": 42,
        "contrabass": 43,
        "harp": 46,
        "strings": 48,
        "slow-strings": 49,
        "choir": 52,  # GM "Choir Aahs"
        "voice": 53,  # GM "Voice Oohs"
        "trumpet": 56,
        "trombone": 57,
        "tuba": 58,
        "horn": 60,
        "brass": 61,
        "soprano-sax": 64,
        "alto-sax": 65,
        "tenor-sax": 66,
        "oboe": 68,
        "english-horn": 69,
        "bassoon": 70,
        "clarinet": 71,
        "piccolo": 72,
        "flute": 73,
        "recorder": 74,
        "pan-flute": 75,
    }
)


def gm_program(instrument: str) -> int:
    """The General MIDI program for an ``--instrument`` name (case and ``_`` tolerated).

    Raises:
        InputError: an unknown name; the message lists the accepted ones.
    """
    key = instrument.strip().lower().replace("_", "-").replace(" ", "-")
    if key not in GM_PROGRAMS:
        raise InputError(f"unknown instrument {instrument!r}: use one of {', '.join(GM_PROGRAMS)}")
    return GM_PROGRAMS[key]


def parse_time_signature(text: str) -> tuple[int, int]:
    """``"3/4"`` -> ``(3, 4)``; the denominator must be a power of two up to 64.

    Raises:
        InputError: anything else.
    """
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{1,2})\s*", text or "")
    if match:
        num, den = int(match[1]), int(match[2])
        if num > 0 and den in (1, 2, 4, 8, 16, 32, 64):
            return num, den
    raise InputError(f"bad time signature {text!r}: use N/D with D a power of two, e.g. 3/4")


def _check_voices(voices: np.ndarray) -> np.ndarray:
    voices = np.asarray(voices)
    if voices.ndim != 2 or not 1 <= voices.shape[0] <= 15 or voices.dtype.kind not in "iu":
        raise ValueError(f"voices must be an integer (V, T) grid with V <= 15, got {voices.shape}")
    if ((voices < REST) | (voices > 127)).any():
        raise ValueError("voices may only hold MIDI pitches 0-127, HOLD (-1) and REST (-2)")
    return voices


class MidiLayout(TypedDict, total=False):
    """The keyword arguments of :func:`build_midi` that :func:`write_midi` passes on."""

    time_signature: str
    programs: Sequence[int]
    velocity: int
    fermata: np.ndarray | None
    tail_steps: int


def build_midi(
    voices: np.ndarray,
    tempo_bpm: float,
    *,
    time_signature: str = "4/4",
    programs: Sequence[int] = (0, 0, 0, 0),
    velocity: int = 80,
    fermata: np.ndarray | None = None,
    tail_steps: int = 0,
) -> mido.MidiFile:
    """A voice grid as a standard MIDI file (``mido.MidiFile``), not yet written.

    Args:
        voices: ``(V, T)`` integer grid, one row per voice (normally 4, S A T B), one column
            per sixteenth: MIDI pitch at an onset, ``HOLD`` (-1) or ``REST`` (-2).
        tempo_bpm: quarter notes per minute.
        time_signature: ``"N/D"``, written as the file's time signature.
        programs: General MIDI program (0-127) per voice, e.g. ``GM_PROGRAMS["organ"]``.
        velocity: note-on velocity 1-127 for every note.
        fermata: optional ``(T,)`` bool; each run of fermata steps is played
            :data:`FERMATA_STRETCH` times slower (a tempo change), lengthening the chord
            under it by half. The notes' written lengths, and so :func:`read_midi`, are
            unaffected.
        tail_steps: extra sixteenths of silence after the last step (renderers use it to
            keep the release of the final chord).

    Raises:
        ValueError: a malformed grid, tempo, velocity or program list.
        InputError: a malformed time signature.
    """
    import mido

    voices = _check_voices(voices)
    n_voices, steps = voices.shape
    if len(programs) != n_voices:
        raise ValueError(f"{len(programs)} programs for {n_voices} voices")
    if not tempo_bpm > 0:
        raise ValueError(f"tempo must be positive, got {tempo_bpm}")
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be 1-127, got {velocity}")
    num, den = parse_time_signature(time_signature)
    end_tick = (steps + tail_steps) * TICKS_PER_STEP

    conductor = [
        (0, mido.MetaMessage("track_name", name="avtool", time=0)),
        (0, mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0)),
        (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0)),
    ]
    if fermata is not None:
        fermata = np.asarray(fermata, dtype=bool)
        if fermata.shape != (steps,):
            raise ValueError(f"fermata must be ({steps},), got {fermata.shape}")
        edges = np.flatnonzero(np.diff(np.concatenate([[0], fermata.astype(np.int8), [0]])))
        slow = mido.bpm2tempo(tempo_bpm / FERMATA_STRETCH)
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            conductor.append((start * TICKS_PER_STEP, mido.MetaMessage("set_tempo", tempo=slow)))
            if stop < steps:
                tempo = mido.bpm2tempo(tempo_bpm)
                conductor.append(
                    (stop * TICKS_PER_STEP, mido.MetaMessage("set_tempo", tempo=tempo))
                )

    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(_track(conductor, end_tick))
    for v in range(n_voices):
        channel = v if v < _DRUM_CHANNEL else v + 1
        name = VOICES[v].capitalize() if n_voices == len(VOICES) else f"Voice {v + 1}"
        events = [
            (0, mido.MetaMessage("track_name", name=name)),
            (0, mido.Message("program_change", channel=channel, program=int(programs[v]))),
        ]
        for onset, end, pitch in row_to_notes(voices[v]):
            on = mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)
            off = mido.Message("note_off", channel=channel, note=pitch, velocity=0)
            events += [(onset * TICKS_PER_STEP, on), (end * TICKS_PER_STEP, off)]
        midi.tracks.append(_track(events, end_tick))
    return midi


def _track(events: list, end_tick: int):
    """Absolute-tick events -> a ``MidiTrack`` with delta times, note-offs first at a tick."""
    import mido

    # Offs before ons at the same tick, so a repeated pitch is released before it restarts.
    events = sorted(events, key=lambda e: (e[0], e[1].type != "note_off"))
    track = mido.MidiTrack()
    now = 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(end_tick - now, 0)))
    return track


def write_midi(
    path: str | os.PathLike[str],
    voices: np.ndarray,
    tempo_bpm: float,
    **layout: Unpack[MidiLayout],
) -> Path:
    """Write a voice grid as a standard MIDI file, atomically.

    Args:
        path: output ``.mid`` file.
        voices: ``(V, T)`` integer grid, as in :func:`build_midi`.
        tempo_bpm: quarter notes per minute.
        **layout: time signature, programs, velocity, fermata (see :func:`build_midi`).

    Returns:
        ``path``.

    Raises:
        ValueError: a malformed grid, tempo, velocity or program list.
        InputError: a malformed time signature.
        SetupError: the output folder is not writable.
    """
    path = Path(path)
    midi = build_midi(voices, tempo_bpm, **layout)
    with atomic_output(path) as tmp:
        midi.save(str(tmp))
    return path


def _open(path: Path):
    import mido

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        midi = mido.MidiFile(str(path))
    except Exception as exc:  # mido raises OSError, EOFError, KeyError, ... on bad bytes
        raise InputError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from exc
    if midi.type == 2:
        raise InputError(f"{path}: type-2 MIDI files (independent sequences) are not supported")
    if not midi.ticks_per_beat or midi.ticks_per_beat <= 0:
        raise InputError(f"{path}: SMPTE-timed MIDI files are not supported")
    return midi


def _read_events(midi, path: Path):
    """Notes per (track, channel) stream in ticks, and the first tempo and time signature."""
    streams: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    tempo: tuple[int, int] | None = None  # (tick, microseconds per quarter)
    signature: tuple[int, str] | None = None
    drums = 0
    for t, track in enumerate(midi.tracks):
        now = 0
        sounding: dict[tuple[int, int], list[int]] = defaultdict(list)
        for message in track:
            now += message.time
            kind = message.type
            if kind == "set_tempo" and (tempo is None or now < tempo[0]):
                tempo = (now, message.tempo)
            elif kind == "time_signature" and (signature is None or now < signature[0]):
                signature = (now, f"{message.numerator}/{message.denominator}")
            elif kind in ("note_on", "note_off"):
                if message.channel == _DRUM_CHANNEL:
                    drums += kind == "note_on" and message.velocity > 0
                    continue
                key = (message.channel, message.note)
                if kind == "note_on" and message.velocity > 0:
                    sounding[key].append(now)
                elif sounding[key]:  # first in, first out for a repeated pitch
                    streams[(t, message.channel)].append((sounding[key].pop(0), now, message.note))
        for (channel, note), onsets in sounding.items():  # never released: end with the track
            streams[(t, channel)].extend((onset, now, note) for onset in onsets)
    if drums:
        logger.info("%s: ignored %d notes on the percussion channel", path.name, drums)
    return streams, tempo, signature


def _quantise(notes: list[tuple[int, int, int]], ticks_per_quarter: int):
    out = []
    for on, off, pitch in notes:
        onset = int(np.floor(on * STEPS_PER_QUARTER / ticks_per_quarter + 0.5))
        end = int(np.floor(off * STEPS_PER_QUARTER / ticks_per_quarter + 0.5))
        out.append((onset, max(end, onset + 1), pitch))
    return out


def _polyphonic(notes: list[tuple[int, int, int]], steps: int) -> bool:
    # Notes longer than a step lose their last step first: one-sixteenth legato overlaps
    # are how a played melody looks after quantising, not a second voice.
    count = np.zeros(steps + 1, dtype=np.int32)
    for onset, end, _ in notes:
        stop = end - 1 if end - onset > 1 else end
        count[onset] += 1
        count[stop] -= 1
    return bool((np.cumsum(count) > 1).any())


def midi_tempo(path: str | os.PathLike[str]) -> float | None:
    """The first tempo of a MIDI file in quarter notes per minute; None when it sets none.

    Raises:
        InputError: the file is missing or unreadable.
    """
    import mido

    path = Path(path)
    _, tempo, _ = _read_events(_open(path), path)
    return float(mido.tempo2bpm(tempo[1])) if tempo else None


def read_midi(path: str | os.PathLike[str]) -> tuple[np.ndarray, float, str]:
    """Read a MIDI file onto the four-voice sixteenth-note grid.

    Args:
        path: a standard MIDI file (type 0 or 1).

    Returns:
        ``(voices, tempo_bpm, time_signature)``: ``(4, T)`` int16 grid (rows S, A, T, B;
        pitch at onsets, ``HOLD``, ``REST``), the first tempo in quarter notes per minute
        (120 if none) and the first time signature as ``"N/D"`` (``"4/4"`` if none).

    Raises:
        InputError: the file is missing, unreadable, holds no (pitched) notes, or is
            longer than :data:`MAX_STEPS` sixteenths.
    """
    import mido

    path = Path(path)
    midi = _open(path)
    raw, tempo, signature = _read_events(midi, path)
    streams = {k: _quantise(v, midi.ticks_per_beat) for k, v in sorted(raw.items()) if v}
    if not streams:
        raise InputError(f"{path}: no notes")
    steps = max(end for notes in streams.values() for _, end, _ in notes)
    if steps > MAX_STEPS:
        raise InputError(f"{path}: longer than {MAX_STEPS} sixteenth notes ({steps})")
    tempo_bpm = round(mido.tempo2bpm(tempo[1]), 3) if tempo else DEFAULT_TEMPO_BPM
    time_signature = signature[1] if signature else "4/4"

    pooled = [n for notes in streams.values() for n in notes]
    if len(streams) == len(VOICES):
        by_pitch = sorted(streams.values(), key=lambda ns: -np.mean([p for _, _, p in ns]))
        voices = np.stack([notes_to_row(ns, steps) for ns in by_pitch])
    elif len(streams) == 1 and not _polyphonic(pooled, steps):
        voices = np.full((len(VOICES), steps), REST, dtype=np.int16)
        voices[0] = notes_to_row(pooled, steps)
    else:
        voices = split_by_pitch(pooled, steps)
    logger.debug(
        "%s: %d notes in %d streams, %d steps", path.name, len(pooled), len(streams), steps
    )
    return voices, float(tempo_bpm), time_signature
