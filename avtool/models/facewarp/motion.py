"""Face motion: mouth shapes, head rotations (quaternions) and blinks as landmark tracks.

The renderer is driven by a :class:`FaceMotion`: per-frame 68-point landmarks in the frontal
template's units (inter-ocular distance 1, head rotation removed, as
:func:`avtool.io.face.register` gives and AnyoneNet predicts) plus one unit quaternion
``(w, x, y, z)`` per frame for the head pose. :func:`project` turns it into pixel landmarks of
the photo: the change from the photo's own frontal shape and pose is applied to the photo's
detected landmarks, so a motion equal to the photo's rest state reproduces the photo exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avtool.errors import InputError
from avtool.io.face import (
    N_LANDMARKS,
    frontal_template,
    quaternion_from_euler,
    quaternion_multiply,
    quaternion_to_rotation,
)
from avtool.models.facewarp.visemes import CLOSE, OPEN, ROUND, WIDTH

OPEN_MAX = 0.26
"""Jaw drop of a fully open vowel, in inter-ocular distances (about 1.6 cm)."""
WIDTH_GAIN = 0.12
"""Relative widening of the mouth at ``width = 1``."""
ROUND_GAIN = 0.24
"""Relative narrowing of the mouth at ``round = 1``."""

# How much of the chin's drop each jaw point follows (0-16, ear to ear).
_JAW_WEIGHTS = np.array(
    [0, 0, 0.04, 0.12, 0.28, 0.48, 0.7, 0.9, 1.0, 0.9, 0.7, 0.48, 0.28, 0.12, 0.04, 0, 0]
)
# Vertical share of the jaw drop per lip point (outer 48-59, inner 60-67).
_LIP_DROP = {
    48: 0.4, 54: 0.4, 60: 0.45, 64: 0.45,
    55: 0.6, 56: 0.88, 57: 1.0, 58: 0.88, 59: 0.6,
    65: 0.92, 66: 1.0, 67: 0.92,
    49: -0.04, 50: -0.07, 51: -0.08, 52: -0.07, 53: -0.04,
    61: -0.1, 62: -0.12, 63: -0.1,
}  # fmt: skip
# Horizontal share of the width change per lip point (sign: outward from the mouth centre).
_LIP_SPREAD = {
    48: 1.0, 54: 1.0, 60: 0.9, 64: 0.9,
    49: 0.6, 53: 0.6, 59: 0.6, 55: 0.6, 61: 0.5, 63: 0.5, 65: 0.5, 67: 0.5,
    50: 0.25, 52: 0.25, 58: 0.25, 56: 0.25,
}  # fmt: skip
_INNER_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper inner lip over lower inner lip
_EYELID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))  # upper lid over lower lid


@dataclass
class FaceMotion:
    """A per-frame driver for the renderer.

    This is the entry point for other landmark predictors (AnyoneNet): give frontal landmarks
    and head quaternions, and the warp renders them on any photo.

    Attributes:
        landmarks: ``(T, 68, 2)`` float32; frontal template units when ``units`` is
            ``"frontal"``, else output pixels (then ``quaternions`` are only recorded).
        quaternions: ``(T, 4)`` unit quaternions ``(w, x, y, z)``: absolute head pose in
            AnyoneNet's convention (rotating the frontal template into the face).
        fps: frame rate in frames/s.
        units: ``"frontal"`` or ``"pixels"``.
        mouth_open: ``(T,)`` optional jaw-opening in ``[0, 1]`` (drives the mouth interior's
            teeth; derived from the landmarks when None).
    """

    landmarks: np.ndarray
    quaternions: np.ndarray
    fps: float
    units: str = "frontal"
    mouth_open: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32)
        self.quaternions = np.asarray(self.quaternions, dtype=np.float64)
        if self.landmarks.ndim != 3 or self.landmarks.shape[1:] != (N_LANDMARKS, 2):
            raise InputError(f"FaceMotion landmarks must be (T, 68, 2), got {self.landmarks.shape}")
        if self.quaternions.shape != (len(self.landmarks), 4):
            raise InputError(
                f"FaceMotion quaternions must be ({len(self.landmarks)}, 4), "
                f"got {self.quaternions.shape}"
            )
        if self.units not in ("frontal", "pixels"):
            raise InputError(f"FaceMotion units must be 'frontal' or 'pixels', got {self.units!r}")
        if not np.isfinite(self.landmarks).all() or not np.isfinite(self.quaternions).all():
            raise InputError("FaceMotion holds NaN or infinite values")
        if self.fps <= 0:
            raise InputError(f"FaceMotion fps must be positive, got {self.fps}")

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)


def rest_shape(frontal: np.ndarray) -> np.ndarray:
    """The photo's frontal landmarks with the lips closed and the jaw raised to match.

    Photos often show an open smile; visemes are offsets from a closed mouth, so the inner lips
    meet (the lower lip and jaw rise by 70% of each gap, the upper lip falls by 30%).

    Args:
        frontal: ``(68, 2)`` frontal landmarks of the photo (template units).

    Returns:
        ``(68, 2)`` float64.
    """
    shape = np.asarray(frontal, dtype=np.float64).copy()
    gaps = np.array([max(0.0, shape[lo, 1] - shape[up, 1]) for up, lo in _INNER_PAIRS])
    mid_gap = gaps[1]
    for (up, lo), gap in zip(_INNER_PAIRS, gaps, strict=True):
        shape[up, 1] += 0.3 * gap
        shape[lo, 1] -= 0.7 * gap
    for index in (55, 56, 57, 58, 59):
        shape[index, 1] -= 0.7 * mid_gap * _LIP_DROP[index]
    shape[:17, 1] -= 0.7 * mid_gap * _JAW_WEIGHTS
    return shape


def mouth_offsets(params: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Landmark offsets of mouth parameters, in frontal template units.

    Args:
        params: ``(T, 4)`` ``open, width, round, close`` in ``[0, 1]``.
        rest: ``(68, 2)`` the closed-mouth frontal shape (:func:`rest_shape`).

    Returns:
        ``(T, 68, 2)`` float64 offsets to add to ``rest``.
    """
    params = np.asarray(params, dtype=np.float64)
    n = len(params)
    out = np.zeros((n, N_LANDMARKS, 2))
    drop = OPEN_MAX * params[:, OPEN] * (1.0 - params[:, CLOSE])
    rounding = params[:, ROUND]
    # Rounded vowels open into an "o": the inner corners follow the centre's opening.
    for index, share in _LIP_DROP.items():
        extra = 0.25 * rounding if index in (61, 63, 65, 67) else 0.0
        out[:, index, 1] += drop * (share + np.sign(share) * extra)
    out[:, :17, 1] += drop[:, None] * _JAW_WEIGHTS
    centre_x = rest[48:68, 0].mean()
    half_width = max(1e-3, (rest[54, 0] - rest[48, 0]) / 2.0)
    change = (WIDTH_GAIN * params[:, WIDTH] - ROUND_GAIN * rounding) * half_width
    for index, share in _LIP_SPREAD.items():
        side = np.sign(rest[index, 0] - centre_x)
        out[:, index, 0] += side * share * change
    # Protruded (rounded) lips look fuller from the front.
    for index in (50, 51, 52):
        out[:, index, 1] -= 0.02 * rounding
    for index in (56, 57, 58):
        out[:, index, 1] += 0.02 * rounding
    return out


