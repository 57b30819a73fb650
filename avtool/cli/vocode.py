"""``avtool vocode``: mel spectrograms (or speech, for resynthesis) to waveforms."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command
from avtool.engines import RunSettings
from avtool.runtime import BatchSummary
from avtool.tasks.options.vocode import DEFAULT_NEURAL, GRIFFIN_LIM, VocodeOptions

#: The options that fill :class:`VocodeOptions` (defaults from it; ``seed`` is the global one).
_OPTIONS = (
    flags.Spec(
        "model",
        "--model",
        f"{GRIFFIN_LIM}, a registry name, or a checkpoint path [default: {DEFAULT_NEURAL} for "
        f"{DEFAULT_NEURAL}'s mel contract (hifigan-22k) and for audio/video, else {GRIFFIN_LIM}].",
    ),
    flags.ITERS,
    flags.Spec("momentum", "--momentum", "Fast Griffin-Lim momentum (0.99)."),
    flags.Spec(
        "mel_preset",
        "--mel-preset",
        "Contract for .npy mels without one: hifigan-22k, melgan-22k.",
    ),
    flags.Spec("sample_rate", "--sample-rate", "Output Hz."),
)


@batch_command(VocodeOptions, _OPTIONS)
def vocode_command(
    ctx: typer.Context,
    inputs: list[str] = flags.inputs(
        "Mel files (.npz, .npy + .npy.json), audio or video files, folders, globs."
    ),
    manifest: Path = flags.manifest("input, id, output"),
    output: str = flags.output("{stem}.wav", "Output path or template ({id} {stem} {index})."),
    *,
    options: VocodeOptions,
    settings: RunSettings,
) -> BatchSummary:
    """Turn mel spectrograms into audio; audio/video inputs are analysed and resynthesised.

    Examples:

      avtool vocode speech.npz -o speech.wav      # HiFi-GAN V1 universal (hifigan-22k mel)

      avtool vocode speech.npz -o speech.wav --model griffin-lim

      avtool vocode clips/ -o 'resynth/{stem}.wav' --iters 64
    """
    from avtool.tasks import vocode

    items = settings.batch.select(vocode.build_items(inputs or [], manifest, output))
    return vocode.run(items, options, settings)
