"""``avtool vocode``: mel spectrograms (or speech, for resynthesis) to waveforms."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, handle_errors, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.vocode import DEFAULT_NEURAL, GRIFFIN_LIM, VocodeOptions

_DEFAULTS = VocodeOptions()


@handle_errors
@with_batch_options
def vocode_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        None, help="Mel files (.npz, .npy + .npy.json), audio or video files, folders, globs."
    ),
    manifest: Path = typer.Option(None, "--manifest", "-m", help="CSV/JSONL: input, id, output."),
    output: str = typer.Option(
        "{stem}.wav", "--output", "-o", help="Output path or template ({id} {stem} {index})."
    ),
    model: str = typer.Option(
        _DEFAULTS.model,
        "--model",
        help=f"{GRIFFIN_LIM}, a registry name, or a checkpoint path [default: {DEFAULT_NEURAL} "
        f"for {DEFAULT_NEURAL}'s mel contract (hifigan-22k) and for audio/video, else "
        f"{GRIFFIN_LIM}].",
    ),
    iters: int = typer.Option(None, "--iters", help="Griffin-Lim iterations (default 32)."),
    momentum: float = typer.Option(None, "--momentum", help="Fast Griffin-Lim momentum (0.99)."),
    mel_preset: str = typer.Option(
        None, "--mel-preset", help="Contract for .npy mels without one: hifigan-22k, melgan-22k."
    ),
    sample_rate: int = typer.Option(_DEFAULTS.sample_rate, "--sample-rate", help="Output Hz."),
    settings: RunSettings = RunSettings(),
) -> None:
    """Turn mel spectrograms into audio; audio/video inputs are analysed and resynthesised.

    Examples:

      avtool vocode speech.npz -o speech.wav      # HiFi-GAN V1 universal (hifigan-22k mel)

      avtool vocode speech.npz -o speech.wav --model griffin-lim

      avtool vocode clips/ -o 'resynth/{stem}.wav' --iters 64
    """
    from avtool.tasks import vocode

    opts = global_options(ctx)
    items = settings.batch.select(vocode.build_items(inputs or [], manifest, output))
    options = VocodeOptions(
        model=model,
        iters=iters,
        momentum=momentum,
        mel_preset=mel_preset,
        sample_rate=sample_rate,
        seed=opts.seed,
    )
    summary = vocode.run(items, options, settings)
    finish(summary, opts)
