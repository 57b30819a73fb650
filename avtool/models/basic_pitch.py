"""Basic Pitch (Spotify, ICASSP 2022): note transcription of an audio prompt.

The model is the ONNX export shipped inside the ``basic-pitch`` package
(``basic_pitch/saved_models/icassp_2022/nmp.onnx``). The package's own inference code
needs TensorFlow, librosa, pretty_midi and mir_eval, so it is installed with
``pip install --no-deps basic-pitch`` and only its model file is used; windowing and note
extraction are reimplemented here with numpy. The package is found with
:func:`importlib.util.find_spec` and never imported: its ``__init__`` tries to import
TensorFlow, CoreML and TFLite.

Model: a fixed window of :data:`WINDOW_SAMPLES` mono samples at 22050 Hz in, three
activation maps out with one row per :data:`FFT_HOP` samples (row ``k`` of a window is
centred on its sample ``256 k``): ``note`` (88 piano keys, A0-C8: "a note sounds"),
``onset`` (88: "a note starts") and ``contour`` (264, third-semitone pitch; unused).

Windowing: as in basic-pitch, windows overlap by 30 frames and the 15 frames at either
edge of every window are dropped. Unlike basic-pitch, the hop between windows is a whole
number of frames (142 x 256 samples rather than 43844 - 30 x 256), so the kept frames
tile one uniform 256-sample grid and need no per-window time correction.

Note extraction follows basic-pitch: the onset strength is the onset map topped up with
sharp rises of the note map; walking the onsets from last to first, a note lasts while
its key stays above ``frame_threshold`` (gaps shorter than :data:`GAP_FRAMES` bridged),
and its activation is then used up so that earlier onsets cannot claim it. Optionally
(the "melodia trick", off by default) notes are also grown from the strongest activation
left over, which finds legato notes without an onset but adds spurious ones. Deliberate
differences, each fixing an artefact seen on sustained sounds:

* one onset per excursion of the strength above ``onset_threshold`` (at its top), and
  none closer than :data:`ONSET_SPACING` frames to a stronger one on the same key,
  where basic-pitch takes every local maximum: slow attacks (voice, strings) wobble and
  gave one note two onsets;
* a note uses up the keys either side only where they are weaker than it: basic-pitch
  clears them outright, which let the decaying previous note of a melody erase the next
  note a semitone away.

Measured on melodies from the built-in synthesiser (:mod:`avtool.io.synth`): flute,
strings and voice come out with few extra notes; on piano the model also hears the
decaying previous note restart with each new note (merged back by :func:`notes_to_grid`);
the built-in organ and brass have strong upper harmonics that it reports as notes one or
two octaves up. Those extra notes score a velocity of ≈ 0.3-0.65 against ≥ 0.7 for the
real ones, so ``min_velocity=0.5`` removes most of them. Notes repeated legato at one
pitch (no gap, soft attack) are often heard as one.

No tempo is estimated: :func:`notes_to_grid` quantises at the tempo it is given (the
CLI's ``--tempo``).
"""

from __future__ import annotations

import bisect
import importlib.util
import itertools
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avtool.datasets.chorales import REST, STEPS_PER_QUARTER, VOICES, notes_to_row
from avtool.errors import InputError, ModelError
from avtool.io.audio import iter_audio_blocks, resample, to_mono
from avtool.io.voice_grid import split_by_pitch

if TYPE_CHECKING:
    import onnxruntime  # imported by load(), when a session is made

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install --no-deps basic-pitch"
MODEL_RELPATH = Path("saved_models", "icassp_2022", "nmp.onnx")

# Values of basic_pitch.constants (copied: importing that module imports the package).
SAMPLE_RATE = 22050
FFT_HOP = 256
WINDOW_SAMPLES = 2 * SAMPLE_RATE - FFT_HOP  # 43844, the graph's fixed input length
WINDOW_FRAMES = 1 + WINDOW_SAMPLES // FFT_HOP  # 172 output rows per window
LOWEST_PITCH = 21  # MIDI number of the first of the 88 output keys (A0)
N_PITCHES = 88
FRAME_RATE = SAMPLE_RATE / FFT_HOP  # ≈ 86.13 frames per second

