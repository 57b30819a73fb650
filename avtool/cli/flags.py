"""The spelling of options that several commands share, each written once.

Used as a namespace, as ``typer`` is: ``flags.output("{stem}.wav", "Output path ...")``,
``flags.Spec("beam", "--beam", "Prefix beam width.")``. A :class:`Spec` names a field of a
task's options dataclass; :func:`avtool.cli.common.with_options` turns a table of them into
options whose defaults are the dataclass's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer


@dataclass(frozen=True)
class Spec:
    """How one field of a task's options dataclass is spelt on the command line.

    Attributes:
        field: the dataclass field the option fills.
        flags: the option's flags, e.g. ``"--face-index"`` or ``("--count", "-n")``.
        help: its help line.
        type: the command-line type where it is not the field's (``str | None`` for
            ``--size``, parsed into a tuple); None: the field's annotation.
        parse: what turns the command-line value into the field's, e.g. ``parse_size``.
    """

    field: str
    flags: str | tuple[str, ...]
    help: str
    type: Any = None
    parse: Callable[[Any], Any] | None = None

    def option(self, default: Any, *, panel: str | None = None) -> Any:
        """A typer option with these flags and help, and this default."""
        names = (self.flags,) if isinstance(self.flags, str) else self.flags
        return typer.Option(default, *names, help=self.help, rich_help_panel=panel)


# Fields that several commands' options dataclasses share.
FACE_INDEX = Spec("face_index", "--face-index", "Which face when several (0 = largest).")
MAX_GAP = Spec(
    "max_gap", "--max-gap", "Longest run of frames without a face that is bridged (interpolated)."
)
CHUNK_FRAMES = Spec(
    "chunk_frames", "--chunk-frames", "Video frames per model window (bounds memory)."
)
ITERS = Spec("iters", "--iters", "Griffin-Lim iterations (default 32).")


def inputs(help: str) -> Any:
    """A batch command's inputs: files, folders or globs (none given: an empty list)."""
    return typer.Argument(None, help=help)


def manifest(columns: str) -> Any:
    """``--manifest/-m``: a CSV or JSONL file of items, one a row, with these ``columns``."""
    return typer.Option(None, "--manifest", "-m", help=f"CSV/JSONL: {columns}.")


def output(default: str | None, help: str) -> Any:
    """``--output/-o``: an output path, or a template for several inputs."""
    return typer.Option(default, "--output", "-o", help=help)
