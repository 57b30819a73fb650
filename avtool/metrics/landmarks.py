"""Lip-sync measures on 68-point landmark tracks, as the talking-head literature reports them.

The three distances follow AnyoneNet (Wang et al., "AnyoneNet: Synchronized Speech and Talking
Head Generation for Arbitrary Persons", IEEE TMM 2022, arXiv 2108.04325), which takes them from
MakeItTalk (Zhou et al., SIGGRAPH Asia 2020):

* **D-LL**, lip landmark distance: the Euclidean distance between each generated lip landmark
  and the same landmark in the real video, averaged over the 20 lip points (iBUG 48-67) and
  all frames;
* **D-VL**, lip landmark velocity distance: the same average over the landmarks' velocities,
  the frame-to-frame differences ``x[t + 1] - x[t]`` (per frame, not per second);
* **D-A**, mouth area difference: the absolute difference between the generated and real
  mouth-opening areas (inside the inner-lip contour, iBUG 60-67), averaged over frames.

The papers normalise landmarks to a face-size unit before measuring; here, as the issue asks,
positions are in units of the inter-ocular distance (eye-centre to eye-centre) of a reference
face, so D-LL and D-VL are fractions of that distance and D-A a fraction of its square.

Registration: each frame is first aligned to the reference face by a least-squares similarity
transform (rotation, uniform scale, translation) fitted on the *stable* points only: nose
(27-35) and eyes (36-47). These move with the head but not with speech, so head motion and
camera jitter do not count as lip error, while the jaw and lips, which speech moves, do not
bias the fit (a full-face fit such as :func:`avtool.io.face.register` lets an opening jaw pull
the estimated scale and pitch). GRID faces are frontal, so a 2-D similarity is enough.

The mouth-area correlation is Pearson's r between the two inner-mouth area curves over time:
it measures whether the mouth opens and closes when it should, whatever the amplitude.

All functions are pure numpy on ``(T, 68, 2)`` float pixel tracks (``x, y``, iBUG order).
"""

from __future__ import annotations

import math

import numpy as np

from avtool.io.face import INNER_LIPS, LEFT_EYE, MOUTH, RIGHT_EYE, procrustes

#: Nose (27-35) and eyes (36-47): rigid with the head, unmoved by speech.
STABLE_POINTS = np.arange(27, 48)
#: The 20 lip landmarks (outer 48-59, inner 60-67) that D-LL and D-VL average over.
LIP_POINTS = np.arange(MOUTH.start, MOUTH.stop)
#: Names of the measures :func:`lip_sync_metrics` returns.
MEASURES = ("d_ll", "d_vl", "d_a", "area_corr")


