"""Face geometry without models: images, boxes, registration, head pose, tracks, mouth crops.

Shared by ``talkinghead``, ``lipread``, ``v2a`` and ``separate``. Detection, landmark fitting and
tracking (which run dlib or a registered model) live in :mod:`avtool.models.face`; everything
here is plain numpy/PIL on images and landmark arrays.

Conventions:
    * images are ``(H, W, 3)`` uint8 RGB; landmarks are ``(68, 2)`` float32 ``(x, y)`` pixels
      in the iBUG order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59,
      inner lips 60-67);
    * a landmark track is ``(T, 68, 2)`` at the video's (resampled) frame rate;
    * head pose is a unit quaternion ``(w, x, y, z)`` rotating the frontal template into the
      face (camera axes: x right, y down, z away from the camera), as in AnyoneNet.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avtool.errors import InputError

N_LANDMARKS = 68
JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)  # the subject's right eye: image left
LEFT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)
MOUTH = slice(48, 68)

MAX_IMAGE_PIXELS = 200_000_000
MIN_IMAGE_SIDE = 24
MAX_GAP_FRAMES = 12
TEMPLATE_FILE = Path(__file__).with_name("face_template.json")


# --------------------------------------------------------------------------------------------
# Images


def to_rgb_uint8(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Bring any common image array to ``(H, W, 3)`` uint8 RGB.

    Grayscale is replicated, alpha is composited over white (a transparent background must not
    read as black hair), 16-bit and float images are rescaled by their dtype's range.

    Raises:
        InputError: not a 2-D or 3-D array with 1-4 channels.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{source}: expected an image (H, W[, C]), got shape {array.shape}")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float32) / max(1.0, float(array.max()))
    else:
        values = np.nan_to_num(array.astype(np.float32)).clip(0.0, 1.0)
    channels = values.shape[2]
    if channels in (2, 4):
        alpha = values[:, :, -1:]
        values = values[:, :, :-1] * alpha + (1.0 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return np.ascontiguousarray((values * 255.0 + 0.5).astype(np.uint8))


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photo as ``(H, W, 3)`` uint8 RGB, EXIF orientation applied.

    Handles grayscale, palette, RGBA/LA (over white), CMYK and 16-bit files.

    Raises:
        InputError: missing, undecodable, over ``MAX_IMAGE_PIXELS`` or under
            ``MIN_IMAGE_SIDE`` pixels on a side; the message names the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{path}: {width}x{height} is over {MAX_IMAGE_PIXELS // 1_000_000} megapixels;"
                    " downscale it first"
                )
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: cannot read as an image ({exc})") from exc
    if min(image.size) < MIN_IMAGE_SIDE:
        raise InputError(
            f"{path}: {image.size[0]}x{image.size[1]} is too small to hold a face "
            f"(at least {MIN_IMAGE_SIDE} pixels on a side)"
        )
    if image.mode == "P":
        image = image.convert("RGBA")
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L"):
        array = np.asarray(image, dtype=np.uint16)
    elif image.mode == "I":
        array = np.asarray(image, dtype=np.int64).clip(0, None)
        array = (array >> 8 if array.max() > 255 else array).astype(np.uint8)
    else:
        array = np.asarray(image)
    return to_rgb_uint8(array, str(path))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W, C)`` uint8 to ``size = (width, height)`` (Lanczos down, bicubic up)."""
    from PIL import Image

    width, height = size
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    method = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize((width, height), method))


# --------------------------------------------------------------------------------------------
# Boxes


@dataclass(frozen=True)
class Box:
    """A face box in pixels: top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``"x,y,w,h"`` (the ``--box`` option)."""
        try:
            x, y, w, h = (round(float(part)) for part in text.split(","))
        except ValueError:
            raise InputError(f"--box must be x,y,w,h in pixels, got {text!r}") from None
        if w <= 0 or h <= 0:
            raise InputError(f"--box needs a positive width and height, got {text!r}")
        return cls(x, y, w, h)

    @classmethod
    def around(cls, points: np.ndarray, margin: float = 0.0) -> Box:
        """The box around ``(N, 2)`` points, grown by ``margin`` times its size on each side."""
        low, high = points.min(axis=0), points.max(axis=0)
        size = high - low
        low, high = low - margin * size, high + margin * size
        return cls(int(low[0]), int(low[1]), int(high[0] - low[0]) + 1, int(high[1] - low[1]) + 1)

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        return inter / float(self.area + other.area - inter) if inter else 0.0

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


# --------------------------------------------------------------------------------------------
# Registration and head pose


