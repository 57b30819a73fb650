"""``avtool v2a``: speech from a silent talking-face video (and noisy audio, AV mode)."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command
from avtool.engines import RunSettings
from avtool.runtime import BatchSummary
from avtool.tasks.options.v2a import AV2A_MODEL, DEFAULT_VOCODER, V2A_MODEL, V2AOptions

#: The options that fill :class:`V2AOptions` (defaults from it; ``seed`` is the global one).
_OPTIONS = (
    flags.Spec(
        "audio_from_video",
        "--audio-from-video",
        "Use each video's own (noisy) audio track (AV2A).",
    ),
    flags.Spec(
        "model", "--model", f"{V2A_MODEL} (video) / {AV2A_MODEL} (with audio), or a .pt path."
    ),
    flags.Spec(
        "vocoder",
        "--vocoder",
        f"griffin-lim, or a registered vocoder name/path [default: {DEFAULT_VOCODER} when the "
        "model's mel contract is hifigan-22k, else griffin-lim].",
    ),
    flags.ITERS,
    flags.CHUNK_FRAMES,
    flags.MAX_GAP,
    flags.Spec("max_yaw", "--max-yaw", "Head yaw (degrees) beyond which a face is profile."),
)


@batch_command(V2AOptions, _OPTIONS)
def v2a_command(
    ctx: typer.Context,
    inputs: list[str] = flags.inputs("Video files, folders, globs."),
    manifest: Path = flags.manifest("input, id, output, audio"),
    output: str = flags.output(
        "{stem}.wav",
        "Output audio path or template ({id} {stem}): .wav .flac .ogg .mp3 .m4a .opus.",
    ),
    audio: Path = typer.Option(
        None, "--audio", help="Noisy/gappy speech of the same video: audio-visual mode (AV2A)."
    ),
    mel: str = typer.Option(
        None, "--mel", help="Also write the predicted mel (.npz with its contract; template)."
    ),
    *,
    options: V2AOptions,
    settings: RunSettings,
) -> BatchSummary:
    """Generate speech from the lip movements in a video (GRID s1 speaker-dependent default).

    Needs --accept-license (the dlib landmark model is non-commercial).

    Examples:

      avtool --accept-license v2a clip.mp4 -o speech.wav

      avtool --accept-license v2a clip.mp4 --audio noisy.wav -o clean.wav
    """
    from avtool.errors import InputError
    from avtool.tasks import v2a

    if not 0 < options.max_yaw <= 90:  # before any input is read or model loaded
        raise InputError(
            f"--max-yaw {options.max_yaw:g}: must be more than 0 and at most 90 degrees"
        )
    items = settings.batch.select(v2a.build_items(inputs or [], manifest, output, audio))
    return v2a.run(items, options, settings, mel_template=mel)
