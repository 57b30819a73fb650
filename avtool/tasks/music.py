"""Symbolic music: sample four-voice chorales as MIDI (and audio), continue a MIDI or audio
prompt, or harmonise a melody, with the chorale models trained on music21's Bach corpus.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from avtool.datasets.chorales import HOLD, REST, parse_key
from avtool.engines import RunSettings, run_items
from avtool.errors import InputError
from avtool.io.audio import save_audio
from avtool.io.console import stderr_console
from avtool.io.files import ensure_parent_writable
from avtool.io.midi import gm_program, midi_tempo, read_midi, write_midi
from avtool.io.synth import render, renderer_name
from avtool.models import basic_pitch
from avtool.models.loading import Loaded, load
from avtool.models.music.generate import Score, detect_family, generate_batch
from avtool.models.music.tokens import PITCH_HIGH, PITCH_LOW, parse_time_signature
from avtool.registry import sha256_file
from avtool.runtime import (
    BatchItem,
    BatchSummary,
    check_outputs,
    format_output,
    sidecar_path,
    versions,
    write_json,
)
from avtool.tasks.options.music import MAX_BARS, PROGRESS_MIN_BARS, MusicOptions

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus")
BATCH_PIECE_BARS = 512
"""Pieces x bars decoded together at most (``-n``). Measured with the default model, 128
pieces of 16 bars: in one batch 584 MB and 205 CPU s, in chunks of 512 piece-bars 175 MB and
126 CPU s, the same pieces; unchunked, ``-n 10000`` would ask for some 45 GB at once."""
_PITCH_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")


def estimate_key(voices: np.ndarray) -> tuple[int, str]:
    """Key of a passage by music21's key analysis (``Stream.analyze("key")``: the
    Aarden-Essen profiles, over all 24 keys, against the duration-weighted pitch classes).

    Krumhansl-Kessler profiles on a bare melody took Ode to Joy in C for E minor (its many
    E's); music21's analysis says C major, as a musician would.

    Args:
        voices: ``(4, T)`` voice grid (MIDI pitches, HOLD or REST per sixteenth).

    Raises:
        InputError: no notes.
    """
    # music21 takes seconds to import and only this estimate needs it.
    from music21 import note, stream

    score = stream.Score()
    for row in np.asarray(voices):
        part = stream.Part()
        pitch, length = None, 0
        for value in [*row.tolist(), REST]:
            if value == HOLD and pitch is not None:
                length += 1
                continue
            if pitch is not None:
                part.append(note.Note(pitch, quarterLength=length / 4))
            pitch, length = (None, 0) if value in (REST, HOLD) else (int(value), 1)
        if len(part.notes):
            score.insert(0, part)
    if not score.recurse().notes:
        raise InputError("no notes to estimate a key from")
    found = score.analyze("key")
    return int(found.tonic.pitchClass), str(found.mode)


def read_prompt(path: Path, tempo: float) -> np.ndarray:
    """Voices of a MIDI file, or of an audio file transcribed with basic-pitch.

    Raises:
        InputError: unreadable or empty file, or no notes detected (naming the file).
    """

    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        voices = read_midi(path)[0]
    else:
        voices = basic_pitch.transcribe_file(
            path, tempo, options=basic_pitch.NoteOptions(min_velocity=0.5)
        )
    pitches = voices[(voices != HOLD) & (voices != REST)]
    outside = pitches[(pitches < PITCH_LOW) | (pitches > PITCH_HIGH)]
    if outside.size:
        raise InputError(
            f"{path}: note {int(outside[0])} (MIDI) is outside the range of the chorale voices, "
            f"MIDI {PITCH_LOW}..{PITCH_HIGH}; transpose the melody"
        )
    return np.asarray(voices)


def load_music_model(name_or_path: str, *, accept_license: bool = False) -> Loaded:
    """A music model through the front door (:func:`avtool.models.loading.load`); a local
    checkpoint's family is told from the file (``.npz`` Markov table, or the format tag of a
    torch checkpoint).

    Raises:
        ModelError: unknown, unverifiable or unreadable model.
    """
    return load(
        name_or_path,
        task="music",
        accept_license=accept_license,
        detect=lambda resolved: f"music_{detect_family(resolved.path)}",
    )


def compose(
    loaded: Loaded,
    options: MusicOptions,
    *,
    prompt: Path | None = None,
    harmonize: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, tuple[int, str], dict[str, Any]]:
    """Sample ``options.count`` pieces, continuing ``prompt`` or harmonising ``harmonize``.

    The pieces are decoded in chunks of at most :data:`BATCH_PIECE_BARS` pieces x bars (piece
    ``i`` uses the generator seeded ``seed + i`` in any chunk).

    Args:
        progress: ``progress(bars done, bars total)`` while composing (see
            :func:`avtool.models.music.generate.generate_batch`); it does not change the result.

    Returns:
        ``(pieces, (tonic, mode), details)`` where pieces is ``(count, 4, T)``.

    Raises:
        InputError: an unreadable prompt or melody, or one longer than :data:`MAX_BARS` bars.
    """

    s = options.sampling
    steps_per_bar = parse_time_signature(s.time_signature)
    details: dict[str, Any] = {}
    prompt_voices = fixed_soprano = None
    steps: int | None = s.bars * steps_per_bar
    if prompt is not None:
        prompt_voices = read_prompt(prompt, options.tempo)
        _check_length(prompt, prompt_voices.shape[1], steps_per_bar)
        details["prompt_steps"] = int(prompt_voices.shape[1])
    if harmonize is not None:
        melody = read_prompt(harmonize, options.tempo)
        _check_length(harmonize, melody.shape[1], steps_per_bar)
        fixed_soprano = melody[0]
        if (fixed_soprano == REST).all():
            raise InputError(f"{harmonize}: the melody has no notes in its top voice")
        steps = None  # the melody's length
        details["melody_steps"] = int(fixed_soprano.size)
    source = (
        prompt_voices if prompt_voices is not None else (melody if harmonize is not None else None)
    )
    if options.key_given or source is None:
        key = parse_key(s.key)
        how = "given" if options.key_given else "default"
    else:
        key = estimate_key(source)
        details["key_estimated"] = True
        how = f"estimated from {prompt or harmonize} by music21's key analysis; --key to change"
    log.info("key: %s (%s)", key_name(key), how)
    score = Score(key[0], key[1], steps, prompt_voices=prompt_voices, fixed_soprano=fixed_soprano)
    piece_steps = (0 if prompt_voices is None else prompt_voices.shape[1]) + (
        steps if steps is not None else fixed_soprano.size  # type: ignore[union-attr]
    )
    piece_bars = -(-piece_steps // steps_per_bar)
    # Pieces are decoded together, chunk by chunk (memory grows with pieces x bars); piece i
    # still uses the generator seeded seed + i, whatever chunk it falls in.
    chunk = max(1, BATCH_PIECE_BARS // piece_bars)
    starts = range(0, options.count, chunk)
    parts = []
    for number, first in enumerate(starts):

        def chunk_progress(done: int, total: int, number: int = number) -> None:
            if progress is not None:
                progress(number * total + done, len(starts) * total)

        size = min(chunk, options.count - first)
        sampling = replace(s, seed=s.seed + first)
        parts.append(generate_batch(loaded.module, size, score, sampling, chunk_progress))
    pieces = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return pieces, key, details


def _check_length(path: Path, steps: int, steps_per_bar: int) -> None:
    """Refuse a prompt or melody longer than :data:`MAX_BARS` bars, as ``--bars`` is refused.

    Raises:
        InputError: naming the file and its length.
    """
    bars = -(-steps // steps_per_bar)
    if bars > MAX_BARS:
        raise InputError(
            f"{path}: {bars} bars long; --prompt and --harmonize files may have at most "
            f"{MAX_BARS} bars"
        )


def key_name(key: tuple[int, str]) -> str:
    """``(7, "major")`` -> ``"G major"``."""
    return f"{_PITCH_NAMES[key[0]].replace('-', 'b')} {key[1]}"


def write_piece(
    voices,
    midi_path: Path,
    audio_path: Path | None,
    options: MusicOptions,
    meta: dict[str, Any],
) -> list[Path]:
    """Write one piece as MIDI (and audio), each with its JSON sidecar; atomic, and nothing is
    left behind when a later file fails."""

    program = gm_program(options.instrument)
    write_midi(midi_path, voices, options.tempo, time_signature=options.sampling.time_signature,
               programs=(program,) * 4)  # fmt: skip
    written = [midi_path]
    try:
        return _write_audio_and_sidecars(voices, midi_path, audio_path, options, meta, written)
    except BaseException:
        # Nothing partial: the score goes too when its audio or sidecar cannot be written,
        # so a rerun is not refused with "already exists".
        for path in written:
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
        raise


def _write_audio_and_sidecars(
    voices: Any, midi_path: Path, audio_path: Path | None, options: MusicOptions,
    meta: dict[str, Any], written: list[Path],
) -> list[Path]:  # fmt: skip
    """The audio (if asked) and every sidecar of a piece whose MIDI is in ``written``."""

    outputs = {"midi": {"path": str(midi_path), "sha256": sha256_file(midi_path)}}
    if audio_path is not None:
        if audio_path.suffix.lower() not in AUDIO_SUFFIXES:
            raise InputError(
                f"{audio_path}: audio output must be one of {', '.join(AUDIO_SUFFIXES)}"
            )
        start = time.perf_counter()
        audio = render(voices, options.tempo, options.sample_rate, options.instrument)
        save_audio(audio_path, audio, options.sample_rate)
        outputs["audio"] = {"path": str(audio_path), "sha256": sha256_file(audio_path),
                            "renderer": renderer_name(), "sample_rate": options.sample_rate,
                            "duration": round(audio.size / options.sample_rate, 4),
                            "render_s": round(time.perf_counter() - start, 4)}  # fmt: skip
        written.append(audio_path)
    full = {**meta, "outputs": outputs}
    for path in written:
        write_json(sidecar_path(path), full)
    return written


def run(
    options: MusicOptions,
    output_template: str,
    settings: RunSettings | None = None,
    *,
    audio_template: str | None = None,
    prompt: Path | None = None,
    harmonize: Path | None = None,
) -> BatchSummary:
    """Compose ``options.count`` pieces and write them (model loaded once).

    The pieces are sampled together in one batched pass here; ``settings.batch`` picks the shard of
    pieces to write (``--shard``: every shard samples all pieces, so piece ``i`` has the same
    bytes in any shard) and the engine that writes and renders them.

    Raises:
        InputError, ModelError: before anything is written.
    """
    settings = settings or RunSettings()

    options = options.validated()
    if prompt is not None and harmonize is not None:
        raise InputError("--prompt and --harmonize exclude each other")
    if Path(output_template).suffix.lower() not in MIDI_SUFFIXES:
        raise InputError(f"-o {output_template}: the score is written as .mid")
    if options.count > 1 and "{" not in output_template:
        stem = Path(output_template)
        output_template = str(stem.with_name(f"{stem.stem}-{{index}}{stem.suffix}"))
        if audio_template and "{" not in audio_template:
            a = Path(audio_template)
            audio_template = str(a.with_name(f"{a.stem}-{{index}}{a.suffix}"))
    items = []
    for i in range(options.count):
        item_id = f"seed{options.sampling.seed + i}"
        audio = format_output(audio_template, item_id=item_id, index=i) if audio_template else None
        items.append(BatchItem(index=i, id=item_id, input=str(prompt or harmonize or "sample"),
                               output=format_output(output_template, item_id=item_id, index=i),
                               options={"audio": audio}))  # fmt: skip
    items = settings.batch.select(items)
    check_outputs(items, settings.policy)
    if audio_template:
        check_outputs([replace(it, output=it.options["audio"]) for it in items], settings.policy)
    _check_destinations(items)  # before composing: a failure later leaves nothing behind
    melody_midi = harmonize is not None and harmonize.suffix.lower() in MIDI_SUFFIXES
    if melody_midi and not options.tempo_given:
        found = midi_tempo(harmonize)
        if found is not None:  # the melody's own tempo, not the default
            options = replace(options, tempo=round(found, 3))
            log.info("tempo: %g quarter notes per minute (from %s)", options.tempo, harmonize)
    loaded = load_music_model(options.model, accept_license=settings.accept_license)
    start = time.perf_counter()
    what = Path(output_template).name if options.count == 1 else f"{options.count} pieces"
    with compose_progress(settings.quiet, options.count, what) as progress:
        pieces, key, details = compose(
            loaded, options, prompt=prompt, harmonize=harmonize, progress=progress
        )
    compose_s = time.perf_counter() - start
    facts, load_s = loaded.facts(), loaded.load_seconds  # plain data: workers need no model

    def process(item: BatchItem) -> list[Path]:
        meta = {
            "task": "music",
            "model": facts,
            "seed": options.sampling.seed + item.index,
            "options": asdict(options),
            "key": key_name(key),
            "input": {"prompt": str(prompt) if prompt else None,
                      "harmonize": str(harmonize) if harmonize else None, **details},
            "score": {"steps": int(pieces.shape[-1]),
                      "bars": round(pieces.shape[-1] / _steps_per_bar(options), 2)},
            "timings": {"load_s": round(load_s, 4),
                        "compose_s_all_pieces": round(compose_s, 4)},
            "versions": versions(),
        }  # fmt: skip
        return write_piece(pieces[item.index], item.output, item.options["audio"], options, meta)

    return run_items(items, lambda: process, settings, label="music")


@contextlib.contextmanager
def compose_progress(quiet: bool, count: int, label: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(bars done, bars total)`` callback drawing a rich bar on stderr.

    The bar (transient, like the other subcommands') starts with the first call, and only
    when ``count`` pieces of ``total`` bars reach :data:`PROGRESS_MIN_BARS` and stderr is a
    terminal (rich's ``TTY_COMPATIBLE=1`` forces one); with ``quiet`` nothing is drawn.
    Stdout is untouched (``--json``).

    Args:
        quiet: draw nothing (``--quiet``).
        count: pieces composed together (they advance bar by bar together).
        label: what is composed, shown before the bar.
    """
    bar = _ComposeBar(quiet, count, label)
    try:
        yield bar.update
    finally:
        bar.stop()


