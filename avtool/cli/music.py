"""``avtool music``: compose four-voice chorales as MIDI (and audio)."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.music import MAX_BARS, PROGRESS_MIN_BARS, MusicOptions

_DEFAULTS = MusicOptions()
_SAMPLING = _DEFAULTS.sampling


@with_batch_options
def music_command(
    ctx: typer.Context,
    output: str = typer.Option(
        "piece.mid", "--output", "-o", help="MIDI path or template ({index}, {id})."
    ),
    audio: str = typer.Option(
        None, "--audio", help="Also render audio (.wav .flac .ogg .mp3 .m4a .opus)."
    ),
    bars: int = typer.Option(
        _SAMPLING.bars,
        "--bars",
        help=f"Length in bars, 1..{MAX_BARS} (a progress bar shows from {PROGRESS_MIN_BARS}).",
    ),
    key: str = typer.Option(
        None,
        "--key",
        help=f'Key, e.g. "G major", "f# minor" (default {_SAMPLING.key!r}, or '
        "estimated from --prompt/--harmonize).",
    ),
    time_signature: str = typer.Option(_SAMPLING.time_signature, "--time-signature"),
    tempo: float = typer.Option(
        None,
        "--tempo",
        help=f"Quarter notes per minute (default {_DEFAULTS.tempo:g}, or a --harmonize MIDI "
        "file's own).",
    ),
    temperature: float = typer.Option(_SAMPLING.temperature, "--temperature"),
    top_k: int = typer.Option(_SAMPLING.top_k, "--top-k", help="0 keeps every token."),
    count: int = typer.Option(_DEFAULTS.count, "--count", "-n", help="Pieces (seed, seed+1, ...)."),
    model: str = typer.Option(_DEFAULTS.model, "--model", help="Registry name or checkpoint."),
    prompt: Path = typer.Option(
        None, "--prompt", help="Continue a MIDI file, or audio transcribed with basic-pitch."
    ),
    harmonize: Path = typer.Option(
        None, "--harmonize", help="Melody (MIDI or audio) to harmonise: fills alto, tenor, bass."
    ),
    avoid_parallels: bool = typer.Option(
        _SAMPLING.avoid_parallels, "--avoid-parallels", help="Never write parallel 5ths/8ves."
    ),
    instrument: str = typer.Option(_DEFAULTS.instrument, "--instrument", help="GM instrument."),
    sample_rate: int = typer.Option(_DEFAULTS.sample_rate, "--sample-rate"),
    settings: RunSettings = RunSettings(),
) -> None:
    """Compose Bach-style four-voice chorales (MIDI, optionally audio).

    Examples:

      avtool music -o chorale.mid --audio chorale.wav --bars 16 --key "G major"

      avtool --seed 3 music -n 10 -o 'out/{index}.mid'

      avtool music --harmonize melody.mid -o harmonised.mid
    """
    from dataclasses import replace

    from avtool.tasks import music

    opts = global_options(ctx)
    sampling = replace(
        _SAMPLING,
        bars=bars,
        key=key or _SAMPLING.key,
        time_signature=time_signature,
        temperature=temperature,
        top_k=top_k,
        seed=opts.seed,
        avoid_parallels=avoid_parallels,
    )
    options = MusicOptions(
        model=model,
        count=count,
        tempo=tempo if tempo is not None else _DEFAULTS.tempo,
        tempo_given=tempo is not None,
        instrument=instrument,
        sample_rate=sample_rate,
        key_given=key is not None,
        sampling=sampling,
    )
    summary = music.run(
        options,
        output,
        settings,
        audio_template=audio,
        prompt=prompt,
        harmonize=harmonize,
    )
    finish(summary, opts)
