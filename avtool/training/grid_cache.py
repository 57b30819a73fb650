"""The GRID cache builder: the face stage and audio analysis run once per clip.

``python -m avtool.training.grid_cache FOLDER OUT [--limit N] [--quiet]`` writes one
``<id>.npz`` per clip (landmarks ``(T, 68, 2)`` at 25 fps, mouth crops, the 22.05 kHz mel, 16 kHz
int16 audio, words) plus ``index.json``; unchanged clips are not redone and a failing clip is
reported while the rest go on. Trainers and evaluations read it with
:func:`avtool.datasets.grid.load_item`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from avtool.datasets.grid import (
    CACHE_VERSION,
    FPS,
    SAMPLE_RATE,
    align_for,
    find_clips,
    read_align,
    sentence_from_id,
)
from avtool.errors import InputError
from avtool.io.audio import load_audio
from avtool.io.face import MouthCrop, mouth_crops
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.io.video import VideoReader
from avtool.models.face import FaceDetector, track_video


def prepare_clip(clip: Path, detector: object | None = None) -> dict[str, np.ndarray]:
    """Run the face stage and audio analysis on one clip; the arrays of its cache item.

    Raises:
        InputError: no face, a long gap (frames named), no audio stream, undecodable file.
    """
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.training.grid_cache FOLDER OUT [--limit N] [--quiet]``: build it."""
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
