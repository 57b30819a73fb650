"""Build the talking head's mouth-interior bank from GRID speaker s1's training clips.

Every frame of the s1 *training* split (``avtool/datasets/grid_s1_split.json``; never val/test,
never grid_s4 or the other speakers of ``../shared/data/grid``) is a candidate: its 68 landmarks
come from the GRID cache (``data/grid_s1_cache/<id>.npz``, made by
:mod:`avtool.training.grid_cache`) or, for a clip without one, from the dlib tracker. Each frame is
brought into the canonical mouth frame (:func:`avtool.models.facewarp.mouth_bank.
canonical_transform`) and described by its inner-lip shape. Frames are grouped into cells of
mouth opening (:data:`OPENING_STEP` canonical pixels) x inner-lip width (quartiles within each
opening), and each cell keeps its most typical frame (the one closest to the cell's median inner
shape, sharpest on near ties). The patches are masked to the inner lips' neighbourhood (they are
only used there) and written as one compressed ``.npz``.

    python -m avtool.training.mouth_bank --clips ../shared/data/grid_s1/clips \\
        --cache data/grid_s1_cache --out avtool/weights/talkinghead/mouth-bank-grid-s1.npz

About a minute on one CPU thread with the cache (one ffmpeg decode per clip).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from avtool.datasets.grid import s1_split
from avtool.io.files import atomic_output
from avtool.io.video import VideoReader
from avtool.models.face import FaceDetector, track_video
from avtool.models.facewarp.mesh import bilinear
from avtool.models.facewarp.mouth import skin_colour
from avtool.models.facewarp.mouth_bank import (
    INNER,
    PATCH_SIZE,
    MouthBank,
    apply,
    canonical_transform,
    inner_opening,
)

OPENING_STEP = 0.75
"""Opening cell size in canonical pixels (a wide-open s1 mouth is about 17)."""
WIDTH_CELLS = 5
COLOUR_TOLERANCE = 0.08
"""Frames whose skin chromaticity is this far from the median (a few s1 sessions are lit
orange) are left out: the colour match corrects light level better than colour casts."""
MASK_DILATE = 8
"""Canonical pixels kept around the inner lips (the blend's feather samples just outside)."""
FPS = 25.0


def cut_patch(frame: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The canonical mouth patch of one frame and its inner lips.

    Args:
        frame: ``(H, W, 3)`` uint8.
        landmarks: ``(68, 2)`` pixels.

    Returns:
        ``(patch (80, 96, 3) uint8, inner (8, 2) float32 patch pixels)``.
    """
    transform = canonical_transform(landmarks)
    inverse = np.linalg.inv(np.vstack([transform, [0, 0, 1]]))[:2]
    width, height = PATCH_SIZE
    vs, us = np.mgrid[0:height, 0:width].astype(np.float64)
    xs = inverse[0, 0] * us + inverse[0, 1] * vs + inverse[0, 2]
    ys = inverse[1, 0] * us + inverse[1, 1] * vs + inverse[1, 2]
    flat = np.concatenate(
        [frame.reshape(-1, 3).astype(np.float32), np.zeros((frame.shape[1] + 1, 3), np.float32)]
    )
    patch = bilinear(flat, frame.shape, xs.ravel(), ys.ravel()).reshape(height, width, 3)
    inner = apply(transform, np.asarray(landmarks[INNER], np.float64)).astype(np.float32)
    return patch, inner


def mask_patch(patch: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Zero the patch outside the inner lips dilated by :data:`MASK_DILATE` (compresses well)."""
    width, height = PATCH_SIZE
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in inner], fill=255, outline=255)
    mask = mask.filter(ImageFilter.MaxFilter(2 * MASK_DILATE + 1))
    return np.where(np.asarray(mask)[:, :, None] > 0, patch, 0).astype(np.uint8)


def sharpness(patch: np.ndarray, inner: np.ndarray) -> float:
    """Variance of the Laplacian of the luma inside the inner lips' box (higher = sharper)."""
    luma = patch.astype(np.float32).mean(axis=2)
    x0, y0 = np.floor(inner.min(axis=0)).astype(int)
    x1, y1 = np.ceil(inner.max(axis=0)).astype(int) + 1
    region = luma[max(1, y0) : max(2, y1), max(1, x0) : max(2, x1)]
    if region.shape[0] < 3 or region.shape[1] < 3:
        return 0.0
    lap = (
        -4 * region[1:-1, 1:-1]
        + region[:-2, 1:-1]
        + region[2:, 1:-1]
        + region[1:-1, :-2]
        + region[1:-1, 2:]
    )
    return float(lap.var())


def clip_frames(clip: Path, cache: Path | None, detector) -> tuple[list[np.ndarray], np.ndarray]:
    """A clip's frames at 25 fps and ``(T, 68, 2)`` landmarks (cache, else tracked)."""
    with VideoReader(clip, fps=FPS) as reader:
        frames = [f.copy() for f in reader]
    cached = cache / f"{clip.stem}.npz" if cache is not None else None
    if cached is not None and cached.is_file():
        with np.load(cached, allow_pickle=False) as data:
            landmarks = data["landmarks"].astype(np.float64)
            detected = data["detected"]
        keep = detected
    else:
        track = track_video(clip, fps=FPS, detector=detector)
        landmarks, keep = track.landmarks.astype(np.float64), track.detected
    n = min(len(frames), len(landmarks))
    frames = [frames[i] if keep[i] else None for i in range(n)]
    return frames, landmarks[:n]


