"""Training data for AnyoneNet: 80 Hz mels and landmark tracks from talking-face videos.

One ``.npz`` per clip (the *item*) holds:

    ``mel`` ``(F, 80)`` float32 ln-mel at 80 Hz (:data:`~.config.PREDICTOR_MEL`);
    ``frontal`` ``(F, 68, 2)`` float32 frontal landmarks (template units), 25 fps → 80 Hz;
    ``quaternions`` ``(F, 4)`` float32 head pose per mel frame;
    ``landmarks`` ``(T, 68, 2)`` float32 pixels at 25 fps (the raw smoothed track);
    and, when frames are asked for (renderer data): ``frames`` ``(N, S, S, 3)`` uint8 face
    crops, ``frame_landmarks`` ``(N, 68, 2)`` in crop pixels and ``frame_index`` ``(N,)``.

    python -m avtool.models.anyonenet.data ../shared/data/grid data/anyonenet/grid --frame-size 256
    python -m avtool.models.anyonenet.data data/grid_s1_cache data/anyonenet/s1 --from-cache
    python -m avtool.models.anyonenet.data data/grid_s1_cache out/s1-frames --from-cache \\
        --clips ../shared/data/grid_s1/clips --frame-size 256 --frame-step 4
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from avtool.datasets.grid import SAMPLE_RATE, find_clips, s1_split
from avtool.errors import InputError
from avtool.io.audio import load_audio, resample
from avtool.io.face import register
from avtool.io.features import mel_spectrogram
from avtool.io.video import VideoReader
from avtool.models.anyonenet.config import MEL_RATE, PREDICTOR_MEL
from avtool.models.face import FaceDetector, track_video

VIDEO_FPS = 25.0
#: Face crop side in multiples of the landmarks' bounding-box side (brow to chin is about
#: two thirds of a head, so this keeps hair and neck), and the upward shift of its centre.
CROP_SCALE = 1.8
CROP_LIFT = 0.12
DATA_VERSION = 1


def audio_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The predictor's mel of mono audio.

    Args:
        audio: ``(S,)`` float samples in [-1, 1] at ``sample_rate`` Hz.
        sample_rate: its rate (resampled to 16 kHz here).

    Returns:
        ``(F, 80)`` float32 ln-mel, ``F = PREDICTOR_MEL.frames_for(S at 16 kHz)`` (80 Hz).
    """

    audio16 = resample(np.asarray(audio, np.float32), sample_rate, PREDICTOR_MEL.sample_rate)
    if len(audio16) < PREDICTOR_MEL.n_fft:
        raise InputError(
            f"audio of {len(audio16) / PREDICTOR_MEL.sample_rate:.3f} s is too short "
            f"(at least {PREDICTOR_MEL.n_fft / PREDICTOR_MEL.sample_rate:.3f} s)"
        )
    with torch.no_grad():
        mel = mel_spectrogram(torch.from_numpy(audio16), PREDICTOR_MEL)[0]
    return mel.T.contiguous().numpy().astype(np.float32)


