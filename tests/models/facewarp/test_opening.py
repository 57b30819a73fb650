"""The audio-refined jaw opening: the read-out's inputs, its window and what it may change."""

from __future__ import annotations

import numpy as np
import pytest

from avtool.models.facewarp.opening import (
    CONTEXT,
    N_INPUTS,
    WEIGHTS,
    frame_inputs,
    refine_opening,
    windows,
)
from avtool.models.facewarp.visemes import CLOSE, OPEN


def _drive(n: int = 60, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    params = np.zeros((n, 4), np.float32)
    params[:, OPEN] = rng.uniform(0.0, 0.8, n)
    params[10:12, CLOSE] = 1.0
    loudness = rng.uniform(0.0, 1.0, n).astype(np.float32)
    voiced = np.ones(n, bool)
    voiced[:5] = False
    bands = rng.normal(-40.0, 6.0, (n, 7)).astype(np.float32)
    return params, np.zeros(n), loudness, voiced, bands


def test_shipped_weights_have_the_read_out_shape():
    assert np.asarray(WEIGHTS).shape == (2 * CONTEXT + 1, N_INPUTS)
    assert np.isfinite(np.asarray(WEIGHTS)).all()


def test_frame_inputs_standardise_the_bands_over_voiced_frames():
    params, hold, loudness, voiced, bands = _drive()
    inputs = frame_inputs(params, hold, loudness, voiced, bands)
    assert inputs.shape == (60, N_INPUTS)
    levels = inputs[:, 6:]
    assert np.allclose(levels[voiced].mean(axis=0), 0.0, atol=1e-6)
    assert (levels[~voiced] == -2.5).all()
    # A voice 20 dB louder (or quieter) reads the same.
    assert np.allclose(frame_inputs(params, hold, loudness, voiced, bands + 20.0), inputs)


def test_windows_stack_neighbours_and_repeat_the_edges():
    inputs = np.arange(10, dtype=np.float64)[:, None]
    stacked = windows(inputs, 2)
    assert stacked.shape == (10, 5)
    assert stacked[5].tolist() == [3, 4, 5, 6, 7]
    assert stacked[0].tolist() == [0, 0, 0, 1, 2]


def test_the_opening_follows_the_read_out_and_keeps_its_range():
    params, hold, loudness, voiced, bands = _drive()
    coef = np.zeros((2 * CONTEXT + 1, N_INPUTS))
    coef[CONTEXT, 5] = 1.0  # the current frame's loudness only
    out = refine_opening(params, hold, loudness, voiced, bands, coef)
    assert out.shape == params.shape and out.dtype == np.float32
    assert (out[:, 1:] == params[:, 1:]).all()  # width, round and closures are kept
    assert out[:, OPEN].min() >= 0.0 and out[:, OPEN].max() <= 1.0
    assert np.corrcoef(out[:, OPEN], loudness)[0, 1] > 0.95
    effective = params[:, OPEN] * (1.0 - params[:, CLOSE])
    assert out[:, OPEN].mean() == pytest.approx(effective.mean(), abs=0.03)


def test_no_weights_or_a_still_mouth_change_nothing():
    params, hold, loudness, voiced, bands = _drive()
    assert refine_opening(params, hold, loudness, voiced, bands, ()) is not None
    assert (refine_opening(params, hold, loudness, voiced, bands, ()) == params).all()
    shut = np.zeros_like(params)
    assert (refine_opening(shut, None, loudness, voiced, bands) == shut).all()
