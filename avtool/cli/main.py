"""The root ``avtool`` command: global options and the subcommands that exist."""

from __future__ import annotations

import typer

from avtool import __version__
from avtool.cli import doctor, lipread, models, music, separate, tts, v2a, vocode
from avtool.cli import eval as eval_cli
from avtool.cli import talkinghead as talkinghead_cli
from avtool.cli.common import handle_errors, with_global_options

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


def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """avtool: text-to-speech, vocoders, talking heads and more, offline.

    The global options (--seed, --json, --quiet, --verbose, --device, --accept-license) may be
    given before or after the subcommand.
    """


app.callback()(handle_errors(with_global_options(root, root=True)))

app.command("tts")(tts.tts_command)
app.command("vocode")(vocode.vocode_command)
app.command("music")(music.music_command)
app.command("v2a")(v2a.v2a_command)
app.command("lipread")(lipread.lipread_command)
app.command("talkinghead")(talkinghead_cli.talkinghead_command)
app.command("separate")(separate.separate_command)
app.command("doctor")(doctor.doctor_command)
app.add_typer(models.app, name="models")
app.add_typer(eval_cli.app, name="eval")


def _wrap_every_command(*typers: typer.Typer) -> None:
    """Every command, the groups' too, takes the global options after its own arguments and
    turns an :class:`avtool.errors.AvtoolError` into its one-line message and exit code."""
    for group in typers:
        for command in group.registered_commands:
            command.callback = with_global_options(handle_errors(command.callback))


_wrap_every_command(app, models.app, eval_cli.app)


def main() -> None:
    """Console-script entry point."""
    app()
