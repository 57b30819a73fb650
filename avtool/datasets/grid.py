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
from collections.abc import Callable, Sequence
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
    from avtool.eval.grid import parse_grid_id

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


def prepare_clip(clip: Path, detector: object | None = None) -> dict[str, np.ndarray]:
    """Run the face stage and audio analysis on one clip; the arrays of its cache item.

    Raises:
        InputError: no face, a long gap (frames named), no audio stream, undecodable file.
    """
    import torch

    from avtool.io.audio import load_audio
    from avtool.io.face import FaceDetector, MouthCrop, mouth_crops, track_video
    from avtool.io.features import MelSpec, mel_spectrogram
    from avtool.io.video import VideoReader

    detector = detector or FaceDetector()
    track = track_video(clip, fps=FPS, detector=detector)  # type: ignore[arg-type]
    with VideoReader(clip, fps=FPS) as reader:
        frames = list(reader)[: track.n_frames]
    crops = {}
    for name in ("lipnet", "gray88"):
        crops[name] = np.stack(list(mouth_crops(frames, track.landmarks, MouthCrop.preset(name))))
    audio, _ = load_audio(clip, sample_rate=SAMPLE_RATE)
    spec = MelSpec.hifigan_22k()
    with torch.no_grad():
        mel = mel_spectrogram(torch.from_numpy(audio), spec)[0].numpy()
    align = align_for(clip)
    words = read_align(align) if align else []
    text = " ".join(w.word for w in words) if words else _text_or_empty(clip.stem)
    return {
        "landmarks": track.landmarks.astype(np.float32),
        "detected": track.detected,
        **crops,
        "mel": mel.astype(np.float32),
        "audio": (np.clip(audio, -1, 1) * 32767).astype(np.int16),
        "text": np.array(text),
        "words": np.array([(w.start, w.end) for w in words], np.float32).reshape(-1, 2),
        "word_labels": np.array([w.word for w in words]),
        "fps": np.float64(FPS),
    }


def _text_or_empty(clip_id: str) -> str:
    try:
        return sentence_from_id(clip_id)
    except InputError:
        return ""


def prepare(
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    on_item: Callable[[str, str | None], None] | None = None,
) -> dict[str, object]:
    """Build (or update) the cache of a folder of clips.

    Args:
        folder: a dataset folder (``clips/`` + ``align/``, or videos directly).
        out_dir: where ``<id>.npz`` and ``index.json`` go.
        limit: only the first ``limit`` clips (smoke runs).
        on_item: called with ``(clip id, error message or None)`` after each clip.

    Returns:
        The index: ``{"version", "items": {id: {"size", "mtime", "frames"}},
        "failed": {id: message}}``; a failing clip is reported there and the rest go on.
    """
    from avtool.io.face import FaceDetector

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    if index.get("version") != CACHE_VERSION:
        index = {"version": CACHE_VERSION, "items": {}, "failed": {}}
    clips = find_clips(folder)[:limit]
    detector = FaceDetector()
    for clip in clips:
        stat = clip.stat()
        key = {"size": stat.st_size, "mtime": int(stat.st_mtime)}
        item = out / f"{clip.stem}.npz"
        known = index["items"].get(clip.stem)
        if known and item.is_file() and all(known.get(k) == v for k, v in key.items()):
            if on_item:
                on_item(clip.stem, None)
            continue
        error = None
        try:
            arrays = prepare_clip(clip, detector)
            partial = item.with_suffix(".part.npz")
            np.savez_compressed(partial, **arrays)
            partial.replace(item)
            index["items"][clip.stem] = {**key, "frames": len(arrays["landmarks"])}
            index["failed"].pop(clip.stem, None)
        except InputError as exc:
            error = str(exc)
            index["failed"][clip.stem] = error
            index["items"].pop(clip.stem, None)
        if on_item:
            on_item(clip.stem, error)
    tmp = index_path.with_suffix(".json.part")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    tmp.replace(index_path)
    return index


def load_item(cache_dir: str | os.PathLike[str], clip_id: str) -> dict[str, np.ndarray]:
    """Load one cache item's arrays (all of them, into memory)."""
    path = Path(cache_dir) / f"{clip_id}.npz"
    if not path.is_file():
        raise InputError(f"{path}: not in the cache; run prepare first")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.datasets.grid FOLDER OUT [--limit N] [--quiet]``: build the cache."""
    import argparse

    from rich.progress import Progress

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("out")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    total = len(find_clips(args.folder)[: args.limit])
    failures: list[str] = []
    with Progress(disable=args.quiet) as progress:
        task = progress.add_task("face stage", total=total)

        def on_item(clip_id: str, error: str | None) -> None:
            if error:
                failures.append(error)
                progress.console.print(f"error: {error}", markup=False)
            progress.advance(task)

        index = prepare(args.folder, args.out, limit=args.limit, on_item=on_item)
    print(f"{len(index['items'])} clips cached in {args.out}, {len(index['failed'])} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
