import math

import numpy as np
import pytest

from avtool.io.face import frontal_template
from avtool.metrics import landmarks as lm


def face(iod: float = 60.0, centre=(180.0, 140.0)) -> np.ndarray:
    """The frontal template as a (68, 2) pixel face with the given inter-ocular distance."""
    return frontal_template()[:, :2] * iod + np.asarray(centre)


def talking(n: int = 50, amplitude: float = 0.3, period: float = 10.0, phase: float = 0.0):
    """(n, 68, 2) track whose inner lower lip drops by amplitude * IOD * (1 + sin)/2."""
    base = face()
    track = np.repeat(base[None], n, axis=0)
    opening = amplitude * 60.0 * 0.5 * (1 + np.sin(2 * np.pi * (np.arange(n) + phase) / period))
    track[:, 65:68, 1] += opening[:, None]  # inner lower lip
    track[:, 55:60, 1] += opening[:, None]  # outer lower lip follows
    return track


def moved(track: np.ndarray, angle_deg: float, scale: float, shift) -> np.ndarray:
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = track.reshape(-1, 2).mean(axis=0)
    return (track - centre) @ rot.T * scale + centre + np.asarray(shift)


def test_identical_tracks_score_zero_and_correlate_perfectly():
    track = talking()
    scores = lm.lip_sync_metrics(track, track)
    assert scores["d_ll"] == pytest.approx(0, abs=1e-9)
    assert scores["d_vl"] == pytest.approx(0, abs=1e-9)
    assert scores["d_a"] == pytest.approx(0, abs=1e-9)
    assert scores["area_corr"] == pytest.approx(1.0)
    assert scores["n_frames"] == 50


def test_head_motion_is_registered_away():
    # Rotating, scaling and moving the whole head must not count as lip error.
    track = talking()
    wobble = np.stack(
        [moved(f, 8 * math.sin(i / 5), 1 + 0.1 * math.cos(i / 7), (3 * i % 11, -i % 5))
         for i, f in enumerate(track)]
    )  # fmt: skip
    scores = lm.lip_sync_metrics(wobble, track)
    assert scores["d_ll"] < 1e-6 and scores["d_vl"] < 1e-6 and scores["d_a"] < 1e-6
    assert scores["area_corr"] == pytest.approx(1.0)


def test_units_are_reference_inter_ocular_distances():
    real = np.repeat(face()[None], 10, axis=0)
    gen = real.copy()
    gen[:, lm.LIP_POINTS, 1] += 6.0  # all lips 6 px down: about 0.1 IOD at IOD ~60 px
    iod = float(lm.inter_ocular_distance(real[0]))
    # The nose/eye fit is unaffected by the lips, so the shift survives registration.
    assert lm.lip_sync_metrics(gen, real)["d_ll"] == pytest.approx(6.0 / iod)
    assert lm.lip_sync_metrics(gen, real)["d_vl"] == pytest.approx(0.0, abs=1e-12)


def test_scaled_mouth_gives_known_area_difference():
    real = talking(n=30, amplitude=0.3)
    gen = real.copy()
    inner = gen[:, 60:68]
    centroid = inner.mean(axis=1, keepdims=True)
    gen[:, 60:68] = centroid + 1.5 * (inner - centroid)  # areas scale by 1.5**2
    area_real = lm.inner_mouth_area(lm.normalise_track(real, real[0]))
    expected = float(np.mean((1.5**2 - 1) * area_real))
    scores = lm.lip_sync_metrics(gen, real)
    assert scores["d_a"] == pytest.approx(expected, rel=1e-6)
    assert scores["area_corr"] == pytest.approx(1.0)  # amplitude does not change r


def test_shoelace_area_of_a_known_octagon():
    points = np.zeros((68, 2))
    angles = np.arange(8) * np.pi / 4
    points[60:68] = np.column_stack([np.cos(angles), np.sin(angles)]) * 2.0
    # A regular octagon of circumradius R has area 2 * sqrt(2) * R**2.
    assert lm.inner_mouth_area(points) == pytest.approx(2 * math.sqrt(2) * 4.0)


def test_velocity_distance_of_a_constant_speed_drift():
    real = np.repeat(face()[None], 20, axis=0)
    gen = real.copy()
    gen[:, lm.LIP_POINTS, 0] += 1.2 * np.arange(20)[:, None]  # 1.2 px per frame
    iod = float(lm.inter_ocular_distance(real[0]))
    assert lm.lip_sync_metrics(gen, real)["d_vl"] == pytest.approx(1.2 / iod)


def test_correlation_of_shifted_sines():
    period = 20.0
    real = talking(n=200, period=period)
    for shift, expected in ((0, 1.0), (5, 0.0), (10, -1.0)):
        gen = talking(n=200, period=period, phase=shift)
        r = lm.lip_sync_metrics(gen, real)["area_corr"]
        # cos(2 pi shift / period) up to the finite window.
        assert r == pytest.approx(expected, abs=0.02), shift


def test_still_mouth_has_no_correlation_and_known_area_error():
    real = talking(n=40, amplitude=0.2)
    static = np.repeat(real[:1], 40, axis=0)
    scores = lm.lip_sync_metrics(static, real)
    assert math.isnan(scores["area_corr"])
    areas = lm.inner_mouth_area(lm.normalise_track(real, real[0]))
    assert scores["d_a"] == pytest.approx(float(np.abs(areas - areas[0]).mean()))


def test_longer_track_is_cut_to_the_shorter():
    real = talking(n=40)
    scores = lm.lip_sync_metrics(np.concatenate([real, real[:7]]), real)
    assert scores["n_frames"] == 40 and scores["d_ll"] == pytest.approx(0, abs=1e-9)


def test_pearson_edge_cases():
    assert lm.pearson(np.arange(10.0), 3 * np.arange(10.0) + 1) == pytest.approx(1.0)
    assert math.isnan(lm.pearson(np.ones(10) * 1e6, np.arange(10.0)))
    assert math.isnan(lm.pearson(np.ones(1), np.ones(1)))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="68, 2"):
        lm.lip_sync_metrics(np.zeros((5, 20, 2)), np.zeros((5, 68, 2)))
    with pytest.raises(ValueError, match="NaN"):
        lm.lip_landmark_distance(np.full((5, 68, 2), np.nan), np.zeros((5, 68, 2)))


def test_best_area_lag_finds_a_delayed_mouth():
    real = talking(n=120, period=16.0)
    late = talking(n=120, period=16.0, phase=-3)  # generated[t] = real[t - 3]
    lag, r = lm.best_area_lag(late, real, max_lag=5)
    assert lag == 3 and r == pytest.approx(1.0)
    assert lm.best_area_lag(real, real)[0] == 0
