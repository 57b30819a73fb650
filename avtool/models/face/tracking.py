"""Following one face through a video: per-frame landmarks, re-detection, gaps filled, smoothed.

Frames stream from :class:`avtool.io.video.VideoReader` (bounded memory); only the
``(T, 68, 2)`` track is kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np

from avtool.errors import InputError
from avtool.io.face import (
    MAX_GAP_FRAMES,
    N_LANDMARKS,
    Box,
    FaceTrack,
    fill_gaps,
    smooth_landmarks,
)
from avtool.io.video import VideoReader
from avtool.models.face.detector import FaceDetector


def track_frames(
    frames: Iterable[np.ndarray],
    *,
    detector: FaceDetector | None = None,
    face_index: int = 0,
    box: Box | None = None,
    redetect_every: int = 5,
    on_frame: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-frame landmarks of one face, followed from frame to frame.

    The first frame with a face picks it (``box``, else ``face_index``). Between detections the
    last detector box is moved with the landmarks' centre (the shape predictor only needs a
    box of the detector's kind); every ``redetect_every`` frames the detector runs again in a
    region around the face (and on the whole frame when that fails), taking the box that
    overlaps the tracked one most, so the track stays on the same person.

    Returns:
        ``(landmarks (T, 68, 2) float32, detected (T,) bool)``, zeros where not detected.
    """
    detector = detector or FaceDetector()
    out: list[np.ndarray] = []
    found: list[bool] = []
    tracked: Box | None = None  # the detector-style box of the face in the previous frame
    detected_box: Box | None = None
    anchor = np.zeros(2)
    since_detection = 0
    for index, frame in enumerate(frames):
        chosen: Box | None = None
        if tracked is None:
            if box is not None and index == 0:
                chosen = box
            else:
                boxes = detector.detect(frame, exhaustive=False)
                if len(boxes) > face_index:
                    chosen = boxes[face_index]
            since_detection = 0
        elif since_detection + 1 >= redetect_every:
            chosen = _follow(detector, frame, tracked)
            since_detection = 0
        else:
            chosen = tracked
            since_detection += 1
        if chosen is None:
            out.append(np.zeros((N_LANDMARKS, 2), np.float32))
            found.append(False)
            tracked = None
        else:
            points = detector.landmarks(frame, chosen)
            out.append(points)
            found.append(True)
            if since_detection == 0:
                detected_box, anchor = chosen, _anchor(points)
            tracked = _shifted(detected_box, _anchor(points) - anchor)
        if on_frame is not None:
            on_frame(index)
    if not out:
        return np.zeros((0, N_LANDMARKS, 2), np.float32), np.zeros(0, bool)
    return np.stack(out), np.array(found)


def _anchor(points: np.ndarray) -> np.ndarray:
    # Eyes and nose move with the head but not with speech, unlike the jaw and lips.
    return points[27:48].mean(axis=0)


def _shifted(box: Box, shift: np.ndarray) -> Box:
    return Box(round(float(box.x + shift[0])), round(float(box.y + shift[1])), box.w, box.h)


def _follow(detector: FaceDetector, frame: np.ndarray, previous: Box) -> Box | None:
    height, width = frame.shape[:2]
    pad_x, pad_y = previous.w // 2, previous.h // 2
    x0, y0 = max(0, previous.x - pad_x), max(0, previous.y - pad_y)
    x1 = min(width, previous.x + previous.w + pad_x)
    y1 = min(height, previous.y + previous.h + pad_y)
    region = frame[y0:y1, x0:x1]
    min_face = int(previous.w * 0.7)
    boxes = [Box(b.x + x0, b.y + y0, b.w, b.h) for b in detector.detect(region, min_face)]
    if not boxes:
        boxes = detector.detect(frame, exhaustive=False)
    best = max(boxes, key=previous.iou, default=None)
    return best if best is not None and previous.iou(best) > 0.3 else None


def track_video(
    path: str | os.PathLike[str],
    *,
    fps: float | None = 25.0,
    face_index: int = 0,
    box: Box | None = None,
    max_gap: int = MAX_GAP_FRAMES,
    smooth_window: int = 5,
    detector: FaceDetector | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> FaceTrack:
    """Track one face through a video: landmarks per frame, gaps filled, smoothed.

    Streams frames (bounded memory); only the ``(T, 68, 2)`` track is kept.

    Args:
        path: any video ffmpeg reads; variable or non-25 frame rates are resampled to ``fps``.
        fps: frame rate of the track (None keeps the file's).
        face_index, box: which face (see :func:`detect_face`).
        max_gap: longest run of frames without a face that is interpolated.
        smooth_window: Savitzky-Golay window in frames (0 disables smoothing).
        detector: a loaded :class:`FaceDetector`.
        on_frame: called with each frame index (progress bars).

    Raises:
        InputError: no frames, no face in any frame, or a gap longer than ``max_gap``.
    """
    reader = VideoReader(path, fps=fps)
    with reader:
        landmarks, detected = track_frames(
            reader, detector=detector, face_index=face_index, box=box, on_frame=on_frame
        )
    if len(detected) == 0:
        raise InputError(f"{path}: the video has no frames")
    if not detected.any():
        raise InputError(f"{path}: no face found (first failing frame: 0 of {len(detected)})")
    filled = fill_gaps(landmarks, detected, max_gap, str(path))
    width, height = reader.frame_shape[1], reader.frame_shape[0]
    return FaceTrack(
        smooth_landmarks(filled, smooth_window), detected, reader.fps, (width, height), str(path)
    )
