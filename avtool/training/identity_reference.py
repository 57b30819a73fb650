"""Build (and measure) the training-speaker face reference of the speaker-dependent models.

``python -m avtool.training.identity_reference build --data ../shared/data/grid_s1 --out F.npz``
computes one dlib face descriptor per clip of the GRID s1 **training split**
(:func:`avtool.datasets.grid.s1_split`; validation and test clips are never read) from the
middle frame of each clip, and writes an :class:`~avtool.models.face_identity.IdentityReference`
(``np.savez``, no pickles) with the threshold.

``python -m avtool.training.identity_reference measure --reference F.npz --set NAME=FOLDER ...``
prints, for each set of clips, the distances the guard computes (same frames and landmarks
rule as :meth:`avtool.tasks.speaker_guard.SpeakerGuard.check_video`) and how many clips would
warn; ``--split val`` / ``--split test`` restrict a GRID s1 folder to that split, and clips of
speaker s1 in a folder's ``manifest.csv`` are labelled so that they are never counted as
unseen.

The threshold is dlib's published same-person tolerance (0.6) unless the s1 **validation**
clips need more; the unseen speakers (GRID s4, the non-s1 clips of ``grid/``) are only measured,
never used to set it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avtool import registry
from avtool.datasets.grid import find_clips, s1_split
from avtool.io.files import atomic_output
from avtool.io.video import VideoReader, probe
from avtool.models import face_identity
from avtool.models.face import FaceDetector
from avtool.models.face_identity import GUARD_FACES, GUARD_SPAN_FRAMES, sample_indices

FPS = 25.0
#: The frame of a clip the reference takes (the middle of GRID's 3 s, 75-frame clips).
MIDDLE_FRAME = 37
#: The reference's identity label and file name.
SPEAKER = "GRID s1"


def clip_faces(
    path: Path, detector: FaceDetector, indices: Sequence[int] | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (``(H, W, 3)`` uint8) and dlib landmarks ``(68, 2)`` of a clip's chosen frames.

    ``indices`` None takes the middle frame. Frames without a detected face are skipped.
    """
    with VideoReader(path, fps=FPS) as reader:
        # Decode only as far as needed (the middle frame of a 75-frame GRID clip by default).
        last = max(indices) if indices is not None else MIDDLE_FRAME
        frames = [frame for _, frame in zip(range(last + 1), reader, strict=False)]
    if indices is None:
        indices = [min(MIDDLE_FRAME, len(frames) - 1)]
    images, marks = [], []
    for index in indices:
        if index >= len(frames):
            continue
        boxes = detector.detect(frames[index], exhaustive=False)
        if boxes:
            images.append(frames[index])
            marks.append(detector.landmarks(frames[index], boxes[0]))
    return images, marks


def build(data: Path, out: Path, threshold: float, stride: int = 1) -> dict:
    """Write the reference of every ``stride``-th clip of the s1 training split (sorted ids);
    returns a summary."""
    detector = FaceDetector()
    model = face_identity.load(registry.resolve("dlib-face-descriptor").path)
    clip_dir = data / "clips" if (data / "clips").is_dir() else data
    ids, descriptors = [], []
    for clip_id in s1_split()["train"][::stride]:
        path = clip_dir / f"{clip_id}.mkv"
        images, marks = clip_faces(path, detector, None)
        if images:
            descriptors.append(face_identity.infer(model, images[0], marks[0]))
            ids.append(clip_id)
    reference = face_identity.IdentityReference(
        speakers=(SPEAKER,),
        descriptors=np.stack(descriptors),
        threshold=threshold,
        clip_ids=tuple(ids),
        note=(
            f"dlib descriptors of the middle frame of {len(ids)} GRID s1 training-split clips; "
            f"threshold {threshold} (dlib's same-person tolerance, checked on the s1 validation "
            "split)"
        ),
    )
    with atomic_output(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **reference.to_arrays())
    return {"out": str(out), "clips": len(ids), "threshold": threshold}


def _speakers(folder: Path) -> dict[str, str]:
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return {}
    with manifest.open(encoding="utf-8") as f:
        return {Path(r["file"]).name: r.get("speaker", "") for r in csv.DictReader(f)}


def measure(reference_path: Path, sets: dict[str, tuple[Path, str | None]]) -> dict:
    """Guard distances per clip for each named set ``{name: (folder, split or None)}``."""
    with np.load(reference_path, allow_pickle=False) as arrays:
        reference = face_identity.IdentityReference.from_arrays(dict(arrays))
    detector = FaceDetector()
    model = face_identity.load(registry.resolve("dlib-face-descriptor").path)
    results = {}
    for name, (folder, split) in sets.items():
        clips = find_clips(folder)
        if split:
            keep = set(s1_split()[split])
            clips = [c for c in clips if c.stem in keep]
        speakers = _speakers(folder)
        rows = []
        for clip in clips:
            info = probe(clip)
            n_frames = max(1, round(info.duration * FPS))
            picks = sample_indices(np.ones(n_frames, bool), GUARD_FACES, GUARD_SPAN_FRAMES)
            images, marks = clip_faces(clip, detector, picks)
            descriptors = [
                face_identity.infer(model, i, m) for i, m in zip(images, marks, strict=True)
            ]
            result = face_identity.match(reference, np.stack(descriptors))
            rows.append(
                {
                    "clip": clip.stem,
                    "speaker": speakers.get(clip.name, ""),
                    "distance": round(result.distance, 4),
                    "warns": not result.same,
                }
            )
        dist = [r["distance"] for r in rows]
        results[name] = {
            "clips": len(rows),
            "warnings": sum(r["warns"] for r in rows),
            "min": min(dist), "median": float(np.median(dist)), "max": max(dist),
            "per_clip": rows,
        }  # fmt: skip
    return {"threshold": reference.threshold, "sets": results}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``build`` or ``measure`` (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build")
    make.add_argument("--data", type=Path, required=True)
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--threshold", type=float, default=face_identity.DLIB_TOLERANCE)
    make.add_argument("--stride", type=int, default=1, help="every N-th training clip")
    check = sub.add_parser("measure")
    check.add_argument("--reference", type=Path, required=True)
    check.add_argument("--set", action="append", required=True, metavar="NAME=FOLDER[:SPLIT]")
    check.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        print(json.dumps(build(args.data, args.out, args.threshold, args.stride)))
        return 0
    sets = {}
    for item in args.set:
        name, _, target = item.partition("=")
        folder, _, split = target.partition(":")
        sets[name] = (Path(folder), split or None)
    results = measure(args.reference, sets)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for name, row in results["sets"].items():
        print(f"{name}: {row['clips']} clips, {row['warnings']} warn; distance min "
              f"{row['min']:.3f} median {row['median']:.3f} max {row['max']:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
