"""Scoring a predictor on extracted clips (no rendering), on one real GRID clip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avtool.models.anyonenet import predictor
from avtool.models.anyonenet.config import PredictorConfig
from avtool.training.anyonenet.evaluate import clip_tracks, evaluate_items


@pytest.fixture(scope="module")
def item(grid_dir):
    from avtool.models.anyonenet.data import extract_clip
    from avtool.models.face import FaceDetector

    return {"id": "bbaf2n", **extract_clip(grid_dir / "bbaf2n.mpg", detector=FaceDetector())}


def test_a_still_predictor_scores_as_the_static_face(item):
    torch.manual_seed(0)
    model = predictor.build(PredictorConfig.debug()).eval()  # zero output layer
    predicted, real = clip_tracks(model, item)
    assert predicted.shape == real.shape == item["landmarks"].shape
    # No predicted change puts the first real frame back, exactly (to float32 rounding).
    assert np.abs(predicted - real[0][None]).max() < 1e-3
    result = evaluate_items(model, [item])
    assert result["n_clips"] == 1
    assert result["mean"]["predictor"]["d_ll"] == pytest.approx(
        result["mean"]["static"]["d_ll"], abs=1e-4
    )
    assert result["d_a_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert result["mean"]["static"]["d_a"] > 0.002  # the real GRID mouth moves


def test_a_moving_predictor_changes_the_lips(item):
    torch.manual_seed(1)
    model = predictor.build(PredictorConfig.debug()).eval()
    torch.nn.init.normal_(model.head[-1].weight, 0.0, 0.05)
    result = evaluate_items(model, [item])
    moved = result["mean"]["predictor"]
    assert all(math.isfinite(moved[m]) for m in ("d_ll", "d_vl", "d_a"))
    assert moved["d_ll"] != pytest.approx(result["mean"]["static"]["d_ll"], abs=1e-4)
    assert set(result["frontal"]) >= {"mouth_dist", "static_mouth_dist"}