class _ComposeBar:
    """The rich bar behind :func:`compose_progress`, started by the first ``update``."""

    def __init__(self, quiet: bool, count: int, label: str) -> None:
        self.quiet, self.count, self.label = quiet, count, label
        self.decided = False
        self.progress: Any = None  # rich Progress once drawn
        self.task: Any = None

    def update(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` bars."""
        if not self.decided:
            self.decided = True
            self._start(total)
        if self.progress is not None:
            self.progress.update(self.task, completed=done, total=total)

    def _start(self, total: int) -> None:
        if self.quiet or self.count * total < PROGRESS_MIN_BARS:
            return
        console = stderr_console()
        if not console.is_terminal:  # a log would only get the bar's blank last line
            return
        self.progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TextColumn("bars"), TimeRemainingColumn(), console=console, transient=True,
        )  # fmt: skip
        self.progress.start()
        self.task = self.progress.add_task(f"music {self.label}", total=total)

    def stop(self) -> None:
        """Take the bar off the terminal (it is transient)."""
        if self.progress is not None:
            self.progress.stop()


def _check_destinations(items: list) -> None:
    """Refuse an audio suffix avtool cannot write or an unwritable folder before composing.

    Raises:
        InputError: ``--audio`` is not .wav/.flac.
        SetupError: an output folder cannot be created or written.
    """
    for item in items:
        audio = item.options.get("audio")
        if audio is not None and audio.suffix.lower() not in AUDIO_SUFFIXES:
            raise InputError(f"{audio}: audio output must be one of {', '.join(AUDIO_SUFFIXES)}")
        for path in (item.output, audio):
            if path is not None:
                ensure_parent_writable(path)


def _steps_per_bar(options: MusicOptions) -> int:
    return parse_time_signature(options.sampling.time_signature)
