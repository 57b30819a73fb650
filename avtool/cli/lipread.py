"""``avtool lipread``: face videos to text with LipNet."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.lipread import DEFAULT_MODEL, LipreadOptions

_DEFAULTS = LipreadOptions()


@with_batch_options
def lipread_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(None, help="Face videos, folders, globs (- = stdin)."),
    manifest: Path = typer.Option(None, "--manifest", "-m", help="CSV/JSONL: input, id, output."),
    output: str = typer.Option(
        None,
        "--output",
        "-o",
        help="Output path or template ({id} {stem} {index}); default {stem}.txt (the format's "
        "suffix otherwise; --format all: {stem}.srt, .vtt, ...); - prints to stdout (one input).",
    ),
    model: str = typer.Option(
        DEFAULT_MODEL, "--model", help="Registry name or a .pt checkpoint (with .pt.json)."
    ),
    grammar: str = typer.Option(
        None, "--grammar", help="Constrain the output to a grammar: grid (GRID sentences)."
    ),
    decoder: str = typer.Option(
        None, "--decoder", help="Free decoding: beam (default) or greedy; grid = --grammar grid."
    ),
    beam: int = typer.Option(_DEFAULTS.beam, "--beam", help="Prefix beam width."),
    fmt: str = typer.Option(
        _DEFAULTS.format,
        "--format",
        help="text; json (per-word timings, confidences); srt, vtt (subtitles); tsv (words); "
        "textgrid (Praat); all (srt, vtt, tsv, json, TextGrid beside each other).",
    ),
    chunk_frames: int = typer.Option(
        _DEFAULTS.chunk_frames, "--chunk-frames", help="Frames per network window (memory bound)."
    ),
    face_index: int = typer.Option(
        _DEFAULTS.face_index, "--face-index", help="Which face when several (0 = largest)."
    ),
    max_gap: int = typer.Option(
        _DEFAULTS.max_gap, "--max-gap", help="Longest face gap in frames that is interpolated."
    ),
    settings: RunSettings = RunSettings(),
) -> None:
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

    opts = global_options(ctx)
    if grammar is not None and grammar != "grid":
        raise InputError(f"--grammar {grammar!r}: the only grammar is grid")
    if grammar and decoder not in (None, "grid"):
        raise InputError(f"--grammar grid and --decoder {decoder} exclude each other")
    chosen = "grid" if grammar else (decoder or _DEFAULTS.decoder)
    items = settings.batch.select(lipread.build_items(inputs or [], manifest, output, fmt))
    options = LipreadOptions(
        model=model, decoder=chosen, beam=beam, format=fmt, chunk_frames=chunk_frames,
        face_index=face_index, max_gap=max_gap,
    )  # fmt: skip
    summary = lipread.run(items, options, settings)
    finish(summary, opts)
