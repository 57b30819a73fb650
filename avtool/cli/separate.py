"""``avtool separate``: a mixture to stems (audio-visual target, two blind speakers, music)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command
from avtool.engines import RunSettings
from avtool.runtime import BatchSummary
from avtool.tasks.options.separate import AV_MODEL, BLIND_MODEL, MUSIC_MODEL, SeparateOptions

#: The options that fill :class:`SeparateOptions` (defaults from it; ``seed`` is the global one).
_OPTIONS = (
    flags.Spec(
        "model",
        "--model",
        f"{AV_MODEL} (with a face), {BLIND_MODEL} (default without), {MUSIC_MODEL} "
        "(vocals/accompaniment), convtasnet-libri2mix-16k, or a weights path.",
    ),
    flags.Spec("chunk_seconds", "--chunk-seconds", "Audio per model call (long inputs)."),
    flags.Spec("overlap_seconds", "--overlap-seconds", "Overlap of consecutive chunks."),
)


@batch_command(SeparateOptions, _OPTIONS)
def separate_command(
    ctx: typer.Context,
    inputs: list[str] = flags.inputs(
        "Mixtures: audio files, or videos whose soundtrack is the mixture."
    ),
    manifest: Path = flags.manifest("input, id, output, video"),
    output: str = flags.output(
        None,
        "Output path or template ({id} {stem}; {n} / {source} number and name the stems). "
        "Default: {stem}.target.wav (audio-visual), {stem}.spk{n}.wav (blind), "
        "{stem}.{source}.wav (music).",
    ),
    video: Path = typer.Option(
        None, "--video", help="The target speaker's face video: audio-visual target extraction."
    ),
    residual: str = typer.Option(
        None, "--residual", help="Also write everything but the target here (audio-visual)."
    ),
    *,
    options: SeparateOptions,
    settings: RunSettings,
) -> BatchSummary:
    """Separate speakers (or vocals from music) into files the next command can take.

    The audio-visual mode needs --accept-license (the dlib landmark model is non-commercial).

    Examples:

      avtool --accept-license separate mix.wav --video face.mp4 -o target.wav --residual other.wav

      avtool --accept-license separate clip.mp4 -o target.wav

      avtool separate mix.wav -o '{stem}.spk{n}.wav'

      avtool separate song.mp3 --model spleeter-2stems -o '{stem}.{source}.wav'
    """
    from avtool.tasks import separate

    probe_items = separate.build_items(inputs or [], manifest, "{stem}", video)
    name = options.model or separate.default_model(probe_items)
    if output is None:
        output = {AV_MODEL: "{stem}.target.wav", MUSIC_MODEL: "{stem}.{source}.wav"}.get(
            name, "{stem}.spk{n}.wav"
        )
    items = settings.batch.select(separate.build_items(inputs or [], manifest, output, video))
    if settings.batch.shard is not None:  # a shard runs the model the whole batch would pick
        options = replace(options, model=name)
    return separate.run(items, options, settings, residual_template=residual)
