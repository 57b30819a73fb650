"""``avtool v2a``: speech from a silent talking-face video (and noisy audio, AV mode)."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.v2a import AV2A_MODEL, DEFAULT_VOCODER, V2A_MODEL, V2AOptions

_DEFAULTS = V2AOptions()


@with_batch_options
def v2a_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(None, help="Video files, folders, globs."),
    manifest: Path = typer.Option(
        None, "--manifest", "-m", help="CSV/JSONL: input, id, output, audio."
    ),
    output: str = typer.Option(
        "{stem}.wav",
        "--output",
        "-o",
        help="Output audio path or template ({id} {stem}): .wav .flac .ogg .mp3 .m4a .opus.",
    ),
    audio: Path = typer.Option(
        None, "--audio", help="Noisy/gappy speech of the same video: audio-visual mode (AV2A)."
    ),
    audio_from_video: bool = typer.Option(
        False, "--audio-from-video", help="Use each video's own (noisy) audio track (AV2A)."
    ),
    mel: str = typer.Option(
        None, "--mel", help="Also write the predicted mel (.npz with its contract; template)."
    ),
    model: str = typer.Option(
        None, "--model", help=f"{V2A_MODEL} (video) / {AV2A_MODEL} (with audio), or a .pt path."
    ),
    vocoder: str = typer.Option(
        _DEFAULTS.vocoder,
        "--vocoder",
        help=f"griffin-lim, or a registered vocoder name/path [default: {DEFAULT_VOCODER} "
        "when the model's mel contract is hifigan-22k, else griffin-lim].",
    ),
    iters: int = typer.Option(None, "--iters", help="Griffin-Lim iterations (default 32)."),
    chunk_frames: int = typer.Option(
        _DEFAULTS.chunk_frames, "--chunk-frames", help="Video frames per model window."
    ),
    max_gap: int = typer.Option(
        _DEFAULTS.max_gap, "--max-gap", help="Longest run of frames without a face to bridge."
    ),
    max_yaw: float = typer.Option(
        _DEFAULTS.max_yaw, "--max-yaw", help="Head yaw (degrees) beyond which a face is profile."
    ),
    settings: RunSettings = RunSettings(),
) -> None:
    """Generate speech from the lip movements in a video (GRID s1 speaker-dependent default).

    Needs --accept-license (the dlib landmark model is non-commercial).

    Examples:

      avtool --accept-license v2a clip.mp4 -o speech.wav

      avtool --accept-license v2a clip.mp4 --audio noisy.wav -o clean.wav
    """
    from avtool.errors import InputError
    from avtool.tasks import v2a

    opts = global_options(ctx)
    if not 0 < max_yaw <= 90:  # before any input is read or model loaded
        raise InputError(f"--max-yaw {max_yaw:g}: must be more than 0 and at most 90 degrees")
    items = settings.batch.select(v2a.build_items(inputs or [], manifest, output, audio))
    options = V2AOptions(
        model=model,
        vocoder=vocoder,
        iters=iters,
        seed=opts.seed,
        chunk_frames=chunk_frames,
        max_gap=max_gap,
        max_yaw=max_yaw,
        audio_from_video=audio_from_video,
    )
    summary = v2a.run(
        items,
        options,
        settings,
        mel_template=mel,
    )
    finish(summary, opts)