#: Edge frames dropped from every window (half on each side), as basic-pitch does.
OVERLAP_FRAMES = 30
KEEP_FRAMES = WINDOW_FRAMES - OVERLAP_FRAMES  # 142
HOP_SAMPLES = KEEP_FRAMES * FFT_HOP  # 36352
#: Windows per onnxruntime call: amortises the call overhead, keeps memory small (~3 MB).
BATCH_WINDOWS = 8
#: Frames (≈ 128 ms) a note may stay below the frame threshold and go on: vibrato and
#: consonants dip the activation without ending the note (basic-pitch's ``energy_tol``).
GAP_FRAMES = 11
#: Smallest distance in frames (≈ 93 ms) between two onsets on one key; repeated notes
#: up to sixteenths at 160 bpm stay apart.
ONSET_SPACING = 8
#: How long a note may ring on under the next one (release, room sound) before the two
#: are taken as separate voices by :func:`notes_to_grid`; one sixteenth is always allowed.
LEGATO_S = 0.35

_INPUT = "serving_default_input_2:0"
_NOTE_OUTPUT = "StatefulPartitionedCall:1"
_ONSET_OUTPUT = "StatefulPartitionedCall:2"


@dataclass(frozen=True)
class Note:
    """One transcribed note.

    Attributes:
        start_s: onset in seconds from the start of the audio.
        end_s: end in seconds (exclusive).
        pitch: MIDI note number, 21-108.
        velocity: mean note activation over the note, 0-1. It is the model's confidence
            rather than loudness: a melody played 30 dB softer scores the same.
    """

    start_s: float
    end_s: float
    pitch: int
    velocity: float


