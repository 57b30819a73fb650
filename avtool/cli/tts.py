"""``avtool tts``: text to speech with the bundled offline voices."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.talkinghead import TalkingHeadOptions
from avtool.tasks.tts import DEFAULT_VOICE, TTSOptions

_DEFAULTS = TTSOptions()
#: ``--face``'s options are talkinghead's: one definition, the options dataclass.
_FACE = TalkingHeadOptions()


@with_batch_options
def tts_command(
    ctx: typer.Context,
    text: list[str] = typer.Argument(None, help="Text to speak; each argument is one item."),
    text_file: list[str] = typer.Option(
        [], "--text-file", "-f", help="UTF-8 text file to speak ('-' = stdin); repeatable."
    ),
    manifest: Path = typer.Option(
        None, "--manifest", "-m", help="CSV or JSONL: text|text_file, id, output, options."
    ),
    output: str = typer.Option(
        "{id}.wav",
        "--output",
        "-o",
        help="Output path or template ({id}, {stem}, {index}, {parent}); '-' = WAV on stdout.",
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
    accent: str = typer.Option(
        "us", "--accent", help="With --face: accent of the chosen voice, us or gb."
    ),
    speed: float = typer.Option(_DEFAULTS.speed, "--speed", help="Speaking-rate multiplier."),
    sample_rate: int = typer.Option(
        None, "--sample-rate", help="Output sample rate in Hz (default: the voice's own)."
    ),
    audio_format: str = typer.Option(
        None, "--format", help="wav, flac, ogg, mp3, m4a or opus (default: from the output suffix)."
    ),
    sentence_pause: float = typer.Option(
        _DEFAULTS.sentence_pause, "--sentence-pause", help="Seconds of silence between sentences."
    ),
    noise_scale: float = typer.Option(None, "--noise-scale", help="Piper prior noise."),
    noise_w: float = typer.Option(None, "--noise-w", help="Piper duration noise."),
    timings: str = typer.Option(
        None,
        "--timings",
        help="Write sentence/word/phoneme timings (path or template); the suffix picks the "
        "format: .json, .srt, .vtt, .tsv, .TextGrid, or .all for every one of them.",
    ),
    face: str = typer.Option(
        None, "--face", help="Face photo: the output becomes a talking-head video (.mp4)."
    ),
    face_index: int = typer.Option(
        _FACE.face_index, "--face-index", help="With --face: 0 = largest face."
    ),
    box: str = typer.Option(_FACE.box, "--box", help="With --face: face box x,y,w,h in pixels."),
    still: bool = typer.Option(
        _FACE.still, "--still", help="With --face: no head motion, no blinks."
    ),
    fps: float = typer.Option(_FACE.fps, "--fps", help="With --face: video frames per second."),
    size: str = typer.Option(None, "--size", help="With --face: video WIDTHxHEIGHT (even)."),
    landmarks: str = typer.Option(
        _FACE.landmarks,
        "--landmarks",
        help="With --face: dlib (shipped) or fan (2D-FAN, downloaded once).",
    ),
    mouth: str = typer.Option(
        _FACE.mouth, "--mouth", help="With --face: bank (real mouth interiors) or drawn."
    ),
    crop: str = typer.Option(
        _FACE.crop, "--crop", help="With --face: full (the whole photo) or face (head crop)."
    ),
    settings: RunSettings = RunSettings(),
) -> None:
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
        from avtool.tasks.talkinghead import parse_size

        if output == "{id}.wav":  # the default: a talking head is a video
            output = "{id}.mp4"
        video = tts.FaceVideo(
            face,
            TalkingHeadOptions(fps=fps, size=parse_size(size), still=still,
                               face_index=face_index, box=box, seed=opts.seed,
                               landmarks=landmarks, mouth=mouth, crop=crop).validated(),
            accent=accent, voice_from_face=voice is None,
        )  # fmt: skip
    items = settings.batch.select(tts.build_items(text or [], text_file, manifest, output))
    if video is None and audio_format is None:  # refused before the voice loads
        for item in items:
            suffix = item.output.suffix.lower().lstrip(".") if item.output else "wav"
            if item.error is None and suffix and suffix not in tts.AUDIO_FORMATS:
                raise InputError(f"{item.output}: unknown audio format {suffix!r}; use one of "
                                 f"{', '.join(tts.AUDIO_FORMATS)}")  # fmt: skip
    options = TTSOptions(
        voice=voice if voice is not None else DEFAULT_VOICE,
        speed=speed,
        sample_rate=sample_rate,
        format=audio_format,
        sentence_pause=sentence_pause,
        noise_scale=noise_scale,
        noise_w=noise_w,
        seed=opts.seed,
    )
    summary = tts.run(
        items,
        options,
        settings,
        timings_template=timings,
        face=video,
    )
    finish(summary, opts, as_json=opts.json and output != "-")
