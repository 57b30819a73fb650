"""What every command shares: global options, error reporting, the console."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from avtool.errors import AvtoolError, ExitCode
from avtool.io.console import stderr_console

F = TypeVar("F", bound=Callable[..., Any])

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the subcommand (``avtool --seed 3 tts ...``)."""

    device: str = "auto"
    quiet: bool = False
    verbose: bool = False
    seed: int = 0
    json: bool = False
    accept_license: bool = False

    @property
    def offline(self) -> bool:
        from avtool.runtime import environment_flag

        return environment_flag("AVTOOL_OFFLINE")


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The :class:`GlobalOptions` of this invocation (defaults when called without the root)."""
    root = ctx.find_root()
    obj = root.obj if root is not None else None
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def overwrite_policy(overwrite: bool, skip_existing: bool) -> str:
    """The batch runner's policy for existing outputs from the two CLI flags.

    Raises:
        typer.BadParameter: both flags given.
    """
    if overwrite and skip_existing:
        raise typer.BadParameter("--overwrite and --skip-existing exclude each other")
    return "overwrite" if overwrite else "skip" if skip_existing else "refuse"


class _LevelFormatter(logging.Formatter):
    """``error: message`` lines: unwrapped, so batch logs can be grepped line by line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def configure_logging(quiet: bool, verbose: bool) -> None:
    """Log to stderr, one line per message; ``--quiet`` keeps warnings and errors only."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter("%(message)s"))
    logger = logging.getLogger("avtool")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def handle_errors(func: F) -> F:
    """Turn :class:`AvtoolError` into a one-line message and its documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AvtoolError as exc:
            from rich.markup import escape

            stderr_console().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]
