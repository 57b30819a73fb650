"""The terminal: one rich console on stderr, for progress bars, summaries and messages."""

from __future__ import annotations

from rich.console import Console


def stderr_console(quiet: bool = False) -> Console:
    """A rich console on stderr: stdout is kept for data (``-o -``) and ``--json``.

    Args:
        quiet: print nothing (``--quiet``).
    """
    return Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True)