def _check_track(track: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(track, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (68, 2):
        raise ValueError(f"{name}: expected landmarks (T, 68, 2), got {np.shape(track)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: landmarks contain NaN or infinity")
    return array


def _pair(generated: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gen, ref = _check_track(generated, "generated"), _check_track(real, "real")
    n = min(len(gen), len(ref))
    if n == 0:
        raise ValueError("empty landmark track")
    return gen[:n], ref[:n]


def inter_ocular_distance(landmarks: np.ndarray) -> np.ndarray:
    """Eye-centre distance ``(...,)`` of landmarks ``(..., 68, 2)``, in their units."""
    points = np.asarray(landmarks, dtype=np.float64)
    right = points[..., RIGHT_EYE, :].mean(axis=-2)
    left = points[..., LEFT_EYE, :].mean(axis=-2)
    return np.linalg.norm(left - right, axis=-1)


def normalise_track(track: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Align every frame to ``reference`` on the stable points, in reference-IOD units.

    Args:
        track: ``(T, 68, 2)`` pixel landmarks.
        reference: ``(68, 2)`` pixel landmarks of the reference face (e.g. the real video's
            first frame, which is the face the renderer was given).

    Returns:
        ``(T, 68, 2)`` float64: each frame mapped by the similarity transform that best fits
        its nose and eye points onto the reference's, then centred on the reference's stable
        points and divided by the reference's inter-ocular distance.

    Raises:
        ValueError: bad shapes, or a reference whose eyes coincide.
    """
    frames = _check_track(track, "track")
    ref = _check_track(reference, "reference")[0]
    iod = float(inter_ocular_distance(ref))
    if not iod > 1e-9:
        raise ValueError("reference face has a zero inter-ocular distance")
    centre = ref[STABLE_POINTS].mean(axis=0)
    out = np.empty_like(frames)
    for index, points in enumerate(frames):
        scale, rotation, shift = procrustes(points[STABLE_POINTS], ref[STABLE_POINTS])
        out[index] = scale * points @ rotation.T + shift
    return (out - centre) / iod


def inner_mouth_area(landmarks: np.ndarray) -> np.ndarray:
    """Area inside the inner-lip contour (shoelace formula), ``(...,)`` for ``(..., 68, 2)``.

    In the landmarks' units squared (pixels², or IOD² after :func:`normalise_track`).
    """
    inner = np.asarray(landmarks, dtype=np.float64)[..., INNER_LIPS, :]
    x, y = inner[..., 0], inner[..., 1]
    cross = x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y
    return 0.5 * np.abs(cross.sum(axis=-1))


def lip_landmark_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """D-LL: mean Euclidean distance of the 20 lip landmarks over frames.

    Args:
        generated, real: ``(T, 68, 2)`` tracks in the same (normalised) units; the longer is
            cut to the shorter.

    Returns:
        The mean distance, in the tracks' units.
    """
    gen, ref = _pair(generated, real)
    return float(np.linalg.norm(gen[:, LIP_POINTS] - ref[:, LIP_POINTS], axis=-1).mean())


def lip_velocity_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """D-VL: mean Euclidean distance between lip-landmark velocities.

    Velocities are frame-to-frame differences ``x[t + 1] - x[t]`` (units per frame).

    Args:
        generated, real: ``(T, 68, 2)`` tracks, T >= 2 after cutting to the shorter.

    Raises:
        ValueError: fewer than two frames.
    """
    gen, ref = _pair(generated, real)
    if len(gen) < 2:
        raise ValueError("D-VL needs at least two frames")
    gen_v = np.diff(gen[:, LIP_POINTS], axis=0)
    ref_v = np.diff(ref[:, LIP_POINTS], axis=0)
    return float(np.linalg.norm(gen_v - ref_v, axis=-1).mean())


def mouth_area_difference(generated: np.ndarray, real: np.ndarray) -> float:
    """D-A: mean absolute difference of inner-mouth areas over frames (units squared)."""
    gen, ref = _pair(generated, real)
    return float(np.abs(inner_mouth_area(gen) - inner_mouth_area(ref)).mean())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two ``(T,)`` series (cut to the shorter).

    Returns:
        r in [-1, 1], or NaN when either series is constant (a still mouth has no
        correlation with anything).
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    n = min(x.size, y.size)
    if n < 2:
        return float("nan")
    x, y = x[:n], y[:n]
    # Rounding leaves a constant series ~1e-16 of its size away from constant, not exactly.
    tiny = 1e-12 * max(1.0, float(np.abs(x).max()), float(np.abs(y).max()))
    x, y = x - x.mean(), y - y.mean()
    sx, sy = math.sqrt(float(x @ x) / n), math.sqrt(float(y @ y) / n)
    if sx <= tiny or sy <= tiny:
        return float("nan")
    return float(np.clip((x @ y) / (n * sx * sy), -1.0, 1.0))


def mouth_area_correlation(generated: np.ndarray, real: np.ndarray) -> float:
    """Pearson r of the inner-mouth area over time (NaN when either mouth never moves)."""
    gen, ref = _pair(generated, real)
    return pearson(inner_mouth_area(gen), inner_mouth_area(ref))


def lip_sync_metrics(
    generated: np.ndarray, real: np.ndarray, reference: np.ndarray | None = None
) -> dict[str, float]:
    """All four measures of a generated landmark track against the real one.

    Both tracks are registered to ``reference`` with :func:`normalise_track` first, so
    distances are in reference inter-ocular distances (areas in their square).

    Args:
        generated: ``(T, 68, 2)`` pixel landmarks detected in the generated video.
        real: ``(T', 68, 2)`` pixel landmarks detected in the real video; the longer track
            is cut to the shorter.
        reference: ``(68, 2)`` reference face; None uses ``real[0]``.

    Returns:
        ``{"d_ll", "d_vl", "d_a", "area_corr", "n_frames"}``; ``area_corr`` is NaN for a mouth
        that never moves.
    """
    gen, ref = _pair(generated, real)
    anchor = ref[0] if reference is None else reference
    gen_n, ref_n = normalise_track(gen, anchor), normalise_track(ref, anchor)
    return {
        "d_ll": lip_landmark_distance(gen_n, ref_n),
        "d_vl": lip_velocity_distance(gen_n, ref_n) if len(gen_n) > 1 else float("nan"),
        "d_a": mouth_area_difference(gen_n, ref_n),
        "area_corr": mouth_area_correlation(gen_n, ref_n),
        "n_frames": len(gen_n),
    }


def best_area_lag(generated: np.ndarray, real: np.ndarray, max_lag: int = 5) -> tuple[int, float]:
    """The frame lag that best lines up the two mouth-area curves (a sync diagnostic).

    Both tracks are registered to ``real[0]`` first. A positive lag means the generated mouth
    moves *later* than the real one (``generated[t + lag]`` matches ``real[t]``).

    Args:
        generated, real: ``(T, 68, 2)`` pixel tracks.
        max_lag: search ``-max_lag .. max_lag`` frames.

    Returns:
        ``(lag, r)``: the lag in frames and Pearson r at that lag (NaN, 0 when the generated
        mouth never moves).
    """
    gen, ref = _pair(generated, real)
    gen_a = inner_mouth_area(normalise_track(gen, ref[0]))
    ref_a = inner_mouth_area(normalise_track(ref, ref[0]))
    best_lag, best_r = 0, float("nan")
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            r = pearson(gen_a[lag:], ref_a[: len(ref_a) - lag])
        else:
            r = pearson(gen_a[: len(gen_a) + lag], ref_a[-lag:])
        if not math.isnan(r) and (math.isnan(best_r) or r > best_r):
            best_lag, best_r = lag, r
    return best_lag, best_r
