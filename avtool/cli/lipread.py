"""``avtool lipread``: face videos to text with LipNet."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command
from avtool.engines import RunSettings
from avtool.runtime import BatchSummary
from avtool.tasks.options.lipread import LipreadOptions

#: The options that fill :class:`LipreadOptions` (defaults from it); the decoder is chosen
#: from --grammar and --decoder.
_OPTIONS = (
    flags.Spec("model", "--model", "Registry name or a .pt checkpoint (with .pt.json)."),
    flags.Spec("beam", "--beam", "Prefix beam width."),
    flags.Spec(
        "format",
        "--format",
        "text; json (per-word timings, confidences); srt, vtt (subtitles); tsv (words); "
        "textgrid (Praat); all (srt, vtt, tsv, json, TextGrid beside each other).",
    ),
    flags.CHUNK_FRAMES,
    flags.FACE_INDEX,
    flags.MAX_GAP,
)


@batch_command(LipreadOptions, _OPTIONS)
def lipread_command(
    ctx: typer.Context,
    inputs: list[str] = flags.inputs("Face videos, folders, globs (- = stdin)."),
    manifest: Path = flags.manifest("input, id, output"),
    output: str = flags.output(
        None,
        "Output path or template ({id} {stem} {index}); default {stem}.txt (the format's "
        "suffix otherwise; --format all: {stem}.srt, .vtt, ...); - prints to stdout (one input).",
    ),
    grammar: str = typer.Option(
        None, "--grammar", help="Constrain the output to a grammar: grid (GRID sentences)."
    ),
    decoder: str = typer.Option(
        None, "--decoder", help="Free decoding: beam (default) or greedy; grid = --grammar grid."
    ),
    *,
    options: LipreadOptions,
    settings: RunSettings,
) -> BatchSummary:
    """Read the lips in face videos (any frame rate; resampled to 25 fps).

    The shipped models (default lipread-grid-s1, a ResNet/BiGRU CTC reader; lipnet-grid-s1,
    LipNet) are speaker-dependent: trained on GRID speaker s1 only.
    The face landmarks are licensed for non-commercial use: pass --accept-license.

    Examples:

      avtool --accept-license lipread clip.mp4 --grammar grid -o -

      avtool --accept-license lipread clips/ -o 'text/{stem}.json' --format json
    """
    from avtool.errors import InputError
    from avtool.tasks import lipread

    if grammar is not None and grammar != "grid":
        raise InputError(f"--grammar {grammar!r}: the only grammar is grid")
    if grammar and decoder not in (None, "grid"):
        raise InputError(f"--grammar grid and --decoder {decoder} exclude each other")
    options = replace(options, decoder="grid" if grammar else (decoder or options.decoder))
    items = lipread.build_items(inputs or [], manifest, output, options.format)
    return lipread.run(settings.batch.select(items), options, settings)
