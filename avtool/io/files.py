"""Atomic output files: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
