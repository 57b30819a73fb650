"""Atomic output files: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import abc
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from avtool.errors import SetupError


def ensure_parent_writable(path: Path) -> None:
    """Create ``path``'s folder if needed and check it is writable.

    Raises:
        SetupError: the folder cannot be created or written to.
    """
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"{path}: cannot create output folder {parent} ({exc.strerror})") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SetupError(f"{path}: output folder {parent} is not writable")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched, so a
    failed or interrupted run never leaves a partial output under the final name. The
    temporary name keeps the target's suffix (or ``suffix``) because ffmpeg and soundfile
    pick the container from it.

    Args:
        path: final output path.
        suffix: extension for the temporary file; defaults to ``path``'s own.
    """
    target = Path(path)
    ensure_parent_writable(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; outputs should get the permissions any new file would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise SetupError(f"{target}: nothing was written")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class StreamingOutput(abc.ABC):
    """A file written piece by piece inside a ``with`` block, which appears only on success.

    Subclasses put everything they open (the temporary file from :func:`atomic_output`, an
    encoder process, a scratch folder) on the ``stack`` given to :meth:`_open`, and complete the
    file in :meth:`_finish` (close an encoder, check something was written). An exception in the
    ``with`` block or in ``_finish`` unwinds the stack, which removes the temporary file and
    leaves any existing ``path`` untouched; a clean exit unwinds it in order, which renames it.

    Args:
        path: the final output path.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stack: contextlib.ExitStack | None = None
        self._frames = 0

    @property
    def frames_written(self) -> int:
        """What was written so far: samples per channel (audio) or frames (video)."""
        return self._frames

    @abc.abstractmethod
    def _open(self, stack: contextlib.ExitStack) -> None:
        """Open the temporary output and whatever writes it, registering each on ``stack``."""

    def _finish(self) -> None:  # noqa: B027 (an optional hook: nothing to complete by default)
        """Complete the output after a clean ``with`` block (the stack is unwound after)."""

    def __enter__(self) -> Self:
        # If opening fails, the stack's own exit removes what was opened so far.
        with contextlib.ExitStack() as stack:
            self._open(stack)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        if exc is not None:
            stack.__exit__(exc_type, exc, tb)
            return
        with stack:  # an error raised while finishing also removes the temporary file
            self._finish()


def sidecar_path(output: Path) -> Path:
    """Where the metadata of ``output`` goes: ``out.wav`` -> ``out.wav.json``; a JSON output's
    is ``out.meta.json`` (not ``out.json.json``)."""
    output = Path(output)
    if output.suffix.lower() == ".json":
        return output.with_name(output.stem + ".meta.json")
    return output.with_name(output.name + ".json")


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write JSON atomically (temp file + rename), UTF-8, indented."""
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return path
