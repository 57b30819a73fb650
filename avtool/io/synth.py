"""Render a four-voice grid to audio: fluidsynth with a General MIDI soundfont, else built in.

fluidsynth (Debian ``fluidsynth``) plays the grid through a soundfont: ``soundfont``, else
``$AVTOOL_SOUNDFONT``, else the first of :data:`SOUNDFONT_PATHS` that exists (Debian's
``fluid-soundfont-gm``). Without both, a small additive synthesiser is used: each
instrument family is a fixed set of harmonic amplitudes under an attack/decay/sustain/
release envelope, every note starts at phase zero, so its output is bit-for-bit
deterministic. Harmonics above 0.45 x the sample rate are left out (no aliasing).

Both renderers return mono float32 of exactly ``steps x (60 / tempo / 4)`` seconds (plus
half again for fermata steps, when given) followed by :data:`RELEASE_TAIL_S` seconds for
the last notes to die away, peak-normalised to :data:`PEAK_DBFS`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from avtool.errors import InputError, SetupError
from avtool.io.midi import FERMATA_STRETCH, build_midi, gm_program
from avtool.io.voice_grid import STEPS_PER_QUARTER, row_to_notes

logger = logging.getLogger("avtool.io.synth")

RELEASE_TAIL_S = 0.5  # every render ends this long after its last step
PEAK_DBFS = -1.0
SOUNDFONT_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
FLUIDSYNTH_GAIN = 0.6
RENDERERS = ("auto", "fluidsynth", "builtin")
_TABLE_SIZE = 4096
_MAX_HARMONIC_FRACTION = 0.45  # of the sample rate: keeps the top harmonic below Nyquist


@dataclass(frozen=True)
class Timbre:
    """One built-in instrument family.

    Attributes:
        harmonics: amplitude of harmonics 1, 2, 3, ... (relative).
        attack: seconds from silence to full level (linear).
        decay: time constant in seconds of the fall from full to ``sustain`` (exponential).
        sustain: level held while the note lasts, 0-1 (0 for struck/plucked sounds).
        release: seconds from the note's end to silence (linear); at most
            :data:`RELEASE_TAIL_S`.
        vibrato: depth as a fraction of the frequency, at 5 Hz.
    """

    harmonics: tuple[float, ...]
    attack: float
    decay: float
    sustain: float
    release: float
    vibrato: float = 0.0


TIMBRES = MappingProxyType(
    {
        "organ": Timbre((1.0, 0.6, 0.35, 0.3, 0.12, 0.15, 0.05, 0.1), 0.02, 0.05, 0.9, 0.08),
        "keys": Timbre((1.0, 0.45, 0.25, 0.12, 0.08, 0.05, 0.03), 0.005, 0.6, 0.0, 0.2),
        "strings": Timbre(tuple(1.0 / k for k in range(1, 11)), 0.08, 0.2, 0.85, 0.2, 0.004),
        "choir": Timbre((1.0, 0.35, 0.2, 0.08, 0.05, 0.02), 0.1, 0.2, 0.9, 0.25, 0.005),
        "brass": Timbre((1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.12, 0.08), 0.04, 0.15, 0.8, 0.12),
        "reed": Timbre((1.0, 0.04, 0.5, 0.04, 0.3, 0.03, 0.18, 0.02, 0.1), 0.03, 0.1, 0.85, 0.1),
        "flute": Timbre((1.0, 0.15, 0.06, 0.02), 0.05, 0.1, 0.9, 0.12, 0.003),
    }
)


def timbre_for(instrument: str) -> str:
    """The built-in family that plays an ``--instrument`` name, by its GM program group.

    Raises:
        InputError: an unknown instrument name.
    """
    program = gm_program(instrument)
    if 16 <= program <= 20:
        return "organ"
    if 40 <= program <= 44 or 48 <= program <= 51:
        return "strings"
    if 52 <= program <= 54:
        return "choir"
    if 56 <= program <= 63:
        return "brass"
    if 64 <= program <= 71 or program in (21, 22):
        return "reed"
    if 72 <= program <= 79:
        return "flute"
    return "keys"  # pianos, tuned percussion, guitars, basses, harp: struck or plucked


# --- choosing a renderer ---------------------------------------------------------------------


def find_soundfont(soundfont: str | os.PathLike[str] | None = None) -> Path | None:
    """The soundfont fluidsynth would use, or None.

    Args:
        soundfont: an explicit ``.sf2`` file, which must exist.

    Raises:
        InputError: ``soundfont`` is given but missing.
        SetupError: ``$AVTOOL_SOUNDFONT`` is set but names no file.
    """
    if soundfont is not None:
        path = Path(soundfont)
        if not path.is_file():
            raise InputError(f"{path}: no such soundfont")
        return path
    env = os.environ.get("AVTOOL_SOUNDFONT")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise SetupError(f"AVTOOL_SOUNDFONT={env}: no such file")
        return path
    return next((p for p in SOUNDFONT_PATHS if p.is_file()), None)


def _choose(renderer: str, soundfont) -> tuple[str, str | None, Path | None]:
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    if renderer == "builtin":
        return "builtin", None, None
    exe = shutil.which("fluidsynth")
    font = find_soundfont(soundfont)
    if exe and font:
        return "fluidsynth", exe, font
    if renderer == "fluidsynth" or soundfont is not None:
        missing = "the fluidsynth program" if not exe else "a General MIDI soundfont"
        raise SetupError(
            f"fluidsynth rendering needs {missing} (Debian: fluidsynth, fluid-soundfont-gm)"
        )
    return "builtin", None, None


def renderer_name(soundfont: str | os.PathLike[str] | None = None, renderer: str = "auto") -> str:
    """``"fluidsynth"`` or ``"builtin"``: what :func:`render` would use with these arguments."""
    return _choose(renderer, soundfont)[0]


# --- rendering -------------------------------------------------------------------------------


def _step_times(steps: int, tempo_bpm: float, fermata: np.ndarray | None) -> np.ndarray:
    """``(T + 1,)`` seconds at which each step starts (the last entry is the end)."""
    durations = np.full(steps, 60.0 / tempo_bpm / STEPS_PER_QUARTER)
    if fermata is not None:
        fermata = np.asarray(fermata, dtype=bool)
        if fermata.shape != (steps,):
            raise ValueError(f"fermata must be ({steps},), got {fermata.shape}")
        durations[fermata] *= FERMATA_STRETCH
    return np.concatenate([[0.0], np.cumsum(durations)])


def render(
    voices: np.ndarray,
    tempo_bpm: float,
    sample_rate: int = 44100,
    instrument: str = "organ",
    soundfont: str | os.PathLike[str] | None = None,
    *,
    fermata: np.ndarray | None = None,
    renderer: str = "auto",
) -> np.ndarray:
    """Render a voice grid to mono audio.

    Args:
        voices: ``(V, T)`` integer grid (normally 4 voices S A T B), one column per sixteenth:
            MIDI pitch at an onset, ``HOLD`` (-1) or ``REST`` (-2).
        tempo_bpm: quarter notes per minute.
        sample_rate: output rate in Hz.
        instrument: an ``--instrument`` name (:data:`avtool.io.midi.GM_PROGRAMS`), played by
            every voice.
        soundfont: ``.sf2`` file for fluidsynth; None looks in ``$AVTOOL_SOUNDFONT`` and
            :data:`SOUNDFONT_PATHS`. Giving one makes fluidsynth mandatory.
        fermata: optional ``(T,)`` bool; fermata steps last half as long again, as in
            :func:`avtool.io.midi.write_midi`.
        renderer: ``"auto"`` (fluidsynth when it and a soundfont are found, else built-in),
            ``"fluidsynth"`` or ``"builtin"``.

    Returns:
        ``(N,)`` float32 at ``sample_rate``, N = round((duration + RELEASE_TAIL_S) *
        sample_rate) where duration is ``T / 4 * 60 / tempo_bpm`` seconds (fermatas
        included), peak at :data:`PEAK_DBFS` (all zeros if every voice rests).

    Raises:
        InputError: unknown instrument, or a ``soundfont`` that does not exist.
        SetupError: fluidsynth asked for but missing, or failing.
        ValueError: a malformed grid, tempo or sample rate.
    """
    voices = np.asarray(voices)
    if voices.ndim != 2 or voices.shape[1] == 0 or voices.dtype.kind not in "iu":
        raise ValueError(f"voices must be a non-empty integer (V, T) grid, got {voices.shape}")
    if not tempo_bpm > 0 or sample_rate < 8000:
        raise ValueError(f"bad tempo {tempo_bpm} or sample rate {sample_rate}")
    program = gm_program(instrument)  # validates the name for both renderers
    times = _step_times(voices.shape[1], tempo_bpm, fermata)
    length = round((times[-1] + RELEASE_TAIL_S) * sample_rate)
    name, exe, font = _choose(renderer, soundfont)
    if name == "fluidsynth":
        audio = _fluidsynth(voices, tempo_bpm, sample_rate, program, exe, font, fermata)
    else:
        audio = _additive(voices, times, sample_rate, TIMBRES[timbre_for(instrument)])
    audio = np.pad(audio[:length], (0, max(length - len(audio), 0)))
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0:
        audio = audio * (10 ** (PEAK_DBFS / 20) / peak)
    return audio.astype(np.float32)


def _fluidsynth(voices, tempo_bpm, sample_rate, program, exe, font, fermata) -> np.ndarray:
    import soundfile as sf

    step_s = 60.0 / tempo_bpm / STEPS_PER_QUARTER
    # Keep the MIDI file running through the tail: fluidsynth stops rendering at its end.
    tail_steps = math.ceil(RELEASE_TAIL_S / step_s) + 1
    midi = build_midi(
        voices,
        tempo_bpm,
        programs=(program,) * voices.shape[0],
        fermata=fermata,
        tail_steps=tail_steps,
    )
    with tempfile.TemporaryDirectory(prefix="avtool-synth-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        midi.save(str(mid))
        # Float output: fluidsynth's 16-bit files clip a loud four-voice chord before we
        # get to normalise it.
        command = [exe, "-ni", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(sample_rate)]
        command += ["-O", "float", "-T", "wav", "-F", str(wav), str(font), str(mid)]
        seconds = (voices.shape[1] + tail_steps) * step_s * FERMATA_STRETCH
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=60 + 2 * seconds, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupError(f"fluidsynth failed to run: {exc}") from exc
        if done.returncode != 0 or not wav.is_file() or wav.stat().st_size == 0:
            tail = (done.stderr or done.stdout).strip()[-500:]
            raise SetupError(f"fluidsynth failed (exit {done.returncode}): {tail}")
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise SetupError(f"fluidsynth wrote {rate} Hz instead of {sample_rate} Hz")
    return audio.mean(axis=1)


def _wavetable(frequency: float, sample_rate: int, timbre: Timbre) -> np.ndarray:
    """One cycle of the timbre's waveform, ``(_TABLE_SIZE + 1,)`` (wrapped for interp)."""
    phase = np.arange(_TABLE_SIZE + 1) * (2 * np.pi / _TABLE_SIZE)
    table = np.zeros(_TABLE_SIZE + 1)
    for k, amplitude in enumerate(timbre.harmonics, start=1):
        if k * frequency * (1 + timbre.vibrato) >= _MAX_HARMONIC_FRACTION * sample_rate:
            break
        table += amplitude * np.sin(k * phase)
    return table / sum(timbre.harmonics)


