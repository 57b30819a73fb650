"""``avtool separate``: a mixture to stems (audio-visual target, two blind speakers, music)."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.separate import AV_MODEL, BLIND_MODEL, MUSIC_MODEL, SeparateOptions

_DEFAULTS = SeparateOptions()


@with_batch_options
def separate_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        None, help="Mixtures: audio files, or videos whose soundtrack is the mixture."
    ),
    manifest: Path = typer.Option(
        None, "--manifest", "-m", help="CSV/JSONL: input, id, output, video."
    ),
    output: str = typer.Option(
        None,
        "--output",
        "-o",
        help="Output path or template ({id} {stem}; {n} / {source} number and name the stems). "
        "Default: {stem}.target.wav (audio-visual), {stem}.spk{n}.wav (blind), "
        "{stem}.{source}.wav (music).",
    ),
    video: Path = typer.Option(
        None, "--video", help="The target speaker's face video: audio-visual target extraction."
    ),
    residual: str = typer.Option(
        None, "--residual", help="Also write everything but the target here (audio-visual)."
    ),
    model: str = typer.Option(
        None,
        "--model",
        help=f"{AV_MODEL} (with a face), {BLIND_MODEL} (default without), "
        f"{MUSIC_MODEL} (vocals/accompaniment), convtasnet-libri2mix-16k, or a weights path.",
    ),
    chunk_seconds: float = typer.Option(
        _DEFAULTS.chunk_seconds, "--chunk-seconds", help="Audio per model call (long inputs)."
    ),
    overlap_seconds: float = typer.Option(
        _DEFAULTS.overlap_seconds, "--overlap-seconds", help="Overlap of consecutive chunks."
    ),
    settings: RunSettings = RunSettings(),
) -> None:
    """Separate speakers (or vocals from music) into files the next command can take.

    The audio-visual mode needs --accept-license (the dlib landmark model is non-commercial).

    Examples:

      avtool --accept-license separate mix.wav --video face.mp4 -o target.wav --residual other.wav

      avtool --accept-license separate clip.mp4 -o target.wav

      avtool separate mix.wav -o '{stem}.spk{n}.wav'

      avtool separate song.mp3 --model spleeter-2stems -o '{stem}.{source}.wav'
    """
    from avtool.tasks import separate

    opts = global_options(ctx)
    options = SeparateOptions(
        model=model, chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds, seed=opts.seed
    )
    probe_items = separate.build_items(inputs or [], manifest, "{stem}", video)
    name = model or separate.default_model(probe_items)
    if output is None:
        output = {AV_MODEL: "{stem}.target.wav", MUSIC_MODEL: "{stem}.{source}.wav"}.get(
            name, "{stem}.spk{n}.wav"
        )
    items = settings.batch.select(separate.build_items(inputs or [], manifest, output, video))
    if settings.batch.shard is not None:  # a shard runs the model the whole batch would pick
        from dataclasses import replace

        options = replace(options, model=name)
    summary = separate.run(
        items,
        options,
        settings,
        residual_template=residual,
    )
    finish(summary, opts)
