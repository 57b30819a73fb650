"""``avtool talkinghead``: one face photo + speech -> a talking-head video, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli.common import finish, global_options, with_batch_options
from avtool.engines import RunSettings
from avtool.tasks.talkinghead import TalkingHeadOptions

_DEFAULTS = TalkingHeadOptions()


@with_batch_options
def talkinghead_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        None, help="Batch: speech files, folders or globs, each spoken by --face."
    ),
    face: str = typer.Option(
        None, "--face", help="A frontal face photo (PNG, JPEG, ...); a manifest may give its own."
    ),
    audio: str = typer.Option(
        None, "--audio", "-a", help="Speech to lip-sync (any format); '-' reads it from stdin."
    ),
    manifest: Path = typer.Option(
        None, "--manifest", "-m", help="CSV/JSONL: input (the speech), face, id, output."
    ),
    output: str = typer.Option(
        None,
        "--output",
        "-o",
        help="Video (.mp4 .mov .mkv) or a still only (.png .jpg); a template ({id} {stem} "
        "{index}) for several inputs (default {stem}.mp4).",
    ),
    fps: float = typer.Option(_DEFAULTS.fps, "--fps", help="Frames per second."),
    size: str = typer.Option(
        None, "--size", help="Output WIDTHxHEIGHT, even (default: the photo's, made even)."
    ),
    still: bool = typer.Option(_DEFAULTS.still, "--still", help="No head motion and no blinks."),
    face_index: int = typer.Option(
        _DEFAULTS.face_index, "--face-index", help="Which face when several (0 = largest)."
    ),
    box: str = typer.Option(_DEFAULTS.box, "--box", help="Face box x,y,w,h in photo pixels."),
    model: str = typer.Option(
        _DEFAULTS.model,
        "--model",
        help="warp (visemes, offline default), anyonenet (the registered AnyoneNet predictor "
        "drives the warp), anyonenet-unet (the registered UNet renderer draws 256x256 face "
        "crops), anyonenet-full (the predictor drives the UNet); trained on one GRID speaker; "
        "or an AnyoneNet checkpoint .pt.",
    ),
    preview: str = typer.Option(
        None, "--preview", help="Also write the widest-mouth frame to this PNG/JPEG (template)."
    ),
    landmarks: str = typer.Option(
        _DEFAULTS.landmarks,
        "--landmarks",
        help="68-point model in dlib's face box: dlib (shipped) or fan (2D-FAN, fan-2d-68: "
        "downloaded once, sha256-checked; non-commercial).",
    ),
    mouth: str = typer.Option(
        _DEFAULTS.mouth,
        "--mouth",
        help="Mouth interior of the warp: bank (real teeth and tongue from GRID s1 video, "
        "colour-matched) or drawn (painted cavity and teeth).",
    ),
    crop: str = typer.Option(
        _DEFAULTS.crop,
        "--crop",
        help="full (the whole photo) or face (a fixed head-and-shoulders crop around the "
        "face, scaled to the output size).",
    ),
    force: bool = typer.Option(
        _DEFAULTS.force,
        "--force",
        help="Render with anyonenet-unet/-full even for a face that is not its training "
        "speaker (GRID s1); refused otherwise.",
    ),
    settings: RunSettings = RunSettings(),
) -> None:
    """Animate a face photo to speak an audio file (mouth, head motion, blinks).

    The face landmarks model is non-commercial: pass --accept-license (or set
    AVTOOL_ACCEPT_LICENSE=1).

    Examples:

      avtool --accept-license talkinghead --face me.jpg --audio speech.wav -o me.mp4

      avtool --accept-license talkinghead --face me.jpg -a speech.wav -o me.mp4 --still
        --size 512x512 --preview me.png

      avtool --accept-license talkinghead --face me.jpg -a speech.wav -o me.mp4 --model anyonenet

      avtool --accept-license talkinghead --face me.jpg -a speech.wav -o me.mp4 --landmarks fan

      avtool --accept-license talkinghead --face group.jpg -a speech.wav -o me.mp4 --crop face

      avtool tts "Hello there." -o - | avtool talkinghead --face me.jpg -a - -o hello.mp4
        --accept-license

      avtool talkinghead --face me.jpg speech/ -o 'videos/{stem}.mp4' --report status.jsonl

      avtool talkinghead -m pairs.csv -o 'videos/{id}.mp4'    (columns input, face, id, output)

    The warp renderer runs on the CPU (--device cuda is refused, exit 4); the AnyoneNet
    models run on --device.
    """
    from avtool.errors import InputError
    from avtool.runtime import BatchItem
    from avtool.tasks import talkinghead
    from avtool.tasks.talkinghead import parse_size

    opts = global_options(ctx)
    options = TalkingHeadOptions(
        fps=fps,
        size=parse_size(size),
        still=still,
        face_index=face_index,
        box=box,
        model=model,
        seed=opts.seed,
        preview=preview,
        landmarks=landmarks,
        mouth=mouth,
        crop=crop,
        force=force,
    ).validated()
    template = output or "{stem}.mp4"
    items = []
    if audio == "-":
        if output is None:
            raise InputError("--audio - (speech on stdin) needs -o: the video has no name")
        if face is None:
            raise InputError("--audio -: give --face")
        spoken = {"face": Path(face)}
        items.append(BatchItem(0, Path(output).stem, "-", Path(output), options=spoken,
                               origin="<stdin>", source=Path("-")))  # fmt: skip
    batch_inputs = [*(inputs or []), *([audio] if audio not in (None, "-") else [])]
    if batch_inputs or manifest is not None or not items:
        if output is not None and len(batch_inputs) > 1 and "{" not in output:
            raise InputError(f"-o {output}: several inputs need a template such as '{{stem}}.mp4'")
        items += talkinghead.build_items(batch_inputs, manifest, template, face)
    summary = talkinghead.run_items(
        settings.batch.select(items),
        options,
        settings,
        progress=not opts.quiet,
    )
    finish(summary, opts)