def blink_track(n_frames: int, fps: float, seed: int) -> np.ndarray:
    """Eyelid closure per frame in ``[0, 1]``: blinks every 2-6 s, about 0.25 s long.

    Returns:
        ``(n_frames,)`` float32 (1 = fully closed).
    """
    rng = np.random.default_rng([seed, 1])
    out = np.zeros(n_frames, np.float32)
    t = rng.uniform(0.8, 2.5)
    duration = n_frames / fps
    while t < duration:
        closing, opening = 0.08, rng.uniform(0.12, 0.18)
        times = np.arange(n_frames) / fps
        lo, hi = int(max(0, (t - closing) * fps)), int(min(n_frames, (t + opening) * fps + 1))
        local = times[lo:hi]
        shape = np.where(
            local < t,
            np.clip(1.0 - (t - local) / closing, 0.0, 1.0),
            np.clip(1.0 - (local - t) / opening, 0.0, 1.0),
        )
        out[lo:hi] = np.maximum(out[lo:hi], shape**0.7)
        t += rng.uniform(2.0, 6.0)
    return out


def head_motion(
    n_frames: int, fps: float, seed: int, loudness: np.ndarray | None = None
) -> np.ndarray:
    """Small smooth head rotations as ``(T, 4)`` unit quaternions (relative to the photo).

    Each of yaw, pitch and roll is a sum of three slow sinusoids (0.05-0.5 Hz) with random
    phases, within about ±3°, ±2° and ±1.5°; pitch also nods a little with speech loudness.
    """
    rng = np.random.default_rng([seed, 2])
    times = np.arange(n_frames) / fps
    angles = []
    for amplitude in (3.0, 2.0, 1.5):
        freqs = rng.uniform(0.05, 0.5, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = rng.dirichlet(np.ones(3))
        waves = np.sin(2 * np.pi * freqs[:, None] * times[None] + phases[:, None])
        angles.append(amplitude * (weights[:, None] * waves).sum(axis=0))
    yaw, pitch, roll = angles
    if loudness is not None and len(loudness) == n_frames and n_frames > 1:
        # Slow emphasis: a nod of up to 1.5° following the loudness envelope (0.5 s mean).
        # Never wider than the clip: np.convolve's "same" returns the longer input's length,
        # so 0.3 s of speech (8 frames) against a 12-frame window broke the shapes.
        width = max(1, min(round(0.5 * fps), n_frames))
        envelope = np.convolve(loudness, np.ones(width) / width, mode="same")
        pitch = pitch + 1.5 * (envelope - envelope.mean())
    return np.stack(
        [quaternion_from_euler(y, p, r) for y, p, r in zip(yaw, pitch, roll, strict=True)]
    ).reshape(n_frames, 4)


def apply_blinks(shapes: np.ndarray, rest: np.ndarray, blinks: np.ndarray) -> np.ndarray:
    """Close the eyelids of ``(T, 68, 2)`` frontal shapes by ``blinks`` ``(T,)`` (in place)."""
    for upper, lower in _EYELID_PAIRS:
        gap = rest[lower, 1] - rest[upper, 1]
        shapes[:, upper, 1] += 0.85 * gap * blinks
        shapes[:, lower, 1] -= 0.15 * gap * blinks
    return shapes


def synthesize_motion(
    frontal: np.ndarray,
    quaternion: np.ndarray,
    params: np.ndarray,
    fps: float,
    *,
    still: bool = False,
    seed: int = 0,
    loudness: np.ndarray | None = None,
    hold: np.ndarray | None = None,
) -> FaceMotion:
    """The offline driver: mouth parameters, head motion and blinks on the photo's face.

    Args:
        frontal: ``(68, 2)`` frontal landmarks of the photo.
        quaternion: ``(4,)`` the photo's head pose.
        params: ``(T, 4)`` mouth parameters (:mod:`visemes`).
        fps: frame rate in frames/s.
        still: no head motion and no blinks.
        seed: seed of head motion and blink times.
        loudness: ``(T,)`` for the emphasis nod.
        hold: ``(T,)`` in ``[0, 1]``: share of the photo's own mouth and jaw (over the
            closed-lip rest) kept per frame, e.g. :func:`~.visemes.lead_in` (None = 0).
    """
    n = len(params)
    rest = rest_shape(frontal)
    shapes = rest[None] + mouth_offsets(params, rest)
    if hold is not None:
        # The photo differs from the rest only in the lips and jaw (rest_shape moves nothing
        # else), so this blends those towards the photo as given.
        shapes += np.asarray(hold, dtype=np.float64)[:, None, None] * (frontal - rest)[None]
    if still:
        quats = np.repeat(np.asarray(quaternion, dtype=np.float64)[None], n, axis=0)
    else:
        apply_blinks(shapes, rest, blink_track(n, fps, seed))
        relative = head_motion(n, fps, seed, loudness)
        quats = quaternion_multiply(relative, np.asarray(quaternion, dtype=np.float64)[None])
    mouth = np.asarray(params[:, OPEN] * (1.0 - params[:, CLOSE]), dtype=np.float32)
    return FaceMotion(shapes.astype(np.float32), quats, fps, "frontal", mouth)


def lift(frontal: np.ndarray) -> np.ndarray:
    """``(..., 68, 2)`` frontal landmarks → ``(..., 68, 3)`` with the template's depth."""
    depth = np.broadcast_to(frontal_template()[:, 2], frontal.shape[:-1])
    return np.concatenate([frontal, depth[..., None]], axis=-1)


def project(
    motion: FaceMotion,
    photo_landmarks: np.ndarray,
    photo_frontal: np.ndarray,
    photo_quaternion: np.ndarray,
    scale: float,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Pixel landmarks of frames ``start:stop`` of a motion on the photo.

    ``pixels_t = photo + scale * (P R_t lift(F_t) - P R_0 lift(F_0))`` with ``P`` the
    orthographic projection, so the photo's own shape and pose give back the photo exactly.

    Args:
        motion: the driver.
        photo_landmarks: ``(68, 2)`` detected landmarks, output pixels.
        photo_frontal: ``(68, 2)`` the photo's frontal landmarks.
        photo_quaternion: ``(4,)`` the photo's pose.
        scale: output pixels per template unit.
        start, stop: frame range.

    Returns:
        ``(n, 68, 2)`` float32 pixels.
    """
    landmarks = motion.landmarks[start:stop]
    if motion.units == "pixels":
        return landmarks.astype(np.float32)
    rotations = quaternion_to_rotation(motion.quaternions[start:stop])  # (n, 3, 3)
    moved = np.einsum("nij,nkj->nki", rotations, lift(landmarks.astype(np.float64)))[..., :2]
    base = lift(photo_frontal.astype(np.float64)) @ quaternion_to_rotation(photo_quaternion).T
    out = photo_landmarks[None].astype(np.float64) + scale * (moved - base[None, :, :2])
    return out.astype(np.float32)