def load_audio_mel(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a file's audio (or a video's audio stream) and return :func:`audio_mel`.

    Raises:
        InputError: unreadable file, no audio, or too short; the message names the file.
    """
    audio, rate = load_audio(path, sample_rate=PREDICTOR_MEL.sample_rate)
    try:
        return audio_mel(audio, rate)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def resample_track(values: np.ndarray, from_rate: float, n_out: int, to_rate: float) -> np.ndarray:
    """Linearly resample a per-frame track by frame centres (edges held).

    Frame ``i`` at rate ``r`` is centred at ``(i + 0.5) / r`` seconds, for video frames and
    for the predictor's mel frames alike (the mel frame ``i`` covers the samples around
    ``(i + 0.5) * hop``).

    Args:
        values: ``(T, ...)`` at ``from_rate`` frames/s.
        from_rate: input rate; n_out: output frames; to_rate: output rate.

    Returns:
        ``(n_out, ...)`` float32.
    """
    if len(values) == 0:
        raise InputError("cannot resample an empty track")
    flat = values.reshape(len(values), -1).astype(np.float64)
    position = (np.arange(n_out) + 0.5) / to_rate * from_rate - 0.5
    position = np.clip(position, 0, len(values) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(values) - 1)
    weight = (position - low)[:, None]
    out = flat[low] * (1 - weight) + flat[high] * weight
    return out.reshape((n_out, *values.shape[1:])).astype(np.float32)


def resample_quaternions(
    quats: np.ndarray, from_rate: float, n_out: int, to_rate: float
) -> np.ndarray:
    """:func:`resample_track` for ``(T, 4)`` quaternions: signs aligned, renormalised."""
    aligned = np.array(quats, dtype=np.float64)
    for i in range(1, len(aligned)):
        if np.dot(aligned[i], aligned[i - 1]) < 0:
            aligned[i] = -aligned[i]
    out = resample_track(aligned, from_rate, n_out, to_rate).astype(np.float64)
    out /= np.linalg.norm(out, axis=1, keepdims=True).clip(1e-8)
    out[out[:, 0] < 0] *= -1
    return out.astype(np.float32)


def track_features(
    landmarks: np.ndarray, mel: np.ndarray, fps: float = VIDEO_FPS
) -> dict[str, np.ndarray]:
    """Register a pixel track and bring it to the mel's 80 Hz frames.

    Args:
        landmarks: ``(T, 68, 2)`` pixels at ``fps``.
        mel: ``(F, 80)`` mel of the same clip.

    Returns:
        ``{"mel", "frontal" (F, 68, 2), "quaternions" (F, 4), "landmarks" (T, 68, 2)}``.
    """
    frontal, quats = register(landmarks)
    frames = len(mel)
    return {
        "mel": mel.astype(np.float32),
        "frontal": resample_track(frontal, fps, frames, MEL_RATE),
        "quaternions": resample_quaternions(quats, fps, frames, MEL_RATE),
        "landmarks": landmarks.astype(np.float32),
        "fps": np.float64(fps),
    }


def crop_box(landmarks: np.ndarray) -> tuple[float, float, float]:
    """The square face crop of one face: ``(centre x, centre y, side)`` in pixels.

    Args:
        landmarks: ``(68, 2)`` pixels.
    """
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    side = float(max(high - low)) * CROP_SCALE
    centre = (low + high) / 2.0
    return float(centre[0]), float(centre[1] - CROP_LIFT * side), side


def crop_face(
    image: np.ndarray, box: tuple[float, float, float], size: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Cut the square ``box`` from ``image`` and scale it to ``size`` pixels.

    Areas outside the image are black.

    Returns:
        ``(crop (size, size, 3) uint8, to_crop)`` where ``to_crop`` maps ``(..., 2)`` image
        pixels to crop pixels.
    """
    cx, cy, side = box
    left, top = cx - side / 2.0, cy - side / 2.0
    scale = size / side
    region = Image.fromarray(image).transform(
        (size, size),
        Image.Transform.EXTENT,
        (left, top, left + side, top + side),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )

    def to_crop(points: np.ndarray) -> np.ndarray:
        return ((points - np.array([left, top])) * scale).astype(np.float32)

    return np.asarray(region), to_crop


def extract_clip(
    path: str | os.PathLike[str],
    *,
    frame_size: int | None = None,
    frame_step: int = 1,
    detector: object | None = None,
) -> dict[str, np.ndarray]:
    """Mel, registered track and (optionally) face crops of one talking-face video.

    Args:
        path: a video with an audio stream.
        frame_size: also store face crops of this side (renderer data); None skips them.
        frame_step: keep every ``frame_step``-th crop.
        detector: a loaded :class:`avtool.models.face.FaceDetector`.

    Raises:
        InputError: no audio, no face, a long tracking gap (frames named).
    """
    track = track_video(path, fps=VIDEO_FPS, detector=detector)  # type: ignore[arg-type]
    item = track_features(track.landmarks, load_audio_mel(path), VIDEO_FPS)
    if frame_size:
        item.update(_face_frames(path, track.landmarks, frame_size, frame_step))
    return item


def _face_frames(
    path: str | os.PathLike[str], landmarks: np.ndarray, size: int, step: int
) -> dict[str, np.ndarray]:
    # One box per clip (from the median face), so head motion stays visible in the crops.
    box = crop_box(np.median(landmarks, axis=0))
    frames, points, index = [], [], []
    with VideoReader(path, fps=VIDEO_FPS) as reader:
        for i, frame in enumerate(reader):
            if i >= len(landmarks):
                break
            if i % step:
                continue
            crop, to_crop = crop_face(frame, box, size)
            frames.append(crop)
            points.append(to_crop(landmarks[i]))
            index.append(i)
    return {
        "frames": np.stack(frames),
        "frame_landmarks": np.stack(points),
        "frame_index": np.array(index, dtype=np.int32),
    }


def from_grid_cache(
    path: str | os.PathLike[str],
    *,
    video: str | os.PathLike[str] | None = None,
    frame_size: int | None = None,
    frame_step: int = 1,
) -> dict[str, np.ndarray]:
    """An item from an ``avtool.datasets.grid`` cache item (no face detection needed).

    Args:
        path: the cache item ``<id>.npz``.
        video: the clip it was made from; with ``frame_size`` its frames are cropped around
            the cached landmarks (renderer data without running dlib again).
        frame_size, frame_step: face crops as in :func:`extract_clip`.

    Raises:
        InputError: the file lacks ``landmarks`` or ``audio``; ``frame_size`` without a
            readable ``video``.
    """
    with np.load(path) as data:
        if "landmarks" not in data.files or "audio" not in data.files:
            raise InputError(f"{path}: not a GRID cache item (needs landmarks and audio)")
        landmarks, audio = data["landmarks"], data["audio"]
        fps = float(data["fps"]) if "fps" in data.files else VIDEO_FPS

    mel = audio_mel(audio.astype(np.float32) / 32768.0, SAMPLE_RATE)
    item = track_features(landmarks, mel, fps)
    if frame_size:
        if video is None or not Path(video).is_file():
            raise InputError(f"{path}: face crops need the clip's video, {video} is missing")
        item.update(_face_frames(video, landmarks, frame_size, frame_step))
    return item


