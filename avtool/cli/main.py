"""The root ``avtool`` command: global options and the subcommands that exist."""

from __future__ import annotations

import typer

from avtool import __version__
from avtool.cli import doctor, evaluate, lipread, models, music, tts, v2a, vocode
from avtool.cli import talkinghead as talkinghead_cli
from avtool.cli.common import DEVICE_CHOICES, GlobalOptions, configure_logging, handle_errors

app = typer.Typer(
    name="avtool",
    help="Audio synthesis and audio-visual generation from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avtool {__version__}")
        raise typer.Exit()


@app.callback()
@handle_errors
def root(
    ctx: typer.Context,
    device: str = typer.Option(
        "auto", "--device", help="auto, cpu or cuda (cuda fails when CUDA is absent)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed + inputs = same bytes."),
    json_output: bool = typer.Option(
        False, "--json", help="Print a machine-readable JSON summary on stdout."
    ),
    accept_license: bool = typer.Option(
        False,
        "--accept-license",
        envvar="AVTOOL_ACCEPT_LICENSE",
        help="Accept non-commercial model licences (the face landmarks need it).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """avtool: text-to-speech, vocoders, talking heads and more, offline."""
    if device not in DEVICE_CHOICES:
        raise typer.BadParameter(f"{device!r} is not one of {', '.join(DEVICE_CHOICES)}")
    configure_logging(quiet, verbose)
    ctx.obj = GlobalOptions(
        device=device,
        quiet=quiet,
        verbose=verbose,
        seed=seed,
        json=json_output,
        accept_license=accept_license,
    )


app.command("tts")(tts.tts_command)
app.command("vocode")(vocode.vocode_command)
app.command("music")(music.music_command)
app.command("v2a")(v2a.v2a_command)
app.command("lipread")(lipread.lipread_command)
app.command("talkinghead")(talkinghead_cli.talkinghead_command)
app.command("doctor")(doctor.doctor_command)
app.add_typer(models.app, name="models")
app.add_typer(evaluate.app, name="eval")


def main() -> None:
    """Console-script entry point."""
    app()
