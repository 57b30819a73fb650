"""A command's task options declared as a table (flags.Spec rows, common.with_options): the
defaults are the dataclass's, the values arrive as one object, ``seed`` is the global one."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from typer.testing import CliRunner

from avtool.cli import flags
from avtool.cli.common import batch_command, with_global_options, with_options
from avtool.engines import RunSettings
from avtool.runtime import BatchSummary

runner = CliRunner()


@dataclass(frozen=True)
class _Probe:
    count: int = 3
    size: tuple[int, int] | None = None
    name: str = "probe"
    seed: int = 0


def _parse_size(text: str | None) -> tuple[int, int] | None:
    return None if text is None else tuple(int(v) for v in text.split("x"))  # type: ignore[return-value]


_SPECS = (
    flags.Spec("count", ("--count", "-n"), "How many."),
    flags.Spec("size", "--size", "WIDTHxHEIGHT.", type=str | None, parse=_parse_size),
)


def _app(seen: list[_Probe]) -> typer.Typer:
    app = typer.Typer()

    def root() -> None:
        pass

    @with_options(_Probe, _SPECS)
    def cmd(ctx: typer.Context, word: str = typer.Argument("w"), *, options: _Probe) -> None:
        seen.append(options)

    app.callback()(with_global_options(root, root=True))
    app.command("cmd")(with_global_options(cmd))
    return app


def test_defaults_come_from_the_dataclass_and_values_arrive_as_one_object():
    seen: list[_Probe] = []
    app = _app(seen)
    assert runner.invoke(app, ["cmd"]).exit_code == 0
    assert seen[-1] == _Probe()
    result = runner.invoke(app, ["--seed", "7", "cmd", "x", "-n", "5", "--size", "4x2"])
    assert result.exit_code == 0, result.output
    # parse turns the text into the field's value; an unlisted field keeps its default.
    assert seen[-1] == _Probe(count=5, size=(4, 2), name="probe", seed=7)


def test_help_shows_the_table_and_its_defaults_not_the_object():
    result = runner.invoke(_app([]), ["cmd", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "--count" in result.stdout and "-n" in result.stdout and "How many." in result.stdout
    assert "[default: 3]" in result.stdout
    assert "--options" not in result.stdout and "--name" not in result.stdout


def test_batch_command_prints_the_summary_and_exits_with_its_code():
    app = typer.Typer()

    @app.command()
    @batch_command(_Probe, _SPECS)
    def cmd(ctx: typer.Context, *, options: _Probe, settings: RunSettings) -> BatchSummary:
        assert settings.policy == "overwrite" and options.count == 2
        return BatchSummary(results=[])

    result = runner.invoke(app, ["-n", "2", "--overwrite"])
    assert result.exit_code == 0, result.output