@dataclass(frozen=True)
class NoteOptions:
    """How notes are picked from the activations (:func:`notes_from_activations`).

    Attributes:
        onset_threshold: onset strength that starts a note, 0-1; raise it against
            spurious notes, lower it for soft attacks.
        frame_threshold: note activation below which a note ends, 0-1.
        min_note_ms: shortest note kept, in milliseconds (58 ms ≈ 5 frames).
        min_pitch: lowest MIDI pitch reported (inclusive); None for A0 (21).
        max_pitch: highest MIDI pitch reported (inclusive); None for C8 (108).
        min_velocity: drop notes whose mean activation is lower, 0-1. 0 keeps all, as
            basic-pitch does; 0.5 removes the model's harmonic "ghost" notes and the few
            notes it hears in noise, at the risk of losing uncertain real ones.
        melodia_trick: also report notes found without an onset (legato; noisier).

    Raises:
        ValueError: a threshold outside (0, 1), a velocity outside [0, 1), a negative
            length, or a pitch range that keeps none of the 88 keys.
    """

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_ms: float = 58
    min_pitch: int | None = None
    max_pitch: int | None = None
    min_velocity: float = 0.0
    melodia_trick: bool = False

    def __post_init__(self) -> None:
        for name in ("onset_threshold", "frame_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not 0 <= self.min_velocity < 1 or self.min_note_ms < 0:
            raise ValueError(
                f"bad min_velocity {self.min_velocity} or min_note_ms {self.min_note_ms}"
            )
        lo, hi = self.keys
        if lo >= hi:
            raise ValueError(
                f"no pitch is both >= {self.min_pitch} and <= {self.max_pitch} (MIDI 21-108)"
            )

    @property
    def keys(self) -> tuple[int, int]:
        """The output keys kept, as a half-open range ``lo:hi`` of the 88 (0 = A0)."""
        lo = 0 if self.min_pitch is None else min(max(self.min_pitch - LOWEST_PITCH, 0), N_PITCHES)
        hi = (
            N_PITCHES
            if self.max_pitch is None
            else min(max(self.max_pitch - LOWEST_PITCH + 1, 0), N_PITCHES)
        )
        return lo, hi


# --- the model ------------------------------------------------------------------------------


def model_path() -> Path:
    """The ``nmp.onnx`` file of the installed ``basic-pitch`` package.

    Raises:
        ModelError: the package (or its ONNX file) is not installed; the message says how
            to install it.
    """
    # find_spec on a top-level name locates the package without running its __init__.
    spec = importlib.util.find_spec("basic_pitch")
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / MODEL_RELPATH
        if path.is_file():
            return path
    raise ModelError(f"the basic-pitch model is not installed: run `{INSTALL_HINT}`")


def load(device: str = "cpu") -> onnxruntime.InferenceSession:
    """An onnxruntime session over the bundled model.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (onnxruntime's CUDA provider, CPU as fallback).

    Raises:
        ModelError: the model is missing, cannot be loaded, or is not the expected graph.
    """
    import onnxruntime as ort

    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    path = model_path()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CUDAExecutionProvider"] if device == "cuda" else []
    try:
        session = ort.InferenceSession(
            str(path), options, providers=[*providers, "CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{path}: cannot load the basic-pitch model ({exc})") from exc
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if _INPUT not in inputs or not {_NOTE_OUTPUT, _ONSET_OUTPUT} <= outputs:
        raise ModelError(f"{path}: not the basic-pitch icassp_2022 graph")
    return session


# --- activations ----------------------------------------------------------------------------


def frame_count(samples: int) -> int:
    """Frames for ``samples`` of 22050 Hz audio: one per hop starting inside the audio."""
    return 0 if samples <= 0 else (samples - 1) // FFT_HOP + 1


def _windows(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """22050 Hz mono blocks of any size -> ``(WINDOW_SAMPLES,)`` model windows.

    Window ``w`` starts at audio sample ``w * HOP_SAMPLES - pad`` with
    ``pad = OVERLAP_FRAMES / 2 * FFT_HOP``, so the frames it keeps are global frames
    ``w * KEEP_FRAMES ... + KEEP_FRAMES``. Windows are made until every frame of the audio
    is covered; the last ones are zero-padded.
    """
    pad = OVERLAP_FRAMES // 2 * FFT_HOP
    buffer = np.zeros(pad, np.float32)
    total = made = 0
    for block in blocks:
        total += len(block)
        buffer = np.concatenate([buffer, np.asarray(block, np.float32)])
        while len(buffer) >= WINDOW_SAMPLES:
            yield buffer[:WINDOW_SAMPLES]
            buffer = buffer[HOP_SAMPLES:]
            made += 1
    while made * KEEP_FRAMES < frame_count(total):
        yield np.pad(buffer[:WINDOW_SAMPLES], (0, max(WINDOW_SAMPLES - len(buffer), 0)))
        buffer = buffer[HOP_SAMPLES:]
        made += 1


def activations(session, blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over audio given block by block.

    Args:
        session: from :func:`load`.
        blocks: ``(T_i,)`` float32 mono chunks at 22050 Hz that concatenate to the audio.

    Returns:
        ``(note, onset)``, each ``(N, 88)`` float32 in [0, 1]: row ``i`` is centred on
        sample ``256 i`` (``i / FRAME_RATE`` seconds), column ``k`` is MIDI pitch
        ``21 + k``; ``N = frame_count(total samples)``. Beyond the outputs (≈ 60 kB per
        second of audio) memory stays at one batch of windows.
    """
    keep = slice(OVERLAP_FRAMES // 2, OVERLAP_FRAMES // 2 + KEEP_FRAMES)
    notes: list[np.ndarray] = []
    onsets: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    total = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal total
        for block in blocks:
            total += len(block)
            yield block

    def run() -> None:
        x = np.stack(batch)[:, :, None]  # (B, WINDOW_SAMPLES, 1)
        note, onset = session.run([_NOTE_OUTPUT, _ONSET_OUTPUT], {_INPUT: x})
        notes.extend(note[:, keep])
        onsets.extend(onset[:, keep])
        batch.clear()

    for window in _windows(counted()):
        batch.append(window)
        if len(batch) == BATCH_WINDOWS:
            run()
    if batch:
        run()
    n = frame_count(total)
    if n == 0:
        return np.zeros((0, N_PITCHES), np.float32), np.zeros((0, N_PITCHES), np.float32)
    return np.concatenate(notes)[:n], np.concatenate(onsets)[:n]


# --- note extraction ------------------------------------------------------------------------


def _onset_strength(onset: np.ndarray, note: np.ndarray) -> np.ndarray:
    """``(N, P)``: the onset map, topped up with sharp rises of the note map.

    A re-attacked note that the onset head misses still shows as a jump in the note map.
    """
    # The rise must hold over both one and two frames, so a slow swell does not count.
    rise = np.zeros_like(note)
    rise[2:] = np.minimum(note[2:] - note[1:-1], note[2:] - note[:-2])
    np.maximum(rise, 0, out=rise)
    top = float(rise.max()) if rise.size else 0.0
    if top > 0:
        rise *= float(onset.max()) / top  # on the onset map's scale
    return np.maximum(onset, rise)


def _onsets(strength: np.ndarray, threshold: float, spacing: int) -> list[tuple[int, int]]:
    """Onsets: the top of each excursion of ``strength`` above ``threshold``.

    Args:
        strength: ``(N, P)`` onset strength.
        threshold: level an onset must reach.
        spacing: smallest distance in frames between two onsets on one key; the stronger
            one is kept.

    Returns:
        ``(frame, key)`` pairs sorted by frame, then key.
    """
    n, keys = strength.shape
    # Key-major, with a quiet frame after each key so that no excursion spans two keys.
    padded = np.zeros((keys, n + 1), strength.dtype)
    padded[:, :n] = strength.T
    values = padded.ravel()
    above = values >= threshold
    run = np.cumsum(above & ~np.concatenate([[False], above[:-1]]))
    idx = np.flatnonzero(above)
    by_strength = idx[np.lexsort((idx, -values[idx]))]  # strongest first, then earliest
    tops = by_strength[np.unique(run[by_strength], return_index=True)[1]]
    tops = tops[np.lexsort((tops, -values[tops]))]
    kept: dict[int, list[int]] = {}
    for flat in tops.tolist():
        key, frame = divmod(flat, n + 1)
        frames = kept.setdefault(key, [])
        i = bisect.bisect_left(frames, frame)
        near = frames[max(i - 1, 0) : i + 1]
        if all(abs(frame - other) >= spacing for other in near):
            frames.insert(i, frame)
    return sorted((frame, key) for key, frames in kept.items() for frame in frames)


def _active_span(values: np.ndarray, threshold: float, patience: int) -> int:
    """How far activity reaches into ``values`` before ``patience`` quiet frames in a row.

    Args:
        values: ``(L,)`` activations, starting just after a frame known to be active.
        threshold: activity level.
        patience: consecutive frames below ``threshold`` that end the activity.

    Returns:
        Index after the last frame ``>= threshold`` that comes before the first run of
        ``patience`` quiet frames (0 when activity does not go on at once).
    """
    last = 0  # index after the last active frame seen
    pos, chunk = 0, 64
    # Growing chunks: notes are short, so do not compare against the rest of the file.
    while pos < len(values):
        hits = np.flatnonzero(values[pos : pos + chunk] >= threshold) + pos
        marks = np.concatenate([[last - 1], hits])
        gaps = np.flatnonzero(np.diff(marks) - 1 >= patience)
        if gaps.size:
            return int(marks[gaps[0]]) + 1
        if hits.size:
            last = int(hits[-1]) + 1
        pos += chunk
        if min(pos, len(values)) - last >= patience:
            return last
        chunk *= 2
    return last


def _use_up(remaining: np.ndarray, note: np.ndarray, start: int, end: int, key: int) -> None:
    """Clear a note's frames on its key, and on the keys either side where weaker.

    The model smears a note into the neighbouring keys; a neighbour stronger than the note
    is a note of its own (basic-pitch clears the neighbours outright).
    """
    own = note[start:end, key]
    remaining[start:end, key] = 0
    for side in (key - 1, key + 1):
        if 0 <= side < remaining.shape[1]:
            column = remaining[start:end, side]
            column[column <= own] = 0


def extract_notes(
    note: np.ndarray,
    onset: np.ndarray,
    *,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.3,
    min_frames: int = 5,
    melodia_trick: bool = False,
) -> list[tuple[int, int, int, float]]:
    """Model activations -> notes counted in frames.

    Args:
        note: ``(N, 88)`` note activations from :func:`activations` (pitch limits are
            applied by zeroing columns beforehand).
        onset: ``(N, 88)`` onset activations.
        onset_threshold: onset strength that starts a note, 0-1.
        frame_threshold: note activation below which a note is ending, 0-1.
        min_frames: shortest note kept, in frames.
        melodia_trick: also grow notes without an onset from the leftover activation.

    Returns:
        ``(start, end, pitch, velocity)``: frames (end exclusive), MIDI number and mean
        note activation; unordered.
    """
    n = note.shape[0]
    if n < 3:
        return []
    remaining = note.astype(np.float32)
    strength = _onset_strength(onset, note)
    out: list[tuple[int, int, int, float]] = []
    # Latest onsets first, so a re-attack claims its frames and the earlier note ends there.
    for t, p in reversed(_onsets(strength, onset_threshold, max(min_frames, ONSET_SPACING))):
        if t >= n - 1:
            continue
        end = t + 1 + _active_span(remaining[t + 1 : n - 1, p], frame_threshold, GAP_FRAMES)
        if end - t < min_frames:
            continue
        _use_up(remaining, note, t, end, p)
        out.append((t, end, p + LOWEST_PITCH, float(note[t:end, p].mean())))
    if melodia_trick:
        out += _melodia(note, remaining, frame_threshold, min_frames)
    return out


def _melodia(
    note: np.ndarray, remaining: np.ndarray, threshold: float, min_frames: int
) -> list[tuple[int, int, int, float]]:
    """Grow notes both ways in time from the strongest leftover activation."""
    n = note.shape[0]
    flat = np.flatnonzero(remaining > threshold)
    # Cells are only ever cleared, so one pass in a pre-sorted order visits them exactly
    # as re-taking the maximum after every note would.
    order = flat[np.argsort(-remaining.ravel()[flat], kind="stable")]
    out = []
    for t, p in zip(*np.unravel_index(order, remaining.shape), strict=True):
        t, p = int(t), int(p)
        if remaining[t, p] <= threshold:
            continue
        forward = _active_span(remaining[t + 1 : n - 1, p], threshold, GAP_FRAMES)
        backward = _active_span(remaining[t - 1 : 0 : -1, p], threshold, GAP_FRAMES)
        start, end = t - backward, t + 1 + forward
        # The quiet frames looked at on either side are used up too, as in basic-pitch.
        _use_up(remaining, note, max(start - GAP_FRAMES, 1), end + GAP_FRAMES, p)
        if end - start >= min_frames:
            out.append((start, end, p + LOWEST_PITCH, float(note[start:end, p].mean())))
    return out


def notes_from_activations(
    note: np.ndarray, onset: np.ndarray, options: NoteOptions = NoteOptions()
) -> list[Note]:
    """:func:`activations` output -> notes sorted by onset, then pitch.

    Args:
        note: ``(N, 88)`` note activations, one row per :data:`FFT_HOP` samples.
        onset: ``(N, 88)`` onset activations.
        options: how notes are picked.

    Returns:
        Notes sorted by onset, then pitch.
    """
    lo, hi = options.keys
    if lo > 0 or hi < N_PITCHES:
        # Cleared before extraction (as basic-pitch does), so out-of-range keys cannot
        # start notes nor feed the onset strength's scaling.
        note, onset = note.copy(), onset.copy()
        for m in (note, onset):
            m[:, :lo] = 0
            m[:, hi:] = 0
    found = extract_notes(
        note,
        onset,
        onset_threshold=options.onset_threshold,
        frame_threshold=options.frame_threshold,
        min_frames=max(round(options.min_note_ms / 1000 * FRAME_RATE), 1),
        melodia_trick=options.melodia_trick,
    )
    notes = [
        Note(start / FRAME_RATE, end / FRAME_RATE, pitch, velocity)
        for start, end, pitch, velocity in found
        if velocity >= options.min_velocity
    ]
    return sorted(notes, key=lambda x: (x.start_s, x.pitch))


def transcribe(
    audio: np.ndarray,
    sample_rate: int,
    options: NoteOptions = NoteOptions(),
    *,
    session: onnxruntime.InferenceSession | None = None,
) -> list[Note]:
    """Transcribe audio into notes.

    Args:
        audio: ``(T,)`` or ``(C, T)`` samples in [-1, 1] at ``sample_rate``; downmixed and
            resampled to 22050 Hz. Any length: the model sees 2-second windows in batches.
        sample_rate: rate of ``audio`` in Hz.
        options: how notes are picked (thresholds, shortest note, pitch range).
        session: from :func:`load`; None loads one (about a second).

    Returns:
        Notes sorted by onset, then pitch; empty for silence.

    Raises:
        ModelError: ``session`` is None and the model is not installed.
        ValueError: a malformed array or rate.
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be shaped (T,) or (C, T), got {audio.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    audio = resample(to_mono(audio), sample_rate, SAMPLE_RATE)
    note, onset = activations(session if session is not None else load(), [audio])
    return notes_from_activations(note, onset, options)


# --- notes -> the voice grid ----------------------------------------------------------------

# Notes on the grid are (onset, end, pitch) tuples in sixteenth steps, end exclusive.
StepNote = tuple[int, int, int]


def _quantise(notes: Iterable[Note], step_s: float, offset_s: float) -> list[StepNote]:
    """Round onsets and ends to steps, half up, with step 0 at ``offset_s``.

    Every note keeps at least one step; notes over before step 0 are dropped. A key cannot
    sound twice at once, so a re-attack ends the note before it on the same pitch, and two
    notes starting on one step at one pitch become one.
    """
    by_pitch: dict[int, dict[int, int]] = {}
    for note in notes:
        onset = max(int(np.floor((note.start_s - offset_s) / step_s + 0.5)), 0)
        end = int(np.floor((note.end_s - offset_s) / step_s + 0.5))
        if end <= 0:
            continue  # over before step 0
        starts = by_pitch.setdefault(note.pitch, {})
        starts[onset] = max(starts.get(onset, 0), end, onset + 1)
    out = []
    for pitch, starts in by_pitch.items():
        onsets = sorted(starts)
        for onset, following in itertools.zip_longest(onsets, onsets[1:]):
            end = starts[onset] if following is None else min(starts[onset], following)
            out.append((onset, end, pitch))
    return sorted(out)


def _merge_retriggers(notes: Sequence[StepNote], tolerance: int) -> list[StepNote]:
    """Merge back short notes that restart a pitch just as it ends and another note starts.

    The model often hears a fresh onset on the decaying previous note when the next note
    starts. A note that does so and lasts at most ``tolerance`` steps is taken for that
    release (a voice that really repeats its note that briefly while another voice moves
    is merged too: the rarer case).
    """
    starting = Counter(onset for onset, _, _ in notes)
    ending = {(end, pitch): i for i, (_, end, pitch) in enumerate(notes)}
    merged = list(notes)
    gone: set[int] = set()
    for i, (onset, end, pitch) in enumerate(notes):  # by onset, so chains merge in order
        j = ending.get((onset, pitch))
        if j is not None and starting[onset] > 1 and end - onset <= tolerance:
            merged[j] = (merged[j][0], end, pitch)
            ending[(end, pitch)] = j
            gone.add(i)
    return [n for i, n in enumerate(merged) if i not in gone]


def _monophonic(notes: Sequence[StepNote], tolerance: int) -> bool:
    """Whether onset-sorted notes make one line.

    No two may start together, and none may ring on more than ``tolerance`` steps past
    the next onset.
    """
    return all(b[0] != a[0] and a[1] - b[0] <= tolerance for a, b in itertools.pairwise(notes))


def _cut_tails(notes: Sequence[StepNote], tolerance: int) -> list[StepNote]:
    """Cut release tails: end a note at the last onset it overlaps when it is near.

    A note that rings on at most ``tolerance`` steps past another note's onset is
    releasing under the next chord, not held; left alone it would take a voice of its
    own there.
    """
    onsets = np.unique([onset for onset, _, _ in notes])
    out = []
    for onset, end, pitch in notes:
        inside = onsets[(onsets > onset) & (onsets < end)]
        if inside.size and end - inside[-1] <= tolerance:
            end = int(inside[-1])
        out.append((onset, end, pitch))
    return out


def notes_to_grid(
    notes: Sequence[Note],
    tempo_bpm: float,
    voices: int = len(VOICES),
    *,
    offset_s: float | None = None,
) -> np.ndarray:
    """Quantise notes to the sixteenth-note grid and assign them to voices.

    Onsets and ends are rounded to the nearest sixteenth at ``tempo_bpm`` (every note
    keeps at least one). Short notes that merely restart the pitch of a note ending just
    as another note starts (release artefacts) are merged back first. Then:

    * a monophonic line (no two notes start on one step, none rings on more than
      :data:`LEGATO_S`, or one sixteenth, past the next onset) becomes the top voice,
      each note cut at the next onset; the other voices rest;
    * anything else is split by pitch order at every step, highest to the soprano,
      lowest to the bass (:func:`avtool.io.midi.read_midi`'s rule for a polyphonic
      track), after cutting release tails that overlap the next onset by no more than
      that tolerance.

    Args:
        notes: from :func:`transcribe`.
        tempo_bpm: quarter notes per minute of the performance (no tempo is estimated).
        voices: rows V of the grid, 1-4 (4 = S A T B).
        offset_s: time in seconds of step 0; None puts the first onset there, so silence
            before the first note (a recording's lead-in) does not become rests.

    Returns:
        ``(V, T)`` int16: MIDI pitch at onsets, ``HOLD`` (-1) while held, ``REST`` (-2);
        T reaches the last note's (rounded) end; ``(V, 0)`` when there are no notes.

    Raises:
        ValueError: a non-positive tempo or a voice count outside 1-4.
    """
    if not tempo_bpm > 0:
        raise ValueError(f"tempo must be positive, got {tempo_bpm}")
    if not 1 <= voices <= len(VOICES):
        raise ValueError(f"voices must be 1-{len(VOICES)}, got {voices}")
    if not notes:
        return np.full((voices, 0), REST, np.int16)
    step_s = 60.0 / tempo_bpm / STEPS_PER_QUARTER
    if offset_s is None:
        offset_s = min(n.start_s for n in notes)
    tolerance = max(1, round(LEGATO_S / step_s))
    steps_notes = _merge_retriggers(_quantise(notes, step_s, offset_s), tolerance)
    steps = max(end for _, end, _ in steps_notes)
    if _monophonic(steps_notes, tolerance):
        grid = np.full((voices, steps), REST, np.int16)
        grid[0] = notes_to_row(steps_notes, steps)
        return grid
    return split_by_pitch(_cut_tails(steps_notes, tolerance), steps, voices)


def transcribe_file(
    path: str | os.PathLike[str],
    tempo_bpm: float,
    *,
    voices: int = len(VOICES),
    options: NoteOptions = NoteOptions(),
    session: onnxruntime.InferenceSession | None = None,
) -> np.ndarray:
    """Transcribe an audio file onto the voice grid.

    The file is decoded and resampled block by block, so memory stays small for long
    recordings (the activations take ≈ 60 kB per second).

    Args:
        path: any file :func:`avtool.io.audio.load_audio` reads.
        tempo_bpm: quarter notes per minute of the performance.
        voices: grid rows, 1-4.
        options: how notes are picked, as in :func:`transcribe`.
        session: from :func:`load`; None loads one.

    Returns:
        ``(V, T)`` int16 grid, see :func:`notes_to_grid`.

    Raises:
        InputError: the file is missing or undecodable, or no note was detected.
        ModelError: ``session`` is None and the model is not installed.
    """
    path = Path(path)
    blocks = iter_audio_blocks(path, HOP_SAMPLES, sample_rate=SAMPLE_RATE, mono=True)
    note, onset = activations(session if session is not None else load(), blocks)
    notes = notes_from_activations(note, onset, options)
    if not notes:
        raise InputError(
            f"no notes detected in {path} ({note.shape[0] / FRAME_RATE:.1f} s of audio); "
            "it may be silent or unpitched, or try lower onset/frame thresholds"
        )
    logger.info("%s: %d notes transcribed", path.name, len(notes))
    return notes_to_grid(notes, tempo_bpm, voices)