def extract_folder(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    from_cache: bool = False,
    frame_size: int | None = None,
    frame_step: int = 1,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
    id_step: int = 1,
    clips_dir: str | os.PathLike[str] | None = None,
    on_item: Callable[[str, str | None], None] | None = None,
) -> dict[str, object]:
    """Extract every clip of a folder into ``out_dir/<id>.npz`` (+ ``index.json``).

    Items already present are kept (delete them to redo); a failing clip is recorded under
    ``failed`` in the index and the rest go on.

    Args:
        source: a folder of videos (or ``clips/``), or a GRID cache with ``from_cache``.
        out_dir: output folder (created).
        from_cache: read ``avtool.datasets.grid`` cache items instead of videos.
        frame_size, frame_step: face crops for the renderer (see :func:`extract_clip`).
        limit: first ``limit`` clips only; ids: only these clip ids.
        id_step: every ``id_step``-th clip (by id, after ``ids``, before ``limit``): an
            evenly spread subset.
        clips_dir: with ``from_cache`` and ``frame_size``, the folder of the cached clips'
            videos (``<id>.*``, or ``clips/<id>.*``) the face crops are cut from.
        on_item: called with ``(clip id, error or None)``.

    Returns:
        The index ``{"version", "items": [ids], "failed": {id: message}}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if from_cache:
        sources = sorted(p for p in Path(source).glob("*.npz") if not p.name.endswith(".part.npz"))
    else:
        sources = find_clips(source)
    if ids is not None:
        wanted = set(ids)
        sources = [p for p in sources if p.stem in wanted]
    sources = sources[:: max(1, id_step)][:limit]
    if not sources:
        raise InputError(f"{source}: no clips to extract")
    videos: dict[str, Path] = {}
    if from_cache and frame_size:
        if clips_dir is None:
            raise InputError("face crops from a GRID cache need the clips' folder (--clips)")
        videos = {p.stem: p for p in find_clips(clips_dir)}
    detector = None
    items, failed = [], {}
    for clip in sources:
        target = out / f"{clip.stem}.npz"
        error = None
        if not target.is_file():
            try:
                if from_cache:
                    item = from_grid_cache(
                        clip,
                        video=videos.get(clip.stem),
                        frame_size=frame_size,
                        frame_step=frame_step,
                    )
                else:
                    if detector is None:
                        detector = FaceDetector()
                    item = extract_clip(
                        clip, frame_size=frame_size, frame_step=frame_step, detector=detector
                    )
                partial = target.with_suffix(".part.npz")
                np.savez_compressed(partial, **item)
                partial.replace(target)
            except InputError as exc:
                error = str(exc)
        if error is None:
            items.append(clip.stem)
        else:
            failed[clip.stem] = error
        if on_item:
            on_item(clip.stem, error)
    index = {"version": DATA_VERSION, "items": items, "failed": failed}
    tmp = out / "index.json.part"
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(out / "index.json")
    return index


def load_items(folder: str | os.PathLike[str], ids: Sequence[str] | None = None) -> list[dict]:
    """Load extracted items (all arrays in memory), sorted by id.

    Raises:
        InputError: no items in ``folder``.
    """
    paths = sorted(p for p in Path(folder).glob("*.npz") if not p.name.endswith(".part.npz"))
    if ids is not None:
        wanted = set(ids)
        paths = [p for p in paths if p.stem in wanted]
    if not paths:
        raise InputError(
            f"{folder}: no extracted items; run python -m avtool.models.anyonenet.data first"
        )
    items = []
    for path in paths:
        with np.load(path) as data:
            items.append({"id": path.stem, **{k: data[k] for k in data.files}})
    return items


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.models.anyonenet.data SOURCE OUT``: extract training items."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("source", help="folder of talking-face videos (or a GRID cache)")
    parser.add_argument("out", help="output folder of .npz items")
    parser.add_argument("--from-cache", action="store_true", help="source is a GRID cache")
    parser.add_argument("--frame-size", type=int, default=None, help="store face crops (px)")
    parser.add_argument("--frame-step", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--id-step", type=int, default=1, help="every N-th clip (by id)")
    parser.add_argument(
        "--clips", default=None, help="with --from-cache --frame-size: the clips' video folder"
    )
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default=None,
        help="only this part of avtool.datasets.grid.s1_split()",
    )
    args = parser.parse_args(argv)
    ids = None
    if args.split:
        ids = s1_split()[args.split]

    def report(clip_id: str, error: str | None) -> None:
        if error:
            print(f"error: {error}")

    try:
        index = extract_folder(
            args.source,
            args.out,
            from_cache=args.from_cache,
            frame_size=args.frame_size,
            frame_step=args.frame_step,
            limit=args.limit,
            ids=ids,
            id_step=args.id_step,
            clips_dir=args.clips,
            on_item=report,
        )
    except InputError as exc:
        print(f"error: {exc}")
        return 2
    print(f"{len(index['items'])} items in {args.out}, {len(index['failed'])} failed")
    return 1 if index["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
