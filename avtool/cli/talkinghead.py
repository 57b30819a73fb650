"""``avtool talkinghead``: one face photo + speech -> a talking-head video, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from avtool.cli import flags
from avtool.cli.common import batch_command, global_options
from avtool.engines import RunSettings
from avtool.runtime import BatchSummary
from avtool.tasks.options.talkinghead import TalkingHeadOptions, parse_size

#: The face and rendering options of :class:`TalkingHeadOptions` that ``tts --face`` takes too.
FACE_OPTIONS = (
    flags.Spec("fps", "--fps", "Video frames per second."),
    flags.Spec(
        "size",
        "--size",
        "Video WIDTHxHEIGHT, even (default: the photo's, made even).",
        type=str | None,
        parse=parse_size,
    ),
    flags.Spec("still", "--still", "No head motion and no blinks."),
    flags.FACE_INDEX,
    flags.Spec("box", "--box", "Face box x,y,w,h in photo pixels."),
    flags.Spec(
        "landmarks",
        "--landmarks",
        "68-point model in dlib's face box: dlib (shipped) or fan (2D-FAN, fan-2d-68: "
        "downloaded once, sha256-checked; non-commercial).",
    ),
    flags.Spec(
        "mouth",
        "--mouth",
        "Mouth interior of the warp: bank (real teeth and tongue from GRID s1 video, "
        "colour-matched) or drawn (painted cavity and teeth).",
    ),
    flags.Spec(
        "crop",
        "--crop",
        "full (the whole photo) or face (a fixed head-and-shoulders crop around the face, "
        "scaled to the output size).",
    ),
)
#: Every option that fills :class:`TalkingHeadOptions` (``seed`` is the global one).
_OPTIONS = (
    *FACE_OPTIONS,
    flags.Spec(
        "model",
        "--model",
        "warp (visemes, offline default), anyonenet (the registered AnyoneNet predictor drives "
        "the warp), anyonenet-unet (the registered UNet renderer draws 256x256 face crops), "
        "anyonenet-full (the predictor drives the UNet); trained on one GRID speaker; or an "
        "AnyoneNet checkpoint .pt.",
    ),
    flags.Spec(
        "preview", "--preview", "Also write the widest-mouth frame to this PNG/JPEG (template)."
    ),
    flags.Spec(
        "force",
        "--force",
        "Render with anyonenet-unet/-full even for a face that is not its training speaker "
        "(GRID s1); refused otherwise.",
    ),
)


@batch_command(TalkingHeadOptions, _OPTIONS)
def talkinghead_command(
    ctx: typer.Context,
    inputs: list[str] = flags.inputs(
        "Batch: speech files, folders or globs, each spoken by --face."
    ),
    face: str = typer.Option(
        None, "--face", help="A frontal face photo (PNG, JPEG, ...); a manifest may give its own."
    ),
    audio: str = typer.Option(
        None, "--audio", "-a", help="Speech to lip-sync (any format); '-' reads it from stdin."
    ),
    manifest: Path = flags.manifest("input (the speech), face, id, output"),
    output: str = flags.output(
        None,
        "Video (.mp4 .mov .mkv) or a still only (.png .jpg); a template ({id} {stem} "
        "{index}) for several inputs (default {stem}.mp4).",
    ),
    *,
    options: TalkingHeadOptions,
    settings: RunSettings,
) -> BatchSummary:
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

    opts = global_options(ctx)
    options = options.validated()
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
    return talkinghead.run(
        settings.batch.select(items),
        options,
        settings,
        progress=not opts.quiet,
    )