@functools.lru_cache(maxsize=1)
def frontal_template() -> np.ndarray:
    """The frontal 68-point template ``(68, 3)``: x, y centred, inter-ocular distance 1.

    x and y are the generalised-Procrustes mean of real frontal faces (the six GRID speakers);
    z is an approximate depth profile (nose tip forward, jaw corners back) used only to read
    yaw and pitch from 2-D landmarks. See ``face_template.json``.
    """
    data = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    template = np.array(data["points"], dtype=np.float64)
    template.setflags(write=False)
    return template


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres, ``(...,)`` for landmarks ``(..., 68, 2)``."""
    right = landmarks[..., RIGHT_EYE, :].mean(axis=-2)
    left = landmarks[..., LEFT_EYE, :].mean(axis=-2)
    return np.linalg.norm(left - right, axis=-1)


def procrustes(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity transform mapping ``source`` onto ``target`` (both ``(N, 2)``) least-squares.

    Returns:
        ``(scale, rotation (2, 2), translation (2,))`` with ``target ≈ scale * source @ R.T + t``.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    fix = np.diag([1.0, d])
    rotation = u @ fix @ vt
    scale = float((sigma * np.diag(fix)).sum() / max((a**2).sum(), 1e-12))
    return scale, rotation, mu_t - scale * mu_s @ rotation.T


@dataclass(frozen=True)
class Pose:
    """Head pose from a scaled-orthographic fit of the template to 2-D landmarks.

    Attributes:
        quaternion: ``(4,)`` unit quaternion ``(w, x, y, z)``.
        scale: pixels per template unit (≈ inter-ocular distance in pixels).
        translation: ``(2,)`` pixel position of the template origin.
        yaw, pitch, roll: the same rotation in degrees (yaw about y, pitch about x, roll about z).
    """

    quaternion: np.ndarray
    scale: float
    translation: np.ndarray
    yaw: float = field(default=0.0)
    pitch: float = field(default=0.0)
    roll: float = field(default=0.0)


def rotation_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation matrix → ``(4,)`` unit quaternion ``(w, x, y, z)`` with ``w ≥ 0``."""
    m = matrix
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    quat = np.array(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return quat if quat[0] >= 0 else -quat


def quaternion_to_rotation(quaternion: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternions ``(w, x, y, z)`` → ``(..., 3, 3)`` rotation matrices."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def quaternion_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Degrees → ``(4,)`` quaternion of ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``."""
    half = np.radians([pitch, yaw, roll]) / 2.0
    qx = np.array([math.cos(half[0]), math.sin(half[0]), 0.0, 0.0])
    qy = np.array([math.cos(half[1]), 0.0, math.sin(half[1]), 0.0])
    qz = np.array([math.cos(half[2]), 0.0, 0.0, math.sin(half[2])])
    return quaternion_multiply(qz, quaternion_multiply(qy, qx))


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of ``(..., 4)`` quaternions ``(w, x, y, z)``."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def _euler(rotation: np.ndarray) -> tuple[float, float, float]:
    # Inverse of quaternion_from_euler's Rz @ Ry @ Rx.
    yaw = math.degrees(math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0))))
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return yaw, pitch, roll


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Head pose of one face from its landmarks ``(68, 2)`` (scaled orthographic projection).

    Solves ``x ≈ s * P @ R @ X + t`` for the template ``X`` ``(68, 3)`` by least squares, then
    projects the 2x3 solution onto the nearest scaled rotation.
    """
    template = frontal_template()
    points = landmarks.astype(np.float64)
    mu_x, mu_t = points.mean(axis=0), template.mean(axis=0)
    a, b = template - mu_t, points - mu_x
    affine, *_ = np.linalg.lstsq(a, b, rcond=None)  # (3, 2): b ≈ a @ affine
    u, sigma, vt = np.linalg.svd(affine.T, full_matrices=False)  # (2, 3) = u diag(s) vt
    rows = u @ vt  # nearest 2x3 with orthonormal rows
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    scale = float(sigma.mean())
    translation = mu_x - scale * (rows @ mu_t)
    yaw, pitch, roll = _euler(rotation)
    return Pose(rotation_to_quaternion(rotation), scale, translation, yaw, pitch, roll)


def register(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Register landmarks to the frontal template, as AnyoneNet's inputs.

    Args:
        landmarks: ``(T, 68, 2)`` (or ``(68, 2)``) pixels.

    Returns:
        ``(frontal, quaternions)``: ``frontal`` ``(T, 68, 2)`` in template units (inter-ocular
        distance 1, centred), with the head rotation, scale and position removed by undoing
        each frame's pose on the template's depth; ``quaternions`` ``(T, 4)``.
    """
    single = landmarks.ndim == 2
    track = landmarks[None] if single else landmarks
    template = frontal_template()
    frontal = np.empty(track.shape, dtype=np.float32)
    quats = np.empty((len(track), 4), dtype=np.float32)
    for i, points in enumerate(track.astype(np.float64)):
        pose = estimate_pose(points)
        rotation = quaternion_to_rotation(pose.quaternion)
        # Back-project: the observed x, y with the template's depth (rotated), then un-rotate.
        local = (points - pose.translation) / pose.scale
        depth = (template @ rotation.T)[:, 2]
        frontal[i] = (np.column_stack([local, depth]) @ rotation)[:, :2]
        quats[i] = pose.quaternion
    return (frontal[0], quats[0]) if single else (frontal, quats)