def _envelope(gate: int, sample_rate: int, timbre: Timbre) -> np.ndarray:
    """ADSR over ``gate`` samples plus the release, ``(gate + release,)``."""
    attack = max(round(timbre.attack * sample_rate), 1)
    release = max(round(timbre.release * sample_rate), 1)
    t = np.arange(gate + 1, dtype=np.float64)
    rising = t / attack
    after = np.maximum(t - attack, 0) / (timbre.decay * sample_rate)
    falling = timbre.sustain + (1 - timbre.sustain) * np.exp(-after)
    held = np.where(t < attack, rising, falling)
    # The release starts from wherever the note got to, so short notes do not jump.
    fade = held[gate] * (1 - np.arange(1, release + 1) / release)
    return np.concatenate([held[:gate], fade])


def _additive(
    voices: np.ndarray, times: np.ndarray, sample_rate: int, timbre: Timbre
) -> np.ndarray:
    """The built-in synthesiser: ``(N,)`` float64, not yet normalised."""
    length = round((times[-1] + RELEASE_TAIL_S) * sample_rate)
    out = np.zeros(length)
    tables: dict[int, np.ndarray] = {}
    for row in voices:
        for onset, end, pitch in row_to_notes(row):
            frequency = 440.0 * 2 ** ((pitch - 69) / 12)
            table = tables.get(pitch)
            if table is None:
                table = tables[pitch] = _wavetable(frequency, sample_rate, timbre)
            start = round(times[onset] * sample_rate)
            gate = max(round(times[end] * sample_rate) - start, 1)
            envelope = _envelope(gate, sample_rate, timbre)
            envelope = envelope[: length - start]
            t = np.arange(len(envelope)) / sample_rate
            cycles = frequency * t
            if timbre.vibrato:
                # Integral of f * (1 + depth * sin(2 pi 5 t)): the phase of a 5 Hz vibrato.
                rate = 5.0
                cycles += (
                    frequency
                    * timbre.vibrato
                    * (1 - np.cos(2 * np.pi * rate * t))
                    / (2 * np.pi * rate)
                )
            position = (cycles % 1.0) * _TABLE_SIZE
            index = position.astype(np.int64)
            frac = position - index
            wave = table[index] * (1 - frac) + table[index + 1] * frac
            out[start : start + len(envelope)] += wave * envelope
    return out
