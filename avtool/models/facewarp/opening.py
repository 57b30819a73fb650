"""Audio-refined jaw opening: a linear read-out of the audio that re-times the viseme opening.

The viseme track (:mod:`.visemes`) opens the jaw by phone class, so it is only as good as the
phone recogniser, which mishears unseen voices (GRID s4, a woman: "bin blue" heard as "DH IH N
IH D AH", the b closures and the rounded vowel lost). The acoustics themselves say when the mouth
opens: energy moves into the F1 region as the jaw drops and out of it at closures, frication
sits above 3 kHz. :func:`refine_opening` predicts the inner-mouth area per frame as a linear
function of a 7-frame window (±3 frames, ±120 ms at 25 fps) of

* the viseme parameters after loudness scaling (open, width, round, close), the photo-hold
  weight (:func:`.visemes.lead_in`) and the loudness (6 values), and
* the 7 band levels of :data:`.phones.BAND_EDGES_HZ`, standardised over the recording's voiced
  frames (so a voice's pitch, timbre and level do not matter, only their changes; -2.5 on
  unvoiced frames),

and replaces ``open`` by that prediction, mapped onto the viseme opening's own mean and spread
over the recording (so how far the mouth opens overall is unchanged: only when). Closures
(``close``) still shut the lips where p/b/m are heard.

The weights (:data:`WEIGHTS`) are a ridge regression (lambda 10 on standardised features) on
GRID speaker s1's **training** split only (dlib inner-mouth area of every cached clip with an
even index, 257 clips; targets standardised per clip), fitted by ``python -m
avtool.training.mouth_driver`` (``make -f recipes/talkinghead.mk mouth-driver``), which prints
this table. Figures: docs/talkinghead-realism.md.
"""

from __future__ import annotations

import numpy as np

from avtool.models.facewarp.visemes import CLOSE, OPEN

CONTEXT = 3
"""Frames either side of the predicted frame that the read-out sees."""
N_INPUTS = 13
"""Values per frame: 4 viseme parameters, hold, loudness, 7 band levels."""
UNVOICED_LEVEL = -2.5
"""Standardised band level written on frames under the silence floor."""

# (2 * CONTEXT + 1) taps (frame offsets -3..+3) x N_INPUTS, in the order of ``frame_inputs``;
# fitted by avtool.training.mouth_driver on GRID s1's training split.
WEIGHTS: tuple[tuple[float, ...], ...] = (
    (
        0.217561,
        -1.42015,
        0.176317,
        0.00193774,
        0.0738068,
        -0.107167,
        -0.153227,
        0.0730513,
        0.0305498,
        -0.0838115,
        0.103432,
        -0.0383185,
        -0.00900224,
    ),
    (
        0.0377808,
        1.36275,
        -0.200763,
        0.0197965,
        -0.484227,
        -0.0429774,
        -0.0783529,
        0.0506292,
        0.0936215,
        -0.124895,
        0.124421,
        0.0200024,
        -2.27711e-05,
    ),
    (
        1.03211,
        -0.0435389,
        0.102968,
        -0.0673746,
        0.363795,
        -0.0358872,
        -0.0221581,
        0.0502856,
        0.0944355,
        -0.146737,
        0.162662,
        0.0602585,
        -0.0292469,
    ),
    (
        0.436715,
        1.00142,
        -0.289792,
        -0.143416,
        -0.14912,
        -0.0065048,
        0.0139,
        0.00804749,
        0.0714247,
        -0.0903395,
        0.125005,
        0.143768,
        -0.0746926,
    ),
    (
        0.660441,
        0.28396,
        0.0342229,
        -0.117798,
        0.0495339,
        -0.0268256,
        -0.0124196,
        -0.0569422,
        0.0486215,
        0.0340731,
        0.0190916,
        0.168183,
        -0.0832092,
    ),
    (
        -1.06881,
        -1.82684,
        -1.20851,
        -0.0854803,
        0.121698,
        -0.0286158,
        -0.0613962,
        -0.0681068,
        0.00759245,
        0.0971532,
        -0.0417118,
        0.0619095,
        -0.0361238,
    ),
    (
        1.16087,
        1.71599,
        1.32699,
        0.22866,
        0.0996432,
        -0.00315375,
        -0.0929135,
        -0.0562475,
        0.0373613,
        0.0683241,
        -0.0791635,
        -0.0610918,
        0.0970574,
    ),
)


def frame_inputs(
    params: np.ndarray, hold: np.ndarray, loudness: np.ndarray, voiced: np.ndarray,
    bands: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """The read-out's per-frame inputs.

    Args:
        params: ``(T, 4)`` viseme parameters after :func:`.visemes.apply_energy`.
        hold: ``(T,)`` photo-hold weight in ``[0, 1]``.
        loudness: ``(T,)`` in ``[0, 1]``.
        voiced: ``(T,)`` bool.
        bands: ``(T, 7)`` band levels in dB (:func:`.phones.band_levels`).

    Returns:
        ``(T, N_INPUTS)`` float64.
    """
    bands = np.asarray(bands, dtype=np.float64)
    voiced = np.asarray(voiced, dtype=bool)
    pool = bands[voiced] if voiced.sum() > 3 else bands
    levels = (bands - pool.mean(axis=0)) / (pool.std(axis=0) + 1e-6)
    levels[~voiced] = UNVOICED_LEVEL
    return np.concatenate(
        [np.asarray(params, np.float64), np.asarray(hold, np.float64)[:, None],
         np.asarray(loudness, np.float64)[:, None], levels], axis=1,
    )  # fmt: skip


def windows(inputs: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """``(T, n)`` per-frame inputs -> ``(T, (2 context + 1) n)``: frames ``t - context ..
    t + context`` side by side (edge frames repeated past the ends)."""
    n = len(inputs)
    padded = np.pad(inputs, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[k : k + n] for k in range(2 * context + 1)], axis=1)


def refine_opening(
    params: np.ndarray,
    hold: np.ndarray | None,
    loudness: np.ndarray,
    voiced: np.ndarray,
    bands: np.ndarray,
    weights: tuple[tuple[float, ...], ...] | np.ndarray = WEIGHTS,
) -> np.ndarray:
    """Viseme parameters with ``open`` re-timed by the audio read-out (module docstring).

    Args:
        params: ``(T, 4)`` after :func:`.visemes.apply_energy`.
        hold: ``(T,)`` photo-hold weight (None = 0 everywhere).
        loudness, voiced: ``(T,)`` from :class:`.phones.AudioDrive`.
        bands: ``(T, 7)`` band levels in dB.
        weights: ``(2 CONTEXT + 1, N_INPUTS)`` read-out weights.

    Returns:
        ``(T, 4)`` float32; unchanged when the opening never varies (silence) or there are no
        weights.
    """
    params = np.asarray(params, dtype=np.float32)
    coef = np.asarray(weights, dtype=np.float64)
    n = len(params)
    if n < 2 or coef.size == 0:
        return params
    effective = params[:, OPEN].astype(np.float64) * (1.0 - params[:, CLOSE])
    spread = effective.std()
    if spread < 1e-6:
        return params
    hold = np.zeros(n) if hold is None else hold
    context = (coef.shape[0] - 1) // 2
    inputs = windows(frame_inputs(params, hold, loudness, voiced, bands), context)
    predicted = inputs @ coef.reshape(-1)
    predicted = (predicted - predicted.mean()) / (predicted.std() + 1e-9)
    out = params.copy()
    out[:, OPEN] = np.clip(effective.mean() + spread * predicted, 0.0, 1.0)
    return out
