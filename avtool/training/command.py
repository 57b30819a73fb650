"""The command line the trainers share (``python -m avtool.training.NAME``).

Three things every trainer's ``main`` did for itself, defined once here:

* the flags several trainers take (``--cache``, ``--out``, ``--epochs``, ``--batch-size``,
  ``--lr``, ``--seed``, ``--threads``...), each with one type and help text
  (:data:`FLAGS`); a trainer names the ones it takes and gives its own defaults
  (:func:`add_flags`), or reads them from its training function's signature
  (:func:`defaults_of`);
* handing the parsed options to the function that trains, or to its settings dataclass, by
  parameter name (:func:`call_with_flags`), so a flag is not spelled again as ``x=args.x``;
* progress lines stamped with the seconds since the run began, on the console and in the
  run's ``train.log`` (:class:`RunLog`);
* running it: log messages to the console, the CPU thread count, and an
  :class:`avtool.errors.AvtoolError` turned into one ``error:`` line and its exit code
  (:func:`run_command`).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import EllipsisType, MappingProxyType
from typing import Any, TypeVar

import torch

from avtool.errors import AvtoolError

__all__ = [
    "FLAGS",
    "REQUIRED",
    "RunLog",
    "add_flags",
    "call_with_flags",
    "defaults_of",
    "run_command",
]

#: The default that makes a flag of :func:`add_flags` required.
REQUIRED: EllipsisType = ...
#: The shared flags, by parameter name: (type, help). ``--NAME-WITH-DASHES`` on the command line.
FLAGS: Mapping[str, tuple[type, str]] = MappingProxyType(
    {
        "cache": (Path, "GRID cache folder (<id>.npz, avtool.training.grid_cache)"),
        "out": (Path, "output folder (created)"),
        "steps": (int, "total updates to reach (a resumed run counts the earlier ones)"),
        "epochs": (int, "passes over the training clips"),
        "max_minutes": (float, "stop (and keep what was trained) after this many minutes"),
        "batch_size": (int, "items per update"),
        "lr": (float, "(peak) learning rate"),
        "seed": (int, "seeds the weights and the batches"),
        "threads": (int, "torch CPU threads"),
        "device": (str, "torch device (cpu, cuda)"),
        "log_every": (int, "log every this many updates (and after the last)"),
        "checkpoint_every": (int, "checkpoint every this many updates (and after the last)"),
        "limit": (int, "use only the first N training clips (smoke runs)"),
    }
)

Result = TypeVar("Result")


def add_flags(parser: argparse.ArgumentParser, **defaults: Any) -> argparse.ArgumentParser:
    """Add the shared flags named by ``defaults`` (:data:`FLAGS`), with those defaults.

    Args:
        parser: the trainer's parser (or sub-command parser).
        **defaults: ``name=default`` for each flag to add, in this order; :data:`REQUIRED`
            makes it required, None leaves it unset unless given.

    Returns:
        ``parser``.

    Raises:
        KeyError: a name that is not in :data:`FLAGS`.
    """
    for name, default in defaults.items():
        kind, help_text = FLAGS[name]
        flag = "--" + name.replace("_", "-")
        if default is REQUIRED:
            parser.add_argument(flag, type=kind, required=True, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=default, help=help_text)
    return parser


def defaults_of(target: Callable[..., Any], *names: str) -> dict[str, Any]:
    """The defaults of ``target``'s parameters ``names`` (a function or a dataclass), for
    :func:`add_flags`: a trainer's defaults are then defined once, in its signature.

    Raises:
        KeyError: a name that is not a parameter with a default.
    """
    parameters = inspect.signature(target).parameters
    found = {name: parameters[name].default for name in names}
    missing = [name for name, value in found.items() if value is inspect.Parameter.empty]
    if missing:
        raise KeyError(f"{target.__name__} has no default for {', '.join(missing)}")
    return found


def call_with_flags(
    target: Callable[..., Result], args: argparse.Namespace, *positional: Any, **given: Any
) -> Result:
    """``target(*positional, **given)`` plus every other parameter of ``target`` that the
    parsed options hold under the same name.

    Args:
        target: the training function, or a settings dataclass.
        args: the parsed options.
        *positional: leading arguments (the data and output folders).
        **given: arguments whose values are not a flag of the same name.

    Returns:
        What ``target`` returns.
    """
    signature = inspect.signature(target)
    bound = signature.bind_partial(*positional, **given).arguments
    taken = {
        name: getattr(args, name)
        for name, parameter in signature.parameters.items()
        if name not in bound
        and hasattr(args, name)
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    return target(*positional, **given, **taken)


def run_command(work: Callable[[], int | None], *, threads: int | None = None) -> int:
    """Run a trainer's command: log messages to the console, set the CPU threads, and turn
    an :class:`AvtoolError` into ``error: MESSAGE`` on stderr and its exit code.

    Args:
        work: does the command; returns its exit code (None for 0).
        threads: torch CPU threads; None leaves torch's default.

    Returns:
        The exit code.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if threads:
        torch.set_num_threads(threads)
    try:
        code = work()
    except AvtoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    return 0 if code is None else code


class RunLog:
    """Progress lines stamped with the seconds since the run began (``[   12.3s] message``),
    printed and, with a file, appended to it; also the run's clock.

    Args:
        path: the log file (e.g. ``OUT/train.log``; its folder must exist); None prints only.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.began = time.monotonic()

    @property
    def seconds(self) -> float:
        """Seconds since the run began."""
        return time.monotonic() - self.began

    @property
    def minutes(self) -> float:
        """Minutes since the run began."""
        return self.seconds / 60

    def __call__(self, message: str) -> None:
        """Print ``message`` with its time stamp (and append it to the file)."""
        line = f"[{self.seconds:7.1f}s] {message}"
        print(line, flush=True)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
