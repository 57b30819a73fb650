"""``avtool tts``: text to speech with the bundled offline voices."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command, finish, global_options, with_options
from avtool.cli.talkinghead import FACE_OPTIONS
from avtool.engines import RunSettings
from avtool.tasks.options.talkinghead import TalkingHeadOptions
from avtool.tasks.options.tts import AUDIO_FORMATS, DEFAULT_VOICE, FaceVideo, TTSOptions

#: The options that fill :class:`TTSOptions` (defaults from it; ``seed`` is the global one).
_OPTIONS = (
    flags.Spec("speed", "--speed", "Speaking-rate multiplier."),
    flags.Spec(
        "sample_rate", "--sample-rate", "Output sample rate in Hz (default: the voice's own)."
    ),
    flags.Spec(
        "format", "--format", "wav, flac, ogg, mp3, m4a or opus (default: from the output suffix)."
    ),
    flags.Spec("sentence_pause", "--sentence-pause", "Seconds of silence between sentences."),
    flags.Spec("noise_scale", "--noise-scale", "Piper prior noise."),
    flags.Spec("noise_w", "--noise-w", "Piper duration noise."),
)
#: ``--face`` and the options it takes: talkinghead's (:data:`FACE_OPTIONS`), one definition.
_FACE_PANEL = "Talking head (with --face)"


@batch_command(TTSOptions, _OPTIONS)
@with_options(TalkingHeadOptions, FACE_OPTIONS, into="face_options", panel=_FACE_PANEL)
def tts_command(
    ctx: typer.Context,
    text: list[str] = typer.Argument(None, help="Text to speak; each argument is one item."),
    text_file: list[str] = typer.Option(
        [], "--text-file", "-f", help="UTF-8 text file to speak ('-' = stdin); repeatable."
    ),
    manifest: Path = flags.manifest("text|text_file, id, output, options"),
    output: str = flags.output(
        "{id}.wav",
        "Output path or template ({id}, {stem}, {index}, {parent}); '-' = WAV on stdout.",
    ),
    voice: str = typer.Option(
        None,
        "--voice",
        help=f"Registry name, Kokoro voice (am_adam) or blend (af_heart:0.6,am_adam:0.4), or a "
        f".onnx path (default {DEFAULT_VOICE}; with --face: a voice chosen from the face).",
    ),
    list_voices: bool = typer.Option(
        False, "--list-voices", help="List the voices (gender, accent, rate, licence) and exit."
    ),
    timings: str = typer.Option(
        None,
        "--timings",
        help="Write sentence/word/phoneme timings (path or template); the suffix picks the "
        "format: .json, .srt, .vtt, .tsv, .TextGrid, or .all for every one of them.",
    ),
    face: str = typer.Option(
        None,
        "--face",
        help="Face photo: the output becomes a talking-head video (.mp4).",
        rich_help_panel=_FACE_PANEL,
    ),
    accent: str = typer.Option(
        FaceVideo.accent,
        "--accent",
        help="Accent of the voice chosen from the face, us or gb.",
        rich_help_panel=_FACE_PANEL,
    ),
    *,
    options: TTSOptions,
    face_options: TalkingHeadOptions,
    settings: RunSettings,
) -> NoReturn:
    """Speak text with an offline neural voice (Piper VITS by default).

    Examples:

      avtool tts "Hello there." -o hello.wav

      avtool tts -f chapter.txt -o chapter.flac --timings chapter.json

      avtool tts -m lines.csv -o 'out/{id}.wav' --skip-existing --report status.jsonl

      avtool tts "Hello there." --voice am_adam -o adam.wav    (Kokoro; --list-voices)

      avtool --accept-license tts "Hello there" --face me.jpg -o hello.mp4
    """
    from avtool.errors import InputError
    from avtool.tasks import tts

    opts = global_options(ctx)
    if list_voices:
        tts.print_voices(as_json=opts.json)
        raise typer.Exit(0)
    video = None
    if face is not None:
        if output == "{id}.wav":  # the default: a talking head is a video
            output = "{id}.mp4"
        video = FaceVideo(
            face, face_options.validated(), accent=accent, voice_from_face=voice is None
        )
    items = settings.batch.select(tts.build_items(text or [], text_file, manifest, output))
    if video is None and options.format is None:  # refused before the voice loads
        for item in items:
            suffix = item.output.suffix.lower().lstrip(".") if item.output else "wav"
            if item.error is None and suffix and suffix not in AUDIO_FORMATS:
                raise InputError(f"{item.output}: unknown audio format {suffix!r}; use one of "
                                 f"{', '.join(AUDIO_FORMATS)}")  # fmt: skip
    if voice is not None:
        options = replace(options, voice=voice)
    summary = tts.run(items, options, settings, timings_template=timings, face=video)
    finish(summary, opts, as_json=opts.json and output != "-")