# --------------------------------------------------------------------------------------------
# Video tracks


@dataclass
class FaceTrack:
    """Per-frame landmarks of one face through a video.

    Attributes:
        landmarks: ``(T, 68, 2)`` float32 pixels, gaps filled and smoothed.
        detected: ``(T,)`` bool, True where the face was found (not interpolated).
        fps: frame rate of the track in frames/s.
        size: ``(width, height)`` of the frames.
        source: the video file.
    """

    landmarks: np.ndarray
    detected: np.ndarray
    fps: float
    size: tuple[int, int]
    source: str

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the track as ``.npz`` (landmarks, detected, fps, size)."""
        np.savez_compressed(
            path,
            landmarks=self.landmarks,
            detected=self.detected,
            fps=np.float64(self.fps),
            size=np.array(self.size),
            source=np.array(self.source),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FaceTrack:
        with np.load(path) as data:
            return cls(
                data["landmarks"],
                data["detected"],
                float(data["fps"]),
                tuple(int(v) for v in data["size"]),
                str(data["source"]),
            )


def gap_ranges(detected: np.ndarray) -> list[tuple[int, int]]:
    """Runs of missing frames as ``(first, last)`` inclusive frame indices."""
    ranges, start = [], None
    for i, ok in enumerate(detected):
        if not ok and start is None:
            start = i
        elif ok and start is not None:
            ranges.append((start, i - 1))
            start = None
    if start is not None:
        ranges.append((start, len(detected) - 1))
    return ranges


def fill_gaps(
    landmarks: np.ndarray, detected: np.ndarray, max_gap: int, source: str = "video"
) -> np.ndarray:
    """Interpolate short detection gaps linearly (edges hold the nearest detection).

    Args:
        landmarks: ``(T, 68, 2)``; values at undetected frames are ignored.
        detected: ``(T,)`` bool.
        max_gap: longest gap, in frames, that may be filled.
        source: file name for the error message.

    Raises:
        InputError: no frame has a face, or a gap is longer than ``max_gap``; the message
            lists the frame ranges (0-based).
    """
    if not detected.any():
        raise InputError(f"{source}: no face found in any of its {len(detected)} frames")
    long_gaps = [(a, b) for a, b in gap_ranges(detected) if b - a + 1 > max_gap]
    if long_gaps:
        shown = ", ".join(f"{a}-{b}" for a, b in long_gaps[:5])
        more = f" and {len(long_gaps) - 5} more" if len(long_gaps) > 5 else ""
        raise InputError(
            f"{source}: the face is lost for more than {max_gap} frames at frames {shown}{more}"
        )
    frames = np.arange(len(detected))
    known = frames[detected]
    flat = landmarks.reshape(len(detected), -1)
    filled = np.empty_like(flat)
    for column in range(flat.shape[1]):
        filled[:, column] = np.interp(frames, known, flat[known, column])
    return filled.reshape(landmarks.shape)


def smooth_landmarks(landmarks: np.ndarray, window: int = 5) -> np.ndarray:
    """Zero-phase Savitzky-Golay smoothing over time (order 2), keeping lip peaks sharp.

    Args:
        landmarks: ``(T, 68, 2)``.
        window: odd window length in frames; tracks shorter than it are returned unchanged.
    """
    from scipy.signal import savgol_filter

    if window < 3 or len(landmarks) < window:
        return landmarks.copy()
    return savgol_filter(landmarks, window, 2, axis=0, mode="interp").astype(landmarks.dtype)


# --------------------------------------------------------------------------------------------
# Mouth crops


@dataclass(frozen=True)
class MouthCrop:
    """A mouth-region crop: size, colour and how much of the face it covers.

    The crop is centred on the mean of the 20 lip landmarks, rotated so the eyes are level, and
    scaled so its width covers ``width_iod`` inter-ocular distances of the face.

    Attributes:
        width, height: output size in pixels.
        gray: luma ``(T, H, W)`` instead of RGB ``(T, H, W, 3)``.
        width_iod: crop width in inter-ocular distances (mouth width is about 0.8).
    """

    width: int
    height: int
    gray: bool
    width_iod: float

    @classmethod
    def preset(cls, name: str) -> MouthCrop:
        """``lipnet`` (100x50 RGB, as LipNet) or ``gray88`` (88x88 luma, modern front-ends)."""
        presets = {
            "lipnet": cls(100, 50, False, 1.4),
            "gray88": cls(88, 88, True, 1.5),
        }
        if name not in presets:
            raise InputError(f"unknown mouth crop {name!r}; choose from {', '.join(presets)}")
        return presets[name]


def mouth_transforms(landmarks: np.ndarray, crop: MouthCrop, smooth_window: int = 9) -> np.ndarray:
    """Per-frame affine maps from crop pixels to frame pixels.

    Centre, angle and scale are smoothed over time more strongly than the landmarks themselves
    so the crop does not jitter while the lips move inside it.

    Args:
        landmarks: ``(T, 68, 2)`` pixels.
        crop: the crop geometry.
        smooth_window: Savitzky-Golay window for centre, angle and scale.

    Returns:
        ``(T, 2, 3)`` matrices ``A`` with ``frame_xy = A @ (crop_x, crop_y, 1)``.
    """
    right = landmarks[:, RIGHT_EYE].mean(axis=1)
    left = landmarks[:, LEFT_EYE].mean(axis=1)
    eye_vec = left - right
    angle = np.arctan2(eye_vec[:, 1], eye_vec[:, 0])
    iod = np.linalg.norm(eye_vec, axis=1)
    centre = landmarks[:, MOUTH].mean(axis=1)
    params = np.column_stack([centre, angle, iod]).astype(np.float64)
    if smooth_window >= 3 and len(params) >= smooth_window:
        from scipy.signal import savgol_filter

        params = savgol_filter(params, smooth_window, 1, axis=0, mode="interp")
    cx, cy, angle, iod = params.T
    pixel = iod * crop.width_iod / crop.width  # frame pixels per crop pixel
    cos, sin = np.cos(angle) * pixel, np.sin(angle) * pixel
    # crop pixel (u, v), centred at ((W-1)/2, (H-1)/2), rotated by the eye angle and scaled.
    u0, v0 = (crop.width - 1) / 2.0, (crop.height - 1) / 2.0
    maps = np.empty((len(params), 2, 3))
    maps[:, 0, 0], maps[:, 0, 1] = cos, -sin
    maps[:, 1, 0], maps[:, 1, 1] = sin, cos
    maps[:, 0, 2] = cx - cos * u0 + sin * v0
    maps[:, 1, 2] = cy - sin * u0 - cos * v0
    return maps


def warp_crop(frame: np.ndarray, matrix: np.ndarray, crop: MouthCrop) -> np.ndarray:
    """Sample one crop ``(H, W[, 3])`` uint8 from ``frame`` with a crop→frame affine ``(2, 3)``."""
    from PIL import Image

    image = Image.fromarray(frame)
    if crop.gray:
        image = image.convert("L")
    coeffs = tuple(float(v) for v in matrix.reshape(-1))
    return np.asarray(
        image.transform(
            (crop.width, crop.height),
            Image.Transform.AFFINE,
            coeffs,
            resample=Image.Resampling.BILINEAR,
            fillcolor=0,
        )
    )


def mouth_crops(
    frames: Iterable[np.ndarray], landmarks: np.ndarray, crop: MouthCrop
) -> Iterator[np.ndarray]:
    """Yield one normalised mouth crop per frame (streams; frames and track must align).

    Args:
        frames: ``(H, W, 3)`` uint8 frames.
        landmarks: ``(T, 68, 2)`` smoothed track of the same frames.
        crop: size/colour/scale of the crops.

    Yields:
        ``(crop.height, crop.width)`` or ``(crop.height, crop.width, 3)`` uint8.
    """
    maps = mouth_transforms(landmarks, crop)
    for index, frame in enumerate(frames):
        if index >= len(maps):
            break
        yield warp_crop(frame, maps[index], crop)


def mouth_area(landmarks: np.ndarray) -> np.ndarray:
    """Area inside the inner-lip contour (shoelace), ``(...,)`` for ``(..., 68, 2)`` landmarks."""
    inner = landmarks[..., INNER_LIPS, :]
    x, y = inner[..., 0], inner[..., 1]
    return 0.5 * np.abs((x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y).sum(axis=-1))
