"""``avtool vocode``: mel spectrograms (or speech, for resynthesis) to waveforms."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import (
    ITERS,
    OptionSpec,
    finish,
    global_options,
    inputs_argument,
    manifest_option,
    model_spec,
    output_option,
    with_batch_options,
    with_options,
)
from avtool.engines import RunSettings
from avtool.tasks.vocode import DEFAULT_NEURAL, GRIFFIN_LIM, VocodeOptions

#: The options that fill :class:`VocodeOptions` (defaults from it; ``seed`` is the global one).
_OPTIONS = (
    model_spec(
        f"{GRIFFIN_LIM}, a registry name, or a checkpoint path [default: {DEFAULT_NEURAL} for "
        f"{DEFAULT_NEURAL}'s mel contract (hifigan-22k) and for audio/video, else {GRIFFIN_LIM}]."
    ),
    ITERS,
    OptionSpec("momentum", "--momentum", "Fast Griffin-Lim momentum (0.99)."),
    OptionSpec(
        "mel_preset",
        "--mel-preset",
        "Contract for .npy mels without one: hifigan-22k, melgan-22k.",
    ),
    OptionSpec("sample_rate", "--sample-rate", "Output Hz."),
)


@with_batch_options
@with_options(VocodeOptions, _OPTIONS)
def vocode_command(
    ctx: typer.Context,
    inputs: list[str] = inputs_argument(
        "Mel files (.npz, .npy + .npy.json), audio or video files, folders, globs."
    ),
    manifest: Path = manifest_option("input, id, output"),
    output: str = output_option("{stem}.wav", "Output path or template ({id} {stem} {index})."),
    *,
    options: VocodeOptions,
    settings: RunSettings,
) -> None:
    """Turn mel spectrograms into audio; audio/video inputs are analysed and resynthesised.

    Examples:

      avtool vocode speech.npz -o speech.wav      # HiFi-GAN V1 universal (hifigan-22k mel)

      avtool vocode speech.npz -o speech.wav --model griffin-lim

      avtool vocode clips/ -o 'resynth/{stem}.wav' --iters 64
    """
    from avtool.tasks import vocode

    items = settings.batch.select(vocode.build_items(inputs or [], manifest, output))
    summary = vocode.run(items, options, settings)
    finish(summary, global_options(ctx))
