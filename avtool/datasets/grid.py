"""GRID-style talking-face datasets: alignments, the s1 split and a cached mouth-crop dataset.

Training lip readers and video-to-speech models re-reads every clip dozens of times; detecting
faces each time would dominate. :func:`prepare` runs the face stage once per clip and writes
one ``.npz`` per clip (the *cache item*) holding:

    ``landmarks`` ``(T, 68, 2)`` float32 pixels at 25 fps, smoothed; ``detected`` ``(T,)`` bool;
    ``lipnet`` ``(T, 50, 100, 3)`` uint8 mouth crops (LipNet's input);
    ``gray88`` ``(T, 88, 88)`` uint8 mouth crops (modern front-ends);
    ``mel`` ``(80, F)`` float32 in the ``hifigan-22k`` contract; ``audio`` ``(S,)`` int16 at
    22.05 kHz; ``text`` the transcript; ``words`` ``(N, 2)`` float32 start/end seconds and
    ``word_labels`` the N words (silences dropped); ``fps``.

Items are re-made only when their clip changes (size and mtime are recorded in ``index.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avtool.errors import InputError

FPS = 25.0
SAMPLE_RATE = 22050
ALIGN_UNITS = 25000.0  # GRID .align times are in 1/25000 s
SILENCES = frozenset({"sil", "sp"})
VIDEO_SUFFIXES = (".mkv", ".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".webm")
SPLIT_FILE = Path(__file__).with_name("grid_s1_split.json")
CACHE_VERSION = 1


@dataclass(frozen=True)
class Word:
    """One aligned word: start and end in seconds."""

    start: float
    end: float
    word: str


def read_align(path: str | os.PathLike[str]) -> list[Word]:
    """Read a GRID ``.align`` file (``start end word`` in 1/25000 s), silences dropped.

    Raises:
        InputError: a malformed line (the message names file and line).
    """
    path = Path(path)
    words = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            start, end, word = int(parts[0]), int(parts[1]), parts[2]
        except (ValueError, IndexError):
            raise InputError(f"{path}:{number}: expected 'start end word', got {line!r}") from None
        if word not in SILENCES:
            words.append(Word(start / ALIGN_UNITS, end / ALIGN_UNITS, word))
    return words


def sentence_from_id(clip_id: str) -> str:
    """The GRID sentence encoded in a clip id (``lbax4n`` → ``lay blue at x four now``).

    Raises:
        InputError: the id does not follow the GRID grammar.
    """
    from avtool.metrics.grid import parse_grid_id

    return parse_grid_id(clip_id)


def find_clips(folder: str | os.PathLike[str]) -> list[Path]:
    """Video files under ``folder`` (or ``folder/clips``), sorted by name."""
    root = Path(folder)
    clips_dir = root / "clips" if (root / "clips").is_dir() else root
    clips = sorted(p for p in clips_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise InputError(f"{folder}: no video clips ({', '.join(VIDEO_SUFFIXES)})")
    return clips


def align_for(clip: Path) -> Path | None:
    """The ``.align`` file of a clip: ``../align/<id>.align`` or next to it."""
    for candidate in (
        clip.parent.parent / "align" / f"{clip.stem}.align",
        clip.with_suffix(".align"),
    ):
        if candidate.is_file():
            return candidate
    return None


def split_ids(ids: Sequence[str], test: float = 0.1, val: float = 0.05) -> dict[str, list[str]]:
    """Deterministic train/val/test split by a hash of each sentence id (order-independent).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.
    """
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for clip_id in sorted(ids):
        fraction = int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) / 2**32
        part = "test" if fraction < test else "val" if fraction < test + val else "train"
        out[part].append(clip_id)
    return out


def s1_split() -> dict[str, list[str]]:
    """The written-down split of GRID s1 used to train and evaluate the shipped models."""
    return json.loads(SPLIT_FILE.read_text(encoding="utf-8"))


def load_item(cache_dir: str | os.PathLike[str], clip_id: str) -> dict[str, np.ndarray]:
    """Load one cache item's arrays (all of them, into memory)."""
    path = Path(cache_dir) / f"{clip_id}.npz"
    if not path.is_file():
        raise InputError(f"{path}: not in the cache; run prepare first")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
