"""``avtool music``: compose four-voice chorales as MIDI (and audio)."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command, with_options
from avtool.engines import RunSettings
from avtool.models.music.options import SamplingOptions
from avtool.runtime import BatchSummary
from avtool.tasks.options.music import MAX_BARS, PROGRESS_MIN_BARS, MusicOptions

_DEFAULTS = MusicOptions()
#: The options that fill :class:`SamplingOptions` (defaults from it; ``seed`` is the global
#: one); the key is chosen from --key, --prompt and --harmonize.
_SAMPLING_OPTIONS = (
    flags.Spec(
        "bars",
        "--bars",
        f"Length in bars, 1..{MAX_BARS} (a progress bar shows from {PROGRESS_MIN_BARS}).",
    ),
    flags.Spec("time_signature", "--time-signature", "Metre, e.g. 4/4."),
    flags.Spec("temperature", "--temperature", "Sampling temperature."),
    flags.Spec("top_k", "--top-k", "0 keeps every token."),
    flags.Spec("avoid_parallels", "--avoid-parallels", "Never write parallel 5ths/8ves."),
)
#: The options that fill :class:`MusicOptions` (defaults from it); the tempo is chosen from
#: --tempo and --harmonize.
_OPTIONS = (
    flags.Spec("count", ("--count", "-n"), "Pieces (seed, seed+1, ...)."),
    flags.Spec("model", "--model", "Registry name or checkpoint."),
    flags.Spec("instrument", "--instrument", "GM instrument."),
    flags.Spec("sample_rate", "--sample-rate", "Audio sample rate in Hz."),
)


@batch_command(MusicOptions, _OPTIONS)
@with_options(SamplingOptions, _SAMPLING_OPTIONS, into="sampling")
def music_command(
    ctx: typer.Context,
    output: str = flags.output("piece.mid", "MIDI path or template ({index}, {id})."),
    audio: str = typer.Option(
        None, "--audio", help="Also render audio (.wav .flac .ogg .mp3 .m4a .opus)."
    ),
    key: str = typer.Option(
        None,
        "--key",
        help=f'Key, e.g. "G major", "f# minor" (default {_DEFAULTS.sampling.key!r}, or '
        "estimated from --prompt/--harmonize).",
    ),
    tempo: float = typer.Option(
        None,
        "--tempo",
        help=f"Quarter notes per minute (default {_DEFAULTS.tempo:g}, or a --harmonize MIDI "
        "file's own).",
    ),
    prompt: Path = typer.Option(
        None, "--prompt", help="Continue a MIDI file, or audio transcribed with basic-pitch."
    ),
    harmonize: Path = typer.Option(
        None, "--harmonize", help="Melody (MIDI or audio) to harmonise: fills alto, tenor, bass."
    ),
    *,
    options: MusicOptions,
    sampling: SamplingOptions,
    settings: RunSettings,
) -> BatchSummary:
    """Compose Bach-style four-voice chorales (MIDI, optionally audio).

    Examples:

      avtool music -o chorale.mid --audio chorale.wav --bars 16 --key "G major"

      avtool --seed 3 music -n 10 -o 'out/{index}.mid'

      avtool music --harmonize melody.mid -o harmonised.mid
    """
    from dataclasses import replace

    from avtool.tasks import music

    options = replace(
        options,
        tempo=options.tempo if tempo is None else tempo,
        tempo_given=tempo is not None,
        key_given=key is not None,
        sampling=replace(sampling, key=key or sampling.key),
    )
    return music.run(
        options,
        output,
        settings,
        audio_template=audio,
        prompt=prompt,
        harmonize=harmonize,
    )