def typical_colour(skin: np.ndarray) -> np.ndarray:
    """``(F,)`` bool: skin chromaticity (r and b over the sum) near the median's."""
    chroma = skin[:, [0, 2]] / np.maximum(skin.sum(axis=1, keepdims=True), 1.0)
    return np.abs(chroma - np.median(chroma, axis=0)).max(axis=1) <= COLOUR_TOLERANCE * (
        np.median(chroma, axis=0).min()
    )


def select(inner: np.ndarray, sharp: np.ndarray, usable: np.ndarray | None = None) -> list[int]:
    """Indices of the exemplars to keep: one typical, sharp frame per (opening, width) cell.

    Args:
        inner: ``(F, 8, 2)`` canonical inner lips of every candidate frame.
        sharp: ``(F,)`` sharpness.
        usable: ``(F,)`` bool, frames allowed (None = all).
    """
    if usable is not None:
        index = np.flatnonzero(usable)
        return sorted(int(index[i]) for i in select(inner[index], sharp[index]))
    opening = inner_opening(inner)
    width = inner[:, 4, 0] - inner[:, 0, 0]
    cells = np.floor(opening / OPENING_STEP).astype(int)
    chosen: list[int] = []
    for cell in np.unique(cells):
        members = np.flatnonzero(cells == cell)
        if len(members) < 3:  # rare extremes are often tracking errors
            continue
        edges = np.quantile(width[members], np.linspace(0, 1, WIDTH_CELLS + 1)[1:-1])
        groups = np.searchsorted(edges, width[members])
        for group in range(WIDTH_CELLS):
            part = members[groups == group]
            if len(part) == 0:
                continue
            median = np.median(inner[part], axis=0)
            distance = np.sqrt(((inner[part] - median) ** 2).sum(axis=2).mean(axis=1))
            near = part[distance <= distance.min() + 0.5]  # typical: within 0.5 px of the best
            chosen.append(int(near[np.argmax(sharp[near])]))
    return sorted(chosen)


def build(clips: list[Path], cache: Path | None, *, log=print) -> MouthBank:
    """Cut, describe and select exemplars from ``clips`` (all must be s1 training clips)."""
    detector = None
    patches: list[np.ndarray] = []
    inners: list[np.ndarray] = []
    skins: list[np.ndarray] = []
    sharp: list[float] = []
    sources: list[str] = []
    start = time.perf_counter()
    for number, clip in enumerate(clips):
        if cache is None or not (cache / f"{clip.stem}.npz").is_file():
            detector = detector or FaceDetector()
        frames, landmarks = clip_frames(clip, cache, detector)
        for index, frame in enumerate(frames):
            if frame is None:
                continue
            patch, inner = cut_patch(frame, landmarks[index])
            patches.append(patch)
            inners.append(inner)
            skins.append(skin_colour(frame, landmarks[index]))
            sharp.append(sharpness(patch, inner))
            sources.append(f"{clip.stem}:{index}")
        if (number + 1) % 25 == 0:
            log(f"{number + 1}/{len(clips)} clips, {len(patches)} frames, "
                f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    inner_all = np.stack(inners)
    skin_all = np.stack(skins)
    keep = select(inner_all, np.asarray(sharp), typical_colour(skin_all))
    return MouthBank(
        patches=np.stack([mask_patch(patches[i], inner_all[i]) for i in keep]),
        inner=inner_all[keep],
        skin=skin_all[keep],
        opening=inner_opening(inner_all[keep]).astype(np.float32),
        source=np.array([sources[i] for i in keep]),
    )


def training_clips(folder: Path, limit: int | None = None) -> list[Path]:
    """The s1 training-split clips present in ``folder`` (sorted by id)."""
    ids = sorted(s1_split()["train"])
    present = [p for p in (folder / f"{i}.mkv" for i in ids) if p.is_file()]
    return present[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=Path("../shared/data/grid_s1/clips"))
    parser.add_argument("--cache", type=Path, default=Path("data/grid_s1_cache"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N training clips")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="only the training clips that have a cache file (no dlib run)",
    )
    args = parser.parse_args(argv)

    clips = training_clips(args.clips)
    cache = args.cache if args.cache.is_dir() else None
    if args.cached_only and cache is not None:
        clips = [c for c in clips if (cache / f"{c.stem}.npz").is_file()]
    clips = clips[: args.limit]
    if not clips:
        print(f"{args.clips}: no GRID s1 training clips", file=sys.stderr)
        return 2
    print(f"{len(clips)} s1 training clips", file=sys.stderr)
    start = time.perf_counter()
    bank = build(clips, cache, log=lambda m: print(m, file=sys.stderr))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as tmp:
        bank.save(tmp)
    info = {
        "exemplars": len(bank),
        "clips": len(clips),
        "opening_range": [float(bank.opening.min()), float(bank.opening.max())],
        "seconds": round(time.perf_counter() - start, 1),
        "bytes": args.out.stat().st_size,
    }
    print(json.dumps(info), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
